import { prom, type Registry } from "@vigil/metrics";

export type DropReason = "consumer_behind" | "bus_down" | "bus_backpressure" | "publish_error";

/** The capture service's metrics (vigil_capture_*), registered on the given registry. */
export class CaptureMetrics {
  readonly framesCaptured: prom.Counter<"source">;
  readonly bytesCaptured: prom.Counter<"source">;
  readonly ringDrops: prom.Counter<"source">;
  readonly framesSkipped: prom.Counter<"reason">;
  readonly framesDropped: prom.Counter<"reason">;
  readonly batchesDropped: prom.Counter<"reason">;
  readonly framesPublished: prom.Counter;
  readonly batchesPublished: prom.Counter;
  readonly bytesPublished: prom.Counter;
  readonly publishErrors: prom.Counter;
  readonly batchFill: prom.Histogram;
  readonly busConnected: prom.Gauge;
  readonly shardFrames: prom.Counter<"shard">;
  readonly shardBytes: prom.Counter<"shard">;
  private last: Record<string, number> = {};
  /** Called before every scrape: folds in the native counters so /metrics is current. */
  onCollect: (() => void) | null = null;

  constructor(registry: Registry) {
    const registers = [registry];
    const metrics = this;
    this.framesCaptured = new prom.Counter({
      name: "vigil_capture_frames_captured_total",
      help: "IP frames read from the source",
      labelNames: ["source"],
      registers,
      collect() {
        metrics.onCollect?.();
      },
    });
    this.bytesCaptured = new prom.Counter({ name: "vigil_capture_captured_bytes_total", help: "L3 bytes on the wire of the frames read", labelNames: ["source"], registers });
    this.ringDrops = new prom.Counter({ name: "vigil_capture_ring_drops_total", help: "Frames lost before capture saw them (kernel ring or AF_PACKET ring full)", labelNames: ["source"], registers });
    this.framesSkipped = new prom.Counter({ name: "vigil_capture_frames_skipped_total", help: "Frames read but not published: non-IP, malformed, filtered out, loopback (kernel ring)", labelNames: ["reason"], registers });
    this.framesDropped = new prom.Counter({ name: "vigil_capture_frames_dropped_total", help: "Frames captured but not published", labelNames: ["reason"], registers });
    this.batchesDropped = new prom.Counter({ name: "vigil_capture_batches_dropped_total", help: "Batches not published (NATS down or backed up)", labelNames: ["reason"], registers });
    this.framesPublished = new prom.Counter({ name: "vigil_capture_frames_published_total", help: "Frames published on vigil.frames.*", registers });
    this.batchesPublished = new prom.Counter({ name: "vigil_capture_batches_published_total", help: "FrameBatch messages published", registers });
    this.bytesPublished = new prom.Counter({ name: "vigil_capture_published_bytes_total", help: "Bytes of FrameBatch messages published", registers });
    this.publishErrors = new prom.Counter({ name: "vigil_capture_publish_errors_total", help: "Publish calls that threw", registers });
    this.batchFill = new prom.Histogram({
      name: "vigil_capture_batch_fill_ratio",
      help: "Batch size over the configured batch bytes when published (low: flushed by time)",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1],
      registers,
    });
    this.busConnected = new prom.Gauge({ name: "vigil_capture_bus_connected", help: "1 while connected to NATS", registers });
    this.shardFrames = new prom.Counter({ name: "vigil_capture_shard_frames_total", help: "Frames published, by shard subject vigil.frames.N (how evenly remote addresses spread)", labelNames: ["shard"], registers });
    this.shardBytes = new prom.Counter({ name: "vigil_capture_shard_bytes_total", help: "Bytes of FrameBatch messages published, by shard subject vigil.frames.N", labelNames: ["shard"], registers });
  }

  /**
   * Per-shard counters, one child per shard created at zero (bounded by the
   * shard count), handed to the publisher so a batch costs two increments.
   */
  shardCounters(shardCount: number): Array<{ frames: prom.Counter.Internal; bytes: prom.Counter.Internal }> {
    return Array.from({ length: shardCount }, (_, i) => {
      const shard = String(i);
      const frames = this.shardFrames.labels({ shard });
      const bytes = this.shardBytes.labels({ shard });
      frames.inc(0);
      bytes.inc(0);
      return { frames, bytes };
    });
  }

  /** Folds the native reader's counters (monotonic since open) into the metrics. */
  /** Creates the per-source series at zero so they exist before the first frame. */
  initSource(source: string): void {
    this.framesCaptured.inc({ source }, 0);
    this.bytesCaptured.inc({ source }, 0);
    this.ringDrops.inc({ source }, 0);
    for (const reason of ["consumer_behind", "bus_down", "bus_backpressure", "publish_error"]) {
      this.framesDropped.inc({ reason }, 0);
      this.batchesDropped.inc({ reason }, 0);
    }
    for (const reason of ["non_ip", "malformed", "filtered", "loopback"]) this.framesSkipped.inc({ reason }, 0);
  }

  syncNative(source: string, stats: Record<string, number>): void {
    const delta = (key: string): number => {
      const now = stats[key] ?? 0;
      const d = now - (this.last[key] ?? 0);
      this.last[key] = now;
      return d > 0 ? d : 0;
    };
    this.framesCaptured.inc({ source }, delta("frames_captured"));
    this.bytesCaptured.inc({ source }, delta("bytes_captured"));
    this.ringDrops.inc({ source }, delta("ring_drops"));
    this.framesDropped.inc({ reason: "consumer_behind" }, delta("queue_drops"));
    this.framesSkipped.inc({ reason: "non_ip" }, delta("skipped_non_ip"));
    this.framesSkipped.inc({ reason: "malformed" }, delta("skipped_malformed"));
    this.framesSkipped.inc({ reason: "filtered" }, delta("filtered_out"));
    this.framesSkipped.inc({ reason: "loopback" }, delta("skipped_loopback"));
  }
}
