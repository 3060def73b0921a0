import type { Logger } from "@vigil/lifecycle";
import { prom, type Registry } from "@vigil/metrics";

// What both detectors' `vigil reload` (SIGHUP) share: the outcome, its log line
// and the two metrics. What a reload reads and swaps is the detector's own
// (pst: a directory of trees; som: one map and the false alarms replayed on it).

export type ReloadOutcome = "loaded" | "unchanged" | "refused";

export interface ReloadResult {
  result: ReloadOutcome;
  message: string;
}

/** vigil_<detector>_model_info and vigil_<detector>_model_reloads_total, and the log line of every reload. */
export class ModelReloadReport {
  private readonly info: prom.Gauge<"model" | "sha256">;
  private readonly reloads: prom.Counter<"result">;

  constructor(
    detector: string,
    help: { info: string; reloads: string },
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.info = new prom.Gauge({ name: `vigil_${detector}_model_info`, help: help.info, labelNames: ["model", "sha256"], registers: [registry] });
    this.reloads = new prom.Counter({ name: `vigil_${detector}_model_reloads_total`, help: help.reloads, labelNames: ["result"], registers: [registry] });
    for (const result of ["loaded", "unchanged", "refused"]) this.reloads.inc({ result }, 0);
  }

  /** The models in use, each with the (shortened) SHA-256 of what they were loaded from. */
  describe(modelIds: Iterable<string>, sha256: string): void {
    this.info.reset();
    for (const model of modelIds) this.info.set({ model, sha256: sha256.slice(0, 16) }, 1);
  }

  /** Counts and logs an outcome (a refusal as an error: the running models stay, and someone should know why). */
  done(r: ReloadResult, fields: Record<string, unknown> = {}): ReloadResult {
    this.reloads.inc({ result: r.result });
    if (r.result === "refused") this.log.error(fields, r.message);
    else this.log.info(fields, r.message);
    return r;
  }

  /** A configuration that does not load refuses the reload. */
  configRefused(err: unknown, what: string): ReloadResult {
    return this.done({ result: "refused", message: `model reload refused: the configuration does not load: ${(err as Error).message}; the running ${what} stay${what.endsWith("s") ? "" : "s"}` });
  }
}
