import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, connectBus, LIVENESS_CUTOFF_MS, subjects, type NatsConnection } from "@vigil/bus";
import { EndOfStream, Feedback, FeedbackKind, Heartbeat, Origin, RuleEvent, RuleEvent_Kind, Verdict } from "@vigil/proto";
import { disposeNatsServer, inNetns, netnsUnavailableReason, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { Allowlist } from "../src/allowlist.js";
import { NftablesEnforcer } from "../src/enforcers/nftables.js";
import { hostCidr } from "../src/model.js";
import { metricValue, natsAndVeth, ping, publishVerdict, startService, verdict, type Running } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
const nftSkip = netnsUnavailableReason() ?? toolMissing("nft");
if (natsSkip) console.warn(`rules service tests skipped: ${natsSkip}`);
if (nftSkip) console.warn(`rules service nftables tests skipped: ${nftSkip}`);

function collect<T>(nc: NatsConnection, subject: string, decode: (d: Uint8Array) => T): T[] {
  const out: T[] = [];
  nc.subscribe(subject, {
    callback: (err, msg) => {
      if (!err) out.push(decode(msg.data));
    },
  });
  return out;
}

describe.skipIf(natsSkip || nftSkip)(`rules service with nftables in a network namespace${nftSkip ? ` (skipped: ${nftSkip})` : ""}`, () => {
  const env = natsAndVeth();

  it("blocks a source after a verdict and lets it pass again after the TTL", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket: "ttl_test", baseTtlS: 3, netns: env.pair.b }, enforcer);
    const events = collect(r.nc, subjects.ruleEvents, (d) => codecs.ruleEvent.decode(d));
    try {
      expect(ping(env.pair.a, env.pair.addrB4)).toBe(true);
      const v = verdict(env.pair.addrA4, { handshakes: 2 });
      publishVerdict(r.nc, v);
      await waitFor("rule enforced", () => r.svc.listRules({})[0]?.enforced, 5000);
      const [rule] = r.svc.listRules({});
      expect(rule).toMatchObject({ srcCidr: `${env.pair.addrA4}/32`, origin: Origin.ORIGIN_DETECTOR, verdictIds: [v.id], offences: 1, decidedTs: v.lastTs });
      expect(rule.expiresAt - rule.createdAt).toBeCloseTo(3, 0);
      expect(ping(env.pair.a, env.pair.addrB4)).toBe(false);
      expect(await metricValue(r.registry, "vigil_rules_decision_latency_seconds")).toBe(1);
      expect(await metricValue(r.registry, "vigil_rules_decisions_total", { outcome: "blocked" })).toBe(1);
      await waitFor("rule expired", () => r.svc.listRules({}).length === 0 || null, 6000);
      await waitFor("traffic passes again", () => ping(env.pair.a, env.pair.addrB4) || null, 4000, 200);
      await waitFor("events", () => events.length >= 2 || null);
      expect(events.map((e) => e.kind)).toEqual([RuleEvent_Kind.KIND_ADDED, RuleEvent_Kind.KIND_EXPIRED]);
      // A repeat offence doubles the TTL: the source attacks again, after its block (capture time now).
      const back = Date.now() / 1000;
      publishVerdict(r.nc, verdict(env.pair.addrA4, { handshakes: 2, firstTs: back - 0.5, lastTs: back }));
      await waitFor("second block", () => r.svc.listRules({})[0]?.enforced, 5000);
      const again = r.svc.listRules({})[0];
      expect(again.offences).toBe(2);
      expect(again.expiresAt - again.createdAt).toBeCloseTo(6, 0);
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 30_000);

  it("announces a rule expired only once its source passes again, also after an agreement extended it", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket: "expiry_test", baseTtlS: 1, netns: env.pair.b }, enforcer);
    const element = `drop4|${env.pair.addrA4}`;
    const sleepUntil = (ms: number) => new Promise((res) => setTimeout(res, Math.max(0, ms - Date.now())));
    let sweptAt = 0;
    let atExpiry: Promise<{ held: boolean; passes: boolean }> | null = null;
    r.svc.on("rule", (e) => {
      if (e.kind !== RuleEvent_Kind.KIND_EXPIRED) return;
      if (e.rule?.srcCidr !== `${env.pair.addrA4}/32`) sweptAt = Date.now();
      // Checked as soon as the event is out, nothing awaited: when a client watching the events tries again.
      else if (!atExpiry) atExpiry = (async () => ({ held: (await enforcer.actual()).elems.has(element), passes: ping(env.pair.a, env.pair.addrB4) }))();
    });
    try {
      // The expiry sweep runs once a second: learn when, from a throwaway rule.
      publishVerdict(r.nc, verdict("192.0.2.99", { handshakes: 2 }));
      await waitFor("the sweep's phase", () => sweptAt, 5000, 10);
      // Blocked 0.25 s before a sweep, then the second detector agrees 0.9 s later: the rule ends at
      // creation + 4 s and is swept about 0.25 s after that, while the kernel's timeout, set at the
      // agreement in whole seconds, ends the element only at creation + 4.9 s.
      await sleepUntil(sweptAt + 1750);
      publishVerdict(r.nc, verdict(env.pair.addrA4, { handshakes: 2 }));
      await waitFor("rule enforced", () => r.svc.listRules({ address: env.pair.addrA4 })[0]?.enforced, 5000, 10);
      const created = r.svc.listRules({ address: env.pair.addrA4 })[0];
      await sleepUntil(created.createdAt * 1000 + 900);
      publishVerdict(r.nc, verdict(env.pair.addrA4, { handshakes: 2, detector: "som", id: `som-expiry-${env.pair.addrA4}` }));
      await waitFor("agreement", () => r.svc.listRules({ address: env.pair.addrA4 })[0]?.detector === "pst+som" || null, 5000, 10);
      expect(r.svc.listRules({ address: env.pair.addrA4 })[0].expiresAt - created.createdAt).toBeCloseTo(4, 1);
      expect((await enforcer.actual()).elems.has(element)).toBe(true);
      await waitFor("rule expired", () => atExpiry, 8000, 50);
      expect(await atExpiry!).toEqual({ held: false, passes: true });
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 30_000);

  it("a verdict between a rule's expiry and the sweep: the old rule is announced expired before the source is blocked again", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket: "race_test", baseTtlS: 1, netns: env.pair.b }, enforcer);
    const sleepUntil = (ms: number) => new Promise((res) => setTimeout(res, Math.max(0, ms - Date.now())));
    const target = "198.51.100.77";
    const events: { kind: RuleEvent_Kind; createdAt: number; expiresAt: number }[] = [];
    let sweptAt = 0;
    r.svc.on("rule", (e) => {
      if (e.rule?.srcCidr === `${target}/32`) events.push({ kind: e.kind, createdAt: e.rule.createdAt, expiresAt: e.rule.expiresAt });
      else if (e.kind === RuleEvent_Kind.KIND_EXPIRED) sweptAt = Date.now();
    });
    try {
      // The sweep runs once a second: learn its phase from a throwaway rule.
      publishVerdict(r.nc, verdict("192.0.2.98", { handshakes: 2 }));
      await waitFor("the sweep's phase", () => sweptAt, 5000, 10);
      // Blocked 0.1 s after a sweep: the rule expires 0.1 s after the next one, and the sweep after
      // that comes 0.9 s later. The source's next verdict lands in between.
      await sleepUntil(sweptAt + 1100);
      publishVerdict(r.nc, verdict(target, { handshakes: 2 }));
      await waitFor("first block", () => events.length > 0 || null, 5000, 10);
      await sleepUntil(events[0].expiresAt * 1000 + 300);
      // The source attacks again, after its block ended (capture time now).
      const back = Date.now() / 1000;
      publishVerdict(r.nc, verdict(target, { handshakes: 2, firstTs: back - 0.2, lastTs: back }));
      await waitFor("second block", () => events.filter((e) => e.kind === RuleEvent_Kind.KIND_ADDED).length === 2 || null, 5000, 10);
      expect(events.map((e) => e.kind)).toEqual([RuleEvent_Kind.KIND_ADDED, RuleEvent_Kind.KIND_EXPIRED, RuleEvent_Kind.KIND_ADDED]);
      expect(events[2].createdAt).toBeGreaterThan(events[0].expiresAt);
      // A repeat offence: twice the base TTL.
      expect(events[2].expiresAt - events[2].createdAt).toBeCloseTo(2, 3);
      expect(r.svc.listRules({ address: target })).toHaveLength(1);
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 30_000);

  it("loses no active rule across restarts of the service, of NATS and of the host's firewall state", async () => {
    const cfg = { bucket: "restart_test", baseTtlS: 600, netns: env.pair.b };
    let r: Running = await startService(env.nats.url, cfg, new NftablesEnforcer({ netns: env.pair.b }));
    const addrs = ["192.0.2.10", "192.0.2.11", "2001:db8::11"];
    for (const a of addrs) publishVerdict(r.nc, verdict(a, { handshakes: 1 }));
    await waitFor("three rules", () => r.svc.listRules({}).filter((x) => x.enforced).length === 3 || null, 5000);
    const manual = await r.svc.addRule(
      (await import("@vigil/proto")).Rule.fromPartial({ srcCidr: "198.51.100.0/24", protocol: 6, dportMin: 22 }),
      0,
      "test",
    );
    const before = r.svc.listRules({}).map((x) => x.id).sort();
    await r.stop();

    // NATS restarts (hard kill: only what reached the file store survives).
    await env.nats.stop(true);
    await env.nats.start();
    // The host rebooted: the kernel lost the table.
    await new NftablesEnforcer({ netns: env.pair.b }).destroy();

    const enforcer = new NftablesEnforcer({ netns: env.pair.b });
    r = await startService(env.nats.url, cfg, enforcer);
    try {
      expect(r.svc.listRules({}).map((x) => x.id).sort()).toEqual(before);
      const { elems, ruleIds } = await enforcer.actual();
      expect([...elems.keys()].sort()).toEqual(["drop4|192.0.2.10", "drop4|192.0.2.11", "drop6|2001:db8::11"]);
      expect([...ruleIds]).toEqual([manual.id]);
      // NATS restarts under a running service: a rule added meanwhile is enforced at once and stored once NATS is back.
      await env.nats.stop();
      const during = await r.svc.addRule((await import("@vigil/proto")).Rule.fromPartial({ srcCidr: "192.0.2.200" }), 600, "test");
      expect(during.enforced).toBe(true);
      await env.nats.start();
      await waitFor("reconnected", async () => {
        try {
          await r.nc.flush();
          return true;
        } catch {
          return null;
        }
      }, 10_000);
      publishVerdict(r.nc, verdict("192.0.2.12", { handshakes: 1 }));
      await waitFor("five rules", () => r.svc.listRules({}).length === 6 || null, 10_000);
      await waitFor("store drained", () => r.svc.storeBacklog === 0 || null, 15_000);
      const ids = r.svc.listRules({}).map((x) => x.id).sort();
      await r.stop();
      r = await startService(env.nats.url, cfg, new NftablesEnforcer({ netns: env.pair.b }));
      expect(r.svc.listRules({}).map((x) => x.id).sort()).toEqual(ids);
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 60_000);

  it("restores the rules within seconds when a firewall reload wipes the table", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket: "wipe_test", netns: env.pair.b }, enforcer);
    try {
      publishVerdict(r.nc, verdict(env.pair.addrA4, { handshakes: 1 }));
      await waitFor("enforced", () => r.svc.listRules({})[0]?.enforced, 5000);
      expect(ping(env.pair.a, env.pair.addrB4)).toBe(false);
      inNetns(env.pair.b, "nft", ["flush", "ruleset"]);
      expect(ping(env.pair.a, env.pair.addrB4)).toBe(true);
      await waitFor("blocked again", () => !ping(env.pair.a, env.pair.addrB4) || null, 12_000, 500);
      expect(await metricValue(r.registry, "vigil_rules_reconciles_total", { result: "ok" })).toBeGreaterThanOrEqual(2);
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 30_000);

  it("a spoofed-source flood of verdicts blocks nobody beyond the cap", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket: "flood_test", capBurst: 5, capPerMinute: 2, netns: env.pair.b }, enforcer);
    try {
      // 2000 distinct sources, each with SYNs answered by the real owner's RST: no completed handshake.
      for (let i = 0; i < 2000; i++) publishVerdict(r.nc, verdict(`10.${(i >> 8) & 255}.${i & 255}.7`, { half: 4 }));
      // And an aggregate verdict about the flood as a whole.
      publishVerdict(r.nc, verdict("", { aggregate: true, half: 0 }));
      // A source that completed handshakes is blocked whatever the cap.
      publishVerdict(r.nc, verdict("192.0.2.99", { handshakes: 3 }));
      await waitFor("all decided", async () => ((await metricValue(r.registry, "vigil_rules_verdicts_received_total")) === 2002 ? true : null), 20_000);
      await r.svc.idle();
      const blocked = r.svc.listRules({});
      expect(blocked.length).toBe(6);
      expect(blocked.some((x) => x.srcCidr === "192.0.2.99/32")).toBe(true);
      expect(await metricValue(r.registry, "vigil_rules_decisions_total", { outcome: "capped" })).toBe(1995);
      expect(await metricValue(r.registry, "vigil_rules_decisions_total", { outcome: "aggregate" })).toBe(1);
      const { elems } = await enforcer.actual();
      expect(elems.size).toBe(6);
      expect(r.svc.listVerdicts({ limit: 3000 }).filter((x) => x.outcome === "capped")).toHaveLength(1995);
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 60_000);
});

describe.skipIf(natsSkip)("rules service decisions (dry-run enforcer, real NATS)", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    if (nats) await disposeNatsServer(nats);
  });

  it("never blocks allowlisted addresses but records their verdicts", async () => {
    const allow = Allowlist.fromConfig(["203.0.113.0/24"], [{ cidr: "192.0.2.53/32", why: "DNS server" }]);
    const r = await startService(nats.url, { bucket: "allow_test", dryRun: true }, undefined, allow);
    try {
      for (const a of ["203.0.113.5", "192.0.2.53", "127.0.0.1", "::1", "fe80::9"]) publishVerdict(r.nc, verdict(a, { handshakes: 5 }));
      await waitFor("recorded", () => r.svc.listVerdicts({}).length === 5 || null);
      expect(r.svc.listRules({})).toEqual([]);
      expect(new Set(r.svc.listVerdicts({}).map((x) => x.outcome))).toEqual(new Set(["allowlisted"]));
      expect(await metricValue(r.registry, "vigil_rules_decisions_total", { outcome: "allowlisted" })).toBe(5);
    } finally {
      await r.stop();
    }
  });

  it("rejects and counts malformed verdict messages", async () => {
    const r = await startService(nats.url, { bucket: "malformed_test", dryRun: true });
    try {
      r.nc.publish(subjects.verdicts("pst"), new Uint8Array([0xff, 0xff, 0xff, 0x0f, 0x01]));
      r.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(Verdict.fromPartial({ detector: "pst", address: "192.0.2.1", score: 9 })));
      r.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(verdict("not-an-address")));
      r.nc.publish(subjects.verdicts("som"), codecs.verdict.encode(verdict("192.0.2.2")));
      r.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(verdict("192.0.2.3", { score: Number.NaN })));
      r.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(verdict("")));
      publishVerdict(r.nc, verdict("192.0.2.4", { handshakes: 1 }));
      await waitFor("the good one", () => r.svc.listVerdicts({}).length === 1 || null);
      expect(await metricValue(r.registry, "vigil_rules_verdicts_malformed_total")).toBe(6);
      expect(await metricValue(r.registry, "vigil_rules_verdicts_malformed_total", { reason: "undecodable" })).toBe(1);
      expect(await metricValue(r.registry, "vigil_rules_verdicts_malformed_total", { reason: "detector-mismatch" })).toBe(1);
      expect(r.svc.listRules({}).map((x) => x.srcCidr)).toEqual(["192.0.2.4/32"]);
      expect(r.svc.listRules({})[0].enforced).toBe(false); // dry run
    } finally {
      await r.stop();
    }
  });

  it("a false alarm removes the rule, allows the source for a while and feeds the verdict back", async () => {
    const r = await startService(nats.url, { bucket: "feedback_test", dryRun: true });
    const feedback = collect(r.nc, subjects.feedback, (d) => codecs.feedback.decode(d));
    try {
      const v = verdict("192.0.2.77", { handshakes: 1 });
      publishVerdict(r.nc, v);
      await waitFor("blocked", () => r.svc.listRules({}).length === 1 || null);
      const res = await r.svc.markFalseAlarm(v.id, 120, "it was the backup job", "tester");
      expect(res.removed).toHaveLength(1);
      const rules = r.svc.listRules({});
      expect(rules).toHaveLength(1);
      expect(rules[0]).toMatchObject({ id: res.allowRuleId, origin: Origin.ORIGIN_FEEDBACK, srcCidr: "192.0.2.77/32" });
      await waitFor("feedback", () => feedback.length === 1 || null);
      expect(feedback[0]).toMatchObject({ verdictId: v.id, detector: "pst", kind: FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, comment: "it was the backup job" });
      expect(Feedback.toJSON(feedback[0])).toMatchObject({ verdict: Verdict.toJSON(v) });
      expect(r.svc.listVerdicts({})[0].outcome).toBe("false-alarm");
      // While allowed, new verdicts on the source are recorded but not acted on.
      publishVerdict(r.nc, verdict("192.0.2.77", { handshakes: 4 }));
      await waitFor("second verdict", () => r.svc.listVerdicts({}).length === 2 || null);
      expect(r.svc.listVerdicts({})[0].outcome).toBe("allowlisted");
      await expect(r.svc.markFalseAlarm("nope", 0, "", "t")).rejects.toThrow(/no recorded verdict/);
    } finally {
      await r.stop();
    }
  });

  it("sees the fleet through the bus's presence: a goodbye leaves at once, a silent instance after the liveness cut-off; beats every second and says goodbye", async () => {
    const r = await startService(nats.url, { bucket: "presence_test", dryRun: true });
    const watcher = await connectBus({ servers: [nats.url], name: "presence-watcher" });
    const beats = collect(watcher, subjects.heartbeat("rules"), (d) => codecs.heartbeat.decode(d));
    let running = true;
    try {
      const hb = (instance: string, stopping = false) =>
        r.nc.publish(subjects.heartbeat("pst"), codecs.heartbeat.encode(Heartbeat.fromPartial({ service: "pst", instance, shards: [0], ts: Date.now() / 1000, stopping })));
      hb("pst-a");
      hb("pst-b");
      await waitFor("both seen", () => r.svc.status().detectors.length === 2 || null);
      // What an instance handled and lost is passed on from its heartbeat (vigil status, the console).
      r.nc.publish(subjects.heartbeat("pst"), codecs.heartbeat.encode(Heartbeat.fromPartial({ service: "pst", instance: "pst-a", shards: [0], ts: Date.now() / 1000, frames: 900, framesLost: 100, batchesLost: 2 })));
      await waitFor("pst-a's loss", () => r.svc.status().detectors.find((d) => d.instance === "pst-a" && d.framesLost === 100) ?? null);
      expect(r.svc.status().detectors.find((d) => d.instance === "pst-a")).toMatchObject({ frames: 900, framesLost: 100, batchesLost: 2 });
      const lastHeard = Date.now();
      hb("pst-a", true);
      await waitFor("pst-a gone on its goodbye", () => r.svc.status().detectors.map((d) => d.instance).join() === "pst-b" || null, 1000);
      await waitFor("silent pst-b gone", () => r.svc.status().detectors.length === 0 || null, LIVENESS_CUTOFF_MS + 3000, 100);
      const silentFor = Date.now() - lastHeard;
      // pst-b was last heard a poll before lastHeard; it goes at the first check past the cut-off.
      expect(silentFor).toBeGreaterThanOrEqual(LIVENESS_CUTOFF_MS - 1000);
      expect(beats.length).toBeGreaterThanOrEqual(Math.floor(silentFor / 1000) - 1);
      expect(beats.every((b) => !b.stopping && b.service === "rules")).toBe(true);
      await r.stop();
      running = false;
      await waitFor("goodbye", () => beats.find((b) => b.stopping) ?? null, 2000);
    } finally {
      if (running) await r.stop();
      await watcher.close();
    }
  });

  it("relays the end of stream once every shard of every detector group has reported", async () => {
    const r = await startService(nats.url, { bucket: "eos_test", dryRun: true });
    const eos = collect(r.nc, subjects.endOfStream("rules"), (d) => codecs.endOfStream.decode(d));
    try {
      const hb = (service: string, instance: string, shards: number[]) =>
        r.nc.publish(subjects.heartbeat(service), codecs.heartbeat.encode(Heartbeat.fromPartial({ service, instance, shards, ts: Date.now() / 1000 })));
      hb("pst", "pst-a", [0, 1]);
      hb("pst", "pst-b", [2, 3]);
      hb("som", "som-a", [0, 1, 2, 3]);
      await r.nc.flush();
      await waitFor("detectors seen", () => r.svc.status().detectors.length === 3 || null);
      const end = (stage: string, instance: string, shards: number[]) =>
        r.nc.publish(subjects.endOfStream(stage), codecs.endOfStream.encode(EndOfStream.fromPartial({ sourceId: "replay-1", stage, instance, shards })));
      publishVerdict(r.nc, verdict("192.0.2.5", { sourceId: "replay-1", handshakes: 1 }));
      end("pst", "pst-a", [0, 1]);
      end("som", "som-a", [0, 1, 2, 3]);
      await r.nc.flush();
      await new Promise((res) => setTimeout(res, 300));
      expect(eos).toHaveLength(0); // pst-b has not reported shards 2 and 3
      end("pst", "pst-b", [2, 3]);
      await waitFor("relayed", () => eos.length === 1 || null);
      expect(eos[0]).toMatchObject({ sourceId: "replay-1", stage: "rules", verdicts: 1 });
      expect(r.svc.listRules({})[0].decidedTs).toBeGreaterThan(0);
    } finally {
      await r.stop();
    }
  });

  it("keeps the configuration's static rules in step with the file", async () => {
    const first = await startService(nats.url, {
      bucket: "static_test",
      dryRun: true,
      staticRules: [
        { action: "block", cidr: "203.0.113.0/24", protocol: "tcp", ports: "22", direction: "in", priority: 5 },
        { action: "allow", cidr: "2001:db8:1::/48", protocol: 0, direction: "both", priority: 1 },
      ],
    });
    const ids = first.svc.listRules({ origin: Origin.ORIGIN_CONFIG }).map((x) => x.srcCidr).sort();
    expect(ids).toEqual(["2001:db8:1::/48", "203.0.113.0/24"]);
    expect(first.svc.listRules({ address: "203.0.113.9" })[0]).toMatchObject({ protocol: 6, dportMin: 22, dportMax: 22, expiresAt: 0, createdBy: "config" });
    await first.stop();
    const second = await startService(nats.url, { bucket: "static_test", dryRun: true, staticRules: [{ action: "block", cidr: "198.51.100.0/24", protocol: "udp", direction: "both", priority: 100 }] });
    expect(second.svc.listRules({ origin: Origin.ORIGIN_CONFIG }).map((x) => x.srcCidr)).toEqual(["198.51.100.0/24"]);
    await second.stop();
    await expect(startService(nats.url, { bucket: "static_test", dryRun: true, staticRules: [{ action: "block", cidr: "198.51.100.1/24", protocol: 0, direction: "both", priority: 100 }] })).rejects.toThrow(
      /^rules\.staticRules\[0\]\.cidr: .*host bits/,
    );
    await expect(startService(nats.url, { bucket: "static_test", dryRun: true, staticRules: [{ action: "block", cidr: "198.51.100.0/24", protocol: "smtp", direction: "both", priority: 100 }] })).rejects.toThrow(
      /^rules\.staticRules\[0\]\.protocol: "smtp"/,
    );
  });

  it("refuses to start without JetStream, saying what to do", async () => {
    const plain = await startNatsServer({ jetstream: false });
    try {
      await expect(startService(plain.url, { bucket: "nojs" })).rejects.toMatchObject({ code: "VIGIL_ERR_STORE", message: expect.stringMatching(/JetStream is not enabled.*-js/) });
    } finally {
      await disposeNatsServer(plain);
    }
  });

  it("keeps one rule per source, attaching repeat verdicts, and publishes RuleEvents", async () => {
    const r = await startService(nats.url, { bucket: "repeat_test", dryRun: true });
    const events = collect(r.nc, subjects.ruleEvents, (d) => RuleEvent.decode(d));
    try {
      publishVerdict(r.nc, verdict("::ffff:192.0.2.66", { handshakes: 1 }));
      await waitFor("mapped", () => r.svc.listVerdicts({}).length === 1 || null);
      expect(r.svc.listRules({}).map((x) => x.srcCidr)).toEqual(["192.0.2.66/32"]);
      const a = verdict("2001:db8::5", { handshakes: 1 });
      const b = verdict("2001:DB8:0::5", { handshakes: 1 });
      publishVerdict(r.nc, a);
      publishVerdict(r.nc, b);
      await waitFor("both", () => r.svc.listVerdicts({}).length === 3 || null);
      const rules = r.svc.listRules({}).filter((x) => x.srcCidr.includes(":"));
      expect(rules).toHaveLength(1);
      expect(rules[0].srcCidr).toBe(hostCidr("2001:db8::5"));
      expect(rules[0].verdictIds).toEqual([a.id, b.id]);
      await waitFor("event", () => events.length >= 1 || null);
      expect(events[0].kind).toBe(RuleEvent_Kind.KIND_ADDED);
    } finally {
      await r.stop();
    }
  });

  it("ends with the same rule whichever detector's verdict arrives first: both named, agreement TTL, earliest decision time", async () => {
    const r = await startService(nats.url, { bucket: "agree_test", dryRun: true });
    const events = collect(r.nc, subjects.ruleEvents, (d) => RuleEvent.decode(d));
    try {
      const pair = (address: string) => ({
        pst: verdict(address, { score: 4, firstTs: 1_800_000_000, lastTs: 1_800_000_001 }),
        som: verdict(address, { detector: "som", score: 6, half: 0, firstTs: 1_800_000_000, lastTs: 1_800_000_000.5 }),
      });
      const a = pair("192.0.2.80");
      const b = pair("192.0.2.81");
      publishVerdict(r.nc, a.pst);
      publishVerdict(r.nc, a.som);
      publishVerdict(r.nc, b.som);
      publishVerdict(r.nc, b.pst);
      await waitFor("four verdicts", () => r.svc.listVerdicts({}).length === 4 || null);
      const final = (addr: string) => {
        const x = r.svc.listRules({ address: addr })[0]!;
        return { detector: x.detector, ttl: x.expiresAt - x.createdAt, decidedTs: x.decidedTs, reason: x.reason, offences: x.offences, verdicts: [...x.verdictIds].sort() };
      };
      const ra = final("192.0.2.80");
      const rb = final("192.0.2.81");
      expect(ra.detector).toBe("pst+som");
      expect(ra.ttl).toBeCloseTo(600 * 4, 3);
      expect(ra.decidedTs).toBe(1_800_000_000.5);
      expect(ra.offences).toBe(1);
      expect(ra.verdicts).toEqual([a.pst.id, a.som.id].sort());
      expect({ ...rb, verdicts: undefined }).toEqual({ ...ra, verdicts: undefined });
      await waitFor("rule events", () => events.length >= 4 || null);
      const kinds = (addr: string) => events.filter((e) => e.rule?.srcCidr === `${addr}/32`).map((e) => e.kind);
      expect(kinds("192.0.2.80")).toEqual([RuleEvent_Kind.KIND_ADDED, RuleEvent_Kind.KIND_UPDATED]);
      expect(kinds("192.0.2.81")).toEqual([RuleEvent_Kind.KIND_ADDED, RuleEvent_Kind.KIND_UPDATED]);
      // A repeat verdict of a detector already named changes nothing but the rule's verdict list.
      publishVerdict(r.nc, verdict("192.0.2.80", { score: 8, lastTs: 1_800_000_002 }));
      await waitFor("fifth verdict", () => r.svc.listVerdicts({}).length === 5 || null);
      expect({ ...final("192.0.2.80"), verdicts: undefined }).toEqual({ ...ra, verdicts: undefined });
      expect(events).toHaveLength(4);
    } finally {
      await r.stop();
    }
  });
});
