import { describe, expect, it } from "vitest";
import { FAMILY_IPV4, FAMILY_IPV6, RecordWriter, craftPacket } from "@vigil/frames";
import { Detector } from "../src/detector.js";
import { syntheticModels } from "./support/models.js";

function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

describe("fuzz", () => {
  it("random and mutated frames never throw, are counted when malformed, and memory stays bounded", async () => {
    const models = await syntheticModels(600);
    const det = new Detector(models, { shardCount: 4, maxConnections: 2048 }, { onVerdict: () => undefined });
    const rnd = prng(0xf00d);
    const int = (n: number) => Math.floor(rnd() * n);
    const seeds = [
      craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", srcPort: 40000, dstPort: 80, flags: 0x02 }),
      craftPacket({ src: "2001:db8::1", dst: "2001:db8::2", proto: "tcp", srcPort: 40000, dstPort: 22, flags: 0x18, payloadLen: 40, ipv6Extensions: [0, 60] }),
      craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", srcPort: 1, dstPort: 2, flags: 0x01, fragOffset: 0, moreFragments: true }),
      craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "udp" }),
    ];
    const w = new RecordWriter(1 << 16);
    const ITERATIONS = 200_000;
    let ts = 1_700_000_000;
    let heapAfterWarmup = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      let data: Uint8Array;
      const kind = int(4);
      if (kind === 0) {
        data = new Uint8Array(int(120));
        for (let j = 0; j < data.length; j++) data[j] = int(256);
      } else {
        data = seeds[int(seeds.length)].slice(0, kind === 1 ? int(90) : undefined);
        const flips = 1 + int(6);
        for (let f = 0; f < flips && data.length; f++) data[int(data.length)] = int(256);
      }
      ts += rnd() * 0.01;
      const family = rnd() < 0.05 ? int(256) : data.length && data[0] >> 4 === 6 ? FAMILY_IPV6 : FAMILY_IPV4;
      w.append({ tsNs: BigInt(Math.round(ts * 1e6)) * 1000n, ifindex: 0, origLen: rnd() < 0.1 ? int(70000) : data.length, direction: int(3), family, flags: 0, data });
      if (w.count === 512) {
        const batch = w.bytes().slice();
        // Sometimes cut a batch short in the middle of a record, as a corrupted message would be.
        const cut = rnd() < 0.05 ? batch.subarray(0, int(batch.length)) : batch;
        expect(() => det.processRecords(int(4), "fuzz", cut)).not.toThrow();
        w.clear();
        if (i > ITERATIONS / 4 && heapAfterWarmup === 0) {
          global.gc?.();
          heapAfterWarmup = process.memoryUsage().heapUsed;
        }
      }
    }
    for (let s = 0; s < 4; s++) expect(() => det.endOfStream(s)).not.toThrow();
    const malformed = det.malformed.reduce((a, b) => a + b, 0);
    expect(malformed).toBeGreaterThan(ITERATIONS / 10);
    expect(det.malformed[det.malformed.length - 1]).toBeGreaterThan(0);
    expect(det.table.segments).toBeGreaterThan(1000);
    expect(det.table.size).toBeLessThanOrEqual(2048);
    expect(det.pendingWindows()).toBe(0);
    // Bounded: the heap did not grow with the number of frames after warm-up (typed arrays are preallocated).
    global.gc?.();
    expect(process.memoryUsage().heapUsed - heapAfterWarmup).toBeLessThan(64 * 2 ** 20);
  }, 120_000);
});
