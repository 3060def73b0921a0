import { createRegistry, prom, type Registry } from "@vigil/metrics";
import { MALFORMED_NAMES } from "@vigil/frames";

export interface SomMetrics {
  registry: Registry;
  packets: prom.Counter;
  frames: prom.Counter;
  malformed: prom.Counter<"reason">;
  malformedBatches: prom.Counter;
  droppedBatches: prom.Counter<"reason">;
  lost: prom.Counter<"kind">;
  windows: prom.Counter<"result">;
  quantizationError: prom.Histogram;
  verdicts: prom.Counter<"kind">;
  merged: prom.Counter<"kind">;
  lag: prom.Gauge;
  late: prom.Gauge;
  ownedShards: prom.Gauge;
  threshold: prom.Gauge;
  feedback: prom.Counter<"result">;
  buffered: prom.Gauge;
}

export function createSomMetrics(instance?: string): SomMetrics {
  const registry = createRegistry("som", instance);
  const r = { registers: [registry] };
  const malformed = new prom.Counter({ name: "vigil_som_frames_malformed_total", help: "Frames that could not be decoded, by reason", labelNames: ["reason"] as const, ...r });
  for (const name of MALFORMED_NAMES.slice(1)) malformed.inc({ reason: name }, 0);
  const lost = new prom.Counter({ name: "vigil_som_lost_total", help: "What never reached the detector: frames the capture dropped (kind=capture: ring full, NATS backed up or down), frames published but not received (kind=bus: cut off as a slow consumer; known at end of stream), batches missing from the sequence (kind=batches: the live view of both)", labelNames: ["kind"] as const, ...r });
  for (const kind of ["capture", "bus", "batches"]) lost.inc({ kind }, 0);
  return {
    registry,
    packets: new prom.Counter({ name: "vigil_som_packets_total", help: "Packets decoded and added to windows", ...r }),
    frames: new prom.Counter({ name: "vigil_som_frames_total", help: "Frame records received", ...r }),
    malformed,
    lost,
    malformedBatches: new prom.Counter({ name: "vigil_som_batches_malformed_total", help: "Frame batches undecodable or with a record overrunning the batch", ...r }),
    droppedBatches: new prom.Counter({
      name: "vigil_som_batches_dropped_total",
      help: "Frame batches dropped unread: cut for another shard count (shard_count_mismatch) or for a shard no longer owned (wrong_shard)",
      labelNames: ["reason"] as const,
      ...r,
    }),
    windows: new prom.Counter({ name: "vigil_som_windows_total", help: "Windows scored, by result (normal, anomalous, forgiven by feedback)", labelNames: ["result"] as const, ...r }),
    quantizationError: new prom.Histogram({
      name: "vigil_som_quantization_error",
      help: "Quantization error of scored windows (scaled feature units)",
      buckets: [0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32],
      ...r,
    }),
    verdicts: new prom.Counter({ name: "vigil_som_verdicts_total", help: "Verdicts published, attributed to a source or aggregate", labelNames: ["kind"] as const, ...r }),
    merged: new prom.Counter({ name: "vigil_som_windows_merged_total", help: "Anomalous windows merged into a verdict already published in the same period", labelNames: ["kind"] as const, ...r }),
    lag: new prom.Gauge({ name: "vigil_som_lag_seconds", help: "Wall clock minus the capture time of the last packet processed", ...r }),
    late: new prom.Gauge({ name: "vigil_som_late_packets", help: "Packets older than the window they were added to (current sources)", ...r }),
    ownedShards: new prom.Gauge({ name: "vigil_som_owned_shards", help: "Frame shards this instance consumes", ...r }),
    threshold: new prom.Gauge({ name: "vigil_som_threshold", help: "Quantization error threshold of the model", ...r }),
    feedback: new prom.Counter({ name: "vigil_som_feedback_total", help: "False-alarm feedback received, by result", labelNames: ["result"] as const, ...r }),
    buffered: new prom.Gauge({ name: "vigil_som_merge_buffered_bytes", help: "Frame bytes waiting in the time-ordered shard merge", ...r }),
  };
}
