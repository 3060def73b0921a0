import { ACTION_ACCEPT, ACTION_DROP, RULE_DIR_BOTH, RULE_GENERAL } from "@vigil/frames";
import type { KernelRule } from "@vigil/netlink";

/**
 * The module keys host rules by address: one per address, and an add for an address another id holds replaces
 * that rule (kmod/include/uapi/linux/vigil.h). The service, though, may want several rules for one address: a
 * detector's drop and an operator's allow, or a drop inbound and another outbound. This merges them into what the
 * kernel can hold, deciding between them as the nftables back end does:
 *
 * - an accept wins over a drop (nftables looks at its allow sets first);
 * - the winner is one host rule with the directions of every rule of its action, lasting as long as the longest of
 *   them, under the id of the one with the lowest priority (then the lowest id);
 * - a drop for directions the accept does not cover stays, as a general rule for the address alone (general rules
 *   match the remote side too), under its own id.
 *
 * Every other rule of the address is covered by one of those, and never sent on its own.
 */
export function hostKey(k: KernelRule): string {
  return `${k.family}/${k.addr!.toString("hex")}`;
}

function longest(rules: KernelRule[]): number {
  return rules.some((r) => !r.timeoutMs) ? 0 : Math.max(...rules.map((r) => r.timeoutMs!));
}

function first(rules: KernelRule[]): KernelRule {
  return [...rules].sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0) || a.id - b.id)[0];
}

/** Merges the host rules of one address (at least one; all RULE_HOST, one family and address) into what the kernel holds. */
export function mergeHostRules(rules: KernelRule[]): KernelRule[] {
  const accepts = rules.filter((r) => r.action === ACTION_ACCEPT);
  const drops = rules.filter((r) => r.action !== ACTION_ACCEPT);
  const [winners, losers] = accepts.length ? [accepts, drops] : [drops, []];
  const dirs = (rs: KernelRule[]) => rs.reduce((d, r) => d | (r.direction ?? RULE_DIR_BOTH), 0);
  const head = first(winners);
  const host: KernelRule = { ...head, direction: dirs(winners), timeoutMs: longest(winners) };
  const kernel = [host];
  const rest = dirs(losers) & ~host.direction!;
  if (rest) {
    const drop = first(losers);
    const bits = drop.addr!.length * 8;
    kernel.push({
      id: drop.id,
      kind: RULE_GENERAL,
      family: drop.family,
      src: drop.addr,
      srcPrefix: bits,
      proto: 0,
      direction: rest,
      action: ACTION_DROP,
      priority: drop.priority,
      timeoutMs: longest(losers),
    });
  }
  return kernel;
}
