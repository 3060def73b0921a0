// The size of a message's protobuf encoding, counted instead of written. The
// generated encode() functions take a writer; this one has the methods of
// @bufbuild/protobuf's BinaryWriter that they call, checks the values as that
// writer does (so that what it refuses, this refuses with the same error),
// and adds up the bytes it would write. A restore takes the size of a
// million stored verdicts (evidence.ts): writing each one to take its length
// cost it more than checking the record did.

const UINT32_MAX = 0xffffffff;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function varint32Size(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Bytes of a 64-bit varint of the value as unsigned (a negative int64 takes ten). */
function varint64Size(value: bigint): number {
  let v = BigInt.asUintN(64, value);
  let n = 1;
  while (v > 0x7fn) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** Bytes of the UTF-8 of a string as TextEncoder writes it (an unpaired surrogate becomes U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: two units, four bytes
      i++;
    } else n += 2;
  }
  return n;
}

function uint32Of(arg: unknown): number {
  if (typeof arg === "string") arg = Number(arg);
  else if (typeof arg !== "number") throw new Error(`invalid uint32: ${typeof arg}`);
  const v = arg as number;
  if (!Number.isInteger(v) || v > UINT32_MAX || v < 0) throw new Error(`invalid uint32: ${v}`);
  return v;
}

function int32Of(arg: unknown): number {
  if (typeof arg === "string") arg = Number(arg);
  else if (typeof arg !== "number") throw new Error(`invalid int32: ${typeof arg}`);
  const v = arg as number;
  if (!Number.isInteger(v) || v > INT32_MAX || v < INT32_MIN) throw new Error(`invalid int32: ${v}`);
  return v;
}

function checkFloat32(arg: unknown): void {
  if (typeof arg === "string") {
    const v = Number(arg);
    if (Number.isNaN(v) && arg !== "NaN") throw new Error(`invalid float32: ${arg}`);
    arg = v;
  } else if (typeof arg !== "number") throw new Error(`invalid float32: ${typeof arg}`);
  const v = arg as number;
  // Too large for a float32 (it would round to infinity); NaN and infinity themselves are valid.
  if (!Number.isFinite(Math.fround(v)) && Number.isFinite(v)) throw new Error(`invalid float32: ${v}`);
}

function int64Of(value: unknown): bigint {
  const bi = typeof value === "bigint" ? value : BigInt(value as string | number);
  if (bi > INT64_MAX || bi < INT64_MIN) throw new Error(`invalid int64: ${value}`);
  return bi;
}

function uint64Of(value: unknown): bigint {
  const bi = typeof value === "bigint" ? value : BigInt(value as string | number);
  if (bi > UINT64_MAX || bi < 0n) throw new Error(`invalid uint64: ${value}`);
  return bi;
}

/** A writer that only counts: pass it to a generated encode(), then read `size`. */
export class SizeCounter {
  size = 0;
  private readonly forks: number[] = [];

  /** Ready for the next message (after one whose encoding threw, too). */
  reset(): this {
    this.size = 0;
    this.forks.length = 0;
    return this;
  }

  fork(): this {
    this.forks.push(this.size);
    return this;
  }

  join(): this {
    const start = this.forks.pop();
    if (start === undefined) throw new Error("invalid state, fork stack empty");
    this.size += varint32Size(this.size - start);
    return this;
  }

  tag(fieldNo: number, type: number): this {
    return this.uint32(((fieldNo << 3) | type) >>> 0);
  }

  raw(chunk: Uint8Array): this {
    this.size += chunk.length;
    return this;
  }

  uint32(value: number): this {
    this.size += varint32Size(uint32Of(value));
    return this;
  }

  int32(value: number): this {
    const v = int32Of(value);
    this.size += v >= 0 ? varint32Size(v) : 10;
    return this;
  }

  sint32(value: number): this {
    const v = int32Of(value);
    this.size += varint32Size(((v << 1) ^ (v >> 31)) >>> 0);
    return this;
  }

  bool(_value: boolean): this {
    this.size += 1;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.size += varint32Size(value.byteLength) + value.byteLength;
    return this;
  }

  string(value: string): this {
    const n = utf8Length(typeof value === "string" ? value : String(value));
    this.size += varint32Size(n) + n;
    return this;
  }

  float(value: number): this {
    checkFloat32(value);
    this.size += 4;
    return this;
  }

  double(_value: number): this {
    this.size += 8;
    return this;
  }

  fixed32(value: number): this {
    uint32Of(value);
    this.size += 4;
    return this;
  }

  sfixed32(value: number): this {
    int32Of(value);
    this.size += 4;
    return this;
  }

  fixed64(value: bigint | number | string): this {
    uint64Of(value);
    this.size += 8;
    return this;
  }

  sfixed64(value: bigint | number | string): this {
    int64Of(value);
    this.size += 8;
    return this;
  }

  uint64(value: bigint | number | string): this {
    // The common case (a count) without a BigInt; anything else is checked as the writer checks it.
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value <= UINT32_MAX) this.size += varint32Size(value);
    else this.size += varint64Size(uint64Of(value));
    return this;
  }

  int64(value: bigint | number | string): this {
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value <= UINT32_MAX) this.size += varint32Size(value);
    else this.size += varint64Size(int64Of(value));
    return this;
  }

  sint64(value: bigint | number | string): this {
    const v = int64Of(value);
    this.size += varint64Size((v << 1n) ^ (v >> 63n));
    return this;
  }
}
