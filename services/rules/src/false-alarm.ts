import type { Logger } from "@vigil/lifecycle";
import { Action, Direction, Feedback, FeedbackKind, Origin, Rule, type Verdict, type VerdictRecord } from "@vigil/proto";
import { InvalidArgumentError, NotFoundError } from "./errors.js";
import { hostAddress, hostCidrOf, hostRuleId, nowS, validateTtl } from "./model.js";
import type { RuleTable } from "./rule-table.js";
import { evidenceOf, type RuleEntry } from "./evidence.js";
import type { Additions } from "./rule-record.js";
import type { StoredRule } from "./store.js";

const FEEDBACK_RULE_PRIORITY = 10;

/** What a false alarm touches in the service. */
export interface FalseAlarmHost {
  rules: RuleTable;
  /** A rule's whole record, with the verdicts it keeps. */
  ruleRecord(id: number): Promise<StoredRule | null>;
  record(id: string): VerdictRecord | undefined;
  deleteRule(id: number, by: string, cause: string): Promise<boolean>;
  /** Adds a FEEDBACK rule (no lockout check: it is an allow rule). */
  addRule(rule: Rule, ttlS: number, by: string): Promise<Rule>;
  saveRule(s: RuleEntry, add: Additions): void;
  /** Forgets the address's offences and the detectors' flags on it. */
  forgetOffender(address: string): void;
  publish(fb: Feedback): void;
  /** rules.falseAlarmAllowTtlS */
  allowTtlS: number;
  log: Logger;
}

/** The verdict as recorded: from the recent log, else from the record of a rule that keeps it. */
async function findVerdict(host: FalseAlarmHost, id: string): Promise<Verdict | undefined> {
  const rec = host.record(id);
  if (rec) return rec.verdict;
  for (const s of [...host.rules.values()].filter((x) => x.evidence.some((e) => e.id === id))) {
    const v = (await host.ruleRecord(s.rule.id))?.verdicts.find((x) => x.id === id);
    if (v) return v;
  }
  return undefined;
}

/**
 * A verdict was wrong: the detector rules it caused (and the host rule on its
 * source) go, the source's offences and flags are forgotten, an allow rule
 * keeps it from being blocked again for a while, and the detector is sent the
 * verdict back as feedback.
 */
export async function markFalseAlarm(
  host: FalseAlarmHost,
  req: { verdictId: string; allowTtlS: number; comment: string; by: string },
): Promise<{ removed: number[]; allowRuleId: number }> {
  const { verdictId, allowTtlS, comment, by } = req;
  if (!verdictId) throw new InvalidArgumentError("verdict_id", "is required");
  validateTtl(allowTtlS, "allow_ttl_s");
  const verdict = await findVerdict(host, verdictId);
  if (!verdict) throw new NotFoundError(`verdict_id: no recorded verdict "${verdictId}"`);
  const removed: number[] = [];
  let allowRuleId = 0;
  if (verdict.address && !verdict.aggregate) {
    const address = hostAddress(verdict.address);
    const hostRule = hostRuleId(address);
    for (const s of [...host.rules.values()])
      if (s.rule.origin === Origin.ORIGIN_DETECTOR && (s.rule.id === hostRule || s.rule.verdictIds.includes(verdictId))) {
        await host.deleteRule(s.rule.id, by, "false-alarm");
        removed.push(s.rule.id);
      }
    host.forgetOffender(address.text);
    const allow = await host.addRule(
      Rule.fromPartial({
        action: Action.ACTION_ACCEPT,
        srcCidr: hostCidrOf(address),
        direction: Direction.DIRECTION_BOTH,
        priority: FEEDBACK_RULE_PRIORITY,
        origin: Origin.ORIGIN_FEEDBACK,
        reason: `false alarm on verdict ${verdictId}${comment ? `: ${comment}` : ""}`,
        detector: verdict.detector,
        verdictIds: [verdictId],
      }),
      allowTtlS || host.allowTtlS,
      by,
    );
    allowRuleId = allow.id;
    const s = host.rules.get(allow.id);
    if (s) {
      s.rule.verdictIds = [verdictId];
      s.evidence = [evidenceOf(verdict)];
      host.saveRule(s, { verdicts: [verdict] });
    }
  }
  const rec = host.record(verdictId);
  if (rec) rec.outcome = "false-alarm";
  host.publish(Feedback.fromPartial({ verdictId, detector: verdict.detector, kind: FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, verdict, by, comment, ts: nowS() }));
  host.log.info({ verdict: verdictId, removed, allowRuleId, by }, "false alarm recorded");
  return { removed, allowRuleId };
}
