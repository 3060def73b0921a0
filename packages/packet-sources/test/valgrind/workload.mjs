// Exercised under Valgrind memcheck by valgrind.test.ts: a replay of a large
// capture, a kernel-ring reader run (normal, wrap-around, full ring), the error
// paths, and a source closed in the middle. Frames are checked, so a wrong read
// shows up as a failure too, not only as a Valgrind error.
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LINKTYPE, openKernelRing, openPcap, PcapWriter, readPcapRecords } from "../../dist/index.js";

// The ring producer is the test-only addon (test/support/ring-producer.ts gives its path).
const [pcap, expectFrames, ringProducerPath] = process.argv.slice(2);
const { RingProducer } = createRequire(import.meta.url)(ringProducerPath);
const dir = mkdtempSync(join(tmpdir(), "vigil-vg-"));
const fail = (msg) => {
  process.stderr.write(`workload: ${msg}\n`);
  process.exit(3);
};

// 1. Replay of a large capture with local networks, snaplen and 16 shards.
let frames = 0;
const replay = openPcap(pcap, { local: ["10.0.0.0/8", "2001:db8::/32"], snaplen: 200 });
for await (const b of replay) frames += b.frameCount;
if (frames !== Number(expectFrames)) fail(`replayed ${frames} frames, expected ${expectFrames}`);

// 1b. Header measurement (headersOnly) over the same capture, then over packets of random bytes
// behind a valid version nibble: lengths, offsets and extension chains that lie must not read past the packet.
frames = 0;
for await (const b of openPcap(pcap, { headersOnly: true })) frames += b.frameCount;
if (frames !== Number(expectFrames)) fail(`headersOnly replayed ${frames} frames, expected ${expectFrames}`);
const noise = join(dir, "noise.pcap");
const writer = new PcapWriter(noise, LINKTYPE.RAW);
let seed = 7;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 0xff;
for (let i = 0; i < 4000; i++) {
  const pkt = Buffer.alloc(1 + (rnd() % 120), 0);
  for (let j = 0; j < pkt.length; j++) pkt[j] = rnd();
  pkt[0] = i % 2 ? 0x40 | (pkt[0] & 0x0f) : 0x60 | (pkt[0] & 0x0f);
  if (pkt.length > 6 && i % 4 === 1) pkt[6] = [0, 43, 44, 60, 51, 59, 6, 17][rnd() % 8];
  writer.write(BigInt(i) * 1000n, pkt);
}
writer.close();
let kept = 0;
for await (const b of openPcap(noise, { headersOnly: true, snaplen: 65535 })) kept += b.frameCount;
if (kept === 0) fail("no frame of the random capture was kept");

// 1c. Records longer than the record reader's buffer (it grows to hold one), between short ones.
const huge = join(dir, "huge.pcap");
const hw = new PcapWriter(huge, LINKTYPE.RAW);
for (const [i, size] of [100, 200_000, 60, 131_072, 262_144, 40].entries()) {
  const pkt = Buffer.alloc(size, i);
  pkt[0] = 0x45;
  hw.write(BigInt(i) * 1000n, pkt);
}
hw.close();
let hugeFrames = 0;
for await (const b of openPcap(huge, { snaplen: 65535 })) hugeFrames += b.frameCount;
if (hugeFrames !== 6) fail(`read ${hugeFrames} of the 6 long records`);

// 2. A filtered replay through readPcapRecords, and a replay closed half way.
let udp = 0;
for await (const records of readPcapRecords(pcap, { filter: "udp" })) udp += records.length > 0 ? 1 : 0;
const early = openPcap(pcap, { batchBytes: 4096 });
let n = 0;
for await (const _ of early) if (++n === 10) break;

// 3. Corrupt input and bad options.
const cut = join(dir, "cut.pcap");
writeFileSync(cut, (await import("node:fs")).readFileSync(pcap).subarray(0, 300_000));
let corrupt = null;
try {
  for await (const _ of openPcap(cut)) void _;
} catch (err) {
  corrupt = err;
}
if (corrupt?.code !== "VIGIL_ERR_PCAP") fail(`truncated capture gave ${corrupt?.code}`);
for (const bad of [() => openPcap(pcap, { filter: "tcp port" }), () => openPcap(join(dir, "none.pcap")), () => openKernelRing({ device: join(dir, "nodev") })])
  try {
    bad();
    fail("a bad input did not throw");
  } catch (err) {
    if (!String(err.code).startsWith("VIGIL_ERR_")) fail(`unexpected error ${err}`);
  }

// 4. Kernel ring reader: drain while producing (wrap-around), then a full ring.
const ringPath = join(dir, "ring");
const producer = new RingProducer(ringPath, { rings: 2, slots: 64, snaplen: 128 });
const rec = Buffer.alloc(24 + 60);
rec.writeUInt16LE(60, 16);
rec[18] = 1;
rec[19] = 4;
rec[24] = 0x45;
const many = Buffer.concat(Array.from({ length: 32 }, (_, i) => (rec.writeUInt32LE(i, 24 + 12), Buffer.from(rec))));
const ring = openKernelRing({ device: ringPath, flushMs: 1 });
let produced = 0;
let received = 0;
const reader = (async () => {
  for await (const b of ring) {
    received += b.frameCount;
    if (received >= 2000) break;
  }
})();
while (produced < 2000) {
  produced += producer.produce(produced % 64 < 32 ? 0 : 1, many.subarray(0, 84 * Math.min(32, 2000 - produced))).written;
  await new Promise((r) => setTimeout(r, 2));
}
await reader;
const full = producer.produce(0, Buffer.concat([many, many, many]));
if (full.dropped === 0) fail("a full ring dropped nothing");
producer.close();
rmSync(ringPath);
const ring2Path = join(dir, "ring2");
const p2 = new RingProducer(ring2Path, { rings: 1, slots: 32 });
p2.produce(0, Buffer.concat([many, many]));
const ring2 = openKernelRing({ device: ring2Path });
let got2 = 0;
for await (const b of ring2) if ((got2 += b.frameCount) >= 32) break;
if (ring2.stats().ring_drops !== 32) fail(`ring drops ${ring2.stats().ring_drops}`);
p2.close();

rmSync(dir, { recursive: true, force: true });
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 50));
globalThis.gc?.();
process.stdout.write(JSON.stringify({ frames, udpBatches: udp, ringFrames: received }) + "\n");
