import { ACTION_ACCEPT, RULE_HOST } from "@vigil/frames";
import type { KernelRule } from "@vigil/netlink";

/**
 * Both back ends decide with one precedence (security review F29), the one the nftables layout gives:
 *
 * 1. exact-address allows for both directions (nftables: the allow sets, looked at first);
 * 2. every other rule, CIDR, protocol, port or one-direction, in (priority, id) order (the rules chains);
 * 3. exact-address blocks for both directions (the drop sets, looked at last).
 *
 * So an operator's or a false-alarm allow of an address beats any block, and a port or CIDR allow beats a detector's
 * block of one address. The module decides by priority alone, a host rule before general rules of equal priority
 * (kmod/README.md), so this back end carries the order in the priority it sends: allows at 0, blocks at the top, and
 * general rules at their own priority, below the top.
 */
export const HOST_BLOCK_PRIORITY = 0xffff_ffff;

export function kernelPriority(k: KernelRule): number {
  if (k.kind === RULE_HOST) return k.action === ACTION_ACCEPT ? 0 : HOST_BLOCK_PRIORITY;
  return Math.min(k.priority ?? 0, HOST_BLOCK_PRIORITY - 1);
}

export function withKernelPriority(k: KernelRule): KernelRule {
  return { ...k, priority: kernelPriority(k) };
}
