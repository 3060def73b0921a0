import { craftPacket, DIR_EGRESS, DIR_INGRESS, DIR_UNKNOWN, RecordWriter, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, type PacketSpec } from "@vigil/frames";
import { Prng } from "./som.js";

interface Pending {
  ts: number;
  spec: PacketSpec;
  dir: number;
  seq: number;
}

export interface SynthOptions {
  seed: number;
  /** The protected host. */
  local?: string;
  /** Record directions (as a live capture would) or leave them unknown (as a foreign capture replay). */
  directions?: boolean;
}

/**
 * Reproducible synthetic traffic for training and tests: benign sessions of a
 * small server that also browses, and the attacks the detector must flag.
 * Everything is driven by one seeded PRNG; times are capture seconds.
 */
export class TrafficSynth {
  private readonly prng: Prng;
  private readonly pending: Pending[] = [];
  private seq = 0;
  readonly local: string;
  private readonly directions: boolean;
  private readonly peers: string[];

  constructor(opts: SynthOptions) {
    this.prng = new Prng(opts.seed);
    this.local = opts.local ?? "10.0.0.1";
    this.directions = opts.directions ?? true;
    this.peers = [];
    for (let i = 0; i < 3000; i++) this.peers.push(`${11 + this.prng.int(180)}.${this.prng.int(256)}.${this.prng.int(256)}.${1 + this.prng.int(254)}`);
  }

  get packetCount(): number {
    return this.pending.length;
  }

  private r(): number {
    return this.prng.next();
  }

  /** A popular-first remote peer (roughly Zipf). */
  private peer(): string {
    return this.peers[Math.floor(this.peers.length * this.r() ** 3)];
  }

  /** `toLocal`: the frame's direction when neither end is the protected host (a protected network behind it). */
  private emit(ts: number, spec: PacketSpec, toLocal = true): void {
    let dir = DIR_UNKNOWN;
    if (this.directions) dir = spec.dst === this.local ? DIR_INGRESS : spec.src === this.local ? DIR_EGRESS : toLocal ? DIR_INGRESS : DIR_EGRESS;
    this.pending.push({ ts, spec, dir, seq: this.seq++ });
  }

  private randomAddress(): string {
    return `${1 + this.prng.int(223)}.${this.prng.int(256)}.${this.prng.int(256)}.${1 + this.prng.int(254)}`;
  }

  /** A TCP session with a handshake, `exchanges` request/response rounds and a close. */
  tcpSession(t: number, client: string, server: string, port: number, exchanges: number, respPackets: () => number): void {
    const cport = 1024 + this.prng.int(60000);
    const rtt = 0.005 + this.r() * 0.12;
    const c = { src: client, dst: server, proto: "tcp" as const, srcPort: cport, dstPort: port };
    const s = { src: server, dst: client, proto: "tcp" as const, srcPort: port, dstPort: cport };
    this.emit(t, { ...c, flags: TCP_SYN });
    this.emit(t + rtt / 2, { ...s, flags: TCP_SYN | TCP_ACK });
    t += rtt;
    this.emit(t, { ...c, flags: TCP_ACK });
    for (let e = 0; e < exchanges; e++) {
      this.emit(t, { ...c, flags: TCP_PSH | TCP_ACK, payloadLen: 200 + this.prng.int(500) });
      t += rtt / 2;
      const n = respPackets();
      for (let i = 0; i < n; i++) {
        const last = i === n - 1;
        this.emit(t, { ...s, flags: last ? TCP_PSH | TCP_ACK : TCP_ACK, payloadLen: last ? 1 + this.prng.int(1400) : 1448 });
        if (i % 2 === 1 || last) this.emit(t + 0.0005, { ...c, flags: TCP_ACK });
        t += 0.0002 + this.r() * 0.002;
      }
      t += rtt / 2 + this.r() * 0.5;
    }
    this.emit(t, { ...c, flags: TCP_FIN | TCP_ACK });
    this.emit(t + rtt / 2, { ...s, flags: TCP_FIN | TCP_ACK });
    this.emit(t + rtt, { ...c, flags: TCP_ACK });
  }

  private dns(t: number): void {
    const resolver = "10.0.0.53";
    const port = 1024 + this.prng.int(60000);
    this.emit(t, { src: this.local, dst: resolver, proto: "udp", srcPort: port, dstPort: 53, payloadLen: 30 + this.prng.int(30) });
    this.emit(t + 0.002 + this.r() * 0.03, { src: resolver, dst: this.local, proto: "udp", srcPort: 53, dstPort: port, payloadLen: 60 + this.prng.int(300) });
  }

  private ping(t: number, peer: string, count: number): void {
    for (let i = 0; i < count; i++) {
      this.emit(t + i, { src: this.local, dst: peer, proto: "icmp", icmpType: 8, payloadLen: 56 });
      this.emit(t + i + 0.01 + this.r() * 0.05, { src: peer, dst: this.local, proto: "icmp", icmpType: 0, payloadLen: 56 });
    }
  }

  private traceroute(t: number): void {
    const target = this.peer();
    const hops = 8 + this.prng.int(20);
    for (let h = 1; h <= hops; h++) {
      const router = h === hops ? target : `${11 + this.prng.int(180)}.${this.prng.int(256)}.${this.prng.int(256)}.${1 + this.prng.int(254)}`;
      for (let k = 0; k < 3; k++) {
        const ts = t + (h - 1) * 0.15 + k * 0.04;
        this.emit(ts, { src: this.local, dst: target, proto: "icmp", icmpType: 8, payloadLen: 64, ttl: h });
        this.emit(ts + 0.01 + h * 0.003, { src: router, dst: this.local, proto: "icmp", icmpType: h === hops ? 0 : 11, payloadLen: h === hops ? 64 : 92 });
      }
    }
  }

  /** A page load: the local host opens several connections to a few servers at once. */
  private pageLoad(t: number): void {
    const servers = 1 + this.prng.int(6);
    const conns = 2 + this.prng.int(24);
    const list = Array.from({ length: servers }, () => this.peer());
    for (let i = 0; i < conns; i++)
      this.tcpSession(t + this.r() * 0.8, this.local, list[i % servers], this.r() < 0.8 ? 443 : 80, 1 + this.prng.int(4), () => 1 + this.prng.int(30));
  }

  /**
   * Benign traffic: the activity level changes every few seconds (log-uniform
   * between quiet and busy), and sessions of each kind arrive as Poisson
   * processes scaled by it.
   */
  benign(start: number, duration: number, busy = 1): void {
    let t = start;
    const end = start + duration;
    while (t < end) {
      const spanEnd = Math.min(end, t + 2 + this.r() * 20);
      const level = busy * Math.exp(Math.log(0.05) + this.r() * Math.log(8 / 0.05));
      const kinds: Array<[number, (ts: number) => void]> = [
        [0.6, (ts) => this.tcpSession(ts, this.peer(), this.local, this.r() < 0.7 ? 443 : 80, 1 + this.prng.int(3), () => 1 + this.prng.int(20))],
        [0.05, (ts) => this.tcpSession(ts, this.peer(), this.local, 22, 5 + this.prng.int(40), () => 1 + this.prng.int(2))],
        [0.15, (ts) => this.pageLoad(ts)],
        [0.8, (ts) => this.dns(ts)],
        [0.02, (ts) => this.ping(ts, this.peer(), 1 + this.prng.int(5))],
        [0.005, (ts) => this.traceroute(ts)],
        [0.05, (ts) => this.emit(ts, { src: this.local, dst: "10.0.0.123", proto: "udp", srcPort: 123, dstPort: 123, payloadLen: 48 })],
      ];
      for (const [rate, make] of kinds) {
        const lambda = rate * level;
        let ts = t;
        for (;;) {
          ts += -Math.log(1 - this.r()) / lambda;
          if (ts >= spanEnd) break;
          make(ts);
        }
      }
      t = spanEnd;
    }
  }

  /** SYN flood against one service; spoofed floods use a fresh random source per packet. */
  synFlood(start: number, duration: number, pps: number, opts: { target?: string; port?: number; source?: string } = {}): void {
    const target = opts.target ?? this.local;
    const n = Math.round(duration * pps);
    for (let i = 0; i < n; i++) {
      const src = opts.source ?? `${1 + this.prng.int(223)}.${this.prng.int(256)}.${this.prng.int(256)}.${1 + this.prng.int(254)}`;
      this.emit(start + (i + this.r()) / pps, {
        src,
        dst: target,
        proto: "tcp",
        srcPort: 1024 + this.prng.int(64000),
        dstPort: opts.port ?? 80,
        flags: TCP_SYN,
        seq: this.prng.int(2 ** 31),
      });
    }
  }

  /** A fast SYN scan of many ports from one source; closed ports answer with RST. `flags`: a FIN, Xmas or NULL scan's probes instead. */
  synScan(start: number, duration: number, pps: number, scanner: string, opts: { target?: string; flags?: number } = {}): void {
    const target = opts.target ?? this.local;
    const flags = opts.flags ?? TCP_SYN;
    const n = Math.round(duration * pps);
    for (let i = 0; i < n; i++) {
      const ts = start + (i + this.r()) / pps;
      const port = 1 + ((i * 7919) % 65535);
      this.emit(ts, { src: scanner, dst: target, proto: "tcp", srcPort: 40000 + (i % 8), dstPort: port, flags });
      this.emit(ts + 0.0003, { src: target, dst: scanner, proto: "tcp", srcPort: port, dstPort: 40000 + (i % 8), flags: 0x14 });
    }
  }

  /**
   * A UDP port scan (nmap -sU): one probe per port, the target refusing each closed port with an ICMP
   * port unreachable; every `openEvery`-th port is open|filtered and stays silent. Without a scanner, each
   * probe comes from a fresh forged source (the refusals then go to thousands of innocents).
   */
  udpScan(start: number, duration: number, pps: number, scanner?: string, opts: { target?: string; openEvery?: number } = {}): void {
    const target = opts.target ?? this.local;
    const n = Math.round(duration * pps);
    for (let i = 0; i < n; i++) {
      const ts = start + (i + this.r()) / pps;
      const src = scanner ?? this.randomAddress();
      const port = 1 + ((i * 7919) % 65535);
      this.emit(ts, { src, dst: target, proto: "udp", srcPort: 50000 + (i % 4), dstPort: port, payloadLen: this.prng.int(3) * 20 });
      if (opts.openEvery && i % opts.openEvery === 0) continue;
      this.emit(ts + 0.0002, { src: target, dst: src, proto: "icmp", icmpType: 3, icmpCode: 3, payloadLen: 48 });
    }
  }

  /**
   * A ping sweep (nmap -sn -PE) from one source across `hosts` addresses of the protected host's /24, as a
   * router or span port protecting that network sees it: one echo request per host (a second to the first
   * `retries`), `alive` of every 10 hosts answering.
   */
  pingSweep(start: number, duration: number, hosts: number, scanner: string, opts: { alive?: number; retries?: number } = {}): void {
    const prefix = this.local.split(".").slice(0, 3).join(".");
    const alive = opts.alive ?? 4;
    for (let h = 0; h < hosts; h++) {
      const dst = `${prefix}.${2 + (h % 253)}`;
      const ts = start + (h + this.r()) * (duration / hosts);
      const tries = h < (opts.retries ?? 0) ? 2 : 1;
      for (let k = 0; k < tries; k++) this.emit(ts + k * 0.1, { src: scanner, dst, proto: "icmp", icmpType: 8, payloadLen: 0 });
      if (h % 10 < alive) this.emit(ts + 0.002 + this.r() * 0.05, { src: dst, dst: scanner, proto: "icmp", icmpType: 0, payloadLen: 0 }, false);
    }
  }

  udpFlood(start: number, duration: number, pps: number, source: string, opts: { target?: string; port?: number; size?: number } = {}): void {
    const n = Math.round(duration * pps);
    for (let i = 0; i < n; i++)
      this.emit(start + (i + this.r()) / pps, {
        src: source,
        dst: opts.target ?? this.local,
        proto: "udp",
        srcPort: 1024 + this.prng.int(64000),
        dstPort: opts.port ?? 1 + this.prng.int(65535),
        payloadLen: opts.size ?? 512,
      });
  }

  icmpFlood(start: number, duration: number, pps: number, source: string): void {
    const n = Math.round(duration * pps);
    for (let i = 0; i < n; i++) this.emit(start + (i + this.r()) / pps, { src: source, dst: this.local, proto: "icmp", icmpType: 8, payloadLen: 1000 });
  }

  /** Fragments of large datagrams from one source (or spoofed ones when source is absent). */
  fragmentFlood(start: number, duration: number, pps: number, source?: string): void {
    const n = Math.round(duration * pps);
    for (let i = 0; i < n; i++) {
      const src = source ?? `${1 + this.prng.int(223)}.${this.prng.int(256)}.${this.prng.int(256)}.${1 + this.prng.int(254)}`;
      const first = i % 3 === 0;
      this.emit(start + (i + this.r()) / pps, {
        src,
        dst: this.local,
        proto: "udp",
        srcPort: 5000,
        dstPort: 6000,
        payloadLen: first ? 1472 : 1472,
        ipId: Math.floor(i / 3),
        fragOffset: first ? 0 : (i % 3) * 1480,
        moreFragments: i % 3 !== 2,
      });
    }
  }

  /** Reflection: many reflectors answer a spoofed request with large UDP responses from a service port. */
  amplification(start: number, duration: number, pps: number, reflectors: number, srcPort = 53): void {
    const list = Array.from({ length: reflectors }, () => `${1 + this.prng.int(223)}.${this.prng.int(256)}.${this.prng.int(256)}.${1 + this.prng.int(254)}`);
    const n = Math.round(duration * pps);
    for (let i = 0; i < n; i++)
      this.emit(start + (i + this.r()) / pps, {
        src: list[this.prng.int(reflectors)],
        dst: this.local,
        proto: "udp",
        srcPort,
        dstPort: 1024 + this.prng.int(64000),
        payloadLen: 1200 + this.prng.int(272),
      });
  }

  /** The frame records, in capture-time order. */
  records(): Uint8Array {
    this.pending.sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    const w = new RecordWriter(1 << 20);
    for (const p of this.pending) {
      const data = craftPacket(p.spec);
      w.append({
        tsNs: BigInt(Math.round(p.ts * 1e6)) * 1000n,
        ifindex: 0,
        direction: p.dir,
        family: data[0] >> 4 === 6 ? 6 : 4,
        flags: 0,
        data,
      });
    }
    return w.bytes().slice();
  }
}
