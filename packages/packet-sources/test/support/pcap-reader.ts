// An independent reading of capture files for the tests: pcap and pcapng
// parsed in TypeScript (not libpcap), link layers stripped and records built
// by the rules the README states, sharded with @vigil/frames' shardOf.
import { readFileSync } from "node:fs";
import { CidrSet, DIR_EGRESS, DIR_INGRESS, DIR_UNKNOWN, FRAME_HDR_LEN, shardOf } from "@vigil/frames";

export interface RawPacket {
  tsNs: bigint;
  linktype: number;
  caplen: number;
  len: number;
  data: Uint8Array;
}

export function readCaptureFile(path: string): RawPacket[] {
  const buf = readFileSync(path);
  const magic = buf.readUInt32LE(0);
  return magic === 0x0a0d0d0a ? readPcapng(buf) : readPcap(buf);
}

function readPcap(buf: Buffer): RawPacket[] {
  const m = buf.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (m === 0xa1b2c3d4 || m === 0xa1b23c4d) {
    le = true;
    nano = m === 0xa1b23c4d;
  } else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) {
    le = false;
    nano = buf.readUInt32BE(0) === 0xa1b23c4d;
  } else throw new Error("not a pcap file");
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20) & 0x0fffffff;
  const out: RawPacket[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = BigInt(u32(off));
    const frac = BigInt(u32(off + 4));
    const caplen = u32(off + 8);
    const len = u32(off + 12);
    if (off + 16 + caplen > buf.length) break;
    out.push({ tsNs: sec * 1_000_000_000n + (nano ? frac : frac * 1000n), linktype, caplen, len, data: buf.subarray(off + 16, off + 16 + caplen) });
    off += 16 + caplen;
  }
  return out;
}

function readPcapng(buf: Buffer): RawPacket[] {
  let le = true;
  const ifaces: { linktype: number; snaplen: number; tsUnitsPerSec: bigint }[] = [];
  const out: RawPacket[] = [];
  let off = 0;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  while (off + 12 <= buf.length) {
    const type = buf.readUInt32LE(off);
    if (type === 0x0a0d0d0a) {
      le = buf.readUInt32LE(off + 8) === 0x1a2b3c4d;
      ifaces.length = 0;
    }
    const total = u32(off + 4);
    if (total < 12 || off + total > buf.length) break;
    const body = off + 8;
    if (type === 1) {
      const linktype = u16(body);
      const snaplen = u32(body + 4);
      let units = 1_000_000n;
      let o = body + 8;
      while (o + 4 <= off + total - 4) {
        const code = u16(o);
        const olen = u16(o + 2);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const v = buf[o + 4];
          units = v & 0x80 ? 1n << BigInt(v & 0x7f) : 10n ** BigInt(v);
        }
        o += 4 + ((olen + 3) & ~3);
      }
      ifaces.push({ linktype, snaplen, tsUnitsPerSec: units });
    } else if (type === 6 || type === 2) {
      const ifId = type === 6 ? u32(body) : u16(body);
      const iface = ifaces[ifId];
      const ts = (BigInt(u32(body + 4)) << 32n) | BigInt(u32(body + 8));
      const caplen = u32(body + 12);
      const len = u32(body + 16);
      const tsNs = (ts / iface.tsUnitsPerSec) * 1_000_000_000n + ((ts % iface.tsUnitsPerSec) * 1_000_000_000n) / iface.tsUnitsPerSec;
      out.push({ tsNs, linktype: iface.linktype, caplen, len, data: buf.subarray(body + 20, body + 20 + caplen) });
    } else if (type === 3) {
      const iface = ifaces[0];
      const len = u32(body);
      const caplen = Math.min(len, iface.snaplen || len, total - 16);
      out.push({ tsNs: 0n, linktype: iface.linktype, caplen, len, data: buf.subarray(body + 4, body + 4 + caplen) });
    }
    off += total;
  }
  return out;
}

function l3Offset(linktype: number, d: Uint8Array): { off: number; family: number } | null {
  const be16 = (o: number) => (d[o] << 8) | d[o + 1];
  const byType = (t: number) => (t === 0x0800 ? 4 : t === 0x86dd ? 6 : 0);
  const byVersion = () => (d.length >= 1 ? (d[0] >> 4 === 4 ? 4 : d[0] >> 4 === 6 ? 6 : 0) : 0);
  const bsd = (af: number) => (af === 2 ? 4 : [10, 24, 28, 30].includes(af) ? 6 : 0);
  switch (linktype) {
    case 1: {
      if (d.length < 14) return null;
      let o = 12;
      let t = be16(o);
      while (t === 0x8100 || t === 0x88a8 || t === 0x9100) {
        if (d.length < o + 6) return null;
        o += 4;
        t = be16(o);
      }
      const f = byType(t);
      return f ? { off: o + 2, family: f } : null;
    }
    case 101:
    case 228:
    case 229: {
      const f = byVersion();
      return f ? { off: 0, family: f } : null;
    }
    case 113: {
      if (d.length < 16) return null;
      const f = byType(be16(14));
      return f ? { off: 16, family: f } : null;
    }
    case 276: {
      if (d.length < 20) return null;
      const f = byType(be16(0));
      return f ? { off: 20, family: f } : null;
    }
    case 0: {
      if (d.length < 4) return null;
      let af = d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24);
      if (af >>> 0 > 0xffff) af = ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
      const f = bsd(af);
      return f ? { off: 4, family: f } : null;
    }
    case 108: {
      if (d.length < 4) return null;
      const f = bsd(((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0);
      return f ? { off: 4, family: f } : null;
    }
    default:
      return null;
  }
}

export interface Expected {
  /** Concatenated records of each shard, in file order. */
  shards: Buffer[];
  framesPerShard: number[];
  frames: number;
  skippedNonIp: number;
  skippedMalformed: number;
}

/**
 * The test's own reading of where a packet's headers end (capture's headersOnly): the IP header, IPv6
 * extension headers, then TCP's data offset or UDP's and ICMP's 8 bytes; undefined when the bytes at
 * hand do not say (the record then keeps its snaplen).
 */
export function headersEnd(ip: Uint8Array, family: number): number | undefined {
  let off: number;
  let proto: number;
  if (family === 4) {
    off = (ip[0]! & 15) * 4;
    if (ip.length < 20 || off < 20 || ip.length < off) return undefined;
    if ((((ip[6]! << 8) | ip[7]!) & 0x1fff) !== 0) return off;
    proto = ip[9]!;
  } else {
    if (ip.length < 40) return undefined;
    off = 40;
    proto = ip[6]!;
    const extensions = new Set([0, 43, 44, 60, 51, 135, 139, 140]);
    for (let n = 0; extensions.has(proto); n++) {
      if (n >= 8 || ip.length - off < 8) return undefined;
      const len = proto === 44 ? 8 : proto === 51 ? (ip[off + 1]! + 2) * 4 : (ip[off + 1]! + 1) * 8;
      if (ip.length - off < len) return undefined;
      const later = proto === 44 && (((ip[off + 2]! << 8) | ip[off + 3]!) & 0xfff8) !== 0;
      proto = ip[off]!;
      off += len;
      if (later) return off;
    }
    if (proto === 59) return off;
  }
  if (proto === 6) return ip.length - off < 13 ? undefined : off + Math.max(20, (ip[off + 12]! >> 4) * 4);
  if (proto === 17 || proto === 1 || proto === 58) return off + 8;
  return off;
}

export function expectedRecords(packets: RawPacket[], opts: { local?: string[]; snaplen?: number; shardCount?: number; headersOnly?: boolean } = {}): Expected {
  const snaplen = opts.snaplen ?? 128;
  const shardCount = opts.shardCount ?? 16;
  const local = new CidrSet(opts.local ?? []);
  const parts: Buffer[][] = Array.from({ length: shardCount }, () => []);
  const framesPerShard = new Array<number>(shardCount).fill(0);
  let skippedNonIp = 0;
  let skippedMalformed = 0;
  let frames = 0;
  for (const p of packets) {
    const l3 = l3Offset(p.linktype, p.data);
    if (!l3) {
      skippedNonIp++;
      continue;
    }
    const ip = p.data.subarray(l3.off);
    const v4 = l3.family === 4;
    if (ip.length < (v4 ? 20 : 40) || ip[0] >> 4 !== l3.family) {
      skippedMalformed++;
      continue;
    }
    const [srcOff, dstOff, alen] = v4 ? [12, 16, 4] : [8, 24, 16];
    let direction = DIR_UNKNOWN;
    if (local.size) {
      const dstLocal = local.contains(ip, dstOff, alen);
      const srcLocal = local.contains(ip, srcOff, alen);
      if (dstLocal && !srcLocal) direction = DIR_INGRESS;
      else if (srcLocal && !dstLocal) direction = DIR_EGRESS;
    }
    const shard = shardOf(direction, ip, srcOff, dstOff, alen, shardCount);
    const cap = Math.min(ip.length, snaplen, (opts.headersOnly && headersEnd(ip, l3.family)) || Infinity);
    const rec = Buffer.alloc(FRAME_HDR_LEN + cap);
    rec.writeBigUInt64LE(p.tsNs, 0);
    rec.writeUInt32LE(0, 8);
    rec.writeUInt32LE(Math.max(0, p.len - l3.off), 12);
    rec.writeUInt16LE(cap, 16);
    rec[18] = direction;
    rec[19] = l3.family;
    rec.set(ip.subarray(0, cap), FRAME_HDR_LEN);
    parts[shard].push(rec);
    framesPerShard[shard]++;
    frames++;
  }
  return { shards: parts.map((p) => Buffer.concat(p)), framesPerShard, frames, skippedNonIp, skippedMalformed };
}
