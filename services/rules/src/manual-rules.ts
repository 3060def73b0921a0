import { Action, Origin, Rule } from "@vigil/proto";
import { InvalidArgumentError } from "./errors.js";
import { canonicalRule, validateTtl } from "./model.js";

/**
 * A rule from the API, checked and complete: canonical match, origin MANUAL
 * (FEEDBACK only from the service itself), expiry from the TTL, nothing the
 * caller could pre-fill about enforcement, counters or verdicts.
 */
export function manualRule(input: Rule | undefined, ttlS: number, by: string, now: number, internal: boolean): Rule {
  if (!input) throw new InvalidArgumentError("rule", "is required");
  validateTtl(ttlS, "ttl_s");
  const { rule } = canonicalRule(input, "rule");
  const origin = rule.origin === Origin.ORIGIN_UNSPECIFIED ? Origin.ORIGIN_MANUAL : rule.origin;
  if (origin !== Origin.ORIGIN_MANUAL && !(internal && origin === Origin.ORIGIN_FEEDBACK))
    throw new InvalidArgumentError("rule.origin", "only MANUAL rules can be added (DETECTOR rules come from verdicts, FEEDBACK from false alarms, CONFIG from the configuration)");
  return Rule.fromPartial({
    ...rule,
    origin,
    reason: rule.reason || (rule.action === Action.ACTION_ACCEPT ? "manual allow" : "manual block"),
    createdBy: by,
    createdAt: now,
    expiresAt: ttlS ? now + ttlS : 0,
    hits: 0,
    bytes: 0,
    enforced: false,
    offences: 0,
    verdictIds: [],
    detector: "",
    decidedTs: 0,
  });
}
