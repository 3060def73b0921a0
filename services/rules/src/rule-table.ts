import { cidrContains, parseAddress, parseCidr, type Cidr } from "@vigil/frames";
import { Action, Origin, type ListRulesRequest, type Rule } from "@vigil/proto";
import { InvalidArgumentError } from "./errors.js";
import { hostAddress, hostRuleId, prefixCidrOf, isActive, isAddressOnly, normalizeMatch, originName, type HostAddress } from "./model.js";
import type { RuleEntry } from "./evidence.js";
import { TextPool } from "./text-pool.js";

/**
 * The rules in memory (each without its history and verdicts: see evidence.ts), by id, with an index of the address-only allow rules
 * that every decision consults. Holds no timers and writes nothing else.
 */
export class RuleTable {
  private readonly rules = new Map<number, RuleEntry>();
  private readonly allowIndex = new Map<number, { cidr: Cidr; rule: Rule }>();
  /** Detector IPv6 host rules by the prefix that holds them (for aggregation). */
  private readonly v6Hosts = new Map<string, Set<number>>();
  private automaticRules = 0;
  private readonly texts = new TextPool();

  /** `v6Prefix`: the prefix length IPv6 detector host rules are grouped by. */
  constructor(private readonly v6Prefix = 64) {}

  /** Detector (automatic) rules in the table. */
  get automatic(): number {
    return this.automaticRules;
  }

  /** Ids of the detector host rules inside a prefix of the configured length. */
  hostsIn(prefixCidr: string): number[] {
    return [...(this.v6Hosts.get(prefixCidr) ?? [])];
  }

  private index(r: Rule, add: boolean): void {
    if (r.origin !== Origin.ORIGIN_DETECTOR) return;
    this.automaticRules += add ? 1 : -1;
    if (!r.srcCidr.endsWith("/128")) return;
    const key = prefixCidrOf(hostAddress(r.srcCidr.slice(0, -4)), this.v6Prefix);
    let ids = this.v6Hosts.get(key);
    if (add) {
      if (!ids) this.v6Hosts.set(key, (ids = new Set()));
      ids.add(r.id);
    } else if (ids) {
      ids.delete(r.id);
      if (ids.size === 0) this.v6Hosts.delete(key);
    }
  }

  get size(): number {
    return this.rules.size;
  }

  get(id: number): RuleEntry | undefined {
    return this.rules.get(id);
  }

  values(): IterableIterator<RuleEntry> {
    return this.rules.values();
  }

  set(s: RuleEntry): void {
    this.compact(s);
    const prev = this.rules.get(s.rule.id);
    if (prev) this.index(prev.rule, false);
    this.index(s.rule, true);
    this.rules.set(s.rule.id, s);
    const r = s.rule;
    const m = r.action === Action.ACTION_ACCEPT ? normalizeMatch(r) : null;
    if (m && isAddressOnly(m)) this.allowIndex.set(r.id, { cidr: m.src, rule: r });
    else this.allowIndex.delete(r.id);
  }

  /** Texts the entry shares with others held once: the pooled ones, and each verdict id once for the rule and its evidence. */
  private compact(s: RuleEntry): void {
    const r = s.rule;
    r.reason = this.texts.get(r.reason);
    r.detector = this.texts.get(r.detector);
    r.createdBy = this.texts.get(r.createdBy);
    for (const e of s.evidence) {
      e.detector = this.texts.get(e.detector);
      e.id = r.verdictIds.find((id) => id === e.id) ?? e.id;
    }
  }

  delete(id: number): void {
    const prev = this.rules.get(id);
    if (prev) this.index(prev.rule, false);
    this.rules.delete(id);
    this.allowIndex.delete(id);
  }

  /** The detector block rule on a host, if there is one (active or not). */
  hostRule(address: HostAddress): RuleEntry | undefined {
    return this.rules.get(hostRuleId(address));
  }

  /** An active allow rule covering the address, described, or undefined. */
  allowRuleFor(address: HostAddress, now: number): string | undefined {
    if (this.allowIndex.size === 0) return undefined;
    const b = address.bytes;
    for (const { cidr, rule: r } of this.allowIndex.values()) {
      if (!isActive(r, now)) continue;
      if (cidrContains(cidr, b, 0, b.length)) return r.origin === Origin.ORIGIN_FEEDBACK ? `false-alarm allow rule ${r.id}` : `allow rule ${r.id}`;
    }
    return undefined;
  }

  /** Active rules, filtered as the API asks, newest first. */
  list(req: Partial<ListRulesRequest>, now: number): Rule[] {
    let addr: Uint8Array | null = null;
    if (req.address) {
      try {
        addr = parseAddress(req.address);
      } catch (err) {
        throw new InvalidArgumentError("address", (err as Error).message);
      }
    }
    const out: Rule[] = [];
    for (const s of this.rules.values()) {
      const r = s.rule;
      if (!isActive(r, now)) continue;
      if (req.origin && r.origin !== req.origin) continue;
      if (req.action && r.action !== req.action) continue;
      if (addr && !cidrContains(parseCidr(r.srcCidr), addr, 0, addr.length)) continue;
      out.push(r);
    }
    out.sort((a, b) => b.createdAt - a.createdAt || a.id - b.id);
    return req.limit ? out.slice(0, req.limit) : out;
  }

  active(now: number): Rule[] {
    const out: Rule[] = [];
    for (const s of this.rules.values()) if (isActive(s.rule, now)) out.push(s.rule);
    return out;
  }

  expired(now: number): Rule[] {
    const out: Rule[] = [];
    for (const s of this.rules.values()) if (!isActive(s.rule, now)) out.push(s.rule);
    return out;
  }

  /** Active rules counted by origin name and action ("accept" | "drop"). */
  counts(now: number): Array<{ origin: string; action: "accept" | "drop"; n: number }> {
    const counts = new Map<string, number>();
    for (const s of this.rules.values()) {
      if (!isActive(s.rule, now)) continue;
      const key = `${originName(s.rule.origin)}|${s.rule.action === Action.ACTION_ACCEPT ? "accept" : "drop"}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([key, n]) => {
      const [origin, action] = key.split("|") as [string, "accept" | "drop"];
      return { origin, action, n };
    });
  }
}
