import { FAMILY_IPV4, FAMILY_IPV6 } from "./abi.gen.js";

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

/** Why a frame could not be decoded. Counted by consumers, never thrown. */
export enum Malformed {
  None = 0,
  Truncated = 1,
  BadVersion = 2,
  BadHeaderLength = 3,
  BadTotalLength = 4,
  BadTcpDataOffset = 5,
  BadExtensionHeader = 6,
  UnknownFamily = 7,
}

export const MALFORMED_NAMES = [
  "none",
  "truncated",
  "bad_version",
  "bad_header_length",
  "bad_total_length",
  "bad_tcp_data_offset",
  "bad_extension_header",
  "unknown_family",
] as const;

const IPV6_HOPOPTS = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_AH = 51;
const IPV6_NONE = 59;
const IPV6_DSTOPTS = 60;
const IPV6_MOBILITY = 135;
const IPV6_HIP = 139;
const IPV6_SHIM6 = 140;
const MAX_EXTENSION_HEADERS = 16;

/**
 * Decodes the L3 and L4 headers of one captured frame into reusable fields.
 * decode() allocates nothing: addresses are offsets into the frame's buffer.
 */
export class PacketDecoder {
  buf: Uint8Array = new Uint8Array(0);
  malformed: Malformed = Malformed.None;
  family = 0;
  /** Offsets of the source and destination addresses in buf; addrLen is 4 or 16. */
  srcOff = 0;
  dstOff = 0;
  addrLen = 0;
  /** IP packet length from the header (orig_len when the header says 0, as for GSO). */
  ipLen = 0;
  ttl = 0;
  /** The upper-layer protocol after IPv6 extension headers. */
  proto = 0;
  isFragment = false;
  /** Fragment offset in bytes; 0 for the first fragment and for unfragmented packets. */
  fragOffset = 0;
  moreFragments = false;
  /** True when the L4 header is present and decoded (unfragmented or first fragment). */
  hasL4 = false;
  l4Off = 0;
  srcPort = 0;
  dstPort = 0;
  tcpFlags = 0;
  tcpSeq = 0;
  tcpAck = 0;
  tcpWindow = 0;
  icmpType = 0;
  icmpCode = 0;
  /** L4 payload bytes on the wire (from the IP lengths, not the capture). */
  payloadLen = 0;

  /** Returns false when the frame is malformed; `malformed` then says why. */
  decode(buf: Uint8Array, off: number, capLen: number, family: number, origLen: number): boolean {
    this.buf = buf;
    this.malformed = Malformed.None;
    this.hasL4 = false;
    this.isFragment = false;
    this.fragOffset = 0;
    this.moreFragments = false;
    this.srcPort = this.dstPort = this.tcpFlags = 0;
    this.icmpType = this.icmpCode = 0;
    this.payloadLen = 0;
    this.family = family;
    if (family === FAMILY_IPV4) return this.decodeV4(buf, off, off + capLen, origLen);
    if (family === FAMILY_IPV6) return this.decodeV6(buf, off, off + capLen, origLen);
    return this.fail(Malformed.UnknownFamily);
  }

  private fail(reason: Malformed): boolean {
    this.malformed = reason;
    return false;
  }

  private decodeV4(b: Uint8Array, off: number, end: number, origLen: number): boolean {
    if (end - off < 20) return this.fail(Malformed.Truncated);
    if (b[off] >> 4 !== 4) return this.fail(Malformed.BadVersion);
    const ihl = (b[off] & 0x0f) * 4;
    if (ihl < 20) return this.fail(Malformed.BadHeaderLength);
    if (end - off < ihl) return this.fail(Malformed.Truncated);
    let total = (b[off + 2] << 8) | b[off + 3];
    if (total === 0) total = origLen;
    if (total < ihl) return this.fail(Malformed.BadTotalLength);
    this.ipLen = total;
    this.ttl = b[off + 8];
    this.proto = b[off + 9];
    this.srcOff = off + 12;
    this.dstOff = off + 16;
    this.addrLen = 4;
    const frag = (b[off + 6] << 8) | b[off + 7];
    this.moreFragments = (frag & 0x2000) !== 0;
    this.fragOffset = (frag & 0x1fff) * 8;
    this.isFragment = this.moreFragments || this.fragOffset !== 0;
    if (this.fragOffset !== 0) return true;
    return this.decodeL4(b, off + ihl, end, total - ihl);
  }

  private decodeV6(b: Uint8Array, off: number, end: number, origLen: number): boolean {
    if (end - off < 40) return this.fail(Malformed.Truncated);
    if (b[off] >> 4 !== 6) return this.fail(Malformed.BadVersion);
    let payload = (b[off + 4] << 8) | b[off + 5];
    if (payload === 0) payload = Math.max(0, origLen - 40);
    this.ipLen = payload + 40;
    this.ttl = b[off + 7];
    this.srcOff = off + 8;
    this.dstOff = off + 24;
    this.addrLen = 16;
    let next = b[off + 6];
    let p = off + 40;
    let remaining = payload;
    for (let i = 0; ; i++) {
      if (next === IPV6_NONE) {
        this.proto = next;
        return true;
      }
      if (
        next !== IPV6_HOPOPTS &&
        next !== IPV6_ROUTING &&
        next !== IPV6_FRAGMENT &&
        next !== IPV6_DSTOPTS &&
        next !== IPV6_AH &&
        next !== IPV6_MOBILITY &&
        next !== IPV6_HIP &&
        next !== IPV6_SHIM6
      )
        break;
      if (i >= MAX_EXTENSION_HEADERS) return this.fail(Malformed.BadExtensionHeader);
      if (end - p < 8) return this.fail(Malformed.Truncated);
      let len: number;
      if (next === IPV6_FRAGMENT) {
        len = 8;
        const fo = (b[p + 2] << 8) | b[p + 3];
        this.fragOffset = fo & 0xfff8;
        this.moreFragments = (fo & 1) !== 0;
        this.isFragment = true;
      } else if (next === IPV6_AH) {
        len = (b[p + 1] + 2) * 4;
      } else {
        len = (b[p + 1] + 1) * 8;
      }
      if (len > remaining) return this.fail(Malformed.BadExtensionHeader);
      next = b[p];
      p += len;
      remaining -= len;
      if (this.isFragment && this.fragOffset !== 0) {
        this.proto = next;
        return true;
      }
    }
    this.proto = next;
    return this.decodeL4(b, p, end, remaining);
  }

  private decodeL4(b: Uint8Array, p: number, end: number, l4Len: number): boolean {
    this.l4Off = p;
    const avail = end - p;
    switch (this.proto) {
      case IPPROTO_TCP: {
        if (avail < 20 || l4Len < 20) return this.fail(Malformed.Truncated);
        const doff = (b[p + 12] >> 4) * 4;
        if (doff < 20 || doff > l4Len) return this.fail(Malformed.BadTcpDataOffset);
        this.srcPort = (b[p] << 8) | b[p + 1];
        this.dstPort = (b[p + 2] << 8) | b[p + 3];
        this.tcpSeq = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
        this.tcpAck = ((b[p + 8] << 24) | (b[p + 9] << 16) | (b[p + 10] << 8) | b[p + 11]) >>> 0;
        this.tcpFlags = b[p + 13];
        this.tcpWindow = (b[p + 14] << 8) | b[p + 15];
        this.payloadLen = l4Len - doff;
        this.hasL4 = true;
        return true;
      }
      case IPPROTO_UDP: {
        if (avail < 8 || l4Len < 8) return this.fail(Malformed.Truncated);
        this.srcPort = (b[p] << 8) | b[p + 1];
        this.dstPort = (b[p + 2] << 8) | b[p + 3];
        this.payloadLen = l4Len - 8;
        this.hasL4 = true;
        return true;
      }
      case IPPROTO_ICMP:
      case IPPROTO_ICMPV6: {
        if (avail < 4 || l4Len < 4) return this.fail(Malformed.Truncated);
        this.icmpType = b[p];
        this.icmpCode = b[p + 1];
        this.payloadLen = l4Len - 4;
        this.hasL4 = true;
        return true;
      }
      default:
        this.payloadLen = l4Len;
        return true;
    }
  }
}

const FLAG_LETTERS = ["F", "S", "R", "P", "A", "U", "E", "C"] as const;

/** TCP flags as letters in a fixed order, e.g. SYN|ACK -> "SA", 0 -> "0". */
export function tcpFlagsToString(flags: number): string {
  if (flags === 0) return "0";
  let s = "";
  for (const i of [1, 2, 3, 4, 0, 5, 6, 7]) if (flags & (1 << i)) s += FLAG_LETTERS[i];
  return s;
}
