import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { basename } from "node:path";
import { PacketDecoder, RecordCursor, RecordWriter, shardOf } from "@vigil/frames";
import type { Progress } from "@vigil/lifecycle";
import { Detector, type DetectorOptions, type JudgedSequence } from "./detector.js";
import { ModelSet, OTHER_CLASS, PstModel, ServiceClassMap, type ServiceClass } from "./model.js";
import { readCaptureRecords } from "./pcap.js";
import { ContextCounter, DEFAULT_PST_PARAMS, percentile, type PstParams, type TrainingSequence } from "./pst.js";

export interface TrainOptions {
  params: PstParams;
  classes: ServiceClass[];
  /** Share of sequences held out to calibrate thresholds. */
  holdout: number;
  /** Percentile of held-out judge statistics taken as the threshold. */
  percentile: number;
  /** Percentile taken as the suspicion threshold. */
  suspicionPercentile: number;
  minSymbols: number;
  /** A named class needs this many training sequences for its own model; else it uses "other". */
  minClassSequences: number;
  local?: string[];
}

export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  params: DEFAULT_PST_PARAMS,
  classes: [],
  holdout: 0.2,
  percentile: 99.5,
  suspicionPercentile: 95,
  minSymbols: 8,
  minClassSequences: 100,
};

/** A model set that scores nothing: used to track connections while collecting training sequences. */
export function neutralModelSet(classes: ServiceClass[]): ModelSet {
  const map = new ServiceClassMap(classes.length ? classes : undefined);
  const other = new PstModel(
    OTHER_CLASS,
    0,
    { name: OTHER_CLASS, ports: [] },
    DEFAULT_PST_PARAMS,
    new ContextCounter(0),
    { value: Infinity, percentile: 0, suspicion: Infinity, suspicionPercentile: 0, heldOut: 0, minSymbols: 1 },
    { sequences: 0, symbols: 0, heldOut: 0, sha256: "", inputs: [], feedbackSequences: 0, learnedSequences: 0 },
  );
  return new ModelSet(map, new Map([[OTHER_CLASS, other]]));
}

export interface CollectedSequences {
  sequences: Array<{ serviceClass: string; symbols: number[] }>;
  sha256: string;
  inputs: string[];
  frames: number;
}

/**
 * Every connection of the captures as a full symbol sequence (END included),
 * tracked exactly as the detector tracks them. Files are independent: state
 * is flushed between them.
 */
export async function collectSequences(
  files: string[],
  opts: { classes: ServiceClass[]; local?: string[]; detector?: Partial<DetectorOptions> },
  progress?: Progress,
): Promise<CollectedSequences> {
  const sequences: CollectedSequences["sequences"] = [];
  const hash = createHash("sha256");
  const det = new Detector(neutralModelSet(opts.classes), { shardCount: 1, maxConnections: 1 << 18, ...opts.detector }, {
    onJudged: (j: JudgedSequence) => sequences.push({ serviceClass: j.serviceClass, symbols: j.head }),
  });
  det.table.enableTracing();
  const sizes = files.map((f) => {
    try {
      return statSync(f).size;
    } catch {
      return 0;
    }
  });
  const totalBytes = sizes.reduce((a, b) => a + b, 0) || 1;
  let doneBytes = 0;
  let frames = 0;
  for (let i = 0; i < files.length; i++) {
    let fileBytes = 0;
    for await (const batch of readCaptureRecords(files[i], { local: opts.local })) {
      hash.update(batch);
      frames += det.processRecords(0, `train:${basename(files[i])}`, batch);
      fileBytes += batch.byteLength;
      progress?.update(doneBytes + Math.min(fileBytes, sizes[i]), totalBytes, `${i + 1}/${files.length} ${basename(files[i])}, ${frames} frames`);
    }
    det.endOfStream(0);
    doneBytes += sizes[i];
  }
  progress?.finish(`${files.length} files, ${frames} frames, ${sequences.length} connections`);
  return { sequences, sha256: hash.digest("hex"), inputs: files.map((f) => basename(f)), frames };
}

/** Deterministic hold-out choice from the sequence's position. */
export function isHeldOut(index: number, share: number): boolean {
  if (share <= 0) return false;
  const h = Math.imul(index + 1, 0x9e3779b1) >>> 0;
  return h / 4294967296 < share;
}

/** Trains one model per service class with enough data, and "other" on everything. */
export function trainModels(data: CollectedSequences, options: Partial<TrainOptions> = {}): PstModel[] {
  const o = { ...DEFAULT_TRAIN_OPTIONS, ...options };
  const map = new ServiceClassMap(o.classes.length ? o.classes : undefined);
  const train = new Map<string, TrainingSequence[]>();
  const held = new Map<string, TrainingSequence[]>();
  const all: TrainingSequence[] = [];
  const allHeld: TrainingSequence[] = [];
  data.sequences.forEach((s, i) => {
    const seq = { symbols: s.symbols, fromStart: true };
    const target = isHeldOut(i, o.holdout) ? held : train;
    (isHeldOut(i, o.holdout) ? allHeld : all).push(seq);
    if (!target.has(s.serviceClass)) target.set(s.serviceClass, []);
    target.get(s.serviceClass)!.push(seq);
  });
  const models: PstModel[] = [];
  for (const cls of map.classes) {
    const isOther = cls.name === OTHER_CLASS;
    const trainSeqs = isOther ? all : (train.get(cls.name) ?? []);
    const heldSeqs = isOther ? allHeld : (held.get(cls.name) ?? []);
    if (!isOther && trainSeqs.length < o.minClassSequences) continue;
    const counts = new ContextCounter(o.params.maxDepth);
    for (const s of trainSeqs) counts.add(s);
    const calibration = heldSeqs.length >= 20 ? heldSeqs : trainSeqs;
    const model = new PstModel(
      cls.name,
      1,
      cls,
      o.params,
      counts,
      { value: 0, percentile: o.percentile, suspicion: 0, suspicionPercentile: o.suspicionPercentile, heldOut: calibration === heldSeqs ? heldSeqs.length : 0, minSymbols: o.minSymbols },
      {
        sequences: trainSeqs.length,
        symbols: trainSeqs.reduce((n, s) => n + s.symbols.length, 0),
        heldOut: heldSeqs.length,
        sha256: data.sha256,
        inputs: data.inputs,
        feedbackSequences: 0,
        learnedSequences: 0,
      },
    );
    const stats = calibration.map((s) => model.compiled.judgeStatistic(s.symbols, o.minSymbols, true));
    model.threshold.value = stats.length ? percentile(stats, o.percentile) : 0;
    model.threshold.suspicion = stats.length ? percentile(stats, o.suspicionPercentile) : 0;
    models.push(model);
  }
  return models;
}

/**
 * Splits one shard's worth of records into the shards capture would publish
 * them on (fnv1a32 of the remote address), for offline runs that should judge
 * exactly as a deployment with that many shards.
 */
export function splitByShard(records: Uint8Array, shardCount: number): Uint8Array[] {
  const writers = Array.from({ length: shardCount }, () => new RecordWriter(1 << 14));
  const c = new RecordCursor().reset(records);
  const d = new PacketDecoder();
  while (c.next()) {
    let shard = 0;
    if (d.decode(c.buf, c.dataOffset, c.capLen, c.family, c.origLen)) shard = shardOf(c.direction, c.buf, d.srcOff, d.dstOff, d.addrLen, shardCount);
    writers[shard].append({ ...c.toRecord() });
  }
  return writers.map((w) => w.bytes().slice());
}
