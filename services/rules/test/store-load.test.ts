import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connectBus, type NatsConnection } from "@vigil/bus";
import { Action, Origin, Rule, Verdict } from "@vigil/proto";
import { disposeNatsServer, startNatsServer, toolMissing, type NatsServerHandle } from "@vigil/testing";
import { canonicalRule } from "../src/model.js";
import { encodeStored, offenceKey, RuleStore } from "../src/store.js";

const natsSkip = toolMissing("nats-server");

const now = 1_800_000_000;
const address = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`; // the local host is 192.0.2.1

function rule(i: number): Rule {
  return canonicalRule(
    Rule.fromPartial({ action: Action.ACTION_DROP, origin: Origin.ORIGIN_DETECTOR, srcCidr: `${address(i)}/32`, detector: "pst", reason: "pst: anomalous TCP flag sequences", createdBy: "pst", createdAt: now, expiresAt: now + 3600, verdictIds: [`v-${i}`] }),
  ).rule;
}

/** A verdict of `handshakes` completed connections and one refused, from the address. */
function verdict(i: number, handshakes: number): Verdict {
  const a = address(i);
  const done = Array.from({ length: handshakes }, (_, k) => ({ client: a, clientPort: 40000 + k, server: "192.0.2.1", serverPort: 22, symbols: "C:S S:SA C:A C:PA S:PA C:FA" }));
  return Verdict.fromPartial({ id: `v-${i}`, detector: "pst", address: a, score: 4 + i, threshold: 3, connections: handshakes + 1, packets: 10, firstTs: now - 5, lastTs: now - i, summary: "\u00e9t\u00e9 \ud83d\ude00", pst: { connections: [...done, { client: a, clientPort: 50000, server: "192.0.2.1", serverPort: 80, symbols: "C:S S:SA C:R" }] } });
}

/** A record as the service writes it, with its verdict's fields replaced by `verdictJson` when given. */
function record(r: Rule, v: Verdict, verdictJson?: Record<string, unknown>): string {
  const stored = JSON.parse(new TextDecoder().decode(encodeStored({ rule: r, history: [{ ts: now, event: "added", by: "pst", why: "test" }], verdicts: [v] })));
  if (verdictJson) Object.assign(stored.verdicts[0], verdictJson);
  return JSON.stringify(stored);
}

describe.skipIf(natsSkip)("loading the rule store", () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    nc = await connectBus({ servers: [nats.url], name: "store-load-test" });
  });
  afterAll(async () => {
    await nc?.close();
    if (nats) await disposeNatsServer(nats);
  });

  async function load(bucket: string) {
    const store = new RuleStore(nc, bucket);
    await store.open();
    const quarantined = new Map<string, string>();
    const loaded = await store.loadAll((key, problem) => quarantined.set(key, problem));
    await store.close();
    return { ...loaded, quarantined };
  }

  it("loads nothing from an empty bucket", async () => {
    const { rules, offences, quarantined } = await load("load_empty");
    expect([rules.size, offences.size, quarantined.size]).toEqual([0, 0, 0]);
  });

  it("loads every stored rule with the evidence of its verdicts, in stream order, past many flow-control windows", async () => {
    const bucket = "load_many";
    await new RuleStore(nc, bucket).open();
    const js = jetstream(nc);
    const n = 3000;
    const acks = [];
    for (let i = 0; i < n; i++) acks.push(js.publish(`$KV.${bucket}.rule.${rule(i).id}`, record(rule(i), verdict(i, i % 3))));
    await Promise.all(acks);
    const { rules, quarantined } = await load(bucket);
    expect(quarantined.size).toBe(0);
    expect([...rules.keys()]).toEqual(Array.from({ length: n }, (_, i) => rule(i).id));
    for (const i of [0, 1, 2, 1234, n - 1]) {
      const entry = rules.get(rule(i).id)!;
      expect(entry.rule).toEqual(rule(i));
      const v = verdict(i, i % 3);
      expect(entry.evidence).toEqual([{ id: v.id, detector: "pst", ts: v.lastTs, score: v.score, handshakes: i % 3, bytes: Verdict.encode(v).finish().length }]);
    }
  });

  it("quarantines each crafted record with a problem that names it, and loads the rest", async () => {
    const bucket = "load_crafted";
    await new RuleStore(nc, bucket).open();
    const kv = await new Kvm(nc).open(bucket);
    const good = [rule(1), rule(2), rule(3)];
    for (const [i, r] of good.entries()) await kv.put(`rule.${r.id}`, record(r, verdict(i + 1, 1)));
    const bad = {
      negativeCount: rule(10),
      fractionalPort: rule(11),
      hugePackets: rule(12),
      badCidr: rule(13),
      unknownOrigin: rule(14),
    };
    await kv.put(`rule.${bad.negativeCount.id}`, record(bad.negativeCount, verdict(10, 1), { connections: -1 }));
    await kv.put(`rule.${bad.fractionalPort.id}`, record(bad.fractionalPort, verdict(11, 1), { pst: { connections: [{ client: "a", clientPort: 1.5 }] } }));
    await kv.put(`rule.${bad.hugePackets.id}`, record(bad.hugePackets, verdict(12, 1), { packets: "1e400" }));
    await kv.put(`rule.${bad.badCidr.id}`, JSON.stringify({ rule: { ...Rule.toJSON(bad.badCidr) as object, srcCidr: "10.0.0.300/32" }, history: [], verdicts: [] }));
    await kv.put(`rule.${bad.unknownOrigin.id}`, JSON.stringify({ rule: { ...Rule.toJSON(bad.unknownOrigin) as object, origin: 99 }, history: [], verdicts: [] }));
    const zombie = rule(20); // a valid record under a key that is not its id's, written with a leading zero
    await kv.put(`rule.0${zombie.id}`, record(zombie, verdict(20, 1)));
    await kv.put("rule.30", "{not json");
    await kv.put(offenceKey("192.0.2.9"), JSON.stringify({ count: "x", lastAt: 1 }));
    await kv.put(offenceKey("2001:db8::7"), JSON.stringify({ count: 2, lastAt: now }));
    const deleted = rule(40); // stored, then deleted: never loaded
    await kv.put(`rule.${deleted.id}`, record(deleted, verdict(40, 1)));
    await kv.delete(`rule.${deleted.id}`);
    const replaced = rule(41); // stored valid, then overwritten by a crafted record: quarantined, not the old value
    await kv.put(`rule.${replaced.id}`, record(replaced, verdict(41, 1)));
    await kv.put(`rule.${replaced.id}`, record(replaced, verdict(41, 1), { serverPort: -22, pst: { connections: [{ serverPort: -22 }] } }));

    const { rules, offences, quarantined } = await load(bucket);
    expect([...rules.keys()]).toEqual(good.map((r) => r.id));
    expect([...offences]).toEqual([["2001:db8::7", { count: 2, lastAt: now }]]);
    expect(Object.fromEntries(quarantined)).toEqual({
      [`rule.${bad.negativeCount.id}`]: "invalid uint32: -1",
      [`rule.${bad.fractionalPort.id}`]: "invalid uint32: 1.5",
      [`rule.${bad.hugePackets.id}`]: expect.stringMatching(/Infinity|BigInt/),
      [`rule.${bad.badCidr.id}`]: expect.stringMatching(/rule\.src_cidr.*10\.0\.0\.300/),
      [`rule.${bad.unknownOrigin.id}`]: expect.stringMatching(/rule\.origin: unknown origin/),
      [`rule.0${zombie.id}`]: `key does not match the rule's id ${zombie.id}`,
      "rule.30": expect.stringMatching(/JSON/),
      [offenceKey("192.0.2.9")]: "count is not a whole number 1..1000",
      [`rule.${replaced.id}`]: "invalid uint32: -22",
    });
  });
});
