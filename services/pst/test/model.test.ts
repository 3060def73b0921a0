import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RecordWriter } from "@vigil/frames";
import { exportCommand, trainCommand } from "../src/cli.js";
import { readModelDir, readModelFile, ServiceClassMap } from "../src/model.js";
import { benignVariants, writeConversation, writeTempRecords } from "./support/models.js";

async function syntheticPcap(n: number): Promise<string> {
  const w = new RecordWriter();
  let ts = 1_700_000_000;
  for (let i = 0; i < n; i++)
    ts = writeConversation(w, { client: `10.5.${i >> 8}.${i & 255}`, server: "192.168.1.1", clientPort: 20000 + i, serverPort: i % 2 ? 80 : 443, steps: benignVariants(i), startTs: ts });
  return writeTempRecords(w.bytes());
}

async function quiet<T>(fn: () => Promise<T>): Promise<T> {
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    return await fn();
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

describe("training and model files", () => {
  it("vigil train pst is deterministic: the same captures give byte-identical model files", async () => {
    const pcap = await syntheticPcap(1200);
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), "vigil-pst-train-")));
    for (const d of dirs) expect(await quiet(() => trainCommand.run(["--pcap", pcap, "--out", d, "--quiet"]))).toBe(0);
    const names = [...readModelDir(dirs[0]).keys()].sort();
    expect(names).toEqual(["other", "tls", "web"]);
    for (const n of names) expect(readFileSync(join(dirs[1], `${n}.pst.json`), "utf8")).toBe(readFileSync(join(dirs[0], `${n}.pst.json`), "utf8"));
    const web = readModelFile(join(dirs[0], "web.pst.json"));
    expect(web.training.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(web.training.sequences + web.training.heldOut).toBe(600);
    expect(web.threshold.heldOut).toBe(web.training.heldOut);
    expect(web.threshold.value).toBeGreaterThanOrEqual(web.threshold.suspicion);
    expect(web.threshold.percentile).toBe(99.5);
  }, 60_000);

  it("rejects bad input with errors that name the file and the problem", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-pst-bad-"));
    writeFileSync(join(dir, "x.pst.json"), "{not json");
    expect(() => readModelFile(join(dir, "x.pst.json"))).toThrow(/x\.pst\.json is not valid JSON/);
    writeFileSync(join(dir, "y.pst.json"), JSON.stringify({ format: "vigil-pst-model", formatVersion: 99 }));
    expect(() => readModelFile(join(dir, "y.pst.json"))).toThrow(/y\.pst\.json: format version 99 is not supported/);
    expect(() => new ServiceClassMap([{ name: "a", ports: [80] }, { name: "b", ports: [80] }])).toThrow(/port 80 is in both/);
    expect(await quiet(() => trainCommand.run(["--out", dir]))).toBe(2);
    expect(await quiet(() => trainCommand.run(["--pcap", join(dir, "missing.pcap"), "--out", dir, "--quiet"]))).not.toBe(0);
    expect(await quiet(() => trainCommand.run(["--pcap", join(dir, "x.pst.json"), "--out", dir, "--quiet"]))).not.toBe(0);
  }, 30_000);

  it("vigil pst export writes the trees as JSON for the console and as Graphviz DOT", async () => {
    const pcap = await syntheticPcap(600);
    const dir = mkdtempSync(join(tmpdir(), "vigil-pst-export-"));
    await quiet(() => trainCommand.run(["--pcap", pcap, "--out", dir, "--quiet", "--min-class-sequences", "50"]));
    const json = join(dir, "tree.json");
    const dot = join(dir, "tree.dot");
    expect(await exportCommand.run(["--models", dir, "--format", "json", "--out", json])).toBe(0);
    expect(await exportCommand.run(["--models", dir, "--format", "dot", "--model", "web", "--out", dot])).toBe(0);
    const doc = JSON.parse(readFileSync(json, "utf8")) as Array<{ model: string; threshold: { value: number }; tree: { nodes: Array<{ context: string; count: number; next: Array<{ symbol: string; probability: number }> }> } }>;
    expect(doc.map((m) => m.model).sort()).toEqual(["pst/other@1", "pst/tls@1", "pst/web@1"]);
    const root = doc[0].tree.nodes[0];
    expect(root.context).toBe("ε");
    expect(root.next.reduce((a, n) => a + n.probability, 0)).toBeLessThanOrEqual(1.0001);
    const text = readFileSync(dot, "utf8");
    expect(text).toMatch(/^digraph "pst\/web@1" \{/);
    expect(text.trim().endsWith("}")).toBe(true);
    expect(await quiet(() => exportCommand.run(["--models", dir, "--format", "svg"]))).toBe(2);
  }, 30_000);
});
