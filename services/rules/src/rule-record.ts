import type { Rule, Verdict } from "@vigil/proto";
import type { RuleEntry } from "./evidence.js";
import type { HistoryEntry, StoredRule } from "./store.js";

// A rule's record in the store holds its history and its verdicts; the table
// holds neither (see evidence.ts). A change of a rule therefore says what the
// record gains, and the store makes the new record from the one it holds.

const MAX_HISTORY = 50;

/** What a change adds to a rule's record. */
export interface Additions {
  history?: HistoryEntry[];
  /** Verdicts new to the rule; those its evidence keeps are written. */
  verdicts?: Verdict[];
}

/** One write of a rule's record. */
export interface RecordWrite {
  /** The rule as it is now. */
  rule: Rule;
  /** History entries to append. */
  history: HistoryEntry[];
  /** Verdicts not in the stored record yet. */
  verdicts: Verdict[];
  /** The ids of the verdicts the record keeps, oldest first (the rule's evidence). */
  keep: string[];
  /** A new record: nothing stored before is carried over. */
  whole: boolean;
}

export function recordWrite(entry: RuleEntry, add: Additions, whole: boolean): RecordWrite {
  const keep = entry.evidence.map((e) => e.id);
  return { rule: entry.rule, history: add.history ?? [], verdicts: keptOf(add.verdicts ?? [], keep), keep, whole };
}

function keptOf(verdicts: Verdict[], keep: string[]): Verdict[] {
  return verdicts.filter((v) => keep.includes(v.id));
}

/** Two writes of one record, `older` first, as one write. */
export function mergeWrites(older: RecordWrite, newer: RecordWrite): RecordWrite {
  if (newer.whole) return newer;
  const verdicts = new Map<string, Verdict>();
  for (const v of [...older.verdicts, ...newer.verdicts]) verdicts.set(v.id, v);
  return {
    rule: newer.rule,
    history: [...older.history, ...newer.history].slice(-MAX_HISTORY),
    verdicts: keptOf([...verdicts.values()], newer.keep),
    keep: newer.keep,
    whole: older.whole,
  };
}

/** The record a write makes of the stored one (`base`, null when there is none). */
export function applyWrite(base: StoredRule | null, w: RecordWrite): StoredRule {
  const prior = w.whole ? null : base;
  const byId = new Map<string, Verdict>();
  for (const v of [...(prior?.verdicts ?? []), ...w.verdicts]) byId.set(v.id, v);
  return {
    rule: w.rule,
    history: [...(prior?.history ?? []), ...w.history].slice(-MAX_HISTORY),
    verdicts: w.keep.map((id) => byId.get(id)).filter((v): v is Verdict => !!v),
  };
}
