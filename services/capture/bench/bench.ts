// npm run bench:capture — replays a generated capture of >= 1M realistic frames
// at full speed through the real capture path to a local nats-server, with a
// subscriber in another process counting every frame, and compares the wall
// time with `tcpdump -r FILE -w /dev/null` on the same file. Prints one JSON
// line last.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { runCapture } from "../dist/capture.js";

const here = dirname(fileURLToPath(import.meta.url));
const FRAMES = Number(process.env.VIGIL_BENCH_FRAMES ?? 1_000_000);
const RUNS = Number(process.env.VIGIL_BENCH_RUNS ?? 3);
const log = (msg: string) => process.stderr.write(`bench:capture: ${msg}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      srv.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/** utime + stime of a process in seconds, from /proc. */
function procCpu(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

function lines(proc: ChildProcess): AsyncIterator<string> {
  let buf = "";
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      queue.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  return {
    async next() {
      while (!queue.length) {
        if (proc.exitCode !== null) return { done: true, value: undefined };
        await new Promise<void>((r) => (wake = r));
      }
      return { done: false, value: queue.shift()! };
    },
  };
}

async function main(): Promise<void> {
  const file = process.env.VIGIL_BENCH_PCAP ?? join(tmpdir(), `vigil-bench-capture-${FRAMES}-v1.pcap`);
  if (!existsSync(file)) {
    log(`generating ${FRAMES} frames into ${file} (not committed; reused by later runs)`);
    const g = spawnSync(process.execPath, [...process.execArgv, join(here, "gen-pcap.ts"), file, String(FRAMES)], { stdio: "inherit" });
    if (g.status !== 0) throw new Error("capture generation failed");
  }
  const fileBytes = statSync(file).size;
  const tcpdump = () => {
    const t = performance.now();
    const r = spawnSync("tcpdump", ["-r", file, "-w", "/dev/null"], { stdio: ["ignore", "ignore", "pipe"] });
    if (r.status !== 0) throw new Error(`tcpdump failed: ${r.stderr}`);
    return (performance.now() - t) / 1000;
  };
  tcpdump(); // warm the page cache for both readers

  const port = await freePort();
  const nats = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  const url = `nats://127.0.0.1:${port}`;
  let nc;
  for (let i = 0; ; i++) {
    try {
      nc = await connect({ servers: [url], name: "bench-capture" });
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const sub = spawn(process.execPath, [...process.execArgv, join(here, "subscriber.ts"), url, "16"], { stdio: ["pipe", "pipe", "inherit"] });
  const subLines = lines(sub);
  if ((await subLines.next()).value !== "ready") throw new Error("subscriber did not start");

  const runs: { wall: number; cpu: number; tcpdump: number; natsCpu: number; subCpu: number; received: number; published: number; dropped: number }[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      const tcpdumpWall = tcpdump();
      const sourceId = `bench/run${run}`;
      const cpu0 = process.cpuUsage();
      const nats0 = procCpu(nats.pid);
      const sub0 = procCpu(sub.pid);
      const t0 = performance.now();
      const summary = await runCapture({ source: "pcap", file, nc, sourceId });
      const done = JSON.parse((await subLines.next()).value as string) as { sourceId: string; frames: number; dropped: number };
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      if (done.sourceId !== sourceId) throw new Error(`unexpected completion for ${done.sourceId}`);
      runs.push({
        wall,
        cpu: (cpu.user + cpu.system) / 1e6,
        tcpdump: tcpdumpWall,
        natsCpu: procCpu(nats.pid) - nats0,
        subCpu: procCpu(sub.pid) - sub0,
        received: done.frames,
        published: summary.framesPublished,
        dropped: summary.framesDropped,
      });
      log(`run ${run}: ${summary.framesPublished} frames in ${wall.toFixed(3)} s (${(summary.framesPublished / wall / 1e6).toFixed(2)} M/s), subscriber got ${done.frames}; tcpdump ${tcpdumpWall.toFixed(3)} s`);
    }
  } finally {
    await nc.close();
    sub.stdin!.end();
    await new Promise((r) => sub.once("exit", r));
    nats.kill("SIGTERM");
  }
  const best = runs.reduce((a, b) => (b.wall < a.wall ? b : a));
  const bestTcpdump = Math.min(...runs.map((r) => r.tcpdump));
  const frames = best.published;
  const result = {
    bench: "capture",
    frames,
    pcap_mb: +(fileBytes / 1e6).toFixed(1),
    runs: runs.length,
    wall_s: +best.wall.toFixed(3),
    frames_per_s: Math.round(frames / best.wall),
    mb_per_s: +(fileBytes / 1e6 / best.wall).toFixed(1),
    cpu_s: +best.cpu.toFixed(3),
    nats_server_cpu_s: +best.natsCpu.toFixed(2),
    subscriber_cpu_s: +best.subCpu.toFixed(2),
    peak_rss_mb: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    frames_received: best.received,
    frames_dropped: best.dropped,
    tcpdump_wall_s: +bestTcpdump.toFixed(3),
    ratio_to_tcpdump: +(best.wall / bestTcpdump).toFixed(2),
    load_avg_1m: +readFileSync("/proc/loadavg", "utf8").split(" ")[0],
    target_frames_per_s: 2_000_000,
    target_ratio_to_tcpdump: 2,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench:capture: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
