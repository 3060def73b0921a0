import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SomExport } from "@vigil/models";
import { F_AVG_SIZE, FEATURE_COUNT, FEATURE_NAMES } from "./features.js";
import { Prng, Som, type Topology, type TrainOptions } from "./som.js";

export const MODEL_FORMAT = "vigil-som-model";
export const MODEL_FORMAT_VERSION = 1;
export const MODEL_FILE = "som-model.json";

export class ModelError extends Error {
  readonly code = "VIGIL_ERR_SOM_MODEL";
}

/** How a model was trained: the map's shape, the schedule Som.train ran, and the calibration. */
export interface TrainingParameters extends Omit<TrainOptions, "onProgress"> {
  rows: number;
  cols: number;
  topology: Topology;
  /** Share of the benign windows held out to calibrate the threshold. */
  heldOutFraction: number;
  /** Percentile of the held-out quantization errors that becomes the threshold. */
  percentile: number;
  /** Factor applied to that percentile: the margin between "rare" and "anomalous". */
  margin: number;
}

export const DEFAULT_TRAINING: TrainingParameters = {
  rows: 10,
  cols: 10,
  topology: "hexagonal",
  epochs: 20,
  seed: 1,
  learningRate: 0.5,
  finalLearningRate: 0.01,
  finalRadius: 0.5,
  heldOutFraction: 0.2,
  percentile: 99.5,
  margin: 1.5,
};

export interface WindowParameters {
  windowMs: number;
  maxPackets: number;
}

/**
 * Floors of the robust scale per feature: a feature that never varies in
 * benign training data (fragments, often) would otherwise get an IQR of 0
 * and turn a single event into an infinite deviation. In log1p units for
 * rates (0.5 ~ a factor 1.65), in bytes for the average size.
 */
const SCALE_FLOOR = FEATURE_NAMES.map((_, i) => (i === F_AVG_SIZE ? 50 : 0.5));

/** The vector the map sees: log1p of the rates (they span orders of magnitude), then robust scaling. */
export function transformInto(raw: ArrayLike<number>, center: ArrayLike<number>, scale: ArrayLike<number>, out: Float64Array): Float64Array {
  for (let i = 0; i < FEATURE_COUNT; i++) {
    const v = i === F_AVG_SIZE ? raw[i] : Math.log1p(Math.max(0, raw[i]));
    out[i] = (v - center[i]) / scale[i];
  }
  return out;
}

function logView(raw: ArrayLike<number>): number[] {
  const v: number[] = [];
  for (let i = 0; i < FEATURE_COUNT; i++) v.push(i === F_AVG_SIZE ? raw[i] : Math.log1p(Math.max(0, raw[i])));
  return v;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface LabelledWindow {
  label: string;
  features: number[];
}

export interface ModelJson {
  format: string;
  formatVersion: number;
  name: string;
  version: number;
  createdAt: string;
  features: string[];
  window: WindowParameters;
  transform: string;
  scaler: { center: number[]; scale: number[] };
  map: { rows: number; cols: number; topology: Topology; weights: number[] };
  threshold: number;
  training: TrainingParameters & {
    benignWindows: number;
    trainWindows: number;
    heldOutWindows: number;
    attackWindows: number;
    heldOutQuantile: number;
    dataSha256: string;
    inputs: string[];
  };
  hits: number[];
  labels: Record<string, Record<string, number>>;
  /** Windows people marked as false alarms (raw features), learned online. */
  feedback: Array<{ verdictId: string; features: number[]; at: number }>;
}

/** A trained model: scaler, map, threshold, neuron labels, and the false alarms it has learned since. */
export class SomModel {
  readonly som: Som;
  readonly center: Float64Array;
  readonly scale: Float64Array;
  private readonly scratch = new Float64Array(FEATURE_COUNT);
  /** label() per unit: the labels are fixed once trained, and each unit's counts object has its own shape. */
  private readonly labelOf = new Map<number, string>();
  constructor(readonly json: ModelJson) {
    validate(json);
    this.som = new Som(
      { rows: json.map.rows, cols: json.map.cols, dim: FEATURE_COUNT, topology: json.map.topology },
      Float32Array.from(json.map.weights),
    );
    this.center = Float64Array.from(json.scaler.center);
    this.scale = Float64Array.from(json.scaler.scale);
  }

  get id(): string {
    return `som/${this.json.name}@${this.json.version}`;
  }

  get threshold(): number {
    return this.json.threshold;
  }

  transform(raw: ArrayLike<number>, out: Float64Array): Float64Array {
    return transformInto(raw, this.center, this.scale, out);
  }

  /**
   * The attack labels of a unit: every label with at least half the hits of the
   * most frequent one, joined by "/" (attack windows far from the benign map
   * crowd onto its edge units, so a unit may stand for several attacks), or "".
   */
  label(unit: number): string {
    let label = this.labelOf.get(unit);
    if (label === undefined) {
      label = this.labelFromCounts(unit);
      this.labelOf.set(unit, label);
    }
    return label;
  }

  private labelFromCounts(unit: number): string {
    const l = this.json.labels[String(unit)];
    if (!l) return "";
    const entries = Object.entries(l).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (entries.length === 0) return "";
    const top = entries[0][1];
    return entries
      .filter(([, n]) => n * 2 >= top)
      .map(([k]) => k)
      .join("/");
  }

  /** Scaled distances from each false alarm learned, for the guarantee that the same window is not flagged again. */
  nearestFeedback(scaled: Float64Array): number {
    let best = Infinity;
    for (const f of this.json.feedback) {
      const v = this.transform(f.features, this.scratch);
      let s = 0;
      for (let i = 0; i < FEATURE_COUNT; i++) s += (v[i] - scaled[i]) ** 2;
      if (s < best) best = s;
    }
    return Math.sqrt(best);
  }

  /**
   * Learns a false alarm: the window joins the training set (kept in the
   * model's feedback list) and the map moves its best-matching unit and that
   * unit's neighbours towards it with a small learning rate.
   */
  learnFalseAlarm(verdictId: string, raw: number[], at: number, rate = 0.1, sigma = 1): { before: number; after: number } {
    const x = this.transform(raw, new Float64Array(FEATURE_COUNT));
    const before = this.som.quantizationError(x);
    // A few small steps rather than one large one: the neighbourhood follows gently.
    for (let i = 0; i < 5; i++) this.som.update(x, this.som.bmu(x), rate, sigma);
    const after = this.som.quantizationError(x);
    if (!this.json.feedback.some((f) => f.verdictId === verdictId)) this.json.feedback.push({ verdictId, features: raw, at });
    return { before, after };
  }

  toJSON(): ModelJson {
    return { ...this.json, map: { ...this.json.map, weights: Array.from(this.som.weights) } };
  }

  save(dir: string): string {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, MODEL_FILE);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(this.toJSON()) + "\n");
    renameSync(tmp, path);
    return path;
  }

  static load(pathOrDir: string): SomModel {
    const path = pathOrDir.endsWith(".json") ? pathOrDir : join(pathOrDir, MODEL_FILE);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new ModelError(`cannot read SOM model ${path}: ${(err as Error).message}`);
    }
    let json: ModelJson;
    try {
      json = JSON.parse(text) as ModelJson;
    } catch (err) {
      throw new ModelError(`SOM model ${path} is not valid JSON: ${(err as Error).message}`);
    }
    try {
      return new SomModel(json);
    } catch (err) {
      throw new ModelError(`SOM model ${path}: ${(err as Error).message}`);
    }
  }

  /** U-matrix, hit counts and labels for the web console. */
  /** The map as `vigil som export` prints it and vigil.models.som answers: the shape @vigil/models reads. */
  exportMap(): SomExport {
    const labels: Array<{ unit: number; label: string; counts: Record<string, number> }> = [];
    for (const [u, counts] of Object.entries(this.json.labels)) labels.push({ unit: Number(u), label: this.label(Number(u)), counts });
    return {
      model: this.id,
      rows: this.som.rows,
      cols: this.som.cols,
      topology: this.som.topology,
      features: FEATURE_NAMES,
      threshold: this.threshold,
      uMatrix: this.som.uMatrix(),
      hits: this.json.hits,
      labels: labels.sort((a, b) => a.unit - b.unit),
      feedback: this.json.feedback.length,
    };
  }
}

function validate(json: ModelJson): void {
  if (json?.format !== MODEL_FORMAT) throw new ModelError(`not a SOM model (format "${json?.format}")`);
  if (json.formatVersion !== MODEL_FORMAT_VERSION)
    throw new ModelError(`model format version ${json.formatVersion} is not supported (expected ${MODEL_FORMAT_VERSION})`);
  if (JSON.stringify(json.features) !== JSON.stringify(FEATURE_NAMES))
    throw new ModelError(`model features ${JSON.stringify(json.features)} differ from this detector's ${JSON.stringify(FEATURE_NAMES)}`);
  for (const k of ["center", "scale"] as const)
    if (!Array.isArray(json.scaler?.[k]) || json.scaler[k].length !== FEATURE_COUNT || !json.scaler[k].every(Number.isFinite))
      throw new ModelError(`scaler.${k} must hold ${FEATURE_COUNT} finite numbers`);
  if (json.scaler.scale.some((s) => s <= 0)) throw new ModelError("scaler.scale must be positive");
  if (!(json.threshold > 0)) throw new ModelError(`threshold must be > 0, got ${json.threshold}`);
  if (!json.window || !(json.window.windowMs > 0) || !(json.window.maxPackets > 0)) throw new ModelError("window parameters missing");
  json.feedback ??= [];
  json.labels ??= {};
}

export interface TrainInput {
  name: string;
  version?: number;
  window: WindowParameters;
  benign: number[][];
  attacks?: LabelledWindow[];
  params?: Partial<TrainingParameters>;
  /** Names of the inputs (files), recorded in the model. */
  inputs?: string[];
  /** SHA-256 of the training data; computed from the feature vectors when absent. */
  dataSha256?: string;
  createdAt?: string;
  onProgress?: (done: number, total: number) => void;
}

/** Fits the scaler, trains the map on benign windows, calibrates the threshold on held-out ones, labels units with attack windows. */
export function trainModel(input: TrainInput): SomModel {
  const p: TrainingParameters = { ...DEFAULT_TRAINING, ...input.params };
  const n = input.benign.length;
  if (n < 20) throw new ModelError(`need at least 20 benign windows to train, got ${n}`);
  const prng = new Prng(p.seed ^ 0x5eed);
  const order = prng.shuffle([...Array(n).keys()]);
  const heldCount = Math.max(5, Math.round(n * p.heldOutFraction));
  const held = order.slice(0, heldCount).map((i) => input.benign[i]);
  const train = order.slice(heldCount).map((i) => input.benign[i]);

  const center: number[] = [];
  const scale: number[] = [];
  const logs = train.map(logView);
  for (let f = 0; f < FEATURE_COUNT; f++) {
    const col = logs.map((v) => v[f]).sort((a, b) => a - b);
    center.push(quantile(col, 0.5));
    scale.push(Math.max(quantile(col, 0.75) - quantile(col, 0.25), SCALE_FLOOR[f]));
  }
  const toScaled = (raw: number[]) => transformInto(raw, center, scale, new Float64Array(FEATURE_COUNT));
  const som = new Som({ rows: p.rows, cols: p.cols, dim: FEATURE_COUNT, topology: p.topology });
  som.train(train.map(toScaled), {
    epochs: p.epochs,
    seed: p.seed,
    learningRate: p.learningRate,
    finalLearningRate: p.finalLearningRate,
    radius: p.radius,
    finalRadius: p.finalRadius,
    onProgress: input.onProgress,
  });
  const heldErrors = held.map((raw) => som.quantizationError(toScaled(raw))).sort((a, b) => a - b);
  const heldOutQuantile = quantile(heldErrors, p.percentile / 100);
  const threshold = Math.max(heldOutQuantile * p.margin, 1e-6);
  const hits = new Array<number>(som.units).fill(0);
  for (const raw of input.benign) hits[som.bmu(toScaled(raw))]++;
  const labels: Record<string, Record<string, number>> = {};
  for (const a of input.attacks ?? []) {
    const x = toScaled(a.features);
    const u = som.bmu(x);
    if (Math.sqrt(som.lastDist2) <= threshold) continue;
    const l = (labels[String(u)] ??= {});
    l[a.label] = (l[a.label] ?? 0) + 1;
  }
  const dataSha256 =
    input.dataSha256 ??
    createHash("sha256")
      .update(JSON.stringify({ benign: input.benign, attacks: input.attacks ?? [] }))
      .digest("hex");
  return new SomModel({
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    name: input.name,
    version: input.version ?? 1,
    createdAt: input.createdAt ?? new Date().toISOString(),
    features: [...FEATURE_NAMES],
    window: input.window,
    transform: "log1p(rates); avg_packet_size linear; then (x - median) / max(IQR, floor)",
    scaler: { center, scale },
    map: { rows: p.rows, cols: p.cols, topology: p.topology, weights: Array.from(som.weights) },
    threshold,
    training: {
      ...p,
      benignWindows: n,
      trainWindows: train.length,
      heldOutWindows: held.length,
      attackWindows: input.attacks?.length ?? 0,
      heldOutQuantile,
      dataSha256,
      inputs: input.inputs ?? [],
    },
    hits,
    labels,
    feedback: [],
  });
}
