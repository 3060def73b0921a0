import type { FastifyPluginAsync } from "fastify";
import { appWide, type ConsoleContext } from "../http.js";
import { RulesApiError } from "../rules-client.js";

/** Every failed request is answered as JSON {error, code}; only unexpected failures (5xx) are logged. */
export const errorPlugin: FastifyPluginAsync<ConsoleContext> = appWide("vigil-console-errors", async (app, { log }) => {
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, _req, reply) => {
    if (err instanceof RulesApiError) return reply.code(err.httpStatus).send({ error: err.message, code: err.code, ...(err.forceable === undefined ? {} : { forceable: err.forceable }) });
    const status = err.statusCode ?? 500;
    if (status >= 500) log.error({ err }, "request failed");
    return reply.code(status).send({ error: err.message, code: err.code ?? (err.validation ? "VIGIL_ERR_BAD_REQUEST" : "VIGIL_ERR_INTERNAL") });
  });
});
