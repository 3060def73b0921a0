import { performance } from "node:perf_hooks";
import { existsSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { FAMILY_IPV4, RecordWriter, craftPacket } from "@vigil/frames";
import { DEFAULT_MODELS_DIR } from "../dist/config.js";
import { Detector } from "../dist/detector.js";
import { ModelSet, readModelDir, ServiceClassMap } from "../dist/model.js";
import { readCaptureRecords } from "../dist/pcap.js";
import { A, F, P, R, S } from "../dist/synthetic.js";

/**
 * Segments per second through record walking, header decoding, connection
 * tracking and PST scoring, on one core: a synthetic mix of a million
 * connections (benign exchanges, SYN probes, resets) and real captures.
 */
const models = readModelDir(process.env.VIGIL_PST_MODELS ?? DEFAULT_MODELS_DIR);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 1_000_000);
const log = (msg: string) => process.stderr.write(`${msg}\n`);

// Every connection follows one of a few flag patterns; the packets are crafted once per pattern and
// their addresses and ports rewritten in place, so building a million connections stays cheap.
const patterns: Array<Array<{ c: boolean; flags: number; payload: number }>> = [
  [
    { c: true, flags: S, payload: 0 },
    { c: false, flags: S | A, payload: 0 },
    { c: true, flags: A, payload: 0 },
    { c: true, flags: P | A, payload: 200 },
    { c: false, flags: A, payload: 1200 },
    { c: false, flags: A, payload: 1200 },
    { c: false, flags: P | A, payload: 600 },
    { c: true, flags: A, payload: 0 },
    { c: true, flags: F | A, payload: 0 },
    { c: false, flags: F | A, payload: 0 },
    { c: true, flags: A, payload: 0 },
  ],
  [
    { c: true, flags: S, payload: 0 },
    { c: false, flags: R | A, payload: 0 },
  ],
  [
    { c: true, flags: S, payload: 0 },
    { c: false, flags: S | A, payload: 0 },
    { c: true, flags: R, payload: 0 },
  ],
];

function buildSynthetic(connections: number, interleave: number): Uint8Array[] {
  const batches: Uint8Array[] = [];
  let w = new RecordWriter(1 << 22);
  const templates = patterns.map((p) =>
    p.map((st) => craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", srcPort: 1, dstPort: 80, flags: st.flags, payloadLen: 0 })),
  );
  let ts = 1_700_000_000;
  // Connections progress in groups of `interleave`, segment by segment, so many are open at once.
  for (let base = 0; base < connections; base += interleave) {
    const n = Math.min(interleave, connections - base);
    const maxLen = 11;
    for (let step = 0; step < maxLen; step++) {
      for (let k = 0; k < n; k++) {
        const id = base + k;
        const pat = id % 10 === 0 ? 1 : id % 10 === 1 ? 2 : 0;
        if (step >= patterns[pat].length) continue;
        const st = patterns[pat][step];
        const pkt = templates[pat][step];
        const client = 0x0a000000 + (id % 0xfffff) + 1;
        const server = 0xc0a80001 + (id % 64);
        const cport = 1024 + (Math.floor(id / 0xfffff) % 60000);
        const sport = id % 7 === 0 ? 443 : 80;
        const src = st.c ? client : server;
        const dst = st.c ? server : client;
        pkt[12] = src >>> 24; pkt[13] = (src >>> 16) & 255; pkt[14] = (src >>> 8) & 255; pkt[15] = src & 255;
        pkt[16] = dst >>> 24; pkt[17] = (dst >>> 16) & 255; pkt[18] = (dst >>> 8) & 255; pkt[19] = dst & 255;
        const sp = st.c ? cport : sport;
        const dp = st.c ? sport : cport;
        pkt[20] = sp >> 8; pkt[21] = sp & 255; pkt[22] = dp >> 8; pkt[23] = dp & 255;
        ts += 0.00001;
        w.append({ tsNs: BigInt(Math.round(ts * 1e6)) * 1000n, ifindex: 0, origLen: pkt.length + st.payload, direction: 0, family: FAMILY_IPV4, flags: 0, data: pkt });
        if (w.byteLength > (1 << 22) - 256) {
          batches.push(w.bytes().slice());
          w = new RecordWriter(1 << 22);
        }
      }
    }
  }
  if (w.count) batches.push(w.bytes().slice());
  return batches;
}

function run(batches: Uint8Array[], capacity: number, reuse?: Detector): { segments: number; seconds: number; wall: number; det: Detector } {
  const det = reuse ?? new Detector(new ModelSet(new ServiceClassMap(), models), { shardCount: 1, maxConnections: capacity });
  const before = det.table.segments;
  // CPU time of this thread, not wall time: the figure is per core, whatever else runs on the machine.
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const b of batches) det.processRecords(0, "bench", b);
  det.endOfStream(0);
  const c = process.cpuUsage(c0);
  const seconds = (c.user + c.system) / 1e6;
  return { segments: det.table.segments - before, seconds, wall: (performance.now() - t0) / 1000, det };
}

log(`building ${CONNECTIONS} synthetic connections...`);
const synthetic = buildSynthetic(CONNECTIONS, 50_000);
// Warm-up on a slice, then the measured run.
run(synthetic.slice(0, 2), 1 << 16);
const syn = run(synthetic, 1_000_000);
const synRate = syn.segments / syn.seconds;
log(`synthetic: ${syn.segments} segments of ${CONNECTIONS} connections in ${syn.seconds.toFixed(2)} s CPU (${syn.wall.toFixed(2)} s wall): ${(synRate / 1e6).toFixed(2)} M segments/s, ${syn.det.table.evictions} evictions, ${syn.det.verdicts} verdicts`);

const here = dirname(fileURLToPath(import.meta.url));
const publicDir = process.env.VIGIL_PUBLIC_PCAPS ?? resolve(here, "../../../../shared/data/pcaps/public");
const realFiles = ["chrissanders--http_espn.pcapng", "stopddos--pkt.TCP.synflood.spoofed.pcap", "chrissanders--synscan.pcapng", "stratosphere--malicious-ssh-bruteforce.pcap"]
  .map((f) => join(publicDir, f))
  .filter((f) => existsSync(f));
const real: Record<string, number> = {};
let realSegments = 0;
let realSeconds = 0;
for (const f of realFiles) {
  const batches: Uint8Array[] = [];
  for await (const b of readCaptureRecords(f)) batches.push(b);
  // Small captures: repeat them so the timing is not noise (one detector, flushed at the end of each pass).
  let segs = 0;
  let secs = 0;
  const det = new Detector(new ModelSet(new ServiceClassMap(), models), { shardCount: 1, maxConnections: 1 << 17 });
  for (let i = 0; i < 5000 && segs < 2_000_000; i++) {
    const r = run(batches, 1 << 17, det);
    if (i >= 3) {
      segs += r.segments;
      secs += r.seconds;
    }
  }
  real[f.split("/").pop()!] = Math.round(segs / secs);
  realSegments += segs;
  realSeconds += secs;
  log(`${f.split("/").pop()}: ${(segs / secs / 1e6).toFixed(2)} M segments/s`);
}

const result = {
  bench: "pst",
  connections: CONNECTIONS,
  segments: syn.segments,
  segments_per_s: Math.round(synRate),
  // The synthetic run's CPU and wall seconds: under contention the CPU figure is the one to compare.
  cpu_s: Math.round(syn.seconds * 1000) / 1000,
  wall_s: Math.round(syn.wall * 1000) / 1000,
  wall_segments_per_s: Math.round(syn.segments / syn.wall),
  real_segments_per_s: realSeconds > 0 ? Math.round(realSegments / realSeconds) : null,
  real_captures: real,
  bytes_per_connection: Math.round(syn.det.table.bytesPerConnection * 10) / 10,
  table_capacity: 1_000_000,
  table_mib: Math.round((syn.det.table.bytesPerConnection * 1_000_000) / 2 ** 20),
  heap_mib: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
  rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
  node: process.version,
};
process.stdout.write(JSON.stringify(result) + "\n");
