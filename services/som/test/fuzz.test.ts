import { describe, expect, it } from "vitest";
import { RecordWriter } from "@vigil/frames";
import { Prng, ShardMerger, TrafficSynth, WindowPipeline, type JudgedWindow } from "../src/index.js";
import { defaultModel, T0 } from "./support/scenarios.js";

/** The service's path: merger (which validates batches) feeding a pipeline. */
function harness() {
  const windows: JudgedWindow[] = [];
  let verdicts = 0;
  let malformed = 0;
  const pipeline = new WindowPipeline({
    model: defaultModel(),
    sourceId: "fuzz",
    instance: "fuzz",
    hooks: { onVerdict: () => void verdicts++, onWindow: (w) => windows.push(w), onMalformed: () => void malformed++ },
  });
  const merger = new ShardMerger((c) => pipeline.ingest(c), { idleMs: 0 });
  merger.setShards([0, 1, 2]);
  return { pipeline, merger, windows, counts: () => ({ verdicts, malformed }) };
}

describe("fuzzing the frame path", () => {
  it("survives random batches: no exception escapes, bad records are counted", { timeout: 60_000 }, () => {
    const h = harness();
    const prng = new Prng(12345);
    for (let i = 0; i < 3000; i++) {
      const len = prng.int(600);
      const buf = new Uint8Array(len);
      for (let j = 0; j < len; j++) buf[j] = prng.int(256);
      // Keep some headers plausible so records get past the batch check and into the decoder.
      if (len >= 24 && prng.next() < 0.5) {
        const cap = Math.min(len - 24, prng.int(200));
        buf[16] = cap & 0xff;
        buf[17] = cap >> 8;
        buf[19] = prng.next() < 0.5 ? 4 : 6;
        buf[24] = (buf[19] << 4) | (buf[24] & 0x0f);
        const ts = BigInt(T0 * 1000 + i) * 1_000_000n;
        new DataView(buf.buffer).setBigUint64(0, ts, true);
      }
      expect(() => {
        h.merger.push(prng.int(3), buf);
        h.merger.drain(true);
      }).not.toThrow();
    }
    h.pipeline.finish();
    expect(h.merger.malformedBatches).toBeGreaterThan(100);
    expect(h.counts().malformed).toBeGreaterThan(100);
  });

  it("survives mutated real traffic, and its memory stays bounded", { timeout: 90_000 }, () => {
    const s = new TrafficSynth({ seed: 77 });
    s.benign(T0, 20);
    s.synFlood(T0 + 5, 3, 4000);
    s.fragmentFlood(T0 + 10, 2, 2000);
    const clean = s.records();
    const h = harness();
    const prng = new Prng(99);
    const heapBefore = process.memoryUsage().heapUsed;
    for (let round = 0; round < 40; round++) {
      const buf = clean.slice();
      // Mutate packet bytes (not the record framing) so every record reaches the decoder.
      for (let k = 0; k < 2000; k++) {
        const at = prng.int(buf.length);
        buf[at] ^= 1 << prng.int(8);
      }
      // Shift timestamps so each round is a new stretch of capture time.
      const view = new DataView(buf.buffer);
      let p = 0;
      const w = new RecordWriter(buf.length + 1024);
      while (p + 24 <= buf.length) {
        const cap = view.getUint16(p + 16, true);
        if (p + 24 + cap > buf.length) break;
        const ts = view.getBigUint64(p, true);
        w.append({
          tsNs: (ts % 100_000_000_000_000_000n) + BigInt(round) * 60_000_000_000n,
          ifindex: 0,
          direction: buf[p + 18] % 3,
          family: buf[p + 19],
          flags: 0,
          data: buf.subarray(p + 24, p + 24 + cap),
          origLen: view.getUint32(p + 12, true),
        });
        p += 24 + cap;
      }
      expect(() => {
        h.merger.push(round % 3, w.bytes().slice());
        h.merger.drain(true);
      }).not.toThrow();
    }
    h.pipeline.finish();
    const st = h.pipeline.stats;
    expect(st.addrCount).toBeLessThanOrEqual(2 * st.maxPackets);
    expect(h.windows.length).toBeGreaterThan(40);
    for (const w of h.windows) {
      expect(Number.isFinite(w.quantizationError)).toBe(true);
      expect(w.raw.every(Number.isFinite)).toBe(true);
    }
    expect(h.merger.buffered).toBe(0);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 * 1024 * 1024);
  });
});
