import { describe, expect, it } from "vitest";
import { craftPacket, DIR_INGRESS, RecordWriter, TCP_ACK, TCP_PSH, TCP_SYN, type PacketSpec } from "@vigil/frames";
import { FEATURE_NAMES, Windower, type ClosedBy, type WindowStats } from "../src/index.js";

const BASE = 1_800_000_000_000; // ms, a multiple of the window length

function records(pkts: Array<[number, PacketSpec]>, direction = 0): Uint8Array {
  const w = new RecordWriter();
  for (const [ms, spec] of pkts) {
    const data = craftPacket(spec);
    w.append({ tsNs: BigInt(BASE + ms) * 1_000_000n, ifindex: 0, direction, family: data[0] >> 4, flags: 0, data });
  }
  return w.bytes().slice();
}

interface Closed {
  closedBy: ClosedBy;
  features: Record<string, number>;
  sources: Record<string, { sent: number; pairs: number; halfOpen: number; newTcp: number; fragments: number; local: number }>;
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
    });
    expect(w.sources["1.1.1.1"]).toEqual({ sent: 5, pairs: 1, halfOpen: 2, newTcp: 3, fragments: 0, local: 0 });
    expect(w.sources["4.4.4.4"]).toEqual({ sent: 2, pairs: 1, halfOpen: 0, newTcp: 0, fragments: 2, local: 0 });
    expect(w.sources["2.2.2.2"].pairs).toBe(2);
    expect(w.sources[L].sent).toBe(1);
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
