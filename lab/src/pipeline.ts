import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DEFAULT_SHARD_COUNT } from "@vigil/config";
import type { EndOfStream, Heartbeat, RuleEvent, Verdict } from "@vigil/proto";
import {
  createNatsAuth,
  mainOf,
  missingServices,
  NatsServerError,
  spawnService,
  stackConfig,
  startNatsServer,
  writeStackConfig,
  type NatsAuth,
  type NatsServer,
  type ServiceProcess,
} from "@vigil/stack";
import { BusObserver } from "./observer.js";

export { REPO_ROOT } from "@vigil/stack";

export const PIPELINE_SERVICES = ["rules", "pst", "som"] as const;
export type PipelineService = (typeof PIPELINE_SERVICES)[number] | "capture";

export class PipelineError extends Error {
  readonly code: string;
  constructor(message: string, code = "VIGIL_ERR_REPLAY") {
    super(message);
    this.code = code;
  }
}

export interface PipelineOptions {
  /** NATS servers to use; a private nats-server (JetStream, temporary store) is started when absent. */
  nats?: string[];
  /** DIR/pst (PST models) and DIR/som (SOM model) replace the packaged default models. */
  modelsDir?: string;
  shardCount?: number;
  /** Log level of the services (their logs go to files in the work directory). */
  logLevel?: string;
  /** Keep the work directory (configs, logs, state) for inspection. */
  keep?: boolean;
  /** The detector groups to run (default both). */
  detectors?: Detector[];
  /** Settings merged into the rules section (default: the dry-run enforcer). */
  rules?: Record<string, unknown>;
  /** Settings merged into the detectors' sections. */
  pst?: Record<string, unknown>;
  som?: Record<string, unknown>;
  /** Options for node in every service process (bench:pipeline profiles them with --cpu-prof). */
  nodeArgs?: string[];
}

export const DETECTORS = ["pst", "som"] as const;
export type Detector = (typeof DETECTORS)[number];

export interface StreamResult {
  sourceId: string;
  verdicts: Verdict[];
  ruleEvents: RuleEvent[];
  endOfStream: EndOfStream[];
  /** Frames the detectors consumed (summed over the shards of the first detector group). */
  frames: number;
  /** Frames each stage consumed from the source (pst, som: summed over their instances). */
  framesByStage: Record<string, number>;
  /** Wall-clock ms at which the rules service's end of stream arrived. */
  doneAt: number;
}

function tail(file: string, max = 2000): string {
  try {
    const text = readFileSync(file, "utf8");
    return text.slice(-max).trim();
  } catch {
    return "";
  }
}

/** The last error a service reported: its one-line fatal message, else the last error it logged (pino JSON). */
export function serviceError(output: string): string | null {
  for (const line of output.trim().split("\n").reverse()) {
    const fatal = /^vigil-[\w-]+: (.+)$/.exec(line);
    if (fatal) return fatal[1]!;
    try {
      const rec = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } | string };
      if ((rec.level ?? 0) >= 50) return (typeof rec.err === "string" ? rec.err : rec.err?.message) ?? rec.msg ?? null;
    } catch {
      /* not a log record */
    }
  }
  return null;
}

/**
 * The real pipeline for replays: a private nats-server (unless one is given),
 * the rules service in dry-run mode, one PST and one SOM instance, and one
 * capture process per replayed file (its pcap source). Services are the
 * built daemons (services/<name>/dist/main.js), configured through one YAML
 * file in a temporary work directory, with metrics on ephemeral ports and no
 * gRPC listener.
 */
export class Pipeline {
  readonly workDir: string;
  private nats: NatsServer | null = null;
  private auth: NatsAuth | null = null;
  private natsUrl = "";
  private bus: BusObserver | null = null;
  private procs = new Map<string, ServiceProcess>();
  /** Every process launched, also after it exited: its output explains a failure. */
  private launched = new Map<string, ServiceProcess>();
  private exited: { name: string; code: number | null; signal: string | null }[] = [];
  private waiters: (() => void)[] = [];
  private readonly shardCount: number;
  private readonly detectors: Detector[];

  constructor(private readonly opts: PipelineOptions = {}) {
    this.shardCount = opts.shardCount ?? DEFAULT_SHARD_COUNT;
    this.detectors = opts.detectors?.length ? [...new Set(opts.detectors)] : [...DETECTORS];
    for (const d of this.detectors) {
      if (!(DETECTORS as readonly string[]).includes(d)) throw new PipelineError(`unknown detector "${d}" (known: ${DETECTORS.join(", ")})`, "VIGIL_ERR_USAGE");
    }
    this.workDir = mkdtempSync(join(tmpdir(), "vigil-replay-"));
  }

  private get services(): PipelineService[] {
    return ["rules", ...this.detectors];
  }

  static mainOf(service: PipelineService): string {
    return mainOf(service);
  }

  /** Names every service daemon that is not built. */
  static missingServices(services: PipelineService[] = [...PIPELINE_SERVICES]): string[] {
    return missingServices(["capture", ...services]);
  }

  private get observer(): BusObserver {
    if (!this.bus) throw new PipelineError("the pipeline is not started");
    return this.bus;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** A launched process's output once its pipes are drained ("exit" can come before the last lines). */
  private async outputOf(name: string): Promise<string> {
    const svc = this.launched.get(name);
    if (!svc) return "";
    const child = svc.child;
    if (child.stdout && !child.stdout.closed) await Promise.race([once(child, "close"), new Promise((r) => setTimeout(r, 2000))]);
    return svc.output();
  }

  /** The exit of a launched process, waiting up to timeoutMs; null when it is still running. */
  private async exitOf(name: string, timeoutMs: number): Promise<{ code: number | null; signal: string | null } | null> {
    const found = () => this.exited.find((e) => e.name === name);
    const deadline = Date.now() + timeoutMs;
    while (!found() && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(deadline - Date.now(), 200));
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
    return found() ?? null;
  }

  private async until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const failed = this.exited.find((e) => !e.name.startsWith("capture") || e.code !== 0);
      if (failed) {
        throw new PipelineError(
          `${failed.name} exited (${failed.signal ?? `code ${failed.code}`}) while waiting for ${what}:\n${tail(join(this.workDir, `${failed.name}.log`))}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new PipelineError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what} (logs in ${this.workDir})`, "VIGIL_ERR_TIMEOUT");
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  private writeConfig(name: string, capture?: Record<string, unknown>): string {
    const cfg = stackConfig({
      natsUrl: this.natsUrl,
      stateDir: join(this.workDir, "state"),
      shardCount: this.shardCount,
      modelsDir: this.opts.modelsDir ? resolve(this.opts.modelsDir) : undefined,
      overrides: { pst: this.opts.pst, som: this.opts.som, rules: this.opts.rules, capture },
    });
    return writeStackConfig(join(this.workDir, name), cfg);
  }

  private launch(name: string, service: PipelineService, configFile: string): void {
    // Only this pipeline's file configures the services: no VIGIL_* variable is inherited.
    const svc = spawnService(name, {
      service,
      configFile,
      env: { VIGIL_STATE_DIR: join(this.workDir, "state"), VIGIL_LOG_LEVEL: this.opts.logLevel ?? "warn", ...this.auth?.env(service) },
      log: { file: join(this.workDir, `${name}.log`) },
      nodeArgs: this.opts.nodeArgs,
    });
    this.procs.set(name, svc);
    this.launched.set(name, svc);
    void svc.exited.then(({ code, signal }) => {
      this.procs.delete(name);
      this.exited.push({ name, code, signal });
      this.notify();
    });
  }

  async start(timeoutMs = 60_000): Promise<void> {
    const missing = Pipeline.missingServices(this.services);
    if (missing.length) {
      throw new PipelineError(
        `not built: ${missing.map((s) => `services/${s}/dist/main.js`).join(", ")} (run node scripts/build.mjs)`,
        "VIGIL_ERR_NOT_BUILT",
      );
    }
    mkdirSync(join(this.workDir, "state"), { recursive: true });
    if (this.opts.nats?.length) {
      this.natsUrl = this.opts.nats[0]!;
    } else {
      try {
        // Authenticated as `vigil up` runs it: each service under its own user and subject permissions.
        this.auth = createNatsAuth(join(this.workDir, "secrets"));
        this.nats = await startNatsServer({ store: join(this.workDir, "nats"), authConfig: this.auth.configFile, log: { file: join(this.workDir, "nats-server.log") } });
      } catch (err) {
        if (err instanceof NatsServerError) throw new PipelineError(err.message, err.code);
        throw err;
      }
      this.natsUrl = this.nats.url;
    }
    // The observer reads what the console reads, with the console's user.
    const reader = this.auth?.credentials.console;
    this.bus = await BusObserver.connect(this.natsUrl, this.shardCount, () => this.notify(), reader && { user: reader.user, passwordFile: reader.passwordFile });

    const config = this.writeConfig("vigil.yaml");
    for (const s of this.services) this.launch(s, s, config);
    // Frames published before a detector owns its shards would be lost, and
    // the rules service only waits for detector groups it has heard of: start
    // the capture once both detectors own every shard and have announced it
    // after the rules service was listening.
    try {
      await this.until(
        "the rules service and both detectors to be ready",
        () => this.detectors.every((d) => this.observer.readyDetectors.has(d)),
        timeoutMs,
      );
    } catch (err) {
      if ((err as PipelineError).code !== "VIGIL_ERR_TIMEOUT") throw err;
      // A service that failed but did not exit says so in its log.
      const silent = this.services.filter((s) => (s === "rules" ? !this.observer.rulesHeard : !this.observer.readyDetectors.has(s)));
      const detail = silent.map((s) => `  ${s}: ${tail(join(this.workDir, `${s}.log`), 600).replace(/\n/g, "\n    ") || "(no log output)"}`).join("\n");
      throw new PipelineError(`${(err as Error).message}; not ready: ${silent.join(", ")}\n${detail}`, "VIGIL_ERR_TIMEOUT");
    }
  }

  /** Process ids of the running services and of the private nats-server (benchmarks sample their memory). */
  pids(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, p] of this.procs) if (p.child.pid) out[name] = p.child.pid;
    return out;
  }

  /** Rule events and verdicts seen so far (live use). */
  get seen(): { verdicts: readonly Verdict[]; verdictAt: readonly number[]; ruleEvents: readonly RuleEvent[] } {
    const o = this.observer;
    return { verdicts: o.verdicts, verdictAt: o.verdictAt, ruleEvents: o.ruleEvents };
  }

  /** The last heartbeat of each live instance of a service (frames handled, lost, shed). */
  heartbeats(service: string): Heartbeat[] {
    return this.observer.presence.instances(service).map((p) => p.heartbeat);
  }

  /** Waits for a condition on what the pipeline has published (live use). */
  waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
    return this.until(what, cond, timeoutMs);
  }

  /**
   * Starts a live capture (AF_PACKET or the kernel ring) in this process's
   * network namespace and waits for its first heartbeat.
   */
  async startLiveCapture(section: { source: "afpacket" | "kernel"; interface?: string; local: string[]; sourceId?: string }, timeoutMs = 30_000): Promise<void> {
    const o = this.observer;
    const cfgFile = this.writeConfig("capture-live.yaml", { ...section, flushMs: 2 });
    const before = new Set(o.seenInstances("capture"));
    this.launch("capture-live", "capture", cfgFile);
    await this.until("the live capture's first heartbeat", () => {
      const cap = this.exited.find((e) => e.name === "capture-live");
      if (cap) throw new PipelineError(`live capture exited (${cap.signal ?? `code ${cap.code}`}):\n${tail(join(this.workDir, "capture-live.log"))}`);
      return [...o.seenInstances("capture")].some((i) => !before.has(i));
    }, timeoutMs);
  }

  /**
   * Replays one capture file through the pipeline and waits until the end of
   * stream has passed the rules service.
   */
  async replay(file: string, opts: { local?: string[]; speed?: number; sourceId: string; timeoutMs?: number }): Promise<StreamResult> {
    const o = this.observer;
    const capture = { source: "pcap", file: resolve(file), speed: opts.speed ?? 0, local: opts.local ?? [], sourceId: opts.sourceId };
    const name = `capture-${this.exited.length + this.procs.size}`;
    const cfgFile = this.writeConfig(`${name}.yaml`, capture);
    const started = { v: o.verdicts.length, r: o.ruleEvents.length, e: o.eos.length };
    this.launch(name, "capture", cfgFile);
    const done = () => o.eos.slice(started.e).some((e) => e.stage === "rules" && e.sourceId === opts.sourceId);
    await this.until(`the end of stream of ${file} to pass the rules service`, () => {
      // A failed capture ends the wait; its error is reported below, in its own words.
      const cap = this.exited.find((e) => e.name === name);
      return (cap !== undefined && cap.code !== 0) || done();
    }, opts.timeoutMs ?? 600_000);
    // The end of stream is published also after a corrupt record: the capture's
    // exit status tells whether the whole file was read (else a false all-clear).
    const exit = await this.exitOf(name, 15_000);
    if (!exit) throw new PipelineError(`${file}: the capture did not finish after its end of stream (logs in ${this.workDir})`, "VIGIL_ERR_TIMEOUT");
    if (exit.code !== 0) {
      const why = serviceError(await this.outputOf(name)) ?? `the capture failed (${exit.signal ?? `exit ${exit.code}`}; logs in ${this.workDir})`;
      throw new PipelineError(`${file}: ${why}`, "VIGIL_ERR_PCAP");
    }
    // Verdicts and rule events published before the relayed end of stream
    // have been delivered before it (one connection, ordered subjects per publisher).
    await o.flush();
    const eosAt = o.eosAt.slice(started.e);
    const rulesEos = o.eos.slice(started.e).findIndex((e) => e.stage === "rules" && e.sourceId === opts.sourceId);
    const eos = o.eos.slice(started.e).filter((e) => e.sourceId === opts.sourceId);
    const byStage = new Map<string, number>();
    for (const e of eos) if (e.stage !== "rules") byStage.set(e.stage, (byStage.get(e.stage) ?? 0) + e.frames);
    return {
      sourceId: opts.sourceId,
      verdicts: o.verdicts.slice(started.v).filter((v) => v.sourceId === opts.sourceId),
      ruleEvents: o.ruleEvents.slice(started.r),
      endOfStream: eos,
      frames: Math.max(0, ...byStage.values()),
      framesByStage: Object.fromEntries(byStage),
      doneAt: eosAt[rulesEos] ?? Date.now(),
    };
  }

  async stop(): Promise<void> {
    const bus = this.bus;
    this.bus = null;
    await bus?.close();
    await Promise.all([...this.procs.values()].map((p) => p.stop(5000)));
    await this.nats?.stop();
    this.nats = null;
    if (!this.opts.keep) rmSync(this.workDir, { recursive: true, force: true });
  }
}
