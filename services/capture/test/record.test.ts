import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIR_INGRESS, PacketDecoder, RecordCursor, RecordWriter } from "@vigil/frames";
import { readPcapRecords } from "@vigil/packet-sources";
import { netnsUnavailableReason, repoRoot } from "@vigil/testing";
// The kernel's side of the ring, played by the packet-sources tests' producer (test code, never shipped).
import { conversationPackets } from "../../../packages/packet-sources/test/support/gen.js";
import { createRingProducer, ringProducerAddonPath } from "../../../packages/packet-sources/test/support/ring-producer.js";

// `vigil record` then `vigil train pst`, through the real CLI: the host's own
// traffic (here: a namespace's loopback with a client talking to a server on
// port 8080) recorded with AF_PACKET, then trained on, with a warning for every
// service class the recording had too little of.

const cliMain = join(repoRoot, "packages/cli/dist/main.js");
const skip = netnsUnavailableReason() ?? (existsSync(cliMain) ? null : "not built (node scripts/build.mjs)");
if (skip) console.warn(`vigil record tests skipped: ${skip}`);

function vigil(args: string[], ns?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, argv] = ns ? ["ip", ["netns", "exec", ns, process.execPath, cliMain, ...args]] : [process.execPath, [cliMain, ...args]];
  const child = spawn(cmd, argv as string[], { stdio: ["ignore", "pipe", "pipe"], env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIGIL_"))) });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => (out.stdout += d));
  child.stderr.on("data", (d: Buffer) => (out.stderr += d));
  return new Promise((r) => child.on("close", (code) => r({ code, ...out })));
}

/** A server on 127.0.0.1:8080 in the namespace and `count` short client connections to it, one every 20 ms. */
const TRAFFIC = `
const net = require("node:net");
const count = Number(process.argv[1]);
const server = net.createServer((s) => { s.on("data", () => s.end("HTTP/1.0 200 OK\\r\\n\\r\\nok")); s.on("error", () => {}); });
server.listen(8080, "127.0.0.1", async () => {
  for (let i = 0; i < count; i++) {
    await new Promise((done) => {
      const c = net.connect(8080, "127.0.0.1", () => c.write("GET / HTTP/1.0\\r\\n\\r\\n"));
      c.on("data", () => {}); c.on("close", done); c.on("error", done);
    });
    await new Promise((r) => setTimeout(r, 20));
  }
  server.close();
});`;

describe.skipIf(skip)("vigil record", () => {
  const ns = `vigil-rec-${process.pid}`;
  let dir: string;
  beforeAll(() => {
    execFileSync("ip", ["netns", "add", ns]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    dir = mkdtempSync(join(tmpdir(), "vigil-record-"));
  });
  afterAll(() => {
    execFileSync("ip", ["netns", "del", ns]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("records a frame count of live traffic into a pcap the training reads, and `vigil train pst` names the classes it had too little of", async () => {
    const pcap = join(dir, "own.pcap");
    const rec = vigil(["record", "--interface", "lo", "--frames", "300", "--seconds", "60", "--out", pcap], ns);
    await new Promise((r) => setTimeout(r, 1500)); // the socket is bound before traffic starts
    const traffic = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", TRAFFIC, "150"], { stdio: "ignore" });
    const r = await rec;
    traffic.kill();
    expect(r.stderr).toMatch(/vigil record: recording AF_PACKET on lo into .*own\.pcap \(60 s or 300 frames, snaplen 128/);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/vigil record: 300 frames recorded: 300 frames in /);
    expect(r.stdout).toMatch(/next: vigil train pst --pcap \S+own\.pcap --out DIR --local 127\.0\.0\.1\/32/);

    // The file holds the frames from the IP header on, cut at the snaplen, as capture publishes them.
    const c = new RecordCursor();
    const d = new PacketDecoder();
    let frames = 0;
    let to8080 = 0;
    for await (const batch of readPcapRecords(pcap, { local: ["127.0.0.1/32"] })) {
      c.reset(batch);
      while (c.next()) {
        frames++;
        expect(c.capLen).toBeLessThanOrEqual(128);
        if (d.decode(c.buf, c.dataOffset, c.capLen, c.family, c.origLen) && (d.dstPort === 8080 || d.srcPort === 8080)) to8080++;
      }
    }
    expect(frames).toBe(300);
    expect(to8080).toBeGreaterThan(250);

    const models = join(dir, "models");
    const t = await vigil(["train", "pst", "--pcap", pcap, "--out", models, "--local", "127.0.0.1/32", "--quiet"]);
    expect(t.code, t.stderr).toBe(0);
    // 8080 is in the "web" class: ~30 connections, far from the 100 a model of its own needs.
    expect(t.stderr).toMatch(/vigil train pst: warning: service class web: \d+ connections \(\d+ for training after the hold-out\), below the minimum of 100 \(--min-class-sequences\): no web model written; ports 80,8000,8008,8080 will be scored by the "other" model/);
    expect(t.stderr).toMatch(/warning: service class ssh: 0 connections .* port 22 will be scored by the "other" model/);
    expect(readdirSync(models)).toEqual(["other.pst.json"]);

    // Enough of them with a lower minimum: a web model, and no warning for web.
    const t2 = await vigil(["train", "pst", "--pcap", pcap, "--out", join(dir, "models2"), "--local", "127.0.0.1/32", "--quiet", "--min-class-sequences", "5"]);
    expect(t2.code, t2.stderr).toBe(0);
    expect(t2.stderr).not.toMatch(/service class web:/);
    expect(readdirSync(join(dir, "models2")).sort()).toEqual(["other.pst.json", "web.pst.json"]);
  }, 120_000);

  it.skipIf(!existsSync(ringProducerAddonPath))("records from the kernel module's ring (--kernel --device): the frames as the module wrote them, cut at the snaplen", async () => {
    const ringFile = join(dir, "vigil.ring");
    const ring = createRingProducer(ringFile, { rings: 2, slots: 512, snaplen: 256 });
    const packets = conversationPackets(400);
    const w = new RecordWriter();
    packets.forEach((data, i) => w.append({ tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 1000n, ifindex: 2, origLen: data.length, direction: DIR_INGRESS, family: data[0] >> 4, flags: 0, data }));
    expect(ring.produce(0, w.bytes().slice())).toEqual({ written: 400, dropped: 0 });
    const pcap = join(dir, "ring.pcap");
    const r = await vigil(["record", "--kernel", "--device", ringFile, "--frames", "400", "--seconds", "30", "--snaplen", "64", "--out", pcap]);
    ring.close();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/recording the kernel ring \S+vigil\.ring into \S+ring\.pcap \(30 s or 400 frames, snaplen 64/);
    expect(r.stderr).toMatch(/400 frames recorded: 400 frames in/);
    const c = new RecordCursor();
    const got: Buffer[] = [];
    for await (const batch of readPcapRecords(pcap)) for (c.reset(batch); c.next(); ) got.push(Buffer.from(c.data()));
    expect(got.length).toBe(400);
    got.forEach((data, i) => expect(data.equals(Buffer.from(packets[i].subarray(0, 64)))).toBe(true));
  }, 60_000);

  it("a bad source, an unwritable file or a missing amount is a clear one-line error", async () => {
    const noIf = await vigil(["record", "--interface", "nosuch0", "--seconds", "1", "--out", join(dir, "x.pcap")], ns);
    expect(noIf.code).toBe(1);
    expect(noIf.stderr).toMatch(/^vigil record: .*nosuch0/);
    expect(noIf.stderr).not.toMatch(/\n\s+at /);
    const noAmount = await vigil(["record", "--interface", "lo", "--out", join(dir, "y.pcap")], ns);
    expect(noAmount.code).toBe(2);
    expect(noAmount.stderr).toContain("vigil record: say how much to record with --seconds N and/or --frames N");
    const badFile = await vigil(["record", "--interface", "lo", "--seconds", "1", "--out", join(dir, "no/such/dir/z.pcap")], ns);
    expect(badFile.code).toBe(1);
    expect(badFile.stderr).toMatch(/vigil record: cannot write \S+z\.pcap: ENOENT/);
    const badNum = await vigil(["record", "--interface", "lo", "--seconds", "soon", "--out", join(dir, "y.pcap")], ns);
    expect(badNum.code).toBe(2);
    expect(badNum.stderr).toContain('--seconds must be a number in (0, 604800], got "soon"');
  }, 60_000);
});
