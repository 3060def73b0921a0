import type { FastifyPluginAsync, FastifyPluginOptions } from "fastify";
import type { ErrorCode } from "@vigil/errors";
import type { NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import type { ConsoleConfig } from "./config.js";
import type { LiveState } from "./live.js";
import type { ModelSource } from "./models.js";
import type { RulesClient } from "./rules-client.js";
import type { LoginCodes } from "./login-codes.js";

/** What the console's plugins and routes share: handed to each as its options. */
export interface ConsoleContext {
  cfg: ConsoleConfig;
  log: Logger;
  live: LiveState;
  rules: RulesClient;
  models: ModelSource;
  /** Single-use login links (`/?login=CODE`). */
  loginCodes: LoginCodes;
  /** The bus, once reachable (it may be attached after start). */
  nats(): NatsConnection | null;
}

export const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** An error the error handler answers with its status and code. */
export function httpError(status: number, code: ErrorCode, message: string): Error & { statusCode: number; code: ErrorCode } {
  return Object.assign(new Error(message), { statusCode: status, code });
}

/**
 * Marks a plugin whose hooks and handlers apply to the whole application rather than only to
 * the routes it registers itself: what the fastify-plugin package does, by the same symbols.
 */
export function appWide<Options extends FastifyPluginOptions>(name: string, plugin: FastifyPluginAsync<Options>): FastifyPluginAsync<Options> {
  return Object.assign(plugin, { [Symbol.for("skip-override")]: true, [Symbol.for("fastify.display-name")]: name });
}
