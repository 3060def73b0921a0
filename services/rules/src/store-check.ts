import { Origin, Rule, Verdict } from "@vigil/proto";
import { canonicalRule } from "./model.js";
import { ruleKeyId } from "./rule-key.js";
import type { HistoryEntry, Offence, StoredRule } from "./store.js";

/** A stored record that failed its checks: left in the bucket, never loaded. */
export class QuarantineError extends Error {
  readonly code = "VIGIL_ERR_STORE_RECORD";
}

const ORIGINS = new Set([Origin.ORIGIN_DETECTOR, Origin.ORIGIN_MANUAL, Origin.ORIGIN_FEEDBACK, Origin.ORIGIN_CONFIG]);
const MAX_TEXT = 1024;
const MAX_LIST = 64;

function fail(problem: string): never {
  throw new QuarantineError(problem);
}

function time(field: string, x: unknown): number {
  if (typeof x !== "number" || !Number.isFinite(x) || x < 0) fail(`${field} is not a time in seconds`);
  return x;
}

/**
 * A rule record as read from the bucket, trusted no more than an API request:
 * the same match checks (canonical CIDRs, so nothing but address text reaches
 * an enforcer), an id that is the key's and the match's, a known origin, sane
 * times and bounded text. Returns the record in canonical form.
 */
export function checkStoredRule(key: string, raw: unknown): StoredRule {
  if (typeof raw !== "object" || raw === null) fail("not a JSON object");
  const o = raw as { rule?: unknown; history?: unknown; verdicts?: unknown };
  if (typeof o.rule !== "object" || o.rule === null) fail("no rule");
  let parsed: Rule;
  try {
    parsed = Rule.fromJSON(o.rule);
  } catch (err) {
    fail(`rule: ${(err as Error).message}`);
  }
  let rule: Rule;
  try {
    rule = canonicalRule(parsed, "rule").rule;
  } catch (err) {
    fail((err as Error).message);
  }
  if (ruleKeyId(key) !== rule.id) fail(`key does not match the rule's id ${rule.id}`);
  if (!ORIGINS.has(rule.origin)) fail(`rule.origin: unknown origin ${rule.origin}`);
  time("rule.created_at", rule.createdAt);
  time("rule.expires_at", rule.expiresAt);
  if (!Number.isInteger(rule.priority)) fail("rule.priority is not an integer");
  for (const [field, text] of [["reason", rule.reason], ["created_by", rule.createdBy], ["detector", rule.detector]] as const)
    if (text.length > MAX_TEXT) fail(`rule.${field} is longer than ${MAX_TEXT} characters`);
  if (!Array.isArray(rule.verdictIds) || rule.verdictIds.length > MAX_LIST) fail(`rule.verdict_ids has more than ${MAX_LIST} entries`);
  const history = Array.isArray(o.history) ? (o.history as HistoryEntry[]).slice(-MAX_LIST) : [];
  let verdicts: Verdict[] = [];
  try {
    verdicts = (Array.isArray(o.verdicts) ? o.verdicts : []).slice(-5).map((v) => Verdict.fromJSON(v));
  } catch (err) {
    fail(`verdicts: ${(err as Error).message}`);
  }
  return { rule, history, verdicts };
}

/** An offence record: a positive whole count and a time. */
export function checkStoredOffence(raw: unknown): Offence {
  if (typeof raw !== "object" || raw === null) fail("not a JSON object");
  const o = raw as { count?: unknown; lastAt?: unknown; from?: unknown; until?: unknown };
  if (typeof o.count !== "number" || !Number.isInteger(o.count) || o.count < 1 || o.count > 1000) fail("count is not a whole number 1..1000");
  const out: Offence = { count: o.count, lastAt: time("lastAt", o.lastAt) };
  if (o.from !== undefined && o.until !== undefined) {
    out.from = time("from", o.from);
    out.until = time("until", o.until);
  }
  return out;
}
