import * as grpc from "@grpc/grpc-js";
import { EXIT, type Command } from "@vigil/lifecycle";
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
  RuleEvent_Kind,
  ruleEvent_KindToJSON,
  type AddRuleRequest,
  type DetectorStatus,
  type DeleteRuleResponse,
  type ExtendRuleRequest,
  type ListRulesRequest,
  type ListVerdictsRequest,
} from "@vigil/proto";
import {
  api,
  CONNECTION_USAGE,
  guarded,
  json,
  out,
  parse,
  parseDuration,
  parsePorts,
  parseProtocol,
  printable,
  RULE_HEADERS,
  ruleRow,
  short,
  table,
  usageError,
  VERDICT_HEADERS,
  verdictRow,
  when,
  withApi,
} from "./cli-kit.js";
import { decisionCommands, removeByAddress } from "./cli-decisions.js";
import { phaseText, warmupCommand } from "./cli-warmup.js";

export { parseDuration } from "./cli-kit.js";
/** Frames an instance handled; services that handle none (rules, console) show "-". */
const frameCount = (d: DetectorStatus): string => (d.frames || d.framesLost || d.batchesLost ? String(d.frames) : "-");

/** What never reached an instance, said so that a loss stands out: "0", "1200 frames (0.4%)", "+ 3 batches". */
export function lossText(d: Pick<DetectorStatus, "frames" | "framesLost" | "batchesLost">): string {
  if (!d.frames && !d.framesLost && !d.batchesLost) return "-";
  const parts: string[] = [];
  if (d.framesLost) parts.push(`${d.framesLost} frames (${((100 * d.framesLost) / (d.frames + d.framesLost)).toFixed(1)}%)`);
  if (d.batchesLost) parts.push(`${d.batchesLost} batches`);
  return parts.length ? `LOST ${parts.join(" + ")}` : "0";
}

/**
 * Frames a detector shed under overload (sampled established flows, docs/operations.md "Load shedding"), and its
 * level when it is shedding now (the count is since start: only the level says whether it still is): "-" for none.
 */
export function shedText(d: Pick<DetectorStatus, "frames" | "framesShed" | "shedLevel">): string {
  if (!d.framesShed && !d.shedLevel) return "-";
  const shed = `${d.framesShed} (${((100 * d.framesShed) / Math.max(1, d.frames)).toFixed(1)}%)`;
  return d.shedLevel ? `${shed}, level ${d.shedLevel} now` : shed;
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
            ["phase", phaseText(s)],
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
              ["SERVICE", "INSTANCE", "VERSION", "LAST HEARTBEAT", "SHARDS", "FRAMES", "LOST", "SHED"],
              s.detectors.map((d) => [d.service, d.instance, d.version, `${Math.max(0, now - d.lastHeartbeat).toFixed(1)}s ago`, d.shards.join(",") || "-", frameCount(d), lossText(d), shedText(d)]),
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
       vigil rules extend ID --ttl 1h|never [--force] [--json]
         keeps a rule (detector rules too) in force until that long from now; never shortens it
       vigil rules rm ID... [--json]
       vigil rules rm --address ADDR [--json]   (the rules whose source is that address)
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

async function rulesExtend(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ttl: { type: "string" }, force: { type: "boolean" } });
  const [id, ...extra] = positionals;
  if (!id || !/^\d+$/.test(id)) throw usageError(id ? `"${id}" is not a rule id` : "expected a rule id");
  if (extra.length) throw usageError(`unexpected argument "${extra[0]}"`);
  if (!values.ttl) throw usageError("--ttl is required: how long from now the rule stays (e.g. 1h, 1d, never)");
  const ttlS = values.ttl === "never" ? 0 : parseDuration(values.ttl as string, "--ttl");
  const req: ExtendRuleRequest = { id: Number(id), ttlS, force: !!values.force, sessionSource: "" };
  const res = await withApi(values, (c) => c.call<ExtendRuleRequest, Rule>("extendRule", req));
  if (values.json) json(Rule.toJSON(res));
  else out(table(RULE_HEADERS, [ruleRow(res)]));
  return EXIT.OK;
}

async function rulesRm(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { address: { type: "string" } });
  if (values.address !== undefined) {
    if (positionals.length) throw usageError("give rule ids or --address, not both");
    return removeByAddress(values, values.address as string);
  }
  if (!positionals.length) throw usageError("expected one or more rule ids, or --address ADDR");
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
  summary: "list, add, extend and remove firewall rules (ls | add | extend | rm)",
  usage: rulesUsage,
  run: (args) =>
    guarded("rules", async () => {
      const [verb, ...rest] = args;
      if (verb === "ls" || verb === "list") return rulesLs(rest);
      if (verb === "add") return rulesAdd(rest);
      if (verb === "extend") return rulesExtend(rest);
      if (verb === "rm" || verb === "remove" || verb === "del") return rulesRm(rest);
      throw usageError(verb ? `unknown subcommand "${verb}"; expected ls, add, extend or rm` : "expected ls, add, extend or rm");
    }),
};

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

const WATCH_COLUMNS = [20, 13, 26, 10] as const;

/** One aligned line of `vigil watch`: TIME EVENT SOURCE BY DETAIL. */
function watchLine(cells: [string, string, string, string, string]): string {
  return cells.map((c, i) => (i < WATCH_COLUMNS.length ? printable(c).padEnd(WATCH_COLUMNS[i]!) : printable(c))).join(" ").trimEnd() + "\n";
}

function watchText(e: Event): string | null {
  if (e.verdict?.verdict) {
    const r = e.verdict;
    const v = r.verdict!;
    const detail = `${v.label || "-"} score ${v.score.toFixed(3)}/${v.threshold.toFixed(3)} -> ${r.outcome}${r.ruleId ? ` (rule ${r.ruleId})` : ""}  ${v.id}`;
    return watchLine([when(r.receivedAt), "verdict", v.aggregate ? "(aggregate)" : v.address, v.detector, detail]);
  }
  if (e.rule?.kind === RuleEvent_Kind.KIND_PHASE) return watchLine([when(e.rule.ts), "phase", e.rule.phase, e.rule.by, e.rule.detail]);
  if (e.rule?.rule) {
    const r = e.rule.rule;
    const [id, action, , dest, proto, ports, dir, origin, expires] = ruleRow(r);
    const scope = [dest !== "*" ? `to ${dest}` : "", proto !== "*" ? proto : "", ports !== "*" ? `port ${ports}` : "", dir].filter(Boolean).join(" ");
    const detail = `${action} ${scope}, expires ${expires}, rule ${id}${r.reason ? `: ${r.reason}` : ""}${e.rule.by ? ` (by ${e.rule.by})` : ""}`;
    return watchLine([when(Date.now() / 1000), `rule ${short(ruleEvent_KindToJSON(e.rule.kind), "KIND_")}`, r.srcCidr, r.detector || origin!, detail]);
  }
  return null;
}

const watchCommand: Command = {
  name: "watch",
  summary: "stream verdicts and rule changes as they happen",
  usage: `usage: vigil watch [--verdicts] [--rules] [--json]   (both when neither is given; Ctrl-C to stop)\n${CONNECTION_USAGE}`,
  run: (args) =>
    guarded("watch", async () => {
      const { values, positionals } = parse(args, { verdicts: { type: "boolean" }, rules: { type: "boolean" }, count: { type: "string" } });
      if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`);
      if (values.count !== undefined && !/^\d+$/.test(values.count as string)) throw usageError(`--count: "${values.count}" is not a number`);
      const max = values.count ? Number(values.count) : Infinity;
      // A stream opens lazily: ask once first so an unreachable or refusing service fails like every other command.
      await withApi(values, (c) => c.call<object, Status>("getStatus", {}));
      const c = api(values);
      let seen = 0;
      let cancelled = false;
      if (!values.json) out(watchLine(["TIME", "EVENT", "SOURCE", "BY", "DETAIL"]));
      return new Promise<number>((resolve) => {
        const stream = c.raw.watchEvents({ verdicts: !!values.verdicts, rules: !!values.rules }, c.metadata());
        const cancel = () => {
          cancelled = true;
          stream.cancel();
        };
        process.once("SIGINT", cancel);
        let settled = false;
        const finish = (code: number) => {
          if (settled) return;
          settled = true;
          process.off("SIGINT", cancel);
          c.close();
          resolve(code);
        };
        stream.on("data", (e: Event) => {
          if (values.json) json(Event.toJSON(e));
          else {
            const line = watchText(e);
            if (line) out(line);
          }
          if (++seen >= max) cancel();
        });
        const closedByService = () => {
          if (!settled) process.stderr.write("vigil watch: the rules service closed the stream (stopped?)\n");
          finish(EXIT.UNAVAILABLE);
        };
        stream.on("error", (err: grpc.ServiceError) => {
          if (cancelled) finish(EXIT.OK);
          else if (err.code === grpc.status.CANCELLED) closedByService();
          else if (!settled) guarded("watch", () => Promise.reject(err)).then(finish);
        });
        stream.on("end", () => (cancelled ? finish(EXIT.OK) : closedByService()));
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

export const commands: Command[] = [statusCommand, rulesCommand, verdictsCommand, watchCommand, falseAlarmCommand, warmupCommand, ...decisionCommands];

