import { describe, expect, it } from "vitest";
import { ProbeTracker } from "../src/probes.js";
import { judge, scenario, T0 } from "./support/scenarios.js";

const SCANNER = "66.66.66.66";
const scanVerdicts = (vs: ReturnType<typeof judge>["verdicts"]) => vs.filter((v) => v.model === "som/probes@1");

describe("probes added up over windows", () => {
  it("counts only windows with several probes, within the horizon, and reports a source once", () => {
    const t = new ProbeTracker({ horizonS: 60, minPerWindow: 4, minProbes: 60, maxSources: 10 });
    for (let i = 0; i < 100; i++) expect(t.note("192.0.2.1", 3, T0 + i)).toBeNull();
    const hits = [];
    for (let i = 0; i < 20; i++) hits.push(t.note("192.0.2.2", 10, T0 + i));
    expect(hits.filter(Boolean)).toEqual([{ probes: 60, windows: 6, since: T0 }]);
    // 10 a window every 15 s: never 60 within 60 s.
    for (let i = 0; i < 30; i++) expect(t.note("192.0.2.3", 10, T0 + 15 * i)).toBeNull();
  });
});

describe("scans that never make an anomalous window", () => {
  it("a UDP scan answered by nothing, 10 ports a second, is reported by what the scanner sends", () => {
    const { verdicts } = judge(scenario(301, (s) => s.udpScan(T0 + 20, 20, 10, SCANNER, { openEvery: 1 })));
    const scans = scanVerdicts(verdicts);
    expect(scans).toHaveLength(1);
    expect(scans[0]).toMatchObject({ address: SCANNER, label: "port-scan", detector: "som", aggregate: false });
    expect(scans[0]!.som!.sources[0]).toMatchObject({ address: SCANNER });
    expect(scans[0]!.som!.sources[0]!.ports).toBeGreaterThanOrEqual(60);
    expect(scans[0]!.firstTs).toBeGreaterThanOrEqual(T0 + 20);
  });

  it("FIN, Xmas and NULL probes count like SYNs: a slow stealth scan is reported by what the scanner sends", () => {
    for (const [name, flags] of [["FIN", 0x01], ["Xmas", 0x29], ["NULL", 0x00]] as const) {
      const scans = scanVerdicts(judge(scenario(303, (s) => s.synScan(T0 + 20, 20, 10, SCANNER, { flags }))).verdicts);
      expect(scans.map((v) => [v.address, v.label]), name).toEqual([[SCANNER, "port-scan"]]);
      expect(scans[0]!.som!.sources[0]!.ports, name).toBeGreaterThanOrEqual(60);
    }
  });

  it("benign traffic alone adds up to no scan", () => {
    const { verdicts } = judge(scenario(302, () => {}, { seconds: 300 }));
    expect(scanVerdicts(verdicts)).toEqual([]);
  });
});
