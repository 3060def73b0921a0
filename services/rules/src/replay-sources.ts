/**
 * Whether a verdict's source is a replayed capture: capture names a source `<host>/<kind>:<target>`
 * (`host1/pcap:attack.pcap`) and `vigil replay` names its own `replay:<file>`. A replay runs at
 * pcap speed on timestamps of its own, so its verdicts would spend budgets that are clocked by
 * capture time (F28): on an enforcing service they are simulated unless rules.enforceReplays.
 */
export function isReplaySource(sourceId: string): boolean {
  if (sourceId.startsWith("replay:")) return true;
  const kind = sourceId.slice(sourceId.lastIndexOf("/") + 1);
  return kind.startsWith("pcap:");
}
