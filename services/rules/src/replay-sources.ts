import type { Verdict } from "@vigil/proto";

/**
 * Whether a verdict comes from a replayed capture. A replay runs at pcap speed on timestamps of its own, so its
 * verdicts would spend budgets that are clocked by capture time (F28): on an enforcing service they are simulated
 * unless rules.enforceReplays. The capture marks every batch of a pcap replay (FrameBatch.replay) from what it
 * reads, and the detectors copy the mark into their verdicts (Verdict.replay): a source id of the operator's
 * choosing cannot make a replay live.
 */
export function isReplay(v: Pick<Verdict, "replay" | "sourceId">): boolean {
  return v.replay || isReplaySource(v.sourceId);
}

/**
 * The names replays have by default, kept as a second sign: capture names a source `<host>/<kind>:<target>`
 * (`host1/pcap:attack.pcap`) and `vigil replay` names its own `replay:<file>`.
 */
export function isReplaySource(sourceId: string): boolean {
  if (sourceId.startsWith("replay:")) return true;
  const kind = sourceId.slice(sourceId.lastIndexOf("/") + 1);
  return kind.startsWith("pcap:");
}
