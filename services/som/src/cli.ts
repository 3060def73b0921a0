import { existsSync, writeFileSync } from "node:fs";
import { EXIT, parseCommandArgs, progressBar, UserError, type Command, type CommandOptions } from "@vigil/lifecycle";
import { Verdict } from "@vigil/proto";
import { DEFAULT_MODEL_DIR, stateDirOf } from "./config.js";
import { WindowPipeline } from "./detector.js";
import { FeedbackStore, loadModelWithFeedback } from "./feedback.js";
import { MODEL_FILE, type SomModel, type TrainingParameters } from "./model.js";
import { DEFAULT_WINDOW, loadRecordReader, trainFromCaptures } from "./training.js";

function parse<const T extends CommandOptions>(command: string, args: string[], options: T) {
  return parseCommandArgs(args, options, { command });
}

function num(cmd: string, name: string, v: string | undefined, min: number, max: number, int = true): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n)))
    throw new UserError(`vigil ${cmd}: --${name} must be ${int ? "an integer" : "a number"} in ${min}..${max}, got "${v}"`, "VIGIL_ERR_USAGE", EXIT.USAGE);
  return n;
}

function splitList(v: string[] | string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
}

const TRAIN_USAGE = `usage: vigil train som --pcap FILE... --out DIR [--attack-pcap FILE:LABEL ...] [options]

  --pcap FILE            benign capture (repeat for several)
  --attack-pcap FILE:LABEL  labelled attack capture: its anomalous windows label the units they hit
  --out DIR              where to write ${MODEL_FILE}
  --local CIDR[,CIDR]    protected networks, for frame directions
  --feedback FILE        a state directory's feedback.json: its false alarms join the benign windows
  --name NAME            model name (default "custom"); --model-version N (default 1)
  --rows N --cols N      map size (default 10 x 10); --topology hexagonal|rectangular
  --epochs N --seed N    training passes (default 20) and PRNG seed (default 1)
  --window-ms MS         window length (default ${DEFAULT_WINDOW.windowMs}); --max-packets N (default ${DEFAULT_WINDOW.maxPackets})
  --percentile P         held-out percentile for the threshold (default 99.5); --margin F (default 1.5)`;

/** Windows per map unit below which units are trained on too few windows to mean anything. */
const MIN_WINDOWS_PER_UNIT = 5;

/**
 * What the training data was too thin for, each in one line with the counts
 * seen and the minimum: the model is written anyway, but its threshold or map
 * is then a guess the operator should know about.
 */
export function thinData(model: SomModel): string[] {
  const t = model.json.training;
  const out: string[] = [];
  const units = model.json.map.rows * model.json.map.cols;
  if (t.trainWindows < units * MIN_WINDOWS_PER_UNIT)
    out.push(
      `som: ${t.trainWindows} training windows for a ${model.json.map.rows} x ${model.json.map.cols} map (${units} units), below the minimum of ${units * MIN_WINDOWS_PER_UNIT} (${MIN_WINDOWS_PER_UNIT} per unit): record longer, or use a smaller map (--rows, --cols)`,
    );
  const needHeld = t.percentile < 100 ? Math.ceil(1 / (1 - t.percentile / 100)) : 0;
  if (t.heldOutWindows < needHeld)
    out.push(
      `som: ${t.heldOutWindows} held-out windows calibrate the threshold at p${t.percentile}, below the minimum of ${needHeld} for that percentile to be more than the largest one seen: record longer, or lower --percentile`,
    );
  return out;
}

const trainCommand: Command = {
  name: "train som",
  summary: "train a SOM detector model from benign captures",
  usage: TRAIN_USAGE,
  async run(args) {
    const v = parse("train som", args, {
      pcap: { type: "string", multiple: true },
      "attack-pcap": { type: "string", multiple: true },
      out: { type: "string" },
      local: { type: "string", multiple: true },
      feedback: { type: "string" },
      name: { type: "string" },
      "model-version": { type: "string" },
      rows: { type: "string" },
      cols: { type: "string" },
      topology: { type: "string" },
      epochs: { type: "string" },
      seed: { type: "string" },
      "window-ms": { type: "string" },
      "max-packets": { type: "string" },
      percentile: { type: "string" },
      margin: { type: "string" },
    });
    const c = "train som";
    if (!v.pcap?.length) throw new UserError(`vigil ${c}: at least one --pcap FILE is required\n\n${TRAIN_USAGE}`, "VIGIL_ERR_USAGE", EXIT.USAGE);
    if (!v.out) throw new UserError(`vigil ${c}: --out DIR is required`, "VIGIL_ERR_USAGE", EXIT.USAGE);
    for (const f of v.pcap) if (!existsSync(f)) throw new UserError(`vigil ${c}: capture ${f} does not exist`);
    const attacks = (v["attack-pcap"] ?? []).map((spec) => {
      const i = spec.lastIndexOf(":");
      if (i <= 0 || i === spec.length - 1) throw new UserError(`vigil ${c}: --attack-pcap wants FILE:LABEL, got "${spec}"`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      const file = spec.slice(0, i);
      if (!existsSync(file)) throw new UserError(`vigil ${c}: capture ${file} does not exist`);
      return { file, label: spec.slice(i + 1) };
    });
    if (v.topology && v.topology !== "hexagonal" && v.topology !== "rectangular")
      throw new UserError(`vigil ${c}: --topology must be hexagonal or rectangular, got "${v.topology}"`, "VIGIL_ERR_USAGE", EXIT.USAGE);
    const params: Partial<TrainingParameters> = {};
    const set = <K extends keyof TrainingParameters>(k: K, val: TrainingParameters[K] | undefined) => {
      if (val !== undefined) params[k] = val;
    };
    set("rows", num(c, "rows", v.rows, 1, 100));
    set("cols", num(c, "cols", v.cols, 1, 100));
    set("topology", v.topology as TrainingParameters["topology"] | undefined);
    set("epochs", num(c, "epochs", v.epochs, 1, 10000));
    set("seed", num(c, "seed", v.seed, 0, 2 ** 32 - 1));
    set("percentile", num(c, "percentile", v.percentile, 50, 100, false));
    set("margin", num(c, "margin", v.margin, 0.1, 100, false));
    const window = {
      windowMs: num(c, "window-ms", v["window-ms"], 1, 3_600_000) ?? DEFAULT_WINDOW.windowMs,
      maxPackets: num(c, "max-packets", v["max-packets"], 1, 16384) ?? DEFAULT_WINDOW.maxPackets,
    };
    const extra = v.feedback ? new FeedbackStore(v.feedback.replace(/\/feedback\.json$/, "")).load().entries.map((e) => e.features) : [];
    const model = await trainFromCaptures({
      name: v.name ?? "custom",
      version: num(c, "model-version", v["model-version"], 1, 1e9),
      benign: v.pcap,
      attacks,
      extraBenign: extra,
      extraDescription: extra.length ? `feedback:${extra.length}` : undefined,
      local: splitList(v.local),
      window,
      params,
      progress: progressBar("train som"),
    });
    const path = model.save(v.out);
    for (const w of thinData(model)) process.stderr.write(`vigil train som: warning: ${w}\n`);
    process.stdout.write(
      `${path}: ${model.id}, threshold ${model.threshold.toFixed(4)} (p${model.json.training.percentile} of ${model.json.training.heldOutWindows} held-out windows x ${model.json.training.margin}), data sha256 ${model.json.training.dataSha256}\n`,
    );
    return EXIT.OK;
  },
};

function resolveModel(v: { model?: string; "state-dir"?: string }): { modelPath: string; stateDir: string } {
  const stateDir = v["state-dir"] ?? stateDirOf({});
  return { modelPath: v.model ?? DEFAULT_MODEL_DIR, stateDir };
}

const exportCommand: Command = {
  name: "som export",
  summary: "export the SOM's U-matrix, hit counts and labels as JSON (for the web console)",
  usage: "usage: vigil som export [--model DIR] [--state-dir DIR] [--out FILE]\n\nThe model is the base model plus the false alarms learned under the state directory.",
  async run(args) {
    const v = parse("som export", args, { model: { type: "string" }, "state-dir": { type: "string" }, out: { type: "string" } });
    const { modelPath, stateDir } = resolveModel(v);
    const { model } = loadModelWithFeedback(modelPath, stateDir, { rate: 0.1, radius: 1 });
    const text = JSON.stringify(model.exportMap(), null, 1) + "\n";
    if (v.out) writeFileSync(v.out, text);
    else process.stdout.write(text);
    return EXIT.OK;
  },
};

const scoreCommand: Command = {
  name: "som score",
  summary: "score a capture offline with a SOM model and print the verdicts it would publish",
  usage: "usage: vigil som score --pcap FILE [--model DIR] [--state-dir DIR] [--local CIDR,...] [--json]",
  async run(args) {
    const v = parse("som score", args, {
      pcap: { type: "string" },
      model: { type: "string" },
      "state-dir": { type: "string" },
      local: { type: "string", multiple: true },
      json: { type: "boolean" },
    });
    if (!v.pcap) throw new UserError("vigil som score: --pcap FILE is required", "VIGIL_ERR_USAGE", EXIT.USAGE);
    const { modelPath, stateDir } = resolveModel(v);
    const { model } = loadModelWithFeedback(modelPath, stateDir, { rate: 0.1, radius: 1 });
    const verdicts: Verdict[] = [];
    let anomalous = 0;
    const p = new WindowPipeline({
      model,
      sourceId: `score:${v.pcap}`,
      instance: "offline",
      hooks: { onVerdict: (x) => verdicts.push(x), onWindow: (w) => void (w.anomalous && anomalous++) },
    });
    const reader = await loadRecordReader();
    for await (const records of reader(v.pcap, { local: splitList(v.local) })) p.ingestRecords(records);
    p.finish();
    for (const x of verdicts)
      process.stdout.write(
        v.json
          ? JSON.stringify(Verdict.toJSON(x)) + "\n"
          : `${x.aggregate ? "AGGREGATE" : x.address} -> ${x.localAddress} [${x.localPorts.join(",")}] score ${x.score} / ${x.threshold} ${x.label}: ${x.summary}\n`,
      );
    process.stderr.write(
      `${v.pcap}: ${p.windower.frames} frames (${p.windower.malformed} malformed), ${p.windows} windows, ${anomalous} anomalous, ${verdicts.length} verdicts (${verdicts.filter((x) => x.aggregate).length} aggregate) with ${model.id}\n`,
    );
    return EXIT.OK;
  },
};

export const commands: Command[] = [trainCommand, exportCommand, scoreCommand];
