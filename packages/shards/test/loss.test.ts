import { describe, expect, it } from "vitest";
import { FrameBatch } from "@vigil/proto";
import { StreamLoss, type LossKind } from "../src/loss.js";

const b = (seq: number, over: Partial<FrameBatch> = {}): FrameBatch =>
  FrameBatch.fromPartial({ sourceId: "src", seq, shard: 0, shardCount: 2, frameCount: 10, ...over });

function tracker() {
  const seen: [LossKind, number][] = [];
  return { loss: new StreamLoss((k, n) => seen.push([k, n])), seen };
}

describe("StreamLoss", () => {
  it("reports nothing for a whole stream", () => {
    const { loss, seen } = tracker();
    for (let i = 1; i <= 3; i++) loss.observe(0, b(i));
    loss.observe(0, b(4, { frameCount: 0, endOfStream: true, framesTotal: 30 }));
    expect(seen).toEqual([]);
  });

  it("counts the frames the capture lost, the batches that never came, and at the end the frames the bus lost", () => {
    const { loss, seen } = tracker();
    loss.observe(0, b(1));
    loss.observe(0, b(2, { droppedBefore: 25 })); // the capture dropped 25 frames before this batch
    loss.observe(0, b(5)); // batches 3 and 4 never arrived
    loss.observe(0, b(6, { frameCount: 0, endOfStream: true, framesTotal: 50 })); // 50 published, 30 received
    expect(seen).toEqual([
      ["capture", 25],
      ["batches", 2],
      ["bus", 20],
    ]);
  });

  it("keeps shards and sources apart, and does not compare totals of a stream joined midway", () => {
    const { loss, seen } = tracker();
    loss.observe(0, b(1));
    loss.observe(1, b(7, { shard: 1 })); // joined midway (a restart): no gap before the first batch seen
    loss.observe(0, b(1, { sourceId: "other" }));
    loss.observe(1, b(8, { shard: 1, frameCount: 0, endOfStream: true, framesTotal: 80 }));
    loss.observe(0, b(2));
    expect(seen).toEqual([]);
  });

  it("restarts a shard's streams after the shard was handed away and back", () => {
    const { loss, seen } = tracker();
    loss.observe(0, b(1));
    loss.forget(0);
    loss.observe(0, b(9));
    expect(seen).toEqual([]);
    loss.observe(0, b(11));
    expect(seen).toEqual([["batches", 1]]);
  });
});
