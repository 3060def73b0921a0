import { describe, expect, it } from "vitest";
import type { Verdict } from "@vigil/proto";
import { publicCapture, publicCapturesSkipReason } from "@vigil/testing";
import { loadRecordReader, WindowPipeline } from "../src/index.js";
import { defaultModel } from "./support/scenarios.js";

const skip = publicCapturesSkipReason();
if (skip) console.warn(`SOM public-capture detection tests skipped: ${skip}`);

async function score(name: string): Promise<{ verdicts: Verdict[]; windows: number; anomalous: number }> {
  const read = await loadRecordReader();
  const verdicts: Verdict[] = [];
  let windows = 0;
  let anomalous = 0;
  const p = new WindowPipeline({
    model: defaultModel(),
    sourceId: `public:${name}`,
    instance: "test",
    hooks: {
      onVerdict: (v) => verdicts.push(v),
      onWindow: (w) => {
        windows++;
        if (w.anomalous) anomalous++;
      },
    },
  });
  for await (const records of read(publicCapture(name), {})) p.ingestRecords(records);
  p.finish();
  return { verdicts, windows, anomalous };
}

const attributed = (vs: Verdict[]) => vs.filter((v) => !v.aggregate).map((v) => v.address);
const aggregates = (vs: Verdict[]) => vs.filter((v) => v.aggregate);

describe.skipIf(skip)(`SOM detection on public captures${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("synscan: one attributed verdict naming the scanner, no aggregate", async () => {
    const { verdicts } = await score("chrissanders--synscan.pcapng");
    expect(attributed(verdicts)).toEqual(["172.16.0.8"]);
    expect(aggregates(verdicts)).toEqual([]);
    expect(verdicts[0].localAddress).toBe("64.13.134.52");
  });

  it("stratosphere icmp-portscan (an ICMP echo sweep of a LAN): one attributed verdict naming the sweeper, no aggregate", async () => {
    const { verdicts } = await score("stratosphere--icmp-portscan.pcap");
    expect(attributed(verdicts)).toEqual(["192.168.1.109"]);
    expect(aggregates(verdicts)).toEqual([]);
    const v = verdicts[0];
    expect(v.som!.deviations[0].name).toBe("source_fanout");
    // 24 echo requests to 17 distinct hosts within one second (1664054597); the sweeper holds the whole fan-out.
    expect(v.som!.features.find((f) => f.name === "source_fanout")!.value).toBe(17);
    expect(v.som!.sources[0]).toMatchObject({ address: "192.168.1.109", packets: 24 });
    expect(v.score).toBeGreaterThan(v.threshold);
  });

  for (const name of ["stopddos--pkt.TCP.synflood.spoofed.pcap", "stopddos--pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng"])
    it(`${name}: spoofed flood, one aggregate verdict and no per-source verdict`, async () => {
      const { verdicts } = await score(name);
      expect(attributed(verdicts)).toEqual([]);
      expect(aggregates(verdicts)).toHaveLength(1);
      expect(aggregates(verdicts)[0].localAddress).not.toBe("");
      expect(aggregates(verdicts)[0].protocol).toBe(6);
    });

  for (const name of ["stopddos--amp.TCP.reflection.SYNACK.pcap", "stopddos--amp.UDP.isakmp.pcap", "stopddos--amp.UDP.snmp.src161.pcapng"])
    it(`${name}: reflection from thousands of sources, one aggregate verdict`, async () => {
      const { verdicts } = await score(name);
      expect(attributed(verdicts)).toEqual([]);
      expect(aggregates(verdicts)).toHaveLength(1);
    });

  it("fragmented DNS RRSIG amplification: flagged, with an aggregate verdict for the spread part", async () => {
    const { verdicts, anomalous } = await score("stopddos--amp.dns.RRSIG.fragmented.pcap");
    expect(anomalous).toBeGreaterThan(10);
    expect(aggregates(verdicts)).toHaveLength(1);
    expect(aggregates(verdicts)[0].som!.deviations[0].name).toBe("fragments");
  });

  for (const name of ["chrissanders--http_espn.pcapng", "chrissanders--http_google.pcapng", "chrissanders--http_ip4and6.pcapng", "chrissanders--icmp_traceroute.pcapng"])
    it(`${name}: benign, no verdict`, async () => {
      const { verdicts, windows } = await score(name);
      expect(windows).toBeGreaterThan(0);
      expect(verdicts.map((v) => v.summary)).toEqual([]);
    });
});
