import { describe, expect, it } from "vitest";
import { RuleEvent_Kind } from "@vigil/proto";
import { netnsUnavailableReason, toolMissing, waitFor } from "@vigil/testing";
import { NftablesEnforcer } from "../src/enforcers/nftables.js";
import { metricValue, natsAndVeth, ping, publishVerdict, startService, verdict } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
const nftSkip = netnsUnavailableReason() ?? toolMissing("nft");

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describe.skipIf(natsSkip || nftSkip)("blocks do not renew themselves from the traffic they drop (F9)", () => {
  const env = natsAndVeth();

  it("a blocked host whose retries keep producing verdicts is let go after its first TTL; coming back afterwards blocks it again, escalated", async () => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket: "renewal_test", baseTtlS: 2, netns: env.pair.b }, enforcer);
    const host = env.pair.addrA4;
    const kinds: RuleEvent_Kind[] = [];
    r.svc.on("rule", (e) => {
      if (e.rule?.srcCidr === `${host}/32`) kinds.push(e.kind);
    });
    try {
      // Live capture: capture time is the wall clock.
      const t0 = Date.now() / 1000;
      publishVerdict(r.nc, verdict(host, { handshakes: 2, firstTs: t0 - 1, lastTs: t0 }));
      await waitFor("blocked", () => r.svc.listRules({ address: host })[0]?.enforced, 5000);
      const first = r.svc.listRules({ address: host })[0];
      expect(ping(env.pair.a, env.pair.addrB4)).toBe(false);
      // Its clients retry: SYNs the firewall drops are still captured, and the detectors keep judging
      // them, during the block and, from windows that began during it, after it ended.
      const retriesUntil = first.expiresAt + 2;
      let retries = 0;
      while (Date.now() / 1000 < retriesUntil) {
        const now = Date.now() / 1000;
        const began = Math.min(now - 0.1, first.decidedTs + 1.5);
        publishVerdict(r.nc, verdict(host, { half: 5, handshakes: 1, firstTs: Math.max(began, first.decidedTs), lastTs: now, label: "syn-flood" }));
        retries++;
        await sleep(250);
      }
      await r.svc.idle();
      expect(kinds).toEqual([RuleEvent_Kind.KIND_ADDED, RuleEvent_Kind.KIND_EXPIRED]);
      expect(r.svc.listRules({ address: host })).toEqual([]);
      expect(await metricValue(r.registry, "vigil_rules_decisions_total", { outcome: "seen-while-blocked" })).toBe(retries);
      expect(ping(env.pair.a, env.pair.addrB4)).toBe(true);

      // The attacker returns after the block: new evidence, a new block, the repeat offence doubling its TTL.
      const t1 = Date.now() / 1000;
      publishVerdict(r.nc, verdict(host, { handshakes: 2, firstTs: t1, lastTs: t1 + 0.5 }));
      await waitFor("blocked again", () => r.svc.listRules({ address: host })[0]?.enforced, 5000);
      const again = r.svc.listRules({ address: host })[0];
      expect(again.offences).toBe(2);
      expect(again.expiresAt - again.createdAt).toBeCloseTo(4, 1);
      expect(ping(env.pair.a, env.pair.addrB4)).toBe(false);
    } finally {
      await r.stop();
      await enforcer.destroy();
    }
  }, 40_000);

  it("a second detector's verdict on traffic from after the block does not extend it; one on the traffic before it still agrees", async () => {
    const r = await startService(env.nats.url, { bucket: "renewal_agree_test", dryRun: true });
    try {
      const t = 1_800_000_100;
      const a = "192.0.2.70";
      const b = "192.0.2.71";
      publishVerdict(r.nc, verdict(a, { handshakes: 1, firstTs: t - 5, lastTs: t }));
      publishVerdict(r.nc, verdict(b, { handshakes: 1, firstTs: t - 5, lastTs: t }));
      await waitFor("blocked", () => r.svc.listRules({}).length === 2 || null);
      publishVerdict(r.nc, verdict(a, { detector: "som", half: 0, firstTs: t + 1, lastTs: t + 11 }));
      publishVerdict(r.nc, verdict(b, { detector: "som", half: 0, firstTs: t - 4, lastTs: t + 6 }));
      await waitFor("decided", () => r.svc.listVerdicts({}).length === 4 || null);
      expect(r.svc.listVerdicts({ address: a })[0].outcome).toBe("seen-while-blocked");
      const ra = r.svc.listRules({ address: a })[0];
      expect(ra.detector).toBe("pst");
      expect(ra.expiresAt - ra.createdAt).toBeCloseTo(600, 3);
      const rb = r.svc.listRules({ address: b })[0];
      expect(rb.detector).toBe("pst+som");
      expect(rb.expiresAt - rb.createdAt).toBeCloseTo(2400, 3);
    } finally {
      await r.stop();
    }
  });
  it("a renewal whose window began before the block and ran into it does not block again once the block ended (a pst renewal with a short idle timeout)", async () => {
    const r = await startService(env.nats.url, { bucket: "renewal_window_test", dryRun: true, baseTtlS: 2 });
    const a = "192.0.2.72";
    try {
      const t0 = Date.now() / 1000;
      publishVerdict(r.nc, verdict(a, { handshakes: 2, firstTs: t0 - 1, lastTs: t0 }));
      await waitFor("blocked", () => r.svc.listRules({ address: a })[0] ?? null, 5000);
      const first = r.svc.listRules({ address: a })[0];
      // pst renews from the same window: it began before the block, its last frames are retries the block dropped.
      publishVerdict(r.nc, verdict(a, { half: 5, firstTs: t0 - 1, lastTs: t0 + 1, label: "syn-flood" }));
      await waitFor("expired", () => (r.svc.listRules({ address: a }).length === 0 ? true : null), 10_000);
      // The same window, renewed once more after the block ended: nothing in it is from after the block.
      publishVerdict(r.nc, verdict(a, { half: 5, firstTs: t0 - 1, lastTs: Math.min(first.expiresAt - 0.1, Date.now() / 1000), label: "syn-flood" }));
      await waitFor("decided", () => (r.svc.listVerdicts({ address: a }).length === 3 ? true : null), 5000);
      expect(r.svc.listVerdicts({ address: a })[0].outcome).toBe("seen-while-blocked");
      expect(r.svc.listRules({ address: a })).toEqual([]);
      // Evidence from after the block ended is new: blocked again, as a repeat offence.
      const t1 = Date.now() / 1000;
      publishVerdict(r.nc, verdict(a, { handshakes: 2, firstTs: t1, lastTs: t1 + 0.5 }));
      await waitFor("blocked again", () => r.svc.listRules({ address: a })[0] ?? null, 5000);
      expect(r.svc.listRules({ address: a })[0].offences).toBe(2);
    } finally {
      await r.stop();
    }
  }, 30_000);
});
