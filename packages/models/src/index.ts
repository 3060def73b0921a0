export * from "./alphabet.js";
export { ModelError } from "./errors.js";
export * from "./pst-export.js";
export * from "./som-export.js";
export { serveModelExport } from "./serve.js";
