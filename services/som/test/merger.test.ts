import { describe, expect, it } from "vitest";
import { craftPacket, RecordWriter } from "@vigil/frames";
import { ShardMerger } from "../src/index.js";

function batch(shard: number, times: number[]): Uint8Array {
  const w = new RecordWriter();
  for (const ms of times) {
    const data = craftPacket({ src: `10.0.0.${shard}`, dst: "10.9.9.9", proto: "udp", srcPort: ms % 65536 });
    w.append({ tsNs: BigInt(ms) * 1_000_000n, ifindex: 0, direction: 0, family: 4, flags: 0, data });
  }
  return w.bytes().slice();
}

function collect(idleMs = 1000, now = () => 0) {
  const out: Array<[number, number]> = [];
  const m = new ShardMerger((c, shard) => out.push([shard, c.tsMs]), { idleMs, now });
  return { m, out };
}

describe("ShardMerger", () => {
  it("releases records in capture-time order across shards, whatever the batching", () => {
    const { m, out } = collect();
    m.setShards([1, 2]);
    m.push(1, batch(1, [10, 20, 30, 40, 50]));
    expect(m.drain()).toBe(0); // shard 2 has said nothing yet: wait for it
    m.push(2, batch(2, [5, 25]));
    m.drain();
    expect(out).toEqual([
      [2, 5],
      [1, 10],
      [1, 20],
      [2, 25],
    ]);
    m.push(2, batch(2, [45, 60]));
    m.drain();
    expect(out.slice(4)).toEqual([
      [1, 30],
      [1, 40],
      [2, 45],
      [1, 50],
    ]);
    m.end(1);
    m.end(2);
    expect(m.allEnded).toBe(true);
    m.drain(true);
    expect(out.at(-1)).toEqual([2, 60]);
    expect(m.buffered).toBe(0);
  });

  it("breaks timestamp ties by shard number", () => {
    const { m, out } = collect();
    m.setShards([3, 1]);
    m.push(3, batch(3, [7, 7]));
    m.push(1, batch(1, [7]));
    m.drain(true);
    expect(out.map(([s]) => s)).toEqual([1, 3, 3]);
  });

  it("releases the same order as taking the lowest (time, shard) head one record at a time, over many shards with ties and times that go back", () => {
    let seed = 12345;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let round = 0; round < 20; round++) {
      const shards = 1 + rnd(16);
      const { m, out } = collect();
      m.setShards(Array.from({ length: shards }, (_, i) => i));
      const queued: number[][] = Array.from({ length: shards }, () => []);
      const want: Array<[number, number]> = [];
      // The reference: every shard's records in arrival order; release the lowest head up to the watermark.
      const release = (wm: number) => {
        for (;;) {
          let best = -1;
          for (let s = 0; s < shards; s++) if (queued[s].length && (best < 0 || queued[s][0] < queued[best][0])) best = s;
          if (best < 0 || queued[best][0] > wm) return;
          want.push([best, queued[best].shift()!]);
        }
      };
      const maxTs = new Array<number>(shards).fill(-Infinity);
      let t = 1000;
      for (let b = 0; b < 60; b++) {
        const shard = rnd(shards);
        // Coarse times (ties across shards), now and then one earlier than the shard's last.
        const times = Array.from({ length: 1 + rnd(40) }, () => (t += rnd(3)) - (rnd(10) === 0 ? rnd(20) : 0));
        m.push(shard, batch(shard, times));
        queued[shard].push(...times);
        for (const x of times) maxTs[shard] = Math.max(maxTs[shard], x);
        m.drain();
        release(Math.min(...maxTs));
      }
      m.drain(true);
      release(Infinity);
      expect(out, `round ${round}, ${shards} shards`).toEqual(want);
    }
  });

  it("stops waiting for a shard silent longer than idleMs", () => {
    let now = 0;
    const { m, out } = collect(100, () => now);
    m.setShards([0, 1]);
    m.push(0, batch(0, [1, 2, 3]));
    expect(m.drain()).toBe(0);
    now = 150;
    m.push(0, batch(0, [4]));
    expect(m.drain()).toBe(4);
    expect(out.map(([, t]) => t)).toEqual([1, 2, 3, 4]);
  });

  it("waits replayIdleMs instead of idleMs once capture time runs ahead of the wall clock (a full-speed replay)", () => {
    let now = 0;
    const out: number[] = [];
    const m = new ShardMerger((c) => out.push(c.tsMs), { idleMs: 100, replayIdleMs: 2000, replayLeadMs: 1000, now: () => now });
    m.setShards([0, 1]);
    m.push(0, batch(0, [1000, 1001]));
    expect(m.fastReplay).toBe(false);
    now = 10; // 10 ms of wall clock...
    m.push(0, batch(0, [5000])); // ...carried 4 s of capture time
    expect(m.fastReplay).toBe(true);
    now = 500;
    expect(m.drain()).toBe(0); // shard 1 silent for 500 ms: not enough for a replay
    now = 2100;
    expect(m.drain()).toBe(3);
  });

  it("live (capture time keeping pace with the wall clock) a silent shard holds back for idleMs only", () => {
    let now = 0;
    const out: number[] = [];
    const m = new ShardMerger((c) => out.push(c.tsMs), { idleMs: 100, replayIdleMs: 2000, now: () => now });
    m.setShards([0, 1]);
    m.push(0, batch(0, [50_000]));
    now = 400;
    m.push(0, batch(0, [50_390]));
    expect(m.fastReplay).toBe(false);
    expect(m.drain()).toBe(2); // shard 1, taken at 0 and silent since, no longer holds back after 100 ms
    expect(out).toEqual([50_000, 50_390]);
  });

  it("keeps the valid prefix of a batch whose last record overruns it, and counts it", () => {
    const { m, out } = collect();
    m.setShards([0]);
    const good = batch(0, [1, 2]);
    const bad = new Uint8Array(good.length + 30);
    bad.set(good);
    bad[good.length + 16] = 250; // a header claiming 250 bytes that are not there
    expect(m.push(0, bad)).toBe(false);
    expect(m.malformedBatches).toBe(1);
    m.drain(true);
    expect(out).toHaveLength(2);
  });

  it("drops the data of shards it no longer owns and ignores shards it does not own", () => {
    const { m, out } = collect();
    m.setShards([0, 1]);
    m.push(0, batch(0, [1]));
    m.push(1, batch(1, [2]));
    m.push(5, batch(5, [0]));
    m.setShards([1]);
    m.drain(true);
    expect(out).toEqual([[1, 2]]);
  });
});
