export * from "./ownership.js";
export * from "./detector-host.js";
export type { LossKind } from "./loss.js";
