import * as grpc from "@grpc/grpc-js";
import { EXIT, parseCommandLine, UserError, type Command, type CommandOptions } from "@vigil/lifecycle";
import {
  Action,
  Direction,
  Event,
  ListRulesResponse,
  ListVerdictsResponse,
  MarkFalseAlarmResponse,
  Origin,
  Rule,
  Status,
  VerdictRecord,
  actionToJSON,
  directionToJSON,
  originToJSON,
  ruleEvent_KindToJSON,
  type AddRuleRequest,
  type DeleteRuleResponse,
  type ListRulesRequest,
  type ListVerdictsRequest,
} from "@vigil/proto";
import { ControlApi } from "./client.js";
import { PROTOCOLS, protocolName, protocolNumber } from "./model.js";

function usageError(message: string): UserError {
  return new UserError(message, "VIGIL_ERR_USAGE", EXIT.USAGE);
}

const CONNECTION_USAGE = `connection: [--socket PATH | --addr HOST:PORT] [--token TOKEN] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]
output:     --json   machine-readable output
exit codes: 0 ok, 1 failure (refused, not found), 2 usage or invalid argument, 69 service unavailable`;

const common = {
  json: { type: "boolean" },
  socket: { type: "string" },
  addr: { type: "string" },
  token: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies CommandOptions;

type Values = Record<string, string | boolean | undefined>;

/** The connection and output options every command takes, plus its own; operands allowed. */
function parse(args: string[], options: CommandOptions = {}): { values: Values; positionals: string[] } {
  const r = parseCommandLine(args, { ...common, ...options });
  return { values: r.values as Values, positionals: r.positionals };
}

function api(v: Values): ControlApi {
  const token = (v.token as string | undefined) ?? process.env.VIGIL_TOKEN;
  const tls = v["tls-ca"] || v["tls-cert"] ? { ca: v["tls-ca"] as string, cert: v["tls-cert"] as string, key: v["tls-key"] as string } : undefined;
  return new ControlApi({ socket: v.socket as string | undefined, addr: v.addr as string | undefined, token, tls });
}

/** "90" | "90s" | "10m" | "2h" | "1d" -> seconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw usageError(`${what}: "${text}" is not a duration (e.g. 90, 90s, 10m, 2h, 1d)`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s"];
}

function parseProtocol(text: string): number {
  const n = protocolNumber(text);
  if (n === null) throw usageError(`--proto: "${text}" is not a protocol name (${Object.keys(PROTOCOLS).join(", ")}) or number 0..255`);
  return n;
}

function parsePorts(text: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw usageError(`--port: "${text}" is not a port or range (e.g. 22 or 6000-6100)`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}


function when(ts: number): string {
  if (!ts) return "-";
  return new Date(ts * 1000).toISOString().replace(/\.\d+Z$/, "Z");
}

function left(expiresAt: number): string {
  if (!expiresAt) return "never";
  const s = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
  if (s >= 86400) return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${s}s`;
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

function out(text: string): void {
  process.stdout.write(text);
}

function json(value: unknown): void {
  out(JSON.stringify(value) + "\n");
}

function short(enumText: string, prefix: string): string {
  return enumText.replace(prefix, "").toLowerCase();
}

function ruleRow(r: Rule): string[] {
  const ports = r.dportMin || r.dportMax ? (r.dportMin === r.dportMax ? String(r.dportMin) : `${r.dportMin}-${r.dportMax}`) : "*";
  return [
    String(r.id),
    short(actionToJSON(r.action), "ACTION_"),
    r.srcCidr,
    r.dstCidr || "*",
    r.protocol ? protocolName(r.protocol) : "*",
    ports,
    short(directionToJSON(r.direction), "DIRECTION_"),
    short(originToJSON(r.origin), "ORIGIN_"),
    left(r.expiresAt),
    r.enforced ? "yes" : "no",
    r.hits ? String(r.hits) : "-",
    r.reason,
  ];
}

const RULE_HEADERS = ["ID", "ACTION", "SOURCE", "DEST", "PROTO", "PORTS", "DIR", "ORIGIN", "EXPIRES", "ENFORCED", "HITS", "REASON"];

/** Runs a command body; maps gRPC and usage errors to exit codes with one clear line. */
async function guarded(name: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(`vigil ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    const code = (err as grpc.ServiceError).code;
    const details = (err as grpc.ServiceError).details ?? (err as Error).message;
    if (code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) {
      const target = (err as { target?: string }).target;
      const why = String(details).replace(/\s*Resolution note:.*$/s, "").replace(/^No connection established\. Last error: (Error: )?/, "").replace(/\.$/, "");
      process.stderr.write(`vigil ${name}: cannot reach the rules service${target ? ` at ${target}` : ""}: ${why} (is it running? \`vigil up\` starts it)\n`);
      return EXIT.UNAVAILABLE;
    }
    if (code === grpc.status.INVALID_ARGUMENT) {
      process.stderr.write(`vigil ${name}: invalid argument: ${details}\n`);
      return EXIT.USAGE;
    }
    if (code === grpc.status.UNAUTHENTICATED || code === grpc.status.PERMISSION_DENIED) {
      process.stderr.write(`vigil ${name}: refused: ${details}\n`);
      return EXIT.FAILURE;
    }
    if (code === grpc.status.FAILED_PRECONDITION) {
      process.stderr.write(`vigil ${name}: refused: ${details}\n`);
      return EXIT.FAILURE;
    }
    if (code === grpc.status.NOT_FOUND) {
      process.stderr.write(`vigil ${name}: not found: ${details}\n`);
      return EXIT.FAILURE;
    }
    process.stderr.write(`vigil ${name}: ${details}\n`);
    return EXIT.FAILURE;
  }
}

async function withApi<T>(v: Values, fn: (c: ControlApi) => Promise<T>): Promise<T> {
  const c = api(v);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const statusCommand: Command = {
  name: "status",
  summary: "show the rules service: enforcer, rule counts, the allowlist, detectors and their heartbeats",
  usage: `usage: vigil status [--json]\n${CONNECTION_USAGE}`,
  run: (args) =>
    guarded("status", async () => {
      const { values, positionals } = parse(args);
      if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`);
      const s = await withApi(values, (c) => c.call<object, Status>("getStatus", {}));
      if (values.json) {
        json(Status.toJSON(s));
        return EXIT.OK;
      }
      const origins = Object.entries(s.rulesByOrigin).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
      out(
        table(
          ["FIELD", "VALUE"],
          [
            ["enforcer", s.enforcer + (s.dryRun ? " (dry run: nothing is enforced)" : "")],
            ["detail", s.enforcerDetail],
            ["active rules", `${s.activeRules} (${origins})`],
            ["version", s.version],
            ["started", when(s.startedAt)],
          ],
        ),
      );
      out("\n");
      out(s.allowlist.length ? table(["NEVER BLOCKED AUTOMATICALLY", "WHY"], s.allowlist.map((e) => [e.cidr, e.why])) : "allowlist: empty\n");
      out("\n");
      const now = Date.now() / 1000;
      out(
        s.detectors.length
          ? table(
              ["SERVICE", "INSTANCE", "VERSION", "LAST HEARTBEAT", "SHARDS"],
              s.detectors.map((d) => [d.service, d.instance, d.version, `${Math.max(0, now - d.lastHeartbeat).toFixed(1)}s ago`, d.shards.join(",") || "-"]),
            )
          : "no other services seen on the bus\n",
      );
      return EXIT.OK;
    }),
};

const ORIGINS: Record<string, Origin> = { detector: Origin.ORIGIN_DETECTOR, manual: Origin.ORIGIN_MANUAL, feedback: Origin.ORIGIN_FEEDBACK, config: Origin.ORIGIN_CONFIG };
const DIRECTIONS: Record<string, Direction> = { in: Direction.DIRECTION_INGRESS, ingress: Direction.DIRECTION_INGRESS, out: Direction.DIRECTION_EGRESS, egress: Direction.DIRECTION_EGRESS, both: Direction.DIRECTION_BOTH };

const rulesUsage = `usage: vigil rules ls [--origin detector|manual|feedback|config] [--action drop|accept] [--address ADDR] [--limit N] [--json]
       vigil rules add block|allow CIDR [--dst CIDR] [--proto tcp|udp|icmp|N] [--port P|P-Q]
                       [--direction in|out|both] [--ttl 10m] [--priority N] [--reason TEXT] [--force] [--json]
         a block that covers loopback, this host's addresses, its gateway or DNS servers, the
         allowlist or your own session is refused unless --force; 0.0.0.0/0 and ::/0 always are
       vigil rules rm ID... [--json]
${CONNECTION_USAGE}`;

async function rulesLs(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { origin: { type: "string" }, action: { type: "string" }, address: { type: "string" }, limit: { type: "string" } });
  if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`);
  const req: ListRulesRequest = { origin: Origin.ORIGIN_UNSPECIFIED, action: Action.ACTION_UNSPECIFIED, address: (values.address as string) ?? "", limit: 0 };
  if (values.origin) {
    const o = ORIGINS[values.origin as string];
    if (o === undefined) throw usageError(`--origin: "${values.origin}" is not one of ${Object.keys(ORIGINS).join(", ")}`);
    req.origin = o;
  }
  if (values.action) {
    const a = { drop: Action.ACTION_DROP, block: Action.ACTION_DROP, accept: Action.ACTION_ACCEPT, allow: Action.ACTION_ACCEPT }[values.action as string];
    if (a === undefined) throw usageError(`--action: "${values.action}" is not drop or accept`);
    req.action = a;
  }
  if (values.limit) {
    if (!/^\d+$/.test(values.limit as string)) throw usageError(`--limit: "${values.limit}" is not a number`);
    req.limit = Number(values.limit);
  }
  const res = await withApi(values, (c) => c.call<ListRulesRequest, ListRulesResponse>("listRules", req));
  if (values.json) json(ListRulesResponse.toJSON(res));
  else out(res.rules.length ? table(RULE_HEADERS, res.rules.map(ruleRow)) : "no active rules\n");
  return EXIT.OK;
}

async function rulesAdd(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    dst: { type: "string" },
    proto: { type: "string" },
    port: { type: "string" },
    direction: { type: "string" },
    ttl: { type: "string" },
    priority: { type: "string" },
    reason: { type: "string" },
    force: { type: "boolean" },
  });
  const [verb, cidr, ...extra] = positionals;
  if (!verb || !cidr) throw usageError("expected block|allow and a CIDR");
  if (extra.length) throw usageError(`unexpected argument "${extra[0]}"`);
  const action = { block: Action.ACTION_DROP, drop: Action.ACTION_DROP, allow: Action.ACTION_ACCEPT, accept: Action.ACTION_ACCEPT }[verb];
  if (action === undefined) throw usageError(`"${verb}" is not block or allow`);
  const rule = Rule.fromPartial({ action, srcCidr: cidr, dstCidr: (values.dst as string) ?? "", origin: Origin.ORIGIN_MANUAL, reason: (values.reason as string) ?? "" });
  if (values.proto) rule.protocol = parseProtocol(values.proto as string);
  if (values.port) [rule.dportMin, rule.dportMax] = parsePorts(values.port as string);
  if (values.direction) {
    const d = DIRECTIONS[values.direction as string];
    if (d === undefined) throw usageError(`--direction: "${values.direction}" is not in, out or both`);
    rule.direction = d;
  }
  if (values.priority) {
    if (!/^\d+$/.test(values.priority as string)) throw usageError(`--priority: "${values.priority}" is not a number`);
    rule.priority = Number(values.priority);
  }
  const ttlS = values.ttl ? parseDuration(values.ttl as string, "--ttl") : 0;
  const res = await withApi(values, (c) => c.call<AddRuleRequest, Rule>("addRule", { rule, ttlS, force: !!values.force, sessionSource: "" }));
  if (values.json) json(Rule.toJSON(res));
  else out(table(RULE_HEADERS, [ruleRow(res)]));
  return EXIT.OK;
}

async function rulesRm(args: string[]): Promise<number> {
  const { values, positionals } = parse(args);
  if (!positionals.length) throw usageError("expected one or more rule ids");
  for (const p of positionals) if (!/^\d+$/.test(p)) throw usageError(`"${p}" is not a rule id`);
  const results = await withApi(values, async (c) => {
    const r: Array<{ id: number; deleted: boolean }> = [];
    for (const p of positionals) r.push({ id: Number(p), deleted: (await c.call<{ id: number }, DeleteRuleResponse>("deleteRule", { id: Number(p) })).deleted });
    return r;
  });
  if (values.json) json({ results });
  else for (const r of results) out(r.deleted ? `removed rule ${r.id}\n` : `no active rule ${r.id}\n`);
  return results.every((r) => r.deleted) ? EXIT.OK : EXIT.FAILURE;
}

const rulesCommand: Command = {
  name: "rules",
  summary: "list, add and remove firewall rules (ls | add | rm)",
  usage: rulesUsage,
  run: (args) =>
    guarded("rules", async () => {
      const [verb, ...rest] = args;
      if (verb === "ls" || verb === "list") return rulesLs(rest);
      if (verb === "add") return rulesAdd(rest);
      if (verb === "rm" || verb === "remove" || verb === "del") return rulesRm(rest);
      throw usageError(verb ? `unknown subcommand "${verb}"; expected ls, add or rm` : "expected ls, add or rm");
    }),
};

function verdictRow(r: VerdictRecord): string[] {
  const v = r.verdict!;
  return [
    when(r.receivedAt),
    v.id,
    v.detector,
    v.aggregate ? "(aggregate)" : v.address,
    v.score.toFixed(3),
    v.label || "-",
    r.outcome,
    r.ruleId ? String(r.ruleId) : "-",
  ];
}

const VERDICT_HEADERS = ["RECEIVED", "VERDICT", "DETECTOR", "SOURCE", "SCORE", "LABEL", "OUTCOME", "RULE"];

const verdictsCommand: Command = {
  name: "verdicts",
  summary: "list recent verdicts and what was decided",
  usage: `usage: vigil verdicts [--detector NAME] [--address ADDR] [--since 10m] [--limit N] [--json]\n${CONNECTION_USAGE}`,
  run: (args) =>
    guarded("verdicts", async () => {
      const { values, positionals } = parse(args, { detector: { type: "string" }, address: { type: "string" }, since: { type: "string" }, limit: { type: "string" } });
      if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`);
      if (values.limit && !/^\d+$/.test(values.limit as string)) throw usageError(`--limit: "${values.limit}" is not a number`);
      const req: ListVerdictsRequest = {
        detector: (values.detector as string) ?? "",
        address: (values.address as string) ?? "",
        since: values.since ? Date.now() / 1000 - parseDuration(values.since as string, "--since") : 0,
        limit: values.limit ? Number(values.limit) : 50,
      };
      const res = await withApi(values, (c) => c.call<ListVerdictsRequest, ListVerdictsResponse>("listVerdicts", req));
      if (values.json) json(ListVerdictsResponse.toJSON(res));
      else out(res.verdicts.length ? table(VERDICT_HEADERS, res.verdicts.map(verdictRow)) : "no verdicts\n");
      return EXIT.OK;
    }),
};

const watchCommand: Command = {
  name: "watch",
  summary: "stream verdicts and rule changes as they happen",
  usage: `usage: vigil watch [--verdicts] [--rules] [--json]   (both when neither is given; Ctrl-C to stop)\n${CONNECTION_USAGE}`,
  run: (args) =>
    guarded("watch", async () => {
      const { values, positionals } = parse(args, { verdicts: { type: "boolean" }, rules: { type: "boolean" }, count: { type: "string" } });
      if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`);
      const max = values.count ? Number(values.count) : Infinity;
      const c = api(values);
      let seen = 0;
      return new Promise<number>((resolve) => {
        const stream = c.raw.watchEvents({ verdicts: !!values.verdicts, rules: !!values.rules }, c.metadata());
        const stop = () => stream.cancel();
        process.once("SIGINT", stop);
        stream.on("data", (e: Event) => {
          if (values.json) json(Event.toJSON(e));
          else if (e.verdict) out(`verdict  ${verdictRow(e.verdict).join("  ")}\n`);
          else if (e.rule?.rule) out(`rule     ${short(ruleEvent_KindToJSON(e.rule.kind), "KIND_")}  ${ruleRow(e.rule.rule).join("  ")}  by ${e.rule.by}\n`);
          if (++seen >= max) stream.cancel();
        });
        stream.on("error", (err: grpc.ServiceError) => {
          process.off("SIGINT", stop);
          c.close();
          if (err.code === grpc.status.CANCELLED) resolve(EXIT.OK);
          else guarded("watch", () => Promise.reject(err)).then(resolve);
        });
        stream.on("end", () => {
          process.off("SIGINT", stop);
          c.close();
          resolve(EXIT.OK);
        });
      });
    }),
};

const falseAlarmCommand: Command = {
  name: "false-alarm",
  summary: "mark a verdict as a false alarm: unblock, allow the source for a while, teach the detector",
  usage: `usage: vigil false-alarm VERDICT_ID [--allow-ttl 1d] [--comment TEXT] [--json]\n${CONNECTION_USAGE}`,
  run: (args) =>
    guarded("false-alarm", async () => {
      const { values, positionals } = parse(args, { "allow-ttl": { type: "string" }, comment: { type: "string" } });
      if (positionals.length !== 1) throw usageError("expected exactly one verdict id");
      const allowTtlS = values["allow-ttl"] ? parseDuration(values["allow-ttl"] as string, "--allow-ttl") : 0;
      const res = await withApi(values, (c) =>
        c.call<object, MarkFalseAlarmResponse>("markFalseAlarm", { verdictId: positionals[0], allowTtlS, comment: (values.comment as string) ?? "" }),
      );
      if (values.json) json(MarkFalseAlarmResponse.toJSON(res));
      else {
        out(res.removedRuleIds.length ? `removed rule(s) ${res.removedRuleIds.join(", ")}\n` : "no block rule was active for this verdict\n");
        if (res.allowRuleId) out(`allow rule ${res.allowRuleId} added\n`);
        out("feedback sent to the detector\n");
      }
      return EXIT.OK;
    }),
};

export const commands: Command[] = [statusCommand, rulesCommand, verdictsCommand, watchCommand, falseAlarmCommand];

