import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { basename } from "node:path";
import { FeatureCollector } from "./collect.js";
import { ModelError, trainModel, type LabelledWindow, type SomModel, type TrainingParameters, type WindowParameters } from "./model.js";

export const DEFAULT_WINDOW: WindowParameters = { windowMs: 1000, maxPackets: 4096 };

import type { Progress } from "@vigil/lifecycle";

export type { Progress };

type RecordReader = (path: string, opts: { local?: string[] }) => AsyncIterable<Uint8Array>;

/** Capture files as frame records, through the capture addon (pcap and pcapng by magic number). */
export async function loadRecordReader(): Promise<RecordReader> {
  const spec = "@vigil/packet-sources";
  try {
    const mod = (await import(spec)) as { readPcapRecords?: RecordReader };
    if (typeof mod.readPcapRecords === "function") return mod.readPcapRecords;
  } catch (err) {
    throw new ModelError(`cannot load the capture reader (${spec}): ${(err as Error).message}; build it with \`node scripts/build.mjs\``);
  }
  throw new ModelError(`${spec} has no readPcapRecords`);
}

/** Feature vectors of every window of a capture file. */
export async function captureWindows(
  path: string,
  window: WindowParameters,
  opts: { local?: string[]; reader?: RecordReader; onFrames?: (frames: number) => void } = {},
): Promise<{ vectors: number[][]; frames: number; malformed: number }> {
  const reader = opts.reader ?? (await loadRecordReader());
  const collector = new FeatureCollector(window);
  for await (const records of reader(path, { local: opts.local })) {
    collector.ingest(records);
    opts.onFrames?.(collector.frames);
  }
  const vectors = collector.finish();
  return { vectors, frames: collector.frames, malformed: collector.malformed };
}

export async function sha256File(path: string, hash = createHash("sha256")): Promise<string> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export interface CaptureTrainingInput {
  name: string;
  version?: number;
  benign: string[];
  attacks?: Array<{ file: string; label: string }>;
  /** Extra benign windows (e.g. false alarms fed back, or synthetic traffic), recorded in the data hash. */
  extraBenign?: number[][];
  extraDescription?: string;
  /** Extra labelled attack windows (e.g. synthetic attacks), recorded in the data hash. */
  extraAttacks?: LabelledWindow[];
  local?: string[];
  window?: WindowParameters;
  params?: Partial<TrainingParameters>;
  createdAt?: string;
  progress?: Progress;
}

/** Reads the captures, trains and calibrates a model. The data hash covers every file's bytes, in order, and the extra windows. */
export async function trainFromCaptures(input: CaptureTrainingInput): Promise<SomModel> {
  const window = input.window ?? DEFAULT_WINDOW;
  const reader = await loadRecordReader();
  const files = [...input.benign.map((f) => ({ file: f, label: "" })), ...(input.attacks ?? [])];
  const totalBytes = files.reduce((s, f) => {
    try {
      return s + statSync(f.file).size;
    } catch (err) {
      throw new ModelError(`cannot read capture ${f.file}: ${(err as Error).message}`);
    }
  }, 0);
  const hash = createHash("sha256");
  const benign: number[][] = [];
  const attacks: LabelledWindow[] = [];
  let doneBytes = 0;
  for (const f of files) {
    const size = statSync(f.file).size;
    const { vectors, frames } = await captureWindows(f.file, window, {
      local: input.local,
      reader,
      onFrames: (n) => input.progress?.update(doneBytes + size * 0.5, totalBytes * 1.25, `${basename(f.file)}: ${n} frames`),
    });
    const fileHash = await sha256File(f.file);
    hash.update(`${f.label}\0${fileHash}\n`);
    doneBytes += size;
    input.progress?.update(doneBytes, totalBytes * 1.25, `${basename(f.file)}: ${frames} frames, ${vectors.length} windows`);
    if (f.label) for (const v of vectors) attacks.push({ label: f.label, features: v });
    else benign.push(...vectors);
  }
  if (input.extraBenign?.length) {
    hash.update(`extra\0${input.extraDescription ?? ""}\0`);
    hash.update(JSON.stringify(input.extraBenign));
    benign.push(...input.extraBenign);
  }
  if (input.extraAttacks?.length) {
    hash.update("extra-attacks\0");
    hash.update(JSON.stringify(input.extraAttacks));
    attacks.push(...input.extraAttacks);
  }
  const model = trainModel({
    name: input.name,
    version: input.version,
    window,
    benign,
    attacks,
    params: input.params,
    inputs: [...files.map((f) => (f.label ? `${basename(f.file)}:${f.label}` : basename(f.file))), ...(input.extraDescription ? [input.extraDescription] : [])],
    dataSha256: hash.digest("hex"),
    createdAt: input.createdAt,
    onProgress: (done, total) => input.progress?.update(totalBytes + (done / total) * totalBytes * 0.25, totalBytes * 1.25, `training epoch step ${done}/${total}`),
  });
  input.progress?.finish(
    `${benign.length} benign windows (${model.json.training.heldOutWindows} held out), ${attacks.length} attack windows; threshold ${model.threshold.toFixed(3)}`,
  );
  return model;
}
