import type { NatsConnection } from "@nats-io/transport-node";
import type { ScoreSample } from "@vigil/proto";
import { codecs } from "./codec.js";
import { subjects } from "./subjects.js";

/**
 * Collects a detector's scores and publishes them as one ScoreBatch per
 * interval on vigil.scores.<detector>, for live views. Bounded: past
 * maxPerBatch samples in an interval, only every n-th is kept, so a flood
 * costs the bus one batch a second whatever its rate.
 */
export class ScorePublisher {
  private samples: ScoreSample[] = [];
  private seen = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly detector: string,
    private readonly instance: string,
    private readonly intervalMs = 1000,
    private readonly maxPerBatch = 500,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  add(sample: ScoreSample): void {
    this.seen++;
    if (this.samples.length < this.maxPerBatch) {
      this.samples.push(sample);
      return;
    }
    // Reservoir sampling keeps a uniform sample of the interval's scores.
    const j = Math.floor(Math.random() * this.seen);
    if (j < this.maxPerBatch) this.samples[j] = sample;
  }

  flush(): void {
    if (this.samples.length === 0 || this.nc.isClosed()) return;
    this.nc.publish(
      subjects.scores(this.detector),
      codecs.scoreBatch.encode({ detector: this.detector, instance: this.instance, scores: this.samples }),
    );
    this.samples = [];
    this.seen = 0;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.flush();
  }
}

/** Answers requests on vigil.models.<detector> with the model's JSON export. */
export function serveModelExport(nc: NatsConnection, detector: string, exportJson: () => unknown): { unsubscribe(): void } {
  return nc.subscribe(subjects.models(detector), {
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      try {
        msg.respond(JSON.stringify(exportJson()));
      } catch (e) {
        msg.respond(JSON.stringify({ error: (e as Error).message }));
      }
    },
  });
}
