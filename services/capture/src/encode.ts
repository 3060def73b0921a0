/**
 * FrameBatch (proto/vigil/v1/frames.proto) written by hand: the generic
 * encoder copies the records through a growable writer; here the envelope is
 * a few varints around one copy of the records. Field numbers and wire types
 * follow the .proto; the test suite checks the result with the generated
 * decoder.
 */
const TAG_SOURCE_ID = (1 << 3) | 2;
const TAG_SEQ = (2 << 3) | 0;
const TAG_SHARD = (3 << 3) | 0;
const TAG_SHARD_COUNT = (4 << 3) | 0;
const TAG_FRAME_COUNT = (5 << 3) | 0;
const TAG_RECORDS = (6 << 3) | 2;
const TAG_DROPPED_BEFORE = (7 << 3) | 0;
const TAG_END_OF_STREAM = (8 << 3) | 0;
const TAG_FRAMES_TOTAL = (9 << 3) | 0;
const TAG_REPLAY = (10 << 3) | 0;

function varintLen(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function putVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

export interface BatchFields {
  seq: number;
  shard: number;
  frameCount: number;
  droppedBefore: number;
  records?: Uint8Array;
  endOfStream?: boolean;
  framesTotal?: number;
}

/**
 * Encodes FrameBatch messages of one source. What every message of the source carries, its id and whether it is
 * a replay, is encoded once, as a prefix.
 */
export class FrameBatchEncoder {
  private readonly prefix: Uint8Array;

  constructor(
    readonly sourceId: string,
    readonly shardCount: number,
    readonly replay = false,
  ) {
    const id = Buffer.from(sourceId, "utf8");
    const idLen = id.length ? 1 + varintLen(id.length) + id.length : 0;
    const prefix = Buffer.alloc(idLen + (replay ? 2 : 0));
    if (id.length) {
      prefix[0] = TAG_SOURCE_ID;
      prefix.set(id, putVarint(prefix, 1, id.length));
    }
    if (replay) {
      prefix[idLen] = TAG_REPLAY;
      prefix[idLen + 1] = 1;
    }
    this.prefix = prefix;
  }

  /** Bytes of headroom encodeInPlace() needs at most for this source. */
  get headroomNeeded(): number {
    return this.prefix.length + 6 * 11;
  }

  /**
   * Writes the envelope into the free bytes before `records` (a batch from a
   * source opened with headroom) and returns the whole message as a view of
   * the same memory: no copy of the records. Falls back to encode() when the
   * headroom is too small. Fields before the records, records last: protobuf
   * does not care about field order.
   */
  encodeInPlace(f: BatchFields & { records: Buffer }, headroom: number): Buffer {
    const recLen = f.records.byteLength;
    if (recLen === 0) return this.encode(f);
    let size = this.prefix.length + 1 + varintLen(recLen);
    if (f.seq) size += 1 + varintLen(f.seq);
    if (f.shard) size += 1 + varintLen(f.shard);
    if (this.shardCount) size += 1 + varintLen(this.shardCount);
    if (f.frameCount) size += 1 + varintLen(f.frameCount);
    if (f.droppedBefore) size += 1 + varintLen(f.droppedBefore);
    if (f.endOfStream || f.framesTotal || size > headroom) return this.encode(f);
    const start = f.records.byteOffset - size;
    const out = Buffer.from(f.records.buffer, start, size + recLen);
    let p = this.putHead(out, f);
    if (f.droppedBefore) {
      out[p++] = TAG_DROPPED_BEFORE;
      p = putVarint(out, p, f.droppedBefore);
    }
    out[p++] = TAG_RECORDS;
    putVarint(out, p, recLen);
    return out;
  }

  /** Writes the source id prefix and the fields every batch message starts with; returns the next offset. */
  private putHead(out: Buffer, f: BatchFields): number {
    out.set(this.prefix, 0);
    let p = this.prefix.length;
    if (f.seq) {
      out[p++] = TAG_SEQ;
      p = putVarint(out, p, f.seq);
    }
    if (f.shard) {
      out[p++] = TAG_SHARD;
      p = putVarint(out, p, f.shard);
    }
    if (this.shardCount) {
      out[p++] = TAG_SHARD_COUNT;
      p = putVarint(out, p, this.shardCount);
    }
    if (f.frameCount) {
      out[p++] = TAG_FRAME_COUNT;
      p = putVarint(out, p, f.frameCount);
    }
    return p;
  }

  encode(f: BatchFields): Buffer {
    const recLen = f.records?.byteLength ?? 0;
    let size = this.prefix.length;
    if (f.seq) size += 1 + varintLen(f.seq);
    if (f.shard) size += 1 + varintLen(f.shard);
    if (this.shardCount) size += 1 + varintLen(this.shardCount);
    if (f.frameCount) size += 1 + varintLen(f.frameCount);
    if (recLen) size += 1 + varintLen(recLen) + recLen;
    if (f.droppedBefore) size += 1 + varintLen(f.droppedBefore);
    if (f.endOfStream) size += 2;
    if (f.framesTotal) size += 1 + varintLen(f.framesTotal);
    const out = Buffer.allocUnsafe(size);
    let p = this.putHead(out, f);
    if (recLen) {
      out[p++] = TAG_RECORDS;
      p = putVarint(out, p, recLen);
      out.set(f.records!, p);
      p += recLen;
    }
    if (f.droppedBefore) {
      out[p++] = TAG_DROPPED_BEFORE;
      p = putVarint(out, p, f.droppedBefore);
    }
    if (f.endOfStream) {
      out[p++] = TAG_END_OF_STREAM;
      out[p++] = 1;
    }
    if (f.framesTotal) {
      out[p++] = TAG_FRAMES_TOTAL;
      p = putVarint(out, p, f.framesTotal);
    }
    return out;
  }
}
