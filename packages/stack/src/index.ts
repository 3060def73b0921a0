export * from "./ports.js";
export * from "./nats.js";
export * from "./nats-auth.js";
export * from "./console-login.js";
export * from "./services.js";
export * from "./config.js";
export type { OutputTarget } from "./output.js";
export * from "./pidfiles.js";
export * from "./stop-triggers.js";
