export * from "./ownership.js";
export * from "./detector-host.js";
