import { createHash } from "node:crypto";
import { IPPROTO_TCP } from "@vigil/frames";
import { Verdict } from "@vigil/proto";
import { formatEvidence } from "./evidence.js";
import { labelFor } from "./shape.js";
import { TIER_THRESHOLD } from "./significance.js";
import { addressOf, dominantModel, type Window } from "./windows.js";

/** Who publishes, and from which capture source the window's evidence came. */
export interface VerdictOrigin {
  detector: string;
  instance: string;
  sourceId: string;
  /** The shard (not the lane) the window's connections came from. */
  shard: number;
}

/**
 * A window as a verdict. Its score is the mean score of the connections that made the tier (all
 * above the tier's threshold), and its threshold is that tier's: the threshold for the anomalous
 * count, the suspicion threshold otherwise, so score > threshold always holds. An aggregate
 * window is a local address's (a flood without a dominant source): `sources` and `connections`
 * count what no source's own verdict covered.
 */
export function composeVerdict(w: Window, origin: VerdictOrigin, aggregate: boolean, sources: number, tier: number, connections?: number): Verdict {
  const m = dominantModel(w)!;
  const model = m.id;
  const threshold = tier === TIER_THRESHOLD ? m.threshold : m.suspicion;
  const score = tier === TIER_THRESHOLD ? w.anomalousScoreSum / Math.max(1, w.anomalous) : w.scoreSum / Math.max(1, w.suspicious);
  // Every connection above the suspicion threshold is part of the verdict; score and threshold are the tier's.
  const counted = connections ?? w.suspicious;
  const address = addressOf(w);
  let other = "";
  let otherCount = -1;
  for (const [h, c] of w.peers ?? []) {
    const text = w.peerText!.get(h)!;
    if (c > otherCount || (c === otherCount && text < other)) {
      other = text;
      otherCount = c;
    }
  }
  const ports = [...w.localPorts].sort((a, b) => a - b);
  const label = aggregate ? labelFor(w.shapes, ports.length, w.suspicious).replace("half-open", "syn-flood") : labelFor(w.shapes, ports.length, w.suspicious);
  const { detector, instance, sourceId, shard } = origin;
  const idInput = `${detector}|${sourceId}|${shard}|${aggregate ? "aggregate" : "source"}|${address}|${w.firstTs.toFixed(6)}${w.updates ? `|update ${w.updates}` : ""}`;
  const id = `${detector}-${createHash("sha256").update(idInput).digest("hex").slice(0, 24)}`;
  const tierName = tier === TIER_THRESHOLD ? "threshold" : "suspicion threshold";
  const portText = ports.length === 0 ? "" : ports.length <= 5 ? ` port${ports.length > 1 ? "s" : ""} ${ports.join(",")}` : ` ${ports.length} ports`;
  const summary = aggregate
    ? `${label}: ${counted} anomalous TCP connections from ${sources} sources to ${address}${portText} (mean score ${score.toFixed(2)} > ${tierName} ${threshold.toFixed(2)}, ${model})`
    : `${label}: ${counted} of ${w.judged} TCP connections from ${address} to ${other}${portText} anomalous, ${tier === TIER_THRESHOLD ? w.anomalous : w.suspicious} above the ${tierName} (mean score ${score.toFixed(2)} > ${threshold.toFixed(2)}, ${model})`;
  return Verdict.fromPartial({
    id,
    detector,
    instance,
    sourceId,
    address: aggregate ? "" : address,
    aggregate,
    localAddress: aggregate ? address : other,
    localPorts: ports,
    protocol: IPPROTO_TCP,
    score,
    threshold,
    model,
    label,
    connections: counted,
    packets: w.packets,
    firstTs: w.firstTs,
    lastTs: w.lastTs,
    summary,
    pst: { connections: w.evidence.map(formatEvidence) },
  });
}
