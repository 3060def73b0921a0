import { prom, type Registry } from "@vigil/metrics";

/** The notifier's metrics (vigil_notify_*). Targets are labelled by their configured name, never their URL. */
export class NotifyMetrics {
  readonly events: prom.Counter<"kind">;
  readonly malformed: prom.Counter<"subject">;
  readonly sent: prom.Counter<"target">;
  readonly failedAttempts: prom.Counter<"target">;
  readonly deadLetters: prom.Counter<"target">;
  readonly dropped: prom.Counter<"target">;
  readonly queueDepth: prom.Gauge<"target">;
  readonly deliverySeconds: prom.Histogram<"target">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new prom.Counter({ name: "vigil_notify_events_total", help: "Bus messages received, by what they became (block, unblock, false-alarm, confirmed, ignored)", labelNames: ["kind"], registers });
    this.malformed = new prom.Counter({ name: "vigil_notify_bus_messages_malformed_total", help: "Messages on vigil.events.rules or vigil.feedback that did not decode", labelNames: ["subject"], registers });
    this.sent = new prom.Counter({ name: "vigil_notify_sent_total", help: "Notifications a target accepted", labelNames: ["target"], registers });
    this.failedAttempts = new prom.Counter({ name: "vigil_notify_failed_attempts_total", help: "Delivery attempts that failed (each retry counts)", labelNames: ["target"], registers });
    this.deadLetters = new prom.Counter({ name: "vigil_notify_dead_letters_total", help: "Notifications given up on: retries exhausted or a permanent error (HTTP 4xx)", labelNames: ["target"], registers });
    this.dropped = new prom.Counter({ name: "vigil_notify_dropped_total", help: "Notifications not queued because the target's queue was full (summarized in one later message)", labelNames: ["target"], registers });
    this.queueDepth = new prom.Gauge({ name: "vigil_notify_queue_depth", help: "Notifications waiting for a target", labelNames: ["target"], registers });
    this.deliverySeconds = new prom.Histogram({
      name: "vigil_notify_delivery_seconds",
      help: "From queued to accepted by the target, retries included",
      labelNames: ["target"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
  }
}
