import type { ScorePublisher } from "@vigil/bus";
import { formatAddressWords } from "@vigil/frames";
import type { ConnTable } from "./conntrack.js";
import type { PstModel } from "./model.js";

interface RawScore {
  ts: number;
  score: number;
  threshold: number;
  model: string;
  serviceClass: string;
  family: number;
  /** Client address words then server address words. */
  words: Uint32Array;
  serverPort: number;
}

/**
 * Feeds every judged connection's score to the live score stream without formatting addresses
 * per connection (a spoofed flood judges hundreds of thousands a second): a uniform reservoir of
 * raw samples per interval, formatted and handed to the ScorePublisher only when it is flushed.
 */
export class ScoreSampler {
  private reservoir: RawScore[] = [];
  private seen = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly publisher: ScorePublisher,
    private readonly intervalMs = 1000,
    private readonly maxPerBatch = 500,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  add(t: ConnTable, slot: number, score: number, model: PstModel, serviceClass: string): void {
    this.seen++;
    let at = this.reservoir.length;
    if (at >= this.maxPerBatch) {
      at = Math.floor(Math.random() * this.seen);
      if (at >= this.maxPerBatch) return;
    }
    const words = t.endpointWords(slot);
    this.reservoir[at] = {
      ts: t.lastTs[slot],
      score,
      threshold: model.threshold.value,
      model: model.id,
      serviceClass,
      family: t.family[slot],
      words,
      serverPort: t.port(slot, false),
    };
  }

  flush(): void {
    const batch = this.reservoir;
    this.reservoir = [];
    this.seen = 0;
    for (const r of batch)
      this.publisher.add({
        ts: r.ts,
        score: r.score,
        threshold: r.threshold,
        key: `${formatAddressWords(r.words, 0, r.family)} -> ${formatAddressWords(r.words, 4, r.family)}:${r.serverPort} ${r.serviceClass}`,
        model: r.model,
        bmu: -1,
      });
    this.publisher.flush();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.flush();
  }
}
