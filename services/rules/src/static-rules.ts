import { Action, Direction, Origin, Rule } from "@vigil/proto";
import type { StaticRule } from "./config.js";
import { InvalidArgumentError } from "./errors.js";
import { canonicalRule, protocolNumber } from "./model.js";

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
