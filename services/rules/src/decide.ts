import { Action, Direction, Origin, Rule, type Verdict } from "@vigil/proto";
import { hostCidrOf, hostRuleId, type HostAddress } from "./model.js";
import type { Offences } from "./offences.js";
import type { Decision, Policy } from "./policy.js";
import type { RuleTable } from "./rule-table.js";
import type { HistoryEntry, Offence, StoredRule } from "./store.js";
import type { VerdictLog } from "./verdict-log.js";

export const DETECTOR_RULE_PRIORITY = 1000;
const MAX_RULE_VERDICT_IDS = 20;
const MAX_RULE_VERDICTS = 5;

/** What a decision changes; commit() applies it. */
export type RuleChange =
  | { kind: "none" }
  /** A new detector rule, and the offence it counts. */
  | { kind: "add"; stored: StoredRule; address: string; offence: Offence }
  /** Another detector agreed on a blocked source; `enforce` when the expiry moved. */
  | { kind: "agree"; stored: StoredRule; enforce: boolean }
  /** A repeat verdict on a blocked source, kept with the rule. */
  | { kind: "attach"; stored: StoredRule };

export interface DecideState {
  table: RuleTable;
  offences: Offences;
  policy: Policy;
  verdicts: VerdictLog;
  /** Who detector rules are made by ("vigil-rules/<instance>"). */
  by: string;
}

export interface Decided {
  decision: Decision;
  /** The rule the verdict blocked under (0 = none). */
  ruleId: number;
  change: RuleChange;
}

/**
 * A verdict's decision and the rule change it implies, from the table, the
 * offences and the policy, writing none of them (the policy keeps its own
 * agreement flags and block budget). A rule past its expiry must have been
 * expired before this is called.
 */
export function decide(state: DecideState, v: Verdict, address: HostAddress | null, now: number): Decided {
  const none: RuleChange = { kind: "none" };
  if (!address) return { decision: state.policy.decide(v, { offences: 0, alreadyBlocked: false }), ruleId: 0, change: none };
  const id = hostRuleId(address);
  const existing = state.table.get(id);
  const offences = state.offences.count(address.text, now);
  const decision = state.policy.decide(v, { offences, alreadyBlocked: !!existing, allowedBy: state.table.allowRuleFor(address, now) });
  if (decision.outcome !== "blocked") return { decision, ruleId: 0, change: none };
  const change = existing ? onBlocked(state, existing, v, decision, now) : block(state, v, address, id, decision, now);
  return { decision, ruleId: id, change };
}

function onBlocked(state: DecideState, s: StoredRule, v: Verdict, d: Decision, now: number): RuleChange {
  if (s.rule.verdictIds.includes(v.id)) return { kind: "none" };
  const named = s.rule.origin === Origin.ORIGIN_DETECTOR ? s.rule.detector.split("+").filter(Boolean) : [];
  const joining = d.agreement && named.length > 0 ? d.detectors.filter((x) => !named.includes(x)) : [];
  if (joining.length) return agree(state, s, v, [...new Set([...named, ...joining])].sort(), now);
  const rule = { ...s.rule, verdictIds: [...s.rule.verdictIds, v.id].slice(-MAX_RULE_VERDICT_IDS) };
  return { kind: "attach", stored: { ...s, rule, verdicts: [...s.verdicts, v].slice(-MAX_RULE_VERDICTS) } };
}

/**
 * Another detector agrees on an already blocked source: the rule gets what it
 * would have had if the detectors had agreed before the block (their names,
 * the agreement TTL counted from its creation, never shorter), and keeps the
 * earliest capture time of decision, so the rule ends the same whichever
 * verdict arrived first. No new offence is counted.
 */
function agree(state: DecideState, s: StoredRule, v: Verdict, detectors: string[], now: number): RuleChange {
  const verdicts = [...s.verdicts, v];
  const ts = v.lastTs || v.firstTs;
  const ttlS = state.policy.ttlFor(Math.max(0, s.rule.offences - 1), true);
  const rule: Rule = {
    ...s.rule,
    detector: detectors.join("+"),
    reason: state.policy.agreementReason(verdicts),
    verdictIds: [...s.rule.verdictIds, v.id].slice(-MAX_RULE_VERDICT_IDS),
    expiresAt: s.rule.expiresAt > 0 ? Math.max(s.rule.expiresAt, s.rule.createdAt + ttlS) : 0,
    decidedTs: s.rule.decidedTs > 0 && ts > 0 ? Math.min(s.rule.decidedTs, ts) : s.rule.decidedTs || ts,
  };
  const history: HistoryEntry[] = [...s.history, { ts: now, event: "updated", by: state.by, why: rule.reason, verdictIds: [v.id] }];
  return { kind: "agree", stored: { rule, history, verdicts: verdicts.slice(-MAX_RULE_VERDICTS) }, enforce: rule.expiresAt !== s.rule.expiresAt };
}

function block(state: DecideState, v: Verdict, address: HostAddress, id: number, d: Decision, now: number): RuleChange {
  const offences = d.offences + 1;
  const verdicts = d.verdictIds.map((vid) => (vid === v.id ? v : state.verdicts.get(vid)?.verdict)).filter((x): x is Verdict => !!x);
  const reason = d.agreement ? state.policy.agreementReason(verdicts) : d.reason;
  const rule = Rule.fromPartial({
    id,
    action: Action.ACTION_DROP,
    srcCidr: hostCidrOf(address),
    direction: Direction.DIRECTION_BOTH,
    priority: DETECTOR_RULE_PRIORITY,
    origin: Origin.ORIGIN_DETECTOR,
    reason,
    detector: d.detectors.join("+"),
    verdictIds: d.verdictIds,
    createdBy: state.by,
    createdAt: now,
    expiresAt: now + d.ttlS,
    offences,
    enforced: false,
    decidedTs: v.lastTs || v.firstTs,
  });
  const stored: StoredRule = { rule, history: [{ ts: now, event: "added", by: state.by, why: reason, verdictIds: d.verdictIds }], verdicts };
  return { kind: "add", stored, address: address.text, offence: { count: offences, lastAt: now } };
}
