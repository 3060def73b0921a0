import { parseAddress } from "./addr.js";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "./packet.js";

/** What craftPacket() builds: an IPv4 or IPv6 packet, for tests and synthetic traffic. */
export interface PacketSpec {
  src: string;
  dst: string;
  proto: "tcp" | "udp" | "icmp" | number;
  srcPort?: number;
  dstPort?: number;
  /** TCP flags byte (TCP_SYN | TCP_ACK ...). */
  flags?: number;
  seq?: number;
  ack?: number;
  window?: number;
  icmpType?: number;
  icmpCode?: number;
  payloadLen?: number;
  ttl?: number;
  ipId?: number;
  /** Fragment offset in bytes (multiple of 8) and the more-fragments bit. */
  fragOffset?: number;
  moreFragments?: boolean;
  /** IPv6 extension headers to insert before the upper layer (next-header numbers: 0, 43, 60). */
  ipv6Extensions?: number[];
}

function checksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

function l4Bytes(spec: PacketSpec, v6: boolean): { proto: number; bytes: Uint8Array } {
  const payload = spec.payloadLen ?? 0;
  const proto =
    spec.proto === "tcp" ? IPPROTO_TCP : spec.proto === "udp" ? IPPROTO_UDP : spec.proto === "icmp" ? (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP) : spec.proto;
  let hdr: Uint8Array;
  if (proto === IPPROTO_TCP) {
    hdr = new Uint8Array(20 + payload);
    const v = new DataView(hdr.buffer);
    v.setUint16(0, spec.srcPort ?? 40000);
    v.setUint16(2, spec.dstPort ?? 80);
    v.setUint32(4, (spec.seq ?? 1000) >>> 0);
    v.setUint32(8, (spec.ack ?? 0) >>> 0);
    hdr[12] = 5 << 4;
    hdr[13] = spec.flags ?? 0;
    v.setUint16(14, spec.window ?? 64240);
  } else if (proto === IPPROTO_UDP) {
    hdr = new Uint8Array(8 + payload);
    const v = new DataView(hdr.buffer);
    v.setUint16(0, spec.srcPort ?? 40000);
    v.setUint16(2, spec.dstPort ?? 53);
    v.setUint16(4, 8 + payload);
  } else if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
    hdr = new Uint8Array(8 + payload);
    hdr[0] = spec.icmpType ?? (v6 ? 128 : 8);
    hdr[1] = spec.icmpCode ?? 0;
  } else {
    hdr = new Uint8Array(payload);
  }
  for (let i = hdr.length - payload; i < hdr.length; i++) hdr[i] = i & 0xff;
  return { proto, bytes: hdr };
}

/** Builds a well-formed packet starting at the IP header. */
export function craftPacket(spec: PacketSpec): Uint8Array {
  const src = parseAddress(spec.src);
  const dst = parseAddress(spec.dst);
  if (src.length !== dst.length) throw new Error(`craftPacket: ${spec.src} and ${spec.dst} are of different families`);
  const v6 = src.length === 16;
  const { proto, bytes: l4 } = l4Bytes(spec, v6);
  const fragmented = spec.fragOffset !== undefined || spec.moreFragments;
  if (!v6) {
    const pkt = new Uint8Array(20 + l4.length);
    const v = new DataView(pkt.buffer);
    pkt[0] = 0x45;
    v.setUint16(2, pkt.length);
    v.setUint16(4, spec.ipId ?? 1);
    v.setUint16(6, ((spec.fragOffset ?? 0) >> 3) | (spec.moreFragments ? 0x2000 : 0));
    pkt[8] = spec.ttl ?? 64;
    pkt[9] = proto;
    pkt.set(src, 12);
    pkt.set(dst, 16);
    v.setUint16(10, checksum(pkt, 0, 20));
    pkt.set(l4, 20);
    return pkt;
  }
  const exts = [...(spec.ipv6Extensions ?? []), ...(fragmented ? [44] : [])];
  const pkt = new Uint8Array(40 + exts.length * 8 + l4.length);
  const v = new DataView(pkt.buffer);
  pkt[0] = 0x60;
  v.setUint16(4, pkt.length - 40);
  pkt[6] = exts.length ? exts[0] : proto;
  pkt[7] = spec.ttl ?? 64;
  pkt.set(src, 8);
  pkt.set(dst, 24);
  let p = 40;
  exts.forEach((ext, i) => {
    pkt[p] = i + 1 < exts.length ? exts[i + 1] : proto;
    if (ext === 44) {
      v.setUint16(p + 2, (spec.fragOffset ?? 0) | (spec.moreFragments ? 1 : 0));
      v.setUint32(p + 4, spec.ipId ?? 1);
    } else {
      pkt[p + 1] = 0;
      pkt[p + 2] = 1;
      pkt[p + 3] = 4;
    }
    p += 8;
  });
  pkt.set(l4, p);
  return pkt;
}
