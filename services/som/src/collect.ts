import { FEATURE_COUNT } from "./features.js";
import type { WindowParameters } from "./model.js";
import { Windower } from "./windower.js";

/** Feature vectors of every window of one stream, as training sees them (one instance, every shard). */
export class FeatureCollector {
  readonly vectors: number[][] = [];
  private readonly windower: Windower;
  private readonly raw = new Float64Array(FEATURE_COUNT);

  constructor(window: WindowParameters, opts: { minPackets?: number } = {}) {
    const minPackets = opts.minPackets ?? 1;
    this.windower = new Windower(window, (w, closedBy) => {
      if (w.packets < minPackets) return;
      w.features(this.raw, closedBy === "packets" ? "packets" : "time", 1);
      this.vectors.push(Array.from(this.raw));
    });
  }

  get frames(): number {
    return this.windower.frames;
  }

  get malformed(): number {
    return this.windower.malformed;
  }

  ingest(records: Uint8Array): void {
    this.windower.ingestRecords(records);
  }

  finish(): number[][] {
    this.windower.finish();
    return this.vectors;
  }
}
