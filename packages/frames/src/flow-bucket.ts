import { mix32 } from "./mix32.js";
import { IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type PacketDecoder } from "./packet.js";

/**
 * Flows are sampled under overload by bucket: a detector keeps the flows of the lowest buckets (see
 * shedsSegment). Both detectors use this one function, so at one keep line they keep the same flows.
 */
export const FLOW_BUCKETS = 64;

/** Big-endian 32-bit word at buf[o..o+4). */
function word(buf: Uint8Array, o: number): number {
  return (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3];
}

/** One end of a flow (address words and port), hashed: every frame of a shedding detector goes through here, so words, not bytes. */
function endpointHash(buf: Uint8Array, off: number, len: number, port: number): number {
  let h = Math.imul(word(buf, off), 0x85ebca6b) ^ Math.imul(port + 1, 0x9e3779b1);
  if (len === 16) h ^= Math.imul(word(buf, off + 4), 0xc2b2ae35) ^ Math.imul(word(buf, off + 8), 0x27d4eb2f) ^ Math.imul(word(buf, off + 12), 0x165667b1);
  return mix32(h);
}

/**
 * The flow's bucket, 0..FLOW_BUCKETS-1: a pure function of its 5-tuple that is the same for both
 * directions (the two ends' hashes are combined in the order of their values, not of who sent the
 * packet). Not the capture's shard function (that hashes the remote address alone), so every shard
 * spreads its flows over every bucket.
 */
export function flowBucket(d: PacketDecoder): number {
  const a = endpointHash(d.buf, d.srcOff, d.addrLen, d.srcPort);
  const b = endpointHash(d.buf, d.dstOff, d.addrLen, d.dstPort);
  const lo = a < b ? a : b;
  const hi = a < b ? b : a;
  return mix32(lo ^ Math.imul(hi, 0x9e3779b1) ^ d.proto) >>> 26;
}

/**
 * Whether a detector sheds this packet when it keeps the flows of buckets below `keep`: only a
 * segment of an established TCP connection (ACK without SYN, FIN or RST) of a flow at or above the
 * keep line. Connection events (SYN, SYN-ACK, FIN, RST), probes without ACK (NULL, FIN, Xmas scans),
 * fragments and everything but TCP are the evidence of attacks: always kept.
 */
export function shedsSegment(d: PacketDecoder, keep: number): boolean {
  return (
    keep < FLOW_BUCKETS &&
    d.proto === IPPROTO_TCP &&
    d.hasL4 &&
    !d.isFragment &&
    (d.tcpFlags & (TCP_ACK | TCP_SYN | TCP_FIN | TCP_RST)) === TCP_ACK &&
    flowBucket(d) >= keep
  );
}
