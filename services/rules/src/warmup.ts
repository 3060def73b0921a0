import type { Logger } from "@vigil/lifecycle";
import type { Decided, RuleChange } from "./decide.js";
import type { Decision } from "./policy.js";
import type { RulesMetrics } from "./metrics.js";
import { QuarantineError } from "./store-check.js";
import type { RuleStore } from "./store.js";

// The warm-up of a new host (rules.warmup): the detectors have never seen this
// host's own normal traffic, so for a while their blocks are decided as usual
// but only simulated. Like CrowdSec's simulation mode, but it ends by itself.

/** Where the warm-up's start (and end) is kept in the rule store: a restart continues it. */
export const WARMUP_KEY = "phase.warmup";
/** Clocks step a little (NTP at boot); a start further ahead than this was not written by this service. */
const CLOCK_SLACK_S = 300;
const MAX_BY = 200;

export type Phase = "warmup" | "blocking" | "dry-run";

/** A decision the warm-up turned into a simulation: outcome "warmup-simulated", no rule, no change. */
export interface Simulated {
  decision: Omit<Decision, "outcome"> & { outcome: "warmup-simulated" };
  ruleId: 0;
  change: RuleChange;
}
export const PHASES: readonly Phase[] = ["warmup", "blocking", "dry-run"];

export interface WarmupRecord {
  /** Wall clock, seconds. */
  startedAt: number;
  /** Set once blocking started: when the warm-up elapsed or an operator ended it. */
  endedAt?: number;
  endedBy?: string;
}

function fail(problem: string): never {
  throw new QuarantineError(problem);
}

/**
 * The stored warm-up record, trusted no more than API input. A start in the
 * future would hold off blocking for as long as it says, an end before the
 * start is no history this service writes: both are refused.
 */
export function checkWarmupRecord(raw: unknown, now: number): WarmupRecord {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("not a JSON object");
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!["startedAt", "endedAt", "endedBy"].includes(k)) fail(`unknown field "${k.slice(0, 40)}"`);
  const time = (field: string, x: unknown): number => {
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0) fail(`${field} is not a time in seconds`);
    if (x > now + CLOCK_SLACK_S) fail(`${field} ${new Date(x * 1000).toISOString()} is in the future`);
    return x;
  };
  const rec: WarmupRecord = { startedAt: time("startedAt", r.startedAt) };
  if (r.endedAt !== undefined) {
    rec.endedAt = time("endedAt", r.endedAt);
    if (rec.endedAt < rec.startedAt) fail("endedAt is before startedAt");
  }
  if (r.endedBy !== undefined) {
    if (typeof r.endedBy !== "string" || r.endedBy.length > MAX_BY) fail(`endedBy is not a text of at most ${MAX_BY} characters`);
    rec.endedBy = r.endedBy;
  }
  return rec;
}

export interface WarmupHost {
  store: Pick<RuleStore, "readRecord" | "saveRecord">;
  metrics: RulesMetrics;
  log: Logger;
  /** Decisions are simulated by the enforcer itself (dry-run): the warm-up changes nothing then. */
  dryRun: boolean;
  /** Tells the bus and the watchers that the phase changed. */
  announce(phase: Phase, detail: string, by: string): void;
}

const iso = (s: number) => new Date(s * 1000).toISOString().replace(/\.\d+Z$/, "Z");

/**
 * The warm-up's clock and what it does to a decision. Starts at the service's
 * first start with rules.warmup set, kept in the rule store; checked by the
 * service's sweep every second.
 */
export class Warmup {
  private record: WarmupRecord | null = null;

  constructor(
    /** rules.warmup; 0: none. */
    private readonly durationS: number,
    private readonly host: WarmupHost,
  ) {}

  /**
   * Reads the stored start, or starts the warm-up now. A record that fails
   * its checks is never read as "over": that would block from the first
   * verdict on a host whose traffic nothing has seen. The warm-up starts again
   * instead, and the bad record is logged and replaced.
   */
  async load(now: number): Promise<void> {
    if (this.durationS <= 0) return this.tick(now);
    const { store, log, metrics } = this.host;
    let text: string | null = null;
    try {
      text = await store.readRecord(WARMUP_KEY);
      if (text !== null) this.record = checkWarmupRecord(JSON.parse(text), now);
    } catch (err) {
      const unreadable = err instanceof QuarantineError || err instanceof SyntaxError;
      this.record = { startedAt: now };
      if (unreadable) {
        metrics.quarantined.inc({ kind: "warmup" });
        store.saveRecord(WARMUP_KEY, this.record);
        log.error(
          { code: "VIGIL_ERR_STORE_RECORD", key: WARMUP_KEY, problem: (err as Error).message, stored: text?.slice(0, 200), until: iso(this.until) },
          "the stored warm-up start failed its checks: refused, and the warm-up starts again now (automatic blocks stay simulated until it ends; `vigil warmup end` ends it)",
        );
      } else {
        // NATS failed the read: the record may be fine, so it is not overwritten; the next start reads it again.
        log.error({ err: (err as Error).message, key: WARMUP_KEY, until: iso(this.until) }, "cannot read the warm-up start from the rule store: warming up from now");
      }
      return this.tick(now);
    }
    if (!this.record) {
      this.record = { startedAt: now };
      store.saveRecord(WARMUP_KEY, this.record);
      const detail = `warm-up started: automatic blocks are simulated until ${iso(this.until)} (rules.warmup ${this.durationS}s), manual rules are enforced`;
      log.warn({ until: iso(this.until) }, detail);
      this.host.announce("warmup", detail, "vigil-rules");
    } else if (this.active(now)) log.warn({ since: iso(this.record.startedAt), until: iso(this.until) }, "warm-up continues: automatic blocks are simulated until it ends");
    this.tick(now);
  }

  /** When the warm-up ends or ended (wall clock); 0 without one. */
  get until(): number {
    if (this.durationS <= 0 || !this.record) return 0;
    return this.record.endedAt ?? this.record.startedAt + this.durationS;
  }

  get startedAt(): number {
    return this.durationS > 0 && this.record ? this.record.startedAt : 0;
  }

  active(now: number): boolean {
    return this.durationS > 0 && !!this.record && this.record.endedAt === undefined && now < this.record.startedAt + this.durationS;
  }

  phase(now: number): Phase {
    return this.host.dryRun ? "dry-run" : this.active(now) ? "warmup" : "blocking";
  }

  /** The fields of GetStatus on the phase. */
  status(now: number): { phase: Phase; warmupStartedAt: number; warmupUntil: number } {
    return { phase: this.phase(now), warmupStartedAt: this.startedAt, warmupUntil: this.until };
  }

  /** The sweep: ends a warm-up whose time is up (also one that elapsed while the service was down). */
  tick(now: number): void {
    const r = this.record;
    if (r && this.durationS > 0 && r.endedAt === undefined && now >= r.startedAt + this.durationS)
      this.finish(r.startedAt + this.durationS, "vigil-rules", `warm-up over after ${this.durationS}s`);
    this.gauges(now);
  }

  /** An operator ends the warm-up early; false when none is in progress. */
  endNow(now: number, by: string): boolean {
    if (!this.active(now)) return false;
    this.finish(now, by.slice(0, MAX_BY), `warm-up ended early by ${by}`);
    this.gauges(now);
    return true;
  }

  /**
   * During the warm-up a new automatic block is recorded as "warmup-simulated"
   * and changes nothing: no rule, no offence, nothing enforced, so nothing is
   * left to enforce when blocking starts. Returns null when the decision stands.
   */
  simulate(d: Decided, now: number): Simulated | null {
    if (this.host.dryRun || d.change.kind !== "add" || !this.active(now)) return null;
    const reason = `${d.decision.reason}; simulated: warm-up until ${iso(this.until)}`;
    return { decision: { ...d.decision, outcome: "warmup-simulated", reason }, ruleId: 0, change: { kind: "none" } };
  }

  private finish(at: number, by: string, why: string): void {
    this.record = { ...this.record!, endedAt: at, endedBy: by };
    this.host.store.saveRecord(WARMUP_KEY, this.record);
    const detail = `${why}: automatic blocks are enforced from now on (those simulated during the warm-up are not)`;
    this.host.log.warn({ startedAt: iso(this.record.startedAt), endedAt: iso(at), by }, detail);
    this.host.announce("blocking", detail, by);
  }

  private gauges(now: number): void {
    const current = this.phase(now);
    for (const p of PHASES) this.host.metrics.phase.set({ phase: p }, p === current ? 1 : 0);
    this.host.metrics.warmupUntil.set(this.until);
  }
}
