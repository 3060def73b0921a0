export * from "./topology.js";
export * from "./lab.js";
export * from "./labels.js";
export * from "./local.js";
export * from "./pipeline.js";
export * from "./replay.js";
export * from "./eval.js";
