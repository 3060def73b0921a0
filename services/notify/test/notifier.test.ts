// The notifier against a real nats-server and a real HTTP receiver on
// 127.0.0.1: what reaches each kind of target, retries after 500s, dead
// letters, the bounded queue under a flood, and tokens kept out of the logs.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { createLogger } from "@vigil/lifecycle";
import { createRegistry, type Registry } from "@vigil/metrics";
import { Action, Feedback, FeedbackKind, Origin, RuleEvent, RuleEvent_Kind, Verdict } from "@vigil/proto";
import { disposeNatsServer, freePort, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { notifySectionSchema, NotifyMetrics, startNotifier, type Notifier } from "../src/index.js";
import { memoryLogger, Receiver } from "./support/receiver.js";

const TOKEN = "T0KEN-s3cret-4f1c";
let nats: NatsServerHandle;
let receiver: Receiver;
let pub: NatsConnection;
let sub: NatsConnection;
let notifier: Notifier | null = null;

beforeAll(async () => {
  nats = await startNatsServer();
  receiver = await Receiver.start();
  const logger = createLogger("notify-test", "warn");
  pub = await connectBus({ servers: [nats.url], name: "notify-test-pub", logger });
  sub = await connectBus({ servers: [nats.url], name: "notify-test-sub", logger });
});
afterEach(async () => {
  await notifier?.stop();
  notifier = null;
  receiver.requests.length = 0;
});
afterAll(async () => {
  await pub?.close();
  await sub?.close();
  await receiver?.close();
  if (nats) await disposeNatsServer(nats);
});

function start(section: Record<string, unknown>) {
  const config = notifySectionSchema.parse(section);
  const registry: Registry = createRegistry("notify");
  const { log, text } = memoryLogger();
  notifier = startNotifier({ nc: sub, config, metrics: new NotifyMetrics(registry), log });
  const metric = async (name: string, target: string) => {
    const m = new RegExp(`^${name}\\{[^}]*target="${target}"[^}]*\\} (\\S+)$`, "m").exec(await registry.metrics());
    return m ? Number(m[1]) : NaN;
  };
  return { notifier, metric, logText: text, sub };
}

const rule = (over: Record<string, unknown> = {}) => ({
  id: 42,
  action: Action.ACTION_DROP,
  srcCidr: "203.0.113.7/32",
  origin: Origin.ORIGIN_DETECTOR,
  reason: "syn-scan",
  detector: "pst",
  expiresAt: 1_900_000_000,
  enforced: true,
  ...over,
});

async function ruleEvent(kind: RuleEvent_Kind, over: Record<string, unknown> = {}, by = "") {
  pub.publish(subjects.ruleEvents, codecs.ruleEvent.encode(RuleEvent.fromPartial({ kind, rule: rule(over), ts: 1_800_000_000, by })));
  await pub.flush();
}

describe("notify: delivery", () => {
  it("sends blocks, unblocks and false alarms as JSON to a webhook and as {text} to a Slack-style hook", async () => {
    const { metric } = start({
      targets: [
        { name: "hook", type: "webhook", url: `${receiver.url}/hook`, headers: { authorization: `Bearer ${TOKEN}` } },
        { name: "chat", type: "slack", url: `${receiver.url}/services/${TOKEN}` },
        { name: "blocks-only", type: "webhook", url: `${receiver.url}/blocks`, events: ["block"] },
      ],
    });
    await sub.flush();
    await ruleEvent(RuleEvent_Kind.KIND_ADDED);
    await ruleEvent(RuleEvent_Kind.KIND_UPDATED);
    // An allow rule (the allowlist, a false alarm's temporary allow) is not a block.
    await ruleEvent(RuleEvent_Kind.KIND_ADDED, { action: Action.ACTION_ACCEPT, origin: Origin.ORIGIN_FEEDBACK });
    await ruleEvent(RuleEvent_Kind.KIND_EXPIRED);
    await ruleEvent(RuleEvent_Kind.KIND_REMOVED, { srcCidr: "198.51.100.0/24", dportMin: 22, dportMax: 22 }, "alice");
    pub.publish(
      subjects.feedback,
      codecs.feedback.encode(
        Feedback.fromPartial({ verdictId: "v-9", detector: "som", kind: FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, verdict: Verdict.fromPartial({ address: "192.0.2.44" }), by: "bob", comment: "backup job", ts: 1_800_000_100 }),
      ),
    );
    pub.publish(subjects.feedback, new Uint8Array([0xff, 0xff, 0xff]));
    await pub.flush();

    await waitFor("four notifications at each of hook and chat", () => receiver.at("/hook").length === 4 && receiver.at(`/services/${TOKEN}`).length === 4, 10_000);
    const hook = receiver.at("/hook").map((r) => r.json);
    expect(hook.map((j) => [j.kind, j.change ?? null])).toEqual([
      ["block", "added"],
      ["unblock", "expired"],
      ["unblock", "removed"],
      ["false-alarm", null],
    ]);
    expect(hook[0]).toMatchObject({
      source: "vigil",
      version: 1,
      ts: 1_800_000_000,
      rule: { id: "42", action: "block", source: "203.0.113.7/32", origin: "detector", reason: "syn-scan", detector: "pst", expiresAt: 1_900_000_000, enforced: true },
    });
    expect(hook[0].text).toMatch(/blocked 203\.0\.113\.7\/32 until 2030-03-17T\d\d:\d\d:\d\dZ \(pst\): syn-scan/);
    expect(hook[2]).toMatchObject({ rule: { source: "198.51.100.0/24", ports: "22" } });
    expect(hook[2].text).toMatch(/unblocked 198\.51\.100\.0\/24 port 22: removed by alice/);
    expect(hook[3]).toMatchObject({ feedback: { verdictId: "v-9", detector: "som", address: "192.0.2.44", by: "bob", comment: "backup job" } });
    expect(receiver.at("/hook")[0].headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(receiver.at("/hook")[0].headers["content-type"]).toBe("application/json");

    const chat = receiver.at(`/services/${TOKEN}`).map((r) => r.json);
    for (const j of chat) expect(Object.keys(j)).toEqual(["text"]);
    expect(chat.map((j) => j.text)).toEqual(hook.map((j) => j.text));

    // The per-target event filter.
    await waitFor("the block at blocks-only", () => receiver.at("/blocks").length === 1);
    expect(receiver.at("/blocks")[0].json.kind).toBe("block");
    expect(await metric("vigil_notify_sent_total", "hook")).toBe(4);
    expect(await metric("vigil_notify_sent_total", "blocks-only")).toBe(1);
  });
});

describe("notify: failures", () => {
  it("retries after 500s with backoff and delivers when the receiver answers 200", async () => {
    receiver.answer("/flaky", [500, 503]);
    const { metric } = start({ targets: [{ name: "flaky", type: "webhook", url: `${receiver.url}/flaky` }], retries: 3, backoffMs: 100, maxBackoffMs: 400 });
    await sub.flush();
    const t0 = Date.now();
    await ruleEvent(RuleEvent_Kind.KIND_ADDED);
    await waitFor("delivered", async () => (await metric("vigil_notify_sent_total", "flaky")) === 1, 10_000);
    // Two failed attempts, then the third got through: after at least the two backoffs (>= 80 + 160 ms with jitter).
    expect(receiver.at("/flaky").length).toBe(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    expect(new Set(receiver.at("/flaky").map((r) => r.body)).size).toBe(1);
    expect(await metric("vigil_notify_failed_attempts_total", "flaky")).toBe(2);
    expect(await metric("vigil_notify_dead_letters_total", "flaky")).toBe(0);
  });

  it("dead-letters after the retries are exhausted, and at once on a 4xx, without logging the URL's token", async () => {
    const closedPort = await freePort();
    receiver.answer(`/down/${TOKEN}`, [500, 500, 500, 500, 500]);
    receiver.answer(`/gone/${TOKEN}?key=${TOKEN}`, [404]);
    const { metric, logText } = start({
      targets: [
        { name: "down", type: "webhook", url: `${receiver.url}/down/${TOKEN}`, headers: { "x-api-key": TOKEN } },
        { name: "gone", type: "slack", url: `${receiver.url}/gone/${TOKEN}?key=${TOKEN}` },
        // Nothing listens on a just-freed loopback port: a connection error, retried, then dead.
        { name: "refused", type: "webhook", url: `http://user:${TOKEN}@127.0.0.1:${closedPort}/${TOKEN}` },
      ],
      retries: 2,
      backoffMs: 20,
      maxBackoffMs: 40,
    });
    await sub.flush();
    await ruleEvent(RuleEvent_Kind.KIND_ADDED);
    await waitFor("three dead letters", async () =>
      (await metric("vigil_notify_dead_letters_total", "down")) === 1 && (await metric("vigil_notify_dead_letters_total", "gone")) === 1 && (await metric("vigil_notify_dead_letters_total", "refused")) === 1,
    10_000);
    expect(receiver.at(`/down/${TOKEN}`).length).toBe(3);
    expect(receiver.at(`/gone/${TOKEN}?key=${TOKEN}`).length).toBe(1);
    expect(await metric("vigil_notify_failed_attempts_total", "down")).toBe(3);
    expect(await metric("vigil_notify_failed_attempts_total", "gone")).toBe(1);
    expect(await metric("vigil_notify_failed_attempts_total", "refused")).toBe(3);
    expect(await metric("vigil_notify_sent_total", "down")).toBe(0);
    const logs = logText();
    expect(logs).toMatch(/"target":"down".*dead-lettered/);
    expect(logs).toMatch(/down: answered HTTP 500/);
    expect(logs).toMatch(/gone: answered HTTP 404/);
    expect(logs).toMatch(/refused: request ECONNREFUSED/);
    expect(logs).not.toContain(TOKEN);
    expect(logs).not.toContain(`127.0.0.1:${closedPort}`);
  });
});

describe("notify: a flood", () => {
  it("keeps each queue bounded, counts what it dropped and sends one summary of it", async () => {
    receiver.hold();
    const { notifier: n, metric } = start({ targets: [{ name: "slow", type: "webhook", url: `${receiver.url}/slow` }], queueSize: 5 });
    await sub.flush();
    const worker = n.workers[0];
    let deepest = 0;
    for (let i = 0; i < 200; i++) {
      pub.publish(subjects.ruleEvents, codecs.ruleEvent.encode(RuleEvent.fromPartial({ kind: i % 4 === 3 ? RuleEvent_Kind.KIND_EXPIRED : RuleEvent_Kind.KIND_ADDED, rule: rule({ id: i, srcCidr: `10.0.${i >> 8}.${i & 255}/32` }) })));
      if (i % 20 === 0) {
        await pub.flush();
        deepest = Math.max(deepest, worker.queue.length);
      }
    }
    await pub.flush();
    await sub.flush();
    await waitFor("the flood counted", async () => (await metric("vigil_notify_dropped_total", "slow")) === 200 - 5 - 1);
    deepest = Math.max(deepest, worker.queue.length);
    expect(deepest).toBeLessThanOrEqual(5);
    expect(await metric("vigil_notify_queue_depth", "slow")).toBe(5);
    // Let the receiver answer: the one in flight, the five queued, then the summary.
    const drain = setInterval(() => receiver.release(), 20);
    try {
      await waitFor("seven requests", () => receiver.at("/slow").length === 7, 10_000);
    } finally {
      clearInterval(drain);
    }
    const got = receiver.at("/slow").map((r) => r.json);
    expect(got.slice(0, 6).map((j) => (j.rule as { source: string }).source)).toEqual(["10.0.0.0/32", "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", "10.0.0.4/32", "10.0.0.5/32"]);
    const summary = got[6];
    expect(summary.kind).toBe("dropped");
    const dropped = summary.dropped as Record<string, number>;
    expect(dropped.block + dropped.unblock).toBe(194);
    expect(dropped.unblock).toBe(50 - 1); // every fourth is an expiry; #3 was queued
    expect(summary.text).toMatch(/194 notifications not sent, the queue was full/);
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.at("/slow").length).toBe(7);
  });
});
