export * from "./gen/vigil/v1/frames.js";
export * from "./gen/vigil/v1/stream.js";
export * from "./gen/vigil/v1/verdict.js";
export * from "./gen/vigil/v1/feedback.js";
export * from "./gen/vigil/v1/rules.js";
export * from "./gen/vigil/v1/control.js";
