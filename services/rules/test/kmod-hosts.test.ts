import { describe, expect, it } from "vitest";
import { ACTION_ACCEPT, ACTION_DROP, FAMILY_IPV4, RULE_DIR_BOTH, RULE_DIR_EGRESS, RULE_DIR_INGRESS, RULE_GENERAL, RULE_HOST } from "@vigil/frames";
import type { KernelRule } from "@vigil/netlink";
import { mergeHostRules } from "../src/enforcers/kmod-hosts.js";

const addr = Buffer.from([203, 0, 113, 7]);
const host = (id: number, p: Partial<KernelRule>): KernelRule => ({ id, kind: RULE_HOST, family: FAMILY_IPV4, addr, direction: RULE_DIR_BOTH, action: ACTION_DROP, priority: 0, timeoutMs: 0, ...p });

describe("one kernel host rule per address (security review F5)", () => {
  it("keeps a lone rule as it is", () => {
    const r = host(1, { timeoutMs: 5000 });
    expect(mergeHostRules([r])).toEqual([r]);
  });

  it("lets an operator's allow win over a detector's drop, as the nftables allow sets do", () => {
    const out = mergeHostRules([host(10, { timeoutMs: 600_000 }), host(20, { action: ACTION_ACCEPT, priority: 10, timeoutMs: 3_600_000 })]);
    expect(out).toEqual([host(20, { action: ACTION_ACCEPT, priority: 10, timeoutMs: 3_600_000 })]);
  });

  it("merges the directions of drops and keeps the longest lifetime (0 = never)", () => {
    const out = mergeHostRules([host(5, { direction: RULE_DIR_INGRESS, timeoutMs: 1000 }), host(3, { direction: RULE_DIR_EGRESS, timeoutMs: 9000 })]);
    expect(out).toEqual([host(3, { direction: RULE_DIR_BOTH, timeoutMs: 9000 })]);
    expect(mergeHostRules([host(5, { timeoutMs: 1000 }), host(6, { timeoutMs: 0 })])[0].timeoutMs).toBe(0);
  });

  it("names the merged rule after the lowest priority, then the lowest id", () => {
    expect(mergeHostRules([host(9, { priority: 1 }), host(4, { priority: 2 }), host(7, { priority: 1 })])[0].id).toBe(7);
  });

  it("keeps a drop the allow does not cover as a general rule for the address alone", () => {
    const out = mergeHostRules([host(1, {}), host(2, { action: ACTION_ACCEPT, direction: RULE_DIR_INGRESS })]);
    expect(out).toEqual([
      host(2, { action: ACTION_ACCEPT, direction: RULE_DIR_INGRESS }),
      { id: 1, kind: RULE_GENERAL, family: FAMILY_IPV4, src: addr, srcPrefix: 32, proto: 0, direction: RULE_DIR_EGRESS, action: ACTION_DROP, priority: 0, timeoutMs: 0 },
    ]);
  });
});
