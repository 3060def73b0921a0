import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@vigil/lifecycle";
import type { Registry } from "@vigil/metrics";
import { ModelReloadReport, type ReloadResult } from "@vigil/shards";
import { stateDirOf, type PstConfig } from "./config.js";
import { MODEL_SUFFIX, ModelSet, readModelDir, writeModelFile } from "./model.js";
import type { PstService } from "./service.js";

// `vigil reload` (SIGHUP) for the PST detector: models trained into
// pst.modelsDir (or a new pst.modelsDir in the configuration) replace the
// running ones without a restart. The connection table, windows and pending
// verdicts stay: only the next symbols are scored by the new trees.

/** SHA-256 over a model directory's *.pst.json files (names and bytes, by name): what "the same models" means. */
export function hashModelDir(dir: string): string {
  const hash = createHash("sha256");
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(MODEL_SUFFIX)).sort();
  } catch {
    return "";
  }
  for (const n of names) {
    hash.update(`${n}\0`);
    try {
      hash.update(readFileSync(join(dir, n)));
    } catch {
      hash.update("unreadable");
    }
    hash.update("\0");
  }
  return hash.digest("hex");
}

function hasModels(dir: string): boolean {
  try {
    return readdirSync(dir).some((n) => n.endsWith(MODEL_SUFFIX));
  } catch {
    return false;
  }
}

/**
 * Watches nothing: on reload() it re-reads the configuration and compares the
 * configured model directory with the one it last took models from. Changed
 * models are read and checked in full before anything is swapped; the swap is
 * one synchronous step between two batches, so no frame meets half a model
 * set. A directory that fails to load is refused and the running models stay.
 */
export class PstModelReloader {
  private source: { dir: string; sha256: string };
  private readonly report: ModelReloadReport;

  constructor(
    private readonly service: PstService,
    private readonly opts: { config: PstConfig; loadConfig: () => PstConfig; log: Logger; registry: Registry },
  ) {
    const dir = opts.config.modelsDir;
    this.source = { dir, sha256: hashModelDir(dir) };
    const stateModels = join(stateDirOf(opts.config), "models");
    this.report = new ModelReloadReport(
      "pst",
      {
        info: "The models in use (1 per model): their id (name@version) and the SHA-256 of the model directory they were loaded from",
        reloads: "Model reloads on SIGHUP (vigil reload), by result: loaded, unchanged, refused (the running models stay)",
      },
      opts.registry,
      opts.log,
    );
    // At start the state directory's models, when there are any, were loaded instead (loadModels).
    this.describe(hasModels(stateModels) ? hashModelDir(stateModels) : this.source.sha256);
  }

  private describe(sha256: string): void {
    this.report.describe([...this.service.modelSet.models.values()].map((m) => m.id), sha256);
  }

  reload(): ReloadResult {
    const { log } = this.opts;
    const done = (r: ReloadResult, fields?: Record<string, unknown>) => this.report.done(r, fields);
    let cfg: PstConfig;
    try {
      cfg = this.opts.loadConfig();
    } catch (err) {
      return this.report.configRefused(err, "models");
    }
    const dir = cfg.modelsDir;
    const sha256 = hashModelDir(dir);
    if (dir === this.source.dir && sha256 === this.source.sha256)
      return done({ result: "unchanged", message: `models unchanged in ${dir}: the running models stay` }, { dir, sha256 });
    const running = this.service.modelSet;
    let next: ModelSet;
    try {
      const models = readModelDir(dir);
      // The connections in the table carry class indexes of the running map: keep it (a new class list needs a restart).
      next = new ModelSet(running.classMap, models);
    } catch (err) {
      return done({ result: "refused", message: `model reload refused: ${(err as Error).message}; the running models stay` }, { dir });
    }
    const previous = [...running.models.values()].map((m) => m.id);
    this.service.useModels(next);
    this.source = { dir, sha256 };
    this.describe(sha256);
    const models = [...next.models.values()].map((m) => `${m.id} threshold ${m.threshold.value.toFixed(3)}`);
    this.persist(next, cfg);
    if (JSON.stringify(cfg.serviceClasses) !== JSON.stringify(this.opts.config.serviceClasses))
      log.warn("pst.serviceClasses changed: the new class list takes effect on restart; the running one stays");
    return done({ result: "loaded", message: `models reloaded from ${dir}` }, { dir, sha256, models, previous });
  }

  /**
   * The state directory's models, when it has any, win at start (they carry what feedback taught): replace
   * them with the new set, so a restart starts from what runs now.
   */
  private persist(set: ModelSet, cfg: PstConfig): void {
    const stateModels = join(stateDirOf(cfg), "models");
    try {
      // None there: a restart reads pst.modelsDir, which is what runs now.
      if (!hasModels(stateModels)) return;
      for (const m of set.models.values()) writeModelFile(stateModels, m);
      for (const n of readdirSync(stateModels)) if (n.endsWith(MODEL_SUFFIX) && !set.models.has(n.slice(0, -MODEL_SUFFIX.length))) rmSync(join(stateModels, n));
    } catch (err) {
      this.opts.log.error({ err: (err as Error).message, dir: stateModels }, "reloaded models not saved to the state directory: a restart goes back to the models there");
    }
  }
}
