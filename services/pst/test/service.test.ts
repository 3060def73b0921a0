import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { RecordWriter } from "@vigil/frames";
import { createLogger } from "@vigil/lifecycle";
import { createRegistry, type Registry } from "@vigil/metrics";
import { FeedbackKind, type EndOfStream, type ScoreBatch, type Verdict } from "@vigil/proto";
import { disposeNatsServer, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { parseSequence } from "@vigil/models";
import { pstSchema } from "../src/config.js";
import { writeModelFile } from "../src/model.js";
import { PstService } from "../src/service.js";
import { splitByShard } from "../src/training.js";
import { A, R, S, benignVariants, syntheticModels, writeConversation } from "./support/models.js";

const SHARDS = 16;
const log = createLogger("pst-test", "silent");
let nats: NatsServerHandle;
let modelsDir: string;
const cleanup: string[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  const set = await syntheticModels();
  modelsDir = mkdtempSync(join(tmpdir(), "vigil-pst-models-"));
  cleanup.push(modelsDir);
  for (const m of set.models.values()) writeModelFile(modelsDir, m);
}, 120_000);

afterAll(async () => {
  await disposeNatsServer(nats);
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

async function startInstance(name: string, stateDir = mkdtempSync(join(tmpdir(), "vigil-pst-state-")), registry?: Registry, extra: Record<string, unknown> = {}) {
  cleanup.push(stateDir);
  const nc = await connectBus({ servers: [nats.url], name, logger: log });
  const config = pstSchema.parse({ modelsDir, stateDir, shardCount: SHARDS, maxConnections: 100_000, metrics: { port: 0 }, ...extra });
  const service = new PstService({ nc, config, instance: name, logger: log, heartbeatMs: 150, registry });
  service.start();
  return {
    service,
    stateDir,
    async stop() {
      await service.stop();
      await nc.drain();
    },
  };
}

/** A capture: benign clients, two SYN scanners, one spoofed half-open flood, all within a minute. */
function capture(): Uint8Array {
  const w = new RecordWriter(1 << 20);
  let ts = 1_700_000_000;
  for (let i = 0; i < 200; i++) ts = writeConversation(w, { client: `10.4.${i % 40}.${i}`, server: "192.168.9.10", clientPort: 30000 + i, serverPort: 80, steps: benignVariants(i), startTs: ts, gap: 0.001 });
  for (const scanner of ["203.0.113.7", "198.51.100.99"])
    for (let port = 1; port <= 120; port++)
      ts = writeConversation(w, { client: scanner, server: "192.168.9.20", clientPort: 61000, serverPort: port, steps: port % 4 ? [{ from: "c", flags: S }, { from: "s", flags: R | A }] : [{ from: "c", flags: S }], startTs: ts, gap: 0.0005 });
  for (let i = 0; i < 800; i++)
    ts = writeConversation(w, { client: `${11 + (i % 200)}.${(i * 7) & 255}.${(i * 13) & 255}.${i & 255}`, server: "192.168.9.30", clientPort: 1024 + i, serverPort: 25565, steps: [{ from: "c", flags: S }], startTs: ts, gap: 0.0001 });
  return w.bytes().slice();
}

/** Publishes a capture the way the capture service does: FrameBatches per shard, then end of stream on every shard. */
async function publish(nc: NatsConnection, sourceId: string, records: Uint8Array, replay = false) {
  const shards = splitByShard(records, SHARDS);
  let total = 0;
  shards.forEach((recs, shard) => {
    const frames = recs.byteLength ? countRecords(recs) : 0;
    total += frames;
    if (frames) nc.publish(subjects.frames(shard), codecs.frameBatch.encode({ sourceId, seq: 1, shard, shardCount: SHARDS, frameCount: frames, records: recs, droppedBefore: 0, endOfStream: false, framesTotal: 0, replay }));
    nc.publish(subjects.frames(shard), codecs.frameBatch.encode({ sourceId, seq: frames ? 2 : 1, shard, shardCount: SHARDS, frameCount: 0, records: new Uint8Array(0), droppedBefore: 0, endOfStream: true, framesTotal: frames, replay }));
  });
  await nc.flush();
  return total;
}

function countRecords(recs: Uint8Array): number {
  let n = 0;
  for (let p = 0; p < recs.length; n++) p += 24 + (recs[p + 16] | (recs[p + 17] << 8));
  return n;
}

async function observer() {
  const nc = await connectBus({ servers: [nats.url], name: "observer", logger: log });
  const verdicts: Verdict[] = [];
  const eos: EndOfStream[] = [];
  const order: string[] = [];
  nc.subscribe(subjects.verdicts("pst"), { callback: (_e, m) => (verdicts.push(codecs.verdict.decode(m.data)), order.push("verdict")) });
  nc.subscribe(subjects.endOfStream("pst"), { callback: (_e, m) => (eos.push(codecs.endOfStream.decode(m.data)), order.push("eos")) });
  await nc.flush();
  return { nc, verdicts, eos, order };
}

async function settled(instances: Array<{ service: PstService }>) {
  await waitFor(
    "shard ownership to converge",
    async () => {
      const owned = instances.flatMap((i) => [...i.service.ownedShards]);
      return owned.length === SHARDS && new Set(owned).size === SHARDS && instances.every((i) => i.service.ownership.memberIds.length === instances.length);
    },
    15_000,
  );
  await Promise.all(instances.map((i) => i.service.ownership.settled(400)));
}

const summary = (vs: Verdict[]) =>
  vs
    .map((v) => ({ id: v.id, address: v.address, aggregate: v.aggregate, local: v.localAddress, label: v.label, connections: v.connections, packets: v.packets, firstTs: v.firstTs, lastTs: v.lastTs, score: v.score.toFixed(9) }))
    .sort((a, b) => a.id.localeCompare(b.id));

describe("pst service on a real nats-server", () => {
  it("end of stream: judges what is pending, publishes verdicts, then EndOfStream with the counts", async () => {
    const obs = await observer();
    const registry = createRegistry("pst", "pst-eos");
    const inst = await startInstance("pst-eos", undefined, registry);
    await settled([inst]);
    const frames = await publish(obs.nc, "test/eos", capture());
    await waitFor("EndOfStream from pst", async () => obs.eos.length === 1, 20_000);
    const e = obs.eos[0];
    expect(e).toMatchObject({ sourceId: "test/eos", stage: "pst", instance: "pst-eos", frames, verdicts: obs.verdicts.length });
    expect([...e.shards].sort((a, b) => a - b)).toEqual([...Array(SHARDS).keys()]);
    expect(obs.order[obs.order.length - 1]).toBe("eos");
    const scanners = obs.verdicts.filter((v) => !v.aggregate).map((v) => v.address).sort();
    expect(scanners).toEqual(["198.51.100.99", "203.0.113.7"]);
    const floods = obs.verdicts.filter((v) => v.aggregate);
    expect(floods.length).toBeGreaterThan(0);
    expect(floods.every((v) => v.localAddress === "192.168.9.30" && v.label === "syn-flood" && v.address === "")).toBe(true);
    expect(obs.verdicts.every((v) => v.sourceId === "test/eos" && v.detector === "pst" && v.pst!.connections.length > 0)).toBe(true);
    // The rules service compares score with threshold: a verdict's score is always above its threshold.
    expect(obs.verdicts.every((v) => v.score > v.threshold)).toBe(true);
    const text = await registry.metrics();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(value(/^vigil_pst_segments_total\{[^}]*\} (\d+)/m)).toBe(inst.service.detector.table.segments);
    expect(value(/^vigil_pst_segments_total\{[^}]*\} (\d+)/m)).toBeGreaterThan(1000);
    expect(value(/^vigil_pst_verdicts_total\{[^}]*label="syn-scan"[^}]*\} (\d+)/m)).toBe(2);
    expect(text).toMatch(/^vigil_pst_connection_score_bucket\{/m);
    expect(text).toMatch(/^vigil_pst_malformed_frames_total\{reason="truncated"/m);
    expect(value(/^vigil_pst_owned_shards(?:\{[^}]*\})? (\d+)/m)).toBe(inst.service.ownership.shards.length);
    for (const m of inst.service.detector.models.models.values())
      expect(value(new RegExp(`^vigil_pst_threshold\\{[^}]*model="${m.name}"[^}]*\\} ([\\d.e+-]+)`, "m"))).toBeCloseTo(m.threshold.value, 6);
    await inst.stop();
    await obs.nc.drain();
  }, 60_000);

  // F28: the rules service does not enforce a replay's verdicts; what makes them a replay's is the capture's mark.
  it("marks the verdicts of a replayed capture as replays, whatever its source id, and a live source's not", async () => {
    const obs = await observer();
    const inst = await startInstance("pst-replay");
    await settled([inst]);
    await publish(obs.nc, "lab-feed", capture(), true);
    await waitFor("EndOfStream of the replay", async () => obs.eos.length === 1, 20_000);
    await publish(obs.nc, "host1/afpacket:eth0", capture());
    await waitFor("EndOfStream of the live source", async () => obs.eos.length === 2, 20_000);
    const of = (source: string) => obs.verdicts.filter((v) => v.sourceId === source);
    expect(of("lab-feed").length).toBeGreaterThan(2);
    expect(of("lab-feed").filter((v) => !v.replay)).toEqual([]);
    expect(of("host1/afpacket:eth0").length).toBe(of("lab-feed").length);
    expect(of("host1/afpacket:eth0").filter((v) => v.replay)).toEqual([]);
    await inst.stop();
    await obs.nc.drain();
  }, 60_000);

  it("streams judged connections' scores on vigil.scores.pst and answers vigil.models.pst with the model export", async () => {
    const obs = await observer();
    const batches: ScoreBatch[] = [];
    obs.nc.subscribe(subjects.scores("pst"), { callback: (_e, m) => batches.push(codecs.scoreBatch.decode(m.data)) });
    await obs.nc.flush();
    const inst = await startInstance("pst-scores");
    await settled([inst]);
    await publish(obs.nc, "test/scores", capture());
    await waitFor("EndOfStream", async () => obs.eos.length === 1, 20_000);
    await waitFor("a ScoreBatch on vigil.scores.pst", async () => batches.length > 0, 5_000);
    const scores = batches.flatMap((b) => b.scores);
    expect(batches.every((b) => b.detector === "pst" && b.instance === "pst-scores")).toBe(true);
    // At most one batch of 500 samples a second, whatever the rate of judgements.
    expect(batches.every((b) => b.scores.length <= 500)).toBe(true);
    const scan = scores.find((s) => s.key.startsWith("203.0.113.7 -> 192.168.9.20:"));
    expect(scan, "a scan probe among the sampled scores").toBeDefined();
    expect(scan!.key).toMatch(/^203\.0\.113\.7 -> 192\.168\.9\.20:\d+ \S+$/);
    expect(scan!.model).toMatch(/^pst\/[a-z-]+@\d+$/);
    expect(Number.isFinite(scan!.score) && scan!.threshold > 0).toBe(true);
    expect(scores.some((x) => x.key.startsWith("203.0.113.7 ") && x.score > x.threshold)).toBe(true);
    expect(scan!.bmu).toBe(-1);
    const web = scores.find((s) => / -> 192\.168\.9\.10:80 web$/.test(s.key));
    expect(web, "a benign web connection among the sampled scores").toBeDefined();
    expect(web!.ts).toBeGreaterThan(1_700_000_000);

    const reply = await obs.nc.request(subjects.models("pst"), new Uint8Array(0), { timeout: 3000 });
    const exported = JSON.parse(reply.string()) as Array<{ model: string; name: string; threshold: { value: number }; tree: unknown }>;
    const expected = [...inst.service.modelSet.models.values()];
    expect(exported.map((m) => m.model).sort()).toEqual(expected.map((m) => m.id).sort());
    expect(exported.every((m) => m.tree && m.threshold.value > 0)).toBe(true);
    await inst.stop();
    await obs.nc.drain();
  }, 60_000);

  it("one instance and three instances produce the same verdicts on the same capture", async () => {
    const records = capture();
    const runs: Verdict[][] = [];
    for (const n of [1, 3]) {
      const obs = await observer();
      const instances = await Promise.all(Array.from({ length: n }, (_, i) => startInstance(`pst-${n}-${i}`)));
      await settled(instances);
      if (n === 3) expect(instances.every((i) => i.service.ownedShards.length > 0)).toBe(true);
      await publish(obs.nc, "test/scale", records);
      await waitFor(`EndOfStream from ${n} instance(s)`, async () => new Set(obs.eos.flatMap((e) => e.shards)).size === SHARDS, 30_000);
      expect(obs.eos).toHaveLength(n);
      expect(obs.eos.reduce((a, e) => a + e.verdicts, 0)).toBe(obs.verdicts.length);
      runs.push(obs.verdicts.slice());
      await Promise.all(instances.map((i) => i.stop()));
      await obs.nc.drain();
    }
    expect(runs[0].length).toBeGreaterThan(2);
    expect(summary(runs[1])).toEqual(summary(runs[0]));
  }, 90_000);

  it("a false alarm lowers the score of the fed-back sequences at once and survives a restart", async () => {
    const obs = await observer();
    const inst = await startInstance("pst-feedback");
    await settled([inst]);
    await publish(obs.nc, "test/feedback", capture());
    await waitFor("EndOfStream", async () => obs.eos.length === 1, 20_000);
    const verdict = obs.verdicts.find((v) => v.address === "203.0.113.7")!;
    expect(verdict).toBeDefined();
    const ev = verdict.pst!.connections[0];
    const seq = parseSequence(ev.symbols).head;
    const model = inst.service.modelSet.models.get(ev.serviceClass)!;
    const before = model.compiled.score(seq);
    const versionBefore = model.version;
    expect(before).toBeGreaterThan(model.threshold.suspicion);
    obs.nc.publish(subjects.feedback, codecs.feedback.encode({ verdictId: verdict.id, detector: "pst", kind: FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, verdict, by: "test", comment: "", ts: 0 }));
    await waitFor("feedback to be applied", async () => inst.service.feedbackApplied === 1, 10_000);
    const after = model.compiled.score(seq);
    expect(after).toBeLessThan(before - 0.2);
    expect(model.version).toBe(versionBefore + 1);
    // Feedback for another detector or of another kind is ignored.
    obs.nc.publish(subjects.feedback, codecs.feedback.encode({ verdictId: "x", detector: "som", kind: FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, verdict, by: "", comment: "", ts: 0 }));
    obs.nc.publish(subjects.feedback, codecs.feedback.encode({ verdictId: "y", detector: "pst", kind: FeedbackKind.FEEDBACK_KIND_CONFIRMED, verdict, by: "", comment: "", ts: 0 }));
    await obs.nc.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(inst.service.feedbackApplied).toBe(1);
    await inst.stop();

    const again = await startInstance("pst-feedback-2", inst.stateDir);
    const reloaded = again.service.modelSet.models.get(ev.serviceClass)!;
    expect(reloaded.version).toBe(versionBefore + 1);
    expect(reloaded.compiled.score(seq)).toBeCloseTo(after, 6);
    expect(reloaded.training.feedbackSequences).toBeGreaterThan(0);
    await again.stop();
    await obs.nc.drain();
  }, 60_000);

  it("learning mode learns the live sequences into the models, publishes no verdicts, and persists them", async () => {
    const obs = await observer();
    const inst = await startInstance("pst-learn", undefined, undefined, { learning: true, learnRebuildSeconds: 3600 });
    await settled([inst]);
    const other = inst.service.modelSet.models.get("other")!;
    const before = { version: other.version, total: other.counts.root.total };
    await publish(obs.nc, "test/learn", capture());
    await waitFor("EndOfStream", async () => obs.eos.length === 1, 20_000);
    expect(obs.verdicts).toHaveLength(0);
    expect(obs.eos[0].verdicts).toBe(0);
    inst.service.applyLearned();
    expect(other.version).toBe(before.version + 1);
    expect(other.counts.root.total).toBeGreaterThan(before.total);
    expect(other.training.learnedSequences).toBeGreaterThan(1000);
    await inst.stop();
    const again = await startInstance("pst-learn-2", inst.stateDir);
    expect(again.service.modelSet.models.get("other")!.version).toBe(before.version + 1);
    await again.stop();
    await obs.nc.drain();
  }, 60_000);

  it("rebalances when an instance joins: the shards it takes are dropped by the other, with their state", async () => {
    const obs = await observer();
    const a = await startInstance("pst-rebalance-a");
    await settled([a]);
    // Frames without end of stream: connections stay open in A's table.
    const shards = splitByShard(capture(), SHARDS);
    const total = shards.reduce((n, r) => n + (r.byteLength ? countRecords(r) : 0), 0);
    shards.forEach((recs, shard) => {
      if (recs.byteLength) obs.nc.publish(subjects.frames(shard), codecs.frameBatch.encode({ sourceId: "test/rebalance", seq: 1, shard, shardCount: SHARDS, frameCount: countRecords(recs), records: recs, droppedBefore: 0, endOfStream: false, framesTotal: 0 }));
    });
    await obs.nc.flush();
    await waitFor("A to process every frame", async () => a.service.detector.frames === total, 10_000);
    const held = [...Array(SHARDS).keys()].filter((s) => a.service.detector.table.shardSize(s) > 0);
    expect(held.length).toBeGreaterThan(4);
    const b = await startInstance("pst-rebalance-b");
    await settled([a, b]);
    const lost = held.filter((s) => !a.service.ownedShards.includes(s));
    expect(lost.length).toBeGreaterThan(0);
    for (const s of lost) expect(a.service.detector.table.shardSize(s)).toBe(0);
    for (const s of a.service.ownedShards) if (held.includes(s)) expect(a.service.detector.table.shardSize(s)).toBeGreaterThan(0);
    await Promise.all([a.stop(), b.stop()]);
    await obs.nc.drain();
  }, 60_000);
});
