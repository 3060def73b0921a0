import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { craftPacket, TCP_ACK, TCP_SYN, type PacketSpec } from "@vigil/frames";
import { LINKTYPE, PcapWriter } from "../../src/index.js";

export function tempDir(prefix = "vigil-ps-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

export function ether(ip: Uint8Array, opts: { vlans?: number[]; ethertype?: number } = {}): Uint8Array {
  const family = ip[0] >> 4;
  const type = opts.ethertype ?? (family === 6 ? 0x86dd : 0x0800);
  const tags = opts.vlans ?? [];
  const out = new Uint8Array(14 + 4 * tags.length + ip.length);
  out.set(MAC_B, 0);
  out.set(MAC_A, 6);
  let o = 12;
  for (const [i, vid] of tags.entries()) {
    const tpid = i === 0 && tags.length > 1 ? 0x88a8 : 0x8100;
    out[o] = tpid >> 8;
    out[o + 1] = tpid & 0xff;
    out[o + 2] = vid >> 8;
    out[o + 3] = vid & 0xff;
    o += 4;
  }
  out[o] = type >> 8;
  out[o + 1] = type & 0xff;
  out.set(ip, o + 2);
  return out;
}

export function arp(): Uint8Array {
  const out = new Uint8Array(42);
  out.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  out.set(MAC_A, 6);
  out[12] = 0x08;
  out[13] = 0x06;
  return out;
}

export function sll(ip: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + ip.length);
  out[1] = 0; // incoming
  out[3] = 1; // ARPHRD_ETHER
  out[5] = 6;
  out.set(MAC_A, 6);
  const type = ip[0] >> 4 === 6 ? 0x86dd : 0x0800;
  out[14] = type >> 8;
  out[15] = type & 0xff;
  out.set(ip, 16);
  return out;
}

export function sll2(ip: Uint8Array): Uint8Array {
  const out = new Uint8Array(20 + ip.length);
  const type = ip[0] >> 4 === 6 ? 0x86dd : 0x0800;
  out[0] = type >> 8;
  out[1] = type & 0xff;
  out[7] = 2; // ifindex
  out[9] = 1; // ARPHRD_ETHER
  out[11] = 6;
  out.set(MAC_A, 12);
  out.set(ip, 20);
  return out;
}

export function bsdNull(ip: Uint8Array, bigEndian = false): Uint8Array {
  const out = new Uint8Array(4 + ip.length);
  const af = ip[0] >> 4 === 6 ? 30 : 2;
  if (bigEndian) out[3] = af;
  else out[0] = af;
  out.set(ip, 4);
  return out;
}

/** A few TCP conversations (handshake, data both ways), UDP and ICMP, IPv4 and IPv6. */
export function conversationPackets(count: number, seed = 1): Uint8Array[] {
  const out: Uint8Array[] = [];
  let s = seed;
  const rnd = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % n;
  };
  while (out.length < count) {
    const v6 = rnd(4) === 0;
    const client = v6 ? `2001:db8:1::${rnd(200) + 1}` : `10.0.${rnd(4)}.${rnd(250) + 1}`;
    const server = v6 ? `2001:db8:2::${rnd(50) + 1}` : `192.0.2.${rnd(50) + 1}`;
    const kind = rnd(10);
    const sport = 1024 + rnd(60000);
    const specs: PacketSpec[] = [];
    if (kind < 6) {
      specs.push({ src: client, dst: server, proto: "tcp", srcPort: sport, dstPort: 443, flags: TCP_SYN });
      specs.push({ src: server, dst: client, proto: "tcp", srcPort: 443, dstPort: sport, flags: TCP_SYN | TCP_ACK });
      specs.push({ src: client, dst: server, proto: "tcp", srcPort: sport, dstPort: 443, flags: TCP_ACK });
      specs.push({ src: client, dst: server, proto: "tcp", srcPort: sport, dstPort: 443, flags: TCP_ACK, payloadLen: rnd(400) });
      specs.push({ src: server, dst: client, proto: "tcp", srcPort: 443, dstPort: sport, flags: TCP_ACK, payloadLen: 200 + rnd(1200) });
    } else if (kind < 9) {
      specs.push({ src: client, dst: server, proto: "udp", srcPort: sport, dstPort: 53, payloadLen: 20 + rnd(40) });
      specs.push({ src: server, dst: client, proto: "udp", srcPort: 53, dstPort: sport, payloadLen: 40 + rnd(400) });
    } else {
      specs.push({ src: client, dst: server, proto: "icmp", payloadLen: 56 });
    }
    for (const spec of specs) if (out.length < count) out.push(craftPacket(spec));
  }
  return out;
}

/** Writes packets to a pcap with timestamps 1 ms apart, framed for the link type. */
export function writeCapture(path: string, packets: Uint8Array[], linktype: number = LINKTYPE.ETHERNET, frame: (ip: Uint8Array) => Uint8Array = ether, startNs = 1_700_000_000_000_000_000n, stepNs = 1_000_000n): string {
  const w = new PcapWriter(path, linktype);
  packets.forEach((p, i) => w.write(startNs + BigInt(i) * stepNs, frame(p)));
  w.close();
  return path;
}
