export * from "./log.js";
export * from "./log-format.js";
export * from "./errors.js";
export * from "./shutdown.js";
export * from "./command.js";
export * from "./identity.js";
export * from "./daemon.js";
export * from "./pipes.js";
