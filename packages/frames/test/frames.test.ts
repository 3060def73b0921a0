import { describe, expect, it } from "vitest";
import {
  CidrSet,
  DIR_EGRESS,
  DIR_INGRESS,
  DIR_UNKNOWN,
  FAMILY_IPV4,
  FAMILY_IPV6,
  FRAME_HDR_LEN,
  IPPROTO_TCP,
  IPPROTO_UDP,
  Malformed,
  PacketDecoder,
  RecordCursor,
  RecordFormatError,
  RecordWriter,
  TCP_ACK,
  TCP_SYN,
  craftPacket,
  decodeRecords,
  formatAddress,
  parseAddress,
  parseCidr,
  shardOf,
  tcpFlagsToString,
} from "../src/index.js";

describe("frame records", () => {
  it("round-trips records with the header layout of the UAPI header", () => {
    expect(FRAME_HDR_LEN).toBe(24);
    const w = new RecordWriter(16);
    const a = craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", flags: TCP_SYN });
    const b = craftPacket({ src: "2001:db8::1", dst: "2001:db8::2", proto: "udp", payloadLen: 100 });
    w.append({ tsNs: 1_700_000_000_123_456_789n, ifindex: 3, direction: DIR_INGRESS, family: FAMILY_IPV4, flags: 1, data: a });
    w.append({ tsNs: 1_700_000_000_223_456_789n, ifindex: 4, origLen: 1500, direction: DIR_EGRESS, family: FAMILY_IPV6, flags: 0, data: b });
    const recs = decodeRecords(w.bytes());
    expect(recs).toHaveLength(2);
    expect(recs[0]).toMatchObject({ tsNs: 1_700_000_000_123_456_789n, ifindex: 3, origLen: a.length, direction: DIR_INGRESS, family: 4, flags: 1 });
    expect(Buffer.from(recs[0].data).equals(Buffer.from(a))).toBe(true);
    expect(recs[1]).toMatchObject({ origLen: 1500, family: 6, direction: DIR_EGRESS });
    const c = new RecordCursor().reset(w.bytes());
    expect(c.next()).toBe(true);
    expect(c.tsSeconds).toBeCloseTo(1_700_000_000.123456789, 6);
    expect(w.byteLength).toBe(2 * FRAME_HDR_LEN + a.length + b.length);
  });

  it("rejects a record that overruns the batch, naming the offset", () => {
    const w = new RecordWriter();
    w.append({ tsNs: 1n, ifindex: 1, direction: 0, family: 4, flags: 0, data: new Uint8Array(40) });
    w.append({ tsNs: 2n, ifindex: 1, direction: 0, family: 4, flags: 0, data: new Uint8Array(40) });
    const cut = w.bytes().subarray(0, w.byteLength - 1);
    const c = new RecordCursor().reset(cut);
    expect(c.next()).toBe(true);
    expect(() => c.next()).toThrowError(RecordFormatError);
    expect(() => new RecordCursor().reset(cut.subarray(0, 10)).next()).toThrow(/truncated record header at byte 0/);
  });
});

describe("packet decoder", () => {
  const d = new PacketDecoder();
  const decode = (pkt: Uint8Array, family: number) => d.decode(pkt, 0, pkt.length, family, pkt.length);

  it("decodes IPv4 TCP", () => {
    const pkt = craftPacket({ src: "192.0.2.1", dst: "198.51.100.7", proto: "tcp", srcPort: 51000, dstPort: 22, flags: TCP_SYN | TCP_ACK, payloadLen: 10 });
    expect(decode(pkt, FAMILY_IPV4)).toBe(true);
    expect(d.proto).toBe(IPPROTO_TCP);
    expect([d.srcPort, d.dstPort, d.tcpFlags, d.payloadLen]).toEqual([51000, 22, TCP_SYN | TCP_ACK, 10]);
    expect(formatAddress(pkt, d.srcOff, d.addrLen)).toBe("192.0.2.1");
    expect(formatAddress(pkt, d.dstOff, d.addrLen)).toBe("198.51.100.7");
    expect(tcpFlagsToString(d.tcpFlags)).toBe("SA");
  });

  it("walks IPv6 extension headers to UDP", () => {
    const pkt = craftPacket({ src: "2001:db8::1", dst: "2001:db8::53", proto: "udp", dstPort: 53, payloadLen: 30, ipv6Extensions: [0, 60] });
    expect(decode(pkt, FAMILY_IPV6)).toBe(true);
    expect(d.proto).toBe(IPPROTO_UDP);
    expect(d.dstPort).toBe(53);
    expect(d.payloadLen).toBe(30);
  });

  it("marks fragments; non-first fragments have no L4 header", () => {
    const first = craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "udp", moreFragments: true, payloadLen: 64 });
    expect(decode(first, FAMILY_IPV4)).toBe(true);
    expect([d.isFragment, d.hasL4, d.fragOffset]).toEqual([true, true, 0]);
    const later = craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: 17, fragOffset: 1480, payloadLen: 64 });
    expect(decode(later, FAMILY_IPV4)).toBe(true);
    expect([d.isFragment, d.hasL4, d.fragOffset, d.proto]).toEqual([true, false, 1480, 17]);
    const v6 = craftPacket({ src: "fd00::1", dst: "fd00::2", proto: 17, fragOffset: 1232, payloadLen: 64 });
    expect(decode(v6, FAMILY_IPV6)).toBe(true);
    expect([d.isFragment, d.hasL4, d.fragOffset, d.proto]).toEqual([true, false, 1232, 17]);
  });

  it("reports malformed headers instead of throwing", () => {
    const pkt = craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp" });
    const badIhl = pkt.slice();
    badIhl[0] = 0x44;
    expect(decode(badIhl, FAMILY_IPV4)).toBe(false);
    expect(d.malformed).toBe(Malformed.BadHeaderLength);
    const badOff = pkt.slice();
    badOff[20 + 12] = 0x20;
    expect(decode(badOff, FAMILY_IPV4)).toBe(false);
    expect(d.malformed).toBe(Malformed.BadTcpDataOffset);
    expect(d.decode(pkt, 0, 30, FAMILY_IPV4, pkt.length)).toBe(false);
    expect(d.malformed).toBe(Malformed.Truncated);
    expect(decode(pkt, FAMILY_IPV6)).toBe(false);
    expect(d.malformed).toBe(Malformed.BadVersion);
    for (let i = 0; i < 2000; i++) {
      const junk = new Uint8Array(Math.floor(Math.random() * 80)).map(() => Math.floor(Math.random() * 256));
      expect(() => d.decode(junk, 0, junk.length, i & 1 ? 4 : 6, junk.length)).not.toThrow();
    }
  });
});

describe("addresses and shards", () => {
  it("parses and formats addresses and CIDRs", () => {
    expect(formatAddress(parseAddress("2001:db8:0:0:1:0:0:1"), 0, 16)).toBe("2001:db8::1:0:0:1");
    expect(formatAddress(parseAddress("::1"), 0, 16)).toBe("::1");
    expect(() => parseAddress("10.0.0.256")).toThrow(/not an IPv4 or IPv6 address/);
    expect(() => parseCidr("10.0.0.1/8")).toThrow(/host bits/);
    expect(() => parseCidr("10.0.0.0/33")).toThrow(/prefix length/);
    const set = new CidrSet(["10.0.0.0/8", "fd00::/8", "192.0.2.7"]);
    expect(set.containsText("10.200.3.4")).toBe(true);
    expect(set.containsText("11.0.0.1")).toBe(false);
    expect(set.containsText("fd12::1")).toBe(true);
    expect(set.containsText("192.0.2.7")).toBe(true);
    expect(set.containsText("192.0.2.8")).toBe(false);
  });

  it("puts both directions of a conversation on one shard", () => {
    const d = new PacketDecoder();
    for (let i = 0; i < 500; i++) {
      const client = `10.1.${i >> 8}.${i & 255}`;
      const out = craftPacket({ src: client, dst: "10.9.9.9", proto: "tcp", flags: TCP_SYN });
      const back = craftPacket({ src: "10.9.9.9", dst: client, proto: "tcp", flags: TCP_SYN | TCP_ACK });
      d.decode(out, 0, out.length, 4, out.length);
      const s1 = shardOf(DIR_UNKNOWN, out, d.srcOff, d.dstOff, 4, 16);
      const s1Ingress = shardOf(DIR_INGRESS, out, d.srcOff, d.dstOff, 4, 16);
      d.decode(back, 0, back.length, 4, back.length);
      expect(shardOf(DIR_UNKNOWN, back, d.srcOff, d.dstOff, 4, 16)).toBe(s1);
      expect(shardOf(DIR_EGRESS, back, d.srcOff, d.dstOff, 4, 16)).toBe(s1Ingress);
    }
  });
});
