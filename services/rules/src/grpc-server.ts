import { existsSync, readFileSync, chmodSync, unlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { timingSafeEqual } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "@vigil/lifecycle";
import { ControlService, Event, type ControlServer } from "@vigil/proto";
import { InvalidArgumentError, NotFoundError } from "./errors.js";
import { LockoutError, peerAddress } from "./lockout.js";
import { restrictSocket } from "./socket-access.js";
import type { RulesService } from "./service.js";

export interface GrpcOptions {
  host: string;
  /** TCP port (0: any); absent: no TCP listener. */
  port?: number;
  /** Unix socket path; empty = none. */
  socket?: string;
  /** The socket's group; default `vigil` when it exists. */
  socketGroup?: string;
  token?: string;
  tls?: { cert: string; key: string; clientCa?: string };
  logger?: Logger;
}

export interface GrpcHandle {
  server: grpc.Server;
  /** The TCP port, 0 without TCP. */
  port: number;
  /** host:port, "" without TCP. */
  address: string;
  socket?: string;
  health: HealthImplementation;
  close(): Promise<void>;
}

const SERVICE_NAME = "vigil.v1.Control";

function protoDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = resolve(here, "../../../proto");
  return existsSync(join(dir, "vigil/v1/control.proto")) ? dir : null;
}

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof InvalidArgumentError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof LockoutError) return { code: grpc.status.FAILED_PRECONDITION, details: `${err.code}: ${err.message}` };
  if (err instanceof NotFoundError) return { code: grpc.status.NOT_FOUND, details: err.message };
  return { code: grpc.status.INTERNAL, details: (err as Error).message ?? String(err) };
}

function tokenMatches(expected: string, header: string | undefined): boolean {
  if (!header) return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The audit trail's author: the connection, which the server knows, then the user the client
 * names in x-vigil-user, which any caller can set, so it is kept only as that caller's claim.
 */
function who(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): string {
  const claim = String(call.metadata.get("x-vigil-user")[0] ?? "")
    .replace(/[\u0000-\u001f\u007f"]/g, "")
    .slice(0, 64);
  const peer = call.getPeer();
  return `via ${peer || "unix socket"}${claim ? ` (claims user "${claim}")` : ""}`;
}

/**
 * Serves vigil.v1.Control, the standard health service and server reflection
 * on a unix socket (mode 0660, group vigil-control) and, when a port is given, a TCP
 * address. With a token
 * configured every Control call must carry `authorization: Bearer <token>`;
 * with TLS and a client CA, TCP clients must present a certificate it signed.
 */
/** The caller's own sessions, which its rule must not cut off: the TCP peer, and the source a front end relays. */
function sessionsOf(call: grpc.ServerUnaryCall<unknown, unknown>, sessionSource: string | undefined): string[] {
  const sessions = [peerAddress(call.getPeer())].filter((x): x is string => !!x);
  if (sessionSource) {
    const relayed = peerAddress(`${sessionSource}:0`) ?? peerAddress(`[${sessionSource}]:0`);
    if (!relayed) throw new InvalidArgumentError("session_source", `"${sessionSource.slice(0, 64)}" is not an IPv4 or IPv6 address`);
    sessions.push(relayed);
  }
  return sessions;
}

export async function startGrpcServer(svc: RulesService, opts: GrpcOptions): Promise<GrpcHandle> {
  const log = opts.logger;
  const server = new grpc.Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });

  const authorize = (md: grpc.Metadata): boolean => !opts.token || tokenMatches(opts.token, md.get("authorization")[0] as string | undefined);
  const denied = { code: grpc.status.UNAUTHENTICATED, details: "missing or invalid credentials (authorization: Bearer <token>)" };

  function unary<Req, Res>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      if (!authorize(call.metadata)) return callback(denied);
      Promise.resolve()
        .then(() => fn(call.request, call))
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            if (!(err instanceof InvalidArgumentError) && !(err instanceof NotFoundError) && !(err instanceof LockoutError)) log?.error({ err }, "control call failed");
            callback(toStatus(err));
          },
        );
    };
  }

  const impl: ControlServer = {
    listRules: unary(async (req) => {
      await svc.refreshCounters();
      return { rules: svc.listRules(req) };
    }),
    addRule: unary((req, call) => svc.addRule(req.rule!, req.ttlS, who(call), false, { sessions: sessionsOf(call, req.sessionSource), force: !!req.force })),
    extendRule: unary((req, call) => svc.extendRule({ id: req.id, ttlS: req.ttlS, by: who(call), sessions: sessionsOf(call, req.sessionSource), force: !!req.force })),
    deleteRule: unary(async (req, call) => {
      if (!req.id) throw new InvalidArgumentError("id", "is required");
      return { deleted: await svc.deleteRule(req.id, who(call)) };
    }),
    listVerdicts: unary((req) => ({ verdicts: svc.listVerdicts(req) })),
    markFalseAlarm: unary(async (req, call) => {
      const res = await svc.markFalseAlarm(req.verdictId, req.allowTtlS, req.comment, who(call));
      return { removedRuleIds: res.removed, allowRuleId: res.allowRuleId };
    }),
    getStatus: unary(() => svc.status()),
    endWarmup: unary((_req, call) => {
      if (!svc.warmup.endNow(Date.now() / 1000, who(call))) throw new NotFoundError(svc.config.warmup > 0 ? "no warm-up in progress: blocking has started" : "no warm-up: rules.warmup is 0");
      return svc.status();
    }),
    watchEvents: (call) => {
      if (!authorize(call.metadata)) {
        call.emit("error", denied);
        return;
      }
      const both = !call.request.verdicts && !call.request.rules;
      // A watcher that stops reading must not make the service buffer without end.
      const send = (ev: Event) => {
        if (call.writableLength > 10_000) {
          stop();
          call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details: "watcher too slow: more than 10000 events unread" });
          return;
        }
        call.write(ev);
      };
      const onVerdict = (verdict: Event["verdict"]) => send(Event.fromPartial({ verdict }));
      const onRule = (rule: Event["rule"]) => send(Event.fromPartial({ rule }));
      if (both || call.request.verdicts) svc.on("verdict", onVerdict);
      if (both || call.request.rules) svc.on("rule", onRule);
      const stop = () => {
        svc.off("verdict", onVerdict);
        svc.off("rule", onRule);
      };
      call.on("cancelled", stop);
      call.on("close", stop);
      call.on("error", stop);
    },
  };
  server.addService(ControlService, impl as unknown as grpc.UntypedServiceImplementation);

  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);

  const dir = protoDir();
  if (dir) {
    const pkg = protoLoader.loadSync(join(dir, "vigil/v1/control.proto"), { includeDirs: [dir] });
    new ReflectionService(pkg).addToServer(server);
  } else log?.warn("proto sources not found; server reflection disabled");

  const bind = (addr: string, creds: grpc.ServerCredentials) =>
    new Promise<number>((res, rej) =>
      server.bindAsync(addr, creds, (err, port) =>
        err ? rej(Object.assign(new Error(`gRPC: cannot listen on ${addr}: ${err.message}`), { code: "VIGIL_ERR_LISTEN" })) : res(port),
      ),
    );

  let tcpCreds = grpc.ServerCredentials.createInsecure();
  if (opts.tls) {
    const ca = opts.tls.clientCa ? readFileSync(opts.tls.clientCa) : null;
    tcpCreds = grpc.ServerCredentials.createSsl(ca, [{ private_key: readFileSync(opts.tls.key), cert_chain: readFileSync(opts.tls.cert) }], !!ca);
  }
  const hostPart = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const port = opts.port === undefined ? 0 : await bind(`${hostPart}:${opts.port}`, tcpCreds);
  const address = opts.port === undefined ? "" : `${hostPart}:${port}`;
  if (opts.socket) {
    if (existsSync(opts.socket)) unlinkSync(opts.socket); // a stale socket from a crash
    await bind(`unix:${opts.socket}`, grpc.ServerCredentials.createInsecure());
    restrictSocket(opts.socket, opts.socketGroup);
  }
  log?.info({ address: address || null, socket: opts.socket || null, tls: !!opts.tls, token: !!opts.token }, "control API listening");
  return {
    server,
    port,
    address,
    socket: opts.socket,
    health,
    close: () =>
      new Promise<void>((res) => {
        health.setStatus("", "NOT_SERVING");
        server.tryShutdown(() => res());
        setTimeout(() => {
          server.forceShutdown();
          res();
        }, 2000).unref();
      }),
  };
}
