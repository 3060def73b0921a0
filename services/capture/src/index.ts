export * from "./capture.js";
export * from "./config.js";
export * from "./encode.js";
export * from "./metrics.js";
export * from "./publisher.js";
