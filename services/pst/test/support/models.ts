import { RecordWriter } from "@vigil/frames";
import { ModelSet, ServiceClassMap } from "../../src/model.js";
import { collectSequences, trainModels, type CollectedSequences } from "../../src/training.js";
import { parseSequence } from "@vigil/models";
import { A, F, P, R, S, benignExchange, writeConversation, type Step } from "../../src/synthetic.js";

export { A, F, P, R, S, benignExchange, writeConversation };

/** Benign variety: request/response with client or server close, keep-alive, a rare refused connection. */
export function benignVariants(i: number): Step[] {
  const k = i % 10;
  if (k < 5) return benignExchange(1 + (i % 4));
  if (k < 8) {
    const steps: Step[] = [
      { from: "c", flags: S },
      { from: "s", flags: S | A },
      { from: "c", flags: A },
    ];
    for (let r = 0; r <= i % 3; r++) steps.push({ from: "c", flags: P | A }, { from: "s", flags: A }, { from: "s", flags: P | A }, { from: "c", flags: A });
    steps.push({ from: "s", flags: F | A }, { from: "c", flags: A }, { from: "c", flags: F | A }, { from: "s", flags: A });
    return steps;
  }
  if (k === 8) return [...benignExchange(2).slice(0, 8), { from: "c", flags: R | A }];
  return i % 50 === 9 ? [{ from: "c", flags: S }, { from: "s", flags: R | A }] : benignExchange(2);
}

/** Sequences as the tracker would collect them, from text (for quick model building). */
export function sequencesFromText(cls: string, texts: string[]): CollectedSequences {
  return { sequences: texts.map((t) => ({ serviceClass: cls, symbols: parseSequence(t).head })), sha256: "test", inputs: ["test"], frames: 0 };
}

/** A model set trained on synthetic benign conversations, for web (80) and everything else. */
export async function syntheticModels(connections = 2000): Promise<ModelSet> {
  const w = new RecordWriter();
  let ts = 1_700_000_000;
  for (let i = 0; i < connections; i++) {
    ts = writeConversation(w, {
      client: `10.1.${(i >> 8) & 255}.${i & 255}`,
      server: i % 3 === 0 ? "192.168.9.9" : "192.168.9.10",
      clientPort: 20000 + (i % 40000),
      serverPort: i % 3 === 0 ? 5432 : 80,
      steps: benignVariants(i),
      startTs: ts,
      gap: 0.002,
    });
  }
  const file = await writeTempRecords(w.bytes());
  const data = await collectSequences([file], { classes: [] }).finally(() => undefined);
  const models = trainModels(data, { minClassSequences: 100 });
  return new ModelSet(new ServiceClassMap(), new Map(models.map((m) => [m.name, m])));
}

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Writes records as a pcap with raw-IP link type, so the training path reads real files. */
export async function writeTempRecords(records: Uint8Array): Promise<string> {
  const { decodeRecords } = await import("@vigil/frames");
  const { LINKTYPE, PcapWriter } = await import("@vigil/packet-sources");
  const file = join(mkdtempSync(join(tmpdir(), "vigil-pst-test-")), "records.pcap");
  const w = new PcapWriter(file, LINKTYPE.RAW);
  for (const r of decodeRecords(records)) w.write(r.tsNs, r.data, r.origLen);
  w.close();
  return file;
}
