import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FLOW_BUCKETS, PacketDecoder, RecordCursor, RecordWriter, shedsSegment } from "@vigil/frames";
import type { Verdict } from "@vigil/proto";
import { keepOfLevel, MAX_SHED_LEVEL } from "@vigil/shards";
import { repoRoot } from "@vigil/testing";
import { F_INACTIVE, loadRecordReader, WindowPipeline } from "../src/index.js";
import { defaultModel } from "./support/scenarios.js";

const captures = join(repoRoot, "lab/captures");
const labelsPath = join(captures, "eval/labels.json");
const skip = existsSync(labelsPath) ? null : `no lab captures (${labelsPath})`;
if (skip) console.warn(`SOM load shedding tests skipped: ${skip}`);
const KEEP = keepOfLevel(MAX_SHED_LEVEL);

interface Run {
  verdicts: Verdict[];
  shed: number;
  packets: number;
  /** Inactive (half-open) connections over every window. */
  inactive: number;
  anomalous: number;
}

/** The capture through the default map keeping `keep` flow buckets; `cut`: the segments shedding would shed are removed from the records instead. */
async function run(file: string, keep: number, cut = false): Promise<Run> {
  const labels = JSON.parse(readFileSync(labelsPath, "utf8"));
  const read = await loadRecordReader();
  const r: Run = { verdicts: [], shed: 0, packets: 0, inactive: 0, anomalous: 0 };
  const p = new WindowPipeline({
    model: defaultModel(),
    sourceId: `lab:${file}`,
    instance: "test",
    hooks: {
      onVerdict: (v) => r.verdicts.push(v),
      onWindow: (w) => {
        // Rates: back to counts over the window's duration.
        r.inactive += (w.raw[F_INACTIVE] * (w.end - w.start)) | 0;
        if (w.anomalous) r.anomalous++;
      },
    },
  });
  p.windower.keep = cut ? FLOW_BUCKETS : keep;
  const d = new PacketDecoder();
  for await (let records of read(join(captures, file), { local: labels.local })) {
    if (cut) {
      const w = new RecordWriter();
      const c = new RecordCursor().reset(records);
      while (c.next()) {
        if (d.decode(c.buf, c.dataOffset, c.capLen, c.family, c.origLen) && shedsSegment(d, keep)) continue;
        w.append({ tsNs: c.tsNs, ifindex: c.ifindex, origLen: c.origLen, direction: c.direction, family: c.family, flags: c.flags, data: c.data() });
      }
      records = w.bytes();
    }
    p.ingestRecords(records);
  }
  p.finish();
  r.shed = p.windower.shed;
  r.packets = p.windower.packets;
  return r;
}

describe.skipIf(skip)("SOM under forced load shedding (1/16 of established flows kept)", () => {
  for (const f of ["train/benign-1.pcap", "eval/benign-1.pcap", "eval/benign-2.pcap"])
    it(`${f}: most established segments shed, no connection made half-open, no verdict`, async () => {
      const full = await run(f, FLOW_BUCKETS);
      const shed = await run(f, KEEP);
      console.log(`${f}: ${shed.shed} of ${shed.packets} packets shed; inactive connections ${full.inactive} -> ${shed.inactive}`);
      expect(shed.shed / shed.packets).toBeGreaterThan(0.6);
      expect(shed.inactive).toBeLessThanOrEqual(full.inactive);
      expect(shed.anomalous).toBe(0);
      expect(shed.verdicts.map((v) => v.summary)).toEqual([]);
    });

  it("the marking is what keeps them innocent: the same segments cut out of the capture leave half-open connections", async () => {
    const f = "train/benign-1.pcap";
    const full = await run(f, FLOW_BUCKETS);
    const cut = await run(f, KEEP, true);
    console.log(`${f}, shed segments cut out: inactive connections ${full.inactive} -> ${cut.inactive}`);
    expect(cut.inactive).toBeGreaterThan(full.inactive + 50);
  });

  const attacks: Array<[string, string[]]> = [
    ["eval/scan-syn.pcap", ["10.77.0.66"]],
    ["eval/scan-connect.pcap", ["10.77.0.66"]],
    ["eval/scan-null.pcap", ["10.77.0.66"]],
    ["eval/scan-ipv6.pcap", ["fd77::66"]],
    ["eval/flood-syn.pcap", ["10.77.0.66"]],
    ["eval/flood-udp.pcap", ["10.77.0.66"]],
    ["eval/flood-frag.pcap", ["10.77.0.66"]],
    ["eval/flood-spoofed.pcap", ["(aggregate)"]],
  ];
  for (const [f, want] of attacks)
    it(`${f}: still named under shedding`, async () => {
      const r = await run(f, KEEP);
      expect(r.shed).toBeGreaterThan(0);
      expect([...new Set(r.verdicts.map((v) => (v.aggregate ? "(aggregate)" : v.address)))].sort()).toEqual(want);
    });
});
