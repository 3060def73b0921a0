import { execFileSync } from "node:child_process";

export const SYN = 0x02;
export const FIN = 0x01;
export const ACK = 0x10;

/** One IP packet of a capture (the outer header: an ICMP error is ICMP, whatever it quotes). */
export interface Packet {
  ts: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  proto: "tcp" | "udp" | "icmp" | "other";
  /** TCP flags (SYN 0x02, FIN 0x01, ACK 0x10, ...); 0 for other protocols. */
  flags: number;
  /** Payload bytes (TCP segment data or UDP datagram payload). */
  length: number;
}

const FIELDS = ["frame.time_epoch", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "ip.proto", "ipv6.nxt", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags", "tcp.len", "udp.length"];
const first = (v: string | undefined) => (v ?? "").split(",")[0]!;

/** Every IP packet of a pcap that matches the tshark display filter. */
export function readPackets(file: string, filter = "ip or ipv6"): Packet[] {
  const out = execFileSync("tshark", ["-n", "-r", file, "-Y", filter, "-T", "fields", "-E", "separator=\t", ...FIELDS.flatMap((f) => ["-e", f])], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 256 << 20,
  });
  const packets: Packet[] = [];
  for (const line of out.split("\n")) {
    if (!line) continue;
    const [ts, s4, s6, d4, d6, p4, p6, ts1, td1, us1, ud1, flags, tlen, ulen] = line.split("\t");
    const next = Number(first(p4) || first(p6));
    const proto = next === 6 ? "tcp" : next === 17 ? "udp" : next === 1 || next === 58 ? "icmp" : "other";
    packets.push({
      ts: Number(ts),
      src: first(s4) || first(s6),
      dst: first(d4) || first(d6),
      sport: Number(first(proto === "tcp" ? ts1 : proto === "udp" ? us1 : "")) || 0,
      dport: Number(first(proto === "tcp" ? td1 : proto === "udp" ? ud1 : "")) || 0,
      proto,
      flags: proto === "tcp" ? Number(first(flags)) : 0,
      length: proto === "tcp" ? Number(first(tlen)) || 0 : proto === "udp" ? Math.max(0, Number(first(ulen)) - 8) : 0,
    });
  }
  return packets;
}

export interface Connection {
  client: string;
  server: string;
  port: number;
  start: number;
  /** Who sent the first FIN; null when none was seen. */
  firstFin: "client" | "server" | null;
  /** Segments with payload from the client (requests, commands). */
  clientData: number;
  serverBytes: number;
}

/** TCP connections the capture saw open (a SYN from the client), in the order they opened. */
export function connections(packets: Packet[]): Connection[] {
  const byKey = new Map<string, Connection>();
  const key = (a: string, ap: number, b: string, bp: number) => `${a}|${ap}|${b}|${bp}`;
  for (const p of packets) {
    if (p.proto !== "tcp") continue;
    if ((p.flags & (SYN | ACK)) === SYN) {
      byKey.set(key(p.src, p.sport, p.dst, p.dport), { client: p.src, server: p.dst, port: p.dport, start: p.ts, firstFin: null, clientData: 0, serverBytes: 0 });
      continue;
    }
    const fromClient = byKey.get(key(p.src, p.sport, p.dst, p.dport));
    const fromServer = byKey.get(key(p.dst, p.dport, p.src, p.sport));
    const c = fromClient ?? fromServer;
    if (!c) continue;
    if (p.flags & FIN && c.firstFin === null) c.firstFin = fromClient ? "client" : "server";
    if (fromClient && p.length > 0) c.clientData++;
    if (fromServer) c.serverBytes += p.length;
  }
  return [...byKey.values()];
}
