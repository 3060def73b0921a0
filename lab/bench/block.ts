#!/usr/bin/env node
// npm run bench:block: runs the live lab RUNS times (default 3) and prints, as
// its last line, the median seconds from an attack's first packet to the
// attacker's block: scan_block_s (nmap -sS -T4), repeat_flood_block_s (hping3
// SYN flood from the scan's host once its block expired) and flood_block_s
// (hping3 SYN flood from a new host). Needs root and the built services.
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Lab, LAB_DIR } from "../dist/lab.js";
import type { LiveReport } from "../dist/live.js";

const run = promisify(execFile);
const runs = Number(process.env.VIGIL_BENCH_RUNS ?? 3);
const detectors = process.env.VIGIL_LIVE_DETECTORS ?? "pst,som";

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const scan: number[] = [];
  const flood: number[] = [];
  const repeat: number[] = [];
  let missed = 0;
  for (let i = 0; i < runs; i++) {
    const lab = new Lab({ prefix: `vbench${i}` });
    await lab.up();
    try {
      const { stdout } = await run(
        "ip",
        ["netns", "exec", lab.namespace("victim"), process.execPath, join(LAB_DIR, "dist", "live-main.js"), "--prefix", lab.prefix, "--detectors", detectors, "--attacks", "scan@atk,flood@atk,flood@atk2"],
        { timeout: 300_000, maxBuffer: 1 << 20 },
      );
      const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as LiveReport;
      for (const a of report.attacks) {
        // A block already in force at the attack's start is not this attack's.
        if (a.block_s === null || a.in_force_at_start) missed++;
        else (a.attack === "scan" ? scan : a.repeat ? repeat : flood).push(a.block_s);
      }
      process.stderr.write(`bench:block run ${i + 1}/${runs}: ${JSON.stringify(report.attacks.map((a) => ({ attack: a.attack, host: a.host, block_s: a.block_s, in_force_at_start: a.in_force_at_start })))}\n`);
    } finally {
      await lab.down().catch(() => undefined);
      rmSync(lab.stateDir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`${JSON.stringify({ bench: "block", runs, detectors, scan_block_s: median(scan), repeat_flood_block_s: median(repeat), flood_block_s: median(flood), missed })}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:block: ${err.message}\n`);
  process.exit(1);
});
