// bench:pipeline, part 1: captures replayed through the real chain (capture →
// NATS → pst + som → rules in dry-run), start-up timed apart from throughput.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { Pipeline } from "../dist/pipeline.js";

export interface ReplayFigures {
  capture: string;
  frames: number;
  pcap_mb: number;
  /** Frames per second from the capture's first read to the rules service's end of stream. */
  e2e_frames_per_s: number;
  e2e_s: number;
  /** Services ready (pipeline start) plus the capture process's own start until it reads. */
  startup_s: number;
  services_ready_s: number;
  capture_start_s: number;
  tcpdump_s: number;
  /** e2e_s / tcpdump_s: how many times as long as `tcpdump -r FILE -w /dev/null`. */
  ratio_to_tcpdump: number;
  peak_rss_mb: Record<string, number>;
  cpu_s: Record<string, number>;
  frames_published: number;
  frames_dropped_capture: number;
  frames_judged: Record<string, number>;
  verdicts: number;
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

/** When the capture began reading, from its "capture finished" log record (pino time minus wallMs). */
function captureStartedAt(logFile: string): number | null {
  for (const line of readFileSync(logFile, "utf8").split("\n").reverse()) {
    try {
      const rec = JSON.parse(line) as { msg?: string; time?: number; wallMs?: number; framesPublished?: number; framesDropped?: number };
      if (rec.msg === "capture finished" && rec.time && rec.wallMs !== undefined) return rec.time - rec.wallMs;
    } catch {
      /* not a record */
    }
  }
  return null;
}

function captureCounts(logFile: string): { published: number; dropped: number } {
  for (const line of readFileSync(logFile, "utf8").split("\n").reverse()) {
    try {
      const rec = JSON.parse(line) as { msg?: string; framesPublished?: number; framesDropped?: number };
      if (rec.msg === "capture finished") return { published: rec.framesPublished ?? 0, dropped: rec.framesDropped ?? 0 };
    } catch {
      /* not a record */
    }
  }
  return { published: 0, dropped: 0 };
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** One capture through a fresh pipeline: start-up, then the replay, timed apart. */
export async function replayFigures(name: string, file: string, local: string[], tcpdumpS: number, frames: number): Promise<ReplayFigures> {
  // VIGIL_BENCH_CPU_PROF=DIR: every service writes a V8 CPU profile there when it stops.
  const profDir = process.env.VIGIL_BENCH_CPU_PROF;
  // VIGIL_BENCH_SHED=0..4: both detectors shed at that level (shedding.force), to measure what shedding saves.
  const shed = process.env.VIGIL_BENCH_SHED;
  const force = shed ? { shedding: { force: Number(shed) } } : undefined;
  const pipeline = new Pipeline({ logLevel: "info", nodeArgs: profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}/${name}`] : undefined, pst: force, som: force });
  let nats: number | null = null;
  const sampler = new ProcSampler(() => ({ ...pipeline.pids(), ...(nats ? { "nats-server": nats } : {}) }));
  try {
    const t0 = Date.now();
    await pipeline.start();
    nats = natsServerPid(pipeline.workDir);
    const ready = Date.now();
    const sourceId = `bench:${name}`;
    const res = await pipeline.replay(file, { local, sourceId, timeoutMs: 1_800_000 });
    sampler.sample();
    const logFile = `${pipeline.workDir}/${readdirSync(pipeline.workDir).find((f) => /^capture-\d+\.log$/.test(f))}`;
    const began = captureStartedAt(logFile);
    if (began === null) throw new Error(`${name}: the capture did not log when it began (${logFile})`);
    const counts = captureCounts(logFile);
    const e2e = (res.doneAt - began) / 1000;
    const fig: ReplayFigures = {
      capture: name,
      frames,
      pcap_mb: +(statSync(file).size / 1e6).toFixed(1),
      e2e_frames_per_s: Math.round(counts.published / e2e),
      e2e_s: r3(e2e),
      startup_s: r3((began - t0) / 1000),
      services_ready_s: r3((ready - t0) / 1000),
      capture_start_s: r3((began - ready) / 1000),
      tcpdump_s: r3(tcpdumpS),
      ratio_to_tcpdump: +(e2e / tcpdumpS).toFixed(2),
      peak_rss_mb: Object.fromEntries(Object.entries(sampler.peakKb).map(([k, v]) => [k, +(v / 1024).toFixed(1)])),
      cpu_s: Object.fromEntries(Object.entries(sampler.cpuS).map(([k, v]) => [k, +v.toFixed(2)])),
      frames_published: counts.published,
      frames_dropped_capture: counts.dropped,
      frames_judged: res.framesByStage,
      verdicts: res.verdicts.length,
    };
    log(`${name}: ${fig.frames_published} frames in ${fig.e2e_s} s (${(fig.e2e_frames_per_s / 1e6).toFixed(2)} M/s), start-up ${fig.startup_s} s, tcpdump ${fig.tcpdump_s} s`);
    return fig;
  } finally {
    sampler.stop();
    await pipeline.stop();
  }
}
