import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import { stateDir, type ConsoleConfig } from "./config.js";
import type { ConsoleContext } from "./http.js";
import { LiveState } from "./live.js";
import { ModelSource } from "./models.js";
import { authPlugin } from "./plugins/auth.js";
import { errorPlugin } from "./plugins/errors.js";
import { consoleToken } from "./login-token.js";
import { LoginCodes } from "./login-codes.js";
import { LOGIN_LINK_TTL_S } from "./plugins/auth.js";
import { RulesClient, resolveRulesAddress } from "./rules-client.js";
import { EventHub, eventRoutes } from "./routes/events.js";
import { metricsRoutes } from "./routes/metrics.js";
import { modelRoutes } from "./routes/models.js";
import { phaseRoutes } from "./routes/phase.js";
import { ruleRoutes } from "./routes/rules.js";
import { staticRoutes } from "./routes/static.js";
import { statusRoutes } from "./routes/status.js";
import { verdictRoutes } from "./routes/verdicts.js";
import { loadAssets } from "./static.js";

function redactedRequest(req: { method?: string; url?: string; ip?: string }): object {
  return { method: req.method, url: req.url?.replace(/([?&]token=)[^&#]*/g, "$1[redacted]"), remoteAddress: req.ip };
}

export const DEFAULT_WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../dist/web");

export interface ConsoleOptions {
  config: ConsoleConfig;
  logger: Logger;
  nats: NatsConnection | null;
  /** The built front end; default services/console/dist/web. */
  webDir?: string;
  env?: NodeJS.ProcessEnv;
}

export interface ConsoleServer {
  app: FastifyInstance;
  /** Starts the live data once NATS is reachable, when it was not at start. */
  attachBus(nc: NatsConnection): void;
  live: LiveState;
  rules: RulesClient;
  url: string;
  close(): Promise<void>;
}

/**
 * The console: a fastify application of plugins (authentication and CSRF, the error handler)
 * and route files (status, verdicts, rules, models, events, metrics, the static front end),
 * over the live state it keeps from the bus and the rules service's API.
 */
export async function createConsoleServer(opts: ConsoleOptions): Promise<ConsoleServer> {
  const log = opts.logger;
  const env = opts.env ?? process.env;
  const login = consoleToken(opts.config, stateDir(env));
  // From here on cfg.token is the one in force: absent only with console.auth: none.
  const cfg = { ...opts.config, token: login.token ?? undefined };
  if (login.generatedIn) log.info({ file: login.generatedIn }, "console login token is in this file (mode 0600): open the console with ?token=<its content>");
  if (!cfg.token) log.warn({ host: cfg.host }, "console.auth is none: anyone who reaches the console can change rules");
  const webDir = opts.webDir ?? DEFAULT_WEB_DIR;
  if (!existsSync(join(webDir, "index.html")))
    throw Object.assign(new Error(`console: the front end is not built (${join(webDir, "index.html")} missing): run node scripts/build.mjs`), {
      code: "VIGIL_ERR_CONSOLE_BUILD",
    });
  const assets = loadAssets(webDir);

  const rules = new RulesClient(resolveRulesAddress(cfg.rules.address, env), cfg.rules.timeoutMs, cfg.rules.token);
  const live = new LiveState(cfg, log, rules);
  let nats = opts.nats;
  const models = new ModelSource({
    nats: () => nats,
    stateDir: stateDir(env),
    dirs: { pst: cfg.models.pstDir, som: cfg.models.somDir },
    requestTimeoutMs: cfg.models.requestTimeoutMs,
  });
  const loginCodes = new LoginCodes();
  const ctx: ConsoleContext = { cfg, log, live, rules, models, loginCodes, nats: () => nats };
  const hub = new EventHub(live);

  const app = Fastify({
    // Request lines are info: the console logs warnings and errors only, and never a login token from a URL.
    loggerInstance: log.child({ component: "http" }, { level: "warn", serializers: { req: redactedRequest } }) as unknown as FastifyBaseLogger,
    bodyLimit: 64 * 1024,
  }) as unknown as FastifyInstance;
  // Order matters: the application-wide hooks and error handler first, so every route gets them.
  await app.register(authPlugin, ctx);
  await app.register(errorPlugin, ctx);
  await app.register(staticRoutes, { assets });
  await app.register(statusRoutes, ctx);
  await app.register(verdictRoutes, ctx);
  await app.register(ruleRoutes, ctx);
  await app.register(phaseRoutes, ctx);
  await app.register(modelRoutes, ctx);
  await app.register(metricsRoutes, { live, hub });
  await app.register(eventRoutes, { hub });

  live.start(opts.nats);
  let address: string;
  try {
    address = await app.listen({ host: cfg.host, port: cfg.port });
  } catch (err) {
    hub.close();
    live.stop();
    rules.close();
    throw Object.assign(new Error(`console: cannot listen on ${cfg.host}:${cfg.port}: ${(err as Error).message}`), { code: "VIGIL_ERR_LISTEN" });
  }
  live.metricsPort = (app.server.address() as AddressInfo).port;
  log.info({ url: address, rules: rules.address, token: cfg.token ? "required" : "none" }, "console listening");
  // A fresh single-use link, not the token, is what goes into the log (like Jupyter's, but spent on first use).
  if (cfg.token) log.info({ url: `${address}/?login=${loginCodes.mint(LOGIN_LINK_TTL_S).code}`, validS: LOGIN_LINK_TTL_S }, "console login link (works once)");
  return {
    app,
    live,
    rules,
    url: address,
    attachBus(nc) {
      nats = nc;
      live.attachBus(nc);
    },
    async close() {
      live.stop();
      hub.close();
      await app.close();
      rules.close();
    },
  };
}
