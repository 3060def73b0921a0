import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIR_EGRESS, DIR_INGRESS } from "@vigil/frames";
import { createVethPair, inNetns, netnsUnavailableReason, repoRoot, waitFor, type VethPair } from "@vigil/testing";

const main = join(repoRoot, "services/capture/dist/main.js");
const sinkScript = join(repoRoot, "services/capture/test/support/netns-sink.mjs");
const skip = netnsUnavailableReason() ?? (existsSync(main) ? null : "services/capture is not built (run node scripts/build.mjs)");
if (skip) console.warn(`skipping the AF_PACKET capture service test: ${skip}`);

function start(ns: string, cmd: string, args: string[], env: Record<string, string> = {}): { proc: ChildProcess; out: () => string; err: () => string } {
  const proc = spawn("ip", ["netns", "exec", ns, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return { proc, out: () => out, err: () => err };
}

const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once("exit", (c) => r(c))));

describe.skipIf(skip)(`capture daemon on AF_PACKET in a veth pair${skip ? ` — skipped: ${skip}` : ""}`, () => {
  let veth: VethPair;
  let dir: string;
  const children: ChildProcess[] = [];
  beforeAll(() => {
    veth = createVethPair();
    dir = mkdtempSync(join(tmpdir(), "vigil-capture-afp-"));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await Promise.all(children.map(exited));
    veth?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it("publishes live frames of both directions with their direction, on the remote peer's shard", async () => {
    // Everything runs in namespace A: its own nats-server on its own loopback, the daemon, a subscriber.
    const nats = start(veth.a, "nats-server", ["-a", "127.0.0.1", "-p", "4222"]);
    children.push(nats.proc);
    const sink = start(veth.a, process.execPath, [sinkScript, "nats://127.0.0.1:4222", "4000"]);
    children.push(sink.proc);
    await waitFor("sink ready", () => sink.out().startsWith("ready"), 10_000);
    const config = join(dir, "vigil.yaml");
    writeFileSync(config, `capture:\n  source: afpacket\n  interface: ${veth.ifA}\n  sourceId: test/afpacket\n  metrics:\n    port: 9470\nnats:\n  servers: [nats://127.0.0.1:4222]\n`);
    const daemon = start(veth.a, process.execPath, [main], { VIGIL_CONFIG: config });
    children.push(daemon.proc);
    await waitFor("daemon capturing", () => daemon.err().includes('"capturing"'), 10_000);
    inNetns(veth.b, "ping", ["-c", "3", "-i", "0.1", "-W", "1", veth.addrA4]);
    inNetns(veth.b, "ping", ["-6", "-c", "3", "-i", "0.1", "-W", "1", veth.addrA6]);
    const metrics = inNetns(veth.a, "curl", ["-s", "http://127.0.0.1:9470/metrics"]);
    expect(metrics).toMatch(/^vigil_capture_frames_captured_total\{[^}]*source="afpacket"[^}]*\} [1-9]/m);
    const result = await new Promise<{ frames: { shard: number; direction: number; family: number; proto: number; src: string; dst: string }[]; batches: { sourceId: string }[]; heartbeats: number }>((resolve, reject) =>
      sink.proc.once("exit", () => {
        const line = sink.out().split("\n").filter((l) => l.startsWith("{")).pop();
        if (line) resolve(JSON.parse(line));
        else reject(new Error(`sink: ${sink.err()}`));
      }),
    );
    daemon.proc.kill("SIGTERM");
    expect(await exited(daemon.proc)).toBe(0);
    expect(result.heartbeats).toBeGreaterThan(0);
    expect(result.batches.every((b) => b.sourceId === "test/afpacket")).toBe(true);
    const req = result.frames.filter((f) => f.family === 4 && f.proto === 1 && f.src === veth.addrB4);
    const rep = result.frames.filter((f) => f.family === 4 && f.proto === 1 && f.dst === veth.addrB4);
    expect(req.length).toBe(3);
    expect(rep.length).toBe(3);
    expect(req.every((f) => f.direction === DIR_INGRESS)).toBe(true);
    expect(rep.every((f) => f.direction === DIR_EGRESS)).toBe(true);
    expect(new Set([...req, ...rep].map((f) => f.shard)).size).toBe(1);
    expect(result.frames.filter((f) => f.family === 6 && f.proto === 58).length).toBeGreaterThanOrEqual(6);
  }, 30_000);
});
