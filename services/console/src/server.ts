import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import { Action, Direction, Origin, Rule, VerdictRecord } from "@vigil/proto";
import { authenticate, CSRF_HEADER, hostAllowed, isLoopback, isWildcard, sessionCookie } from "./auth.js";
import { stateDir, type ConsoleConfig } from "./config.js";
import { LiveState, type LiveVerdict } from "./live.js";
import { loginPage } from "./login-page.js";
import { ModelSource } from "./models.js";
import { RulesApiError, RulesClient, resolveRulesAddress } from "./rules-client.js";
import { loadAssets, type Asset } from "./static.js";
import { createRegistry, prom } from "@vigil/metrics";

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

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

function httpError(status: number, code: string, message: string): Error & { statusCode: number; code: string } {
  return Object.assign(new Error(message), { statusCode: status, code });
}

const ACTIONS: Record<string, Action> = { drop: Action.ACTION_DROP, accept: Action.ACTION_ACCEPT };
const DIRECTIONS: Record<string, Direction> = {
  both: Direction.DIRECTION_BOTH,
  ingress: Direction.DIRECTION_INGRESS,
  egress: Direction.DIRECTION_EGRESS,
};

interface RuleBody {
  srcCidr: string;
  dstCidr?: string;
  protocol?: number;
  dportMin?: number;
  dportMax?: number;
  action?: "drop" | "accept";
  direction?: "both" | "ingress" | "egress";
  reason: string;
  ttlS?: number;
}

export async function createConsoleServer(opts: ConsoleOptions): Promise<ConsoleServer> {
  const cfg = opts.config;
  const log = opts.logger;
  const env = opts.env ?? process.env;
  const webDir = opts.webDir ?? DEFAULT_WEB_DIR;
  if (!existsSync(join(webDir, "index.html")))
    throw Object.assign(new Error(`console: the front end is not built (${join(webDir, "index.html")} missing): run node scripts/build.mjs`), {
      code: "VIGIL_ERR_CONSOLE_BUILD",
    });
  const assets = loadAssets(webDir);
  if (!cfg.token && !isLoopback(cfg.host))
    log.warn({ host: cfg.host }, "console listens beyond loopback without a token: anyone who reaches it can change rules");

  const rules = new RulesClient(resolveRulesAddress(cfg.rules.address, env), cfg.rules.timeoutMs);
  const live = new LiveState(cfg, log, rules);
  let nats = opts.nats;
  const models = new ModelSource({
    nats: () => nats,
    stateDir: stateDir(env),
    dirs: { pst: cfg.models.pstDir, som: cfg.models.somDir },
    requestTimeoutMs: cfg.models.requestTimeoutMs,
  });

  const app = Fastify({
    // Request lines are info: the console logs warnings and errors only.
    loggerInstance: log.child({ component: "http" }, { level: "warn" }) as unknown as FastifyBaseLogger,
    bodyLimit: 64 * 1024,
  }) as unknown as FastifyInstance;
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.addHook("onRequest", async (req, reply) => {
    reply.headers(SECURITY_HEADERS);
    const checkHost = !isWildcard(cfg.host) || cfg.allowedHosts.length > 0;
    if (checkHost && !hostAllowed(req.headers.host, cfg.host, cfg.allowedHosts)) {
      reply.code(421).type("text/plain").send(`console: Host "${req.headers.host ?? ""}" is not this console's address (add it to console.allowedHosts)\n`);
      return reply;
    }
    const url = new URL(req.url, "http://console.invalid");
    if (req.method === "POST" && url.pathname === "/login") return;
    const result = authenticate(cfg.token, { headers: req.headers, query: url.searchParams });
    if (!result.ok) {
      const wantsHtml = req.method === "GET" && !url.pathname.startsWith("/api/") && !url.pathname.startsWith("/assets/");
      reply.code(401).header("cache-control", "no-store");
      if (wantsHtml) reply.type("text/html; charset=utf-8").send(loginPage(url.searchParams.has("token") ? "That token is not right." : null));
      else reply.header("www-authenticate", 'Bearer realm="vigil-console"').send({ error: "a token is required", code: "VIGIL_ERR_UNAUTHORIZED" });
      return reply;
    }
    if (result.via === "query" && cfg.token) {
      // Trade the token in the URL for the session cookie, and drop it from the address bar and history.
      url.searchParams.delete("token");
      reply.header("set-cookie", sessionCookie(cfg.token, false)).redirect(url.pathname + url.search, 303);
      return reply;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      if (req.headers[CSRF_HEADER] !== "1")
        return reply.code(403).send({ error: `mutating requests need the ${CSRF_HEADER}: 1 header`, code: "VIGIL_ERR_CSRF" });
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, _req, reply) => {
    if (err instanceof RulesApiError) return reply.code(err.httpStatus).send({ error: err.message, code: err.code });
    const status = err.statusCode ?? 500;
    if (status >= 500) log.error({ err }, "request failed");
    return reply.code(status).send({ error: err.message, code: err.code ?? (err.validation ? "VIGIL_ERR_BAD_REQUEST" : "VIGIL_ERR_INTERNAL") });
  });

  app.post<{ Body: { token?: string } }>("/login", async (req, reply) => {
    const given = typeof req.body?.token === "string" ? req.body.token : "";
    if (!cfg.token) return reply.redirect("/", 303);
    if (authenticate(cfg.token, { headers: {}, query: new URLSearchParams({ token: given }) }).ok)
      return reply.header("set-cookie", sessionCookie(cfg.token, false)).redirect("/", 303);
    return reply.code(401).type("text/html; charset=utf-8").send(loginPage("That token is not right."));
  });

  const sendAsset = (req: FastifyRequest, reply: FastifyReply, asset: Asset) => {
    reply.header("etag", asset.etag).header("cache-control", asset.immutable ? "public, max-age=31536000, immutable" : "no-cache");
    if (req.headers["if-none-match"] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };
  app.get("/", (req, reply) => sendAsset(req, reply, assets.get("/index.html")!));
  app.get("/*", (req, reply) => {
    const path = new URL(req.url, "http://console.invalid").pathname;
    const asset = assets.get(path);
    if (!asset) return reply.code(404).send({ error: `no such file: ${path}`, code: "VIGIL_ERR_NOT_FOUND" });
    return sendAsset(req, reply, asset);
  });

  app.get("/healthz", async () => ({ ok: true, rules: live.rules.reachable, nats: !!nats && !nats.isClosed() }));

  app.get("/api/overview", async () => ({
    now: Date.now() / 1000,
    series: live.series,
    health: live.health(),
    rules: live.rules,
    nats: nats ? { connected: !nats.isClosed(), server: nats.getServer() } : { connected: false, server: null },
    counters: live.counters,
  }));

  const mergeVerdicts = async (q: { detector?: string; address?: string; limit?: number }) => {
    const byId = new Map<string, { verdict: Record<string, unknown>; outcome: string; ruleId: number; receivedAt: number }>();
    const keep = (v: LiveVerdict) => {
      const verdict = v.verdict as Record<string, unknown>;
      if (q.detector && verdict.detector !== q.detector) return;
      if (q.address && verdict.address !== q.address) return;
      byId.set(String(verdict.id), { verdict, outcome: "", ruleId: 0, receivedAt: v.receivedAt });
    };
    live.verdicts.forEach(keep);
    let rulesError: string | null = null;
    try {
      const res = await rules.listVerdicts({ detector: q.detector ?? "", address: q.address ?? "", limit: q.limit ?? 500 });
      for (const rec of res.verdicts) {
        const json = VerdictRecord.toJSON(rec) as { verdict?: Record<string, unknown>; outcome?: string; ruleId?: number; receivedAt?: number };
        if (!json.verdict) continue;
        byId.set(String(json.verdict.id), { verdict: json.verdict, outcome: json.outcome ?? "", ruleId: json.ruleId ?? 0, receivedAt: json.receivedAt ?? 0 });
      }
    } catch (err) {
      rulesError = (err as Error).message;
    }
    const list = [...byId.values()].sort((a, b) => b.receivedAt - a.receivedAt).slice(0, q.limit ?? 500);
    return { verdicts: list, rulesError };
  };

  app.get<{ Querystring: { detector?: string; address?: string; limit?: number } }>(
    "/api/verdicts",
    {
      schema: {
        querystring: {
          type: "object",
          properties: { detector: { type: "string", maxLength: 64 }, address: { type: "string", maxLength: 64 }, limit: { type: "integer", minimum: 1, maximum: 5000 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => mergeVerdicts(req.query),
  );

  app.get<{ Params: { id: string } }>("/api/verdicts/:id", async (req) => {
    const { verdicts } = await mergeVerdicts({ limit: 5000 });
    const found = verdicts.find((v) => v.verdict.id === req.params.id);
    if (!found) throw httpError(404, "VIGIL_ERR_NOT_FOUND", `no verdict ${req.params.id} in the rules service's history or this console's`);
    return found;
  });

  app.post<{ Params: { id: string }; Body: { comment?: string; allowTtlS?: number } }>(
    "/api/verdicts/:id/false-alarm",
    {
      schema: {
        body: {
          type: "object",
          properties: { comment: { type: "string", maxLength: 500 }, allowTtlS: { type: "integer", minimum: 0, maximum: 30 * 86400 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const res = await rules.markFalseAlarm({ verdictId: req.params.id, allowTtlS: req.body?.allowTtlS ?? 0, comment: req.body?.comment ?? "via console" });
      return { removedRuleIds: res.removedRuleIds, allowRuleId: res.allowRuleId };
    },
  );

  app.get("/api/rules", async () => {
    const res = await rules.listRules();
    return { now: Date.now() / 1000, rules: res.rules.map((r) => Rule.toJSON(r)) };
  });

  app.post<{ Body: RuleBody }>(
    "/api/rules",
    {
      schema: {
        body: {
          type: "object",
          required: ["srcCidr", "reason"],
          properties: {
            srcCidr: { type: "string", minLength: 1, maxLength: 64 },
            dstCidr: { type: "string", maxLength: 64 },
            protocol: { type: "integer", minimum: 0, maximum: 255 },
            dportMin: { type: "integer", minimum: 0, maximum: 65535 },
            dportMax: { type: "integer", minimum: 0, maximum: 65535 },
            action: { enum: ["drop", "accept"] },
            direction: { enum: ["both", "ingress", "egress"] },
            reason: { type: "string", minLength: 1, maxLength: 200 },
            ttlS: { type: "integer", minimum: 0, maximum: 365 * 86400 },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body;
      const rule = Rule.fromPartial({
        action: ACTIONS[b.action ?? "drop"],
        srcCidr: b.srcCidr.trim(),
        dstCidr: b.dstCidr?.trim() ?? "",
        protocol: b.protocol ?? 0,
        dportMin: b.dportMin ?? 0,
        dportMax: b.dportMax ?? b.dportMin ?? 0,
        direction: DIRECTIONS[b.direction ?? "both"],
        origin: Origin.ORIGIN_MANUAL,
        reason: b.reason,
        createdBy: "console",
      });
      return Rule.toJSON(await rules.addRule({ rule, ttlS: b.ttlS ?? 3600 }));
    },
  );

  app.post<{ Params: { id: string }; Body: { seconds: number } }>(
    "/api/rules/:id/extend",
    {
      schema: {
        params: { type: "object", properties: { id: { type: "string", pattern: "^[0-9]{1,16}$" } } },
        body: { type: "object", required: ["seconds"], properties: { seconds: { type: "integer", minimum: 1, maximum: 365 * 86400 } }, additionalProperties: false },
      },
    },
    async (req) => {
      const id = Number(req.params.id);
      const existing = (await rules.listRules()).rules.find((r) => r.id === id);
      if (!existing) throw httpError(404, "VIGIL_ERR_NOT_FOUND", `no active rule ${id}`);
      // The rules service derives the id from the match: adding the same match again re-arms its expiry.
      const remaining = existing.expiresAt > 0 ? Math.max(0, existing.expiresAt - Date.now() / 1000) : 0;
      const ttlS = Math.ceil(remaining + req.body.seconds);
      return Rule.toJSON(await rules.addRule({ rule: { ...existing, createdBy: existing.createdBy || "console" }, ttlS }));
    },
  );

  app.delete<{ Params: { id: string } }>(
    "/api/rules/:id",
    { schema: { params: { type: "object", properties: { id: { type: "string", pattern: "^[0-9]{1,16}$" } } } } },
    async (req) => {
      const res = await rules.deleteRule(Number(req.params.id));
      if (!res.deleted) throw httpError(404, "VIGIL_ERR_NOT_FOUND", `no rule ${req.params.id}`);
      return res;
    },
  );

  app.get("/api/scores", async () => ({ detectors: Object.fromEntries(live.scores) }));

  app.get<{ Params: { detector: string } }>("/api/models/:detector", async (req) => {
    const d = req.params.detector;
    if (d !== "pst" && d !== "som") throw httpError(404, "VIGIL_ERR_NOT_FOUND", `no model view for "${d}" (pst or som)`);
    try {
      const doc = await models.get(d);
      return d === "som" ? { ...doc, recent: live.bmus.slice(-50) } : doc;
    } catch (err) {
      const e = err as Error & { notFound?: boolean; code?: string };
      throw httpError(e.notFound ? 404 : 502, e.code ?? "VIGIL_ERR_MODEL", e.message);
    }
  });

  const sseClients = new Set<FastifyReply>();
  const registry = createRegistry("console", live.instance);
  const counter = (name: string, help: string, read: () => number) =>
    new prom.Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  counter("vigil_console_bus_messages_total", "Heartbeats, verdicts and score batches received", () => live.counters.messages);
  counter("vigil_console_decode_errors_total", "Bus messages that could not be decoded", () => live.counters.decodeErrors);
  counter("vigil_console_capture_scrape_errors_total", "Failed scrapes of capture instances' metrics", () => live.counters.scrapeErrors);
  counter("vigil_console_rules_status_errors_total", "Failed GetStatus polls of the rules service", () => live.counters.rulesErrors);
  new prom.Gauge({ name: "vigil_console_event_streams", help: "Browsers connected to the event stream", registers: [registry], collect() { this.set(sseClients.size); } });
  new prom.Gauge({ name: "vigil_console_rules_reachable", help: "1 while the rules service answers", registers: [registry], collect() { this.set(live.rules.reachable ? 1 : 0); } });
  // Behind the token like everything else: Prometheus sends it with `authorization: {credentials: TOKEN}`.
  app.get("/metrics", async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  app.get("/api/events", (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write("retry: 2000\n\n");
    sseClients.add(reply);
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    req.raw.on("close", () => {
      clearInterval(keepAlive);
      sseClients.delete(reply);
    });
  });
  const broadcast = (event: string, data: unknown) => {
    if (!sseClients.size) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of sseClients) {
      // A browser that stopped reading (a suspended laptop) is dropped rather than buffered without bound; EventSource reconnects.
      if (c.raw.writableLength > 1 << 20) {
        sseClients.delete(c);
        c.raw.destroy();
        continue;
      }
      c.raw.write(frame);
    }
  };
  // Scores can arrive by the thousand per second: batch them into one event every 250 ms.
  let pendingScores = new Map<string, unknown[]>();
  const scoreFlush = setInterval(() => {
    if (!pendingScores.size) return;
    broadcast("scores", Object.fromEntries(pendingScores));
    pendingScores = new Map();
  }, 250);
  scoreFlush.unref();
  live.on("tick", (t) => broadcast("tick", t));
  live.on("verdict", (v) => broadcast("verdict", v));
  live.on("rule", (r) => broadcast("rule", r));
  live.on("scores", ({ detector, points }: { detector: string; points: unknown[] }) => {
    const list = pendingScores.get(detector) ?? [];
    list.push(...points);
    pendingScores.set(detector, list.slice(-500));
  });

  live.start(opts.nats);
  let address: string;
  try {
    address = await app.listen({ host: cfg.host, port: cfg.port });
  } catch (err) {
    live.stop();
    rules.close();
    throw Object.assign(new Error(`console: cannot listen on ${cfg.host}:${cfg.port}: ${(err as Error).message}`), { code: "VIGIL_ERR_LISTEN" });
  }
  live.metricsPort = (app.server.address() as AddressInfo).port;
  log.info({ url: address, rules: rules.address, token: cfg.token ? "required" : "none" }, "console listening");
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
      clearInterval(scoreFlush);
      live.stop();
      for (const c of sseClients) c.raw.end();
      sseClients.clear();
      await app.close();
      rules.close();
    },
  };
}
