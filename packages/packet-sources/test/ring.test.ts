import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { craftPacket, decodeRecords, DIR_EGRESS, DIR_INGRESS, RecordWriter, shardOf, type FrameRecord } from "@vigil/frames";
import { addon, openKernelRing, type PacketSource } from "../src/index.js";
import { conversationPackets, tempDir } from "./support/gen.js";
import { createRingProducer, ringProducerAddonPath, type RingProducer } from "./support/ring-producer.js";

const dir = tempDir("vigil-ring-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function producer(name: string, opts: { rings?: number; slots?: number; snaplen?: number; startIndex?: number }): { path: string; ring: RingProducer } {
  const path = join(dir, name);
  return { path, ring: createRingProducer(path, opts) };
}

function records(packets: Uint8Array[], tsStart: bigint, ifindex = 3): { buf: Uint8Array; list: FrameRecord[] } {
  const w = new RecordWriter();
  const list: FrameRecord[] = [];
  packets.forEach((data, i) => {
    const rec: FrameRecord = { tsNs: tsStart + BigInt(i), ifindex, origLen: data.length, direction: i % 2 ? DIR_EGRESS : DIR_INGRESS, family: data[0] >> 4, flags: i % 5 === 0 ? 1 : 0, data };
    w.append(rec);
    list.push(rec);
  });
  return { buf: w.bytes().slice(), list };
}

/** Collects records until `count` arrived (or the deadline), then closes the source. */
async function drain(source: PacketSource, count: number, timeoutMs = 10_000): Promise<{ byShard: Map<number, FrameRecord[]>; all: FrameRecord[] }> {
  const byShard = new Map<number, FrameRecord[]>();
  const all: FrameRecord[] = [];
  const timer = setTimeout(() => void source.close(), timeoutMs);
  for await (const b of source) {
    for (const r of decodeRecords(b.records)) {
      all.push(r);
      if (!byShard.has(b.shard)) byShard.set(b.shard, []);
      byShard.get(b.shard)!.push(r);
    }
    if (all.length >= count) break;
  }
  clearTimeout(timer);
  await source.close();
  return { byShard, all };
}

function shardOfRecord(r: FrameRecord, shardCount: number): number {
  const v4 = r.family === 4;
  return shardOf(r.direction, r.data, v4 ? 12 : 8, v4 ? 16 : 24, v4 ? 4 : 16, shardCount);
}

describe("kernel ring reader (file laid out per the UAPI header, userspace producer)", () => {
  it("the producer is test code: the production addon does not contain it", () => {
    expect(Object.keys(addon())).toEqual(["NativeSource"]);
    expect(Object.keys(createRequire(import.meta.url)(ringProducerAddonPath))).toEqual(["RingProducer"]);
  });

  it("drains every ring: records identical to what was produced, snapped to the slot, sharded by remote address", async () => {
    const { path, ring } = producer("normal.ring", { rings: 3, slots: 256, snaplen: 96 });
    const info = ring.info();
    expect(info.slotSize % 64).toBe(0);
    expect(info.slotSize).toBeGreaterThanOrEqual(24 + 96);
    const pk = conversationPackets(600);
    const per = [pk.slice(0, 200), pk.slice(200, 400), pk.slice(400)].map((p, i) => records(p, BigInt(i) * 1_000_000n));
    per.forEach((r, i) => expect(ring.produce(i, r.buf)).toEqual({ written: 200, dropped: 0 }));
    const source = openKernelRing({ device: path, snaplen: 64, shardCount: 8 });
    const { all, byShard } = await drain(source, 600);
    expect(all.length).toBe(600);
    for (const [shard, recs] of byShard) for (const r of recs) expect(shardOfRecord(r, 8)).toBe(shard);
    const key = (r: FrameRecord) => r.tsNs.toString();
    const want = new Map(per.flatMap((p) => p.list).map((r) => [key(r), r]));
    for (const r of all) {
      const w = want.get(key(r))!;
      expect(r.ifindex).toBe(3);
      expect(r.direction).toBe(w.direction);
      expect(r.flags).toBe(w.flags);
      expect(r.origLen).toBe(w.origLen);
      expect(Buffer.from(r.data).equals(Buffer.from(w.data.subarray(0, Math.min(64, w.data.length))))).toBe(true);
    }
    for (let i = 0; i < 3; i++) expect(ring.indexes(i)).toMatchObject({ producer: 200, consumer: 200, drops: 0 });
    // Per ring, records stay in order within a shard.
    for (const recs of byShard.values()) {
      const seqs = recs.map((r) => r.tsNs);
      for (let i = 1; i < seqs.length; i++) if (seqs[i] / 1_000_000n === seqs[i - 1] / 1_000_000n) expect(seqs[i] > seqs[i - 1]).toBe(true);
    }
    ring.close();
  });

  it("keeps up while the producer wraps around the ring many times", async () => {
    const { path, ring } = producer("wrap.ring", { rings: 2, slots: 16, snaplen: 128, startIndex: 2 ** 40 - 5 });
    const source = openKernelRing({ device: path, flushMs: 1 });
    const pk = conversationPackets(40);
    const total = 2000;
    let produced = 0;
    let dropped = 0;
    const got = drain(source, total, 20_000);
    let seq = 0;
    while (produced < total) {
      const n = Math.min(8, total - produced);
      const batch = records(pk.slice(0, n), BigInt(seq));
      seq += n;
      const r = ring.produce(produced % 16 < 8 ? 0 : 1, batch.buf);
      produced += r.written;
      dropped += r.dropped;
      // Back off like a real NIC would not: the test wants no drops, only wrap-around.
      if (r.dropped) seq -= n - r.written;
      await new Promise((res) => setTimeout(res, 1));
    }
    const { all } = await got;
    expect(all.length).toBe(total);
    const ts = new Set(all.map((r) => r.tsNs));
    expect(ts.size).toBe(total);
    const idx0 = ring.indexes(0);
    const idx1 = ring.indexes(1);
    expect(idx0.consumer).toBe(idx0.producer);
    expect(idx1.consumer).toBe(idx1.producer);
    expect(idx0.producer + idx1.producer - 2 * (2 ** 40 - 5)).toBe(total);
    expect(source.stats().ring_drops).toBe(dropped);
    ring.close();
  }, 30_000);

  it("a full ring drops and counts; the reader reports the drops and delivers what the ring held", async () => {
    const { path, ring } = producer("full.ring", { rings: 1, slots: 32 });
    const r = ring.produce(0, records(conversationPackets(50), 0n).buf);
    expect(r).toEqual({ written: 32, dropped: 18 });
    expect(ring.indexes(0)).toMatchObject({ producer: 32, consumer: 0, drops: 18 });
    const source = openKernelRing({ device: path });
    const { all } = await drain(source, 32);
    expect(all.length).toBe(32);
    expect(all.map((x) => Number(x.tsNs)).sort((a, b) => a - b)).toEqual([...Array(32).keys()]);
    expect(source.stats().ring_drops).toBe(18);
    ring.close();
  });

  it("when JavaScript falls behind a live source, drops and counts instead of blocking the ring", async () => {
    const { path, ring } = producer("behind.ring", { rings: 1, slots: 4096 });
    const source = openKernelRing({ device: path, shardCount: 1, batchBytes: 1024, maxQueuedBatches: 2, flushMs: 1 });
    const it = source[Symbol.asyncIterator]();
    const first = await (async () => {
      ring.produce(0, records(conversationPackets(5), 0n).buf);
      return it.next();
    })();
    expect(first.done).toBe(false);
    // Not taking batches now: the reader keeps draining the ring but its queue is full.
    const total = 3000;
    ring.produce(0, records(conversationPackets(total - 5), 5n).buf);
    await new Promise((r) => setTimeout(r, 300));
    expect(ring.indexes(0).consumer).toBe(total);
    const stats = source.stats();
    expect(stats.queue_drops).toBeGreaterThan(0);
    let delivered = first.value!.frameCount;
    let reportedDrops = first.value!.droppedBefore;
    ring.produce(0, records(conversationPackets(1), 10_000n).buf);
    const deadline = Date.now() + 5000;
    while (delivered + reportedDrops < total + 1 && Date.now() < deadline) {
      const n = await it.next();
      delivered += n.value!.frameCount;
      reportedDrops += n.value!.droppedBefore;
    }
    await source.close();
    // Every frame is either delivered or reported in droppedBefore of a later batch.
    expect(delivered + reportedDrops).toBe(total + 1);
    expect(reportedDrops).toBe(source.stats().queue_drops);
    ring.close();
  });

  it("applies a BPF filter to ring frames", async () => {
    const { path, ring } = producer("filter.ring", { rings: 1, slots: 1024 });
    const pk = conversationPackets(500);
    ring.produce(0, records(pk, 0n).buf);
    const udp = pk.filter((p) => p[p[0] >> 4 === 4 ? 9 : 6] === 17).length;
    const source = openKernelRing({ device: path, filter: "udp" });
    const { all } = await drain(source, udp, 3000);
    expect(all.length).toBe(udp);
    expect(source.stats().filtered_out).toBe(500 - udp);
    ring.close();
  });

  it("skips and counts loopback frames (ifindex 1), e.g. its own publishes to a local nats-server", async () => {
    const { path, ring } = producer("loopback.ring", { rings: 1, slots: 1024 });
    const pk = conversationPackets(300);
    const w = new RecordWriter();
    pk.forEach((data, i) => w.append({ tsNs: BigInt(i), ifindex: i % 3 === 0 ? 1 : 4, direction: i % 2 ? DIR_EGRESS : DIR_INGRESS, family: data[0] >> 4, flags: 0, data }));
    ring.produce(0, w.bytes());
    const source = openKernelRing({ device: path });
    const { all } = await drain(source, 200, 3000);
    expect(all.length).toBe(200);
    expect(all.every((r) => r.ifindex === 4)).toBe(true);
    expect(source.stats().skipped_loopback).toBe(100);
    expect(source.stats().frames_captured).toBe(200);
    ring.close();
  });

  it("counts a malformed slot (bad family, cap_len beyond the slot) and goes on", async () => {
    const { path, ring } = producer("bad.ring", { rings: 1, slots: 64 });
    const good = craftPacket({ src: "10.0.0.1", dst: "10.0.0.2", proto: "udp" });
    const w = new RecordWriter();
    w.append({ tsNs: 1n, ifindex: 2, direction: 1, family: 4, flags: 0, data: good });
    w.append({ tsNs: 2n, ifindex: 2, direction: 1, family: 9, flags: 0, data: good });
    w.append({ tsNs: 3n, ifindex: 2, direction: 1, family: 4, flags: 0, data: good });
    ring.produce(0, w.bytes());
    const source = openKernelRing({ device: path });
    const { all } = await drain(source, 2, 3000);
    expect(all.map((r) => r.tsNs)).toEqual([1n, 3n]);
    expect(source.stats().skipped_malformed).toBe(1);
    ring.close();
  });

  it("rejects a file that is not a ring and explains a missing /dev/vigil", () => {
    writeFileSync(join(dir, "junk.ring"), Buffer.alloc(8192, 7));
    expect(() => openKernelRing({ device: join(dir, "junk.ring") })).toThrowError(expect.objectContaining({ code: "VIGIL_ERR_RING", message: expect.stringContaining("magic") }));
    const missing = join(dir, "no-such-device");
    let err: (Error & { code?: string }) | null = null;
    try {
      openKernelRing({ device: missing });
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe("VIGIL_ERR_NO_DEVICE");
    expect(err?.message).toContain("not loaded");
    expect(err?.message).toContain("modprobe vigil");
    expect(err?.message).toContain("insmod kmod/vigil.ko");
    expect(err?.message).toContain("--interface");
  });
});
