import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { createLogger } from "@vigil/lifecycle";
import { Feedback, FeedbackKind, type FrameBatch, type Heartbeat } from "@vigil/proto";
import { disposeNatsServer, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { FLOW_BUCKETS } from "@vigil/frames";
import { createRegistry } from "@vigil/metrics";
import { DEFAULT_SHEDDING } from "../src/load-shedding.js";
import { DetectorHost, type DropReason } from "../src/detector-host.js";

const batch = (shard: number, shardCount: number, endOfStream = false): Uint8Array =>
  codecs.frameBatch.encode({ sourceId: "src", seq: 1, shard, shardCount, frameCount: 0, records: new Uint8Array(0), droppedBefore: 0, endOfStream, framesTotal: 0 });

describe("DetectorHost over a real nats-server", () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connectBus({ servers: [nats.url], name: "t" });
  });
  afterAll(async () => {
    await nc.close();
    await disposeNatsServer(nats);
  });

  it("drops, counts and logs once batches cut for another shard count; reports end of stream once every owned shard ended; dedupes feedback", async () => {
    const seen: FrameBatch[] = [];
    const dropped: DropReason[] = [];
    const feedback: string[] = [];
    const skipped: string[] = [];
    const lines: string[] = [];
    const logger = createLogger("t", "info");
    const log = Object.assign(Object.create(logger), { error: (o: object, msg: string) => lines.push(msg) });
    const host = new DetectorHost(
      { detector: "pst", nc, instance: "i1", shardCount: 2, logger: log, heartbeatMs: 100, scores: { start() {}, stop() {} } },
      {
        onBatch: (_s, b) => seen.push(b),
        onSourceEnd: () => ({ frames: 7, verdicts: 1 }),
        onFeedback: (fb) => (feedback.push(fb.verdictId), true),
        exportModel: () => ({ ok: true }),
        onDropped: (r) => dropped.push(r),
        onFeedbackSkipped: (r) => skipped.push(r),
      },
    );
    const eos: number[] = [];
    nc.subscribe(subjects.endOfStream("pst"), { callback: (_e, m) => eos.push(codecs.endOfStream.decode(m.data).frames) });
    host.start();
    await waitFor("both shards owned", () => host.shards.length === 2, 3000);
    await nc.flush();

    nc.publish(subjects.frames(0), batch(0, 16));
    nc.publish(subjects.frames(1), batch(1, 16));
    nc.publish(subjects.frames(0), batch(0, 2));
    nc.publish(subjects.frames(0), batch(1, 2));
    await waitFor("four batches handled", () => seen.length + dropped.length === 4, 3000);
    expect(dropped).toEqual(["shard_count_mismatch", "shard_count_mismatch", "wrong_shard"]);
    expect(lines.filter((l) => l.includes("disagree on the shard count"))).toHaveLength(1);
    expect(seen.map((b) => b.shard)).toEqual([0]);

    nc.publish(subjects.frames(0), batch(0, 2, true));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 200));
    expect(eos).toEqual([]);
    nc.publish(subjects.frames(1), batch(1, 2, true));
    await waitFor("end of stream", () => eos.length === 1, 3000);
    expect(eos).toEqual([7]);

    const fb = (kind: FeedbackKind, detector = "pst") => codecs.feedback.encode(Feedback.fromPartial({ verdictId: "v1", detector, kind }));
    nc.publish(subjects.feedback, fb(FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, "som"));
    nc.publish(subjects.feedback, fb(FeedbackKind.FEEDBACK_KIND_FALSE_ALARM));
    nc.publish(subjects.feedback, fb(FeedbackKind.FEEDBACK_KIND_FALSE_ALARM));
    nc.publish(subjects.feedback, new Uint8Array([0xff, 0xff, 0xff]));
    await waitFor("feedback handled", () => skipped.length === 1 && dropped.length === 4, 3000);
    expect(feedback).toEqual(["v1"]);
    expect(skipped).toEqual(["duplicate"]);

    const reply = await nc.request(subjects.models("pst"), new Uint8Array(0), { timeout: 2000 });
    expect(JSON.parse(reply.string())).toEqual({ ok: true });
    await host.stop();
  });

  it("announces in its heartbeats the frames it received and what never reached it: the capture's drops, a cut-off stream, missing batches", async () => {
    const beats: Heartbeat[] = [];
    const sub = nc.subscribe(subjects.heartbeat("som"), { callback: (_e, m) => beats.push(codecs.heartbeat.decode(m.data)) });
    const host = new DetectorHost(
      { detector: "som", nc, instance: "loss-1", shardCount: 1, logger: createLogger("t", "error"), heartbeatMs: 100, scores: { start() {}, stop() {} } },
      { onBatch: () => {}, onSourceEnd: () => ({ frames: 0, verdicts: 0 }), onFeedback: () => true, exportModel: () => ({}) },
    );
    host.start();
    try {
      await waitFor("shard owned", () => host.shards.length === 1, 3000);
      await nc.flush();
      const b = (sourceId: string, seq: number, frameCount: number, more: Partial<FrameBatch> = {}) =>
        codecs.frameBatch.encode({ sourceId, seq, shard: 0, shardCount: 1, frameCount, records: new Uint8Array(0), droppedBefore: 0, endOfStream: false, framesTotal: 0, replay: false, ...more });
      // live: batch 2 never arrives, batch 3 says the capture dropped 6 frames before it
      nc.publish(subjects.frames(0), b("live", 1, 5));
      nc.publish(subjects.frames(0), b("live", 3, 4, { droppedBefore: 6 }));
      // a replay that published 30 frames, of which 10 arrived
      nc.publish(subjects.frames(0), b("replay", 1, 10));
      nc.publish(subjects.frames(0), b("replay", 2, 0, { endOfStream: true, framesTotal: 30 }));
      const last = await waitFor("a heartbeat with every batch counted", () => beats.find((h) => h.instance === "loss-1" && h.frames === 19) ?? null, 3000);
      expect(last).toMatchObject({ frames: 19, framesLost: 6 + 20, batchesLost: 1 });
    } finally {
      sub.unsubscribe();
      await host.stop();
    }
  });

  it("hands each batch its keep line: everything by default, replays included; a forced level to every batch; shedding shown in heartbeats and metrics", async () => {
    const beats: Heartbeat[] = [];
    const sub = nc.subscribe(subjects.heartbeat("pst"), { callback: (_e, m) => beats.push(codecs.heartbeat.decode(m.data)) });
    const b = (sourceId: string, seq: number, replay: boolean) =>
      codecs.frameBatch.encode({ sourceId, seq, shard: 0, shardCount: 1, frameCount: 1, records: new Uint8Array(0), droppedBefore: 0, endOfStream: false, framesTotal: 0, replay });
    const run = async (instance: string, shedding: typeof DEFAULT_SHEDDING) => {
      const keeps: number[] = [];
      const registry = createRegistry("pst", instance);
      const host = new DetectorHost(
        { detector: "pst", nc, instance, shardCount: 1, logger: createLogger("t", "error"), heartbeatMs: 100, scores: { start() {}, stop() {} }, shedding, registry },
        { onBatch: (_s, _b, keep) => keeps.push(keep), onSourceEnd: () => ({ frames: 0, verdicts: 0 }), onFeedback: () => true, exportModel: () => ({}), framesShed: () => 1234 },
      );
      host.start();
      try {
        await waitFor("shard owned", () => host.shards.length === 1, 3000);
        await nc.flush();
        nc.publish(subjects.frames(0), b("live", 1, false));
        nc.publish(subjects.frames(0), b("replay", 1, true));
        await waitFor("both batches", () => keeps.length === 2 || null, 3000);
        const beat = await waitFor("a heartbeat", () => beats.find((h) => h.instance === instance && h.frames === 2) ?? null, 3000);
        return { keeps, beat, metrics: await registry.metrics() };
      } finally {
        await host.stop();
      }
    };
    try {
      const auto = await run("shed-auto", DEFAULT_SHEDDING);
      expect(auto.keeps).toEqual([FLOW_BUCKETS, FLOW_BUCKETS]);
      expect(auto.metrics).toMatch(/^vigil_pst_shed_level\{[^}]*\} 0$/m);
      expect(auto.beat.shedLevel).toBe(0);
      const forced = await run("shed-forced", { ...DEFAULT_SHEDDING, force: 4 });
      expect(forced.keeps).toEqual([FLOW_BUCKETS / 16, FLOW_BUCKETS / 16]);
      expect(forced.beat.framesShed).toBe(1234);
      expect(forced.beat.shedLevel).toBe(4);
      expect(forced.metrics).toMatch(/^vigil_pst_shed_frames_total\{[^}]*\} 1234$/m);
      expect(forced.metrics).toMatch(/^vigil_pst_shed_level\{[^}]*\} 4$/m);
    } finally {
      sub.unsubscribe();
    }
  });
});
