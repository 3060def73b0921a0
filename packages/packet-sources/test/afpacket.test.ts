import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIR_EGRESS, DIR_INGRESS } from "@vigil/frames";
import { createVethPair, inNetns, netnsUnavailableReason, type VethPair } from "@vigil/testing";

const here = dirname(fileURLToPath(import.meta.url));
const child = join(here, "support/afpacket-child.mjs");
const built = existsSync(join(here, "../dist/index.js")) && existsSync(join(here, "../native/build/Release/vigil_packet_sources.node"));
const skip = netnsUnavailableReason() ?? (built ? null : "packet-sources is not built (run node scripts/build.mjs)");
if (skip) console.warn(`skipping AF_PACKET tests: ${skip}`);

interface Seen {
  shard: number;
  ifindex: number;
  origLen: number;
  capLen: number;
  direction: number;
  family: number;
  proto: number;
  src: string;
  dst: string;
  sport: number;
}
interface ChildResult {
  frames?: Seen[];
  stats?: Record<string, number>;
  error?: { code: string; message: string };
}

/** Starts a capture in the namespace; resolves `ready` when the socket is bound, `result` at the end. */
function capture(ns: string, iface: string, ms: number, opts: object = {}, prefix: string[] = []) {
  const proc = spawn("ip", ["netns", "exec", ns, ...prefix, process.execPath, child, iface, String(ms), JSON.stringify(opts)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let onReady: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  proc.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.startsWith("ready\n") || out.startsWith("{")) onReady();
  });
  proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const result = new Promise<ChildResult>((resolve, reject) =>
    proc.once("exit", (code) => {
      onReady();
      const line = out.split("\n").filter((l) => l.startsWith("{")).pop();
      if (!line) reject(new Error(`capture child exited ${code}: ${err}`));
      else resolve(JSON.parse(line) as ChildResult);
    }),
  );
  return { ready, result };
}

describe.skipIf(skip)(`AF_PACKET source in a veth pair${skip ? ` — skipped: ${skip}` : ""}`, () => {
  let veth: VethPair;
  beforeAll(() => {
    veth = createVethPair();
  });
  afterAll(() => veth?.destroy());

  it("captures both directions with direction from the packet type, the interface index and IPv4 + IPv6", async () => {
    const c = capture(veth.a, veth.ifA, 1500);
    await c.ready;
    inNetns(veth.b, "ping", ["-c", "3", "-i", "0.1", "-W", "1", veth.addrA4]);
    inNetns(veth.b, "ping", ["-6", "-c", "3", "-i", "0.1", "-W", "1", veth.addrA6]);
    const { frames, stats, error } = await c.result;
    expect(error).toBeUndefined();
    const ifindex = Number(inNetns(veth.a, "cat", [`/sys/class/net/${veth.ifA}/ifindex`]).trim());
    const requests4 = frames!.filter((f) => f.family === 4 && f.proto === 1 && f.src === veth.addrB4);
    const replies4 = frames!.filter((f) => f.family === 4 && f.proto === 1 && f.src === veth.addrA4);
    expect(requests4.length).toBe(3);
    expect(replies4.length).toBe(3);
    expect(requests4.every((f) => f.direction === DIR_INGRESS && f.ifindex === ifindex && f.dst === veth.addrA4)).toBe(true);
    expect(replies4.every((f) => f.direction === DIR_EGRESS && f.ifindex === ifindex)).toBe(true);
    // Both directions of the exchange are on one shard: the remote (B) decides it.
    expect(new Set([...requests4, ...replies4].map((f) => f.shard)).size).toBe(1);
    const echo6 = frames!.filter((f) => f.family === 6 && f.proto === 58 && f.origLen === 64 + 40);
    expect(echo6.length).toBe(6);
    expect(echo6.filter((f) => f.direction === DIR_INGRESS).length).toBe(3);
    expect(frames!.every((f) => f.capLen <= 128 && f.capLen <= f.origLen)).toBe(true);
    expect(stats!.frames_captured).toBe(frames!.length);
    expect(stats!.ring_drops).toBe(0);
  }, 20_000);

  it("applies a BPF filter in the kernel", async () => {
    const c = capture(veth.a, veth.ifA, 1200, { filter: "icmp and src host " + veth.addrB4 });
    await c.ready;
    inNetns(veth.b, "ping", ["-c", "2", "-i", "0.1", "-W", "1", veth.addrA4]);
    inNetns(veth.b, "ping", ["-6", "-c", "2", "-i", "0.1", "-W", "1", veth.addrA6]);
    const { frames } = await c.result;
    expect(frames!.length).toBe(2);
    expect(frames!.every((f) => f.family === 4 && f.src === veth.addrB4)).toBe(true);
  }, 20_000);

  it("splits flows between the members of a fanout group, each frame to exactly one", async () => {
    const opts = { fanoutGroup: 4242, filter: "udp port 9999" };
    const c1 = capture(veth.a, veth.ifA, 2000, opts);
    const c2 = capture(veth.a, veth.ifA, 2000, opts);
    await Promise.all([c1.ready, c2.ready]);
    const script = `import socket\nfor p in range(200):\n  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n  s.bind(("${veth.addrB4}",20000+p))\n  s.sendto(b"x"*32,("${veth.addrA4}",9999))\n  s.close()\n`;
    inNetns(veth.b, "python3", ["-c", script]);
    const [r1, r2] = await Promise.all([c1.result, c2.result]);
    const ports1 = r1.frames!.map((f) => f.sport);
    const ports2 = r2.frames!.map((f) => f.sport);
    expect(ports1.length + ports2.length).toBe(200);
    expect(new Set([...ports1, ...ports2]).size).toBe(200);
    expect(ports1.length).toBeGreaterThan(20);
    expect(ports2.length).toBeGreaterThan(20);
  }, 20_000);

  it("names an unknown interface and a missing permission", async () => {
    const unknown = await capture(veth.a, "nosuch0", 100).result;
    expect(unknown.error).toMatchObject({ code: "VIGIL_ERR_INTERFACE", message: expect.stringContaining("nosuch0") });
    const unprivileged = await capture(veth.a, veth.ifA, 100, {}, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]).result;
    expect(unprivileged.error).toMatchObject({ code: "VIGIL_ERR_PERMISSION", message: expect.stringContaining("CAP_NET_RAW") });
  }, 20_000);
});
