import { beforeAll, describe, expect, it } from "vitest";
import { RecordWriter } from "@vigil/frames";
import type { Verdict } from "@vigil/proto";
import { formatSymbols } from "@vigil/models";
import { Detector, type DetectorOptions, type JudgedSequence } from "../src/detector.js";
import type { ModelSet } from "../src/model.js";
import { A, F, P, R, S, benignVariants, syntheticModels, writeConversation } from "./support/models.js";
import type { Step } from "../src/synthetic.js";

let models: ModelSet;
beforeAll(async () => {
  models = await syntheticModels();
}, 60_000);

function detector(opts: Partial<DetectorOptions> = {}) {
  const judged: JudgedSequence[] = [];
  const verdicts: Verdict[] = [];
  const det = new Detector(models, { shardCount: 1, maxConnections: 10_000, ...opts }, { onJudged: (j) => judged.push(j), onVerdict: (v) => verdicts.push(v) });
  return { det, judged, verdicts };
}

function conv(w: RecordWriter, client: string, cport: number, server: string, sport: number, steps: Step[], ts: number, gap = 0.001) {
  return writeConversation(w, { client, server, clientPort: cport, serverPort: sport, steps, startTs: ts, gap });
}

const T0 = 1_700_000_000;

describe("connection tracking", () => {
  it("orients by the SYN even when the client uses the lower port", () => {
    const { det, judged } = detector();
    const w = new RecordWriter();
    conv(w, "10.0.0.1", 80, "10.0.0.2", 50000, [{ from: "c", flags: S }, { from: "s", flags: S | A }, { from: "c", flags: A }, { from: "c", flags: R }], T0);
    det.processRecords(0, "t", w.bytes());
    expect(judged).toHaveLength(1);
    expect(formatSymbols(judged[0].head)).toBe("C:S S:SA C:A C:R END");
    expect(judged[0]).toMatchObject({ clientPort: 80, serverPort: 50000, reason: "rst" });
  });

  it("orients a connection first seen mid-stream by its well-known port", () => {
    const { det, judged } = detector();
    const w = new RecordWriter();
    conv(w, "10.0.0.1", 40000, "10.0.0.2", 443, [{ from: "s", flags: P | A }, { from: "c", flags: A }], T0);
    det.processRecords(0, "t", w.bytes());
    det.endOfStream(0);
    // Established and cut by the end of the stream: judged on what was seen, without END (censored).
    expect(formatSymbols(judged[0].head)).toBe("S:PA C:A");
    expect(judged[0]).toMatchObject({ clientPort: 40000, serverPort: 443, reason: "end-of-stream", serviceClass: "tls" });
  });

  it("tracks IPv6 connections, extension headers included", async () => {
    const { det, judged } = detector();
    const { craftPacket } = await import("@vigil/frames");
    const w = new RecordWriter();
    const pkt = (src: string, dst: string, sp: number, dp: number, flags: number) =>
      craftPacket({ src, dst, proto: "tcp", srcPort: sp, dstPort: dp, flags, ipv6Extensions: [0, 60] });
    for (const [i, p] of [
      pkt("2001:db8::1", "2001:db8::2", 40000, 22, S),
      pkt("2001:db8::2", "2001:db8::1", 22, 40000, S | A),
      pkt("2001:db8::1", "2001:db8::2", 40000, 22, R),
    ].entries())
      w.append({ tsNs: BigInt(T0 + i) * 1_000_000_000n, ifindex: 0, direction: 0, family: 6, flags: 0, data: p });
    det.processRecords(0, "t", w.bytes());
    expect(judged).toHaveLength(1);
    expect(judged[0]).toMatchObject({ serviceClass: "ssh", clientPort: 40000, serverPort: 22 });
    expect(formatSymbols(judged[0].head)).toBe("C:S S:SA C:R END");
  });

  it("tears down on FIN from both sides, absorbs the last ACK, and frees the slot after the linger time", () => {
    const { det, judged } = detector({ linger: 5 });
    const w = new RecordWriter();
    const end = conv(w, "10.0.0.1", 40000, "10.0.0.2", 80, benignVariants(0), T0);
    det.processRecords(0, "t", w.bytes());
    expect(judged).toHaveLength(1);
    expect(judged[0].reason).toBe("fin");
    expect(formatSymbols(judged[0].head).endsWith("C:FA S:FA END")).toBe(true);
    expect(det.table.size).toBe(1);
    w.clear();
    conv(w, "10.0.0.3", 40001, "10.0.0.2", 80, [{ from: "c", flags: S }], end + 6);
    det.processRecords(0, "t", w.bytes());
    expect(det.table.size).toBe(1);
    expect(judged).toHaveLength(1);
  });

  it("judges an idle connection by capture time, not wall-clock time", () => {
    const { det, judged } = detector({ idleTimeout: 30 });
    const w = new RecordWriter();
    conv(w, "10.0.0.1", 40000, "10.0.0.2", 80, benignVariants(0).slice(0, 5), T0);
    det.processRecords(0, "t", w.bytes());
    expect(judged).toHaveLength(0);
    w.clear();
    conv(w, "10.0.0.9", 40000, "10.0.0.2", 80, [{ from: "c", flags: S }], T0 + 20);
    det.processRecords(0, "t", w.bytes());
    expect(judged).toHaveLength(0);
    w.clear();
    conv(w, "10.0.0.9", 40000, "10.0.0.2", 80, [{ from: "s", flags: S | A }], T0 + 31);
    det.processRecords(0, "t", w.bytes());
    expect(judged).toHaveLength(1);
    expect(judged[0]).toMatchObject({ reason: "idle", clientPort: 40000 });
    expect(det.table.size).toBe(1);
  });

  it("evicts the least recently used connection at capacity and judges it", () => {
    const { det, judged } = detector({ maxConnections: 4 });
    const w = new RecordWriter();
    for (let i = 0; i < 4; i++) conv(w, `10.0.0.${i + 1}`, 40000 + i, "10.0.0.100", 80, [{ from: "c", flags: S }], T0 + i);
    // Touch the first one so the second becomes the least recently used.
    conv(w, "10.0.0.1", 40000, "10.0.0.100", 80, [{ from: "s", flags: S | A }], T0 + 5);
    conv(w, "10.0.0.50", 40050, "10.0.0.100", 80, [{ from: "c", flags: S }], T0 + 6);
    det.processRecords(0, "t", w.bytes());
    expect(det.table.size).toBe(4);
    expect(det.table.evictions).toBe(1);
    expect(judged).toHaveLength(1);
    expect(judged[0]).toMatchObject({ reason: "evicted", clientPort: 40001 });
  });

  it("stays within 256 bytes per connection", () => {
    const { det } = detector({ maxConnections: 100_000 });
    expect(det.table.bytesPerConnection).toBeLessThanOrEqual(256);
  });
});

describe("judging and verdicts", () => {
  it("benign conversations produce no verdict and score below their thresholds", () => {
    const { det, judged, verdicts } = detector();
    const w = new RecordWriter();
    let ts = T0;
    for (let i = 0; i < 300; i++) ts = conv(w, `10.2.${i >> 8}.${i & 255}`, 30000 + i, "192.168.9.10", 80, benignVariants(i + 7), ts);
    det.processRecords(0, "t", w.bytes());
    det.endOfStream(0);
    expect(judged).toHaveLength(300);
    expect(judged.filter((j) => j.anomalous).length).toBeLessThan(6);
    expect(verdicts).toHaveLength(0);
  });

  it("a SYN scan from one source is one verdict, published as soon as the evidence is significant", () => {
    const { det, verdicts } = detector();
    const w = new RecordWriter();
    let ts = T0;
    for (let port = 1; port <= 300; port++) {
      const steps: Step[] =
        port % 10 === 0
          ? [{ from: "c", flags: S }, { from: "s", flags: S | A }, { from: "c", flags: R }]
          : port % 3 === 0
            ? [{ from: "c", flags: S }]
            : [{ from: "c", flags: S }, { from: "s", flags: R | A }];
      ts = conv(w, "203.0.113.7", 61000, "192.168.9.10", port, steps, ts, 0.0005);
    }
    det.processRecords(0, "scan", w.bytes());
    // Before the end of the stream and long before the 60 s window closes: blocking must not wait.
    expect(verdicts).toHaveLength(1);
    det.endOfStream(0);
    expect(verdicts).toHaveLength(1);
    const v = verdicts[0];
    expect(v).toMatchObject({ detector: "pst", address: "203.0.113.7", localAddress: "192.168.9.10", label: "syn-scan", aggregate: false });
    // The verdict carries the evidence that made it, not the whole scan: the first few probes.
    expect(v.connections).toBeGreaterThanOrEqual(5);
    expect(v.connections).toBeLessThan(30);
    expect(v.lastTs - v.firstTs).toBeLessThan(0.1);
    expect(v.score).toBeGreaterThan(v.threshold);
    expect(v.localPorts.length).toBe(v.connections);
    expect(v.pst!.connections.length).toBeGreaterThan(0);
    expect(v.pst!.connections.map((c) => c.symbols)).toContain("C:S S:RA END");
    expect(v.id).toMatch(/^pst-[0-9a-f]{24}$/);
  });

  it("a source still attacking after its verdict gets a renewed verdict at most every verdictUpdateSeconds of capture time", () => {
    const scan = (opts: Record<string, number>) => {
      const { det, verdicts } = detector(opts);
      const w = new RecordWriter(1 << 20);
      let ts = T0;
      // 20 s of capture time, one refused probe every 0.1 s.
      for (let port = 1; port <= 200; port++) ts = conv(w, "203.0.113.9", 61000, "192.168.9.10", port, [{ from: "c", flags: S }, { from: "s", flags: R | A }], ts + 0.1);
      det.processRecords(0, "long", w.bytes());
      det.endOfStream(0);
      return verdicts;
    };
    const renewed = scan({});
    expect(renewed.length).toBeGreaterThanOrEqual(3);
    expect(renewed.length).toBeLessThanOrEqual(5);
    expect(new Set(renewed.map((v) => v.id)).size).toBe(renewed.length);
    for (let i = 1; i < renewed.length; i++) {
      expect(renewed[i].lastTs - renewed[i - 1].lastTs).toBeGreaterThanOrEqual(5 - 1e-6);
      expect(renewed[i].connections).toBeGreaterThan(renewed[i - 1].connections);
      expect(renewed[i].firstTs).toBe(renewed[0].firstTs);
    }
    expect(scan({ verdictUpdateSeconds: 0 })).toHaveLength(1);
  });

  it("renews a verdict on new attack connections, not on one odd connection of a source that stopped", () => {
    const { det, verdicts } = detector();
    const w = new RecordWriter(1 << 20);
    const probes = (n: number, from: number, start: number) => {
      let ts = start;
      for (let i = 0; i < n; i++) ts = conv(w, "203.0.113.11", 61000 + i, "192.168.9.10", from + i, [{ from: "c", flags: S }, { from: "s", flags: R | A }], ts + 0.01);
    };
    probes(30, 1, T0);
    // 10 s later, within the window: a single refused connection (the kind of stray probe, or a
    // SYN retransmitted after our block dropped the first, that a source which stopped still makes).
    probes(1, 1000, T0 + 10);
    // 10 s later again: the attack resumes.
    probes(20, 2000, T0 + 20);
    det.processRecords(0, "resume", w.bytes());
    det.endOfStream(0);
    expect(verdicts.length, JSON.stringify(verdicts.map((v) => [v.lastTs - T0, v.connections]))).toBe(2);
    expect(verdicts[0].lastTs - T0).toBeLessThan(1);
    expect(verdicts[1].lastTs - T0).toBeGreaterThanOrEqual(20);
    expect(verdicts[1].firstTs).toBe(verdicts[0].firstTs);
    expect(verdicts[1].id).not.toBe(verdicts[0].id);
  });

  it("Xmas, null and FIN scans score high", () => {
    for (const [flags, label] of [[F | P | 0x20, "xmas-scan"], [0, "null-scan"], [F, "fin-scan"]] as const) {
      const { det, verdicts } = detector();
      const w = new RecordWriter();
      let ts = T0;
      for (let port = 1; port <= 40; port++)
        ts = conv(w, "203.0.113.8", 50000, "192.168.9.10", port, port % 2 ? [{ from: "c", flags }] : [{ from: "c", flags }, { from: "s", flags: R | A }], ts);
      det.processRecords(0, "scan", w.bytes());
      det.endOfStream(0);
      expect(verdicts.map((v) => v.label)).toEqual([label]);
    }
  });

  it("a spoofed half-open flood is one aggregate verdict per shard, never a host verdict", () => {
    const { det, verdicts } = detector();
    const w = new RecordWriter();
    let ts = T0;
    for (let i = 0; i < 600; i++) ts = conv(w, `${1 + (i % 200)}.${(i * 7) & 255}.${(i * 13) & 255}.9`, 1024 + i, "192.168.9.10", 25565, [{ from: "c", flags: S }], ts, 0.0001);
    det.processRecords(0, "flood", w.bytes());
    det.endOfStream(0);
    expect(verdicts).toHaveLength(1);
    expect(verdicts[0]).toMatchObject({ aggregate: true, address: "", localAddress: "192.168.9.10", label: "syn-flood", localPorts: [25565] });
    expect(verdicts[0].connections).toBe(600);
  });

  describe("a local address's first suspicious connection, held until a second comes", () => {
    // A closed port's answer: judged (suspicious) as soon as the reset arrives.
    const refused: Step[] = [{ from: "c", flags: S }, { from: "s", flags: R | A }];
    const flood = { minConnections: 1000, minSuspicious: 1000, floodMinConnections: 3, floodMinSources: 3, windowSeconds: 60 };

    it("counts into the flood's verdict as if the window had opened with it", () => {
      const { det, verdicts, judged } = detector(flood);
      const w = new RecordWriter();
      let ts = T0;
      for (let i = 0; i < 3; i++) ts = conv(w, `203.0.113.${10 + i}`, 40000 + i, "192.168.9.10", 8000 + i, refused, ts + 1);
      det.processRecords(0, "flood", w.bytes());
      expect(judged.map((j) => j.reason)).toEqual(["rst", "rst", "rst"]);
      det.endOfStream(0);
      expect(verdicts).toHaveLength(1);
      const v = verdicts[0];
      expect(v).toMatchObject({ aggregate: true, localAddress: "192.168.9.10", connections: 3, packets: 6, localPorts: [8000, 8001, 8002], firstTs: T0 + 1 });
      expect(v.summary).toContain("from 3 sources");
      // One sequence, kept once: the first connection's.
      expect(v.pst!.connections.map((e) => `${e.client}:${e.clientPort}`)).toEqual(["203.0.113.10:40000"]);
    });

    it("keeps its place: a window that opened with it closes before windows opened after it", () => {
      const { det, verdicts } = detector(flood);
      const w = new RecordWriter();
      // .10's first connection, then .20's whole flood, then the rest of .10's.
      conv(w, "203.0.113.1", 40000, "192.168.9.10", 8000, refused, T0);
      for (let i = 0; i < 3; i++) conv(w, `203.0.113.${30 + i}`, 41000 + i, "192.168.9.20", 9000, refused, T0 + 1 + i * 0.01);
      for (let i = 0; i < 2; i++) conv(w, `203.0.113.${2 + i}`, 40001 + i, "192.168.9.10", 8000, refused, T0 + 2 + i * 0.01);
      det.processRecords(0, "flood", w.bytes());
      expect(verdicts).toHaveLength(0);
      // Past .10's window (opened at T0) but not .20's (T0 + 1): only .10's closes.
      const later = new RecordWriter();
      conv(later, "203.0.113.99", 50000, "192.168.9.99", 443, [{ from: "c", flags: S }], T0 + 60.5);
      det.processRecords(0, "flood", later.bytes());
      expect(verdicts.map((v) => v.localAddress)).toEqual(["192.168.9.10"]);
      expect(verdicts[0]).toMatchObject({ connections: 3, firstTs: T0 });
    });

    it("closes alone without a verdict, and a flood one connection long is still reported where configured so", () => {
      const quiet = detector(flood);
      const w = new RecordWriter();
      for (let i = 0; i < 50; i++) conv(w, `203.0.113.${i + 1}`, 40000 + i, `192.168.${i}.10`, 8000, refused, T0 + i * 0.01);
      quiet.det.processRecords(0, "scan", w.bytes());
      // Each source pending, each local address held at its first connection.
      expect(quiet.det.pendingWindows()).toBe(100);
      quiet.det.endOfStream(0);
      expect(quiet.verdicts).toEqual([]);
      expect(quiet.det.pendingWindows()).toBe(0);

      const eager = detector({ ...flood, floodMinConnections: 1, floodMinSources: 1 });
      eager.det.processRecords(0, "scan", w.bytes());
      eager.det.endOfStream(0);
      expect(eager.verdicts).toHaveLength(50);
      expect(eager.verdicts.every((v) => v.aggregate && v.connections === 1)).toBe(true);
    });
  });

  it("brute force: many short sessions from one source that the server ends are one verdict", () => {
    // 8 s of sessions: renewed verdicts are tested on their own above.
    const { det, verdicts } = detector({ verdictUpdateSeconds: 0 });
    const w = new RecordWriter();
    let ts = T0;
    const session: Step[] = [
      { from: "c", flags: S },
      { from: "s", flags: S | A },
      { from: "c", flags: A },
      { from: "s", flags: P | A },
      { from: "c", flags: P | A },
      { from: "s", flags: P | A },
      { from: "c", flags: P | A },
      { from: "s", flags: F | A },
      { from: "c", flags: P | A },
      { from: "s", flags: R },
    ];
    for (let i = 0; i < 40; i++) ts = conv(w, "198.51.100.4", 40000 + i, "192.168.9.10", 5432, session, ts + 0.2);
    det.processRecords(0, "brute", w.bytes());
    expect(verdicts).toHaveLength(1);
    det.endOfStream(0);
    expect(verdicts).toHaveLength(1);
    expect(verdicts[0]).toMatchObject({ address: "198.51.100.4", label: "brute-force", localPorts: [5432] });
    // Published with the 5th anomalous session (minConnections); the 35 after it are absorbed into the verdict's window.
    expect(verdicts[0].connections).toBe(5);
    expect(verdicts[0].score).toBeGreaterThan(verdicts[0].threshold);
  });

  it("a single reset or retransmission does not produce a verdict", () => {
    const { det, verdicts } = detector();
    const w = new RecordWriter();
    let ts = T0;
    ts = conv(w, "10.3.0.1", 40000, "192.168.9.10", 80, [...benignVariants(0).slice(0, 6), { from: "c", flags: R | A }], ts);
    ts = conv(w, "10.3.0.1", 40001, "192.168.9.10", 80, [{ from: "c", flags: S }, { from: "c", flags: S }, { from: "c", flags: S }], ts, 1);
    conv(w, "10.3.0.1", 40002, "192.168.9.10", 80, [...benignVariants(1).slice(0, 5), ...Array(6).fill({ from: "c", flags: P | A })], ts);
    det.processRecords(0, "t", w.bytes());
    det.endOfStream(0);
    expect(verdicts).toHaveLength(0);
  });

  it("verdict ids are deterministic for a capture", () => {
    const ids = [0, 1].map(() => {
      const { det, verdicts } = detector();
      const w = new RecordWriter();
      let ts = T0;
      for (let port = 1; port <= 50; port++) ts = conv(w, "203.0.113.7", 61000, "192.168.9.10", port, [{ from: "c", flags: S }, { from: "s", flags: R | A }], ts);
      det.processRecords(0, "same-source", w.bytes());
      det.endOfStream(0);
      return verdicts.map((v) => v.id);
    });
    expect(ids[0]).toHaveLength(1);
    expect(ids[1]).toEqual(ids[0]);
  });
});
