import { describe, expect, it } from "vitest";
import { Action, Direction, Rule } from "@vigil/proto";
import { Allowlist } from "../src/allowlist.js";
import { rulesDefaults } from "../src/config.js";
import { InvalidArgumentError } from "../src/errors.js";
import { evidenceOf } from "../src/evidence.js";
import { canonicalRule, validateTtl } from "../src/model.js";
import { completedHandshakes, handshakeCompleted, Policy, TokenBucket } from "../src/policy.js";
import { verdict } from "./support/rules.js";

describe("handshake evidence", () => {
  it("counts a remote client that ACKs our SYN-ACK, not one that resets it", () => {
    expect(handshakeCompleted("C:S S:SA C:A C:PA S:A", true)).toBe(true);
    expect(handshakeCompleted("C:S S:SA C:PA", true)).toBe(true);
    expect(handshakeCompleted("C:S S:SA C:R", true)).toBe(false);
    expect(handshakeCompleted("C:S S:SA C:RA", true)).toBe(false);
    expect(handshakeCompleted("C:S C:S C:S", true)).toBe(false);
    expect(handshakeCompleted("C:A C:PA", true)).toBe(false);
    expect(handshakeCompleted("C:S S:SA C:S", true)).toBe(false);
  });
  it("counts a remote server that answered our SYN", () => {
    expect(handshakeCompleted("C:S S:SA", false)).toBe(true);
    expect(handshakeCompleted("C:S S:R", false)).toBe(false);
  });
  it("only counts connections of the judged address", () => {
    const v = verdict("192.0.2.7", { handshakes: 2 });
    expect(completedHandshakes(v)).toBe(2);
    v.pst!.connections[0].client = "192.0.2.8";
    expect(completedHandshakes(v)).toBe(1);
  });
});

describe("policy", () => {
  const cfg = rulesDefaults({ capBurst: 3, capPerMinute: 1, allowlist: ["198.51.100.0/24"] });
  const policy = () => new Policy(cfg, Allowlist.fromConfig(cfg.allowlist));

  it("never turns an aggregate verdict into a block", () => {
    const d = policy().decide(verdict("", { aggregate: true, handshakes: 5 }), { offences: 0, alreadyBlocked: false });
    expect(d.outcome).toBe("aggregate");
  });

  it("never blocks allowlisted addresses (config, loopback, link-local, allow rules)", () => {
    const p = policy();
    for (const a of ["198.51.100.9", "127.0.0.1", "::1", "fe80::1", "169.254.3.4"])
      expect(p.decide(verdict(a, { handshakes: 3 }), { offences: 0, alreadyBlocked: false }).outcome).toBe("allowlisted");
    expect(p.decide(verdict("192.0.2.1", { handshakes: 3 }), { offences: 0, alreadyBlocked: false, allowedBy: "allow rule 5" }).reason).toContain("allow rule 5");
  });

  it("applies per-detector minimum score and evidence", () => {
    const c = rulesDefaults({ detectors: { pst: { minScore: 6, weight: 1, minConnections: 0, minPackets: 0 }, som: { minScore: 0, weight: 1, minConnections: 0, minPackets: 100 } } });
    const p = new Policy(c, Allowlist.fromConfig([]));
    expect(p.decide(verdict("192.0.2.1", { score: 5 }), { offences: 0, alreadyBlocked: false }).outcome).toBe("below-threshold");
    expect(p.decide(verdict("192.0.2.1", { score: 7 }), { offences: 0, alreadyBlocked: false }).outcome).toBe("blocked");
    expect(p.decide(verdict("192.0.2.2", { detector: "som", packets: 50 }), { offences: 0, alreadyBlocked: false }).reason).toContain("packets 50 < 100");
    expect(p.decide(verdict("192.0.2.3", { score: 2.5, threshold: 3 }), { offences: 0, alreadyBlocked: false }).outcome).toBe("below-threshold");
  });

  it("needs the weights of several detectors when one is not enough, and agreement lengthens the TTL", () => {
    const c = rulesDefaults({ blockWeight: 1.5, detectors: { pst: { minScore: 0, weight: 1, minConnections: 0, minPackets: 0 }, som: { minScore: 0, weight: 1, minConnections: 0, minPackets: 0 } } });
    const p = new Policy(c, Allowlist.fromConfig([]));
    const first = p.decide(verdict("192.0.2.9", { handshakes: 1 }), { offences: 0, alreadyBlocked: false });
    expect(first.outcome).toBe("below-threshold");
    const both = p.decide(verdict("192.0.2.9", { detector: "som", handshakes: 1 }), { offences: 0, alreadyBlocked: false });
    expect(both.outcome).toBe("blocked");
    expect(both.agreement).toBe(true);
    expect(both.detectors).toEqual(["pst", "som"]);
    expect(both.ttlS).toBe(600 * 4);
    // Verdicts further apart (capture time) than the window do not agree.
    const q = new Policy(c, Allowlist.fromConfig([]));
    q.decide(verdict("192.0.2.10", { lastTs: 1000 }), { offences: 0, alreadyBlocked: false });
    expect(q.decide(verdict("192.0.2.10", { detector: "som", lastTs: 5000 }), { offences: 0, alreadyBlocked: false }).outcome).toBe("below-threshold");
  });

  it("explains agreement from each detector's earliest verdict, whatever the order they came in", () => {
    const p = policy();
    const pst1 = verdict("192.0.2.11", { score: 4, lastTs: 100 });
    const pst2 = verdict("192.0.2.11", { score: 9, lastTs: 101, handshakes: 1 });
    const som1 = verdict("192.0.2.11", { detector: "som", score: 7.25, lastTs: 100.5, half: 0 });
    const reason = p.agreementReason([pst1, som1].map(evidenceOf));
    expect(reason).toBe("pst+som agree (pst score 4, som score 7.250); unverified source, within the cap");
    expect(p.agreementReason([som1, pst2, pst1].map(evidenceOf))).toBe(reason);
    expect(p.agreementReason([pst2, som1].map(evidenceOf))).toBe("pst+som agree (pst score 9, som score 7.250); 1 completed handshake(s)");
  });

  it("doubles the TTL per repeat offence up to the maximum", () => {
    const p = policy();
    expect([0, 1, 2, 3, 7, 8, 50].map((n) => p.ttlFor(n, false))).toEqual([600, 1200, 2400, 4800, 76800, 86400, 86400]);
    expect(p.ttlFor(5, true)).toBe(76800);
    expect(p.ttlFor(6, true)).toBe(86400);
  });

  it("blocks verified sources without limit but caps unverified ones, on capture time", () => {
    const p = policy();
    const t0 = 1_800_000_000;
    const at = (ts: number) => ({ firstTs: ts - 1, lastTs: ts });
    const no = { offences: 0, alreadyBlocked: false };
    const unverified = Array.from({ length: 10 }, (_, i) => p.decide(verdict(`203.0.113.${i}`, at(t0)), no).outcome);
    expect(unverified.filter((o) => o === "blocked")).toHaveLength(3);
    expect(unverified.filter((o) => o === "capped")).toHaveLength(7);
    const verified = Array.from({ length: 10 }, (_, i) => p.decide(verdict(`203.0.113.${100 + i}`, { handshakes: 1, ...at(t0) }), no).outcome);
    expect(verified.every((o) => o === "blocked")).toBe(true);
    // A verdict captured earlier (out of order) does not refill the budget.
    expect(p.decide(verdict("203.0.113.40", at(t0 - 3600)), no).outcome).toBe("capped");
    // One more token a minute of capture time later, however fast the verdicts come.
    expect(p.decide(verdict("203.0.113.50", at(t0 + 60)), no).outcome).toBe("blocked");
    expect(p.decide(verdict("203.0.113.51", at(t0 + 60)), no).outcome).toBe("capped");
    // Another capture source (a replay) has its own budget.
    expect(p.decide(verdict("203.0.113.52", { sourceId: "replay-7", ...at(t0) }), no).outcome).toBe("blocked");
    expect(p.capTokens).toBe(2);
  });

  it("refills the token bucket at the configured rate", () => {
    const b = new TokenBucket(60, 2, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([true, true, false]);
    expect(b.take(1000)).toBe(true);
  });
});

describe("rule validation", () => {
  const bad = (r: Partial<Rule>, field: string) => {
    try {
      canonicalRule(Rule.fromPartial(r));
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe(field);
      return;
    }
    throw new Error(`accepted ${JSON.stringify(r)}`);
  };
  it("names the field of each problem", () => {
    bad({ srcCidr: "" }, "rule.src_cidr");
    bad({ srcCidr: "10.0.0.1/33" }, "rule.src_cidr");
    bad({ srcCidr: "10.0.0.1/24" }, "rule.src_cidr");
    bad({ srcCidr: "nonsense" }, "rule.src_cidr");
    bad({ srcCidr: "10.0.0.0/8", dstCidr: "::1" }, "rule.dst_cidr");
    bad({ srcCidr: "10.0.0.0/8", dportMin: 80, dportMax: 20 }, "rule.dport_max");
    bad({ srcCidr: "10.0.0.0/8", dportMin: 70000 }, "rule.dport_min");
    bad({ srcCidr: "10.0.0.0/8", protocol: 1, dportMin: 80 }, "rule.protocol");
    bad({ srcCidr: "10.0.0.0/8", protocol: 300 }, "rule.protocol");
    bad({ srcCidr: "10.0.0.0/8", direction: 9 as Direction }, "rule.direction");
    expect(() => validateTtl(-1)).toThrow(/ttl_s/);
    expect(() => validateTtl(1e12)).toThrow(/ttl_s/);
  });
  it("derives a stable id from the match and canonicalizes", () => {
    const a = canonicalRule(Rule.fromPartial({ srcCidr: "2001:DB8::1", action: Action.ACTION_DROP })).rule;
    const b = canonicalRule(Rule.fromPartial({ srcCidr: "2001:db8:0::1/128", direction: Direction.DIRECTION_BOTH })).rule;
    expect(a.id).toBe(b.id);
    expect(a.srcCidr).toBe("2001:db8::1/128");
    expect(a.id).toBeLessThan(2 ** 53);
    expect(canonicalRule(Rule.fromPartial({ srcCidr: "10.0.0.0/8", dportMin: 22 })).rule.dportMax).toBe(22);
  });
});
