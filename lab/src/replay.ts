import { accessSync, constants } from "node:fs";
import { basename } from "node:path";
import { Action, Origin, RuleEvent_Kind, type Rule, type RuleEvent, type Verdict } from "@vigil/proto";
import { inferLocal } from "./local.js";
import { Pipeline, PipelineError, type PipelineOptions } from "./pipeline.js";

export interface VerdictLine {
  type: "verdict";
  id: string;
  detector: string;
  address: string;
  aggregate: boolean;
  score: number;
  threshold: number;
  /** Capture time of the decision: the verdict's last evidence. */
  ts: number;
  first_ts: number;
  label: string;
  model: string;
  connections: number;
  packets: number;
  summary: string;
}

export interface RuleLine {
  type: "rule";
  action: "drop";
  address: string;
  detector: string;
  ttl_s: number | null;
  /** Earliest capture time at which the policy decided the rule (see ruleLines). */
  ts: number;
  reason: string;
}

export interface SummaryLine {
  type: "summary";
  frames: number;
  verdicts: number;
  rules: number;
  wall_s: number;
}

export interface ReplayOptions extends PipelineOptions {
  local?: string[];
  speed?: number;
  timeoutMs?: number;
}

export interface ReplayResult {
  lines: (VerdictLine | RuleLine)[];
  summary: SummaryLine;
  local: string[];
  /** How the local addresses were chosen. */
  localSource: "given" | "inferred";
}

function verdictLine(v: Verdict): VerdictLine {
  return {
    type: "verdict",
    id: v.id,
    detector: v.detector,
    address: v.address,
    aggregate: v.aggregate,
    score: v.score,
    threshold: v.threshold,
    ts: v.lastTs || v.firstTs,
    first_ts: v.firstTs,
    label: v.label,
    model: v.model,
    connections: v.connections,
    packets: v.packets,
    summary: v.summary,
  };
}

function hostOf(cidr: string): string {
  const m = /^(.*)\/(32|128)$/.exec(cidr);
  return m ? m[1]! : cidr;
}

/** Capture-time order; ties broken by content so the output never depends on arrival order. */
export function compareLines(a: VerdictLine | RuleLine, b: VerdictLine | RuleLine): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  if (a.type !== b.type) return a.type === "verdict" ? -1 : 1;
  const ka = a.type === "verdict" ? `${a.detector}/${a.id}` : `${a.address}/${a.detector}`;
  const kb = b.type === "verdict" ? `${b.detector}/${b.id}` : `${b.address}/${b.detector}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * One line per detector drop rule, from its state once the end of stream has
 * passed every stage (its last ADDED/UPDATED event: the service publishes a
 * rule's events in order). Which detector's verdict reached the rules service
 * first only decides the rule's intermediate states, so the line does not
 * depend on it; ts is the earliest capture time at which the rule was decided.
 */
export function ruleLines(events: readonly RuleEvent[]): RuleLine[] {
  const final = new Map<number, { rule: Rule; ts: number }>();
  for (const e of events) {
    const r = e.rule;
    if ((e.kind !== RuleEvent_Kind.KIND_ADDED && e.kind !== RuleEvent_Kind.KIND_UPDATED) || !r) continue;
    if (r.action !== Action.ACTION_DROP || r.origin !== Origin.ORIGIN_DETECTOR) continue;
    const prev = final.get(r.id);
    const ts = prev && prev.ts > 0 && (r.decidedTs <= 0 || prev.ts < r.decidedTs) ? prev.ts : r.decidedTs;
    final.set(r.id, { rule: r, ts });
  }
  return [...final.values()].map(({ rule: r, ts }) => ({
    type: "rule",
    action: "drop",
    address: hostOf(r.srcCidr),
    detector: r.detector,
    ttl_s: r.expiresAt > 0 ? Math.round(r.expiresAt - r.createdAt) : null,
    ts,
    reason: r.reason,
  }));
}

export function checkCaptureFile(file: string): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new PipelineError(`${file}: ${e.code === "ENOENT" ? "no such file" : `cannot read (${e.code})`}`, "VIGIL_ERR_USAGE");
  }
}

/** Replays one capture through the real pipeline (private NATS, PST, SOM, rules in dry-run). */
export async function replayCapture(file: string, opts: ReplayOptions = {}): Promise<ReplayResult> {
  checkCaptureFile(file);
  const t0 = performance.now();
  let local = opts.local;
  let localSource: ReplayResult["localSource"] = "given";
  if (!local?.length) {
    const guess = await inferLocal(file);
    if (!guess.local.length) {
      throw new PipelineError(
        `${file}: cannot infer the local addresses (no IP packet, or no address in half of the packets and none that opens a conversation); name them with --local CIDR[,CIDR...]`,
        "VIGIL_ERR_USAGE",
      );
    }
    local = guess.local;
    localSource = "inferred";
  }
  const pipeline = new Pipeline(opts);
  try {
    await pipeline.start();
    const res = await pipeline.replay(file, { local, speed: opts.speed, sourceId: `replay:${basename(file)}`, timeoutMs: opts.timeoutMs });
    const lines: (VerdictLine | RuleLine)[] = [...res.verdicts.map(verdictLine), ...ruleLines(res.ruleEvents)];
    lines.sort(compareLines);
    const summary: SummaryLine = {
      type: "summary",
      frames: res.frames,
      verdicts: res.verdicts.length,
      rules: lines.filter((l) => l.type === "rule").length,
      wall_s: Math.round((performance.now() - t0) / 10) / 100,
    };
    return { lines, summary, local, localSource };
  } finally {
    await pipeline.stop();
  }
}
