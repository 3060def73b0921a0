import { DIR_EGRESS, DIR_INGRESS, FAMILY_IPV4, FAMILY_IPV6 } from "./abi.gen.js";

export class AddressError extends Error {
  readonly code = "VIGIL_ERR_ADDRESS";
}

/** FNV-1a (32 bit) over bytes. The capture addon computes the same hash in C. */
export function fnv1a32(buf: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off; i < off + len; i++) {
    h ^= buf[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Text form of an address held in buf (dotted quad, or RFC 5952 IPv6). */
export function formatAddress(buf: Uint8Array, off: number, len: number): string {
  if (len === 4) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  if (len !== 16) throw new AddressError(`address of ${len} bytes`);
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = (buf[off + 2 * i] << 8) | buf[off + 2 * i + 1];
  return formatGroups(groups);
}

/**
 * Text form of an address held as big-endian 32-bit words (IPv4 in words[off], IPv6 in four words
 * from off), the form the detectors keep addresses in: the same text as formatAddress.
 */
export function formatAddressWords(words: ArrayLike<number>, off: number, family: number): string {
  if (family === FAMILY_IPV4) {
    const w = words[off];
    return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
  }
  if (family !== FAMILY_IPV6) throw new AddressError(`address family ${family} (expected ${FAMILY_IPV4} or ${FAMILY_IPV6})`);
  const groups = new Array<number>(8);
  for (let i = 0; i < 4; i++) {
    groups[2 * i] = words[off + i] >>> 16;
    groups[2 * i + 1] = words[off + i] & 0xffff;
  }
  return formatGroups(groups);
}

/** RFC 5952: lower-case hex, the longest run of two or more zero groups compressed, IPv4-mapped as a dotted quad. */
function formatGroups(g: number[]): string {
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff)
    return `::ffff:${g[6] >>> 8}.${g[6] & 255}.${g[7] >>> 8}.${g[7] & 255}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Parses an IPv4 or IPv6 address; throws AddressError naming the text. */
export function parseAddress(text: string): Uint8Array {
  const v4 = parseV4(text);
  if (v4) return v4;
  const v6 = parseV6(text);
  if (v6) return v6;
  throw new AddressError(`"${text}" is not an IPv4 or IPv6 address`);
}

/**
 * Four decimal octets 0..255 separated by dots, each "0" or without a leading
 * zero. Read character by character: the rules service parses a million
 * stored rules' addresses at a restore, and splitting each and testing its
 * parts with a regular expression took most of that.
 */
function parseV4(text: string): Uint8Array | null {
  if (text.length < 7 || text.length > 15) return null;
  const out = new Uint8Array(4);
  let octets = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e; // the end closes the last octet as a dot would
    if (c === 0x2e) {
      if (digits === 0 || octets === 4) return null;
      out[octets++] = value;
      value = 0;
      digits = 0;
      continue;
    }
    const d = c - 0x30;
    if (d < 0 || d > 9 || (digits === 1 && value === 0)) return null;
    value = value * 10 + d;
    if (++digits > 3 || value > 255) return null;
  }
  return octets === 4 ? out : null;
}

function parseV6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length < 2) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parseHalf = (s: string): number[] | null => {
    if (s === "") return [];
    const groups = s.split(":");
    const words: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseV4(g);
        if (!v4) return null;
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        words.push(parseInt(g, 16));
      }
    }
    return words;
  };
  const head = parseHalf(halves[0]);
  const tail = halves.length === 2 ? parseHalf(halves[1]) : [];
  if (!head || !tail) return null;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return null;
  const words = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
  family: typeof FAMILY_IPV4 | typeof FAMILY_IPV6;
}

/** Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a host prefix). Host bits must be zero. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseAddress(addrText);
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max)
      throw new AddressError(`"${text}": prefix length must be 0..${max}`);
    prefix = Number(p);
  }
  for (let bit = prefix; bit < max; bit++)
    if (bytes[bit >> 3] & (0x80 >> (bit & 7)))
      throw new AddressError(`"${text}": host bits are set beyond /${prefix}`);
  return { bytes, prefix, family: bytes.length === 4 ? FAMILY_IPV4 : FAMILY_IPV6 };
}

export function formatCidr(c: Cidr): string {
  return `${formatAddress(c.bytes, 0, c.bytes.length)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, buf: Uint8Array, off: number, len: number): boolean {
  if (c.bytes.length !== len) return false;
  const full = c.prefix >> 3;
  for (let i = 0; i < full; i++) if (buf[off + i] !== c.bytes[i]) return false;
  const rest = c.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (buf[off + full] & mask) === c.bytes[full];
}

/** A small set of prefixes (local networks, allowlists): linear scan, meant for tens of entries. */
export class CidrSet {
  readonly cidrs: Cidr[];
  constructor(cidrs: Iterable<string | Cidr> = []) {
    this.cidrs = [...cidrs].map((c) => (typeof c === "string" ? parseCidr(c) : c));
  }
  get size(): number {
    return this.cidrs.length;
  }
  contains(buf: Uint8Array, off: number, len: number): boolean {
    for (const c of this.cidrs) if (cidrContains(c, buf, off, len)) return true;
    return false;
  }
  containsText(address: string): boolean {
    const b = parseAddress(address);
    return this.contains(b, 0, b.length);
  }
  toStrings(): string[] {
    return this.cidrs.map(formatCidr);
  }
}

function compareBytes(buf: Uint8Array, a: number, b: number, len: number): number {
  for (let i = 0; i < len; i++) if (buf[a + i] !== buf[b + i]) return buf[a + i] - buf[b + i];
  return 0;
}

/**
 * Which side of a packet is the remote peer: the source of ingress traffic,
 * the destination of egress traffic. With the direction unknown (a capture
 * from elsewhere), the lower address, so that both directions of a
 * conversation agree. Returns the offset of the remote address in buf.
 */
export function remoteAddressOffset(
  direction: number,
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  len: number,
): number {
  if (direction === DIR_INGRESS) return srcOff;
  if (direction === DIR_EGRESS) return dstOff;
  return compareBytes(buf, srcOff, dstOff, len) <= 0 ? srcOff : dstOff;
}

/** The shard of a frame: FNV-1a of the remote address modulo the shard count. */
export function shardOf(
  direction: number,
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  len: number,
  shardCount: number,
): number {
  const r = remoteAddressOffset(direction, buf, srcOff, dstOff, len);
  return fnv1a32(buf, r, len) % shardCount;
}
