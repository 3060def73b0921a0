export * from "./ownership.js";
export * from "./detector-host.js";
export type { LossKind } from "./loss.js";
export * from "./model-reload.js";
export * from "./load-shedding.js";
