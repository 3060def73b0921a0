export * from "./subjects.js";
export * from "./codec.js";
export * from "./connection.js";
export * from "./credentials.js";
export type { NatsConnection, Subscription, Msg } from "@nats-io/transport-node";
export * from "./presence.js";
export * from "./scores.js";
export * from "./client-internals.js";
export * from "./publish-in-place.js";
