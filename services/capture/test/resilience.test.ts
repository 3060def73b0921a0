import { spawn } from "node:child_process";
import { readFileSync, rmSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { disposeNatsServer, repoRoot, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { startCapture } from "../src/index.js";
import { conversationPackets, ether, expectedRecords, FrameSink, readCaptureFile, tempDir, writeCapture } from "./support/frames.js";

const dir = tempDir("vigil-capture-res-");
const cli = join(repoRoot, "packages/cli/dist/main.js");

let nats: NatsServerHandle;
let sink: FrameSink;

beforeAll(async () => {
  nats = await startNatsServer();
  sink = await FrameSink.open(nats.url);
});
afterAll(async () => {
  await sink?.close();
  if (nats) await disposeNatsServer(nats);
  rmSync(dir, { recursive: true, force: true });
});

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("bad input through `vigil capture`", () => {
  it("a truncated pcap: one line naming file and offset, non-zero exit, the frames before the fault published", async () => {
    const path = writeCapture(join(dir, "trunc.pcap"), conversationPackets(3000));
    const buf = readFileSync(path);
    let off = 24;
    for (let i = 0; i < 2000; i++) off += 16 + buf.readUInt32LE(off + 8);
    truncateSync(path, off + 7);
    const want = expectedRecords(readCaptureFile(path), { headersOnly: true });
    expect(want.frames).toBe(2000);
    const r = await runCli(["capture", "--pcap", path, "--nats", nats.url, "--source-id", "test/trunc"]);
    expect(r.code).toBe(1);
    const errLine = r.stderr.trim().split("\n").pop()!;
    expect(errLine).toBe(`vigil capture: corrupt or truncated capture file ${path} at byte ${off}: ${errLine.split(": ").slice(2).join(": ")}`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    await waitFor("end-of-stream", () => sink.endOfStreamShards("test/trunc") === 16, 10_000);
    const got = sink.shardRecords("test/trunc", 16);
    got.forEach((s, i) => expect(s.equals(want.shards[i])).toBe(true));
  }, 30_000);

  it("missing /dev/vigil, an unknown interface, a missing file and NATS unreachable: clear one-line errors", async () => {
    const kernel = await runCli(["capture", "--kernel", "--device", join(dir, "nodev"), "--nats", nats.url]);
    expect(kernel.code).toBe(1);
    expect(kernel.stderr).toMatch(/^vigil capture: .*not loaded.*modprobe vigil.*--interface/);
    const iface = await runCli(["capture", "--interface", "nosuch0", "--nats", nats.url]);
    expect(iface.code).toBe(1);
    expect(iface.stderr.trim()).toMatch(/^vigil capture: unknown interface "nosuch0"/);
    const file = await runCli(["capture", "--pcap", join(dir, "none.pcap"), "--nats", nats.url]);
    expect(file.code).toBe(1);
    expect(file.stderr.trim()).toBe(`vigil capture: cannot open capture file ${join(dir, "none.pcap")}: No such file or directory`);
    const down = await runCli(["capture", "--pcap", join(dir, "trunc.pcap"), "--nats", "nats://127.0.0.1:1"]);
    expect(down.code).toBe(69);
    expect(down.stderr.trim()).toMatch(/^vigil capture: cannot reach NATS at nats:\/\/127.0.0.1:1/);
    const usage = await runCli(["capture", "--pcap", "x", "--kernel"]);
    expect(usage.code).toBe(2);
    for (const r of [kernel, iface, file, down, usage]) expect(r.stderr.split("\n").filter(Boolean).length).toBe(1);
  }, 30_000);
});

describe("NATS restarted in the middle of a replay", () => {
  let nc: NatsConnection;
  afterAll(async () => nc?.close());

  it("keeps capturing, drops and counts while NATS is down, resumes publishing and ends with end-of-stream", async () => {
    // 4000 packets 1 ms apart: a 4 s replay at recorded pace.
    const packets = conversationPackets(4000, 3);
    const path = writeCapture(join(dir, "paced.pcap"), packets, 1, ether, 1_700_000_000_000_000_000n, 1_000_000n);
    // The sink must be back (and resubscribed) before the capture: the first batch per shard after the
    // outage carries the drop count, and NATS does not keep messages for a subscriber that is not there.
    await sink.nc.close();
    sink = await FrameSink.open(nats.url, 10);
    nc = await connect({ servers: [nats.url], reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 400, reconnectJitter: 0 });
    const handle = startCapture({ source: "pcap", file: path, speed: 1, nc, sourceId: "test/restart", endOfStreamWaitMs: 20_000 });
    await waitFor("first batches", () => sink.of("test/restart").length > 20, 5000);
    await nats.stop(true);
    const publishedBeforeOutage = handle.summary().framesPublished;
    await new Promise((r) => setTimeout(r, 800));
    const during = handle.summary();
    expect(during.framesDropped).toBeGreaterThan(0);
    await nats.start();
    const summary = await handle.done;
    expect(summary.endOfStream).toBe(true);
    expect(summary.framesCaptured).toBe(4000);
    expect(summary.framesPublished + summary.framesDropped).toBe(4000);
    expect(summary.framesDropped).toBeGreaterThan(100);
    expect(summary.framesPublished).toBeGreaterThan(publishedBeforeOutage + 500);
    await waitFor("end-of-stream after the restart", () => sink.endOfStreamShards("test/restart") === 16, 15_000);
    const batches = sink.of("test/restart");
    const received = batches.reduce((a, b) => a + b.frameCount, 0);
    const reportedDrops = batches.reduce((a, b) => a + b.droppedBefore, 0);
    expect(received).toBeLessThanOrEqual(summary.framesPublished);
    expect(reportedDrops).toBeGreaterThan(0);
    expect(reportedDrops).toBeLessThanOrEqual(summary.framesDropped);
    // Sequence numbers count dropped batches: the receiver sees gaps.
    const gaps = Array.from({ length: 16 }, (_, s) => {
      const seqs = batches.filter((b) => b.shard === s).map((b) => b.seq);
      return Math.max(...seqs) - seqs.length;
    });
    expect(gaps.some((g) => g > 0)).toBe(true);
    const eos = batches.filter((b) => b.endOfStream);
    expect(eos.reduce((a, b) => a + b.framesTotal, 0)).toBe(summary.framesPublished);
  }, 40_000);
});
