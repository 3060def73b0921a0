import { describe, expect, it } from "vitest";
import { TrafficSynth } from "../src/index.js";
import { judge, scenario, T0 } from "./support/scenarios.js";

const L = "10.0.0.1";

describe("detection on synthetic traffic (shipped default model)", () => {
  it("raises nothing on benign traffic it was not trained on", { timeout: 60_000 }, () => {
    for (const seed of [101, 102, 103]) {
      const s = new TrafficSynth({ seed });
      s.benign(T0, 300);
      const { verdicts, windows } = judge(s.records());
      expect(windows.length).toBeGreaterThan(200);
      expect(verdicts.map((v) => v.summary)).toEqual([]);
    }
  });

  it("a spoofed SYN flood gives ONE aggregate verdict about the attacked service and no per-source verdict", () => {
    const { verdicts } = judge(scenario(201, (s) => s.synFlood(T0 + 20, 10, 3000, { port: 80 })));
    expect(verdicts).toHaveLength(1);
    const [v] = verdicts;
    expect(v.aggregate).toBe(true);
    expect(v.address).toBe("");
    expect(v.localAddress).toBe(L);
    expect(v.localPorts).toEqual([80]);
    expect(v.protocol).toBe(6);
    expect(v.detector).toBe("som");
    expect(v.model).toBe("som/default@1");
    expect(v.score).toBeGreaterThan(v.threshold);
    expect(v.firstTs).toBeGreaterThanOrEqual(T0 + 20);
    expect(v.lastTs).toBeLessThanOrEqual(T0 + 31);
    expect(v.som!.features.map((f) => f.name)).toContain("inactive_tcp_connections");
    expect(v.som!.deviations[0].deviation).toBeGreaterThan(1);
    expect(v.som!.sources[0].share).toBeLessThan(0.05);
  });

  it("a single-source SYN scan is attributed to the scanner, with evidence", () => {
    const { verdicts } = judge(scenario(202, (s) => s.synScan(T0 + 20, 5, 400, "66.66.66.66")));
    expect(verdicts.map((v) => [v.aggregate, v.address])).toEqual([[false, "66.66.66.66"]]);
    const v = verdicts[0];
    expect(v.som!.sources[0]).toMatchObject({ address: "66.66.66.66" });
    expect(v.som!.sources[0].share).toBeGreaterThan(0.5);
    expect(v.som!.sources[0].ports).toBeGreaterThan(100);
    expect(v.som!.sources[0].halfOpen).toBeGreaterThan(100);
    expect(v.som!.deviations.map((d) => d.name)).toContain("inactive_tcp_connections");
    expect(v.summary).toContain("66.66.66.66");
  });

  it("scans from a capture without directions are still attributed to the scanner, never to the target", () => {
    const { verdicts } = judge(scenario(203, (s) => s.synScan(T0 + 20, 5, 400, "66.66.66.66"), { directions: false }));
    expect(verdicts.map((v) => v.address)).toEqual(["66.66.66.66"]);
    expect(verdicts[0].localAddress).toBe(L);
  });

  it("flags single-source UDP, ICMP and fragment floods and names the source", () => {
    const cases: Array<[string, (s: TrafficSynth) => void]> = [
      ["77.77.77.77", (s) => s.udpFlood(T0 + 20, 5, 3000, "77.77.77.77")],
      ["88.88.88.88", (s) => s.icmpFlood(T0 + 20, 5, 2000, "88.88.88.88")],
      ["99.99.99.99", (s) => s.fragmentFlood(T0 + 20, 5, 1500, "99.99.99.99")],
    ];
    for (const [src, attack] of cases) {
      const { verdicts } = judge(scenario(204, attack));
      expect(verdicts.map((v) => [v.aggregate, v.address]), src).toEqual([[false, src]]);
    }
  });

  it("spoofed fragment floods and many-reflector amplification give aggregate verdicts only", () => {
    for (const attack of [(s: TrafficSynth) => s.fragmentFlood(T0 + 20, 5, 2000), (s: TrafficSynth) => s.amplification(T0 + 20, 5, 3000, 500)]) {
      const { verdicts } = judge(scenario(205, attack));
      expect(verdicts.length).toBe(1);
      expect(verdicts[0].aggregate).toBe(true);
      expect(verdicts[0].localAddress).toBe(L);
    }
  });

  it("a UDP port scan is attributed to the scanner through the port unreachables the target sends back", () => {
    for (const directions of [true, false]) {
      const { verdicts } = judge(scenario(209, (s) => s.udpScan(T0 + 20, 4, 60, "66.66.66.66", { openEvery: 5 }), { directions }));
      expect(verdicts.map((v) => [v.aggregate, v.address]), `directions ${directions}`).toEqual([[false, "66.66.66.66"]]);
      const v = verdicts[0];
      expect(v.som!.deviations[0].name).toBe("icmp_unreachables");
      expect(v.som!.sources[0]).toMatchObject({ address: "66.66.66.66" });
      expect(v.som!.sources[0].share).toBeGreaterThan(0.5);
      expect(v.localAddress).toBe(L);
    }
  });

  it("a spoofed UDP flood to closed ports blames none of the forged sources its refusals go to: one aggregate", () => {
    for (const directions of [true, false]) {
      const { verdicts } = judge(scenario(210, (s) => s.udpScan(T0 + 20, 5, 1500), { directions }));
      expect(verdicts.map((v) => [v.aggregate, v.address]), `directions ${directions}`).toEqual([[true, ""]]);
      expect(verdicts[0].localAddress).toBe(L);
    }
  });

  it("a ping sweep across the protected network is attributed to the sweeper, with or without directions", () => {
    for (const directions of [true, false]) {
      const { verdicts } = judge(scenario(212, (s) => s.pingSweep(T0 + 20, 8, 254, "66.66.66.66"), { directions }));
      expect(verdicts.map((v) => [v.aggregate, v.address]), `directions ${directions}`).toEqual([[false, "66.66.66.66"]]);
      expect(verdicts[0].som!.deviations[0].name).toBe("source_fanout");
      expect(verdicts[0].som!.features.find((f) => f.name === "source_fanout")!.value).toBeGreaterThanOrEqual(30);
    }
  });

  it("merges the windows of one attack into one verdict per source per period", () => {
    const rec = scenario(206, (s) => s.synScan(T0 + 10, 40, 300, "66.66.66.66"));
    const long = judge(rec, undefined, { mergePeriodS: 60 });
    expect(long.windows.filter((w) => w.anomalous).length).toBeGreaterThan(30);
    expect(long.verdicts).toHaveLength(1);
    const short = judge(rec, undefined, { mergePeriodS: 10 });
    expect(short.verdicts.length).toBeGreaterThanOrEqual(4);
    expect(short.verdicts.length).toBeLessThanOrEqual(5);
    expect(new Set(short.verdicts.map((v) => v.id)).size).toBe(short.verdicts.length);
  });

  it("judges the same capture the same way every time (deterministic verdict ids)", () => {
    const rec = scenario(207, (s) => {
      s.synScan(T0 + 10, 5, 400, "66.66.66.66");
      s.synFlood(T0 + 30, 5, 3000);
    });
    const a = judge(rec).verdicts;
    const b = judge(rec).verdicts;
    expect(a.length).toBe(2);
    expect(a.map((v) => v.id)).toEqual(b.map((v) => v.id));
    expect(a.map((v) => v.id)[0]).toMatch(/^som-[0-9a-f]{24}$/);
  });

  it("judges the partial window at the end of the stream", () => {
    const s = new TrafficSynth({ seed: 208 });
    s.benign(T0, 30);
    s.synFlood(T0 + 30.2, 0.3, 5000);
    const { verdicts, windows } = judge(s.records());
    expect(windows.at(-1)!.closedBy).toBe("end");
    expect(windows.at(-1)!.anomalous).toBe(true);
    expect(verdicts.map((v) => v.aggregate)).toEqual([true]);
  });
});
