export * from "./nats-server.js";
export * from "./ports.js";
export * from "./netns.js";
export * from "./public-captures.js";
export * from "./tools.js";
export { mainOf, spawnService, stopChild, stackConfig, writeStackConfig, type ServiceProcess, type SpawnServiceOptions } from "@vigil/stack";
