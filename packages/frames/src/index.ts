export * from "./abi.gen.js";
export * from "./records.js";
export * from "./packet.js";
export * from "./addr.js";
export * from "./craft.js";
export * from "./flow-bucket.js";
export * from "./mix32.js";
