import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { evaluate, type CaptureEvaluation } from "./eval.js";
import { LAB_DIR } from "./lab.js";
import { LabelsError, loadLabels, type Labels } from "./labels.js";
import type { ReplayOptions } from "./replay.js";

const run = promisify(execFile);
const REPO = resolve(LAB_DIR, "..");
/** The recipes of the shipped default models, each taking a training folder in place of lab/captures/train. */
const PST_RECIPE = join(REPO, "services/pst/scripts/train-default.sh");
const SOM_RECIPE = join(REPO, "services/som/scripts/train-default.mjs");

const stem = (file: string) => file.replace(/\.pcap(ng)?$/, "");

/** One fold: a style's held-out capture judged by models trained without any capture of that style. */
export interface FoldRow {
  style: string;
  /** Training captures of the fold (the whole training folder minus the style's). */
  training_captures: number;
  /** Wall seconds to train the fold's PST and SOM models. */
  train_s: number;
  /** Benign addresses of the held-out capture that got a block rule: must be empty. */
  benign_blocked: string[];
  /** Other addresses blocked (there are none in a benign capture but the victim's clients and itself). */
  others_blocked: string[];
  /** 1 when the held-out capture got any block rule. */
  captures_with_rule: number;
  verdicts: number;
  wall_s: number;
  error?: string;
}

export interface LeaveOneOutOptions extends Pick<ReplayOptions, "nats" | "timeoutMs" | "detectors"> {
  /** The training folder (labels.json and its captures), default lab/captures/train. */
  trainDir?: string;
  /** The held-out folder, one capture per style, default lab/captures/heldout. */
  heldoutDir?: string;
  /** Only these styles (default: every held-out style). */
  styles?: string[];
  /** Folds run at once (each trains, then replays through its own pipeline). */
  concurrency?: number;
  /** Keep each fold's models under this folder (<style>/pst, <style>/som) instead of a temporary one. */
  keepModels?: string;
  onFold?: (row: FoldRow) => void;
}

/**
 * The folds: every style of the held-out folder, each with the training captures that are not of it.
 * A held-out style without a training capture of its own name is refused: its fold would not leave
 * anything out, so it would measure nothing that the whole corpus does not.
 */
export function planFolds(train: Labels, heldout: Labels, only?: string[]): Array<{ style: string; heldout: string; training: Labels }> {
  const styles = heldout.captures.filter((c) => c.kind === "benign").map((c) => stem(c.file));
  const unknown = (only ?? []).filter((s) => !styles.includes(s));
  if (unknown.length) throw new LabelsError(join(heldout.dir, "labels.json"), `no held-out capture of style ${unknown.map((s) => `"${s}"`).join(", ")} (styles: ${styles.join(", ")})`);
  const trained = new Set(train.captures.map((c) => stem(c.file)));
  const folds = [];
  for (const c of heldout.captures) {
    const style = stem(c.file);
    if (c.kind !== "benign" || (only?.length && !only.includes(style))) continue;
    if (!trained.has(style)) throw new LabelsError(join(train.dir, "labels.json"), `no training capture of style "${style}" (${style}.pcap): record it with lab/record.sh train-styles ${style}`);
    folds.push({ style, heldout: c.file, training: { ...train, captures: train.captures.filter((t) => stem(t.file) !== style) } });
  }
  return folds;
}

/** A training folder for a fold: links to its captures and their labels, so that the default recipes read it as they read lab/captures/train. */
function writeFoldTrainDir(dir: string, training: Labels): void {
  mkdirSync(dir, { recursive: true });
  for (const c of training.captures) symlinkSync(resolve(training.dir, c.file), join(dir, c.file));
  const { dir: _dir, ...labels } = training;
  writeFileSync(join(dir, "labels.json"), `${JSON.stringify(labels, null, 2)}\n`);
}

async function trainFold(trainDir: string, modelsDir: string): Promise<void> {
  const opts = { maxBuffer: 64 << 20, env: { ...process.env, VIGIL_LOG_LEVEL: "warn" } };
  try {
    await Promise.all([
      run("bash", [PST_RECIPE, join(modelsDir, "pst"), trainDir], opts),
      run(process.execPath, [SOM_RECIPE, join(modelsDir, "som"), trainDir], opts),
    ]);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    const why = (e.stderr ?? "").split("\n").filter((l) => l && !l.includes("\r")).slice(-3).join("; ");
    throw Object.assign(new Error(`training the fold's models in ${modelsDir} failed: ${why || e.message}`), { code: "VIGIL_ERR_TRAIN" });
  }
}

function foldRow(style: string, training: number, trainS: number, ev: CaptureEvaluation): FoldRow {
  return {
    style,
    training_captures: training,
    train_s: trainS,
    benign_blocked: ev.benign_blocked,
    others_blocked: ev.others_blocked,
    captures_with_rule: ev.rules > 0 ? 1 : 0,
    verdicts: ev.verdicts,
    wall_s: ev.wall_s,
    ...(ev.error ? { error: ev.error } : {}),
  };
}

/**
 * Leave-one-style-out (issue 13): for each benign style, the default PST and SOM models are trained by
 * their own recipes on the training folder minus that style's captures, then the style's held-out
 * capture is replayed through the real pipeline with those models. The rest of the recipes (PST's
 * benign-services recording, SOM's synthetic traffic) stays in every fold: it holds none of the styles.
 */
export async function leaveOneOut(opts: LeaveOneOutOptions = {}): Promise<FoldRow[]> {
  const train = loadLabels(opts.trainDir ?? join(LAB_DIR, "captures", "train"));
  const heldout = loadLabels(opts.heldoutDir ?? join(LAB_DIR, "captures", "heldout"));
  const folds = planFolds(train, heldout, opts.styles);
  const work = mkdtempSync(join(tmpdir(), "vigil-loo-"));
  const out: FoldRow[] = new Array(folds.length);
  let next = 0;
  const worker = async () => {
    while (next < folds.length) {
      const i = next++;
      const f = folds[i]!;
      const modelsDir = opts.keepModels ? join(resolve(opts.keepModels), f.style) : join(work, f.style, "models");
      const t0 = Date.now();
      let row: FoldRow;
      try {
        const trainDir = join(work, f.style, "train");
        writeFoldTrainDir(trainDir, f.training);
        await trainFold(trainDir, modelsDir);
        const trainS = Math.round((Date.now() - t0) / 100) / 10;
        const ev = await evaluate(heldout, { only: [f.heldout], modelsDir, nats: opts.nats, timeoutMs: opts.timeoutMs, detectors: opts.detectors });
        row = foldRow(f.style, f.training.captures.length, trainS, ev.captures[0]!);
      } catch (err) {
        row = { style: f.style, training_captures: f.training.captures.length, train_s: 0, benign_blocked: [], others_blocked: [], captures_with_rule: 0, verdicts: 0, wall_s: 0, error: (err as Error).message };
      }
      out[i] = row;
      opts.onFold?.(row);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 1, folds.length)) }, worker));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

/** Issue 13's goal per fold: the capture replayed, no address of it blocked. */
export function foldMeetsGoal(r: FoldRow): boolean {
  return !r.error && r.benign_blocked.length === 0 && r.others_blocked.length === 0;
}

export function formatFoldTable(rows: FoldRow[]): string {
  const table = [["style (left out)", "training captures", "benign addresses blocked", "captures with a rule", "verdicts", "train s"]];
  for (const r of rows) {
    table.push([
      r.style,
      String(r.training_captures),
      r.error ? "ERROR" : String(r.benign_blocked.length + r.others_blocked.length),
      r.error ? "-" : `${r.captures_with_rule}/1`,
      r.error ? "-" : String(r.verdicts),
      r.train_s.toFixed(1),
    ]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const lines = table.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  const ok = rows.filter((r) => !r.error);
  lines.push(
    "",
    `styles: ${rows.length}; benign addresses blocked: ${ok.reduce((n, r) => n + r.benign_blocked.length + r.others_blocked.length, 0)}; ` +
      `held-out captures with a rule: ${ok.reduce((n, r) => n + r.captures_with_rule, 0)}/${ok.length}` +
      (rows.length > ok.length ? `; ${rows.length - ok.length} fold(s) failed` : ""),
  );
  for (const r of rows) {
    for (const a of [...r.benign_blocked, ...r.others_blocked]) lines.push(`${r.style}: blocked: ${a}`);
    if (r.error) lines.push(`${r.style}: ${r.error.split("\n")[0]}`);
  }
  return lines.join("\n") + "\n";
}
