import type { Evaluation } from "./eval.js";
import type { EvalSet } from "./sets.js";

/** One row of `vigil eval --sets`: a set as a whole. */
export interface SetRow {
  set: string;
  heldOut: boolean;
  /** Why the set was not evaluated (its captures are absent), else null. */
  skipped: string | null;
  captures: number;
  failed: number;
  attackers: number;
  attackers_blocked: number;
  /** Labelled attackers not blocked, as "capture: address". */
  attackers_missed: string[];
  /** Distinct (capture, address) pairs blocked that are neither attackers nor reflectors: must be 0. */
  benign_addresses_blocked: number;
  /** The same pairs, as "capture: address". */
  benign_blocked: string[];
  benign_captures: number;
  /** Benign captures that got any block rule. */
  benign_captures_with_rule: number;
  median_time_to_block_s: number | null;
}

export function setRow(set: EvalSet, ev: Evaluation | null): SetRow {
  const empty = { captures: 0, failed: 0, attackers: 0, attackers_blocked: 0, attackers_missed: [], benign_addresses_blocked: 0, benign_blocked: [], benign_captures: 0, benign_captures_with_rule: 0, median_time_to_block_s: null };
  if (!ev) return { set: set.name, heldOut: set.heldOut, skipped: set.missing ?? "not evaluated", ...empty };
  const s = ev.summary;
  const ok = ev.captures.filter((c) => !c.error);
  const benign = ok.filter((c) => c.kind === "benign");
  const blocked = ok.flatMap((c) => [...c.benign_blocked, ...c.others_blocked].map((a) => `${c.file}: ${a}`));
  return {
    set: set.name,
    heldOut: set.heldOut,
    skipped: null,
    captures: s.captures,
    failed: s.failed,
    attackers: s.attackers,
    attackers_blocked: s.attackers_blocked,
    attackers_missed: ok.flatMap((c) => c.attackers_missed.map((a) => `${c.file}: ${a}`)),
    benign_addresses_blocked: blocked.length,
    benign_blocked: blocked,
    benign_captures: benign.length,
    benign_captures_with_rule: benign.filter((c) => c.rules > 0).length,
    median_time_to_block_s: s.median_time_to_block_s,
  };
}

/** The per-set table: one row per set, held-out sets marked. */
export function formatSetTable(rows: SetRow[]): string {
  const table = [["set", "captures", "attackers blocked", "benign addresses blocked", "benign captures with a rule", "median s to block"]];
  const name = (r: SetRow) => `${r.set}${r.heldOut && !/held.?out/i.test(r.set) ? " (held out)" : ""}`;
  for (const r of rows) {
    table.push(
      r.skipped
        ? [name(r), `skipped: ${r.skipped}`, "", "", "", ""]
        : [
            name(r),
            `${r.captures}${r.failed ? ` (${r.failed} failed)` : ""}`,
            r.attackers ? `${r.attackers_blocked}/${r.attackers}` : "-",
            String(r.benign_addresses_blocked),
            `${r.benign_captures_with_rule}/${r.benign_captures}`,
            r.median_time_to_block_s === null ? "-" : r.median_time_to_block_s.toFixed(3),
          ],
    );
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const lines = table.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) {
    for (const b of r.benign_blocked) lines.push(`${r.set}: benign blocked: ${b}`);
    for (const m of r.attackers_missed) lines.push(`${r.set}: attacker missed: ${m}`);
  }
  return lines.join("\n") + "\n";
}

/** The goal of issue 13: no benign address blocked, every attacker to block blocked, every capture replayed. */
export function meetsGoal(r: SetRow): boolean {
  return r.skipped !== null || (r.failed === 0 && r.benign_addresses_blocked === 0 && r.attackers_blocked === r.attackers);
}
