import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { toolMissing } from "@vigil/testing";
import { LAB_DIR } from "../src/lab.js";
import { Pipeline } from "../src/pipeline.js";

// bench:pipeline is not a timed test: this runs a small version of its replay
// part so that it keeps working, and checks that what it reports is whole and
// sane (every frame judged, sizes and times in range), never how fast it is.
const missing = Pipeline.missingServices(["rules", "pst", "som"]);
const skip = toolMissing("nats-server") ?? toolMissing("tcpdump") ?? (missing.length ? `not built: ${missing.join(", ")} (node scripts/build.mjs)` : null);
if (skip) console.warn(`bench:pipeline test skipped: ${skip}`);

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "vigil-bench-pipeline-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("bench:pipeline", () => {
  it.skipIf(skip)("replays both captures through the whole chain and reports every part of its JSON", async () => {
    const frames = 5000;
    const { stdout } = await run(process.execPath, ["--import", "../scripts/ts-bench.mjs", "bench/pipeline.ts"], {
      cwd: LAB_DIR,
      env: { ...process.env, VIGIL_BENCH_FRAMES: String(frames), VIGIL_BENCH_PARTS: "replay", VIGIL_BENCH_RUNS: "1", VIGIL_BENCH_DIR: dir },
      timeout: 240_000,
      maxBuffer: 1 << 20,
    });
    const out = JSON.parse(stdout.trim().split("\n").at(-1)!);
    expect(out).toMatchObject({ bench: "pipeline", frames, parts: ["replay"] });
    const caps = out.replay.captures as Record<string, any>[];
    expect(caps.map((c) => c.capture)).toEqual(["synthetic", "lab-mix"]);
    for (const c of caps) {
      // A few non-IP frames (ARP) of the lab captures are not published.
      expect(c.frames_published).toBeGreaterThan(frames * 0.95);
      expect(c.frames_published).toBeLessThanOrEqual(frames);
      expect(c.frames_dropped_capture).toBe(0);
      expect(c.frames_judged).toEqual({ pst: c.frames_published, som: c.frames_published });
      expect(c.e2e_s).toBeGreaterThan(0);
      expect(c.warmup_replays).toBe(2);
      expect(c.cold_e2e_s).toBeGreaterThan(0);
      expect(Number.isInteger(c.cold_verdicts)).toBe(true);
      expect(Math.abs((c.e2e_frames_per_s * c.e2e_s) / c.frames_published - 1)).toBeLessThan(0.01);
      expect(c.startup_s).toBeGreaterThan(0);
      expect(c.startup_s).toBeCloseTo(c.services_ready_s + c.capture_start_s, 1);
      expect(c.tcpdump_s).toBeGreaterThan(0);
      expect(c.ratio_to_tcpdump).toBeGreaterThan(0);
      for (const svc of ["rules", "pst", "som", "capture", "nats-server"]) {
        expect(c.peak_rss_mb[svc], svc).toBeGreaterThan(5);
        expect(c.peak_rss_mb[svc], svc).toBeLessThan(2048);
        expect(c.cpu_s[svc], svc).toBeGreaterThanOrEqual(0);
      }
    }
    expect(out.replay.e2e_frames_per_s).toBe(Math.min(...caps.map((c) => c.e2e_frames_per_s)));
  }, 300_000);
});
