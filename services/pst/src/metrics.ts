import { MALFORMED_NAMES } from "@vigil/frames";
import { prom, type Registry } from "@vigil/metrics";
import type { Detector } from "./detector.js";

/** Metrics are read from the detector's counters at scrape time: the hot path only bumps plain numbers. */
export function registerMetrics(registry: Registry, getDetector: () => Detector, lag: { seconds: number }): { verdicts: prom.Counter<"model" | "label">; scores: prom.Histogram<"model">; feedback: prom.Counter<"result">; dropped: prom.Counter<"reason"> } {
  const d = getDetector;
  new prom.Gauge({
    name: "vigil_pst_segments_total",
    help: "TCP segments processed (a counter exported as a gauge sampled from the detector)",
    registers: [registry],
    collect() {
      this.set(d().table.segments);
    },
  });
  new prom.Gauge({
    name: "vigil_pst_frames_total",
    help: "Frames consumed, TCP or not",
    registers: [registry],
    collect() {
      this.set(d().frames);
    },
  });
  new prom.Gauge({
    name: "vigil_pst_connections_tracked",
    help: "Connections in the table now",
    registers: [registry],
    collect() {
      this.set(d().table.size);
    },
  });
  new prom.Gauge({
    name: "vigil_pst_connections_opened_total",
    help: "Connections started tracking",
    registers: [registry],
    collect() {
      this.set(d().table.connectionsOpened);
    },
  });
  new prom.Gauge({
    name: "vigil_pst_evictions_total",
    help: "Connections evicted because the table was full (least recently used first)",
    registers: [registry],
    collect() {
      this.set(d().table.evictions);
    },
  });
  new prom.Gauge({
    name: "vigil_pst_judgements_total",
    help: "Connections judged, by result",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      this.set({ result: "anomalous" }, d().judgedAnomalous);
      this.set({ result: "normal" }, d().judgedNormal);
    },
  });
  new prom.Gauge({
    name: "vigil_pst_malformed_frames_total",
    help: "Frames skipped because they could not be decoded, by reason",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      const m = d().malformed;
      for (let i = 1; i < MALFORMED_NAMES.length; i++) this.set({ reason: MALFORMED_NAMES[i] }, m[i]);
      this.set({ reason: "record_format" }, m[MALFORMED_NAMES.length]);
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
    help: "Aggregation windows (per source and per local address) still open",
    registers: [registry],
    collect() {
      this.set(d().pendingWindows());
    },
  });
  return {
    verdicts: new prom.Counter({ name: "vigil_pst_verdicts_total", help: "Verdicts published, by model and label", labelNames: ["model", "label"], registers: [registry] }),
    scores: new prom.Histogram({
      name: "vigil_pst_connection_score",
      help: "Judged connections' average negative log-likelihood per symbol (nats)",
      labelNames: ["model"],
      buckets: [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 10],
      registers: [registry],
    }),
    feedback: new prom.Counter({ name: "vigil_pst_feedback_total", help: "Feedback messages, by result", labelNames: ["result"], registers: [registry] }),
    dropped: new prom.Counter({ name: "vigil_pst_bus_messages_dropped_total", help: "Bus messages that could not be decoded, by reason", labelNames: ["reason"], registers: [registry] }),
  };
}
