import { describe, expect, it } from "vitest";
import { craftPacket, DIR_EGRESS, DIR_INGRESS, RecordWriter, TCP_ACK, TCP_PSH, TCP_SYN, type PacketSpec } from "@vigil/frames";
import { FEATURE_NAMES, Windower, type ClosedBy, type WindowStats } from "../src/index.js";

const BASE = 1_800_000_000_000; // ms, a multiple of the window length

function records(pkts: Array<[number, PacketSpec]>, direction: number | ((spec: PacketSpec) => number) = 0): Uint8Array {
  const w = new RecordWriter();
  for (const [ms, spec] of pkts) {
    const data = craftPacket(spec);
    const dir = typeof direction === "function" ? direction(spec) : direction;
    w.append({ tsNs: BigInt(BASE + ms) * 1_000_000n, ifindex: 0, direction: dir, family: data[0] >> 4, flags: 0, data });
  }
  return w.bytes().slice();
}

interface Closed {
  closedBy: ClosedBy;
  features: Record<string, number>;
  sources: Record<string, { sent: number; pairs: number; halfOpen: number; newTcp: number; fragments: number; local: number; hosts: number; refused: number }>;
  packets: number;
  start: number;
}

function windows(recs: Uint8Array, opts = { windowMs: 1000, maxPackets: 1000 }, scale = 1): Closed[] {
  const out: Closed[] = [];
  const raw = new Float64Array(FEATURE_NAMES.length);
  const w = new Windower(opts, (s: WindowStats, closedBy) => {
    s.features(raw, closedBy === "packets" ? "packets" : "time", scale);
    const sources: Closed["sources"] = {};
    for (let i = 0; i < s.addrCount; i++)
      sources[s.address(i)] = {
        sent: s.sentPackets[i],
        pairs: s.sentPairs[i],
        halfOpen: s.halfOpen[i],
        newTcp: s.sentNewTcp[i],
        fragments: s.sentFragments[i],
        local: s.isLocal[i],
        hosts: s.sentHosts[i],
        refused: s.recvUnreachables[i],
      };
    out.push({ closedBy, features: Object.fromEntries(FEATURE_NAMES.map((n, i) => [n, raw[i]])), sources, packets: s.packets, start: s.start });
  });
  w.ingestRecords(recs);
  w.finish();
  return out;
}

const L = "10.0.0.1";
const crafted: Array<[number, PacketSpec]> = [
  [10, { src: "1.1.1.1", dst: L, proto: "tcp", srcPort: 1001, dstPort: 80, flags: TCP_SYN }],
  [20, { src: "1.1.1.1", dst: L, proto: "tcp", srcPort: 1002, dstPort: 80, flags: TCP_SYN }],
  [30, { src: "1.1.1.1", dst: L, proto: "tcp", srcPort: 1003, dstPort: 80, flags: TCP_SYN }],
  [31, { src: L, dst: "1.1.1.1", proto: "tcp", srcPort: 80, dstPort: 1003, flags: TCP_SYN | TCP_ACK }],
  [40, { src: "1.1.1.1", dst: L, proto: "tcp", srcPort: 1003, dstPort: 80, flags: TCP_PSH | TCP_ACK, payloadLen: 1400 }],
  [50, { src: "1.1.1.1", dst: L, proto: "tcp", srcPort: 1001, dstPort: 80, flags: TCP_SYN }],
  [60, { src: "2.2.2.2", dst: L, proto: "udp", srcPort: 5353, dstPort: 53, payloadLen: 100 }],
  [70, { src: "2.2.2.2", dst: L, proto: "udp", srcPort: 5353, dstPort: 54, payloadLen: 0 }],
  [80, { src: "3.3.3.3", dst: L, proto: "icmp", icmpType: 8, payloadLen: 56 }],
  [90, { src: "4.4.4.4", dst: L, proto: "udp", srcPort: 5000, dstPort: 6000, payloadLen: 1000, moreFragments: true, ipId: 7 }],
  [99, { src: "4.4.4.4", dst: L, proto: "udp", srcPort: 5000, dstPort: 6000, payloadLen: 500, fragOffset: 1008, ipId: 7 }],
];

describe("window features", () => {
  it("computes every feature exactly on a crafted window", () => {
    const [w, ...rest] = windows(records(crafted));
    expect(rest).toHaveLength(0);
    expect(w.closedBy).toBe("end");
    expect(w.packets).toBe(11);
    expect(w.features).toEqual({
      avg_packet_size: 3436 / 11,
      small_packets: 7,
      large_packets: 2,
      new_tcp_connections: 3,
      udp_packets: 4,
      icmp_packets: 1,
      fragments: 2,
      distinct_sources: 5,
      distinct_dst_ports: 5,
      inactive_tcp_connections: 2,
      icmp_unreachables: 0,
      source_fanout: 1,
    });
    expect(w.sources["1.1.1.1"]).toEqual({ sent: 5, pairs: 1, halfOpen: 2, newTcp: 3, fragments: 0, local: 0, hosts: 1, refused: 0 });
    // From port 5000 to 6000, a lower port to a higher one: read as a service answering a client, not a probe.
    expect(w.sources["4.4.4.4"]).toEqual({ sent: 2, pairs: 1, halfOpen: 0, newTcp: 0, fragments: 2, local: 0, hosts: 0, refused: 0 });
    expect(w.sources["2.2.2.2"].pairs).toBe(2);
    // An echo request touches the host's echo "port": one pair, one host probed.
    expect(w.sources["3.3.3.3"]).toMatchObject({ pairs: 1, hosts: 1 });
    // The local side's SYN-ACK is an answer, not a probe.
    expect(w.sources[L].hosts).toBe(0);
    expect(w.sources[L].sent).toBe(1);
  });

  it("source_fanout: the most unicast hosts one non-local source probed (SYN, UDP, echo request), per second", () => {
    const pkts: Array<[number, PacketSpec]> = [];
    // A sweep: one source, echo requests to 12 hosts (one twice), a SYN to a 13th, UDP to a 14th; only some answer.
    for (let h = 1; h <= 12; h++) pkts.push([h * 10, { src: "192.168.1.9", dst: `192.168.1.${100 + h}`, proto: "icmp", icmpType: 8 }]);
    pkts.push([130, { src: "192.168.1.9", dst: "192.168.1.101", proto: "icmp", icmpType: 8 }]);
    pkts.push([140, { src: "192.168.1.9", dst: "192.168.1.120", proto: "tcp", srcPort: 40000, dstPort: 22, flags: TCP_SYN }]);
    pkts.push([150, { src: "192.168.1.9", dst: "192.168.1.121", proto: "udp", srcPort: 40000, dstPort: 161 }]);
    for (const h of [101, 105, 110]) pkts.push([200 + h, { src: `192.168.1.${h}`, dst: "192.168.1.9", proto: "icmp", icmpType: 0 }]);
    // Established traffic, answers of a service (UDP from a lower port) and multicast are not probes of hosts.
    pkts.push([390, { src: "192.168.1.9", dst: "192.168.1.131", proto: "udp", srcPort: 53, dstPort: 40000 }]);
    pkts.push([400, { src: "192.168.1.9", dst: "192.168.1.130", proto: "tcp", srcPort: 40001, dstPort: 80, flags: TCP_ACK }]);
    pkts.push([410, { src: "192.168.1.9", dst: "224.0.0.251", proto: "udp", srcPort: 5353, dstPort: 5353 }]);
    pkts.push([420, { src: "192.168.1.9", dst: "255.255.255.255", proto: "udp", srcPort: 68, dstPort: 67 }]);
    const [w] = windows(records(pkts));
    expect(w.sources["192.168.1.9"]).toMatchObject({ hosts: 14, pairs: 18 });
    expect(w.sources["192.168.1.101"].hosts).toBe(0);
    expect(w.features.source_fanout).toBe(14);
    // A count, unlike the rates: neither divided by the window's duration nor scaled by the shard share.
    const [half] = windows(records(pkts), { windowMs: 500, maxPackets: 1000 }, 4);
    expect(half.features.source_fanout).toBe(14);
    expect(half.features.icmp_packets).toBe(4 * 2 * 16);
  });

  it("source_fanout leaves out the local side: known from directions, else the most contacted destination", () => {
    // The local host opens connections to 20 servers (a page load): its fan-out is not a remote source's.
    const pkts: Array<[number, PacketSpec]> = [];
    for (let i = 0; i < 20; i++) {
      pkts.push([i * 10, { src: L, dst: `5.5.5.${i + 1}`, proto: "tcp", srcPort: 50000 + i, dstPort: 443, flags: TCP_SYN }]);
      pkts.push([i * 10 + 5, { src: `5.5.5.${i + 1}`, dst: L, proto: "tcp", srcPort: 443, dstPort: 50000 + i, flags: TCP_SYN | TCP_ACK }]);
    }
    const direction = (spec: PacketSpec) => (spec.src === L ? DIR_EGRESS : DIR_INGRESS);
    expect(windows(records(pkts, direction))[0].features.source_fanout).toBe(0);
    expect(windows(records(pkts))[0].features.source_fanout).toBe(0);
  });

  it("source_fanout: a remote service answering many clients of a protected network is no sweep", () => {
    // A resolver and a QUIC server answer 20 hosts of the protected /24 (both ends of every frame local or not: no direction).
    const pkts: Array<[number, PacketSpec]> = [];
    for (let i = 0; i < 20; i++) {
      const host = `10.1.0.${i + 2}`;
      pkts.push([i * 10, { src: host, dst: "9.9.9.9", proto: "udp", srcPort: 40000 + i, dstPort: 53 }]);
      pkts.push([i * 10 + 1, { src: "9.9.9.9", dst: host, proto: "udp", srcPort: 53, dstPort: 40000 + i }]);
      pkts.push([i * 10 + 2, { src: "8.8.4.4", dst: host, proto: "udp", srcPort: 443, dstPort: 50000 + i }]);
    }
    const local = (a: string) => a.startsWith("10.1.0.");
    const direction = (spec: PacketSpec) => (local(spec.dst) ? DIR_INGRESS : DIR_EGRESS);
    const [w] = windows(records(pkts, direction));
    expect(w.sources["9.9.9.9"].hosts).toBe(0);
    expect(w.sources["8.8.4.4"].hosts).toBe(0);
    expect(w.features.source_fanout).toBe(0);
  });

  it("icmp_unreachables: what our side refuses, charged to the prober; refusals arriving at a local address do not count", () => {
    const pkts: Array<[number, PacketSpec]> = [];
    for (let i = 0; i < 5; i++) {
      pkts.push([i * 10, { src: "6.6.6.6", dst: L, proto: "udp", srcPort: 40000, dstPort: 1000 + i }]);
      pkts.push([i * 10 + 1, { src: L, dst: "6.6.6.6", proto: "icmp", icmpType: 3, icmpCode: 3 }]);
    }
    // Backscatter: a remote host refusing what was sent in our name.
    pkts.push([100, { src: "7.7.7.7", dst: L, proto: "icmp", icmpType: 3, icmpCode: 3 }]);
    const direction = (spec: PacketSpec) => (spec.src === L ? DIR_EGRESS : DIR_INGRESS);
    const [w] = windows(records(pkts, direction));
    expect(w.features.icmp_unreachables).toBe(5);
    expect(w.sources["6.6.6.6"].refused).toBe(5);
    expect(w.sources[L].refused).toBe(0);
    // IPv6: destination unreachable is type 1.
    const [v6] = windows(records([[0, { src: "fd00::10", dst: "fd00::66", proto: "icmp", icmpType: 1, icmpCode: 4 }]], DIR_EGRESS));
    expect(v6.features.icmp_unreachables).toBe(1);
    expect(v6.sources["fd00::66"].refused).toBe(1);
  });

  it("marks local addresses from the frame direction", () => {
    const [w] = windows(records(crafted.filter(([, s]) => s.dst === L), DIR_INGRESS));
    expect(w.sources[L].local).toBe(1);
    expect(w.sources["1.1.1.1"].local).toBe(0);
  });

  it("aligns windows to multiples of the window length and skips empty slots", () => {
    const ws = windows(
      records([
        [999, { src: "1.1.1.1", dst: L, proto: "udp" }],
        [1000, { src: "1.1.1.1", dst: L, proto: "udp" }],
        [1500, { src: "1.1.1.1", dst: L, proto: "udp" }],
        [3200, { src: "1.1.1.1", dst: L, proto: "udp" }],
      ]),
    );
    expect(ws.map((w) => [w.start - BASE, w.packets, w.closedBy])).toEqual([
      [0, 1, "time"],
      [1000, 2, "time"],
      [3000, 1, "end"],
    ]);
  });

  it("turns counts into per-second rates over the window and scales them by the shard share", () => {
    const recs = records([
      [0, { src: "1.1.1.1", dst: L, proto: "udp" }],
      [100, { src: "1.1.1.2", dst: L, proto: "udp" }],
    ]);
    const [half] = windows(recs, { windowMs: 500, maxPackets: 100 });
    expect(half.features.udp_packets).toBe(4);
    const [scaled] = windows(recs, { windowMs: 500, maxPackets: 100 }, 3);
    expect(scaled.features.udp_packets).toBe(12);
    expect(scaled.features.distinct_sources).toBe(12);
    expect(scaled.features.avg_packet_size).toBe(28);
  });

  it("closes a window after maxPackets; its rate spans first to last packet", () => {
    const pkts: Array<[number, PacketSpec]> = [];
    for (let i = 0; i < 10; i++) pkts.push([i * 10, { src: `9.9.9.${i}`, dst: L, proto: "tcp", srcPort: 2000 + i, dstPort: 22, flags: TCP_SYN }]);
    const ws = windows(records(pkts), { windowMs: 1000, maxPackets: 4 });
    expect(ws.map((w) => [w.packets, w.closedBy])).toEqual([
      [4, "packets"],
      [4, "packets"],
      [2, "end"],
    ]);
    // 4 SYNs from 0 to 30 ms: 4 / 0.03 s.
    expect(ws[0].features.new_tcp_connections).toBeCloseTo(4 / 0.03, 1);
    expect(ws[0].features.inactive_tcp_connections).toBeCloseTo(4 / 0.03, 1);
    // The last window starts at 80 ms and its slot ends at 1000 ms.
    expect(ws[2].features.new_tcp_connections).toBeCloseTo(2 / 0.92, 3);
  });

  it("handles IPv6 addresses, fragments and ports", () => {
    const [w] = windows(
      records([
        [0, { src: "2001:db8::1", dst: "2001:db8::2", proto: "tcp", srcPort: 1, dstPort: 443, flags: TCP_SYN }],
        [1, { src: "2001:db8::1", dst: "2001:db8::2", proto: "udp", dstPort: 53, moreFragments: true, payloadLen: 8 }],
        [2, { src: "2001:db8::3", dst: "2001:db8::2", proto: "icmp" }],
      ]),
    );
    expect(w.features.distinct_sources).toBe(2);
    expect(w.features.fragments).toBe(1);
    expect(w.features.distinct_dst_ports).toBe(2);
    expect(w.features.icmp_packets).toBe(1);
    expect(Object.keys(w.sources).sort()).toEqual(["2001:db8::1", "2001:db8::2", "2001:db8::3"]);
  });

  it("resets every table between windows", () => {
    const pkts: Array<[number, PacketSpec]> = [];
    for (let s = 0; s < 3; s++)
      for (let i = 0; i < 50; i++) pkts.push([s * 1000 + i, { src: `7.7.${s}.${i}`, dst: L, proto: "tcp", srcPort: 3000 + i, dstPort: 100 + i, flags: TCP_SYN }]);
    const ws = windows(records(pkts), { windowMs: 1000, maxPackets: 64 });
    for (const w of ws) {
      expect(w.features.distinct_sources).toBe(50);
      expect(w.features.distinct_dst_ports).toBe(50);
      expect(w.features.inactive_tcp_connections).toBe(50);
      expect(Object.keys(w.sources)).toHaveLength(51);
    }
  });
});
