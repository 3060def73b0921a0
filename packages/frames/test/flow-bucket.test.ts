import { describe, expect, it } from "vitest";
import {
  FAMILY_IPV4,
  FAMILY_IPV6,
  FLOW_BUCKETS,
  PacketDecoder,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  craftPacket,
  flowBucket,
  shedsSegment,
  type PacketSpec,
} from "../src/index.js";

function decoded(spec: PacketSpec): PacketDecoder {
  const d = new PacketDecoder();
  const p = craftPacket(spec);
  const family = spec.src.includes(":") ? FAMILY_IPV6 : FAMILY_IPV4;
  if (!d.decode(p, 0, p.length, family, p.length)) throw new Error("crafted packet does not decode");
  return d;
}

const reply = (s: PacketSpec): PacketSpec => ({ ...s, src: s.dst, dst: s.src, srcPort: s.dstPort, dstPort: s.srcPort });

describe("flow bucket", () => {
  it("is the same for both directions of a flow, IPv4 and IPv6", () => {
    for (const [a, b] of [
      ["10.0.0.1", "192.168.1.9"],
      ["2001:db8::1", "2001:db8:ffff::2"],
    ])
      for (let port = 40000; port < 40200; port++) {
        const s: PacketSpec = { src: a, dst: b, proto: "tcp", srcPort: port, dstPort: 443, flags: TCP_ACK };
        const fwd = flowBucket(decoded(s));
        expect(fwd).toBeGreaterThanOrEqual(0);
        expect(fwd).toBeLessThan(FLOW_BUCKETS);
        expect(flowBucket(decoded(reply(s)))).toBe(fwd);
      }
  });

  it("spreads the flows of one pair of hosts over every bucket", () => {
    for (const [a, b] of [
      ["10.0.0.1", "192.168.1.9"],
      ["2001:db8::1", "2001:db8:ffff::2"],
    ]) {
      const counts = new Array<number>(FLOW_BUCKETS).fill(0);
      for (let port = 1024; port < 1024 + 64 * 200; port++) counts[flowBucket(decoded({ src: a, dst: b, proto: "tcp", srcPort: port, dstPort: 22 }))]++;
      // 200 expected per bucket: none empty, none crowded.
      expect(Math.min(...counts)).toBeGreaterThan(120);
      expect(Math.max(...counts)).toBeLessThan(280);
    }
  });

  it("tells flows apart by every part of the 5-tuple", () => {
    const base: PacketSpec = { src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", srcPort: 50000, dstPort: 80 };
    const variants: PacketSpec[] = [];
    for (let i = 0; i < 64; i++) variants.push({ ...base, src: `10.0.${i}.1` }, { ...base, dst: `10.0.${i}.2` }, { ...base, dstPort: 80 + i });
    const buckets = new Set(variants.map((v) => flowBucket(decoded(v))));
    expect(buckets.size).toBeGreaterThan(FLOW_BUCKETS / 2);
  });
});

describe("shedsSegment", () => {
  const est: PacketSpec = { src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", srcPort: 50000, dstPort: 80, flags: TCP_ACK, payloadLen: 100 };

  it("keeps everything at full keep", () => {
    expect(shedsSegment(decoded(est), FLOW_BUCKETS)).toBe(false);
  });

  it("sheds the established segments of flows at or above the keep line, in both directions", () => {
    let shed = 0;
    for (let port = 40000; port < 41000; port++) {
      const s = { ...est, srcPort: port };
      const d = decoded(s);
      const want = flowBucket(d) >= 4;
      expect(shedsSegment(d, 4)).toBe(want);
      expect(shedsSegment(decoded(reply(s)), 4)).toBe(want);
      if (want) shed++;
    }
    // Keeping 4 of 64 buckets sheds about 15/16 of the flows.
    expect(shed).toBeGreaterThan(900);
    expect(shed).toBeLessThan(970);
  });

  it("never sheds connection events, probes without ACK, or anything but TCP", () => {
    for (let port = 40000; port < 40100; port++) {
      for (const flags of [TCP_SYN, TCP_SYN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK, 0, TCP_FIN])
        expect(shedsSegment(decoded({ ...est, srcPort: port, flags }), 1)).toBe(false);
      expect(shedsSegment(decoded({ src: "10.0.0.1", dst: "10.0.0.2", proto: "udp", srcPort: port, dstPort: 53 }), 1)).toBe(false);
      expect(shedsSegment(decoded({ src: "10.0.0.1", dst: "10.0.0.2", proto: "icmp" }), 1)).toBe(false);
    }
    // Fragments are evidence (of fragment attacks), the first one with its TCP header included.
    expect(shedsSegment(decoded({ ...est, fragOffset: 8 }), 1)).toBe(false);
    for (let port = 40000; port < 40100; port++) expect(shedsSegment(decoded({ ...est, srcPort: port, moreFragments: true }), 1)).toBe(false);
  });
});
