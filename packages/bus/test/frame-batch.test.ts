import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { FrameBatch } from "@vigil/proto";
import { describe, expect, it } from "vitest";
import { codecs, DecodeError } from "../src/index.js";

const batch = (over: Partial<FrameBatch> = {}): FrameBatch =>
  FrameBatch.fromPartial({ sourceId: "host/pcap:a.pcap", seq: 7, shard: 3, shardCount: 16, frameCount: 2, records: Buffer.from([1, 2, 3, 4, 5]), droppedBefore: 9, ...over });

describe("codecs.frameBatch.decode", () => {
  it("decodes what the generated decoder decodes", () => {
    for (const m of [batch(), batch({ records: Buffer.alloc(0), endOfStream: true, framesTotal: 2 ** 40 }), batch({ replay: true }), FrameBatch.fromPartial({})]) {
      const wire = FrameBatch.encode(m).finish();
      expect(codecs.frameBatch.decode(wire)).toEqual(FrameBatch.decode(wire));
    }
  });

  it("keeps the records a view of the message instead of copying them", () => {
    const wire = FrameBatch.encode(batch()).finish();
    const got = codecs.frameBatch.decode(wire);
    expect(Buffer.isBuffer(got.records)).toBe(true);
    expect(got.records.buffer).toBe(wire.buffer);
    expect([...got.records]).toEqual([1, 2, 3, 4, 5]);
  });

  it("skips unknown fields and fields of the wrong wire type, like the generated decoder", () => {
    const w = FrameBatch.encode(batch());
    w.uint32((20 << 3) | 2).bytes(Uint8Array.from([9, 9])); // unknown field 20
    w.uint32((5 << 3) | 2).bytes(Uint8Array.from([1])); // frame_count as bytes
    const wire = w.finish();
    expect(codecs.frameBatch.decode(wire)).toEqual(FrameBatch.decode(wire));
  });

  it("rejects a batch cut inside its records with a DecodeError naming the subject", () => {
    const wire = FrameBatch.encode(batch()).finish();
    expect(() => codecs.frameBatch.decode(wire.subarray(0, wire.length - 4), "vigil.frames.3")).toThrow(DecodeError);
    expect(() => codecs.frameBatch.decode(wire.subarray(0, wire.length - 4), "vigil.frames.3")).toThrow(/FrameBatch.*vigil\.frames\.3/);
  });

  it("rejects a counter beyond Number.MAX_SAFE_INTEGER", () => {
    const wire = new BinaryWriter().uint32(16).uint64(2n ** 60n).finish();
    expect(() => codecs.frameBatch.decode(wire)).toThrow(DecodeError);
    expect(() => FrameBatch.decode(wire)).toThrow();
  });
});
