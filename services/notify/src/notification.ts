import { hostname } from "node:os";
import { Action, FeedbackKind, Origin, RuleEvent_Kind, originToJSON, type Feedback, type Rule, type RuleEvent } from "@vigil/proto";
import type { EventKind } from "./config.js";

/** A rule as notifications show it (the proto's enums as words). */
export interface RuleSummary {
  id: string;
  action: "block" | "allow";
  source: string;
  destination: string | null;
  protocol: number | null;
  ports: string | null;
  origin: string;
  reason: string;
  detector: string;
  createdBy: string;
  /** Seconds since the epoch; null: permanent. */
  expiresAt: number | null;
  enforced: boolean;
}

/** One thing to tell people: the payload every target formats in its own way. */
export interface Notification {
  kind: EventKind | "dropped" | "test";
  /** Seconds since the epoch. */
  ts: number;
  host: string;
  /** One line for people. */
  text: string;
  /** The rule change behind a block or unblock: added, expired or removed. */
  change?: "added" | "expired" | "removed";
  rule?: RuleSummary;
  feedback?: { verdictId: string; detector: string; address: string; by: string; comment: string };
  /** A "dropped" summary: how many notifications of each kind the full queue did not keep. */
  dropped?: Partial<Record<EventKind, number>>;
}

const HOST = hostname();
const ORIGIN_WORDS: Partial<Record<Origin, string>> = {
  [Origin.ORIGIN_DETECTOR]: "detector",
  [Origin.ORIGIN_MANUAL]: "manual",
  [Origin.ORIGIN_FEEDBACK]: "feedback",
  [Origin.ORIGIN_CONFIG]: "config",
};

function summarize(r: Rule): RuleSummary {
  const ports = r.dportMin || r.dportMax ? (r.dportMin === r.dportMax ? String(r.dportMin) : `${r.dportMin}-${r.dportMax}`) : null;
  return {
    id: String(r.id),
    action: r.action === Action.ACTION_ACCEPT ? "allow" : "block",
    source: r.srcCidr,
    destination: r.dstCidr || null,
    protocol: r.protocol || null,
    ports,
    origin: ORIGIN_WORDS[r.origin] ?? originToJSON(r.origin).toLowerCase(),
    reason: r.reason,
    detector: r.detector,
    createdBy: r.createdBy,
    expiresAt: r.expiresAt > 0 ? r.expiresAt : null,
    enforced: r.enforced,
  };
}

function until(expiresAt: number | null): string {
  return expiresAt === null ? "permanently" : `until ${new Date(expiresAt * 1000).toISOString().replace(/\.\d+Z$/, "Z")}`;
}

/**
 * The notification for a rule event, or null when there is nothing to tell:
 * updates (hit counters, a TTL extended) and allow rules (the allowlist, a
 * false alarm's temporary allow, which the feedback itself reports).
 */
export function fromRuleEvent(e: RuleEvent, now = Date.now() / 1000): Notification | null {
  if (!e.rule || e.rule.action !== Action.ACTION_DROP) return null;
  const rule = summarize(e.rule);
  const ts = e.ts || now;
  const why = rule.reason ? `: ${rule.reason}` : "";
  const by = rule.detector ? ` (${rule.detector})` : rule.createdBy ? ` (by ${rule.createdBy})` : "";
  const target = `${rule.source}${rule.ports ? ` port ${rule.ports}` : ""}`;
  switch (e.kind) {
    case RuleEvent_Kind.KIND_ADDED:
      return { kind: "block", change: "added", ts, host: HOST, rule, text: `Vigil on ${HOST} blocked ${target} ${until(rule.expiresAt)}${by}${why}` };
    case RuleEvent_Kind.KIND_EXPIRED:
      return { kind: "unblock", change: "expired", ts, host: HOST, rule, text: `Vigil on ${HOST} unblocked ${target}: the block expired` };
    case RuleEvent_Kind.KIND_REMOVED:
      return { kind: "unblock", change: "removed", ts, host: HOST, rule, text: `Vigil on ${HOST} unblocked ${target}: removed${e.by ? ` by ${e.by}` : ""}` };
    default:
      return null;
  }
}

/** The notification for feedback on a verdict (a false alarm reported, or a verdict confirmed). */
export function fromFeedback(f: Feedback, now = Date.now() / 1000): Notification | null {
  const kind = f.kind === FeedbackKind.FEEDBACK_KIND_FALSE_ALARM ? "false-alarm" : f.kind === FeedbackKind.FEEDBACK_KIND_CONFIRMED ? "confirmed" : null;
  if (!kind) return null;
  const address = f.verdict?.address ?? "";
  const feedback = { verdictId: f.verdictId, detector: f.detector, address, by: f.by, comment: f.comment };
  const about = `${f.detector || "detector"} verdict ${f.verdictId}${address ? ` on ${address}` : ""}`;
  const who = f.by ? ` by ${f.by}` : "";
  const note = f.comment ? `: ${f.comment}` : "";
  const text = kind === "false-alarm" ? `Vigil on ${HOST}: ${about} reported as a false alarm${who}${note}` : `Vigil on ${HOST}: ${about} confirmed${who}${note}`;
  return { kind, ts: f.ts || now, host: HOST, feedback, text };
}

/** One message in place of the notifications a full queue dropped. */
export function droppedSummary(counts: Partial<Record<EventKind, number>>, now = Date.now() / 1000): Notification {
  const total = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
  const parts = Object.entries(counts).map(([k, n]) => `${n} ${k}`);
  return { kind: "dropped", ts: now, host: HOST, dropped: counts, text: `Vigil on ${HOST}: ${total} notifications not sent, the queue was full (${parts.join(", ")}); see vigil rules ls` };
}

export function testNotification(now = Date.now() / 1000): Notification {
  return { kind: "test", ts: now, host: HOST, text: `Vigil on ${HOST}: test notification` };
}
