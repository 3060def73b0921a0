import { readFileSync } from "node:fs";
import { userInfo, hostname } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { controlSocket } from "@vigil/lifecycle";
import {
  AddRuleRequest,
  ControlClient,
  DeleteRuleRequest,
  EndWarmupRequest,
  ExtendRuleRequest,
  GetStatusRequest,
  ListRulesRequest,
  ListVerdictsRequest,
  MarkFalseAlarmRequest,
  WatchEventsRequest,
  type ControlClient as ControlClientType,
} from "@vigil/proto";

/** Requests are completed with defaults before encoding: callers may pass partial messages. */
const REQUEST_TYPES: Record<string, { fromPartial(o: never): unknown }> = {
  listRules: ListRulesRequest,
  addRule: AddRuleRequest,
  deleteRule: DeleteRuleRequest,
  extendRule: ExtendRuleRequest,
  listVerdicts: ListVerdictsRequest,
  markFalseAlarm: MarkFalseAlarmRequest,
  getStatus: GetStatusRequest,
  endWarmup: EndWarmupRequest,
  watchEvents: WatchEventsRequest,
};

export interface ClientOptions {
  /** Unix socket path. */
  socket?: string;
  /** host:port */
  addr?: string;
  token?: string;
  tls?: { ca?: string; cert?: string; key?: string };
  deadlineMs?: number;
}

/** $VIGIL_CONTROL_SOCKET, else control.sock in $VIGIL_STATE_DIR, else an install's /run/vigil/control.sock. */
export function defaultSocket(): string {
  return controlSocket();
}

/**
 * Where to connect: the explicit socket or address, else the default socket.
 * Never TCP unless asked: a socket this user may not open must fail, not be
 * bypassed over an unauthenticated port.
 */
export function resolveTarget(opts: ClientOptions): string {
  if (opts.socket) return `unix:${opts.socket}`;
  if (opts.addr) return opts.addr;
  return `unix:${defaultSocket()}`;
}

type Unary<Req, Res> = (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall;

/** A small promise wrapper over the generated client, adding the token and the caller's name. */
export class ControlApi {
  readonly raw: ControlClientType;
  readonly target: string;
  private readonly deadlineMs: number;
  private readonly token?: string;

  constructor(opts: ClientOptions = {}) {
    this.target = resolveTarget(opts);
    this.deadlineMs = opts.deadlineMs ?? 10_000;
    this.token = opts.token;
    let creds = grpc.credentials.createInsecure();
    if (opts.tls && !this.target.startsWith("unix:"))
      creds = grpc.credentials.createSsl(
        opts.tls.ca ? readFileSync(opts.tls.ca) : null,
        opts.tls.key ? readFileSync(opts.tls.key) : null,
        opts.tls.cert ? readFileSync(opts.tls.cert) : null,
      );
    this.raw = new ControlClient(this.target, creds);
  }

  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token) md.set("authorization", `Bearer ${this.token}`);
    let user = "unknown";
    try {
      user = userInfo().username;
    } catch {
      /* no passwd entry */
    }
    md.set("x-vigil-user", `${user}@${hostname()}`);
    return md;
  }

  call<Req, Res>(method: keyof ControlClientType, req: Req): Promise<Res> {
    const fn = (this.raw[method] as unknown as Unary<Req, Res>).bind(this.raw);
    const full = (REQUEST_TYPES[method as string]?.fromPartial(req as never) ?? req) as Req;
    return new Promise((resolve, reject) => {
      fn(full, this.metadata(), { deadline: Date.now() + this.deadlineMs }, (err, res) => (err ? reject(Object.assign(err, { target: this.target })) : resolve(res)));
    });
  }

  close(): void {
    this.raw.close();
  }
}
