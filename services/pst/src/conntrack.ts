import { DIR_EGRESS, DIR_INGRESS, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type PacketDecoder, type RecordCursor } from "@vigil/frames";
import { CONTEXT_SIZE, DIR_CLIENT, DIR_SERVER, PREDICT_SIZE, SYM_BOS, SYM_END } from "@vigil/models";
import type { ModelSet } from "./model.js";

import { Handshakes } from "./handshake.js";
import { JudgedConnection } from "./judged.js";
import { SlotLists } from "./lists.js";
import { ConnRecords, keyHash, S_CLIENT_IS_A, S_REMOTE_IS_CLIENT } from "./records.js";
import {
  F32_PEAK, F64_FIRST_TS, F64_LAST_TS, F64_NLL_SUM, HEAD_LEN, REC_BYTES, REC_F64, REC_U16, REC_U32, REC_U8, RING_LEN, RING_MASK,
  U16_RING, U16_SHARD, U16_STATE, U32_ACKS, U32_ADDR_A, U32_ADDR_B, U32_NSYM, U32_PACKETS, U32_PORTS, U8_CLS, U8_FAMILY,
} from "./layout.js";

export { HEAD_LEN, RING_LEN } from "./layout.js";

// state bits
const S_FIN_C = 4;
const S_FIN_S = 8;
const S_CLOSED = 16;
const S_FLAGGED = 32;
const S_SERVER_SPOKE = 64;
/** The client acknowledged something the server sent: the connection carried a conversation. */
const S_ESTABLISHED = 128;
/**
 * Segments of this connection were shed under overload (see shedsSegment): what is seen of it is
 * incomplete (missing data, not missing answers), so it is never judged. Above the handshake bits.
 */
const S_SHED = 0x400;

export const enum EndReason {
  Flagged = 0,
  Fin = 1,
  Rst = 2,
  Idle = 3,
  Evicted = 4,
  EndOfStream = 5,
}

export const END_REASON_NAMES = ["threshold", "fin", "rst", "idle", "evicted", "end-of-stream"] as const;

/** How a judged connection compares with its model's calibrated thresholds. */
export const LEVEL_NORMAL = 0;
/** Above the suspicion threshold (a lower percentile of benign): evidence only in numbers. */
export const LEVEL_SUSPICIOUS = 1;
/** Above the threshold. */
export const LEVEL_ANOMALOUS = 2;

/**
 * Receives every judgement: once per connection, when it crosses the threshold or when it ends.
 * The connection is a view that is valid only during the call.
 */
export interface JudgementSink {
  onJudged(c: JudgedConnection, level: number, score: number, reason: EndReason): void;
  /** The end of a connection judged before it ended (its symbols are complete now). */
  onEnded?(c: JudgedConnection, reason: EndReason): void;
}

export interface ConnTableOptions {
  capacity: number;
  /** Upper bound on shard numbers (exclusive); the detector passes its lanes (a capture source on a shard) as shards. */
  shardCount: number;
  /** Seconds of capture time without a segment after which an open connection is judged and dropped. */
  idleTimeout: number;
  /** Seconds a closed connection stays to absorb late ACKs and retransmitted FIN/RST. */
  linger: number;
  /** Symbols before a connection may be judged early, on crossing its threshold. */
  minSymbols: number;
}

function checkedCapacity(cap: number): number {
  if (!Number.isInteger(cap) || cap < 1 || cap > 1 << 26) throw new RangeError(`connection capacity ${cap} must be 1..${1 << 26}`);
  return cap;
}

// The head is copied out of the ring when the ring is about to overwrite it (see addSymbol).
if (HEAD_LEN > RING_LEN) throw new Error("layout: the ring must hold the whole head");

/**
 * Connection state in one record per connection (see layout.ts): an open-addressing hash table
 * (linear probing, backward-shift deletion) of slots keyed by the canonical 5-tuple, and per
 * shard two doubly linked lists through the records: open connections in least-recently-used
 * order and closed ones in closing order. Time is capture time, per shard, so judgements do not
 * depend on how shards are spread over instances.
 */
export class ConnTable extends ConnRecords {
  readonly capacity: number;
  private readonly mask: number;
  private readonly slots: Int32Array;
  /** Per shard: open connections in least-recently-used order (list 2·shard), closed ones in closing order (2·shard + 1). */
  private readonly lists: SlotLists;
  /** Freed slots, linked through their records' next field (a free slot is on no list); -1 when none. */
  private freeHead = -1;
  /**
   * Slots never used yet: fresh..capacity-1. Taken only when no freed slot is left, so the order
   * is the one a free list of all slots (0, 1, ...) would give, without writing a link into each
   * of a million records at start: that touched the whole record array (128 MB at the default
   * capacity) before the first frame, for a table that often stays small.
   */
  private fresh = 0;
  /** The slot of the last segment, while it is in the table (free() forgets it): see segment(). */
  private lastSlot = -1;
  /** Per shard: the latest capture time seen (seconds). */
  readonly clock: Float64Array;
  private readonly lastSweep: Float64Array;
  /** Per shard: the time of a frame that jumped ahead of the clock, until another frame confirms it. */
  private readonly jumpTo: Float64Array;
  /** Per connection: whether the remote end acknowledged our initial sequence number. */
  readonly handshakes: Handshakes;
  private readonly ka = new Uint32Array(4);
  /** The one view handed to the sink, pointed at each judged slot in turn. */
  private readonly view = new JudgedConnection(this);
  private readonly kb = new Uint32Array(4);

  /** Full symbol sequences per slot, kept only when tracing (training): every symbol, not just head and tail. */
  traces: number[][] | null = null;
  size = 0;
  evictions = 0;
  segments = 0;
  connectionsOpened = 0;
  /** Frames whose time jumped too far ahead of their shard's clock to move it alone. */
  clockJumpsHeld = 0;
  /** Segments shed under overload, and connections that ended unjudged for it (see S_SHED). */
  segmentsShed = 0;
  connectionsShed = 0;

  constructor(
    readonly opts: ConnTableOptions,
    public models: ModelSet,
    public sink: JudgementSink,
  ) {
    super(checkedCapacity(opts.capacity));
    const cap = opts.capacity;
    this.capacity = cap;
    let tsize = 1;
    while (tsize < cap * 2) tsize <<= 1;
    this.mask = tsize - 1;
    this.slots = new Int32Array(tsize).fill(-1);
    this.lists = new SlotLists(opts.shardCount * 2, this.i32);
    this.handshakes = new Handshakes(cap, this.u16, { stateStride: REC_U16, stateOffset: U16_STATE, acks: this.u32, acksStride: REC_U32, acksOffset: U32_ACKS });
    this.clock = new Float64Array(opts.shardCount);
    this.lastSweep = new Float64Array(opts.shardCount);
    this.jumpTo = new Float64Array(opts.shardCount).fill(-Infinity);
  }

  /** Keeps every symbol of every connection (training), not just head and tail. */
  enableTracing(): void {
    this.traces = new Array<number[]>(this.capacity);
  }

  /** Bytes of typed-array state per tracked connection, hash table included. */
  get bytesPerConnection(): number {
    return REC_BYTES + HEAD_LEN * 2 + ((this.mask + 1) * 4) / this.capacity;
  }

  /**
   * Tracks one decoded TCP segment: `frame` is its record (time, and the ingress/egress mark that
   * tells which end is remote; unknown means the initiator is), `d` its decoded headers. The
   * record rather than its time: a time passed as an argument is a heap number per frame. `shed`: the
   * detector would shed it under overload. A connection's head (HEAD_LEN symbols) is never shed: short
   * sessions stay whole (each guess of a brute force is one; sampling them by flow would thin that
   * evidence out) and a long one is flagged early on its head as always; past it, a shed segment only
   * marks its connection.
   */
  segment(shard: number, frame: RecordCursor, d: PacketDecoder, shed = false): void {
    const ts = frame.tsSeconds;
    const direction = frame.direction;
    this.segments++;
    if (ts > this.clock[shard]) this.advanceClock(shard, ts);
    const b = d.buf;
    const alen = d.addrLen;
    const ka = this.ka;
    const kb = this.kb;
    ka[1] = ka[2] = ka[3] = kb[1] = kb[2] = kb[3] = 0;
    for (let w = 0, o = 0; o < alen; w++, o += 4) {
      ka[w] = ((b[d.srcOff + o] << 24) | (b[d.srcOff + o + 1] << 16) | (b[d.srcOff + o + 2] << 8) | b[d.srcOff + o + 3]) >>> 0;
      kb[w] = ((b[d.dstOff + o] << 24) | (b[d.dstOff + o + 1] << 16) | (b[d.dstOff + o + 2] << 8) | b[d.dstOff + o + 3]) >>> 0;
    }
    // Canonical order: the lower (address, port) end is A.
    let srcIsA = true;
    let cmp = 0;
    for (let w = 0; w < 4 && cmp === 0; w++) cmp = ka[w] < kb[w] ? -1 : ka[w] > kb[w] ? 1 : 0;
    if (cmp > 0 || (cmp === 0 && d.srcPort > d.dstPort)) srcIsA = false;
    const A = srcIsA ? ka : kb;
    const B = srcIsA ? kb : ka;
    const ports = srcIsA ? ((d.srcPort << 16) | d.dstPort) >>> 0 : ((d.dstPort << 16) | d.srcPort) >>> 0;
    const fam = d.family;
    const h = keyHash(ports, fam, A, 0, B, 0);
    const flags = d.tcpFlags;
    const u32 = this.u32;
    const u16 = this.u16;
    const u8 = this.u8;

    let pos = h & this.mask;
    let slot = -1;
    // A connection's segments mostly come in runs: the last slot is checked before the hash table,
    // whose 8 MB of slots (at the default capacity) cost a cache miss per lookup.
    const last = this.lastSlot;
    if (last >= 0 && this.holds(last, ports, fam, A, B)) slot = last;
    else
      for (;;) {
        const s = this.slots[pos];
        if (s < 0) break;
        if (this.holds(s, ports, fam, A, B)) {
          slot = s;
          break;
        }
        pos = (pos + 1) & this.mask;
      }

    const pureSyn = (flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN;
    if (slot >= 0 && u16[slot * REC_U16 + U16_STATE] & S_CLOSED) {
      // A new SYN on a closed 5-tuple is a new connection (port reuse); anything else is a straggler.
      if (!pureSyn) {
        u32[slot * REC_U32 + U32_PACKETS]++;
        return;
      }
      this.free(slot);
      slot = -1;
      pos = h & this.mask;
      while (this.slots[pos] >= 0) pos = (pos + 1) & this.mask;
    }
    if (slot < 0) {
      if (this.freeHead < 0 && this.fresh === this.capacity) {
        this.evictOne(shard);
        // Eviction may have shifted entries; find the insertion point again.
        pos = h & this.mask;
        while (this.slots[pos] >= 0) pos = (pos + 1) & this.mask;
      }
      // A freed slot is reused first, else slot 0 is taken first, then 1, ...
      if (this.freeHead >= 0) {
        slot = this.freeHead;
        this.freeHead = this.lists.next(slot);
      } else slot = this.fresh++;
      this.slots[pos] = slot;
      this.size++;
      this.connectionsOpened++;
      const r = slot * REC_U32;
      u32[r + U32_PORTS] = ports;
      u8[slot * REC_U8 + U8_FAMILY] = fam;
      for (let w = 0; w < 4; w++) {
        u32[r + U32_ADDR_A + w] = A[w];
        u32[r + U32_ADDR_B + w] = B[w];
      }
      // Orientation: the SYN's sender is the client, the SYN-ACK's sender the server; otherwise the
      // well-known (or lower) port is the server's.
      let srcIsClient: boolean;
      if (flags & TCP_SYN) srcIsClient = (flags & TCP_ACK) === 0;
      else {
        const sp = d.srcPort;
        const dp = d.dstPort;
        const sWell = sp < 1024;
        const dWell = dp < 1024;
        srcIsClient = sWell !== dWell ? dWell : dp <= sp;
      }
      let st = srcIsClient === srcIsA ? S_CLIENT_IS_A : 0;
      // Remote end: given by the capture when it knows; else whoever sent the first segment we saw.
      const remoteIsSrc = direction === DIR_INGRESS ? true : direction === DIR_EGRESS ? false : true;
      if (remoteIsSrc === srcIsClient) st |= S_REMOTE_IS_CLIENT;
      u16[slot * REC_U16 + U16_STATE] = st;
      const serverPort = srcIsClient ? d.dstPort : d.srcPort;
      u8[slot * REC_U8 + U8_CLS] = this.models.classMap.byPort[serverPort];
      u16[slot * REC_U16 + U16_SHARD] = shard;
      this.f64[slot * REC_F64 + F64_FIRST_TS] = ts;
      u32[r + U32_PACKETS] = 0;
      u32[r + U32_NSYM] = 0;
      this.f64[slot * REC_F64 + F64_NLL_SUM] = 0;
      this.f32[r + F32_PEAK] = 0;
      this.lists.pushTail(shard * 2, slot);
    } else {
      // The shard the connection was first seen on owns it (a frame of it on another shard is a capture bug or a fuzzer).
      this.lists.moveToTail(u16[slot * REC_U16 + U16_SHARD] * 2, slot);
    }
    this.lastSlot = slot;
    this.f64[slot * REC_F64 + F64_LAST_TS] = ts;
    u32[slot * REC_U32 + U32_PACKETS]++;

    const si = slot * REC_U16 + U16_STATE;
    if (shed && u32[slot * REC_U32 + U32_NSYM] >= HEAD_LEN) {
      u16[si] |= S_SHED;
      this.segmentsShed++;
      return;
    }
    const st = u16[si];
    const fromClient = ((st & S_CLIENT_IS_A) !== 0) === srcIsA;
    if (!fromClient) u16[si] = st | S_SERVER_SPOKE;
    else if (st & S_SERVER_SPOKE && flags & TCP_ACK) u16[si] = st | S_ESTABLISHED;
    const remoteIsClient = (st & S_REMOTE_IS_CLIENT) !== 0;
    if (fromClient === remoteIsClient) this.handshakes.remote(slot, flags, d.tcpAck, remoteIsClient);
    else this.handshakes.local(slot, flags, d.tcpSeq, d.payloadLen);
    // After a gap the symbols no longer follow one another: a shed connection's model score would be noise.
    if ((st & S_SHED) === 0) this.addSymbol(slot, ((fromClient ? DIR_CLIENT : DIR_SERVER) << 8) | flags);

    if (flags & TCP_RST) {
      this.end(slot, EndReason.Rst);
      return;
    }
    if (flags & TCP_FIN) {
      const fin = u16[si] | (fromClient ? S_FIN_C : S_FIN_S);
      u16[si] = fin;
      if ((fin & (S_FIN_C | S_FIN_S)) === (S_FIN_C | S_FIN_S)) this.end(slot, EndReason.Fin);
    }
  }

  /** Whether a slot in the table holds the connection with this key. */
  private holds(slot: number, ports: number, fam: number, A: Uint32Array, B: Uint32Array): boolean {
    const u32 = this.u32;
    const r = slot * REC_U32;
    if (u32[r + U32_PORTS] !== ports || this.u8[slot * REC_U8 + U8_FAMILY] !== fam) return false;
    const a = r + U32_ADDR_A;
    const o = r + U32_ADDR_B;
    return u32[a] === A[0] && u32[a + 1] === A[1] && u32[a + 2] === A[2] && u32[a + 3] === A[3] && u32[o] === B[0] && u32[o + 1] === B[1] && u32[o + 2] === B[2] && u32[o + 3] === B[3];
  }

  private addSymbol(slot: number, sym: number): void {
    const u32 = this.u32;
    const r = slot * REC_U32;
    const n = u32[r + U32_NSYM];
    const pst = this.models.byClass[this.u8[slot * REC_U8 + U8_CLS]];
    const model = pst.compiled;
    const child = model.child;
    const base = slot * REC_U16 + U16_RING;
    const ring = this.u16;
    let node = 0;
    for (let dd = 1; dd <= model.maxDepth; dd++) {
      const j = n - dd;
      let c: number;
      if (j >= 0) c = ring[base + (j & RING_MASK)];
      else if (j === -1) c = SYM_BOS;
      else break;
      const nx = child[node * CONTEXT_SIZE + c];
      if (nx < 0) break;
      node = nx;
      if (c === SYM_BOS) break;
    }
    const cost = model.nll[node * PREDICT_SIZE + sym];
    // Until now the ring held the head too; it is about to overwrite the first symbol.
    if (n === HEAD_LEN) for (let i = 0, h = slot * HEAD_LEN; i < HEAD_LEN; i++) this.head[h + i] = ring[base + i];
    if (this.traces) {
      if (n === 0) this.traces[slot] = [sym];
      else this.traces[slot].push(sym);
    }
    ring[base + (n & RING_MASK)] = sym;
    const f64 = this.f64;
    const total = f64[slot * REC_F64 + F64_NLL_SUM] + cost;
    f64[slot * REC_F64 + F64_NLL_SUM] = total;
    u32[r + U32_NSYM] = n + 1;
    if (n + 1 >= this.opts.minSymbols && sym !== SYM_END) {
      const avg = total / (n + 1);
      if (avg > this.f32[r + F32_PEAK]) this.f32[r + F32_PEAK] = avg;
      const si = slot * REC_U16 + U16_STATE;
      if ((this.u16[si] & S_FLAGGED) === 0 && avg > pst.threshold.value) {
        this.u16[si] |= S_FLAGGED;
        this.sink.onJudged(this.view.at(slot), LEVEL_ANOMALOUS, avg, EndReason.Flagged);
      }
    }
  }

  /**
   * The connection ended: append END, judge it unless it was judged already, and let it linger
   * closed. An established connection cut by the end of the stream or by eviction did not end as
   * far as we know: it is judged on what was seen, without END (censored, not ended).
   */
  private end(slot: number, reason: EndReason): void {
    const si = slot * REC_U16 + U16_STATE;
    const u16 = this.u16;
    if (u16[si] & S_CLOSED) return;
    if ((u16[si] & (S_SHED | S_FLAGGED)) === S_SHED) {
      // Not judged, neither anomalous nor learnt: a sampled-out flow must not look empty or broken.
      this.connectionsShed++;
      this.close(slot);
      return;
    }
    // A flagged connection shed after its head has a gap before its end: not a sequence that ended either.
    const censored = ((reason === EndReason.EndOfStream || reason === EndReason.Evicted) && (u16[si] & S_ESTABLISHED) !== 0) || (u16[si] & S_SHED) !== 0;
    if (!censored) this.addSymbol(slot, SYM_END);
    const st = u16[si];
    if ((st & S_FLAGGED) === 0) {
      const final = this.f64[slot * REC_F64 + F64_NLL_SUM] / this.u32[slot * REC_U32 + U32_NSYM];
      const score = Math.max(final, this.f32[slot * REC_U32 + F32_PEAK]);
      const th = this.models.byClass[this.u8[slot * REC_U8 + U8_CLS]].threshold;
      const level = score > th.value ? LEVEL_ANOMALOUS : score > th.suspicion ? LEVEL_SUSPICIOUS : LEVEL_NORMAL;
      if (level === LEVEL_ANOMALOUS) u16[si] |= S_FLAGGED;
      this.sink.onJudged(this.view.at(slot), level, score, reason);
    } else this.sink.onEnded?.(this.view.at(slot), reason);
    this.close(slot);
  }

  /** Lets an ended connection linger closed (late ACKs, retransmitted FIN/RST). */
  private close(slot: number): void {
    this.u16[slot * REC_U16 + U16_STATE] |= S_CLOSED;
    const shard = this.u16[slot * REC_U16 + U16_SHARD];
    this.lists.unlink(shard * 2, slot);
    this.lists.pushTail(shard * 2 + 1, slot);
  }

  /**
   * A frame's time moves its shard's clock forward, but a jump by more than the idle timeout, which
   * would judge every open connection idle at once, is taken only when the next such frame confirms
   * it: a single frame with a far-future timestamp (a corrupt capture, an injected batch) must not
   * move the clock there and freeze it, with every later connection judged idle as soon as seen.
   */
  private advanceClock(shard: number, ts: number): void {
    const clock = this.clock[shard];
    const step = this.opts.idleTimeout;
    if (clock === 0 || ts - clock <= step || Math.abs(ts - this.jumpTo[shard]) <= step) this.clock[shard] = ts;
    else {
      this.jumpTo[shard] = ts;
      this.clockJumpsHeld++;
    }
  }

  /** Judges idle connections and frees lingering closed ones of a shard, by that shard's capture clock. */
  sweep(shard: number, force = false): void {
    const now = this.clock[shard];
    if (!force && now - this.lastSweep[shard] < 0.5) return;
    this.lastSweep[shard] = now;
    const closed = shard * 2 + 1;
    for (let s = this.lists.head[closed]; s >= 0 && now - this.lastTsOf(s) > this.opts.linger; s = this.lists.head[closed]) this.free(s);
    const open = shard * 2;
    for (let s = this.lists.head[open]; s >= 0 && now - this.lastTsOf(s) > this.opts.idleTimeout; s = this.lists.head[open]) {
      this.end(s, EndReason.Idle);
      this.free(s);
    }
  }

  /** End of stream on a shard: judge every open connection, then forget the shard's state. */
  flushShard(shard: number): void {
    const open = shard * 2;
    for (let s = this.lists.head[open]; s >= 0; s = this.lists.head[open]) {
      this.end(s, EndReason.EndOfStream);
      this.free(s);
    }
    this.dropShard(shard);
  }

  /** Connections (open and lingering) held for a shard. */
  shardSize(shard: number): number {
    let n = 0;
    for (const list of [shard * 2, shard * 2 + 1]) for (let s = this.lists.head[list]; s >= 0; s = this.lists.next(s)) n++;
    return n;
  }

  /** The shard moved to another instance: forget its connections without judging them. */
  dropShard(shard: number): void {
    for (const list of [shard * 2, shard * 2 + 1]) for (let s = this.lists.head[list]; s >= 0; s = this.lists.head[list]) this.free(s);
    this.clock[shard] = 0;
    this.lastSweep[shard] = 0;
    this.jumpTo[shard] = -Infinity;
  }

  /** Makes room: the stalest closed connection, else the least recently used open one (judged as if idle). */
  private evictOne(preferShard: number): void {
    let victim = this.lists.head[preferShard * 2 + 1];
    if (victim < 0) victim = this.lists.head[preferShard * 2];
    if (victim < 0) {
      let best = Infinity;
      for (let l = 0; l < this.lists.head.length; l++) {
        const s = this.lists.head[l];
        if (s >= 0 && this.lastTsOf(s) < best) {
          best = this.lastTsOf(s);
          victim = s;
        }
      }
    }
    if (victim < 0) return;
    this.evictions++;
    this.end(victim, EndReason.Evicted);
    this.free(victim);
  }

  private free(slot: number): void {
    if (slot === this.lastSlot) this.lastSlot = -1;
    const si = slot * REC_U16 + U16_STATE;
    const st = this.u16[si];
    this.lists.unlink(this.u16[slot * REC_U16 + U16_SHARD] * 2 + (st & S_CLOSED ? 1 : 0), slot);
    // Backward-shift deletion keeps probe sequences intact without tombstones.
    const mask = this.mask;
    let i = this.slotHash(slot) & mask;
    while (this.slots[i] !== slot) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const s = this.slots[j];
      if (s < 0) break;
      const k = this.slotHash(s) & mask;
      if (i <= j ? i < k && k <= j : i < k || k <= j) continue;
      this.slots[i] = s;
      i = j;
    }
    this.slots[i] = -1;
    this.u16[si] = 0;
    this.lists.setNext(slot, this.freeHead);
    this.freeHead = slot;
    this.size--;
  }

}
