import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FeatureCollector } from "./collect.js";
import { ModelError, type LabelledWindow, type SomModel } from "./model.js";
import { TrafficSynth } from "./synth.js";
import { DEFAULT_WINDOW, trainFromCaptures, type Progress } from "./training.js";

/** Fixed inputs of the shipped default model: changing any of them changes the model file. */
export const DEFAULT_MODEL_RECIPE = {
  synthSeed: 20261127,
  synthSeconds: 1800,
  synthStart: 1_790_000_000,
  createdAt: "2026-11-27T00:00:00.000Z",
} as const;

/** Labelled synthetic attacks: their anomalous windows name the units they hit, so verdicts carry a label. */
const ATTACKS: Array<[string, (s: TrafficSynth, t: number) => void]> = [
  ["syn-flood", (s, t) => s.synFlood(t, 8, 3000, { port: 80 })],
  ["syn-scan", (s, t) => s.synScan(t, 8, 500, "66.66.66.66")],
  ["udp-flood", (s, t) => s.udpFlood(t, 8, 3000, "77.77.77.77")],
  ["icmp-flood", (s, t) => s.icmpFlood(t, 8, 2000, "88.88.88.88")],
  ["fragment-flood", (s, t) => s.fragmentFlood(t, 8, 2000)],
  ["udp-amplification", (s, t) => s.amplification(t, 8, 3000, 500)],
  ["udp-scan", (s, t) => s.udpScan(t, 8, 100, "55.55.55.55")],
  ["ping-sweep", (s, t) => s.pingSweep(t, 8, 254, "44.44.44.44")],
];

/**
 * Trains the shipped default model: the lab's benign training captures (replayed with the lab's local
 * addresses) plus seeded synthetic benign traffic, labelled with seeded synthetic attacks. Deterministic:
 * the same lab captures give the same file byte for byte.
 */
export async function trainDefaultModel(opts: { labDir: string; progress?: Progress; log?: (line: string) => void }): Promise<SomModel> {
  const r = DEFAULT_MODEL_RECIPE;
  const labelsPath = join(opts.labDir, "labels.json");
  if (!existsSync(labelsPath)) throw new ModelError(`missing lab training labels ${labelsPath} (record them with lab/record.sh train)`);
  const labels = JSON.parse(readFileSync(labelsPath, "utf8")) as { local: string[]; captures: Array<{ file: string; kind: string }> };
  const benign = labels.captures.filter((c) => c.kind === "benign").map((c) => join(opts.labDir, c.file));
  for (const f of benign) if (!existsSync(f)) throw new ModelError(`missing lab capture ${f}`);

  const synth = new TrafficSynth({ seed: r.synthSeed });
  synth.benign(r.synthStart, r.synthSeconds);
  const collector = new FeatureCollector(DEFAULT_WINDOW);
  collector.ingest(synth.records());
  const extra = collector.finish();
  opts.log?.(`synthetic benign: ${synth.packetCount} packets, ${extra.length} windows (seed ${r.synthSeed})`);

  const attackWindows: LabelledWindow[] = [];
  for (const [i, [label, make]] of ATTACKS.entries()) {
    const s = new TrafficSynth({ seed: r.synthSeed + 1 + i });
    make(s, r.synthStart + 10_000 * (i + 1));
    const c = new FeatureCollector(DEFAULT_WINDOW, { minPackets: 20 });
    c.ingest(s.records());
    for (const features of c.finish()) attackWindows.push({ label, features });
  }
  opts.log?.(`synthetic attacks: ${attackWindows.length} labelled windows`);

  return trainFromCaptures({
    name: "default",
    version: 1,
    benign,
    local: labels.local,
    extraBenign: extra,
    extraDescription: `synthetic-benign:seed=${r.synthSeed}:seconds=${r.synthSeconds}`,
    extraAttacks: attackWindows,
    window: DEFAULT_WINDOW,
    createdAt: r.createdAt,
    progress: opts.progress,
  });
}
