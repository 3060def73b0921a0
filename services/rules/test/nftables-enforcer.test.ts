import { libnftablesUnavailableReason } from "@vigil/nftables";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVethPair, inNetns, netnsUnavailableReason, toolMissing, type VethPair } from "@vigil/testing";
import { Action, Direction, Origin, Rule } from "@vigil/proto";
import { NftablesEnforcer } from "../src/enforcers/nftables.js";
import { canonicalRule } from "../src/model.js";

const skip = netnsUnavailableReason() ?? toolMissing("nft");
if (skip) console.warn(`nftables enforcer tests skipped: ${skip}`);

function rule(p: Partial<Rule>, ttlS = 0): Rule {
  const now = Date.now() / 1000;
  return canonicalRule(Rule.fromPartial({ action: Action.ACTION_DROP, origin: Origin.ORIGIN_MANUAL, createdAt: now, expiresAt: ttlS ? now + ttlS : 0, ...p })).rule;
}

/** Reachable when any of three echo requests is answered: the first may be lost while IPv6 neighbour discovery recovers from a block. */
function ping(ns: string, addr: string): boolean {
  try {
    inNetns(ns, "ping", ["-c", "3", "-i", "0.2", "-W", "1", addr]);
    return true;
  } catch {
    return false;
  }
}

const modes = (["library", "process"] as const).filter((m) => m === "process" || libnftablesUnavailableReason() === null);

describe.skipIf(skip).each(modes)(`nftables enforcer (%s) in a network namespace${skip ? ` (skipped: ${skip})` : ""}`, (mode) => {
  let pair: VethPair;
  let enforcer: NftablesEnforcer;
  beforeAll(async () => {
    pair = createVethPair();
    enforcer = new NftablesEnforcer({ netns: pair.b, table: "vigil", mode });
    await enforcer.start();
    expect(enforcer.mode).toBe(mode);
  });
  afterAll(async () => {
    await enforcer?.close();
    pair?.destroy();
  });

  it("drops a blocked host in both directions and lets it pass once removed", async () => {
    expect(ping(pair.a, pair.addrB4)).toBe(true);
    const r = rule({ srcCidr: pair.addrA4 }, 600);
    await enforcer.apply([r], []);
    expect(ping(pair.a, pair.addrB4)).toBe(false);
    expect(ping(pair.b, pair.addrA4)).toBe(false);
    const { elems } = await enforcer.actual();
    const e = elems.get(`drop4|${pair.addrA4}`);
    expect(e?.set).toBe("drop4");
    expect(e!.expiresS).toBeGreaterThan(590);
    await enforcer.apply([], [r]);
    expect(ping(pair.a, pair.addrB4)).toBe(true);
  });

  it("enforces an IPv6 host and a CIDR/port rule, ordered allow before drop", async () => {
    const v6 = rule({ srcCidr: pair.addrA6 }, 60);
    await enforcer.apply([v6], []);
    expect(ping(pair.a, pair.addrB6)).toBe(false);
    await enforcer.apply([], [v6]);
    expect(ping(pair.a, pair.addrB6)).toBe(true);
    const cidr = rule({ srcCidr: pair.addrA4.replace(/\.\d+$/, ".0/24"), protocol: 1, direction: Direction.DIRECTION_INGRESS });
    await enforcer.apply([cidr], []);
    expect(ping(pair.a, pair.addrB4)).toBe(false);
    const allow = rule({ srcCidr: pair.addrA4, action: Action.ACTION_ACCEPT });
    await enforcer.apply([allow], []);
    expect(ping(pair.a, pair.addrB4)).toBe(true);
    await enforcer.apply([], [allow, cidr]);
  });

  it("reconciles: stale removed, missing added, an expired rule not re-added", async () => {
    const stale = rule({ srcCidr: "10.99.0.1" }, 600);
    await enforcer.apply([stale], []);
    const keep = rule({ srcCidr: pair.addrA4 }, 600);
    const expired = { ...rule({ srcCidr: "10.99.0.2" }), expiresAt: Date.now() / 1000 - 1 };
    const general = rule({ srcCidr: "10.98.0.0/16", protocol: 6, dportMin: 22, dportMax: 22 }, 600);
    const res = await enforcer.reconcile([keep, expired, general]);
    expect(res).toMatchObject({ added: 2, removed: 1 });
    const { elems, ruleIds } = await enforcer.actual();
    expect([...elems.keys()].sort()).toEqual([`drop4|${pair.addrA4}`]);
    expect([...ruleIds]).toEqual([general.id]);
    expect(ping(pair.a, pair.addrB4)).toBe(false);
    expect(await enforcer.reconcile([keep, general])).toMatchObject({ added: 0, removed: 0 });
  });

  it("removes a host at its rule's expiry, though the element's whole-second timeout would keep it up to a second longer", async () => {
    await enforcer.reconcile([]);
    // 1.1 s to live: the kernel's timeout is 2 s.
    const r = rule({ srcCidr: pair.addrA4 }, 1.1);
    await enforcer.apply([r], []);
    await new Promise((res) => setTimeout(res, r.expiresAt * 1000 - Date.now() + 50));
    expect((await enforcer.actual()).elems.has(`drop4|${pair.addrA4}`), "the kernel still holds the element after the rule's expiry").toBe(true);
    await enforcer.apply([], [r]);
    expect((await enforcer.actual()).elems.has(`drop4|${pair.addrA4}`)).toBe(false);
    expect(ping(pair.a, pair.addrB4)).toBe(true);
  });

  it("removes and replaces hosts the kernel has already timed out without failing the rest of the change", async () => {
    await enforcer.reconcile([]);
    const gone = rule({ srcCidr: "10.99.0.3" }, 1);
    const renewedLater = rule({ srcCidr: pair.addrA4 }, 1);
    await enforcer.apply([gone, renewedLater], []);
    await new Promise((res) => setTimeout(res, 1500));
    expect((await enforcer.actual()).elems.size, "both elements timed out in the kernel").toBe(0);
    const other = rule({ srcCidr: "10.99.0.4" }, 600);
    const renewed = { ...renewedLater, createdAt: Date.now() / 1000, expiresAt: Date.now() / 1000 + 600 };
    await enforcer.apply([other, renewed], [gone]);
    const { elems } = await enforcer.actual();
    expect([...elems.keys()].sort()).toEqual([`drop4|${pair.addrA4}`, "drop4|10.99.0.4"].sort());
    expect(elems.get(`drop4|${pair.addrA4}`)!.expiresS).toBeGreaterThan(590);
    expect(ping(pair.a, pair.addrB4)).toBe(false);
    await enforcer.apply([], [other, renewed]);
    expect(ping(pair.a, pair.addrB4)).toBe(true);
  });

  it("lets the kernel expire a short rule", async () => {
    await enforcer.reconcile([]);
    await enforcer.apply([rule({ srcCidr: pair.addrA4 }, 1)], []);
    expect(ping(pair.a, pair.addrB4)).toBe(false);
    await new Promise((r) => setTimeout(r, 1600));
    expect(ping(pair.a, pair.addrB4)).toBe(true);
  });

  it("loads more new hosts than one transaction holds, each with the time its rule has left, so the next reconciliation keeps them all", async () => {
    const n = 120_001; // three transactions of new elements
    const now = Date.now() / 1000;
    const hosts = Array.from({ length: n }, (_, i) =>
      canonicalRule(Rule.fromPartial({ action: Action.ACTION_DROP, origin: Origin.ORIGIN_MANUAL, srcCidr: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, createdAt: now, expiresAt: now + 3600 })).rule,
    );
    expect(await enforcer.reconcile(hosts)).toMatchObject({ added: n });
    const { elems } = await enforcer.actual();
    expect(elems.size).toBe(n);
    const nowS = Date.now() / 1000;
    for (const e of elems.values()) expect(Math.abs(e.expiresS - (now + 3600 - nowS))).toBeLessThan(5);
    expect(await enforcer.reconcile(hosts)).toMatchObject({ added: 0, removed: 0, kept: n, replaced: 0 });
    await enforcer.reconcile([]);
  }, 120_000);
});
