import type { Verdict } from "@vigil/proto";
import { parseSequence } from "@vigil/models";
import type { TrainingSequence } from "./pst.js";

/**
 * The training sequences a verdict's evidence stands for, by model name. A
 * connection written as head … tail gives two fragments: the head from the
 * start of the connection, the tail without its beginning.
 */
export function sequencesOfVerdict(v: Verdict): Map<string, TrainingSequence[]> {
  const out = new Map<string, TrainingSequence[]>();
  for (const c of v.pst?.connections ?? []) {
    const parts = parseSequence(c.symbols);
    const list = out.get(c.serviceClass) ?? [];
    if (parts.head.length) list.push({ symbols: parts.head, fromStart: true });
    if (parts.tail?.length) list.push({ symbols: parts.tail, fromStart: false });
    out.set(c.serviceClass, list);
  }
  return out;
}

