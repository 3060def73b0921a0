import { writeFileSync } from "node:fs";
import { EXIT, parseCommandArgs, progressBar, reportFatal, UserError, type Command, type CommandOptions } from "@vigil/lifecycle";
import { MAX_SHARD_COUNT, MAX_SHED_LEVEL } from "@vigil/config";
import { keepOfLevel } from "@vigil/shards";
import { Verdict } from "@vigil/proto";
import { detectorOptionsOf, loadPstConfig } from "./config.js";
import { Detector } from "./detector.js";
import { exportModelsJson, ModelSet, OTHER_CLASS, readModelDir, ServiceClassMap, writeModelFile, type PstModel, type ServiceClass } from "./model.js";
import { readCaptureRecords } from "./pcap.js";
import { DEFAULT_PST_PARAMS, exportTree, treeToDot } from "./pst.js";
import { loadModels } from "./service.js";
import { collectSequences, isHeldOut, splitByShard, trainModels, type CollectedSequences } from "./training.js";

type Values = Record<string, string | boolean | Array<string | boolean> | undefined>;

function parse(args: string[], options: CommandOptions, usage: string): { values: Values } {
  return { values: parseCommandArgs(args, options, { usage }) as Values };
}

function num(value: string | undefined, name: string, fallback: number, check: (n: number) => boolean, what: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new UserError(`--${name} ${value}: must be ${what}`, "VIGIL_ERR_USAGE", EXIT.USAGE);
  return n;
}

function config() {
  return loadPstConfig().pst;
}

const TRAIN_USAGE =
  "usage: vigil train pst --pcap FILE [--pcap FILE...] --out DIR [--holdout 0.2] [--percentile 99.5] [--max-depth 4] [--p-min 0.001]\n" +
  "                       [--gamma-min 0.0001] [--ratio 1.05] [--min-symbols 8] [--min-class-sequences 100] [--suspicion-percentile 95]\n" +
  "                       [--local CIDR...] [--quiet]";

/**
 * The service classes that got no model of their own, each in one line: how
 * many connections it had, the minimum, and what scores its ports instead.
 * Without this, a class with too little data vanishes from the output silently.
 */
export function thinClasses(data: CollectedSequences, models: PstModel[], classes: ServiceClass[], holdout: number, minClassSequences: number): string[] {
  const seen = new Map<string, { all: number; train: number }>();
  data.sequences.forEach((s, i) => {
    const n = seen.get(s.serviceClass) ?? { all: 0, train: 0 };
    n.all++;
    if (!isHeldOut(i, holdout)) n.train++;
    seen.set(s.serviceClass, n);
  });
  const trained = new Set(models.map((m) => m.name));
  return classes
    .filter((c) => c.name !== OTHER_CLASS && !trained.has(c.name))
    .map((c) => {
      const n = seen.get(c.name) ?? { all: 0, train: 0 };
      const ports = c.ports.length ? `port${c.ports.length > 1 ? "s" : ""} ${c.ports.join(",")}` : "its ports";
      return `service class ${c.name}: ${n.all} connections (${n.train} for training after the hold-out), below the minimum of ${minClassSequences} (--min-class-sequences): no ${c.name} model written; ${ports} will be scored by the "${OTHER_CLASS}" model. Record more ${c.name} traffic, or lower --min-class-sequences.`;
    });
}

export const trainCommand: Command = {
  name: "train pst",
  summary: "learn PST models (one per service class) from benign captures",
  usage: TRAIN_USAGE,
  async run(args) {
    try {
      const { values } = parse(
        args,
        {
          pcap: { type: "string", multiple: true },
          out: { type: "string" },
          holdout: { type: "string" },
          percentile: { type: "string" },
          "suspicion-percentile": { type: "string" },
          "max-depth": { type: "string" },
          "p-min": { type: "string" },
          "gamma-min": { type: "string" },
          ratio: { type: "string" },
          "min-symbols": { type: "string" },
          "min-class-sequences": { type: "string" },
          local: { type: "string", multiple: true },
          quiet: { type: "boolean" },
        },
        TRAIN_USAGE,
      );
      const files = (values.pcap as string[] | undefined) ?? [];
      if (!files.length) throw new UserError(`--pcap is required\n${TRAIN_USAGE}`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      if (!values.out) throw new UserError(`--out is required\n${TRAIN_USAGE}`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      const cfg = config();
      const params = {
        maxDepth: num(values["max-depth"] as string, "max-depth", DEFAULT_PST_PARAMS.maxDepth, (n) => Number.isInteger(n) && n >= 0 && n <= 15, "an integer 0..15"),
        pMin: num(values["p-min"] as string, "p-min", DEFAULT_PST_PARAMS.pMin, (n) => n > 0 && n < 1, "in (0, 1)"),
        gammaMin: num(values["gamma-min"] as string, "gamma-min", DEFAULT_PST_PARAMS.gammaMin, (n) => n > 0 && n < 1 / 513, "in (0, 1/513)"),
        alpha: DEFAULT_PST_PARAMS.alpha,
        ratio: num(values.ratio as string, "ratio", DEFAULT_PST_PARAMS.ratio, (n) => n > 1, "> 1"),
      };
      const minSymbols = num(values["min-symbols"] as string, "min-symbols", cfg.minSymbols, (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1");
      const data = await collectSequences(
        files,
        { classes: cfg.serviceClasses, local: values.local as string[] | undefined, detector: { idleTimeout: cfg.idleTimeoutSeconds, linger: cfg.lingerSeconds } },
        values.quiet ? undefined : progressBar("reading"),
      );
      if (data.sequences.length === 0) throw new UserError(`no TCP connections in ${files.join(", ")}`, "VIGIL_ERR_PST_TRAIN");
      const holdout = num(values.holdout as string, "holdout", 0.2, (n) => n >= 0 && n < 1, "in [0, 1)");
      const minClassSequences = num(values["min-class-sequences"] as string, "min-class-sequences", 100, (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1");
      const models = trainModels(data, {
        params,
        classes: cfg.serviceClasses,
        holdout,
        percentile: num(values.percentile as string, "percentile", 99.5, (n) => n > 0 && n <= 100, "in (0, 100]"),
        suspicionPercentile: num(values["suspicion-percentile"] as string, "suspicion-percentile", 95, (n) => n > 0 && n <= 100, "in (0, 100]"),
        minSymbols,
        minClassSequences,
      });
      for (const w of thinClasses(data, models, cfg.serviceClasses, holdout, minClassSequences)) process.stderr.write(`vigil train pst: warning: ${w}\n`);
      for (const m of models) {
        const path = writeModelFile(values.out as string, m);
        process.stdout.write(
          `${m.id}: ${m.training.sequences} sequences (${m.training.heldOut} held out), ${m.compiled.nodes.length} contexts, threshold ${m.threshold.value.toFixed(3)} (p${m.threshold.percentile}), suspicion ${m.threshold.suspicion.toFixed(3)} (p${m.threshold.suspicionPercentile}) nats/symbol -> ${path}\n`,
        );
      }
      process.stdout.write(`training data sha256 ${data.sha256}\n`);
      return EXIT.OK;
    } catch (err) {
      return reportFatal("vigil train pst", err);
    }
  },
};

const EXPORT_USAGE = "usage: vigil pst export [--format dot|json] [--models DIR] [--model NAME] [--out FILE]";

export const exportCommand: Command = {
  name: "pst export",
  summary: "export the PST models' trees as Graphviz DOT or JSON",
  usage: EXPORT_USAGE,
  async run(args) {
    try {
      const { values } = parse(args, { format: { type: "string" }, models: { type: "string" }, model: { type: "string" }, out: { type: "string" } }, EXPORT_USAGE);
      const format = (values.format as string | undefined) ?? "json";
      if (format !== "dot" && format !== "json") throw new UserError(`--format ${format}: expected dot or json`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      const models = values.models ? readModelDir(values.models as string) : loadModels(config()).models;
      let list = [...models.values()];
      if (values.model) {
        list = list.filter((m) => m.name === values.model);
        if (!list.length) throw new UserError(`no model "${values.model}" (have ${[...models.keys()].join(", ")})`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      }
      const text =
        format === "dot"
          ? list.map((m) => treeToDot(m.id, exportTree(m.compiled))).join("\n")
          : JSON.stringify(exportModelsJson(list), null, 2) + "\n";
      if (values.out) writeFileSync(values.out as string, text);
      else process.stdout.write(text);
      return EXIT.OK;
    } catch (err) {
      return reportFatal("vigil pst export", err);
    }
  },
};

const SCAN_USAGE = "usage: vigil pst scan --pcap FILE [--pcap FILE...] [--models DIR] [--local CIDR...] [--shards 16] [--shed 0..4] [--json]";

/** Runs the detector offline over captures, shard by shard as a deployment would, and prints the verdicts. */
export async function scanCaptures(
  files: string[],
  opts: { modelsDir?: string; local?: string[]; shardCount?: number; /** Load shedding forced at this level (0..4) as under overload. */ shedLevel?: number },
): Promise<{ verdicts: Verdict[]; frames: number; connections: number; anomalous: number; segmentsShed: number; connectionsShed: number }> {
  const cfg = config();
  const models = opts.modelsDir ? readModelDir(opts.modelsDir) : loadModels(cfg).models;
  const shardCount = opts.shardCount ?? cfg.shardCount;
  const verdicts: Verdict[] = [];
  let frames = 0;
  let connections = 0;
  let anomalous = 0;
  let segmentsShed = 0;
  let connectionsShed = 0;
  const keep = keepOfLevel(opts.shedLevel ?? 0);
  for (const file of files) {
    const det = new Detector(
      new ModelSet(new ServiceClassMap(cfg.serviceClasses), models),
      { ...detectorOptionsOf(cfg), shardCount, maxConnections: Math.min(cfg.maxConnections, 1 << 20) },
      { onVerdict: (v) => verdicts.push(v) },
    );
    const source = `scan:${file}`;
    for await (const batch of readCaptureRecords(file, { local: opts.local })) {
      const shards = splitByShard(batch, shardCount);
      shards.forEach((recs, s) => {
        if (recs.byteLength) frames += det.processRecords(s, source, recs, keep);
      });
    }
    for (let s = 0; s < shardCount; s++) det.endOfStream(s);
    connections += det.judgedAnomalous + det.judgedNormal;
    anomalous += det.judgedAnomalous;
    segmentsShed += det.table.segmentsShed;
    connectionsShed += det.table.connectionsShed;
  }
  return { verdicts, frames, connections, anomalous, segmentsShed, connectionsShed };
}

export const scanCommand: Command = {
  name: "pst scan",
  summary: "run the PST detector offline over captures and print its verdicts",
  usage: SCAN_USAGE,
  async run(args) {
    try {
      const { values } = parse(
        args,
        { pcap: { type: "string", multiple: true }, models: { type: "string" }, local: { type: "string", multiple: true }, shards: { type: "string" }, shed: { type: "string" }, json: { type: "boolean" } },
        SCAN_USAGE,
      );
      const files = (values.pcap as string[] | undefined) ?? [];
      if (!files.length) throw new UserError(`--pcap is required\n${SCAN_USAGE}`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      const r = await scanCaptures(files, {
        modelsDir: values.models as string | undefined,
        local: values.local as string[] | undefined,
        shardCount: num(values.shards as string, "shards", config().shardCount, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_SHARD_COUNT, `an integer 1..${MAX_SHARD_COUNT}`),
        shedLevel: num(values.shed as string, "shed", 0, (n) => Number.isInteger(n) && n >= 0 && n <= MAX_SHED_LEVEL, `an integer 0..${MAX_SHED_LEVEL}`),
      });
      if (values.json) for (const v of r.verdicts) process.stdout.write(JSON.stringify(Verdict.toJSON(v)) + "\n");
      else {
        for (const v of r.verdicts) process.stdout.write(`${v.id} ${v.summary}\n`);
        const shed = r.segmentsShed ? `, ${r.segmentsShed} segments shed (${r.connectionsShed} connections not judged)` : "";
        process.stdout.write(`${r.frames} frames, ${r.connections} connections judged, ${r.anomalous} anomalous, ${r.verdicts.length} verdicts${shed}\n`);
      }
      return EXIT.OK;
    } catch (err) {
      return reportFatal("vigil pst scan", err);
    }
  },
};

export const commands: Command[] = [trainCommand, exportCommand, scanCommand];
