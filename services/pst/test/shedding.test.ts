import { describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { IPPROTO_TCP, PacketDecoder, RecordCursor, RecordWriter, TCP_ACK, TCP_SYN, shedsSegment } from "@vigil/frames";
import { keepOfLevel, MAX_SHED_LEVEL } from "@vigil/shards";
import { repoRoot } from "@vigil/testing";
import type { Verdict } from "@vigil/proto";
import { scanCaptures } from "../src/cli.js";
import { DEFAULT_MODELS_DIR, loadPstConfig, detectorOptionsOf } from "../src/config.js";
import { HEAD_LEN } from "../src/conntrack.js";
import { Detector } from "../src/detector.js";
import { ModelSet, readModelDir, ServiceClassMap } from "../src/model.js";
import { readCaptureRecords } from "../src/pcap.js";
import { splitByShard } from "../src/training.js";

const captures = join(repoRoot, "lab/captures");
const skip = !existsSync(join(captures, "eval/labels.json")) ? `no lab captures in ${captures}` : null;
if (skip) console.warn(`skipping PST load shedding on lab captures: ${skip}`);
const local = (): string[] => JSON.parse(readFileSync(join(captures, "eval/labels.json"), "utf8")).local;
const KEEP = keepOfLevel(MAX_SHED_LEVEL);
const hosts = (vs: Verdict[]) => [...new Set(vs.map((v) => `${v.label} ${v.address || "(aggregate)"}`))].sort();

/**
 * The capture with the segments shedding at 1/16 sheds cut out (those of flows above the keep line, past a
 * connection's head of HEAD_LEN symbols): what the detector would see without marking its connections.
 */
async function judgedWithoutMarking(file: string): Promise<{ anomalous: number; verdicts: Verdict[] }> {
  const cfg = loadPstConfig({ env: {} }).pst;
  const verdicts: Verdict[] = [];
  const det = new Detector(new ModelSet(new ServiceClassMap(cfg.serviceClasses), readModelDir(DEFAULT_MODELS_DIR)), { ...detectorOptionsOf(cfg), maxConnections: 1 << 16 }, { onVerdict: (v) => verdicts.push(v) });
  const d = new PacketDecoder();
  const seen = new Map<string, number>();
  const end = (off: number, port: number) => `${Buffer.from(d.buf.subarray(off, off + d.addrLen)).toString("hex")}:${port}`;
  for await (const batch of readCaptureRecords(file, { local: local() })) {
    const w = new RecordWriter();
    const c = new RecordCursor().reset(batch);
    while (c.next()) {
      if (d.decode(c.buf, c.dataOffset, c.capLen, c.family, c.origLen) && d.proto === IPPROTO_TCP && d.hasL4) {
        const key = [end(d.srcOff, d.srcPort), end(d.dstOff, d.dstPort)].sort().join("-");
        const n = (d.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN ? 0 : (seen.get(key) ?? 0);
        if (shedsSegment(d, KEEP) && n >= HEAD_LEN) continue;
        seen.set(key, n + 1);
      }
      w.append({ tsNs: c.tsNs, ifindex: c.ifindex, origLen: c.origLen, direction: c.direction, family: c.family, flags: c.flags, data: c.data() });
    }
    splitByShard(w.bytes(), cfg.shardCount).forEach((recs, s) => recs.byteLength && det.processRecords(s, "cut", recs));
  }
  for (let s = 0; s < cfg.shardCount; s++) det.endOfStream(s);
  return { anomalous: det.judgedAnomalous, verdicts };
}

describe.skipIf(skip)("PST under forced load shedding (1/16 of established flows kept)", () => {
  for (const f of ["train/benign-1.pcap", "eval/benign-1.pcap", "eval/benign-2.pcap"]) {
    it(`${f}: sheds most of its established traffic, judges no shed connection, no verdict`, async () => {
      const file = join(captures, f);
      const r = await scanCaptures([file], { local: local(), modelsDir: DEFAULT_MODELS_DIR, shedLevel: MAX_SHED_LEVEL });
      console.log(`${f}: ${r.frames} frames, ${r.segmentsShed} shed, ${r.connectionsShed} connections not judged, ${r.connections} judged, ${r.anomalous} anomalous`);
      expect(r.segmentsShed / r.frames).toBeGreaterThan(0.6);
      expect(r.connectionsShed).toBeGreaterThan(50);
      expect(r.anomalous).toBe(0);
      expect(hosts(r.verdicts)).toEqual([]);
    }, 60_000);
  }

  it("the marking is what keeps them innocent: the same capture with the shed segments cut out looks broken", async () => {
    const cut = await judgedWithoutMarking(join(captures, "train/benign-1.pcap"));
    console.log(`train/benign-1.pcap, shed segments cut out: ${cut.anomalous} anomalous connections, verdicts: ${hosts(cut.verdicts).join("; ")}`);
    // Long benign SSH sessions cut short look like a password guesser's: benign clients would be named.
    expect(cut.verdicts.map((v) => v.address).filter((a) => a.startsWith("10.77.0.2")).length).toBeGreaterThan(0);
  }, 60_000);

  const attacks: Array<[string, string[]]> = [
    ["eval/scan-syn.pcap", ["half-open 10.77.0.66"]],
    ["eval/scan-connect.pcap", ["half-open 10.77.0.66"]],
    ["eval/scan-slow.pcap", ["half-open 10.77.0.66", "syn-scan 10.77.0.66"]],
    ["eval/scan-ipv6.pcap", ["half-open fd77::66"]],
    ["eval/flood-syn.pcap", ["half-open 10.77.0.66", "syn-flood 10.77.0.66"]],
    ["eval/flood-spoofed.pcap", ["syn-flood (aggregate)"]],
    ["eval/ssh-brute.pcap", ["brute-force 10.77.0.66"]],
  ];
  for (const [f, want] of attacks) {
    it(`${f}: the same verdicts with and without shedding`, async () => {
      const file = join(captures, f);
      const full = await scanCaptures([file], { local: local(), modelsDir: DEFAULT_MODELS_DIR });
      const shed = await scanCaptures([file], { local: local(), modelsDir: DEFAULT_MODELS_DIR, shedLevel: MAX_SHED_LEVEL });
      expect(hosts(full.verdicts)).toEqual(want);
      expect(hosts(shed.verdicts)).toEqual(want);
      expect(shed.segmentsShed).toBeGreaterThan(0);
    }, 60_000);
  }
});
