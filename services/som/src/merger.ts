import { RecordCursor, RecordFormatError } from "@vigil/frames";

interface ShardQueue {
  shard: number;
  batches: Uint8Array[];
  cursor: RecordCursor;
  /** True when cursor holds an unconsumed record. */
  ready: boolean;
  /** cursor.tsMs of that record, read once: drain compares every shard's head for every record it releases. */
  headTs: number;
  /** Largest capture time (ms) received on this shard. */
  maxTs: number;
  /** Wall-clock ms of the last batch (or of when the shard was taken). */
  lastWall: number;
  ended: boolean;
}

export interface MergerOptions {
  /** A shard silent for this long (wall clock) no longer holds the others back, while capture time keeps pace with the wall clock. */
  idleMs: number;
  /** The same once capture time has run ahead of the wall clock (a replay at full speed). Defaults to idleMs. */
  replayIdleMs?: number;
  /** How far capture time may run ahead of the wall clock before the source counts as a full-speed replay. */
  replayLeadMs?: number;
  now?: () => number;
}

/** Capture time ahead of the wall clock by more than this marks a full-speed replay (live jitter is the capture's few ms of batching). */
export const DEFAULT_REPLAY_LEAD_MS = 1000;

/**
 * Merges the frame batches of the shards one instance owns into one stream in
 * capture-time order. Capture batches each shard separately, so one shard's
 * batch may cover seconds that another shard's later batch also covers;
 * processing batches as they arrive would put packets into windows that have
 * already closed. A record is released once every active shard has reached
 * its timestamp (the watermark); a shard with nothing buffered that has been
 * silent for idleMs stops holding the others back, so a quiet shard delays
 * detection by at most idleMs. Ties go to the lower shard, so the order
 * depends only on the data, not on how it was batched.
 *
 * How late a shard's records can be depends on the source. Live (and paced
 * replays), capture time keeps pace with the wall clock and a batch leaves
 * capture within its flush interval (5 ms), so a short idleMs is safe. A
 * full-speed replay packs seconds of capture time into each 5 ms, so there
 * lateness is only bounded in wall-clock terms, and a consumer running
 * behind the bus could mistake a shard whose batch is still queued for a
 * silent one: once capture time runs ahead of the wall clock by more than
 * replayLeadMs, the merger switches to the longer replayIdleMs.
 */
export class ShardMerger {
  private readonly queues = new Map<number, ShardQueue>();
  /** The queues' values, for the hot loops (no iterator per pass). */
  private list: ShardQueue[] = [];
  /** Walks each pushed batch once to validate it and find its latest record. */
  private readonly scan = new RecordCursor();
  private readonly now: () => number;
  /** Batches whose records overran their end: the valid prefix is kept. */
  malformedBatches = 0;
  buffered = 0;
  /** Capture time and wall clock at the first batch: how fast capture time runs tells a replay from a live source. */
  private origin: { wall: number; ts: number } | null = null;
  /** Sticky: once capture time has outrun the wall clock, the source is a full-speed replay. */
  fastReplay = false;

  constructor(
    private readonly sink: (c: RecordCursor, shard: number) => void,
    private readonly opts: MergerOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  get shards(): number[] {
    return [...this.queues.keys()].sort((a, b) => a - b);
  }

  /** Makes the merger wait for these shards (and only these). Data of dropped shards is discarded. */
  setShards(shards: Iterable<number>): void {
    const want = new Set(shards);
    for (const s of [...this.queues.keys()]) if (!want.has(s)) this.queues.delete(s);
    for (const s of want)
      if (!this.queues.has(s))
        this.queues.set(s, { shard: s, batches: [], cursor: new RecordCursor(), ready: false, headTs: 0, maxTs: -Infinity, lastWall: this.now(), ended: false });
    this.list = [...this.queues.values()];
  }

  /** Queues a batch. Returns false when the batch was truncated because a record overran it. */
  push(shard: number, records: Uint8Array): boolean {
    const q = this.queues.get(shard);
    if (!q) return true;
    q.lastWall = this.now();
    const scan = this.scan.reset(records);
    let validEnd = 0;
    let ok = true;
    try {
      while (scan.next()) {
        const ts = scan.tsMs;
        if (ts > q.maxTs) q.maxTs = ts;
        validEnd = scan.dataOffset + scan.capLen;
      }
    } catch (err) {
      if (!(err instanceof RecordFormatError)) throw err;
      this.malformedBatches++;
      ok = false;
    }
    if (validEnd > 0) {
      this.observeClock(q.lastWall, q.maxTs);
      q.batches.push(validEnd === records.byteLength ? records : records.subarray(0, validEnd));
      this.buffered += validEnd;
      if (!q.ready) this.advance(q);
    }
    return ok;
  }

  /** The shard has ended (end of a finite stream). */
  end(shard: number): void {
    const q = this.queues.get(shard);
    if (q) q.ended = true;
  }

  get allEnded(): boolean {
    if (this.queues.size === 0) return false;
    for (const q of this.queues.values()) if (!q.ended) return false;
    return true;
  }

  private advance(q: ShardQueue): void {
    for (;;) {
      if (q.ready && q.cursor.next()) {
        q.headTs = q.cursor.tsMs;
        return;
      }
      if (q.ready) {
        const done = q.batches.shift()!;
        this.buffered -= done.byteLength;
      }
      q.ready = false;
      if (q.batches.length === 0) return;
      q.cursor.reset(q.batches[0]);
      q.ready = true;
      if (q.cursor.next()) {
        q.headTs = q.cursor.tsMs;
        return;
      }
    }
  }

  private observeClock(wall: number, ts: number): void {
    if (this.fastReplay) return;
    if (!this.origin) {
      this.origin = { wall, ts };
      return;
    }
    if (ts - this.origin.ts - (wall - this.origin.wall) > (this.opts.replayLeadMs ?? DEFAULT_REPLAY_LEAD_MS)) this.fastReplay = true;
  }

  /** The silence after which a shard with nothing buffered stops holding the others back. */
  get idleMs(): number {
    return this.fastReplay ? (this.opts.replayIdleMs ?? this.opts.idleMs) : this.opts.idleMs;
  }

  private watermark(): number {
    const now = this.now();
    const idleMs = this.idleMs;
    let wm = Infinity;
    for (const q of this.list) {
      if (q.ended) continue;
      if (!q.ready && now - q.lastWall > idleMs) continue;
      if (q.maxTs < wm) wm = q.maxTs;
    }
    return wm;
  }

  /** Releases every record at or below the watermark (all of them when force is set). */
  drain(force = false): number {
    let released = 0;
    const wm = force ? Infinity : this.watermark();
    for (;;) {
      let best: ShardQueue | null = null;
      let bestTs = Infinity;
      let secondTs = Infinity;
      for (const q of this.list) {
        if (!q.ready) continue;
        const ts = q.headTs;
        if (ts < bestTs || (ts === bestTs && best !== null && q.shard < best.shard)) {
          secondTs = bestTs;
          bestTs = ts;
          best = q;
        } else if (ts < secondTs) secondTs = ts;
      }
      if (!best || bestTs > wm) return released;
      const limit = Math.min(wm, secondTs);
      do {
        this.sink(best.cursor, best.shard);
        released++;
        this.advance(best);
      } while (best.ready && best.headTs < limit);
    }
  }
}
