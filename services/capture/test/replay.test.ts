import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { decodeRecords, formatAddress, PacketDecoder } from "@vigil/frames";
import { clientConnected, clientPendingBytes, codecs } from "@vigil/bus";
import { FrameBatch } from "@vigil/proto";
import { disposeNatsServer, publicCapture, publicCapturesDir, publicCapturesSkipReason, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { prom } from "@vigil/metrics";
import { FrameBatchEncoder, runCapture } from "../src/index.js";
import { CaptureMetrics } from "../src/metrics.js";
import { conversationPackets, expectedRecords, FrameSink, readCaptureFile, tempDir, writeCapture } from "./support/frames.js";

const publicSkip = publicCapturesSkipReason();
if (publicSkip) console.warn(`skipping public-capture replays: ${publicSkip}`);
const dir = tempDir("vigil-capture-");

let nats: NatsServerHandle;
let sink: FrameSink;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  sink = await FrameSink.open(nats.url);
  nc = await connect({ servers: [nats.url], reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
});
afterAll(async () => {
  await nc?.close();
  await sink?.close();
  if (nats) await disposeNatsServer(nats);
  rmSync(dir, { recursive: true, force: true });
});

async function replayAndCheck(path: string, sourceId: string, opts: { local?: string[]; shards?: number; headersOnly?: boolean } = {}) {
  const shards = opts.shards ?? 16;
  // Capture keeps the headers only unless told otherwise.
  const want = expectedRecords(readCaptureFile(path), { local: opts.local, shardCount: shards, headersOnly: opts.headersOnly ?? true });
  const summary = await runCapture({ source: "pcap", file: path, sourceId, nc, shardCount: shards, local: opts.local, headersOnly: opts.headersOnly });
  expect(summary.endOfStream).toBe(true);
  expect(summary.framesPublished).toBe(want.frames);
  expect(summary.framesDropped).toBe(0);
  await waitFor(`end-of-stream on ${shards} shards of ${sourceId}`, () => sink.endOfStreamShards(sourceId) === shards, 10_000);
  const got = sink.shardRecords(sourceId, shards);
  for (let s = 0; s < shards; s++) expect(got[s].equals(want.shards[s]), `${sourceId} shard ${s}`).toBe(true);
  for (let s = 0; s < shards; s++) {
    const batches = sink.of(sourceId).filter((b) => b.shard === s).sort((a, b) => a.seq - b.seq);
    expect(batches.map((b) => b.seq), `seq of shard ${s}`).toEqual(batches.map((_, i) => i + 1));
    const eos = batches[batches.length - 1];
    expect(eos.endOfStream).toBe(true);
    expect(eos.framesTotal).toBe(want.framesPerShard[s]);
    expect(batches.every((b) => b.shardCount === shards && b.droppedBefore === 0)).toBe(true);
    expect(batches.slice(0, -1).reduce((a, b) => a + b.frameCount, 0)).toBe(want.framesPerShard[s]);
  }
  return { want, summary };
}

describe("pcap replay to NATS", () => {
  it.skipIf(publicSkip)(`publishes every public capture byte-identically with exact counts and end-of-stream${publicSkip ? ` — skipped: ${publicSkip}` : ""}`, async () => {
    const files = readdirSync(publicCapturesDir).filter((f) => /\.pcap(ng)?$/.test(f));
    expect(files.some((f) => f.endsWith(".pcapng"))).toBe(true);
    expect(files.some((f) => f.endsWith(".pcap"))).toBe(true);
    for (const name of files) await replayAndCheck(publicCapture(name), `test/public:${name}`);
  }, 120_000);

  it("publishes a generated capture byte-identically, with local networks and another shard count", async () => {
    const path = writeCapture(join(dir, "gen.pcap"), conversationPackets(20_000));
    const { summary } = await replayAndCheck(path, "test/gen", { local: ["10.0.0.0/16", "2001:db8:1::/48"], shards: 5 });
    expect(summary.batchesPublished).toBeGreaterThan(5);
    // With payload kept (headersOnly false) the records hold snaplen bytes, and more of them go out.
    const withPayload = await replayAndCheck(path, "test/gen-payload", { shards: 5, headersOnly: false });
    expect(withPayload.summary.batchesPublished).toBeGreaterThan(summary.batchesPublished);
  }, 60_000);

  // F28: what makes a verdict a replay's is what capture read, not a name an operator can choose.
  it("marks every batch of a pcap replay as a replay, whatever its source id", async () => {
    const path = writeCapture(join(dir, "feed.pcap"), conversationPackets(2_000));
    await replayAndCheck(path, "lab-feed", { shards: 4 });
    const batches = sink.of("lab-feed");
    expect(batches.length).toBeGreaterThan(4);
    expect(batches.filter((b) => !b.replay)).toEqual([]);
  }, 60_000);

  it("counts frames and bytes per shard, matching what each shard subject carried", async () => {
    const path = writeCapture(join(dir, "per-shard.pcap"), conversationPackets(3000, 11));
    const shards = 6;
    const want = expectedRecords(readCaptureFile(path), { shardCount: shards, headersOnly: true });
    const registry = new prom.Registry();
    const metrics = new CaptureMetrics(registry);
    const sourceId = "test/per-shard";
    const summary = await runCapture({ source: "pcap", file: path, sourceId, nc, shardCount: shards, metrics });
    await waitFor("end-of-stream", () => sink.endOfStreamShards(sourceId) === shards, 10_000);
    const byShard = async (name: string) => {
      const m = (await registry.getSingleMetric(name)!.get()).values;
      expect(m.length, `${name} has one series per shard`).toBe(shards);
      return new Map(m.map((v) => [Number(v.labels.shard), v.value]));
    };
    const frames = await byShard("vigil_capture_shard_frames_total");
    const bytes = await byShard("vigil_capture_shard_bytes_total");
    let framesSum = 0;
    let bytesSum = 0;
    for (let s = 0; s < shards; s++) {
      const batches = sink.of(sourceId).filter((b) => b.shard === s && !b.endOfStream);
      expect(frames.get(s), `frames of shard ${s}`).toBe(want.framesPerShard[s]);
      expect(frames.get(s), `frames of shard ${s} on the bus`).toBe(batches.reduce((a, b) => a + b.frameCount, 0));
      // The bytes counted are the encoded FrameBatch messages: at least the records they carry.
      expect(bytes.get(s)!, `bytes of shard ${s}`).toBeGreaterThanOrEqual(want.shards[s].length);
      framesSum += frames.get(s)!;
      bytesSum += bytes.get(s)!;
    }
    expect(want.framesPerShard.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(framesSum).toBe(summary.framesPublished);
    expect(bytesSum).toBe((await registry.getSingleMetric("vigil_capture_published_bytes_total")!.get()).values[0].value);
    expect(bytesSum).toBeGreaterThan(0);
  }, 60_000);

  it("puts both directions of every TCP connection on one shard", async () => {
    const files = [writeCapture(join(dir, "conv.pcap"), conversationPackets(5000, 7))];
    if (!publicSkip) for (const f of readdirSync(publicCapturesDir).filter((x) => /\.pcap(ng)?$/.test(x))) files.push(publicCapture(f));
    const dec = new PacketDecoder();
    let connections = 0;
    for (const [i, path] of files.entries()) {
      for (const local of [undefined, ["10.0.0.0/8", "192.168.0.0/16"]]) {
        const sourceId = `test/shard-invariant/${i}/${local ? "local" : "none"}`;
        await runCapture({ source: "pcap", file: path, sourceId, nc, local });
        await waitFor("end-of-stream", () => sink.endOfStreamShards(sourceId) === 16, 10_000);
        const shardOfConn = new Map<string, Set<number>>();
        for (const b of sink.of(sourceId)) {
          if (b.endOfStream) continue;
          for (const r of decodeRecords(b.records)) {
            if (!dec.decode(r.data, 0, r.data.length, r.family, r.origLen) || dec.proto !== 6 || !dec.hasL4) continue;
            const a = `${formatAddress(r.data, dec.srcOff, dec.addrLen)}:${dec.srcPort}`;
            const z = `${formatAddress(r.data, dec.dstOff, dec.addrLen)}:${dec.dstPort}`;
            const key = a < z ? `${a}|${z}` : `${z}|${a}`;
            if (!shardOfConn.has(key)) shardOfConn.set(key, new Set());
            shardOfConn.get(key)!.add(b.shard);
          }
        }
        for (const [key, shards] of shardOfConn) expect(shards.size, `${sourceId} ${key}`).toBe(1);
        connections += shardOfConn.size;
      }
    }
    expect(connections).toBeGreaterThan(1000);
  }, 120_000);
});

describe("wire format and client internals", () => {
  it("hand-encoded FrameBatch decodes with the generated decoder", () => {
    const records = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 255));
    for (const replay of [false, true]) {
      const enc = new FrameBatchEncoder("host1/pcap:x.pcap", 16, replay);
      for (const f of [
        { seq: 1, shard: 0, frameCount: 3, droppedBefore: 0, records },
        { seq: 2 ** 40 + 3, shard: 15, frameCount: 70000, droppedBefore: 2 ** 33, records },
        { seq: 9, shard: 3, frameCount: 0, droppedBefore: 5, endOfStream: true, framesTotal: 123456789 },
      ]) {
        const got = codecs.frameBatch.decode(enc.encode(f));
        const want = FrameBatch.decode(FrameBatch.encode(FrameBatch.fromPartial({ sourceId: "host1/pcap:x.pcap", shardCount: 16, replay, ...f })).finish());
        expect(got).toEqual(want);
        expect(got.replay).toBe(replay);
        expect(Buffer.from(got.records).equals(f.records ?? Buffer.alloc(0))).toBe(true);
      }
    }
  });

  it("reads the NATS client's pending bytes and connection state (pinned nats.js internals)", async () => {
    expect(clientConnected(nc)).toBe(true);
    const internals = nc as unknown as { protocol: { outbound: { size(): number }; transport: { socket: { writableLength: number } }; connected: boolean } };
    expect(typeof internals.protocol.outbound.size()).toBe("number");
    expect(typeof internals.protocol.transport.socket.writableLength).toBe("number");
    const before = clientPendingBytes(nc);
    nc.publish("test.pending", new Uint8Array(100_000));
    expect(clientPendingBytes(nc)).toBeGreaterThanOrEqual(before + 100_000);
    await nc.flush();
    expect(clientPendingBytes(nc)).toBeLessThan(100_000);
  });
});
