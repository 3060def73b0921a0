// Generates a capture of realistic traffic for the benchmark: TCP conversations
// (handshake, request, a response of several MSS-sized segments with ACKs,
// teardown), DNS over UDP, ICMP echo, about a fifth IPv6, on Ethernet.
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { craftPacket, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, type PacketSpec } from "@vigil/frames";
import { LINKTYPE, PcapWriter } from "@vigil/packet-sources";

const ETH_V4 = Uint8Array.from([0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00]);
const ETH_V6 = Uint8Array.from([0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x86, 0xdd]);

export interface GeneratedCapture {
  path: string;
  frames: number;
  bytes: number;
}

export function generateCapture(path: string, frames: number, seed = 42): GeneratedCapture {
  let s = seed >>> 0;
  const rnd = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
  const w = new PcapWriter(path, LINKTYPE.ETHERNET);
  let ts = 1_700_000_000_000_000_000n;
  const frameBuf = new Uint8Array(14 + 1500 + 64);
  const emit = (spec: PacketSpec) => {
    if (w.packets >= frames) return;
    const ip = craftPacket(spec);
    frameBuf.set(ip[0] >> 4 === 6 ? ETH_V6 : ETH_V4, 0);
    frameBuf.set(ip, 14);
    ts += BigInt(1000 + rnd(20_000));
    w.write(ts, frameBuf.subarray(0, 14 + ip.length));
  };
  while (w.packets < frames) {
    const v6 = rnd(5) === 0;
    const client = v6 ? `2001:db8:${rnd(16)}::${(rnd(65000) + 1).toString(16)}` : `10.${rnd(8)}.${rnd(256)}.${rnd(254) + 1}`;
    const server = v6 ? `2001:db8:ff::${(rnd(500) + 1).toString(16)}` : `198.51.${rnd(4)}.${rnd(254) + 1}`;
    const kind = rnd(100);
    const left = frames - w.packets;
    if (kind < 70 && left >= 8) {
      const cport = 1024 + rnd(64000);
      const sport = [443, 80, 22, 8080][rnd(4)];
      const mss = v6 ? 1428 : 1448;
      const c2s = (flags: number, payloadLen = 0): PacketSpec => ({ src: client, dst: server, proto: "tcp", srcPort: cport, dstPort: sport, flags, payloadLen });
      const s2c = (flags: number, payloadLen = 0): PacketSpec => ({ src: server, dst: client, proto: "tcp", srcPort: sport, dstPort: cport, flags, payloadLen });
      emit(c2s(TCP_SYN));
      emit(s2c(TCP_SYN | TCP_ACK));
      emit(c2s(TCP_ACK));
      emit(c2s(TCP_ACK | TCP_PSH, 60 + rnd(600)));
      let segments = 1 + rnd(Math.min(12, left - 7));
      while (segments-- > 0) {
        emit(s2c(TCP_ACK | (segments === 0 ? TCP_PSH : 0), segments === 0 ? 1 + rnd(mss) : mss));
        if (segments % 2 === 0) emit(c2s(TCP_ACK));
        if (w.packets >= frames - 3) break;
      }
      emit(c2s(TCP_FIN | TCP_ACK));
      emit(s2c(TCP_FIN | TCP_ACK));
      emit(c2s(TCP_ACK));
    } else if (kind < 92 || left < 8) {
      const resolver = v6 ? "2001:db8:53::53" : "192.0.2.53";
      const cport = 1024 + rnd(64000);
      emit({ src: client, dst: resolver, proto: "udp", srcPort: cport, dstPort: 53, payloadLen: 20 + rnd(40) });
      if (w.packets < frames) emit({ src: resolver, dst: client, proto: "udp", srcPort: 53, dstPort: cport, payloadLen: 40 + rnd(460) });
    } else {
      emit({ src: client, dst: server, proto: "icmp", payloadLen: 56 });
      if (w.packets < frames) emit({ src: server, dst: client, proto: "icmp", icmpType: v6 ? 129 : 0, payloadLen: 56 });
    }
  }
  w.close();
  return { path, frames: w.packets, bytes: w.bytes + 24 };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const [path, n] = process.argv.slice(2);
  if (!path) {
    process.stderr.write("usage: node --import ../../scripts/ts-bench.mjs bench/gen-pcap.ts FILE [FRAMES]\n");
    process.exit(2);
  }
  const t = Date.now();
  const g = generateCapture(path, Number(n ?? 1_000_000));
  process.stderr.write(`wrote ${g.frames} frames (${(g.bytes / 1e6).toFixed(1)} MB) to ${path} in ${Date.now() - t} ms\n`);
}
