import type { NatsConnection } from "@nats-io/transport-node";
import type { ScoreSample } from "@vigil/proto";
import { codecs } from "./codec.js";
import { subjects } from "./subjects.js";

export interface ScorePublisherOptions<Raw> {
  /**
   * Turns a kept sample into what goes on the wire. Applied only at flush, to the few samples the
   * reservoir kept, so a detector can keep raw values (address words, say) and format them only
   * for the samples that are published.
   */
  format: (raw: Raw) => ScoreSample;
  intervalMs?: number;
  maxPerBatch?: number;
}

/**
 * Collects a detector's scores and publishes them as one ScoreBatch per interval on
 * vigil.scores.<detector>, for live views. Bounded: a uniform reservoir of at most maxPerBatch
 * samples per interval, so a flood costs the bus one batch a second whatever its rate.
 */
export class ScorePublisher<Raw = ScoreSample> {
  private reservoir: Raw[] = [];
  private seen = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly format: (raw: Raw) => ScoreSample;
  private readonly intervalMs: number;
  private readonly maxPerBatch: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly detector: string,
    private readonly instance: string,
    opts: ScorePublisherOptions<Raw>,
  ) {
    this.format = opts.format;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.maxPerBatch = opts.maxPerBatch ?? 500;
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * Counts one score and says where to keep it: a reservoir index for fill(), or -1 when the
   * reservoir passes it over. Lets a hot path skip building samples that would be dropped.
   */
  reserve(): number {
    this.seen++;
    if (this.reservoir.length < this.maxPerBatch) return this.reservoir.length;
    // Reservoir sampling keeps a uniform sample of the interval's scores.
    const j = Math.floor(Math.random() * this.seen);
    return j < this.maxPerBatch ? j : -1;
  }

  fill(at: number, raw: Raw): void {
    this.reservoir[at] = raw;
  }

  add(raw: Raw): void {
    const at = this.reserve();
    if (at >= 0) this.reservoir[at] = raw;
  }

  flush(): void {
    const kept = this.reservoir;
    this.reservoir = [];
    this.seen = 0;
    if (kept.length === 0 || this.nc.isClosed()) return;
    this.nc.publish(
      subjects.scores(this.detector),
      codecs.scoreBatch.encode({ detector: this.detector, instance: this.instance, scores: kept.map(this.format) }),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.flush();
  }
}

/** The format hook for detectors whose scores are already ScoreSamples. */
export const identityScore = (sample: ScoreSample): ScoreSample => sample;
