import { Origin } from "@vigil/proto";
import { InvalidArgumentError, NotFoundError } from "./errors.js";
import { checkLockout } from "./lockout.js";
import type { AllowEntry } from "./allowlist.js";
import { validateTtl } from "./model.js";
import type { RuleEntry } from "./evidence.js";
import type { Additions } from "./rule-record.js";

// "Keep this attacker out longer": an operator extends an active rule, whatever
// made it. The rule stays what it was (origin, reason, verdicts, offences);
// only its expiry moves, and its history says who moved it.

export interface ExtendRequest {
  id: number;
  /** The rule expires this long from now; 0: never. */
  ttlS: number;
  by: string;
  /** The lockout check, as for a manual rule: the caller's session sources, and force. */
  sessions: string[];
  force: boolean;
}

/** The extended rule, ready to store and enforce, and its record's history entry; throws when it may not be extended so. */
export function extendedRule(existing: RuleEntry | undefined, req: ExtendRequest, protectedEntries: AllowEntry[], now: number): { stored: RuleEntry; added: Additions } {
  if (!req.id) throw new InvalidArgumentError("id", "is required");
  validateTtl(req.ttlS, "ttl_s");
  if (!existing || (existing.rule.expiresAt && existing.rule.expiresAt <= now)) throw new NotFoundError(`no active rule ${req.id}`);
  const { rule } = existing;
  if (rule.origin === Origin.ORIGIN_CONFIG)
    throw new InvalidArgumentError("id", `rule ${req.id} comes from the configuration (rules.staticRules), which sets its life: change it there`);
  const expiresAt = req.ttlS ? now + req.ttlS : 0;
  if (!rule.expiresAt && expiresAt)
    throw new InvalidArgumentError("ttl_s", `rule ${req.id} never expires: a ttl of ${req.ttlS} s would shorten it (remove it to end it)`);
  if (expiresAt && expiresAt < rule.expiresAt)
    throw new InvalidArgumentError("ttl_s", `rule ${req.id} expires in ${Math.ceil(rule.expiresAt - now)} s: a ttl of ${req.ttlS} s would shorten it (remove it to end it early)`);
  // Extending keeps a block in force: it passes the same lockout check as adding one (force overrides it, as there).
  checkLockout(rule, protectedEntries, req.sessions, req.force);
  const until = expiresAt ? new Date(expiresAt * 1000).toISOString() : "never";
  return {
    stored: { ...existing, rule: { ...rule, expiresAt } },
    added: { history: [{ ts: now, event: "updated", by: req.by, why: `extended: expires ${until}` }] },
  };
}
