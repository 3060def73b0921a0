import { craftPacket, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type PacketSpec } from "@vigil/frames";
import { LINKTYPE, PcapWriter } from "@vigil/packet-sources";

export interface TimedPacket {
  /** Seconds since the epoch. */
  ts: number;
  spec: PacketSpec;
}

/** A pcap file (Ethernet frames, timestamps to the microsecond) holding the packets in order. */
export function writePcap(path: string, packets: TimedPacket[]): void {
  const w = new PcapWriter(path, LINKTYPE.ETHERNET);
  for (const p of [...packets].sort((a, b) => a.ts - b.ts)) {
    const ip = craftPacket(p.spec);
    const frame = Buffer.alloc(14 + ip.length);
    Buffer.from([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]).copy(frame, 0);
    frame.writeUInt16BE(p.spec.src.includes(":") ? 0x86dd : 0x0800, 12);
    frame.set(ip, 14);
    const sec = Math.floor(p.ts);
    w.write(BigInt(sec) * 1_000_000_000n + BigInt(Math.round((p.ts - sec) * 1e6)) * 1000n, frame);
  }
  w.close();
}

/** A complete, ordinary TCP exchange between a client and a local server. */
export function benignConnection(client: string, server: string, clientPort: number, serverPort: number, start: number): TimedPacket[] {
  const c = (flags: number, payloadLen = 0) => ({ src: client, dst: server, proto: "tcp" as const, srcPort: clientPort, dstPort: serverPort, flags, payloadLen });
  const s = (flags: number, payloadLen = 0) => ({ src: server, dst: client, proto: "tcp" as const, srcPort: serverPort, dstPort: clientPort, flags, payloadLen });
  const specs = [
    c(TCP_SYN), s(TCP_SYN | TCP_ACK), c(TCP_ACK), c(TCP_PSH | TCP_ACK, 300), s(TCP_ACK),
    s(TCP_ACK, 1200), s(TCP_ACK, 1200), s(TCP_PSH | TCP_ACK, 800), c(TCP_ACK),
    c(TCP_FIN | TCP_ACK), s(TCP_FIN | TCP_ACK), c(TCP_ACK),
  ];
  return specs.map((spec, i) => ({ ts: start + i * 0.01, spec }));
}

/** A SYN scan of many ports of one local host: SYN, then RST (closed) or SYN-ACK + RST (open). */
export function synScan(attacker: string, victim: string, ports: number[], start: number, gap = 0.002): TimedPacket[] {
  const out: TimedPacket[] = [];
  ports.forEach((port, i) => {
    const t = start + i * gap;
    const sp = 50000 + (i % 10000);
    out.push({ ts: t, spec: { src: attacker, dst: victim, proto: "tcp", srcPort: sp, dstPort: port, flags: TCP_SYN } });
    if (port % 10 === 0) {
      out.push({ ts: t + 0.0005, spec: { src: victim, dst: attacker, proto: "tcp", srcPort: port, dstPort: sp, flags: TCP_SYN | TCP_ACK } });
      out.push({ ts: t + 0.001, spec: { src: attacker, dst: victim, proto: "tcp", srcPort: sp, dstPort: port, flags: TCP_RST } });
    } else {
      out.push({ ts: t + 0.0005, spec: { src: victim, dst: attacker, proto: "tcp", srcPort: port, dstPort: sp, flags: TCP_RST | TCP_ACK } });
    }
  });
  return out;
}
