import {
  FRAME_HDR_LEN,
  FRAME_OFF_CAP_LEN,
  FRAME_OFF_DIRECTION,
  FRAME_OFF_FAMILY,
  FRAME_OFF_FLAGS,
  FRAME_OFF_IFINDEX,
  FRAME_OFF_ORIG_LEN,
  FRAME_OFF_TS_NS,
} from "./abi.gen.js";

const TWO_32 = 4294967296;

/** A frame record as plain values, for tests and tools; hot paths use RecordCursor. */
export interface FrameRecord {
  tsNs: bigint;
  ifindex: number;
  origLen: number;
  direction: number;
  family: number;
  flags: number;
  data: Uint8Array;
}

export class RecordFormatError extends Error {
  readonly code = "VIGIL_ERR_RECORD_FORMAT";
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset} of the batch`);
  }
}

/**
 * Walks packed frame records in a batch without allocating per record.
 * After next() returns true the fields describe the current record and its
 * captured bytes are buf[dataOffset, dataOffset + capLen).
 */
export class RecordCursor {
  buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private end = 0;

  offset = 0;
  /**
   * Starts as -0, a double: the low word of a timestamp often exceeds 2^31, and a field V8 first saw
   * hold small integers changes representation when it does, which throws away the optimized code
   * of every loop that walks records (the whole window pipeline inlined) to be compiled again.
   */
  tsLo = -0;
  tsHi = 0;
  ifindex = 0;
  origLen = 0;
  capLen = 0;
  direction = 0;
  family = 0;
  flags = 0;
  dataOffset = 0;

  reset(buf: Uint8Array, start = 0, end = buf.byteLength): this {
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.pos = start;
    this.end = end;
    return this;
  }

  /** Advances to the next record; false at the end. Throws RecordFormatError on a record that overruns the batch. */
  next(): boolean {
    const p = this.pos;
    if (p >= this.end) return false;
    if (p + FRAME_HDR_LEN > this.end) throw new RecordFormatError("truncated record header", p);
    const v = this.view;
    this.offset = p;
    this.tsLo = v.getUint32(p + FRAME_OFF_TS_NS, true);
    this.tsHi = v.getUint32(p + FRAME_OFF_TS_NS + 4, true);
    this.ifindex = v.getUint32(p + FRAME_OFF_IFINDEX, true);
    this.origLen = v.getUint32(p + FRAME_OFF_ORIG_LEN, true);
    this.capLen = v.getUint16(p + FRAME_OFF_CAP_LEN, true);
    this.direction = this.buf[p + FRAME_OFF_DIRECTION];
    this.family = this.buf[p + FRAME_OFF_FAMILY];
    this.flags = this.buf[p + FRAME_OFF_FLAGS];
    this.dataOffset = p + FRAME_HDR_LEN;
    this.pos = this.dataOffset + this.capLen;
    if (this.pos > this.end) throw new RecordFormatError(`record data of ${this.capLen} bytes overruns the batch`, p);
    return true;
  }

  /** Capture time in seconds since the epoch (microsecond precision). */
  get tsSeconds(): number {
    return (this.tsHi * TWO_32 + this.tsLo) / 1e9;
  }

  /** Capture time in milliseconds since the epoch. */
  get tsMs(): number {
    return (this.tsHi * TWO_32 + this.tsLo) / 1e6;
  }

  get tsNs(): bigint {
    return (BigInt(this.tsHi) << 32n) | BigInt(this.tsLo);
  }

  data(): Uint8Array {
    return this.buf.subarray(this.dataOffset, this.dataOffset + this.capLen);
  }

  toRecord(): FrameRecord {
    return {
      tsNs: this.tsNs,
      ifindex: this.ifindex,
      origLen: this.origLen,
      direction: this.direction,
      family: this.family,
      flags: this.flags,
      data: this.data().slice(),
    };
  }
}

/** Decodes every record of a batch into objects. For tests and tools, not hot paths. */
export function decodeRecords(buf: Uint8Array): FrameRecord[] {
  const out: FrameRecord[] = [];
  const c = new RecordCursor().reset(buf);
  while (c.next()) out.push(c.toRecord());
  return out;
}

/** Appends frame records to a growable buffer: synthetic traffic, tests, tools. */
export class RecordWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;
  count = 0;

  constructor(initialCapacity = 65536) {
    this.buf = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buf.buffer);
  }

  get byteLength(): number {
    return this.len;
  }

  append(rec: Omit<FrameRecord, "origLen"> & { origLen?: number }): void {
    const capLen = rec.data.byteLength;
    if (capLen > 0xffff) throw new RangeError(`captured length ${capLen} exceeds 65535`);
    this.reserve(FRAME_HDR_LEN + capLen);
    const p = this.len;
    const v = this.view;
    v.setBigUint64(p + FRAME_OFF_TS_NS, rec.tsNs, true);
    v.setUint32(p + FRAME_OFF_IFINDEX, rec.ifindex, true);
    v.setUint32(p + FRAME_OFF_ORIG_LEN, rec.origLen ?? capLen, true);
    v.setUint16(p + FRAME_OFF_CAP_LEN, capLen, true);
    this.buf[p + FRAME_OFF_DIRECTION] = rec.direction;
    this.buf[p + FRAME_OFF_FAMILY] = rec.family;
    this.buf[p + FRAME_OFF_FLAGS] = rec.flags;
    this.buf.fill(0, p + FRAME_OFF_FLAGS + 1, p + FRAME_HDR_LEN);
    this.buf.set(rec.data, p + FRAME_HDR_LEN);
    this.len += FRAME_HDR_LEN + capLen;
    this.count++;
  }

  /** The records written so far (a view; copy it before reusing the writer). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  clear(): void {
    this.len = 0;
    this.count = 0;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.byteLength) return;
    let cap = this.buf.byteLength * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}
