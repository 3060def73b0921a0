import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot, toolMissing } from "@vigil/testing";
import { Pipeline } from "../src/pipeline.js";

// A capture that cannot be read to its end must never read as an all-clear:
// `vigil replay` and `vigil eval`, spawned as processes over the real pipeline.

const cliMain = join(repoRoot, "packages/cli/dist/main.js");
const missing = Pipeline.missingServices(["rules", "som"]);
const skip = toolMissing("nats-server") ?? (missing.length || !existsSync(cliMain) ? "not built (node scripts/build.mjs)" : null);
if (skip) console.warn(`capture error tests skipped: ${skip}`);

/** A classic pcap of `n` TCP SYNs from 10.77.0.66 to 10.77.0.10:80, one every millisecond. */
function synPcap(n: number): Buffer {
  const hdr = Buffer.alloc(24);
  hdr.writeUInt32LE(0xa1b2c3d4, 0);
  hdr.writeUInt16LE(2, 4);
  hdr.writeUInt16LE(4, 6);
  hdr.writeUInt32LE(65535, 16);
  hdr.writeUInt32LE(1, 20); // Ethernet
  const records: Buffer[] = [hdr];
  for (let i = 0; i < n; i++) {
    const frame = Buffer.alloc(14 + 20 + 20);
    frame.writeUInt16BE(0x0800, 12);
    const ip = frame.subarray(14);
    ip[0] = 0x45;
    ip.writeUInt16BE(40, 2);
    ip.writeUInt16BE(i & 0xffff, 4);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from([10, 77, 0, 66]).copy(ip, 12);
    Buffer.from([10, 77, 0, 10]).copy(ip, 16);
    let sum = 0;
    for (let j = 0; j < 20; j += 2) sum += ip.readUInt16BE(j);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    ip.writeUInt16BE(~sum & 0xffff, 10);
    const tcp = ip.subarray(20);
    tcp.writeUInt16BE(40000 + (i % 20000), 0);
    tcp.writeUInt16BE(80, 2);
    tcp.writeUInt32BE(i * 7919, 4);
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; // SYN
    tcp.writeUInt16BE(64240, 14);
    const rec = Buffer.alloc(16);
    const ts = 1_800_000_000 + i / 1000;
    rec.writeUInt32LE(Math.floor(ts), 0);
    rec.writeUInt32LE(Math.round((ts % 1) * 1e6), 4);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    records.push(rec, frame);
  }
  return Buffer.concat(records);
}

function vigil(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliMain, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(skip)("vigil replay / eval on a truncated capture", () => {
  let dir: string;
  let trunc: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vigil-trunc-"));
    writeFileSync(join(dir, "whole.pcap"), synPcap(700));
    const whole = readFileSync(join(dir, "whole.pcap"));
    // Cut in the middle of a record: the frames before it are readable, the rest is lost.
    trunc = join(dir, "trunc.pcap");
    writeFileSync(trunc, whole.subarray(0, 24 + 500 * 70 + 30));
    const label = (file: string) => ({ file, kind: "benign", packets: 700, first_ts: null, last_ts: null, benign: [] });
    writeFileSync(join(dir, "labels.json"), JSON.stringify({ version: 1, local: ["10.77.0.10/32"], captures: [label("whole.pcap"), label("trunc.pcap")] }));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("replay: exit 1, naming the file and where it is cut, no totals line that reads as an all-clear", async () => {
    const r = await vigil(["replay", trunc, "--local", "10.77.0.10/32", "--detectors", "som"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(trunc);
    expect(r.stderr).toMatch(/truncated|corrupt/);
    expect(r.stdout).not.toMatch(/\d+ frames, \d+ verdicts/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);

  it("replay of the whole file still succeeds", async () => {
    const r = await vigil(["replay", join(dir, "whole.pcap"), "--local", "10.77.0.10/32", "--detectors", "som"]);
    expect(r.stderr).not.toMatch(/truncated|corrupt/);
    expect(r.code).toBe(0);
  }, 120_000);

  it("eval: the truncated capture is an error (exit 1) named with its problem", async () => {
    const r = await vigil(["eval", dir, "--detectors", "som"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/vigil eval: trunc\.pcap: ERROR: .*trunc\.pcap: .*(truncated|corrupt)/);
    expect(r.stderr).toMatch(/vigil eval: whole\.pcap: \d+ verdicts/);
    const ev = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    expect(ev.summary.failed).toBe(1);
  }, 180_000);
});
