import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, subjects } from "@vigil/bus";
import { Origin, Rule, Verdict } from "@vigil/proto";
import { disposeNatsServer, netnsUnavailableReason, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { Allowlist } from "../src/allowlist.js";
import { rulesDefaults } from "../src/config.js";
import { NftablesEnforcer } from "../src/enforcers/nftables.js";
import { Policy } from "../src/policy.js";
import { metricValue, natsAndVeth, publishVerdict, startService, verdict } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
const nftSkip = netnsUnavailableReason() ?? toolMissing("nft");

describe("agreement state under a verdict flood (F13)", () => {
  it("200,001 spoofed single-detector verdicts do not erase a verified attacker's flag before the second detector agrees", () => {
    const cfg = rulesDefaults({ blockWeight: 2, capBurst: 1_000_000, capPerMinute: 1_000_000 });
    const policy = new Policy(cfg, Allowlist.fromConfig([]));
    const attacker = "192.0.2.66";
    const ts = { firstTs: 1_800_000_000, lastTs: 1_800_000_001 };
    expect(policy.decide(verdict(attacker, { handshakes: 2, ...ts }), { offences: 0, alreadyBlocked: false }).outcome).toBe("below-threshold");
    for (let i = 0; i <= 200_000; i++) {
      const v = verdict(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, { half: 1, ...ts });
      policy.decide(v, { offences: 0, alreadyBlocked: false });
    }
    const d = policy.decide(verdict(attacker, { detector: "som", handshakes: 2, ...ts }), { offences: 0, alreadyBlocked: false });
    expect(d.outcome).toBe("blocked");
    expect(d.detectors).toEqual(["pst", "som"]);
  });
});

describe.skipIf(natsSkip)("bounded automatic blocking (F4, F20)", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    if (nats) await disposeNatsServer(nats);
  });

  it("refuses new automatic blocks at rules.maxAutomaticRules, counted, keeping manual rules and allowing new ones", async () => {
    const r = await startService(nats.url, { bucket: "cap_test", dryRun: true, maxAutomaticRules: 50 });
    try {
      await r.svc.addRule(Rule.fromPartial({ srcCidr: "203.0.113.0/24" }), 0, "test");
      // Verified sources: no anti-spoofing token is needed, so only the global limit stands in the way.
      for (let i = 0; i < 60; i++) publishVerdict(r.nc, verdict(`198.51.100.${i}`, { handshakes: 2 }));
      await waitFor("decided", () => r.svc.listVerdicts({}).length === 60 || null, 10_000);
      expect(r.svc.listRules({ origin: Origin.ORIGIN_DETECTOR })).toHaveLength(50);
      expect(await metricValue(r.registry, "vigil_rules_decisions_total", { outcome: "table-full" })).toBe(10);
      expect(await metricValue(r.registry, "vigil_rules_automatic_refused_total")).toBe(10);
      expect(r.svc.listVerdicts({ limit: 1 })[0]).toMatchObject({ outcome: "table-full", ruleId: 0 });
      expect(r.svc.listRules({ origin: Origin.ORIGIN_MANUAL }).map((x) => x.srcCidr)).toEqual(["203.0.113.0/24"]);
      const manual = await r.svc.addRule(Rule.fromPartial({ srcCidr: "198.51.100.200" }), 600, "test");
      expect(r.svc.listRules({}).some((x) => x.id === manual.id)).toBe(true);
    } finally {
      await r.stop();
    }
  });

  it("a rule keeps at most five verdicts and 16 KiB of them, the newest always", async () => {
    const r = await startService(nats.url, { bucket: "ruleverdicts_test", dryRun: true });
    try {
      const big = (address: string) => {
        const v = verdict(address, { handshakes: 1, half: 40 });
        for (const c of v.pst!.connections) c.symbols = `${c.symbols} ${"C:A S:A ".repeat(15)}`;
        return v;
      };
      for (let i = 0; i < 6; i++) publishVerdict(r.nc, big("192.0.2.44"));
      for (let i = 0; i < 7; i++) publishVerdict(r.nc, verdict("192.0.2.45", { handshakes: 1 }));
      await waitFor("decided", () => r.svc.listVerdicts({}).length === 13 || null);
      // The record holds the verdicts; the table only their evidence, for the same ones.
      const kept = async (a: string) => {
        const id = r.svc.listRules({ address: a })[0].id;
        const verdicts = (await r.svc.ruleRecord(id))!.verdicts;
        expect(r.svc.rules.get(id)!.evidence.map((e) => e.id)).toEqual(verdicts.map((v) => v.id));
        return verdicts;
      };
      const bytes = (await kept("192.0.2.44")).map((v) => Verdict.encode(v).finish().length);
      expect(bytes[0]).toBeGreaterThan(6000);
      expect(bytes.length).toBeLessThan(5);
      expect(bytes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(16 << 10);
      expect((await kept("192.0.2.44")).at(-1)!.id).toBe(r.svc.listVerdicts({ address: "192.0.2.44", limit: 1 })[0].verdict!.id);
      expect(await kept("192.0.2.45")).toHaveLength(5);
      await waitFor("stored", () => r.svc.storeBacklog === 0 || null, 5000);
      expect(await kept("192.0.2.45")).toHaveLength(5);
    } finally {
      await r.stop();
    }
  });

  it("rejects oversized verdicts and keeps the verdict log within its byte budget", async () => {
    const r = await startService(nats.url, { bucket: "size_test", dryRun: true, verdictLogBytes: 1 << 20 });
    try {
      // F20: a 900 kB summary, and evidence beyond any detector's sample.
      r.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(verdict("192.0.2.1", { summary: "x".repeat(900_000) })));
      r.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(verdict("192.0.2.2", { half: 65 })));
      r.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(verdict("192.0.2.3", { label: "y".repeat(300) })));
      // 2,000 valid verdicts of about 1.5 kB each: 3 MB, twice the log's budget of 1 MiB.
      for (let i = 0; i < 2000; i++) publishVerdict(r.nc, verdict(`10.1.${i >> 8}.${i & 255}`, { summary: "z".repeat(1000), score: 1 }));
      await waitFor("all in", async () => ((await metricValue(r.registry, "vigil_rules_verdicts_received_total")) === 2000 ? true : null), 20_000);
      expect(await metricValue(r.registry, "vigil_rules_verdicts_malformed_total", { reason: "too-large" })).toBe(3);
      const kept = r.svc.listVerdicts({ limit: 5000 }).length;
      expect(kept).toBeLessThan(1000);
      expect(kept).toBeGreaterThan(400);
    } finally {
      await r.stop();
    }
  });
});

describe.skipIf(natsSkip || nftSkip)("IPv6 offenders in one prefix (F4)", () => {
  const env = natsAndVeth();

  it("turns the fourth offender of a /64 into one prefix rule that replaces the host rules and covers the rest", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket: "v6agg_test", netns: env.pair.b, ipv6Aggregate: { prefixLength: 64, hosts: 4 } }, enforcer);
    try {
      for (const h of ["1", "2", "3"]) publishVerdict(r.nc, verdict(`2001:db8:1::${h}`, { handshakes: 1 }));
      await waitFor("three hosts", () => r.svc.listRules({}).filter((x) => x.enforced).length === 3 || null, 5000);
      publishVerdict(r.nc, verdict("2001:db8:1::4", { handshakes: 1 }));
      await waitFor("one prefix rule", () => (r.svc.listRules({}).length === 1 && r.svc.listRules({})[0].enforced) || null, 5000);
      const [prefix] = r.svc.listRules({});
      expect(prefix).toMatchObject({ srcCidr: "2001:db8:1::/64", origin: Origin.ORIGIN_DETECTOR });
      expect(prefix.reason).toMatch(/4 offenders in 2001:db8:1::\/64/);
      await r.svc.idle();
      const { elems, ruleIds } = await enforcer.actual();
      expect([...elems.keys()]).toEqual([]);
      expect([...ruleIds]).toEqual([prefix.id]);
      // A fifth address of the prefix is already blocked; another prefix is not.
      publishVerdict(r.nc, verdict("2001:db8:1::99", { handshakes: 1 }));
      publishVerdict(r.nc, verdict("2001:db8:2::1", { handshakes: 1 }));
      await waitFor("decided", () => r.svc.listVerdicts({}).length === 6 || null, 5000);
      expect(r.svc.listRules({}).map((x) => x.srcCidr).sort()).toEqual(["2001:db8:1::/64", "2001:db8:2::1/128"]);
      expect(r.svc.listVerdicts({ limit: 2 }).map((x) => x.ruleId)).toContain(prefix.id);
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 30_000);
});
