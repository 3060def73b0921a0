import { credentials, Metadata, status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import {
  ControlClient,
  type AddRuleRequest,
  type ExtendRuleRequest,
  type ListRulesRequest,
  type ListRulesResponse,
  type ListVerdictsRequest,
  type ListVerdictsResponse,
  type MarkFalseAlarmRequest,
  type MarkFalseAlarmResponse,
  type Rule,
  type Status,
} from "@vigil/proto";
import { defaultControlSocket } from "./config.js";

/** A failed call to the rules service, with the HTTP status the console answers with. */
export class RulesApiError extends Error {
  readonly code: string;
  /** A lockout refusal that `force` may override (the operator confirms it); false when it may not. */
  readonly forceable?: boolean;
  constructor(
    message: string,
    readonly httpStatus: number,
    readonly grpcCode: number,
    details = "",
  ) {
    super(message);
    this.code = httpStatus === 503 ? "VIGIL_ERR_RULES_UNAVAILABLE" : "VIGIL_ERR_RULES_API";
    // The rules service names a lockout in the details ("VIGIL_ERR_LOCKOUT: rule.src_cidr: ..."): passed on, so the page can ask.
    if (grpcCode === grpcStatus.FAILED_PRECONDITION && details.startsWith("VIGIL_ERR_LOCKOUT:")) {
      this.code = "VIGIL_ERR_LOCKOUT";
      this.forceable = /set force/.test(details);
    }
  }
}

const HTTP_OF_GRPC: Record<number, number> = {
  [grpcStatus.INVALID_ARGUMENT]: 400,
  [grpcStatus.OUT_OF_RANGE]: 400,
  [grpcStatus.FAILED_PRECONDITION]: 409,
  [grpcStatus.ALREADY_EXISTS]: 409,
  [grpcStatus.NOT_FOUND]: 404,
  [grpcStatus.PERMISSION_DENIED]: 403,
  [grpcStatus.UNAUTHENTICATED]: 401,
  [grpcStatus.UNAVAILABLE]: 503,
  [grpcStatus.DEADLINE_EXCEEDED]: 504,
  [grpcStatus.UNIMPLEMENTED]: 501,
};

/** The rules service's address: configured, else its unix socket; never a silent fallback to TCP. */
export function resolveRulesAddress(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return configured ?? `unix:${defaultControlSocket(env)}`;
}

type Unary<Req, Res> = (req: Req, md: Metadata, opts: { deadline: Date }, cb: (err: ServiceError | null, res: Res) => void) => unknown;

/** Promise wrapper over the generated grpc-js client, each call bounded by a deadline. */
export class RulesClient {
  private readonly client: ControlClient;

  constructor(
    readonly address: string,
    private readonly timeoutMs: number,
    /** The rules service's token, when it requires one. */
    private readonly token?: string,
  ) {
    this.client = new ControlClient(address, credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      // Reconnect quickly when the rules service restarts under `vigil up`.
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 2000,
    });
  }

  /** `user`: who asked, for the rule's audit trail (the rules service records it as this client's claim). */
  private call<Req, Res>(name: string, fn: Unary<Req, Res>, req: Req, user?: string): Promise<Res> {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + this.timeoutMs);
      const md = new Metadata();
      if (this.token) md.set("authorization", `Bearer ${this.token}`);
      if (user) md.set("x-vigil-user", user);
      fn.call(this.client, req, md, { deadline }, (err, res) => {
        if (!err) return resolve(res);
        const http = HTTP_OF_GRPC[err.code] ?? 502;
        const what = http === 503 || http === 504 ? `rules service at ${this.address} unreachable` : "rules service refused";
        reject(new RulesApiError(`${name}: ${what}: ${err.details || err.message}`, http, err.code, err.details ?? ""));
      });
    });
  }

  listRules(req: Partial<ListRulesRequest> = {}): Promise<ListRulesResponse> {
    return this.call("ListRules", this.client.listRules as unknown as Unary<ListRulesRequest, ListRulesResponse>, {
      origin: 0, action: 0, address: "", limit: 0, ...req,
    });
  }

  addRule(req: AddRuleRequest, user?: string): Promise<Rule> {
    return this.call("AddRule", this.client.addRule as unknown as Unary<AddRuleRequest, Rule>, req, user);
  }

  /** Keeps an active rule in force `ttlS` from now, whatever its origin; `user`: who asked. */
  extendRule(req: ExtendRuleRequest, user?: string): Promise<Rule> {
    return this.call("ExtendRule", this.client.extendRule as unknown as Unary<ExtendRuleRequest, Rule>, req, user);
  }

  deleteRule(id: number): Promise<{ deleted: boolean }> {
    return this.call("DeleteRule", this.client.deleteRule as unknown as Unary<{ id: number }, { deleted: boolean }>, { id });
  }

  listVerdicts(req: Partial<ListVerdictsRequest> = {}): Promise<ListVerdictsResponse> {
    return this.call("ListVerdicts", this.client.listVerdicts as unknown as Unary<ListVerdictsRequest, ListVerdictsResponse>, {
      detector: "", address: "", since: 0, limit: 0, ...req,
    });
  }

  markFalseAlarm(req: MarkFalseAlarmRequest): Promise<MarkFalseAlarmResponse> {
    return this.call("MarkFalseAlarm", this.client.markFalseAlarm as unknown as Unary<MarkFalseAlarmRequest, MarkFalseAlarmResponse>, req);
  }

  getStatus(): Promise<Status> {
    return this.call("GetStatus", this.client.getStatus as unknown as Unary<object, Status>, {});
  }

  /** Ends the warm-up of a new host now; `user`: who asked, for the rules service's record. */
  endWarmup(user?: string): Promise<Status> {
    return this.call("EndWarmup", this.client.endWarmup as unknown as Unary<object, Status>, {}, user);
  }

  close(): void {
    this.client.close();
  }
}
