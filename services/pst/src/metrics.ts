import { MALFORMED_NAMES } from "@vigil/frames";
import { prom, type Registry } from "@vigil/metrics";
import type { Detector } from "./detector.js";
import { ScoreHistogram } from "./score-histogram.js";

export interface PstMetrics {
  verdicts: prom.Counter<"model" | "label">;
  /** Judged connections' scores, by model: observed per connection, so not a prom-client histogram (see ScoreHistogram). */
  scores: ScoreHistogram;
  feedback: prom.Counter<"result">;
  dropped: prom.Counter<"reason">;
  lost: prom.Counter<"kind">;
}

export function registerMetrics(
  registry: Registry,
  getDetector: () => Detector,
  lag: { seconds: number },
  ownedShards: () => number,
): PstMetrics {
  const d = getDetector;
  // The detector keeps running totals; its counters catch up with them when scraped (collect),
  // not on every batch: prom-client's inc hashes its labels on every call.
  const counter = <L extends string = never>(name: string, help: string, labelNames: L[] = []) =>
    new prom.Counter<L>({ name, help, labelNames, registers: [registry], collect: () => sync() });
  const segments = counter("vigil_pst_segments_total", "TCP segments processed");
  const frames = counter("vigil_pst_frames_total", "Frames consumed, TCP or not");
  const opened = counter("vigil_pst_connections_opened_total", "Connections that started being tracked");
  const evictions = counter("vigil_pst_evictions_total", "Connections evicted because the table was full (least recently used first)");
  const judgements = counter("vigil_pst_judgements_total", "Connections judged, by result", ["result"]);
  const blockedFrames = counter(
    "vigil_pst_blocked_frames_total",
    "Frames a drop rule of the kernel module had matched: skipped, since a blocked host's retries are no evidence against it",
  );
  const connectionsShed = counter(
    "vigil_pst_connections_shed_total",
    "Connections that ended unjudged because segments of theirs were shed under overload (see vigil_pst_shed_frames_total)",
  );
  const clockJumps = counter("vigil_pst_clock_jumps_held_total", "Frames whose capture time jumped past the idle timeout and waited for a second frame to confirm the jump");
  const malformed = counter("vigil_pst_malformed_frames_total", "Frames skipped because they could not be decoded, by reason", ["reason"]);
  for (let i = 1; i < MALFORMED_NAMES.length; i++) malformed.inc({ reason: MALFORMED_NAMES[i] }, 0);
  malformed.inc({ reason: "record_format" }, 0);
  judgements.inc({ result: "anomalous" }, 0);
  judgements.inc({ result: "normal" }, 0);
  new prom.Gauge({
    name: "vigil_pst_connections_tracked",
    help: "Connections in the table now",
    registers: [registry],
    collect() {
      this.set(d().table.size);
    },
  });
  new prom.Gauge({
    name: "vigil_pst_processing_lag_seconds",
    help: "Wall-clock time minus the capture time of the last frame processed",
    registers: [registry],
    collect() {
      this.set(lag.seconds);
    },
  });
  new prom.Gauge({
    name: "vigil_pst_open_windows",
    help: "Aggregation windows (per source and per local address) still open, with the first connections held until an address gets one",
    registers: [registry],
    collect() {
      this.set(d().pendingWindows());
    },
  });
  new prom.Gauge({
    name: "vigil_pst_owned_shards",
    help: "Frame shards this instance consumes",
    registers: [registry],
    collect() {
      this.set(ownedShards());
    },
  });
  new prom.Gauge({
    name: "vigil_pst_threshold",
    help: "Per-connection score threshold of each model (average negative log-likelihood per symbol)",
    labelNames: ["model"],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of d().models.models.values()) this.set({ model: m.name }, m.threshold.value);
    },
  });
  const seen = { segments: 0, frames: 0, opened: 0, evictions: 0, anomalous: 0, normal: 0, blocked: 0, clockJumps: 0, connectionsShed: 0, malformed: new Float64Array(MALFORMED_NAMES.length + 1) };
  function sync(): void {
    const det = d();
    const t = det.table;
    const step = (c: prom.Counter, now: number, key: "segments" | "frames" | "opened" | "evictions" | "anomalous" | "normal" | "blocked" | "clockJumps" | "connectionsShed", labels?: Record<string, string>) => {
      const delta = now - seen[key];
      if (delta > 0) labels ? (c as prom.Counter<string>).inc(labels, delta) : c.inc(delta);
      seen[key] = now;
    };
    step(segments, t.segments, "segments");
    step(frames, det.frames, "frames");
    step(opened, t.connectionsOpened, "opened");
    step(evictions, t.evictions, "evictions");
    step(blockedFrames, det.droppedFrames, "blocked");
    step(clockJumps, t.clockJumpsHeld, "clockJumps");
    step(connectionsShed, t.connectionsShed, "connectionsShed");
    step(judgements, det.judgedAnomalous, "anomalous", { result: "anomalous" });
    step(judgements, det.judgedNormal, "normal", { result: "normal" });
    for (let i = 1; i < det.malformed.length; i++) {
      const delta = det.malformed[i] - seen.malformed[i];
      if (delta > 0) malformed.inc({ reason: i < MALFORMED_NAMES.length ? MALFORMED_NAMES[i] : "record_format" }, delta);
      seen.malformed[i] = det.malformed[i];
    }
  }
  return {
    verdicts: new prom.Counter({ name: "vigil_pst_verdicts_total", help: "Verdicts published, by model and label", labelNames: ["model", "label"], registers: [registry] }),
    scores: new ScoreHistogram(
      registry,
      "vigil_pst_connection_score",
      "Judged connections' score: average negative log-likelihood per symbol (nats)",
      "model",
      [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 10],
    ),
    feedback: new prom.Counter({ name: "vigil_pst_feedback_total", help: "Feedback messages, by result", labelNames: ["result"], registers: [registry] }),
    lost: lossCounter(registry),
    dropped: new prom.Counter({ name: "vigil_pst_bus_messages_dropped_total", help: "Bus messages that could not be decoded or were for a shard no longer owned, by reason", labelNames: ["reason"], registers: [registry] }),
  };
}

function lossCounter(registry: Registry): prom.Counter<"kind"> {
  const c = new prom.Counter({ name: "vigil_pst_lost_total", help: "What never reached the detector: frames the capture dropped (kind=capture: ring full, NATS backed up or down), frames published but not received (kind=bus: cut off as a slow consumer; known at end of stream), batches missing from the sequence (kind=batches: the live view of both)", labelNames: ["kind"], registers: [registry] });
  for (const kind of ["capture", "bus", "batches"]) c.inc({ kind }, 0);
  return c;
}
