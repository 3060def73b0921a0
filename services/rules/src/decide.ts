import { Action, Direction, Origin, Rule, type Verdict } from "@vigil/proto";
import { blockRuleId, hostCidrOf, hostRuleId, isActive, prefixCidrOf, type HostAddress } from "./model.js";
import type { Offences } from "./offences.js";
import type { Decision, Policy } from "./policy.js";
import type { RuleTable } from "./rule-table.js";
import { evidenceOf, keptEvidence, type RuleEntry } from "./evidence.js";
import type { Additions } from "./rule-record.js";
import type { HistoryEntry, Offence } from "./store.js";
import type { VerdictLog } from "./verdict-log.js";

export const DETECTOR_RULE_PRIORITY = 1000;
const MAX_RULE_VERDICT_IDS = 20;

/** What a decision changes; commit() applies it: the rule as the table holds it, and what its record gains. */
export type RuleChange =
  | { kind: "none" }
  /** A new detector rule (`record`: its record's history and verdicts), and the offence it counts; `replaces`: host rules an IPv6 prefix rule takes over. */
  | { kind: "add"; stored: RuleEntry; record: Additions; address: string; offence: Offence; replaces: Rule[] }
  /** Another detector agreed on a blocked source; `enforce` when the expiry moved, which moves the end of the block's window (`until`, capture time) too. */
  | { kind: "agree"; stored: RuleEntry; added: Additions; enforce: boolean; until: number }
  /** A repeat verdict on a blocked source, kept with the rule. */
  | { kind: "attach"; stored: RuleEntry; added: Additions };

export interface DecideState {
  table: RuleTable;
  offences: Offences;
  policy: Policy;
  verdicts: VerdictLog;
  /** Who detector rules are made by ("vigil-rules/<instance>"). */
  by: string;
  /** rules.maxAutomaticRules */
  maxAutomatic: number;
  /** rules.ipv6Aggregate */
  aggregate: { prefixLength: number; hosts: number };
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
  let existing = state.table.get(id);
  // IPv6: an offender inside a prefix already blocked as a whole is blocked.
  const prefix = address.bytes.length === 16 && state.aggregate.hosts > 0 ? prefixCidrOf(address, state.aggregate.prefixLength) : null;
  const prefixRule = prefix ? state.table.get(blockRuleId(prefix)) : undefined;
  if (!existing && prefixRule && isActive(prefixRule.rule, now)) existing = prefixRule;
  const offences = state.offences.count(address.text, now);
  const whileBlocked = seenWhileBlocked(v, existing, state.offences.lastBlock(address.text, now));
  if (whileBlocked) {
    const decision: Decision = { outcome: "seen-while-blocked", reason: whileBlocked, verified: 0, detectors: [v.detector], verdictIds: [v.id], agreement: false, ttlS: 0, offences };
    return { decision, ruleId: existing?.rule.id ?? 0, change: none };
  }
  let decision = state.policy.decide(v, { offences, alreadyBlocked: !!existing, allowedBy: state.table.allowRuleFor(address, now) });
  if (decision.outcome !== "blocked") return { decision, ruleId: 0, change: none };
  if (existing) return { decision, ruleId: existing.rule.id, change: onBlocked(state, existing, v, decision, now) };
  if (state.table.automatic >= state.maxAutomatic) {
    decision = { ...decision, outcome: "table-full", reason: `${decision.reason}; refused: ${state.table.automatic} automatic rules, the limit of rules.maxAutomaticRules` };
    return { decision, ruleId: 0, change: none };
  }
  const neighbours = prefix ? state.table.hostsIn(prefix) : [];
  if (prefix && neighbours.length + 1 >= state.aggregate.hosts) {
    const replaces = neighbours.map((n) => state.table.get(n)?.rule).filter((r): r is Rule => !!r);
    const why = `${decision.reason}; ${neighbours.length + 1} offenders in ${prefix}: blocked as one prefix`;
    const change = block(state, v, address, { cidr: prefix, id: blockRuleId(prefix) }, { ...decision, reason: why }, now, replaces);
    return { decision: { ...decision, reason: why }, ruleId: blockRuleId(prefix), change };
  }
  return { decision, ruleId: id, change: block(state, v, address, { cidr: hostCidrOf(address), id }, decision, now, []) };
}

/**
 * Capture sees packets before the firewall drops them, so a blocked source's
 * retries reach the detectors. Evidence that began (capture time) at or after
 * the decision of the block in force, or within the last block's window
 * (decision to decision + TTL), is such traffic: it neither renews, extends
 * nor escalates a block. Evidence from before a block still counts while it is
 * in force, and so does a source coming back after its block ended; evidence
 * that ends before the last block did is not a new offence. Returns why, or null.
 * Verdicts without capture times are judged as before.
 */
function seenWhileBlocked(v: Verdict, existing: RuleEntry | undefined, last: { from: number; until: number } | null): string | null {
  const start = v.firstTs || v.lastTs;
  if (start <= 0) return null;
  const since = existing?.rule.decidedTs ?? 0;
  if (existing && since > 0 && start >= since) return `evidence from ${fmtTs(start)}, after the block decided at ${fmtTs(since)}: seen while blocked, no renewal`;
  if (!existing && last && start >= last.from && start < last.until) return `evidence from ${fmtTs(start)}, within the last block (${fmtTs(last.from)} to ${fmtTs(last.until)}): seen while blocked, no renewal`;
  // A renewal of a window that began before the block and ran on into it (a detector whose idle timeout is
  // shorter than its renewal interval keeps the window open on the dropped retries): once the block has
  // ended, nothing in it is from after the block, so it is no new offence.
  const end = v.lastTs || v.firstTs;
  if (!existing && last && start < last.from && end < last.until) return `evidence from ${fmtTs(start)} to ${fmtTs(end)}, none after the last block ended at ${fmtTs(last.until)}: no new offence`;
  return null;
}

function fmtTs(s: number): string {
  return new Date(s * 1000).toISOString();
}

function onBlocked(state: DecideState, s: RuleEntry, v: Verdict, d: Decision, now: number): RuleChange {
  if (s.rule.verdictIds.includes(v.id)) return { kind: "none" };
  const named = s.rule.origin === Origin.ORIGIN_DETECTOR ? s.rule.detector.split("+").filter(Boolean) : [];
  const joining = d.agreement && named.length > 0 ? d.detectors.filter((x) => !named.includes(x)) : [];
  if (joining.length) return agree(state, s, v, [...new Set([...named, ...joining])].sort(), now);
  const rule = { ...s.rule, verdictIds: [...s.rule.verdictIds, v.id].slice(-MAX_RULE_VERDICT_IDS) };
  return { kind: "attach", stored: { rule, evidence: keptEvidence([...s.evidence, evidenceOf(v)]) }, added: { verdicts: [v] } };
}

/**
 * Another detector agrees on an already blocked source: the rule gets what it
 * would have had if the detectors had agreed before the block (their names,
 * the agreement TTL counted from its creation, never shorter), and keeps the
 * earliest capture time of decision, so the rule ends the same whichever
 * verdict arrived first. No new offence is counted.
 */
function agree(state: DecideState, s: RuleEntry, v: Verdict, detectors: string[], now: number): RuleChange {
  const verdicts = [...s.evidence, evidenceOf(v)];
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
  const history: HistoryEntry[] = [{ ts: now, event: "updated", by: state.by, why: rule.reason, verdictIds: [v.id] }];
  const until = rule.decidedTs > 0 && rule.expiresAt > 0 ? rule.decidedTs + (rule.expiresAt - rule.createdAt) : 0;
  return { kind: "agree", stored: { rule, evidence: keptEvidence(verdicts) }, added: { history, verdicts: [v] }, enforce: rule.expiresAt !== s.rule.expiresAt, until };
}

function block(state: DecideState, v: Verdict, address: HostAddress, target: { cidr: string; id: number }, d: Decision, now: number, replaces: Rule[]): RuleChange {
  const offences = d.offences + 1;
  const cited = d.verdictIds.map((vid) => (vid === v.id ? v : state.verdicts.get(vid)?.verdict)).filter((x): x is Verdict => !!x);
  const all = cited.map(evidenceOf);
  const evidence = keptEvidence(all);
  const reason = d.agreement ? state.policy.agreementReason(all) : d.reason;
  const rule = Rule.fromPartial({
    id: target.id,
    action: Action.ACTION_DROP,
    srcCidr: target.cidr,
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
  const record: Additions = { history: [{ ts: now, event: "added", by: state.by, why: reason, verdictIds: d.verdictIds }], verdicts: cited };
  const from = rule.decidedTs;
  return { kind: "add", stored: { rule, evidence }, record, address: address.text, offence: { count: offences, lastAt: now, ...(from > 0 ? { from, until: from + d.ttlS } : {}) }, replaces };
}
