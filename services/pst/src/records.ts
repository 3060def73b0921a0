import { F64_FIRST_TS, F64_LAST_TS, HEAD_LEN, REC_BYTES, REC_F64, REC_U16, REC_U32, REC_U8, RING_MASK, U16_RING, U16_SHARD, U16_STATE, U32_ADDR_A, U32_ADDR_B, U32_NSYM, U32_PACKETS, U32_PORTS, U8_CLS, U8_FAMILY } from "./layout.js";

/** State bits the accessors read (the table's, see conntrack.ts). */
export const S_CLIENT_IS_A = 1;
export const S_REMOTE_IS_CLIENT = 2;

/**
 * The connection records (see layout.ts) and what judgement sinks read of them. The table
 * (ConnTable) writes them; everything else reads a slot through these accessors, valid only
 * while the slot holds the connection.
 */
export class ConnRecords {
  /** The records, one view per element type. */
  protected readonly u32: Uint32Array;
  protected readonly f64: Float64Array;
  protected readonly f32: Float32Array;
  protected readonly u16: Uint16Array;
  protected readonly u8: Uint8Array;
  protected readonly i32: Int32Array;
  /** The first HEAD_LEN symbols of connections that outgrew their ring (the ring holds them until then). */
  protected readonly head: Uint16Array;

  constructor(capacity: number) {
    const records = new ArrayBuffer(capacity * REC_BYTES);
    this.u32 = new Uint32Array(records);
    this.f64 = new Float64Array(records);
    this.f32 = new Float32Array(records);
    this.u16 = new Uint16Array(records);
    this.u8 = new Uint8Array(records);
    this.i32 = new Int32Array(records);
    this.head = new Uint16Array(capacity * HEAD_LEN);
  }

  /** The hash of a slot's key, as segment() computed it (kept nowhere: a free recomputes it). */
  protected slotHash(slot: number): number {
    const r = slot * REC_U32;
    return keyHash(this.u32[r + U32_PORTS], this.u8[slot * REC_U8 + U8_FAMILY], this.u32, r + U32_ADDR_A, this.u32, r + U32_ADDR_B);
  }

  // Accessors for judgement sinks (not the hot path).

  isClientA(slot: number): boolean {
    return (this.u16[slot * REC_U16 + U16_STATE] & S_CLIENT_IS_A) !== 0;
  }

  remoteIsClient(slot: number): boolean {
    return (this.u16[slot * REC_U16 + U16_STATE] & S_REMOTE_IS_CLIENT) !== 0;
  }

  /** The shard (the detector's lane) the connection was first seen on. */
  shardOf(slot: number): number {
    return this.u16[slot * REC_U16 + U16_SHARD];
  }

  familyOf(slot: number): number {
    return this.u8[slot * REC_U8 + U8_FAMILY];
  }

  /** Service class index (into the model set's classes). */
  classOf(slot: number): number {
    return this.u8[slot * REC_U8 + U8_CLS];
  }

  packetsOf(slot: number): number {
    return this.u32[slot * REC_U32 + U32_PACKETS];
  }

  firstTsOf(slot: number): number {
    return this.f64[slot * REC_F64 + F64_FIRST_TS];
  }

  lastTsOf(slot: number): number {
    return this.f64[slot * REC_F64 + F64_LAST_TS];
  }

  /** Symbols seen so far (kept: the head and the last RING_LEN). */
  symbolCount(slot: number): number {
    return this.u32[slot * REC_U32 + U32_NSYM];
  }

  /** Copies the head (the first min(HEAD_LEN, symbolCount) symbols) into `out`; returns how many. */
  headInto(slot: number, out: Uint16Array): number {
    const n = this.u32[slot * REC_U32 + U32_NSYM];
    const len = Math.min(HEAD_LEN, n);
    // Until the connection outgrows its ring, the ring holds the head (see ConnTable.addSymbol).
    const from = n > HEAD_LEN ? this.head : this.u16;
    const base = n > HEAD_LEN ? slot * HEAD_LEN : slot * REC_U16 + U16_RING;
    for (let i = 0; i < len; i++) out[i] = from[base + i];
    return len;
  }

  /** The j-th symbol of the connection, for the last RING_LEN of them (j from symbolCount − RING_LEN). */
  ringSymbol(slot: number, j: number): number {
    return this.u16[slot * REC_U16 + U16_RING + (j & RING_MASK)];
  }

  /** Port of the client or the server end. */
  port(slot: number, client: boolean): number {
    const aIsWanted = this.isClientA(slot) === client;
    const ports = this.u32[slot * REC_U32 + U32_PORTS];
    return aIsWanted ? ports >>> 16 : ports & 0xffff;
  }

  /** Copies the address words of end A (or B) into `out`. */
  copyAddress(slot: number, endA: boolean, out: Uint32Array, at = 0): void {
    const o = slot * REC_U32 + (endA ? U32_ADDR_A : U32_ADDR_B);
    for (let w = 0; w < 4; w++) out[at + w] = this.u32[o + w];
  }

  /**
   * The client's then the server's address words, copied: evidence outlives the slot. A plain
   * array: a flood keeps one per connection, and a typed array costs several times its size.
   */
  endpointWords(slot: number): number[] {
    const u = this.u32;
    const clientIsA = this.isClientA(slot);
    const c = slot * REC_U32 + (clientIsA ? U32_ADDR_A : U32_ADDR_B);
    const s = slot * REC_U32 + (clientIsA ? U32_ADDR_B : U32_ADDR_A);
    return [u[c], u[c + 1], u[c + 2], u[c + 3], u[s], u[s + 1], u[s + 2], u[s + 3]];
  }
}

/** The hash of a canonical 5-tuple: ports (A's high), family, and A's then B's four address words. */
export function keyHash(ports: number, fam: number, A: Uint32Array, ao: number, B: Uint32Array, bo: number): number {
  let h = Math.imul(ports ^ fam, 0x9e3779b1);
  for (let w = 0; w < 4; w++) {
    h = Math.imul(h ^ A[ao + w], 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h ^ B[bo + w], 0xc2b2ae35);
    h ^= h >>> 13;
  }
  return h >>> 0;
}
