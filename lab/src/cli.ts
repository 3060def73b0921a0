import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { EXIT, type Command } from "@vigil/lifecycle";
import { evaluate, formatTable } from "./eval.js";
import { formatSetTable, meetsGoal, setRow, type SetRow } from "./eval-sets.js";
import { foldMeetsGoal, formatFoldTable, leaveOneOut } from "./leave-one-out.js";
import { loadSets } from "./sets.js";
import { LAB_SCRIPT, RECORD_SCRIPT } from "./lab.js";
import { loadLabels } from "./labels.js";
import type { Detector } from "./pipeline.js";
import { replayCapture } from "./replay.js";

function usageError(cmd: string, message: string): number {
  process.stderr.write(`vigil ${cmd}: ${message}\n`);
  return EXIT.USAGE;
}

function fail(cmd: string, err: unknown): number {
  const e = err as Error & { code?: string };
  process.stderr.write(`vigil ${cmd}: ${e.message}\n`);
  if (!e.code?.startsWith("VIGIL_ERR_")) process.stderr.write(`${e.stack}\n`);
  return e.code === "VIGIL_ERR_USAGE" ? EXIT.USAGE : e.code === "VIGIL_ERR_NOT_BUILT" || e.code === "VIGIL_ERR_NATS" ? EXIT.UNAVAILABLE : EXIT.FAILURE;
}

function csv(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(",").map((s) => s.trim()).filter(Boolean);
}

function number(cmd: string, name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw Object.assign(new Error(`--${name}: expected a non-negative number, got "${v}"`), { code: "VIGIL_ERR_USAGE" });
  return n;
}

const replayOptions = {
  json: { type: "boolean" },
  models: { type: "string" },
  local: { type: "string" },
  speed: { type: "string" },
  nats: { type: "string" },
  timeout: { type: "string" },
  keep: { type: "boolean" },
  detectors: { type: "string" },
} as const;


function passthrough(script: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(script, args, { stdio: "inherit" });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    child.on("error", (err) => {
      process.stderr.write(`vigil lab: cannot run ${script}: ${err.message}\n`);
      resolve(69);
    });
    child.on("exit", (code, signal) => {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      resolve(code ?? (signal ? 128 + 15 : 1));
    });
  });
}

const labCommand = (sub: string, summary: string, usage?: string): Command => ({
  name: `lab ${sub}`,
  summary,
  usage: usage ?? `usage: vigil lab ${sub}`,
  run: (args) => passthrough(LAB_SCRIPT, [sub, ...args]),
});

const replayCommand: Command = {
  name: "replay",
  summary: "run a capture file through the real pipeline (capture, NATS, PST, SOM, rules in dry-run) and print verdicts and rules",
  usage:
    "usage: vigil replay FILE [--json] [--models DIR] [--local CIDR[,CIDR...]] [--speed N] [--nats URL] [--detectors pst,som] [--timeout S] [--keep]\n\n" +
    "  --json     one JSON object per line in capture-time order: verdicts, rules, then a summary\n" +
    "  --models   DIR/pst and DIR/som replace the packaged default models\n" +
    "  --local    the protected addresses; inferred when absent: per IP family, the address in at\n" +
    "             least half of the packets (the host the capture was made on); without one, the\n" +
    "             private addresses that open conversations, else every address that opens one\n" +
    "  --speed    0 (default) as fast as possible, 1 recorded pace\n" +
    "  --nats     use this NATS server instead of a private one (JetStream needed by rules)\n" +
    "  --detectors  the detector groups to run (default pst,som)\n" +
    "  --keep     keep the work directory (configs, service logs)",
  async run(args) {
    let parsed;
    try {
      parsed = parseArgs({ args, options: replayOptions, allowPositionals: true });
    } catch (err) {
      return usageError("replay", (err as Error).message);
    }
    const { values, positionals } = parsed;
    if (positionals.length !== 1) return usageError("replay", "expected one capture FILE");
    try {
      const res = await replayCapture(positionals[0]!, {
        local: csv(values.local),
        modelsDir: values.models,
        speed: number("replay", "speed", values.speed),
        nats: csv(values.nats),
        timeoutMs: (number("replay", "timeout", values.timeout) ?? 600) * 1000,
        keep: values.keep,
        detectors: csv(values.detectors) as Detector[] | undefined,
      });
      if (values.json) {
        for (const l of res.lines) process.stdout.write(`${JSON.stringify(l)}\n`);
        process.stdout.write(`${JSON.stringify(res.summary)}\n`);
      } else {
        process.stdout.write(`local (${res.localSource}): ${res.local.join(", ")}\n`);
        for (const l of res.lines) {
          const t = new Date(l.ts * 1000).toISOString();
          if (l.type === "verdict") {
            process.stdout.write(`${t}  verdict  ${l.detector.padEnd(4)} ${(l.address || "(aggregate)").padEnd(24)} score ${l.score.toFixed(3)} / ${l.threshold.toFixed(3)}  ${l.label || ""} ${l.summary}\n`);
          } else {
            process.stdout.write(`${t}  rule     drop ${l.address.padEnd(24)} ttl ${l.ttl_s ?? "-"} s  by ${l.detector}: ${l.reason}\n`);
          }
        }
        const s = res.summary;
        process.stdout.write(`${s.frames} frames, ${s.verdicts} verdicts, ${s.rules} rules in ${s.wall_s} s\n`);
      }
      return 0;
    } catch (err) {
      return fail("replay", err);
    }
  },
};

const evalCommand: Command = {
  name: "eval",
  summary: "replay every capture of a labelled set and report detection, false positives and time to detect",
  usage:
    "usage: vigil eval DIR [--labels FILE] [--json] [--models DIR] [--only FILE[,FILE...]] [--detectors pst,som] [--timeout S] [--jobs N]\n" +
    "       vigil eval --sets FILE [--set NAME[,NAME...]] [--json] [--models DIR] [--detectors pst,som] [--timeout S] [--jobs N]\n" +
    "       vigil eval --leave-one-out [--train DIR] [--heldout DIR] [--style S[,S...]] [--keep-models DIR] [--json] [--jobs N]\n\n" +
    "  DIR holds the captures and labels.json (see lab/README.md); --labels names another labels file\n" +
    "  whose captures are looked up in DIR. Prints a table, then the evaluation as one JSON line\n" +
    "  (--json: only the JSON). --sets: every set of a sets file (lab/captures/sets.json), one row\n" +
    "  each (attackers blocked, benign addresses blocked, benign captures with a rule, median time\n" +
    "  to block); a set whose captures are absent is reported as skipped. --jobs: captures replayed\n" +
    "  at once, each through its own pipeline (default 1).\n" +
    "  --leave-one-out: for each benign style of --heldout (lab/captures/heldout), the default PST and\n" +
    "  SOM models are trained by their recipes on --train (lab/captures/train) minus that style's\n" +
    "  capture, and judge the style's held-out capture; one row per style (--jobs: folds at once).\n" +
    "  Exit 1 when an attacker is missed or an innocent address is blocked.",
  async run(args) {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        options: {
          json: { type: "boolean" },
          models: { type: "string" },
          labels: { type: "string" },
          only: { type: "string" },
          timeout: { type: "string" },
          nats: { type: "string" },
          detectors: { type: "string" },
          sets: { type: "string" },
          set: { type: "string" },
          jobs: { type: "string" },
          "leave-one-out": { type: "boolean" },
          train: { type: "string" },
          heldout: { type: "string" },
          style: { type: "string" },
          "keep-models": { type: "string" },
        },
        allowPositionals: true,
      });
    } catch (err) {
      return usageError("eval", (err as Error).message);
    }
    const { values, positionals } = parsed;
    if (values["leave-one-out"]) {
      if (positionals.length || values.sets || values.models) return usageError("eval", "--leave-one-out trains its own models: it takes no DIR, --sets or --models");
      try {
        const rows = await leaveOneOut({
          trainDir: values.train,
          heldoutDir: values.heldout,
          styles: csv(values.style),
          keepModels: values["keep-models"],
          nats: csv(values.nats),
          timeoutMs: (number("eval", "timeout", values.timeout) ?? 600) * 1000,
          concurrency: number("eval", "jobs", values.jobs) ?? 1,
          detectors: csv(values.detectors) as Detector[] | undefined,
          onFold: values.json ? undefined : (r) => process.stderr.write(`vigil eval: leave out ${r.style}: ${r.error ? `ERROR: ${r.error.split("\n")[0]}` : `trained in ${r.train_s} s, ${r.verdicts} verdicts, ${r.captures_with_rule ? "a rule" : "no rule"}`}\n`),
        });
        if (!values.json) process.stdout.write(formatFoldTable(rows));
        process.stdout.write(`${JSON.stringify({ folds: rows })}\n`);
        return rows.every(foldMeetsGoal) ? 0 : 1;
      } catch (err) {
        return fail("eval", err);
      }
    }
    if (values.sets) {
      if (positionals.length) return usageError("eval", "--sets takes no DIR");
      try {
        const rows: SetRow[] = [];
        for (const set of loadSets(values.sets, csv(values.set))) {
          if (set.missing) {
            rows.push(setRow(set, null));
            continue;
          }
          const ev = await evaluate(set.labels, {
            modelsDir: values.models,
            nats: csv(values.nats),
            timeoutMs: (number("eval", "timeout", values.timeout) ?? 600) * 1000,
            concurrency: number("eval", "jobs", values.jobs) ?? 1,
            detectors: csv(values.detectors) as Detector[] | undefined,
            onCapture: values.json ? undefined : (c) => process.stderr.write(`vigil eval: ${set.name}: ${c.file}: ${c.error ? `ERROR: ${c.error.split("\n")[0]}` : `${c.verdicts} verdicts, ${c.rules} rules`} (${c.wall_s} s)\n`),
          });
          rows.push(setRow(set, ev));
        }
        if (!values.json) process.stdout.write(formatSetTable(rows));
        process.stdout.write(`${JSON.stringify({ sets: rows })}\n`);
        return rows.every(meetsGoal) ? 0 : 1;
      } catch (err) {
        return fail("eval", err);
      }
    }
    if (positionals.length !== 1) return usageError("eval", "expected one DIR");
    try {
      const labels = loadLabels(values.labels ?? positionals[0]!);
      if (values.labels) labels.dir = positionals[0]!;
      const ev = await evaluate(labels, {
        modelsDir: values.models,
        only: csv(values.only),
        nats: csv(values.nats),
        timeoutMs: (number("eval", "timeout", values.timeout) ?? 600) * 1000,
        concurrency: number("eval", "jobs", values.jobs) ?? 1,
        detectors: csv(values.detectors) as Detector[] | undefined,
        onCapture: values.json ? undefined : (c) => process.stderr.write(`vigil eval: ${c.file}: ${c.error ? `ERROR: ${c.error.split("\n")[0]}` : `${c.verdicts} verdicts, ${c.rules} rules`} (${c.wall_s} s)\n`),
      });
      if (!values.json) process.stdout.write(formatTable(ev));
      process.stdout.write(`${JSON.stringify(ev)}\n`);
      const s = ev.summary;
      return s.failed === 0 && s.attackers_blocked === s.attackers && s.false_positive_blocks === 0 ? 0 : 1;
    } catch (err) {
      return fail("eval", err);
    }
  },
};

export const commands: Command[] = [
  replayCommand,
  evalCommand,
  labCommand("up", "build the attack lab (network namespaces, victim services); needs root"),
  labCommand("down", "stop the lab's processes and delete its namespaces"),
  labCommand("status", "show the lab's namespaces and services"),
  labCommand("exec", "run a command in a lab host's namespace", "usage: vigil lab exec HOST CMD... (HOST: victim c1 c2 c3 atk atk2 sw)"),
  labCommand("benign", "run the benign traffic generators", "usage: vigil lab benign SECONDS [SEED]"),
  labCommand("generate", "run one benign style (a client kind against one server implementation)", "usage: vigil lab generate STYLE SECONDS [SEED] (vigil lab generators lists them)"),
  labCommand("generators", "list the lab's benign styles"),
  labCommand("attack", "run one bounded attack from the attacker", "usage: vigil lab attack NAME (vigil lab attacks lists them)"),
  labCommand("attacks", "list the lab's attacks"),
  {
    name: "lab record",
    summary: "re-record the labelled captures under lab/captures, or one capture per benign style or attack into DIR",
    usage: "usage: vigil lab record [train|eval|NAME...] | train-styles [STYLE...] | styles DIR [STYLE...] | attacks DIR [ATTACK...]",
    run: (args) => passthrough(RECORD_SCRIPT, args),
  },
];
