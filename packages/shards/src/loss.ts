import type { FrameBatch } from "@vigil/proto";

/**
 * Where frames went missing before a detector saw them:
 * - capture: lost before publishing (ring full, NATS backed up or down), as the
 *   capture counted them in dropped_before;
 * - bus: published but never received (a slow consumer cut off by NATS), from
 *   the end of stream's frames_total; known only for streams seen from their start;
 * - batches: sequence gaps, batches not received (the capture's own drops
 *   included): the live view of both, as live sources never end.
 */
export type LossKind = "capture" | "bus" | "batches";

interface ShardStream {
  lastSeq: number;
  frames: number;
  /** The first batch seen was the stream's first: frames_total can be compared. */
  fromStart: boolean;
}

/** Follows every (source, shard) stream a detector receives and reports what it misses. */
export class StreamLoss {
  private readonly streams = new Map<string, Map<number, ShardStream>>();

  constructor(private readonly report: (kind: LossKind, count: number) => void) {}

  observe(shard: number, b: FrameBatch): void {
    let bySource = this.streams.get(b.sourceId);
    if (!bySource) this.streams.set(b.sourceId, (bySource = new Map()));
    let s = bySource.get(shard);
    if (!s) bySource.set(shard, (s = { lastSeq: b.seq - 1, frames: 0, fromStart: b.seq === 1 }));
    if (b.seq > s.lastSeq + 1) this.report("batches", b.seq - s.lastSeq - 1);
    if (b.seq > s.lastSeq) s.lastSeq = b.seq;
    if (b.droppedBefore > 0) this.report("capture", b.droppedBefore);
    s.frames += b.frameCount;
    if (b.endOfStream) {
      if (s.fromStart && b.framesTotal > s.frames) this.report("bus", b.framesTotal - s.frames);
      bySource.delete(shard);
      if (!bySource.size) this.streams.delete(b.sourceId);
    }
  }

  /** A shard handed to another instance: its streams restart when it comes back. */
  forget(shard: number): void {
    for (const [id, bySource] of this.streams) {
      bySource.delete(shard);
      if (!bySource.size) this.streams.delete(id);
    }
  }
}
