export * from "./config.js";
export * from "./format.js";
export * from "./metrics.js";
export * from "./notification.js";
export * from "./notifier.js";
export * from "./queue.js";
export * from "./send.js";
export * from "./worker.js";
