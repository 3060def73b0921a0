import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CompiledPst, ContextCounter, exportTree, learnTree, PstError, validateParams, type PstParams, type TrainingSequence } from "./pst.js";

export const MODEL_FORMAT = "vigil-pst-model";
export const MODEL_FORMAT_VERSION = 1;
export const MODEL_SUFFIX = ".pst.json";

/** A group of server ports that share one model. The last class, "other", catches every other port. */
export interface ServiceClass {
  name: string;
  ports: number[];
}

export const OTHER_CLASS = "other";

export const DEFAULT_SERVICE_CLASSES: ServiceClass[] = [
  { name: "web", ports: [80, 8000, 8008, 8080] },
  { name: "tls", ports: [443, 8443] },
  { name: "ssh", ports: [22] },
  { name: "ftp", ports: [21] },
  { name: "dns-tcp", ports: [53] },
  { name: OTHER_CLASS, ports: [] },
];

/** Port → class index lookup; "other" is always present and last. */
export class ServiceClassMap {
  readonly classes: ServiceClass[];
  readonly byPort = new Uint8Array(65536);
  readonly other: number;

  constructor(classes: ServiceClass[] = DEFAULT_SERVICE_CLASSES) {
    const named = classes.filter((c) => c.name !== OTHER_CLASS);
    if (named.length > 254) throw new PstError("at most 254 service classes", "VIGIL_ERR_PST_CONFIG");
    const seen = new Map<number, string>();
    for (const c of named) {
      if (!/^[a-z0-9][a-z0-9-]*$/.test(c.name))
        throw new PstError(`service class name "${c.name}" must be lower-case letters, digits and dashes`, "VIGIL_ERR_PST_CONFIG");
      for (const p of c.ports) {
        if (!Number.isInteger(p) || p < 1 || p > 65535)
          throw new PstError(`service class "${c.name}": port ${p} is not 1..65535`, "VIGIL_ERR_PST_CONFIG");
        const prev = seen.get(p);
        if (prev) throw new PstError(`port ${p} is in both service classes "${prev}" and "${c.name}"`, "VIGIL_ERR_PST_CONFIG");
        seen.set(p, c.name);
      }
    }
    this.classes = [...named, { name: OTHER_CLASS, ports: [] }];
    this.other = this.classes.length - 1;
    this.byPort.fill(this.other);
    this.classes.forEach((c, i) => c.ports.forEach((p) => (this.byPort[p] = i)));
  }

  indexOf(name: string): number {
    return this.classes.findIndex((c) => c.name === name);
  }
}

export interface ThresholdInfo {
  /** Connections judging above this (nats per symbol) are anomalous. */
  value: number;
  /** The percentile of held-out benign judge statistics it was taken at. */
  percentile: number;
  /** A lower threshold (suspicionPercentile of the same statistics): connections above it count as weak evidence. */
  suspicion: number;
  suspicionPercentile: number;
  /** How many held-out sequences it was calibrated on; 0 means calibrated on the training set itself. */
  heldOut: number;
  /** Minimum symbols before a connection may be judged early. */
  minSymbols: number;
}

export interface TrainingInfo {
  sequences: number;
  symbols: number;
  heldOut: number;
  /** SHA-256 over the training inputs (the record bytes, in order). */
  sha256: string;
  inputs: string[];
  feedbackSequences: number;
  learnedSequences: number;
}

export interface ModelFile {
  format: typeof MODEL_FORMAT;
  formatVersion: number;
  name: string;
  version: number;
  serviceClass: ServiceClass;
  params: PstParams;
  threshold: ThresholdInfo;
  training: TrainingInfo;
  /** The learnt tree: its contexts (nearest symbol first), for inspection; rebuilt from counts on load. */
  tree: number[][];
  counts: ReturnType<ContextCounter["toJSON"]>;
}

/** A trained model: its counts (what it learns into), the compiled tree (what scores) and the threshold. */
export class PstModel {
  compiled: CompiledPst;

  constructor(
    readonly name: string,
    public version: number,
    readonly serviceClass: ServiceClass,
    readonly params: PstParams,
    readonly counts: ContextCounter,
    public threshold: ThresholdInfo,
    readonly training: TrainingInfo,
  ) {
    validateParams(params);
    this.compiled = new CompiledPst(learnTree(counts, params), params);
  }

  /** `pst/<name>@<version>`: kept while the version stays, since windows key their model tallies by it per judgement. */
  get id(): string {
    if (this.idVersion !== this.version) {
      this.idText = `pst/${this.name}@${this.version}`;
      this.idVersion = this.version;
    }
    return this.idText;
  }

  private idText = "";
  /** NaN: no id built yet (NaN equals no version). */
  private idVersion = NaN;

  /** Adds sequences to the counts and rebuilds the tree; the new tree replaces the old one atomically. */
  learn(seqs: TrainingSequence[], weight: number, kind: "feedback" | "learned"): void {
    for (const s of seqs) this.counts.add(s, weight);
    if (kind === "feedback") this.training.feedbackSequences += seqs.length;
    else this.training.learnedSequences += seqs.length;
    this.compiled = new CompiledPst(learnTree(this.counts, this.params), this.params);
    this.version++;
  }

  toFile(): ModelFile {
    return {
      format: MODEL_FORMAT,
      formatVersion: MODEL_FORMAT_VERSION,
      name: this.name,
      version: this.version,
      serviceClass: this.serviceClass,
      params: this.params,
      threshold: this.threshold,
      training: this.training,
      tree: this.compiled.nodes.map((n) => n.ctx),
      counts: this.counts.toJSON(),
    };
  }

  static fromFile(doc: unknown, where: string): PstModel {
    const fail = (what: string): never => {
      throw new PstError(`${where}: ${what}`, "VIGIL_ERR_PST_MODEL");
    };
    if (typeof doc !== "object" || doc === null) return fail("not a JSON object");
    const f = doc as Partial<ModelFile>;
    if (f.format !== MODEL_FORMAT) fail(`format is ${JSON.stringify(f.format)}, expected "${MODEL_FORMAT}"`);
    if (f.formatVersion !== MODEL_FORMAT_VERSION) fail(`format version ${f.formatVersion} is not supported (expected ${MODEL_FORMAT_VERSION})`);
    if (typeof f.name !== "string" || !f.name) fail("name is missing");
    if (!Number.isInteger(f.version)) fail("version is missing");
    if (!f.params || typeof f.params !== "object") fail("params are missing");
    if (!f.threshold || typeof f.threshold.value !== "number" || !Number.isFinite(f.threshold.value)) fail("threshold.value is missing");
    if (typeof f.threshold!.suspicion !== "number" || typeof f.threshold!.suspicionPercentile !== "number") fail("threshold.suspicion is missing");
    if (!f.training || typeof f.training !== "object") fail("training is missing");
    if (!f.serviceClass || !Array.isArray(f.serviceClass.ports)) fail("serviceClass is missing");
    try {
      validateParams(f.params!);
    } catch (err) {
      fail((err as Error).message);
    }
    const counts = ContextCounter.fromJSON(f.params!.maxDepth, f.counts, where);
    const t = f.training!;
    return new PstModel(f.name!, f.version!, f.serviceClass!, f.params!, counts, f.threshold!, {
      ...t,
      feedbackSequences: t.feedbackSequences ?? 0,
      learnedSequences: t.learnedSequences ?? 0,
    });
  }
}

export function readModelFile(path: string): PstModel {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new PstError(`cannot read model ${path}: ${(err as Error).message}`, "VIGIL_ERR_PST_MODEL");
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PstError(`model ${path} is not valid JSON: ${(err as Error).message}`, "VIGIL_ERR_PST_MODEL");
  }
  return PstModel.fromFile(doc, `model ${path}`);
}

/** Writes atomically (temporary file then rename) so a crash never leaves half a model. */
export function writeModelFile(dir: string, model: PstModel): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${model.name}${MODEL_SUFFIX}`);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(model.toFile()) + "\n");
  renameSync(tmp, path);
  return path;
}

/** Every *.pst.json in a directory, by name. */
export function readModelDir(dir: string): Map<string, PstModel> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(MODEL_SUFFIX));
  } catch (err) {
    throw new PstError(`cannot list models in ${dir}: ${(err as Error).message}`, "VIGIL_ERR_PST_MODEL");
  }
  const out = new Map<string, PstModel>();
  for (const n of names.sort()) {
    const m = readModelFile(join(dir, n));
    out.set(m.name, m);
  }
  return out;
}

/**
 * The models the detector scores with, indexed by service class. A class
 * without its own model uses "other", which must exist.
 */
export class ModelSet {
  /** Per class index: the model used (possibly the "other" model). */
  readonly byClass: PstModel[];

  constructor(
    readonly classMap: ServiceClassMap,
    readonly models: Map<string, PstModel>,
  ) {
    const other = models.get(OTHER_CLASS);
    if (!other) throw new PstError(`no "${OTHER_CLASS}" model: it is the fallback for every port without its own model`, "VIGIL_ERR_PST_MODEL");
    this.byClass = classMap.classes.map((c) => models.get(c.name) ?? other);
    const depth = Math.max(...[...models.values()].map((m) => m.params.maxDepth));
    if (depth > 15) throw new PstError("maxDepth above 15 does not fit the per-connection ring", "VIGIL_ERR_PST_MODEL");
  }
}

/** The models as `vigil pst export --format json` prints them (and the console draws them). */
export function exportModelsJson(list: Iterable<PstModel>): unknown[] {
  return [...list].map((m) => ({
    model: m.id,
    name: m.name,
    version: m.version,
    serviceClass: m.serviceClass,
    threshold: m.threshold,
    training: m.training,
    tree: exportTree(m.compiled),
  }));
}
