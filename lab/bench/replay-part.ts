// bench:pipeline, part 1: captures replayed through the real chain (capture →
// NATS → pst + som → rules in dry-run), start-up timed apart from throughput.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { Pipeline } from "../dist/pipeline.js";

export interface ReplayFigures {
  capture: string;
  frames: number;
  pcap_mb: number;
  /** Replays before the timed one (VIGIL_BENCH_WARMUP, default 2). */
  warmup_replays: number;
  /** Frames per second from the capture's first read to the rules service's end of stream, services warm. */
  e2e_frames_per_s: number;
  e2e_s: number;
  /** The same of the first replay, into services that had just started. */
  cold_e2e_frames_per_s: number;
  cold_e2e_s: number;
  /** Services ready (pipeline start) plus the first capture process's own start until it reads. */
  startup_s: number;
  services_ready_s: number;
  capture_start_s: number;
  tcpdump_s: number;
  /** e2e_s / tcpdump_s: how many times as long as `tcpdump -r FILE -w /dev/null`. */
  ratio_to_tcpdump: number;
  peak_rss_mb: Record<string, number>;
  /** CPU seconds during the timed replay (services), the timed replay's capture process whole. */
  cpu_s: Record<string, number>;
  frames_published: number;
  frames_dropped_capture: number;
  frames_judged: Record<string, number>;
  verdicts: number;
  cold_verdicts: number;
}

const log = (msg: string) => process.stderr.write(`bench:pipeline: ${msg}\n`);

/** `tcpdump -r FILE -w /dev/null` wall seconds (best of runs; the first run warms the page cache). */
export function tcpdumpSeconds(file: string, runs: number): number {
  let best = Infinity;
  for (let i = 0; i <= runs; i++) {
    const t = performance.now();
    const r = spawnSync("tcpdump", ["-r", file, "-w", "/dev/null"], { stdio: ["ignore", "ignore", "pipe"] });
    if (r.status !== 0) throw new Error(`tcpdump -r ${file} failed: ${r.stderr}`);
    if (i > 0) best = Math.min(best, (performance.now() - t) / 1000);
  }
  return best;
}

/** VmHWM (peak RSS) and utime+stime of a process, or null once it is gone. */
function procStats(pid: number): { hwmKb: number; cpuS: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const hwm = /VmHWM:\s+(\d+)/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return { hwmKb: hwm ? Number(hwm[1]) : 0, cpuS: (Number(stat[11]) + Number(stat[12])) / 100 };
  } catch {
    return null;
  }
}

/** The private nats-server of a pipeline: the process whose command line names its work directory. */
function natsServerPid(workDir: string): number | null {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      if (cmd.startsWith("nats-server") && cmd.includes(workDir)) return Number(d);
    } catch {
      /* gone */
    }
  }
  return null;
}

/** Samples peak RSS and CPU of the pipeline's processes every 100 ms, keeping the last figures of those that exit. */
class ProcSampler {
  readonly peakKb: Record<string, number> = {};
  readonly cpuS: Record<string, number> = {};
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pids: () => Record<string, number>) {
    this.timer = setInterval(() => this.sample(), 100);
  }
  sample(): void {
    for (const [name, pid] of Object.entries(this.pids())) {
      const s = procStats(pid);
      if (!s) continue;
      const key = name.startsWith("capture") ? "capture" : name;
      this.peakKb[key] = Math.max(this.peakKb[key] ?? 0, s.hwmKb);
      this.cpuS[key] = s.cpuS;
    }
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * The capture's "capture finished" log record: when it began reading (pino time minus wallMs) and the
 * frames it published and dropped; null when it did not write one.
 */
function captureFinished(logFile: string): { began: number; published: number; dropped: number } | null {
  for (const line of readFileSync(logFile, "utf8").split("\n").reverse()) {
    try {
      const rec = JSON.parse(line) as { msg?: string; time?: number; wallMs?: number; framesPublished?: number; framesDropped?: number };
      if (rec.msg === "capture finished" && rec.time && rec.wallMs !== undefined)
        return { began: rec.time - rec.wallMs, published: rec.framesPublished ?? 0, dropped: rec.framesDropped ?? 0 };
    } catch {
      /* not a record */
    }
  }
  return null;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

interface TimedReplay {
  began: number;
  e2e: number;
  published: number;
  dropped: number;
  res: Awaited<ReturnType<Pipeline["replay"]>>;
}

/** One replay of a capture through a running pipeline, timed from the capture's first read to the rules' end of stream. */
async function timedReplay(pipeline: Pipeline, name: string, file: string, local: string[], sourceId: string): Promise<TimedReplay> {
  const before = new Set(readdirSync(pipeline.workDir));
  const res = await pipeline.replay(file, { local, sourceId, timeoutMs: 1_800_000 });
  const log = readdirSync(pipeline.workDir).find((f) => /^capture-\d+\.log$/.test(f) && !before.has(f));
  if (!log) throw new Error(`${name}: no log of the capture that replayed ${file} in ${pipeline.workDir}`);
  const logFile = `${pipeline.workDir}/${log}`;
  const finished = captureFinished(logFile);
  if (!finished) throw new Error(`${name}: the capture did not log when it began (${logFile})`);
  return { ...finished, e2e: (res.doneAt - finished.began) / 1000, res };
}

/** The services' CPU seconds of the sampler's last sample (the capture, one process per replay, left out). */
function serviceCpu(sampler: ProcSampler): Record<string, number> {
  const { capture: _, ...services } = sampler.cpuS;
  return services;
}

/**
 * One capture through a fresh pipeline: start-up, then the replay, timed apart.
 *
 * The services run for weeks, so a flood meets them warm: the figure that says
 * whether detection keeps up is the throughput of services that have already
 * compiled their hot paths. The first replays are therefore warm-ups, the first
 * of them (`cold_*`) reported as it is, and the figures without a prefix are of
 * the replay after them (VIGIL_BENCH_WARMUP=0 times the cold replay alone). Two
 * warm-ups, because the services' CPU per replay still fell by 10-25% from the
 * second replay to the third and no further after (six replays into one pipeline). Each replay is a new capture
 * process, so the capture's own start is cold in both.
 */
export async function replayFigures(name: string, file: string, local: string[], tcpdumpS: number, frames: number): Promise<ReplayFigures> {
  // VIGIL_BENCH_CPU_PROF=DIR: every service writes a V8 CPU profile there when it stops.
  const profDir = process.env.VIGIL_BENCH_CPU_PROF;
  // VIGIL_BENCH_SHED=0..4: both detectors shed at that level (shedding.force), to measure what shedding saves.
  const shed = process.env.VIGIL_BENCH_SHED;
  const force = shed ? { shedding: { force: Number(shed) } } : undefined;
  const warmups = Number(process.env.VIGIL_BENCH_WARMUP ?? 2);
  const pipeline = new Pipeline({ logLevel: "info", nodeArgs: profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}/${name}`] : undefined, pst: force, som: force });
  let nats: number | null = null;
  const pids = () => ({ ...pipeline.pids(), ...(nats ? { "nats-server": nats } : {}) });
  const sampler = new ProcSampler(pids);
  try {
    const t0 = Date.now();
    await pipeline.start();
    nats = natsServerPid(pipeline.workDir);
    const ready = Date.now();
    const sourceId = `bench:${name}`;
    let cold: TimedReplay | null = null;
    for (let i = 0; i < warmups; i++) {
      const w = await timedReplay(pipeline, name, file, local, `${sourceId}:warm-up-${i}`);
      cold ??= w;
      log(`${name}: warm-up ${i + 1}/${warmups}: ${w.published} frames in ${r3(w.e2e)} s`);
    }
    sampler.sample();
    const cpuBefore = serviceCpu(sampler);
    const timed = await timedReplay(pipeline, name, file, local, sourceId);
    sampler.sample();
    const cpuAfter = serviceCpu(sampler);
    const first = cold ?? timed;
    const cpu: Record<string, number> = {};
    for (const [k, v] of Object.entries(cpuAfter)) cpu[k] = +(v - (cpuBefore[k] ?? 0)).toFixed(2);
    // The capture of the timed replay has exited; its whole CPU is the last sample taken of it.
    if (sampler.cpuS.capture !== undefined) cpu.capture = +sampler.cpuS.capture.toFixed(2);
    const fig: ReplayFigures = {
      capture: name,
      frames,
      pcap_mb: +(statSync(file).size / 1e6).toFixed(1),
      warmup_replays: warmups,
      e2e_frames_per_s: Math.round(timed.published / timed.e2e),
      e2e_s: r3(timed.e2e),
      cold_e2e_frames_per_s: Math.round(first.published / first.e2e),
      cold_e2e_s: r3(first.e2e),
      startup_s: r3((first.began - t0) / 1000),
      services_ready_s: r3((ready - t0) / 1000),
      capture_start_s: r3((first.began - ready) / 1000),
      tcpdump_s: r3(tcpdumpS),
      ratio_to_tcpdump: +(timed.e2e / tcpdumpS).toFixed(2),
      peak_rss_mb: Object.fromEntries(Object.entries(sampler.peakKb).map(([k, v]) => [k, +(v / 1024).toFixed(1)])),
      cpu_s: cpu,
      frames_published: timed.published,
      frames_dropped_capture: timed.dropped,
      frames_judged: timed.res.framesByStage,
      verdicts: timed.res.verdicts.length,
      cold_verdicts: first.res.verdicts.length,
    };
    log(`${name}: ${fig.frames_published} frames in ${fig.e2e_s} s (${(fig.e2e_frames_per_s / 1e6).toFixed(2)} M/s; cold ${fig.cold_e2e_s} s), start-up ${fig.startup_s} s, tcpdump ${fig.tcpdump_s} s`);
    return fig;
  } finally {
    sampler.stop();
    await pipeline.stop();
  }
}
