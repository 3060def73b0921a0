import { describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { inNetns, netnsUnavailableReason, toolMissing, waitFor } from "@vigil/testing";
import { Action, Direction, Rule } from "@vigil/proto";
import { NftablesEnforcer } from "../src/enforcers/nftables.js";
import { metricValue, natsAndVeth, ping, publishVerdict, startService, verdict } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
const nftSkip = netnsUnavailableReason() ?? toolMissing("nft");

/** The F3 payload of security-experiments.md: JSON that closes the element list and adds commands of its own. */
const INJECTION = '2001:db8::1"]}}},{"add":{"table":{"family":"ip","name":"pwned"}}},{"add":{"element":{"family":"inet","table":"vigil","name":"drop6","elem":["2001:db8::2/128';

const record = (rule: Record<string, unknown>) => JSON.stringify({ rule: { direction: "DIRECTION_BOTH", ...rule }, history: [], verdicts: [] });

describe.skipIf(natsSkip || nftSkip)("records in the rule store are untrusted (F3, F10)", () => {
  const env = natsAndVeth();

  it("quarantines an nftables injection, bad CIDRs, a zombie id and a bad offence, and enforces the rest", async () => {
    const cfg = { bucket: "untrusted_test", baseTtlS: 600, netns: env.pair.b };
    let r = await startService(env.nats.url, cfg, new NftablesEnforcer({ netns: env.pair.b }));
    publishVerdict(r.nc, verdict(env.pair.addrA4, { handshakes: 1 }));
    await waitFor("blocked", () => r.svc.listRules({})[0]?.enforced, 5000);
    await waitFor("stored", () => r.svc.storeBacklog === 0 || null, 5000);
    const good = r.svc.listRules({})[0].id;
    const kv = await new Kvm(r.nc).open("untrusted_test");
    // Written by anyone who can reach NATS: a DROP whose srcCidr carries nft commands (F3) ...
    await kv.put("rule.777", record({ id: 777, action: "ACTION_DROP", srcCidr: INJECTION }));
    // ... an ACCEPT with a bad CIDR (crash loop at start), a DROP with one (reconcile failing forever, and a DNS lookup) (F10) ...
    await kv.put("rule.2", record({ id: 2, action: "ACTION_ACCEPT", srcCidr: "bogus" }));
    await kv.put("rule.3", record({ id: 3, action: "ACTION_DROP", srcCidr: "bogus/32" }));
    // ... a valid rule under another rule's key (a zombie that is never deleted), and an offence that makes a NaN TTL.
    await kv.put("rule.5", record({ action: "ACTION_DROP", srcCidr: "192.0.2.55/32", origin: "ORIGIN_MANUAL" }));
    await kv.put("offence.192.0.2.9", JSON.stringify({ count: "x", lastAt: 1 }));
    await kv.put("rule.9", "{not json");
    await r.stop();
    await new NftablesEnforcer({ netns: env.pair.b }).destroy(); // the host rebooted: all from the store

    const enforcer = new NftablesEnforcer({ netns: env.pair.b });
    r = await startService(env.nats.url, cfg, enforcer);
    try {
      expect(r.svc.listRules({}).map((x) => x.id)).toEqual([good]);
      expect(await metricValue(r.registry, "vigil_rules_store_quarantined_total", { kind: "rule" })).toBe(5);
      expect(await metricValue(r.registry, "vigil_rules_store_quarantined_total", { kind: "offence" })).toBe(1);
      expect(await metricValue(r.registry, "vigil_rules_reconciles_total", { result: "ok" })).toBe(1);
      expect(r.svc.status().enforcerDetail).not.toMatch(/error/);
      const tables = inNetns(env.pair.b, "nft", ["list", "tables"]);
      expect(tables).not.toMatch(/pwned/);
      const { elems } = await enforcer.actual();
      expect([...elems.keys()]).toEqual([`drop4|${env.pair.addrA4}`]);
      expect(ping(env.pair.a, env.pair.addrB4)).toBe(false);
      // Enforcement goes on: a new block is enforced, and a repeat offender's count is a number.
      publishVerdict(r.nc, verdict("192.0.2.9", { handshakes: 1 }));
      await waitFor("new block", () => r.svc.listRules({ address: "192.0.2.9" })[0]?.enforced, 5000);
      expect(r.svc.listRules({ address: "192.0.2.9" })[0].offences).toBe(1);
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 60_000);

  it("the nftables enforcer never turns a rule's text into commands: an injected srcCidr is refused, the other rules go in", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    try {
      await enforcer.start();
      const evil = Rule.fromPartial({ id: 777, action: Action.ACTION_DROP, srcCidr: `${INJECTION}/128`, direction: Direction.DIRECTION_BOTH });
      const fine = Rule.fromPartial({ id: 778, action: Action.ACTION_DROP, srcCidr: `${env.pair.addrA4}/32`, direction: Direction.DIRECTION_BOTH });
      await expect(enforcer.apply([evil], [])).rejects.toThrow();
      const res = await enforcer.reconcile([evil, fine]);
      expect(res.added).toBe(1);
      expect(inNetns(env.pair.b, "nft", ["list", "tables"])).not.toMatch(/pwned/);
      expect([...(await enforcer.actual()).elems.keys()]).toEqual([`drop4|${env.pair.addrA4}`]);
    } finally {
      await enforcer.destroy();
    }
  }, 30_000);
});
