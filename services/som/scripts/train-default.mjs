#!/usr/bin/env node
// Rebuilds services/som/models/default/som-model.json exactly: the lab's benign
// training captures plus seeded synthetic benign traffic (see README.md, "Default model").
// Run from the repository root after a build: node services/som/scripts/train-default.mjs
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { FeatureCollector, TrafficSynth, progressBar, trainFromCaptures, DEFAULT_WINDOW } from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const labDir = join(root, "lab/captures/train");
const out = join(here, "../models/default");

const SYNTH_SEED = 20261127;
const SYNTH_SECONDS = 1800;
const SYNTH_START = 1_790_000_000;

const labels = JSON.parse(readFileSync(join(labDir, "labels.json"), "utf8"));
const benign = labels.captures.filter((c) => c.kind === "benign").map((c) => join(labDir, c.file));
for (const f of benign) if (!existsSync(f)) throw new Error(`missing lab capture ${f}`);

const synth = new TrafficSynth({ seed: SYNTH_SEED });
synth.benign(SYNTH_START, SYNTH_SECONDS);
const collector = new FeatureCollector(DEFAULT_WINDOW);
collector.ingest(synth.records());
const extra = collector.finish();
process.stderr.write(`synthetic benign: ${synth.packetCount} packets, ${extra.length} windows (seed ${SYNTH_SEED})\n`);

// Labelled synthetic attacks: their anomalous windows name the units they hit, so verdicts carry a label.
const ATTACKS = [
  ["syn-flood", (s, t) => s.synFlood(t, 8, 3000, { port: 80 })],
  ["syn-scan", (s, t) => s.synScan(t, 8, 500, "66.66.66.66")],
  ["udp-flood", (s, t) => s.udpFlood(t, 8, 3000, "77.77.77.77")],
  ["icmp-flood", (s, t) => s.icmpFlood(t, 8, 2000, "88.88.88.88")],
  ["fragment-flood", (s, t) => s.fragmentFlood(t, 8, 2000)],
  ["udp-amplification", (s, t) => s.amplification(t, 8, 3000, 500)],
];
const attackWindows = [];
for (const [i, [label, make]] of ATTACKS.entries()) {
  const s = new TrafficSynth({ seed: SYNTH_SEED + 1 + i });
  const t = SYNTH_START + 10_000 * (i + 1);
  make(s, t);
  const c = new FeatureCollector(DEFAULT_WINDOW, { minPackets: 20 });
  c.ingest(s.records());
  for (const features of c.finish()) attackWindows.push({ label, features });
}
process.stderr.write(`synthetic attacks: ${attackWindows.length} labelled windows\n`);

const model = await trainFromCaptures({
  name: "default",
  version: 1,
  benign,
  local: labels.local,
  extraBenign: extra,
  extraDescription: `synthetic-benign:seed=${SYNTH_SEED}:seconds=${SYNTH_SECONDS}`,
  extraAttacks: attackWindows,
  window: DEFAULT_WINDOW,
  createdAt: "2026-11-27T00:00:00.000Z",
  progress: progressBar("train som (default)"),
});
const path = model.save(out);
process.stdout.write(`${path}: threshold ${model.threshold.toFixed(4)}, ${model.json.training.benignWindows} benign windows, data sha256 ${model.json.training.dataSha256}\n`);
