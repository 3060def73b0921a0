#!/usr/bin/env node
// npm run bench:pipeline: the whole chain's throughput (lab/README.md,
// "Pipeline throughput"). Prints one JSON object as its last line. Parts, chosen with
// VIGIL_BENCH_PARTS (default replay,scale,live):
//   replay  the 1M-frame capture bench:capture writes and a mix of the lab's
//           eval captures repeated to as many frames, each through a fresh
//           pipeline (capture → NATS → pst + som → rules dry-run);
//   scale   1M active rules in the rules service (rules-scale.ts);
//   live    AF_PACKET capture under a flood at rising rates (live-part.ts;
//           VIGIL_BENCH_RATES, VIGIL_BENCH_LIVE_S seconds per rate).
// VIGIL_BENCH_RULES sets the scale part's rule count (VIGIL_BENCH_SCALE_NFT=0
// leaves out its nftables half). VIGIL_BENCH_FRAMES sets the replay captures' size (the CI test uses a small
// one), VIGIL_BENCH_DIR where they are written, VIGIL_BENCH_RUNS the tcpdump
// runs (best kept), VIGIL_BENCH_CPU_PROF=DIR a V8 CPU profile per service.
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateCapture } from "../../services/capture/bench/gen-pcap.ts";
import { generateMixedCapture } from "./mixed-pcap.ts";
import { replayFigures, tcpdumpSeconds, type ReplayFigures } from "./replay-part.ts";

const here = dirname(fileURLToPath(import.meta.url));
const FRAMES = Number(process.env.VIGIL_BENCH_FRAMES ?? 1_000_000);
const PARTS = (process.env.VIGIL_BENCH_PARTS ?? "replay,scale,live").split(",").map((s) => s.trim());
const TCPDUMP_RUNS = Number(process.env.VIGIL_BENCH_RUNS ?? 3);
/** Where the generated captures go (kept for later runs); default the temporary directory. */
const DIR = process.env.VIGIL_BENCH_DIR ?? tmpdir();
const log = (msg: string) => process.stderr.write(`bench:pipeline: ${msg}\n`);

async function replayPart(): Promise<Record<string, unknown>> {
  const synthetic = join(DIR, `vigil-bench-capture-${FRAMES}-v1.pcap`);
  if (!existsSync(synthetic)) {
    log(`generating ${FRAMES} frames into ${synthetic} (reused by later runs and by bench:capture)`);
    generateCapture(synthetic, FRAMES);
  }
  const mixedFile = join(DIR, `vigil-bench-pipeline-mixed-${FRAMES}-v1.pcap`);
  const mixed = generateMixedCapture(join(here, "..", "captures", "eval"), mixedFile, FRAMES);
  log(`mixed capture: ${mixed.frames} frames, ${mixed.sources.length} lab captures repeated ${mixed.repetitions} times`);
  const captures: { name: string; file: string; local: string[]; frames: number }[] = [
    // gen-pcap's servers: the hosts its clients talk to.
    { name: "synthetic", file: synthetic, local: ["198.51.0.0/16", "2001:db8:ff::/48"], frames: FRAMES },
    { name: "lab-mix", file: mixedFile, local: mixed.local, frames: mixed.frames },
  ];
  const results: ReplayFigures[] = [];
  // VIGIL_BENCH_CAPTURES=synthetic (or lab-mix): only that one, for profiling.
  const only = process.env.VIGIL_BENCH_CAPTURES?.split(",");
  for (const c of captures.filter((c) => !only || only.includes(c.name))) {
    const tcpdump = tcpdumpSeconds(c.file, TCPDUMP_RUNS);
    results.push(await replayFigures(c.name, c.file, c.local, tcpdump, c.frames));
  }
  return {
    captures: results,
    e2e_frames_per_s: Math.min(...results.map((r) => r.e2e_frames_per_s)),
    target_e2e_frames_per_s: 1_000_000,
  };
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { bench: "pipeline", frames: FRAMES, parts: PARTS, cpus: (await import("node:os")).cpus().length };
  out.load_avg_1m_start = +readFileSync("/proc/loadavg", "utf8").split(" ")[0]!;
  if (PARTS.includes("replay")) out.replay = await replayPart();
  if (PARTS.includes("scale")) out.scale = await (await import("./rules-scale.ts")).scalePart();
  if (PARTS.includes("live")) out.live = await (await import("./live-part.ts")).livePart();
  out.load_avg_1m_end = +readFileSync("/proc/loadavg", "utf8").split(" ")[0]!;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:pipeline: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
