import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Feedback } from "@vigil/proto";
import { FEATURE_NAMES } from "./features.js";
import { ModelError, SomModel } from "./model.js";

export const FEEDBACK_FILE = "feedback.json";

export interface FeedbackEntry {
  verdictId: string;
  features: number[];
  at: number;
}

interface FeedbackFile {
  format: "vigil-som-feedback";
  version: 1;
  entries: FeedbackEntry[];
}

export interface FeedbackOptions {
  rate: number;
  radius: number;
}

/**
 * The false alarms learned online, kept under the state directory. They are
 * stored as windows (raw feature vectors) rather than as a modified map, and
 * replayed in order onto the base model at start: the same map results, and
 * a retrained base model keeps what people taught the old one.
 */
export class FeedbackStore {
  readonly path: string;
  entries: FeedbackEntry[] = [];

  constructor(readonly dir: string) {
    this.path = join(dir, FEEDBACK_FILE);
  }

  load(): this {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return this;
      throw new ModelError(`cannot read SOM feedback ${this.path}: ${(err as Error).message}`);
    }
    let doc: FeedbackFile;
    try {
      doc = JSON.parse(text) as FeedbackFile;
    } catch (err) {
      throw new ModelError(`SOM feedback ${this.path} is not valid JSON: ${(err as Error).message}`);
    }
    if (doc?.format !== "vigil-som-feedback" || !Array.isArray(doc.entries)) throw new ModelError(`${this.path} is not a SOM feedback file`);
    for (const [i, e] of doc.entries.entries()) {
      if (typeof e.verdictId !== "string" || !Array.isArray(e.features) || !e.features.every(Number.isFinite))
        throw new ModelError(`${this.path}: entry ${i} is malformed`);
      if (e.features.length !== FEATURE_NAMES.length)
        throw new ModelError(
          `${this.path}: entry ${i} holds ${e.features.length} features, this detector computes ${FEATURE_NAMES.length} (${FEATURE_NAMES.join(", ")}): it was learned under another feature set; remove the file (or the entry) and mark the false alarm again`,
        );
    }
    this.entries = doc.entries;
    return this;
  }

  /** Replays every stored false alarm onto the model. */
  applyTo(model: SomModel, opts: FeedbackOptions): void {
    for (const e of this.entries) model.learnFalseAlarm(e.verdictId, e.features, e.at, opts.rate, opts.radius);
  }

  has(verdictId: string): boolean {
    return this.entries.some((e) => e.verdictId === verdictId);
  }

  add(entry: FeedbackEntry, model: SomModel): void {
    this.entries.push(entry);
    mkdirSync(this.dir, { recursive: true });
    const doc: FeedbackFile = { format: "vigil-som-feedback", version: 1, entries: this.entries };
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(doc, null, 1) + "\n");
    renameSync(tmp, this.path);
    // The current map too, for `vigil som export` and for people to inspect.
    model.save(this.dir);
  }
}

/** The window's raw feature vector from a SOM verdict's evidence, or an error naming what is missing. */
export function featuresFromFeedback(fb: Feedback): number[] | string {
  const evidence = fb.verdict?.som?.features;
  if (!evidence || evidence.length === 0) return "the verdict carries no SOM feature vector";
  const byName = new Map(evidence.map((f) => [f.name, f.value]));
  const out: number[] = [];
  for (const name of FEATURE_NAMES) {
    const v = byName.get(name);
    if (v === undefined || !Number.isFinite(v)) return `feature ${name} is missing from the verdict`;
    out.push(v);
  }
  return out;
}

/** The base model plus the false alarms learned under stateDir. */
export function loadModelWithFeedback(modelPath: string, stateDir: string, opts: FeedbackOptions): { model: SomModel; store: FeedbackStore } {
  const model = SomModel.load(modelPath);
  const store = new FeedbackStore(stateDir).load();
  store.applyTo(model, opts);
  return { model, store };
}
