import { EXIT, type Command } from "@vigil/lifecycle";
import {
  Action,
  ListRulesResponse,
  ListVerdictsResponse,
  Origin,
  Status,
  VerdictRecord,
  type DeleteRuleResponse,
  type ListRulesRequest,
  type ListVerdictsRequest,
  type Rule,
} from "@vigil/proto";
import { CONNECTION_USAGE, guarded, json, out, parse, printable, table, usageError, when, withApi, type Values } from "./cli-kit.js";
import { hostAddress, hostCidrOf } from "./model.js";
import type { ControlApi } from "./client.js";

// The decisions workflow of `cscli decisions` / `fail2ban-client`: remove by
// address, inspect one verdict, show the effective allowlist.

/**
 * `vigil rules rm --address ADDR`: removes the rules whose source is that
 * address (its host rule, whatever the origin). Broader rules that cover it
 * stay and are named, so the operator sees why it may still be blocked.
 */
export async function removeByAddress(values: Values, address: string): Promise<number> {
  let host;
  try {
    host = hostAddress(address);
  } catch (err) {
    throw usageError(`--address: ${(err as Error).message}`);
  }
  const cidr = hostCidrOf(host);
  const { removed, covering } = await withApi(values, async (c) => {
    const listed = await c.call<ListRulesRequest, ListRulesResponse>("listRules", { origin: Origin.ORIGIN_UNSPECIFIED, action: Action.ACTION_UNSPECIFIED, address: host.text, limit: 0 });
    const mine = listed.rules.filter((r) => r.srcCidr === cidr);
    const removed: Rule[] = [];
    for (const r of mine) if ((await c.call<{ id: number }, DeleteRuleResponse>("deleteRule", { id: r.id })).deleted) removed.push(r);
    return { removed, covering: listed.rules.filter((r) => r.srcCidr !== cidr) };
  });
  if (values.json) json({ address: host.text, removed: removed.map((r) => r.id), covering: covering.map((r) => ({ id: r.id, srcCidr: r.srcCidr })) });
  else {
    for (const r of removed) out(printable(`removed rule ${r.id} (${r.srcCidr}${r.reason ? `: ${r.reason}` : ""})`) + "\n");
    if (!removed.length) out(`no active rule has the source ${cidr}\n`);
    for (const r of covering) out(`note: rule ${r.id} (${r.srcCidr}) still covers ${host.text}; remove it by id if meant\n`);
  }
  return removed.length ? EXIT.OK : EXIT.FAILURE;
}

async function findVerdict(c: ControlApi, id: string): Promise<VerdictRecord | null> {
  const res = await c.call<ListVerdictsRequest, ListVerdictsResponse>("listVerdicts", { detector: "", address: "", since: 0, limit: 0 });
  const exact = res.verdicts.find((r) => r.verdict?.id === id);
  if (exact) return exact;
  // A unique prefix is enough, as with git.
  const prefixed = res.verdicts.filter((r) => r.verdict?.id.startsWith(id));
  if (prefixed.length > 1) throw usageError(`"${id}" matches ${prefixed.length} verdicts; give more of the id`);
  return prefixed[0] ?? null;
}

function seconds(ts: number): string {
  return ts ? new Date(ts * 1000).toISOString().replace(/(\.\d{3})\d*Z$/, "$1Z") : "-";
}

/** The evidence the console shows for a verdict, as text. */
export function describeVerdict(rec: VerdictRecord): string {
  const v = rec.verdict!;
  const rows: string[][] = [
    ["verdict", v.id],
    ["detector", `${v.detector}${v.instance ? ` (${v.instance})` : ""}${v.model ? `, model ${v.model}` : ""}`],
    ["source", v.aggregate ? "(aggregate: no dominant source, never blocked as a host)" : v.address],
    ["attacked", [v.localAddress || "-", v.localPorts.length ? `ports ${v.localPorts.join(",")}` : ""].filter(Boolean).join(" ")],
    ["label", v.label || "-"],
    ["score", `${v.score.toFixed(3)} vs threshold ${v.threshold.toFixed(3)} (${v.score >= v.threshold ? "at or above" : "below"})`],
    ["evidence", `${v.connections} connection(s), ${v.packets} packet(s)`],
    ["capture time", `${seconds(v.firstTs)} .. ${seconds(v.lastTs)}`],
    ["received", when(rec.receivedAt)],
    ["outcome", `${rec.outcome}${rec.ruleId ? ` (rule ${rec.ruleId})` : ""}`],
    ["summary", v.summary || "-"],
  ];
  let text = table(["FIELD", "VALUE"], rows);
  const conns = v.pst?.connections ?? [];
  if (conns.length) {
    text += `\nanomalous connections (a sample):\n`;
    text += table(
      ["CLIENT", "SERVER", "CLASS", "SCORE", "FIRST", "FLAGS"],
      conns.map((x) => [`${x.client}:${x.clientPort}`, `${x.server}:${x.serverPort}`, x.serviceClass || "-", x.score.toFixed(3), seconds(x.firstTs), x.symbols]),
    );
  }
  const som = v.som;
  if (som && (som.windowStart || som.deviations.length)) {
    text += `\nwindow ${seconds(som.windowStart)} .. ${seconds(som.windowEnd)}: ${som.windowPackets} packets, best-matching unit ${som.bmu}, quantization error ${som.quantizationError.toFixed(3)}\n`;
    if (som.deviations.length) text += table(["FEATURE", "VALUE", "DEVIATION"], som.deviations.map((f) => [f.name, String(f.value), f.deviation.toFixed(2)]));
    if (som.sources.length)
      text += `\n` + table(["SOURCE", "SHARE", "PACKETS", "PORTS", "HALF-OPEN"], som.sources.map((s) => [s.address, `${Math.round(s.share * 100)}%`, String(s.packets), String(s.ports), String(s.halfOpen)]));
  }
  return text;
}

const verdictsShowCommand: Command = {
  name: "verdicts show",
  summary: "show one verdict's evidence: detector, label, score vs threshold, connections or window, times, outcome",
  usage: `usage: vigil verdicts show ID [--json]   (a unique prefix of the id is enough)\n${CONNECTION_USAGE}`,
  run: (args) =>
    guarded("verdicts show", async () => {
      const { values, positionals } = parse(args);
      if (positionals.length !== 1) throw usageError("expected exactly one verdict id");
      const rec = await withApi(values, (c) => findVerdict(c, positionals[0]!));
      if (!rec) {
        process.stderr.write(`vigil verdicts show: no verdict "${positionals[0]}" in the recent verdict log (see \`vigil verdicts\`)\n`);
        return EXIT.FAILURE;
      }
      if (values.json) json(VerdictRecord.toJSON(rec));
      else out(describeVerdict(rec));
      return EXIT.OK;
    }),
};

const allowlistCommand: Command = {
  name: "allowlist",
  summary: "show the effective allowlist: the addresses never blocked automatically, and where each entry comes from",
  usage: `usage: vigil allowlist [--json]\n${CONNECTION_USAGE}`,
  run: (args) =>
    guarded("allowlist", async () => {
      const { values, positionals } = parse(args);
      if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`);
      const s = await withApi(values, (c) => c.call<object, Status>("getStatus", {}));
      if (values.json) json({ allowlist: s.allowlist });
      else out(s.allowlist.length ? table(["ADDRESS", "FROM"], s.allowlist.map((e) => [e.cidr, e.why])) : "allowlist: empty (every address may be blocked automatically)\n");
      return EXIT.OK;
    }),
};

export const decisionCommands: Command[] = [verdictsShowCommand, allowlistCommand];
