import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { FeedbackKind, type Verdict } from "@vigil/proto";
import { disposeNatsServer, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { FEATURE_COUNT } from "../src/index.js";
import { Collector, replay, scenario, startService, T0, type Running } from "./support/scenarios.js";

const L = "10.0.0.1";

/** What a set of verdicts accuses: attributed addresses and attacked local addresses of aggregate verdicts. */
function accused(vs: Verdict[]): string[] {
  return [...new Set(vs.map((v) => (v.aggregate ? `aggregate:${v.localAddress}` : v.address)))].sort();
}

describe("SOM service over a real nats-server", () => {
  let nats: NatsServerHandle;
  let client: NatsConnection;
  let collector: Collector;
  const dirs: string[] = [];
  const running: Running[] = [];
  const stateDir = () => {
    const d = mkdtempSync(join(tmpdir(), "vigil-som-state-"));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    client = await connectBus({ servers: [nats.url], name: "som-test-client" });
    collector = new Collector(client);
  });
  afterAll(async () => {
    for (const r of running) await r.stop().catch(() => undefined);
    await client?.close();
    if (nats) await disposeNatsServer(nats);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const attacks = scenario(301, (s) => {
    s.synScan(T0 + 10, 4, 400, "66.66.66.66");
    s.synFlood(T0 + 20, 5, 3000, { port: 80 });
    s.udpFlood(T0 + 30, 4, 3000, "77.77.77.77");
    s.fragmentFlood(T0 + 40, 4, 2000);
  });
  const expected = ["66.66.66.66", "77.77.77.77", `aggregate:${L}`].sort();

  it("consumes every shard, judges the end of the stream and reports it", { timeout: 60_000 }, async () => {
    const r = await startService(nats.url, "solo", stateDir());
    running.push(r);
    await r.service.ownership.settled(300);
    const frames = await replay(client, "solo-1", attacks, 16, 7);
    await waitFor("end of stream from som", () => collector.eosFor("solo-1").length === 1, 30_000);
    const [eos] = collector.eosFor("solo-1");
    expect(eos.stage).toBe("som");
    expect(eos.instance).toBe("solo");
    expect(eos.shards).toHaveLength(16);
    expect(eos.frames).toBe(frames);
    const vs = collector.for("solo-1");
    expect(eos.verdicts).toBe(vs.length);
    expect(accused(vs)).toEqual(expected);
    // Spoofed floods (SYN and fragments) against the same host merge into ONE aggregate verdict per period.
    expect(vs.filter((v) => v.aggregate)).toHaveLength(1);
    expect(vs.every((v) => v.detector === "som" && v.instance === "solo" && v.id.startsWith("som-"))).toBe(true);

    // The same capture batched differently gives the same verdicts.
    await replay(client, "solo-1b", attacks, 16, 99);
    await waitFor("second end of stream", () => collector.eosFor("solo-1b").length === 1, 30_000);
    const strip = (v: Verdict) => ({ ...v, id: "", sourceId: "" });
    expect(collector.for("solo-1b").map(strip)).toEqual(vs.map(strip));
    await r.stop();
    running.splice(running.indexOf(r), 1);
  });

  // F28: the rules service does not enforce a replay's verdicts; what makes them a replay's is the capture's mark.
  it("marks the verdicts of a replayed capture as replays, whatever its source id, and a live source's not", { timeout: 60_000 }, async () => {
    const r = await startService(nats.url, "replays", stateDir());
    running.push(r);
    await r.service.ownership.settled(300);
    await replay(client, "lab-feed", attacks, 16, 7, true);
    await replay(client, "host1/afpacket:eth0", attacks, 16, 7, false);
    await waitFor("both ends of stream", () => collector.eosFor("lab-feed").length === 1 && collector.eosFor("host1/afpacket:eth0").length === 1, 30_000);
    expect(accused(collector.for("lab-feed"))).toEqual(expected);
    expect(collector.for("lab-feed").filter((v) => !v.replay)).toEqual([]);
    expect(collector.for("host1/afpacket:eth0").length).toBe(collector.for("lab-feed").length);
    expect(collector.for("host1/afpacket:eth0").filter((v) => v.replay)).toEqual([]);
    await r.stop();
    running.splice(running.indexOf(r), 1);
  });

  it("one instance and three instances flag the same attacks on the same capture", { timeout: 90_000 }, async () => {
    const one = await startService(nats.url, "one", stateDir());
    await one.service.ownership.settled(300);
    await replay(client, "one-1", attacks, 16, 3);
    await waitFor("single instance end of stream", () => collector.eosFor("one-1").length === 1, 30_000);
    await one.stop();

    const three = await Promise.all(["tri-a", "tri-b", "tri-c"].map(async (id) => startService(nats.url, id, stateDir())));
    running.push(...three);
    await waitFor("three-way split", () => three.every((r) => r.service.ownership.shards.length > 0 && r.service.ownership.memberIds.length === 3), 10_000);
    await Promise.all(three.map((r) => r.service.ownership.settled(300)));
    expect(three.reduce((n, r) => n + r.service.ownership.shards.length, 0)).toBe(16);
    await replay(client, "three-1", attacks, 16, 3);
    await waitFor("three ends of stream", () => collector.eosFor("three-1").length === 3, 30_000);
    const eos = collector.eosFor("three-1");
    expect(eos.flatMap((e) => e.shards).sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    expect(accused(collector.for("one-1"))).toEqual(expected);
    expect(accused(collector.for("three-1"))).toEqual(expected);
    // Each attributed source is judged by exactly one instance: the one owning its shard.
    for (const addr of ["66.66.66.66", "77.77.77.77"])
      expect(new Set(collector.for("three-1").filter((v) => v.address === addr).map((v) => v.instance)).size).toBe(1);
    for (const r of three) await r.stop();
    running.splice(0, running.length);
  });

  it("learns a false alarm online, persists it and raises nothing for that window again, also after a restart", { timeout: 90_000 }, async () => {
    const dir = stateDir();
    // A short scan: one anomalous window.
    const capture = scenario(302, (s) => s.synScan(T0 + 20.1, 0.5, 800, "55.55.55.55"), { seconds: 40 });
    let r = await startService(nats.url, "fb", dir);
    running.push(r);
    await r.service.ownership.settled(300);
    await replay(client, "fb-1", capture);
    await waitFor("end of stream", () => collector.eosFor("fb-1").length === 1, 30_000);
    const flagged = collector.for("fb-1");
    expect(flagged.map((v) => v.address)).toEqual(["55.55.55.55"]);
    const before = r.service.model.som.quantizationError(r.service.model.transform(flagged[0].som!.features.map((f) => f.value), new Float64Array(FEATURE_COUNT)));

    client.publish(
      subjects.feedback,
      codecs.feedback.encode({ verdictId: flagged[0].id, detector: "som", kind: FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, verdict: flagged[0], by: "test", comment: "", ts: 1 }),
    );
    await waitFor("feedback persisted", () => existsSync(join(dir, "feedback.json")), 10_000);
    const stored = JSON.parse(readFileSync(join(dir, "feedback.json"), "utf8"));
    expect(stored.entries.map((e: { verdictId: string }) => e.verdictId)).toEqual([flagged[0].id]);
    expect(existsSync(join(dir, "som-model.json"))).toBe(true);
    const after = r.service.model.som.quantizationError(r.service.model.transform(flagged[0].som!.features.map((f) => f.value), new Float64Array(FEATURE_COUNT)));
    expect(after).toBeLessThan(before);

    await replay(client, "fb-2", capture);
    await waitFor("second end of stream", () => collector.eosFor("fb-2").length === 1, 30_000);
    expect(collector.for("fb-2")).toEqual([]);

    await r.stop();
    running.splice(running.indexOf(r), 1);
    r = await startService(nats.url, "fb-restarted", dir);
    running.push(r);
    expect(r.service.model.json.feedback).toHaveLength(1);
    await r.service.ownership.settled(300);
    await replay(client, "fb-3", capture);
    await waitFor("third end of stream", () => collector.eosFor("fb-3").length === 1, 30_000);
    expect(collector.for("fb-3")).toEqual([]);
    // A different attack is still caught after the feedback.
    await replay(client, "fb-4", scenario(303, (s) => s.synFlood(T0 + 20, 5, 3000)));
    await waitFor("fourth end of stream", () => collector.eosFor("fb-4").length === 1, 30_000);
    expect(collector.for("fb-4").map((v) => v.aggregate)).toEqual([true]);
    await r.stop();
    running.splice(running.indexOf(r), 1);
  });

  it("counts and skips undecodable batches and records that overrun their batch", { timeout: 30_000 }, async () => {
    const r = await startService(nats.url, "bad", stateDir());
    running.push(r);
    await r.service.ownership.settled(300);
    client.publish(subjects.frames(0), new Uint8Array([0xff, 0xff, 0xff, 0x0f, 0x01]));
    const broken = new Uint8Array(40);
    broken[16] = 200; // cap_len beyond the batch
    client.publish(subjects.frames(0), codecs.frameBatch.encode({ sourceId: "bad-1", seq: 1, shard: 0, shardCount: 16, frameCount: 1, records: Buffer.from(broken), droppedBefore: 0, endOfStream: false, framesTotal: 0 }));
    await replay(client, "bad-1", scenario(304, () => undefined, { seconds: 5 }));
    await waitFor("end of stream despite bad input", () => collector.eosFor("bad-1").length === 1, 20_000);
    expect((await r.metrics.malformedBatches.get()).values[0].value).toBe(2);
    const text = await r.metrics.registry.metrics();
    expect(text).toMatch(/vigil_som_packets_total\{[^}]*\} [1-9]/);
    expect(text).toMatch(/vigil_som_windows_total\{[^}]*result="normal"[^}]*\} [1-9]/);
    expect(text).toContain("vigil_som_quantization_error_bucket");
    await r.stop();
    running.splice(running.indexOf(r), 1);
  });
});
