import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@vigil/lifecycle";
import type { Registry } from "@vigil/metrics";
import { ModelReloadReport, type ReloadResult } from "@vigil/shards";
import { stateDirOf, type SomConfig } from "./config.js";
import { loadModelWithFeedback } from "./feedback.js";
import { MODEL_FILE } from "./model.js";
import type { SomService } from "./service.js";

// `vigil reload` (SIGHUP) for the SOM detector: a model trained into som.model
// (or a new som.model in the configuration) replaces the running one without a
// restart. The false alarms learned so far are replayed onto it, as at start;
// the open windows of every source stay and are judged by the new map.

/** The model file a som.model setting names (a directory holds som-model.json). */
export function modelFileOf(pathOrDir: string): string {
  return pathOrDir.endsWith(".json") ? pathOrDir : join(pathOrDir, MODEL_FILE);
}

/** SHA-256 of the model file's bytes; "" when it cannot be read. */
export function hashModelFile(pathOrDir: string): string {
  try {
    return createHash("sha256").update(readFileSync(modelFileOf(pathOrDir))).digest("hex");
  } catch {
    return "";
  }
}

/**
 * On reload() re-reads the configuration and compares the configured model
 * file with the one running. A changed model is loaded and checked in full
 * (and the stored false alarms replayed) before the one synchronous swap; a
 * model that fails, or that cuts windows differently from the running one
 * (the open windows would not fit), is refused and the running model stays.
 */
export class SomModelReloader {
  private source: { path: string; sha256: string };
  private readonly report: ModelReloadReport;

  constructor(
    private readonly service: SomService,
    private readonly opts: { config: SomConfig; loadConfig: () => SomConfig; log: Logger; registry: Registry },
  ) {
    this.source = { path: opts.config.model, sha256: hashModelFile(opts.config.model) };
    this.report = new ModelReloadReport(
      "som",
      {
        info: "The model in use (1): its id (name@version) and the SHA-256 of the model file it was loaded from",
        reloads: "Model reloads on SIGHUP (vigil reload), by result: loaded, unchanged, refused (the running model stays)",
      },
      opts.registry,
      opts.log,
    );
    this.describe();
  }

  private describe(): void {
    this.report.describe([this.service.model.id], this.source.sha256);
  }

  reload(): ReloadResult {
    const done = (r: ReloadResult, fields?: Record<string, unknown>) => this.report.done(r, fields);
    let cfg: SomConfig;
    try {
      cfg = this.opts.loadConfig();
    } catch (err) {
      return this.report.configRefused(err, "model");
    }
    const path = cfg.model;
    const sha256 = hashModelFile(path);
    if (path === this.source.path && sha256 === this.source.sha256)
      return done({ result: "unchanged", message: `model unchanged in ${modelFileOf(path)}: the running model stays` }, { path, sha256 });
    const running = this.service.model;
    let next;
    try {
      next = loadModelWithFeedback(path, stateDirOf(this.opts.config), { rate: cfg.feedbackRate, radius: cfg.feedbackRadius }).model;
    } catch (err) {
      return done({ result: "refused", message: `model reload refused: ${(err as Error).message}; the running model stays` }, { path });
    }
    const was = JSON.stringify(running.json.window);
    const now = JSON.stringify(next.json.window);
    if (was !== now)
      return done(
        { result: "refused", message: `model reload refused: ${modelFileOf(path)} cuts windows as ${now}, the running model as ${was}: the open windows would not fit; restart the som service to change the window` },
        { path },
      );
    this.service.useModel(next);
    this.source = { path, sha256 };
    this.describe();
    return done({ result: "loaded", message: `model reloaded from ${modelFileOf(path)}` }, { path, sha256, model: next.id, previous: running.id, threshold: next.threshold });
  }
}
