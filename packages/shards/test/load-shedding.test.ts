import { describe, expect, it } from "vitest";
import { FAMILY_IPV4, FLOW_BUCKETS, RecordWriter, craftPacket } from "@vigil/frames";
import type { FrameBatch } from "@vigil/proto";
import { DEFAULT_SHEDDING, LoadShedder, MAX_SHED_LEVEL, keepOfLevel } from "../src/load-shedding.js";

/** Wall and capture times in the tests are ms after this instant. */
const BASE_MS = 1_765_000_000_000;
const packet = craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", flags: 0x10 });

/** A batch whose newest frame was captured at `newestMs` (an older one first: the newest counts, not the last). */
function batch(newestMs: number, opts: { replay?: boolean; sourceId?: string } = {}): FrameBatch {
  const w = new RecordWriter(4);
  w.append({ tsNs: BigInt(Math.round(BASE_MS + newestMs)) * 1_000_000n, ifindex: 1, direction: 0, family: FAMILY_IPV4, flags: 0, data: packet });
  w.append({ tsNs: BigInt(Math.round(BASE_MS + newestMs - 3000)) * 1_000_000n, ifindex: 1, direction: 0, family: FAMILY_IPV4, flags: 0, data: packet });
  const records = w.bytes();
  return { sourceId: opts.sourceId ?? "live", seq: 1, shard: 0, shardCount: 1, frameCount: 2, records, droppedBefore: 0, endOfStream: false, framesTotal: 0, replay: opts.replay ?? false };
}

/** Feeds one batch every 100 ms of wall time from `fromMs` to `toMs` with the given lag (ms) plus a skew; returns the levels. */
function run(s: LoadShedder, fromMs: number, toMs: number, lagMs: (t: number) => number, skewMs = 0, opts: { replay?: boolean } = {}): number[] {
  const levels: number[] = [];
  for (let t = fromMs; t < toMs; t += 100) levels.push(s.observe(batch(t - lagMs(t) + skewMs, opts), BASE_MS + t));
  return levels;
}

describe("LoadShedder", () => {
  it("keeps 1, 1/2 .. 1/16 of the flow buckets by level", () => {
    expect([0, 1, 2, 3, 4].map(keepOfLevel)).toEqual([64, 32, 16, 8, 4]);
    expect(MAX_SHED_LEVEL).toBe(4);
    expect(keepOfLevel(0)).toBe(FLOW_BUCKETS);
  });

  it("never sheds while the detector keeps up, whatever the clock skew between hosts", () => {
    for (const skew of [-3_600_000, 0, 250_000]) {
      const s = new LoadShedder(DEFAULT_SHEDDING);
      expect(run(s, 0, 60_000, () => 20 + Math.random() * 50, skew).every((l) => l === 0)).toBe(true);
    }
  });

  it("steps up one level at a time while the excess lag stays high, up to 1/16", () => {
    const s = new LoadShedder(DEFAULT_SHEDDING);
    run(s, 0, 10_000, () => 30, -7_000_000);
    // The detector falls behind: its lag grows by 0.5 s every second.
    const levels = run(s, 10_000, 30_000, (t) => 30 + (t - 10_000) / 2, -7_000_000);
    expect(levels[0]).toBe(0);
    for (let i = 1; i < levels.length; i++) expect(levels[i] - levels[i - 1]).toBeGreaterThanOrEqual(0);
    for (let i = 1; i < levels.length; i++) expect(levels[i] - levels[i - 1]).toBeLessThanOrEqual(1);
    expect(levels.at(-1)).toBe(MAX_SHED_LEVEL);
    // Not before the excess passed the high mark (0.5 s, reached after 1 s of growth).
    expect(levels.slice(0, 10).every((l) => l === 0)).toBe(true);
    expect(s.level("live")).toBe(MAX_SHED_LEVEL);
  });

  it("steps down with hysteresis: not between the marks, at most once per step period below the low mark", () => {
    const s = new LoadShedder(DEFAULT_SHEDDING);
    run(s, 0, 10_000, () => 30);
    run(s, 10_000, 30_000, (t) => 30 + (t - 10_000) / 2);
    expect(s.level("live")).toBe(MAX_SHED_LEVEL);
    // Caught up to 0.3 s of excess: between the marks, the level holds.
    expect(run(s, 30_000, 40_000, () => 330).every((l) => l === MAX_SHED_LEVEL)).toBe(true);
    // Back to the usual lag: one step down per second at most.
    const down = run(s, 40_000, 50_000, () => 30);
    const changes = down.map((l, i) => (i > 0 && l !== down[i - 1] ? i : -1)).filter((i) => i >= 0);
    expect(down.at(-1)).toBe(0);
    expect(changes).toHaveLength(MAX_SHED_LEVEL);
    for (let i = 1; i < changes.length; i++) expect(changes[i] - changes[i - 1]).toBeGreaterThanOrEqual(DEFAULT_SHEDDING.stepSeconds * 10);
  });

  it("keeps its baseline while shedding: a lasting overload is not mistaken for the new normal", () => {
    const s = new LoadShedder(DEFAULT_SHEDDING);
    run(s, 0, 10_000, () => 30);
    run(s, 10_000, 300_000, (t) => Math.min(30 + (t - 10_000) / 2, 5_000));
    expect(s.level("live")).toBe(MAX_SHED_LEVEL);
  });

  it("follows each source apart and never sheds a replay, however late its frames", () => {
    const s = new LoadShedder(DEFAULT_SHEDDING);
    run(s, 0, 5_000, () => 30);
    const replayed = run(s, 5_000, 30_000, (t) => 30 + (t - 5_000) * 10, 0, { replay: true });
    expect(replayed.every((l) => l === 0)).toBe(true);
    expect(s.observe(batch(29_900, { sourceId: "other" }), BASE_MS + 30_000)).toBe(0);
  });

  it("applies a forced level to every batch, replays included, and rejects levels outside 0..4", () => {
    const s = new LoadShedder({ ...DEFAULT_SHEDDING, force: 4 });
    expect(s.observe(batch(0, { replay: true }), 1)).toBe(4);
    expect(s.observe(batch(999, {}), 1_000)).toBe(4);
    expect(() => new LoadShedder({ ...DEFAULT_SHEDDING, force: 5 })).toThrow(/shedding\.force/);
    expect(() => new LoadShedder({ ...DEFAULT_SHEDDING, lowLagSeconds: 1, highLagSeconds: 0.5 })).toThrow(/lowLagSeconds/);
  });
});
