import { Action, Direction, Origin, Rule } from "@vigil/proto";
import type { StaticRule } from "./config.js";
import { InvalidArgumentError } from "./errors.js";
import { canonicalRule, protocolNumber } from "./model.js";
import type { RuleEntry } from "./evidence.js";
import type { Additions } from "./rule-record.js";

const DIRECTIONS = { in: Direction.DIRECTION_INGRESS, out: Direction.DIRECTION_EGRESS, both: Direction.DIRECTION_BOTH } as const;

/**
 * `rules.staticRules` as canonical CONFIG rules by id. Errors name the entry
 * and its configuration key (cidr, dst, ports), not the API field.
 */
export function staticRulesFrom(entries: StaticRule[], now: number): Map<number, Rule> {
  const wanted = new Map<number, Rule>();
  entries.forEach((sr, i) => {
    const key = `rules.staticRules[${i}]`;
    const protocol = protocolNumber(sr.protocol);
    if (protocol === null) throw new InvalidArgumentError(`${key}.protocol`, `"${sr.protocol}" is not a protocol name or number 0..255`);
    const [pmin, pmax] = sr.ports ? sr.ports.split("-").map(Number) : [0, 0];
    let canon: Rule;
    try {
      canon = canonicalRule(
        Rule.fromPartial({
          action: sr.action === "allow" ? Action.ACTION_ACCEPT : Action.ACTION_DROP,
          srcCidr: sr.cidr,
          dstCidr: sr.dst ?? "",
          protocol,
          dportMin: pmin,
          dportMax: pmax ?? pmin,
          direction: DIRECTIONS[sr.direction],
          priority: sr.priority,
        }),
        key,
      ).rule;
    } catch (err) {
      if (err instanceof InvalidArgumentError) {
        const field = err.field.replace(/\.src_cidr$/, ".cidr").replace(/\.dst_cidr$/, ".dst").replace(/\.dport_(min|max)$/, ".ports");
        throw new InvalidArgumentError(field, err.message.slice(err.field.length + 2));
      }
      throw err;
    }
    wanted.set(canon.id, Rule.fromPartial({ ...canon, origin: Origin.ORIGIN_CONFIG, reason: sr.reason ?? "configuration", createdBy: "config", createdAt: now, expiresAt: 0 }));
  });
  return wanted;
}

/**
 * What makes the CONFIG rules match `rules.staticRules`: the dropped ones to
 * remove, the new and changed ones to put (`fresh` when new), each with its history entry.
 */
export function staticRuleChanges(entries: StaticRule[], current: RuleEntry[], now: number): { removed: Rule[]; put: Array<{ stored: RuleEntry; added: Additions; fresh: boolean }> } {
  const wanted = staticRulesFrom(entries, now);
  const byId = new Map(current.map((s) => [s.rule.id, s]));
  const removed = current.filter((s) => s.rule.origin === Origin.ORIGIN_CONFIG && !wanted.has(s.rule.id)).map((s) => s.rule);
  const put: Array<{ stored: RuleEntry; added: Additions; fresh: boolean }> = [];
  for (const [id, rule] of wanted) {
    const existing = byId.get(id);
    if (existing?.rule.origin === Origin.ORIGIN_CONFIG && existing.rule.priority === rule.priority && existing.rule.expiresAt === 0) continue;
    const history = [{ ts: now, event: existing ? ("updated" as const) : ("added" as const), by: "config", why: rule.reason }];
    put.push({ stored: { rule, evidence: [] }, added: { history }, fresh: !existing });
  }
  return { removed, put };
}
