import { Verdict, type Rule } from "@vigil/proto";
import { SizeCounter } from "./encoded-size.js";
import { completedHandshakes } from "./policy.js";

// What a rule keeps in memory of the verdicts behind it. The verdicts
// themselves (about 540 bytes each as stored) stay in the rule's record in
// the store; a rule in the table carries only what the decisions read: an
// agreement's reason (detector, capture time, score, handshakes) and which
// verdicts the record keeps (their ids and encoded sizes). A million rules
// would otherwise hold a million verdict objects.

/** One verdict of a rule, as the decisions and the record's trimming need it. */
export interface Evidence {
  id: string;
  detector: string;
  /** Capture time: the verdict's last, else its first. */
  ts: number;
  score: number;
  /** Completed handshakes with the source in the verdict's evidence. */
  handshakes: number;
  /** The verdict's encoded size. */
  bytes: number;
}

const MAX_RULE_VERDICTS = 5;
const MAX_RULE_VERDICT_BYTES = 16 << 10;

/** One counter for every size taken: the size of a verdict's encoding, counted, not written (encoded-size.ts). */
const sizer = new SizeCounter();

function encodedSize(v: Verdict): number {
  // The generated encode() declares the library's writer; the counter has each of its methods that encode() calls.
  Verdict.encode(v, sizer.reset() as unknown as Parameters<typeof Verdict.encode>[1]);
  return sizer.size;
}

export function evidenceOf(v: Verdict): Evidence {
  return { id: v.id, detector: v.detector, ts: v.lastTs || v.firstTs, score: v.score, handshakes: completedHandshakes(v), bytes: encodedSize(v) };
}

/**
 * The verdicts a rule keeps (in memory and in its record): the last five, and
 * of them no more than 16 KiB, the newest always. With the verdict size limit
 * at intake this bounds a rule's record whatever the verdicts carry.
 */
export function keptEvidence(list: Evidence[]): Evidence[] {
  const last = list.slice(-MAX_RULE_VERDICTS);
  if (last.length <= 1) return last;
  let start = last.length - 1;
  let total = last[start].bytes;
  while (start > 0 && total + last[start - 1].bytes <= MAX_RULE_VERDICT_BYTES) total += last[--start].bytes;
  return last.slice(start);
}

/** A rule as the table holds it: the rule and the evidence of the verdicts its record keeps. */
export interface RuleEntry {
  rule: Rule;
  evidence: Evidence[];
}

/** The table's entry of a stored record. */
export function entryOf(s: { rule: Rule; verdicts: Verdict[] }): RuleEntry {
  return { rule: s.rule, evidence: s.verdicts.map(evidenceOf) };
}
