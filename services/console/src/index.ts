export { createConsoleServer, DEFAULT_WEB_DIR, type ConsoleOptions, type ConsoleServer } from "./server.js";
export { configSchema, consoleSchema, loadConsoleConfig, type ConsoleConfig } from "./config.js";
export { LiveState, scoresSubject, scoresAll } from "./live.js";
export { ModelSource, modelSubject } from "./models.js";
export { RulesClient, RulesApiError, resolveRulesAddress } from "./rules-client.js";
export { sumCounters } from "./capture-metrics.js";
export { SESSION_COOKIE, CSRF_HEADER, sessionValue } from "./auth.js";
