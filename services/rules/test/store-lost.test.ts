import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connectBus } from "@vigil/bus";
import { Action, Rule } from "@vigil/proto";
import { disposeNatsServer, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { RuleStore } from "../src/store.js";
import { log, metricValue, publishVerdict, startService, verdict } from "./support/rules.js";

// Security review, "Other persistence notes (LOW)": if JetStream loses the KV stream while the rules service
// runs, writes retried forever and the bucket was never made again, so the next start began empty (permanent
// manual blocks and false-alarm allows lost). Real nats-server with JetStream; the stream is deleted under it.

const skip = toolMissing("nats-server");

/** The keys in the bucket now, or null while it does not exist. */
async function keysOf(kvm: Kvm, bucket: string): Promise<string[] | null> {
  try {
    const kv = await kvm.open(bucket);
    await kv.status();
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    return keys.sort();
  } catch {
    return null;
  }
}

describe.skipIf(skip)("the rule store's stream deleted while the service runs", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    if (nats) await disposeNatsServer(nats);
  });

  it("is made again at the next write, with every active rule and offence in it, and a restart finds them", async () => {
    const cfg = { bucket: "lost_stream", dryRun: true };
    let r = await startService(nats.url, cfg);
    try {
      const permanent = await r.svc.addRule(Rule.fromPartial({ action: Action.ACTION_DROP, srcCidr: "198.51.100.0/24", reason: "kept for good" }), 0, "test");
      publishVerdict(r.nc, verdict("192.0.2.33", { handshakes: 1 }));
      const block = await waitFor("the detector's block", () => r.svc.listRules({ address: "192.0.2.33" })[0] ?? null, 5000);
      await waitFor("stored", () => r.svc.storeBacklog === 0 || null, 5000);
      const kvm = new Kvm(r.nc);
      expect(await keysOf(kvm, "lost_stream")).toEqual(["offence.192.0.2.33", `rule.${block.id}`, `rule.${permanent.id}`].sort());

      await (await jetstreamManager(r.nc)).streams.delete("KV_lost_stream");
      expect(await keysOf(kvm, "lost_stream")).toBeNull();
      // The next write finds the stream gone.
      const after = await r.svc.addRule(Rule.fromPartial({ action: Action.ACTION_DROP, srcCidr: "203.0.113.7/32", reason: "after the loss" }), 3600, "test");
      const want = ["offence.192.0.2.33", `rule.${after.id}`, `rule.${block.id}`, `rule.${permanent.id}`].sort();
      await waitFor("the rules back in the bucket", async () => JSON.stringify(await keysOf(kvm, "lost_stream")) === JSON.stringify(want) || null, 10_000, 100);
      expect(await metricValue(r.registry, "vigil_rules_store_recreated_total")).toBe(1);
      await waitFor("stored", () => r.svc.storeBacklog === 0 || null, 5000);

      await r.stop();
      r = await startService(nats.url, cfg);
      expect(r.svc.listRules({}).map((x) => x.id).sort()).toEqual([after.id, block.id, permanent.id].sort());
      expect(r.svc.rules.get(permanent.id)!.rule).toMatchObject({ expiresAt: 0, reason: "kept for good" });
      expect((await r.svc.ruleRecord(block.id))!.history[0]).toMatchObject({ event: "added" });
    } finally {
      await r.stop();
    }
  }, 60_000);

  it("is noticed without a write too: the store looks for its stream and makes it again", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "store-lost-test", firstConnectTimeoutMs: 5000 });
    const rule = Rule.fromPartial({ id: 42, action: Action.ACTION_DROP, srcCidr: "192.0.2.42/32", expiresAt: 0 });
    let recreated = 0;
    const store = new RuleStore(nc, "lost_idle", log, { checkMs: 200, contents: () => ({ rules: [{ rule, evidence: [] }], offences: new Map() }), recreated: () => recreated++ });
    try {
      await store.open();
      store.saveRule({ rule, evidence: [] });
      expect(await store.drain()).toBe(true);
      await (await jetstreamManager(nc)).streams.delete("KV_lost_idle");
      await waitFor("the rule back in the bucket", async () => ((await keysOf(new Kvm(nc), "lost_idle"))?.includes("rule.42") ? true : null), 10_000, 100);
      expect(recreated).toBe(1);
    } finally {
      await store.close();
      await nc.close();
    }
  }, 30_000);
});
