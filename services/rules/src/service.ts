import { EventEmitter } from "node:events";
import { codecs, subjects, type NatsConnection, type Subscription } from "@vigil/bus";
import { instanceId, VERSION, type Logger } from "@vigil/lifecycle";
import {
  Rule,
  RuleEvent,
  RuleEvent_Kind,
  type ListRulesRequest,
  type ListVerdictsRequest,
  type Status,
  type Verdict,
  type VerdictRecord,
} from "@vigil/proto";
import type { Allowlist } from "./allowlist.js";
import type { RulesConfig } from "./config.js";
import { decide, type DecideState, type RuleChange } from "./decide.js";
import { EnforcementQueue } from "./enforcement-queue.js";
import type { Enforcer } from "./enforcers/types.js";
import { DryRunEnforcer } from "./enforcers/dry-run.js";
import { markFalseAlarm, type FalseAlarmHost } from "./false-alarm.js";
import { Fleet } from "./fleet.js";
import { isRejected, readVerdict } from "./intake.js";
import type { RulesMetrics } from "./metrics.js";
import { checkLockout } from "./lockout.js";
import { extendedRule, type ExtendRequest } from "./extend-rule.js";
import { manualRule } from "./manual-rules.js";
import { blockRuleId, hostRuleId, isActive, nowS, originName, prefixCidrOf } from "./model.js";
import { Offences } from "./offences.js";
import { Policy } from "./policy.js";
import { RuleTable } from "./rule-table.js";
import { isReplay } from "./replay-sources.js";
import { staticRuleChanges } from "./static-rules.js";
import { RuleStore, type StoredRule } from "./store.js";
import type { RuleEntry } from "./evidence.js";
import type { Additions } from "./rule-record.js";
import { VerdictLog } from "./verdict-log.js";
import { Warmup } from "./warmup.js";

export interface RulesServiceOptions {
  config: RulesConfig;
  nc: NatsConnection;
  enforcer: Enforcer;
  allowlist: Allowlist;
  metrics: RulesMetrics;
  logger: Logger;
  /** Default instanceId("rules"). */
  instance?: string;
  /** Default the release's VERSION. */
  version?: string;
  metricsPort?: number;
}

interface Watchers {
  verdict: [VerdictRecord];
  rule: [RuleEvent];
  /** A decided rule took effect: latency from the verdict's arrival. */
  enforced: [{ rule: Rule; latencyMs: number }];
}

/**
 * The rules service: the rule lifecycle. A verdict goes intake -> decide ->
 * commit; a rule is added, updated, expired or removed through commit-like
 * steps that write the table, the store, the RuleEvent and the enforcement
 * queue together. One instance per host.
 *
 * Expiry has one clock, the service's sweep: it ends a rule, announces it and
 * removes it from the kernel (nftables set timeouts are whole seconds, rounded
 * up, so an element may outlive its rule by up to a second, and a source
 * announced expired must pass). The kernel's own timeouts are only a backstop
 * for when the service is down; an expiry the kernel reports just updates the
 * state if the rule is due, with no second removal.
 */
export class RulesService extends EventEmitter<Watchers> {
  readonly rules: RuleTable;
  readonly warmup: Warmup;
  private readonly offences: Offences;
  private readonly verdicts: VerdictLog;
  private readonly policy: Policy;
  private readonly store: RuleStore;
  private readonly queue: EnforcementQueue;
  private readonly fleet: Fleet;
  private subs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private countersAt = 0;
  private refusedLoggedAt = 0;
  private readonly replayWarned = new Set<string>();
  private refusedSinceLog = 0;
  private readonly startedAt = nowS();
  private readonly instance: string;
  private readonly version: string;
  private readonly by: string;
  private readonly log: Logger;
  private stopped = false;
  /** Rules past their expiry on their way out of the kernel (expireOnceRemoved). */
  private readonly expiring = new Set<number>();

  constructor(private readonly opts: RulesServiceOptions) {
    super();
    this.setMaxListeners(0);
    this.log = opts.logger;
    this.instance = opts.instance ?? instanceId("rules");
    this.version = opts.version ?? VERSION;
    this.by = `vigil-rules/${this.instance}`;
    this.policy = new Policy(opts.config, opts.allowlist);
    this.store = new RuleStore(opts.nc, opts.config.bucket, opts.logger, { contents: () => ({ rules: [...this.rules.values()].filter((s) => isActive(s.rule, nowS())), offences: this.offences.all }), recreated: () => opts.metrics.storeRecreated.inc() });
    this.rules = new RuleTable(opts.config.ipv6Aggregate.prefixLength);
    this.offences = new Offences(opts.config.offenceMemoryS);
    this.verdicts = new VerdictLog(opts.config.verdictLogSize, opts.config.verdictLogBytes);
    this.queue = new EnforcementQueue(
      opts.enforcer,
      { desired: () => this.rules.active(nowS()), markEnforced: (rules, ok) => this.markEnforced(rules, ok) },
      opts.metrics,
      opts.logger,
    );
    this.warmup = new Warmup(opts.config.warmup, { store: this.store, metrics: opts.metrics, log: opts.logger, dryRun: opts.enforcer.name === "dry-run", announce: (phase, detail, by) => this.publishRuleEvent(RuleEvent_Kind.KIND_PHASE, undefined, by, { phase, detail }) });
    this.fleet = new Fleet({ nc: opts.nc, instance: this.instance, version: this.version, metricsPort: opts.metricsPort ?? 0, metrics: opts.metrics, logger: opts.logger, idle: () => this.idle() });
  }

  get enforcer(): Enforcer {
    return this.opts.enforcer;
  }

  get config(): RulesConfig {
    return this.opts.config;
  }

  async start(): Promise<void> {
    const { nc, enforcer } = this.opts;
    this.opts.metrics.enforcerFallback.set(enforcer instanceof DryRunEnforcer && enforcer.fallback ? 1 : 0);
    await this.store.open();
    const { rules, offences } = await this.store.loadAll((key, problem) => {
      this.opts.metrics.quarantined.inc({ kind: key.startsWith("rule.") ? "rule" : key.startsWith("offence.") ? "offence" : "other" });
      this.log.error({ key, problem, bucket: this.opts.config.bucket }, "rule store record quarantined: failed its checks, not loaded (left in the bucket)");
    });
    this.offences.load(offences);
    const now = nowS();
    for (const s of rules.values()) {
      if (isActive(s.rule, now)) this.rules.set(s);
      else this.store.deleteRule(s.rule.id);
    }
    this.log.info({ rules: this.rules.size, offences: offences.size }, "rules loaded from the store");
    this.applyStaticRules();
    await this.warmup.load(now);
    try {
      await enforcer.start();
    } catch (err) {
      this.queue.problem = (err as Error).message;
      this.opts.metrics.enforcementErrors.inc({ enforcer: enforcer.name, op: "start" });
      this.log.error({ err }, "enforcer failed to start; retrying through reconciliation");
    }
    enforcer.onExpired((id) => this.kernelExpired(id));
    enforcer.onOverrun?.(() => this.queue.requestReconcile());
    await this.queue.reconcileNow();

    const on = (subject: string, handle: (data: Uint8Array, subject: string) => void) =>
      this.subs.push(
        nc.subscribe(subject, {
          callback: (err, msg) => {
            if (!err) handle(msg.data, msg.subject);
          },
        }),
      );
    on(subjects.verdictsAll, (d, s) => this.onVerdictMessage(d, s));
    on(subjects.endOfStreamAll, (d, s) => this.fleet.onEndOfStream(d, s));

    this.timers.push(setInterval(() => this.sweep(), 1000));
    this.timers.push(setInterval(() => this.queue.requestReconcile(), this.opts.config.reconcileIntervalS * 1000));
    if (enforcer.check) this.timers.push(setInterval(() => void this.queue.probe(), 5000));
    this.timers.push(setInterval(() => this.forgetOldOffences(), 3600_000));
    this.forgetOldOffences();
    this.fleet.start();
    this.updateGauges();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const s of this.subs) s.unsubscribe();
    // The goodbye is published at once; its flush is not waited for: with NATS away that would hold the shutdown.
    void this.fleet.stop();
    await this.queue.stop();
    await this.store.close();
    await this.opts.enforcer.close();
  }

  /** Rule store writes not yet acknowledged by NATS. */
  get storeBacklog(): number {
    return this.store.backlog;
  }

  /** Resolves once queued enforcement is done (tests, end-of-stream relay). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  // ---- verdicts: intake -> decide -> commit ----------------------------------

  onVerdictMessage(data: Uint8Array, subject: string): void {
    const received = performance.now();
    const { metrics } = this.opts;
    const read = readVerdict(data, subject, this.opts.config.maxVerdictBytes);
    if (isRejected(read)) {
      metrics.malformed.inc({ reason: read.reason });
      if (read.log) this.log.warn({ subject, id: read.id, problem: read.problem }, read.reason === "undecodable" ? "malformed verdict rejected" : "invalid verdict rejected");
      return;
    }
    const { verdict: v, address } = read;
    metrics.verdicts.inc({ detector: v.detector });
    this.fleet.countVerdict(v.sourceId);
    const now = nowS();
    if (address) {
      // A rule past its expiry that the sweep has not reached yet ends here, announced, before
      // the same source can be blocked again under the same id.
      const { prefixLength, hosts } = this.opts.config.ipv6Aggregate;
      for (const id of [hostRuleId(address), address.bytes.length === 16 && hosts ? blockRuleId(prefixCidrOf(address, prefixLength)) : 0]) {
        const stale = this.rules.get(id);
        if (stale && !isActive(stale.rule, now)) this.expire(stale.rule, "expiry");
      }
    }
    if (this.simulatesReplay(v)) {
      metrics.decisions.inc({ outcome: "replay-simulated" });
      const record: VerdictRecord = { verdict: v, outcome: "replay-simulated", ruleId: 0, receivedAt: nowS() };
      this.verdicts.add(record, data.length);
      this.emit("verdict", record);
      return;
    }
    const decided = decide(this.decideState, v, address, now);
    const { decision, ruleId, change } = this.warmup.simulate(decided, now) ?? decided;
    this.commit(change, received);
    if (decision.outcome === "table-full") this.refused(decision.reason);
    metrics.decisions.inc({ outcome: decision.outcome });
    metrics.capTokens.set(this.policy.capTokens);
    const record: VerdictRecord = { verdict: v, outcome: decision.outcome, ruleId, receivedAt: nowS() };
    this.verdicts.add(record, data.length);
    this.log.debug({ verdict: v.id, address: v.address, outcome: decision.outcome, reason: decision.reason }, "decision");
    this.emit("verdict", record);
  }

  /** A replay's verdicts never block on an enforcing service unless rules.enforceReplays (F28). */
  private simulatesReplay(v: Verdict): boolean {
    const { sourceId } = v;
    if (this.opts.config.enforceReplays || this.opts.enforcer.name === "dry-run" || !isReplay(v)) return false;
    if (!this.replayWarned.has(sourceId) && this.replayWarned.size < 1000) {
      this.replayWarned.add(sourceId);
      this.log.warn({ sourceId }, "verdicts from a replayed capture are recorded, not enforced (rules.enforceReplays: true to block)");
    }
    return true;
  }

  private get decideState(): DecideState {
    const c = this.opts.config;
    return { table: this.rules, offences: this.offences, policy: this.policy, verdicts: this.verdicts, by: this.by, maxAutomatic: c.maxAutomaticRules, aggregate: c.ipv6Aggregate };
  }

  /** An automatic block refused at the limit: counted always, logged at most once a minute. */
  private refused(reason: string): void {
    this.opts.metrics.automaticRefused.inc();
    const now = Date.now();
    this.refusedSinceLog++;
    if (now - this.refusedLoggedAt < 60_000) return;
    this.log.error({ refused: this.refusedSinceLog, limit: this.opts.config.maxAutomaticRules, reason }, "automatic blocks refused: the automatic rules reached rules.maxAutomaticRules");
    this.refusedLoggedAt = now;
    this.refusedSinceLog = 0;
  }

  /** Applies a decision's change: table, store (one write), RuleEvent and enforcement queue. */
  private commit(change: RuleChange, received: number): void {
    switch (change.kind) {
      case "none":
        return;
      case "attach":
        this.rules.set(change.stored);
        this.store.saveRule(change.stored, change.added);
        return;
      case "agree": {
        const { rule } = change.stored;
        if (change.enforce) void this.queue.enforce([rule], []);
        this.putRule(change.stored, "updated", this.by, false, change.added);
        const address = rule.srcCidr.slice(0, rule.srcCidr.lastIndexOf("/"));
        const o = change.until ? this.offences.extendBlock(address, rule.decidedTs, change.until) : null;
        if (o) this.store.saveOffence(address, o);
        return;
      }
      case "add": {
        const { rule } = change.stored;
        for (const r of change.replaces) void this.unset(r, RuleEvent_Kind.KIND_REMOVED, this.by, "aggregated", true);
        // Enforcement starts first; persisting and announcing happen while the kernel works.
        const enforced = this.queue.enforce([rule], []);
        this.offences.set(change.address, change.offence);
        this.rules.set(change.stored);
        this.store.saveBlock(change.stored, change.record, change.address, change.offence);
        this.announce("added", change.stored.rule, rule.createdBy);
        void enforced.then((ok) => {
          if (!ok) return;
          const latencyMs = performance.now() - received;
          this.opts.metrics.latency.observe(latencyMs / 1000);
          this.emit("enforced", { rule, latencyMs });
        });
      }
    }
  }

  private putRule(s: RuleEntry, kind: "added" | "updated", by: string, fresh: boolean, add: Additions): void {
    this.rules.set(s);
    this.store.saveRule(s, add, fresh);
    this.announce(kind, s.rule, by);
  }

  private announce(kind: "added" | "updated", rule: Rule, by: string): void {
    if (kind === "added") this.opts.metrics.added.inc({ origin: originName(rule.origin) });
    this.publishRuleEvent(kind === "added" ? RuleEvent_Kind.KIND_ADDED : RuleEvent_Kind.KIND_UPDATED, rule, by);
  }

  /** `phase`: a KIND_PHASE event (the warm-up began or ended), which has no rule. */
  private publishRuleEvent(kind: RuleEvent_Kind, rule: Rule | undefined, by: string, phase?: { phase: string; detail: string }): void {
    const ev = RuleEvent.fromPartial({ kind, rule, ts: nowS(), by, ...phase });
    try {
      this.opts.nc.publish(subjects.ruleEvents, codecs.ruleEvent.encode(ev));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "cannot publish rule event");
    }
    this.emit("rule", ev);
  }

  /** Ends a rule (the table, the store, its RuleEvent); `removal` also takes it out of the kernel. */
  private unset(rule: Rule, kind: RuleEvent_Kind.KIND_EXPIRED | RuleEvent_Kind.KIND_REMOVED, by: string, cause: string, removal: boolean): Promise<boolean> | undefined {
    this.rules.delete(rule.id);
    this.store.deleteRule(rule.id);
    if (kind === RuleEvent_Kind.KIND_EXPIRED) this.opts.metrics.expired.inc({ origin: originName(rule.origin) });
    else this.opts.metrics.removed.inc({ cause });
    this.publishRuleEvent(kind, rule, by);
    return removal ? this.queue.enforce([], [rule]) : undefined;
  }

  private markEnforced(rules: Rule[], ok: boolean): void {
    const enforced = ok && this.opts.enforcer.name !== "dry-run";
    for (const r of rules) {
      const s = this.rules.get(r.id);
      if (!s || s.rule.enforced === enforced) continue;
      s.rule.enforced = enforced;
      this.store.saveRule(s);
    }
  }

  private updateGauges(): void {
    const g = this.opts.metrics.activeRules;
    g.reset();
    for (const { origin, action, n } of this.rules.counts(nowS())) g.set({ origin, action }, n);
    this.opts.metrics.storeBacklog.set(this.store.backlog);
  }

  /** Offences older than offenceMemoryS no longer count: dropped from memory and from the bucket. */
  private forgetOldOffences(): void {
    for (const address of this.offences.forgetExpired(nowS())) this.store.deleteOffence(address);
  }

  // ---- expiry: the sweep is the clock ----------------------------------------

  private sweep(): void {
    this.warmup.tick(nowS());
    for (const r of this.rules.expired(nowS())) this.expireOnceRemoved(r);
    this.updateGauges();
  }

  /**
   * Takes a rule past its expiry out of the kernel, then ends it and announces it. Whoever hears
   * the expiry may act on it at once (a client retries, a user watching the console): announced
   * before the kernel let go, its first packets would still be dropped. Until then the rule stays
   * in the table, inactive; a verdict for its address meanwhile ends it at once (expire()) before
   * deciding, and a rule of the same id blocked again is not this one.
   */
  private expireOnceRemoved(rule: Rule): void {
    if (this.expiring.has(rule.id)) return;
    this.expiring.add(rule.id);
    void this.queue.enforce([], [rule]).then(() => {
      this.expiring.delete(rule.id);
      if (this.rules.get(rule.id)?.rule === rule) void this.unset(rule, RuleEvent_Kind.KIND_EXPIRED, "expiry", "expiry", false);
    });
  }

  private expire(rule: Rule, by: string): void {
    if (this.rules.get(rule.id)) void this.unset(rule, RuleEvent_Kind.KIND_EXPIRED, by, "expiry", true);
  }

  /** The kernel timed a rule out: if it is due, the state follows (the kernel needs no removal); if not, it is put back. */
  private kernelExpired(id: number): void {
    const s = this.rules.get(id);
    if (!s) return;
    if (s.rule.expiresAt && s.rule.expiresAt <= nowS() + 2) void this.unset(s.rule, RuleEvent_Kind.KIND_EXPIRED, "kernel", "expiry", false);
    else {
      this.log.warn({ id }, "the kernel expired a rule that is still desired; re-adding");
      this.queue.requestReconcile();
    }
  }

  /** Makes the CONFIG rules match `rules.staticRules`: new ones added, changed ones replaced, dropped ones removed. */
  private applyStaticRules(): void {
    const { removed, put } = staticRuleChanges(this.opts.config.staticRules, [...this.rules.values()], nowS());
    for (const rule of removed) void this.unset(rule, RuleEvent_Kind.KIND_REMOVED, "config", "config", false);
    for (const { stored, added, fresh } of put) this.putRule(stored, fresh ? "added" : "updated", "config", fresh, added);
  }

  // ---- API operations ----------------------------------------------------------

  /**
   * A manual rule from the API (origin MANUAL); the service itself also adds FEEDBACK rules through here.
   * `guard`: the lockout check for API calls (the caller's session sources, and `force`); FEEDBACK skips it.
   */
  async addRule(input: Rule, ttlS: number, by: string, internal = false, guard: { sessions: string[]; force: boolean } = { sessions: [], force: false }): Promise<Rule> {
    const now = nowS();
    const full = manualRule(input, ttlS, by, now, internal);
    if (!internal) checkLockout(full, this.opts.allowlist.entries, guard.sessions, guard.force);
    const existing = this.rules.get(full.id);
    const history = [{ ts: now, event: existing ? ("updated" as const) : ("added" as const), by, why: full.reason }];
    this.putRule({ rule: full, evidence: existing?.evidence ?? [] }, existing ? "updated" : "added", by, !existing, { history });
    await this.queue.enforce([full], []);
    return this.rules.get(full.id)?.rule ?? full;
  }

  /** An operator keeps an active rule, of any origin but CONFIG, in force longer (see extend-rule.ts). */
  async extendRule(req: ExtendRequest): Promise<Rule> {
    const { stored: s, added } = extendedRule(this.rules.get(req.id), req, this.opts.allowlist.entries, nowS());
    this.putRule(s, "updated", req.by, false, added);
    await this.queue.enforce([s.rule], []);
    return this.rules.get(s.rule.id)?.rule ?? s.rule;
  }

  async deleteRule(id: number, by: string, cause = "deleted"): Promise<boolean> {
    const s = this.rules.get(id);
    if (!s) return false;
    await this.unset(s.rule, RuleEvent_Kind.KIND_REMOVED, by, cause, true);
    return true;
  }

  /**
   * Copies the kernel's per-rule hit and byte counts onto the rules (kmod);
   * at most once a second, whatever the number of callers.
   */
  async refreshCounters(): Promise<void> {
    const e = this.opts.enforcer;
    if (!e.counters || Date.now() - this.countersAt < 1000) return;
    this.countersAt = Date.now();
    try {
      const counts = await e.counters();
      for (const [id, c] of counts) {
        const s = this.rules.get(id);
        if (s) {
          s.rule.hits = c.hits;
          s.rule.bytes = c.bytes;
        }
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "cannot read rule counters");
    }
  }

  listRules(req: Partial<ListRulesRequest>): Rule[] {
    return this.rules.list(req, nowS());
  }

  listVerdicts(req: Partial<ListVerdictsRequest>): VerdictRecord[] {
    return this.verdicts.list(req);
  }

  /** A rule's whole record (its history and verdicts too), as stored or about to be; null when there is none. */
  ruleRecord(id: number): Promise<StoredRule | null> {
    return this.store.readRule(id);
  }

  /** A verdict was wrong: its rules go, its source is allowed for a while, the detector is told (see false-alarm.ts). */
  markFalseAlarm(verdictId: string, allowTtlS: number, comment: string, by: string): Promise<{ removed: number[]; allowRuleId: number }> {
    return markFalseAlarm(this.falseAlarmHost, { verdictId, allowTtlS, comment, by });
  }

  private get falseAlarmHost(): FalseAlarmHost {
    return {
      rules: this.rules,
      ruleRecord: (id) => this.store.readRule(id),
      record: (id) => this.verdicts.get(id),
      deleteRule: (id, by, cause) => this.deleteRule(id, by, cause),
      addRule: (rule, ttlS, by) => this.addRule(rule, ttlS, by, true),
      saveRule: (s, add) => this.store.saveRule(s, add),
      forgetOffender: (address) => {
        this.offences.forget(address);
        this.store.deleteOffence(address);
        this.policy.forget(address);
      },
      publish: (fb) => this.opts.nc.publish(subjects.feedback, codecs.feedback.encode(fb)),
      allowTtlS: this.opts.config.falseAlarmAllowTtlS,
      log: this.log,
    };
  }

  status(): Status {
    const rulesByOrigin: Record<string, number> = {};
    let activeRules = 0;
    for (const { origin, n } of this.rules.counts(nowS())) {
      activeRules += n;
      rulesByOrigin[origin] = (rulesByOrigin[origin] ?? 0) + n;
    }
    const e = this.opts.enforcer;
    const problems = [this.queue.problem && `last error: ${this.queue.problem}`, this.store.lastError && `store: ${this.store.lastError} (${this.store.backlog} writes pending)`].filter(Boolean);
    return {
      enforcer: e.name,
      enforcerDetail: [e.detail, ...problems].join("; "),
      dryRun: e.name === "dry-run",
      activeRules,
      rulesByOrigin,
      detectors: this.fleet.detectors(),
      version: this.version,
      startedAt: this.startedAt,
      allowlist: this.opts.allowlist.entries.map(({ cidr, why }) => ({ cidr, why })),
      ...this.warmup.status(nowS()),
    };
  }
}
