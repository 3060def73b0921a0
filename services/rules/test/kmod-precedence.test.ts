import { ACTION_ACCEPT, ACTION_DROP, RULE_DIR_BOTH, RULE_DIR_INGRESS, RULE_GENERAL, RULE_HOST } from "@vigil/frames";
import { Action, Direction, Rule } from "@vigil/proto";
import { describe, expect, it } from "vitest";
import { toKernelRule } from "../src/enforcers/kmod.js";
import { HOST_BLOCK_PRIORITY, kernelPriority } from "../src/enforcers/kmod-precedence.js";
import { canonicalRule } from "../src/model.js";

// Security review F29: what the module is sent decides in the nftables back end's order (the VM parity test,
// test/vm/parity-e2e.mjs, proves the verdicts); here, the priorities and kinds that carry it.
const rule = (p: Partial<Rule>) => canonicalRule(Rule.fromPartial({ action: Action.ACTION_DROP, ...p })).rule;

describe("kmod precedence", () => {
  it("sends general rules at their own priority, below every host block", () => {
    const k = toKernelRule(rule({ srcCidr: "10.0.0.0/8", priority: 7 }));
    expect([k.kind, k.priority]).toEqual([RULE_GENERAL, 7]);
    expect(toKernelRule(rule({ srcCidr: "10.0.0.0/8", priority: HOST_BLOCK_PRIORITY })).priority).toBe(HOST_BLOCK_PRIORITY - 1);
  });

  it("puts an address's allow before every rule and its block after every rule, whatever their priority", () => {
    const host = (action: number, priority: number) => kernelPriority({ id: 1, kind: RULE_HOST, family: 4, action, priority });
    expect(host(ACTION_ACCEPT, 10)).toBe(0);
    expect(host(ACTION_DROP, 0)).toBe(HOST_BLOCK_PRIORITY);
  });

  it("sends one-direction host rules to the ordered list, as nftables chains them", () => {
    const k = toKernelRule(rule({ srcCidr: "10.1.1.1/32", direction: Direction.DIRECTION_INGRESS, action: Action.ACTION_ACCEPT, priority: 10 }));
    expect(k).toMatchObject({ kind: RULE_GENERAL, srcPrefix: 32, direction: RULE_DIR_INGRESS, action: ACTION_ACCEPT, priority: 10 });
    expect(toKernelRule(rule({ srcCidr: "10.1.1.1/32" })).kind).toBe(RULE_HOST);
    expect(toKernelRule(rule({ srcCidr: "10.1.1.1/32" })).direction).toBe(RULE_DIR_BOTH);
  });
});
