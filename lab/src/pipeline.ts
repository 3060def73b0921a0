import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, createWriteStream, readFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { codecs, connectBus, subjects, type NatsConnection, type Subscription } from "@vigil/bus";
import type { EndOfStream, Heartbeat, RuleEvent, Verdict } from "@vigil/proto";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

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
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), res(true)));
    s.once("error", () => res(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, max = 2000): string {
  try {
    const text = readFileSync(file, "utf8");
    return text.slice(-max).trim();
  } catch {
    return "";
  }
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
  private natsProc: ChildProcess | null = null;
  private natsUrl = "";
  private nc: NatsConnection | null = null;
  private subs: Subscription[] = [];
  private procs = new Map<string, ChildProcess>();
  private exited: { name: string; code: number | null; signal: string | null }[] = [];
  private heartbeats = new Map<string, Heartbeat>();
  private firstRulesHeartbeat = 0;
  private detectorBeatAfterRules = new Set<string>();
  private verdicts: Verdict[] = [];
  /** Wall-clock second each verdict arrived (live latency). */
  private verdictAt: number[] = [];
  private ruleEvents: RuleEvent[] = [];
  private eos: EndOfStream[] = [];
  private waiters: (() => void)[] = [];
  private readonly shardCount: number;
  private readonly detectors: Detector[];

  constructor(private readonly opts: PipelineOptions = {}) {
    this.shardCount = opts.shardCount ?? 16;
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
    return join(REPO_ROOT, "services", service, "dist", "main.js");
  }

  /** Names every service daemon that is not built. */
  static missingServices(services: PipelineService[] = [...PIPELINE_SERVICES]): string[] {
    return (["capture", ...services] as PipelineService[]).filter((s) => !existsSync(Pipeline.mainOf(s)));
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
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

  private writeConfig(extra: Record<string, unknown>, name: string): string {
    const models = this.opts.modelsDir ? resolve(this.opts.modelsDir) : null;
    const cfg = {
      nats: { servers: [this.natsUrl] },
      pst: {
        shardCount: this.shardCount,
        stateDir: join(this.workDir, "state", "pst"),
        metrics: { host: "127.0.0.1", port: 0 },
        ...(models ? { modelsDir: join(models, "pst") } : {}),
        ...this.opts.pst,
      },
      som: {
        shardCount: this.shardCount,
        stateDir: join(this.workDir, "state", "som"),
        metrics: { host: "127.0.0.1", port: 0 },
        ...(models ? { model: join(models, "som") } : {}),
        ...this.opts.som,
      },
      rules: {
        enforcer: "dry-run",
        dryRun: true,
        stateDir: join(this.workDir, "state", "rules"),
        grpc: { host: "127.0.0.1", port: 0, socket: "" },
        metrics: { host: "127.0.0.1", port: 0 },
        ...this.opts.rules,
      },
      ...extra,
    };
    const file = join(this.workDir, name);
    // JSON is YAML: the services read it as their vigil.yaml.
    writeFileSync(file, JSON.stringify(cfg, null, 2));
    return file;
  }

  private launch(name: string, service: PipelineService, configFile: string): ChildProcess {
    const log = createWriteStream(join(this.workDir, `${name}.log`));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      VIGIL_CONFIG: configFile,
      VIGIL_STATE_DIR: join(this.workDir, "state"),
      VIGIL_LOG_LEVEL: this.opts.logLevel ?? "warn",
    };
    // Only this pipeline's file configures the services.
    for (const k of Object.keys(env)) if (/^VIGIL_(NATS|CAPTURE|PST|SOM|RULES)__/.test(k)) delete env[k];
    const child = spawn(process.execPath, [Pipeline.mainOf(service)], { env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    this.procs.set(name, child);
    child.once("exit", (code, signal) => {
      this.procs.delete(name);
      this.exited.push({ name, code, signal });
      this.notify();
    });
    return child;
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
      const port = await freePort();
      const store = join(this.workDir, "nats");
      mkdirSync(store);
      const log = createWriteStream(join(this.workDir, "nats-server.log"));
      const proc = spawn(process.env.NATS_SERVER ?? "nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      proc.stdout!.pipe(log, { end: false });
      proc.stderr!.pipe(log, { end: false });
      this.natsProc = proc;
      let spawnError: Error | null = null;
      proc.once("error", (e) => (spawnError = e));
      const deadline = Date.now() + 10_000;
      while (!(await portOpen(port))) {
        if (spawnError) throw new PipelineError(`cannot start nats-server: ${(spawnError as Error).message} (apt-get install nats-server)`, "VIGIL_ERR_NATS");
        if (proc.exitCode !== null) throw new PipelineError(`nats-server exited with ${proc.exitCode}: ${tail(join(this.workDir, "nats-server.log"))}`, "VIGIL_ERR_NATS");
        if (Date.now() > deadline) throw new PipelineError("nats-server did not start within 10 s", "VIGIL_ERR_NATS");
        await sleep(50);
      }
      this.natsUrl = `nats://127.0.0.1:${port}`;
    }
    this.nc = await connectBus({ servers: [this.natsUrl], name: "vigil-replay" });
    const nc = this.nc;
    const on = <T>(subject: string, decode: (d: Uint8Array, s: string) => T, f: (m: T) => void) => {
      this.subs.push(
        nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err) return;
            try {
              f(decode(msg.data, msg.subject));
            } catch {
              /* a malformed message is the sender's bug; the replay reports what it can decode */
            }
            this.notify();
          },
        }),
      );
    };
    on(subjects.verdictsAll, codecs.verdict.decode, (v) => {
      this.verdicts.push(v);
      this.verdictAt.push(Date.now() / 1000);
    });
    on(subjects.ruleEvents, codecs.ruleEvent.decode, (e) => this.ruleEvents.push(e));
    on(subjects.endOfStreamAll, codecs.endOfStream.decode, (e) => this.eos.push(e));
    on(subjects.heartbeatAll, codecs.heartbeat.decode, (hb) => {
      this.heartbeats.set(`${hb.service}/${hb.instance}`, hb);
      if (hb.service === "rules" && !this.firstRulesHeartbeat) this.firstRulesHeartbeat = Date.now();
      else if (this.firstRulesHeartbeat && (hb.service === "pst" || hb.service === "som") && this.ownsAll(hb.service)) {
        this.detectorBeatAfterRules.add(hb.service);
      }
    });
    await nc.flush();

    const config = this.writeConfig({}, "vigil.yaml");
    for (const s of this.services) this.launch(s, s, config);
    // Frames published before a detector owns its shards would be lost, and
    // the rules service only waits for detector groups it has heard of: start
    // the capture once both detectors own every shard and have announced it
    // after the rules service was listening.
    try {
      await this.until(
        "the rules service and both detectors to be ready",
        () => this.detectors.every((d) => this.detectorBeatAfterRules.has(d)),
        timeoutMs,
      );
    } catch (err) {
      if ((err as PipelineError).code !== "VIGIL_ERR_TIMEOUT") throw err;
      // A service that failed but did not exit says so in its log.
      const silent = this.services.filter((s) => (s === "rules" ? !this.firstRulesHeartbeat : !this.detectorBeatAfterRules.has(s)));
      const detail = silent.map((s) => `  ${s}: ${tail(join(this.workDir, `${s}.log`), 600).replace(/\n/g, "\n    ") || "(no log output)"}`).join("\n");
      throw new PipelineError(`${(err as Error).message}; not ready: ${silent.join(", ")}\n${detail}`, "VIGIL_ERR_TIMEOUT");
    }
  }

  private ownsAll(service: string): boolean {
    const owned = new Set<number>();
    for (const hb of this.heartbeats.values()) if (hb.service === service && !hb.stopping) for (const s of hb.shards) owned.add(s);
    return owned.size >= this.shardCount;
  }

  /** Rule events and verdicts seen so far (live use). */
  get seen(): { verdicts: readonly Verdict[]; verdictAt: readonly number[]; ruleEvents: readonly RuleEvent[] } {
    return { verdicts: this.verdicts, verdictAt: this.verdictAt, ruleEvents: this.ruleEvents };
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
    if (!this.nc) throw new PipelineError("the pipeline is not started");
    const cfgFile = this.writeConfig(
      { capture: { ...section, shards: this.shardCount, flushMs: 2, metrics: { host: "127.0.0.1", port: 0 } } },
      "capture-live.yaml",
    );
    const before = [...this.heartbeats.keys()].filter((k) => k.startsWith("capture/")).length;
    this.launch("capture-live", "capture", cfgFile);
    await this.until("the live capture's first heartbeat", () => {
      const cap = this.exited.find((e) => e.name === "capture-live");
      if (cap) throw new PipelineError(`live capture exited (${cap.signal ?? `code ${cap.code}`}):\n${tail(join(this.workDir, "capture-live.log"))}`);
      return [...this.heartbeats.keys()].filter((k) => k.startsWith("capture/")).length > before;
    }, timeoutMs);
  }

  /**
   * Replays one capture file through the pipeline and waits until the end of
   * stream has passed the rules service.
   */
  async replay(file: string, opts: { local?: string[]; speed?: number; sourceId: string; timeoutMs?: number }): Promise<StreamResult> {
    if (!this.nc) throw new PipelineError("the pipeline is not started");
    const capture = {
      capture: {
        source: "pcap",
        file: resolve(file),
        speed: opts.speed ?? 0,
        shards: this.shardCount,
        local: opts.local ?? [],
        sourceId: opts.sourceId,
        metrics: { host: "127.0.0.1", port: 0 },
      },
    };
    const name = `capture-${this.exited.length + this.procs.size}`;
    const cfgFile = this.writeConfig(capture, `${name}.yaml`);
    const started = { v: this.verdicts.length, r: this.ruleEvents.length, e: this.eos.length };
    this.launch(name, "capture", cfgFile);
    const done = () => this.eos.slice(started.e).some((e) => e.stage === "rules" && e.sourceId === opts.sourceId);
    await this.until(`the end of stream of ${file} to pass the rules service`, () => {
      const cap = this.exited.find((e) => e.name === name);
      if (cap && cap.code !== 0) {
        throw new PipelineError(`capture of ${file} failed (${cap.signal ?? `exit ${cap.code}`}):\n${tail(join(this.workDir, `${name}.log`))}`);
      }
      return done();
    }, opts.timeoutMs ?? 600_000);
    // Verdicts and rule events published before the relayed end of stream
    // have been delivered before it (one connection, ordered subjects per publisher).
    await this.nc.flush();
    const eos = this.eos.slice(started.e).filter((e) => e.sourceId === opts.sourceId);
    const byStage = new Map<string, number>();
    for (const e of eos) if (e.stage !== "rules") byStage.set(e.stage, (byStage.get(e.stage) ?? 0) + e.frames);
    return {
      sourceId: opts.sourceId,
      verdicts: this.verdicts.slice(started.v).filter((v) => v.sourceId === opts.sourceId),
      ruleEvents: this.ruleEvents.slice(started.r),
      endOfStream: eos,
      frames: Math.max(0, ...byStage.values()),
    };
  }

  async stop(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    const children = [...this.procs.values()];
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((res) => {
            if (c.exitCode !== null || c.signalCode !== null) return res();
            const t = setTimeout(() => c.kill("SIGKILL"), 5000);
            c.once("exit", () => (clearTimeout(t), res()));
            c.kill("SIGTERM");
          }),
      ),
    );
    if (this.nc && !this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    this.nc = null;
    const nats = this.natsProc;
    if (nats && nats.exitCode === null) {
      await new Promise<void>((res) => {
        nats.once("exit", () => res());
        nats.kill("SIGTERM");
      });
    }
    this.natsProc = null;
    if (!this.opts.keep) rmSync(this.workDir, { recursive: true, force: true });
  }
}
