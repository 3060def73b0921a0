import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, subjects } from "@vigil/bus";
import type { Heartbeat } from "@vigil/proto";
import { disposeNatsServer, freePort, repoRoot, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { conversationPackets, ether, FrameSink, tempDir, writeCapture } from "./support/frames.js";

const main = join(repoRoot, "services/capture/dist/main.js");
const skip = existsSync(main) ? null : "services/capture is not built (run node scripts/build.mjs)";
const dir = tempDir("vigil-capture-daemon-");

let nats: NatsServerHandle;
let sink: FrameSink;
const heartbeats: Heartbeat[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  sink = await FrameSink.open(nats.url);
  sink.nc.subscribe(subjects.heartbeat("capture"), { callback: (_e, m) => heartbeats.push(codecs.heartbeat.decode(m.data)) });
  await sink.nc.flush();
});
afterAll(async () => {
  await sink?.close();
  if (nats) await disposeNatsServer(nats);
  rmSync(dir, { recursive: true, force: true });
});

function daemon(env: Record<string, string>): { proc: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const config = join(dir, "empty.yaml");
  writeFileSync(config, "");
  const proc = spawn(process.execPath, [main], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, VIGIL_CONFIG: config, VIGIL_NATS__SERVERS: `[${nats.url}]`, ...env },
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return { proc, exited: new Promise((r) => proc.once("exit", (code) => r(code))), stderr: () => stderr };
}

describe.skipIf(skip)(`capture daemon${skip ? ` — skipped: ${skip}` : ""}`, () => {
  it("serves metrics, sends heartbeats and stops gracefully on SIGTERM", async () => {
    const path = writeCapture(join(dir, "paced.pcap"), conversationPackets(6000), 1, ether, 1_700_000_000_000_000_000n, 1_000_000n);
    const port = await freePort();
    const d = daemon({
      VIGIL_CAPTURE__SOURCE: "pcap",
      VIGIL_CAPTURE__FILE: path,
      VIGIL_CAPTURE__SPEED: "1",
      VIGIL_CAPTURE__SOURCE_ID: "test/daemon",
      VIGIL_CAPTURE__METRICS__PORT: String(port),
    });
    await waitFor("heartbeat", () => heartbeats.some((h) => h.metricsPort === port), 10_000);
    await waitFor("batches", () => sink.of("test/daemon").length > 10, 10_000);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(value(/^vigil_capture_batches_published_total\{[^}]*\} (\d+)/m)).toBeGreaterThan(0);
    const capturedBeforeStop = value(/^vigil_capture_frames_captured_total\{[^}]*source="pcap"[^}]*\} (\d+)/m);
    expect(capturedBeforeStop).toBeGreaterThan(0);
    expect(text).toMatch(/^vigil_capture_batch_fill_ratio_bucket\{/m);
    expect(text).toMatch(/^vigil_capture_ring_drops_total/m);
    expect(text).toMatch(/^vigil_process_cpu_user_seconds_total/m);
    expect(value(/^vigil_capture_bus_connected\{[^}]*\} (\d+)/m)).toBe(1);
    d.proc.kill("SIGTERM");
    expect(await d.exited).toBe(0);
    await waitFor("goodbye heartbeat", () => heartbeats.some((h) => h.stopping && h.metricsPort === port), 5000);
    // The heartbeats say what was captured (and lost: nothing here), so vigil status and the console show it.
    const mine = heartbeats.filter((h) => h.metricsPort === port);
    expect(Math.max(...mine.map((h) => h.frames))).toBeGreaterThan(0);
    expect(mine.every((h) => h.framesLost === 0)).toBe(true);
    // Stopped in the middle: no end-of-stream claims a complete replay.
    expect(sink.endOfStreamShards("test/daemon")).toBe(0);
    const published = sink.of("test/daemon").reduce((a, b) => a + b.frameCount, 0);
    // Every frame read before SIGTERM was flushed out before the exit.
    expect(published).toBeGreaterThanOrEqual(capturedBeforeStop);
    expect(published).toBeLessThan(6000);
  }, 30_000);

  it("replays a file to the end, publishes end-of-stream and exits 0", async () => {
    const path = writeCapture(join(dir, "fast.pcap"), conversationPackets(5000));
    const d = daemon({ VIGIL_CAPTURE__SOURCE: "pcap", VIGIL_CAPTURE__FILE: path, VIGIL_CAPTURE__SOURCE_ID: "test/daemon-full", VIGIL_CAPTURE__METRICS__PORT: "0" });
    expect(await d.exited).toBe(0);
    await waitFor("end-of-stream", () => sink.endOfStreamShards("test/daemon-full") === 16, 5000);
    expect(sink.of("test/daemon-full").reduce((a, b) => a + b.frameCount, 0)).toBe(5000);
  }, 30_000);

  it("stops on a bad configuration value with the key, the problem and where it came from", async () => {
    const d = daemon({ VIGIL_CAPTURE__SOURCE: "pcap", VIGIL_CAPTURE__FILE: "/x.pcap", VIGIL_CAPTURE__SHARDS: "0" });
    expect(await d.exited).toBe(1);
    expect(d.stderr()).toMatch(/capture\.shards: .*VIGIL_CAPTURE__SHARDS/);
    const d2 = daemon({ VIGIL_CAPTURE__SOURCE: "afpacket" });
    expect(await d2.exited).toBe(1);
    expect(d2.stderr()).toMatch(/capture\.interface: source afpacket needs an interface/);
  }, 30_000);
});
