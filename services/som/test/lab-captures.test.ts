import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Verdict } from "@vigil/proto";
import { repoRoot } from "@vigil/testing";
import { loadRecordReader, WindowPipeline } from "../src/index.js";
import { defaultModel } from "./helpers.js";

const evalDir = join(repoRoot, "lab/captures/eval");
const LOCAL = ["10.77.0.10/32", "fd77::10/128"];

async function score(file: string): Promise<Verdict[]> {
  const read = await loadRecordReader();
  const verdicts: Verdict[] = [];
  const p = new WindowPipeline({ model: defaultModel(), sourceId: `lab:${file}`, instance: "test", hooks: { onVerdict: (v) => verdicts.push(v) } });
  for await (const records of read(join(evalDir, file), { local: LOCAL })) p.ingestRecords(records);
  p.finish();
  return verdicts;
}

// Attacks of lab/README.md the SOM must catch (windows of traffic), and who is to blame.
// scan-slow (one probe every 0.4 s) and ssh-brute are connection-level attacks for the PST detector.
const ATTRIBUTED: Record<string, string> = {
  "scan-syn.pcap": "10.77.0.66",
  "scan-connect.pcap": "10.77.0.66",
  "scan-xmas.pcap": "10.77.0.66",
  "scan-fin.pcap": "10.77.0.66",
  "scan-null.pcap": "10.77.0.66",
  "scan-udp.pcap": "10.77.0.66",
  "scan-ipv6.pcap": "fd77::66",
  "flood-syn.pcap": "10.77.0.66",
  "flood-udp.pcap": "10.77.0.66",
  "flood-icmp.pcap": "10.77.0.66",
  "flood-frag.pcap": "10.77.0.66",
};

const missing = (f: string) => (existsSync(join(evalDir, f)) ? null : `lab capture ${f} not recorded yet (lab/record.sh eval)`);

describe("SOM detection on the lab's evaluation captures (model trained on the lab's training captures)", () => {
  for (const f of ["benign-1.pcap", "benign-2.pcap"])
    it.skipIf(missing(f))(`${f}: benign, no verdict${missing(f) ? ` (skipped: ${missing(f)})` : ""}`, async () => {
      expect((await score(f)).map((v) => v.summary)).toEqual([]);
    });

  for (const [f, attacker] of Object.entries(ATTRIBUTED))
    it.skipIf(missing(f))(`${f}: attributed to ${attacker}${missing(f) ? ` (skipped: ${missing(f)})` : ""}`, async () => {
      const vs = await score(f);
      expect(vs.map((v) => [v.aggregate, v.address])).toEqual([[false, attacker]]);
      expect(LOCAL.map((c) => c.split("/")[0])).toContain(vs[0].localAddress);
    });

  it.skipIf(missing("flood-spoofed.pcap"))(`flood-spoofed.pcap: one aggregate verdict, no source named${missing("flood-spoofed.pcap") ? ` (skipped: ${missing("flood-spoofed.pcap")})` : ""}`, async () => {
    const vs = await score("flood-spoofed.pcap");
    expect(vs.filter((v) => !v.aggregate)).toEqual([]);
    expect(vs.filter((v) => v.aggregate).map((v) => [v.localAddress, v.localPorts])).toEqual([["10.77.0.10", [80]]]);
  });
});
