import { clientConnected, clientPendingBytes, publishHeadroom, publishInPlace, subjects, type NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import type { SourceBatch } from "@vigil/packet-sources";
import { FrameBatchEncoder } from "./encode.js";
import type { CaptureMetrics, DropReason } from "./metrics.js";

export interface ShardTotals {
  seq: number;
  framesPublished: number;
  framesDropped: number;
}

/**
 * Publishes a source's batches on vigil.frames.<shard>. Sequence numbers are
 * per shard and count dropped batches too, so a consumer sees the gap, and the
 * next batch that goes out carries the lost frames in dropped_before.
 */
export class BatchPublisher {
  private readonly encoder: FrameBatchEncoder;
  private readonly shards: ShardTotals[];
  private readonly pendingDrops: number[];
  private readonly subjectOf: string[];
  private readonly shardMetrics: ReturnType<CaptureMetrics["shardCounters"]>;
  batchesPublished = 0;
  bytesPublished = 0;

  constructor(
    private readonly nc: NatsConnection,
    readonly sourceId: string,
    readonly shardCount: number,
    private readonly batchBytes: number,
    private readonly maxPendingBytes: number,
    private readonly metrics: CaptureMetrics,
    private readonly log?: Logger,
    /** A recorded capture replayed: every batch says so (FrameBatch.replay), whatever the source id. */
    replay = false,
  ) {
    this.encoder = new FrameBatchEncoder(sourceId, shardCount, replay);
    this.shards = Array.from({ length: shardCount }, () => ({ seq: 0, framesPublished: 0, framesDropped: 0 }));
    this.pendingDrops = new Array<number>(shardCount).fill(0);
    this.subjectOf = Array.from({ length: shardCount }, (_, i) => subjects.frames(i));
    this.shardMetrics = metrics.shardCounters(shardCount);
  }

  /** Headroom to ask the source for, so that envelopes and the NATS protocol line are written in place. */
  get headroomNeeded(): number {
    return this.encoder.headroomNeeded + publishHeadroom(this.subjectOf[this.shardCount - 1] ?? subjects.frames(0));
  }

  totals(): readonly ShardTotals[] {
    return this.shards;
  }

  connected(): boolean {
    return clientConnected(this.nc);
  }

  /** True when the client holds more unsent bytes than allowed. */
  backedUp(): boolean {
    return clientPendingBytes(this.nc) > this.maxPendingBytes;
  }

  /** Waits until the client has sent enough to take more, or lost the connection. */
  async waitForRoom(): Promise<void> {
    while (this.connected() && clientPendingBytes(this.nc) > this.maxPendingBytes / 2) await new Promise((r) => setTimeout(r, 1));
  }

  /** Waits for the connection to come back (end of stream must not be lost to a blip). */
  async waitConnected(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.connected()) {
      if (this.nc.isClosed() || Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  publish(batch: SourceBatch): boolean {
    const shard = batch.shard;
    const totals = this.shards[shard];
    const dropped = this.pendingDrops[shard] + batch.droppedBefore;
    const seq = ++totals.seq;
    let reason: DropReason | null = null;
    if (!this.connected()) reason = "bus_down";
    else if (this.backedUp()) reason = "bus_backpressure";
    if (reason === null) {
      const msg = this.encoder.encodeInPlace({ seq, shard, frameCount: batch.frameCount, droppedBefore: dropped, records: batch.records }, batch.headroom ?? 0);
      try {
        // The batch's memory is its own (a source never reuses it): the message may go out without a copy.
        const room = msg.buffer === batch.records.buffer ? msg.byteOffset : 0;
        publishInPlace(this.nc, this.subjectOf[shard], msg, room);
      } catch (err) {
        this.metrics.publishErrors.inc();
        this.log?.warn({ err, shard }, "publish failed");
        reason = "publish_error";
      }
      if (reason === null) {
        this.pendingDrops[shard] = 0;
        totals.framesPublished += batch.frameCount;
        this.batchesPublished++;
        this.bytesPublished += msg.byteLength;
        this.metrics.batchesPublished.inc();
        this.metrics.bytesPublished.inc(msg.byteLength);
        this.metrics.framesPublished.inc(batch.frameCount);
        this.shardMetrics[shard].frames.inc(batch.frameCount);
        this.shardMetrics[shard].bytes.inc(msg.byteLength);
        this.metrics.batchFill.observe(Math.min(1, batch.records.byteLength / this.batchBytes));
        return true;
      }
    }
    this.pendingDrops[shard] = dropped + batch.frameCount;
    totals.framesDropped += batch.frameCount;
    this.metrics.framesDropped.inc({ reason }, batch.frameCount);
    this.metrics.batchesDropped.inc({ reason });
    return false;
  }

  /** After a shard's last batch: FrameBatch{end_of_stream, frames_total} on every shard. */
  publishEndOfStream(): void {
    for (let shard = 0; shard < this.shardCount; shard++) {
      const totals = this.shards[shard];
      const msg = this.encoder.encode({
        seq: ++totals.seq,
        shard,
        frameCount: 0,
        droppedBefore: this.pendingDrops[shard],
        endOfStream: true,
        framesTotal: totals.framesPublished,
      });
      this.pendingDrops[shard] = 0;
      this.nc.publish(this.subjectOf[shard], msg);
    }
  }
}
