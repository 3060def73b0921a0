import { join } from "node:path";
import type { CaptureLabel, Labels } from "./labels.js";
import { replayCapture, type ReplayOptions, type ReplayResult } from "./replay.js";

export interface CaptureEvaluation {
  file: string;
  kind: "benign" | "attack";
  attack?: string;
  expect?: "block" | "detect";
  attackers: string[];
  attackers_blocked: string[];
  attackers_missed: string[];
  /** Benign addresses blocked: must stay empty. */
  benign_blocked: string[];
  /** Blocked addresses that are neither attackers nor benign clients (e.g. forged sources). */
  others_blocked: string[];
  /** Reflectors blocked in a reflection attack (real sources of attack traffic): not false positives. */
  reflectors_blocked: string[];
  /** A verdict named an attacker (or, for forged-source attacks, any verdict after the attack began). */
  detected: boolean;
  /** Capture seconds from the first attack packet to the first verdict naming an attacker. */
  time_to_detect_s: number | null;
  /** Capture seconds from the first attack packet to the first block of an attacker. */
  time_to_block_s: number | null;
  verdicts: number;
  rules: number;
  frames: number;
  wall_s: number;
  error?: string;
}

export interface EvaluationSummary {
  captures: number;
  failed: number;
  attack_captures: number;
  attack_captures_detected: number;
  attackers: number;
  attackers_blocked: number;
  /** attackers_blocked / attackers. */
  detection_rate: number | null;
  benign_captures: number;
  benign_captures_with_verdicts: number;
  /** Distinct (capture, address) pairs of benign or forged addresses blocked. */
  false_positive_blocks: number;
  median_time_to_detect_s: number | null;
  median_time_to_block_s: number | null;
}

export interface Evaluation {
  captures: CaptureEvaluation[];
  summary: EvaluationSummary;
}

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

/** Scores one replay against its labels. Pure: exported for tests. */
export function scoreCapture(label: CaptureLabel, res: Pick<ReplayResult, "lines" | "summary">): CaptureEvaluation {
  const attackers = label.attackers ?? [];
  const attackerSet = new Set(attackers);
  const benignSet = new Set(label.benign);
  const blocked = new Map<string, number>();
  for (const l of res.lines) if (l.type === "rule" && !blocked.has(l.address)) blocked.set(l.address, l.ts);
  const start = label.attack_start ?? 0;
  let detectTs: number | null = null;
  let blockTs: number | null = null;
  if (label.kind === "attack") {
    for (const l of res.lines) {
      const names = l.type === "verdict" ? attackerSet.has(l.address) || (label.expect === "detect" && l.ts >= start) : false;
      if (names && detectTs === null) detectTs = l.ts;
      if (l.type === "rule" && attackerSet.has(l.address) && blockTs === null) blockTs = l.ts;
    }
  }
  const verdicts = res.lines.filter((l) => l.type === "verdict").length;
  return {
    file: label.file,
    kind: label.kind,
    ...(label.attack ? { attack: label.attack } : {}),
    ...(label.expect ? { expect: label.expect } : {}),
    attackers,
    attackers_blocked: attackers.filter((a) => blocked.has(a)),
    attackers_missed: attackers.filter((a) => !blocked.has(a)),
    benign_blocked: [...blocked.keys()].filter((a) => benignSet.has(a)).sort(),
    others_blocked: label.reflected ? [] : [...blocked.keys()].filter((a) => !benignSet.has(a) && !attackerSet.has(a)).sort(),
    reflectors_blocked: label.reflected ? [...blocked.keys()].filter((a) => !benignSet.has(a) && !attackerSet.has(a)).sort() : [],
    detected: label.kind === "attack" ? detectTs !== null : verdicts > 0,
    time_to_detect_s: detectTs === null ? null : round3(Math.max(0, detectTs - start)),
    time_to_block_s: blockTs === null ? null : round3(Math.max(0, blockTs - start)),
    verdicts,
    rules: res.summary.rules,
    frames: res.summary.frames,
    wall_s: res.summary.wall_s,
  };
}

export function summarize(captures: CaptureEvaluation[]): EvaluationSummary {
  const ok = captures.filter((c) => !c.error);
  const attacks = ok.filter((c) => c.kind === "attack");
  const benign = ok.filter((c) => c.kind === "benign");
  const attackers = attacks.reduce((n, c) => n + c.attackers.length, 0);
  const blocked = attacks.reduce((n, c) => n + c.attackers_blocked.length, 0);
  return {
    captures: captures.length,
    failed: captures.length - ok.length,
    attack_captures: attacks.length,
    attack_captures_detected: attacks.filter((c) => c.detected).length,
    attackers,
    attackers_blocked: blocked,
    detection_rate: attackers ? round3(blocked / attackers) : null,
    benign_captures: benign.length,
    benign_captures_with_verdicts: benign.filter((c) => c.verdicts > 0).length,
    false_positive_blocks: ok.reduce((n, c) => n + c.benign_blocked.length + c.others_blocked.length, 0),
    median_time_to_detect_s: round3(median(attacks.flatMap((c) => (c.time_to_detect_s === null ? [] : [c.time_to_detect_s])))),
    median_time_to_block_s: round3(median(attacks.flatMap((c) => (c.time_to_block_s === null ? [] : [c.time_to_block_s])))),
  };
}

/**
 * Replays every capture of a labelled set, each through a fresh pipeline so
 * captures do not influence each other; `concurrency` pipelines at once
 * (default 1), results in the labels' order.
 */
export async function evaluate(
  labels: Labels,
  opts: ReplayOptions & { only?: string[]; concurrency?: number; onCapture?: (c: CaptureEvaluation) => void } = {},
): Promise<Evaluation> {
  const todo = labels.captures.filter((label) => !opts.only?.length || opts.only.includes(label.file));
  const out: CaptureEvaluation[] = new Array(todo.length);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const i = next++;
      const label = todo[i]!;
      let ev: CaptureEvaluation;
      try {
        const res = await replayCapture(join(labels.dir, label.file), { ...opts, local: label.local ?? labels.local });
        ev = scoreCapture(label, res);
      } catch (err) {
        ev = {
          ...scoreCapture(label, { lines: [], summary: { type: "summary", frames: 0, verdicts: 0, rules: 0, wall_s: 0 } }),
          detected: false,
          error: (err as Error).message,
        };
      }
      out[i] = ev;
      opts.onCapture?.(ev);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 1, todo.length)) }, worker));
  return { captures: out, summary: summarize(out) };
}

export function formatTable(ev: Evaluation): string {
  const rows = [["capture", "kind", "attackers blocked", "benign blocked", "other blocked", "reflectors blocked", "detect s", "block s", "verdicts", "rules"]];
  for (const c of ev.captures) {
    rows.push([
      c.file,
      c.kind === "attack" ? `${c.attack ?? "attack"}${c.expect === "detect" ? " (detect only)" : ""}` : "benign",
      c.error ? "ERROR" : c.kind === "attack" ? `${c.attackers_blocked.length}/${c.attackers.length}` : "-",
      String(c.benign_blocked.length),
      String(c.others_blocked.length),
      String(c.reflectors_blocked.length),
      c.time_to_detect_s === null ? "-" : c.time_to_detect_s.toFixed(3),
      c.time_to_block_s === null ? "-" : c.time_to_block_s.toFixed(3),
      String(c.verdicts),
      String(c.rules),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  const s = ev.summary;
  lines.push(
    "",
    `attackers blocked: ${s.attackers_blocked}/${s.attackers}` +
      (s.detection_rate === null ? "" : ` (${(s.detection_rate * 100).toFixed(1)} %)`) +
      `; attack captures detected: ${s.attack_captures_detected}/${s.attack_captures}` +
      `; false-positive blocks: ${s.false_positive_blocks}` +
      `; benign captures with verdicts: ${s.benign_captures_with_verdicts}/${s.benign_captures}`,
    `median time to detect: ${s.median_time_to_detect_s ?? "-"} s; median time to block: ${s.median_time_to_block_s ?? "-"} s` +
      (s.failed ? `; ${s.failed} capture(s) failed to replay` : ""),
  );
  for (const c of ev.captures) if (c.error) lines.push(`${c.file}: ${c.error.split("\n")[0]}`);
  return lines.join("\n") + "\n";
}
