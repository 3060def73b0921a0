import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { codecs, DecodeError, subjects, type NatsConnection, type Subscription } from "@vigil/bus";
import { AddressError, formatAddress, parseAddress, parseCidr, cidrContains, type Cidr } from "@vigil/frames";
import type { Logger } from "@vigil/lifecycle";
import {
  Action,
  Direction,
  EndOfStream,
  Feedback,
  FeedbackKind,
  Heartbeat,
  Origin,
  Rule,
  RuleEvent,
  RuleEvent_Kind,
  Verdict,
  type DetectorStatus,
  type ListRulesRequest,
  type ListVerdictsRequest,
  type Status,
  type VerdictRecord,
} from "@vigil/proto";
import type { Allowlist } from "./allowlist.js";
import type { RulesConfig } from "./config.js";
import type { Enforcer } from "./enforcers/types.js";
import { InvalidArgumentError, NotFoundError } from "./errors.js";
import type { RulesMetrics } from "./metrics.js";
import { canonicalRule, hostCidr, isActive, originName, protocolNumber, validateTtl } from "./model.js";
import { Policy, type Decision } from "./policy.js";
import { RuleStore, type HistoryEntry, type Offence, type StoredRule } from "./store.js";

export const SERVICE_VERSION = "0.1.0";
const DETECTOR_RULE_PRIORITY = 1000;
const FEEDBACK_RULE_PRIORITY = 10;

export interface RulesServiceOptions {
  config: RulesConfig;
  nc: NatsConnection;
  enforcer: Enforcer;
  allowlist: Allowlist;
  metrics: RulesMetrics;
  logger: Logger;
  instance?: string;
  metricsPort?: number;
}

interface Watchers {
  verdict: [VerdictRecord];
  rule: [RuleEvent];
  /** A decided rule took effect: latency from the verdict's arrival. */
  enforced: [{ rule: Rule; latencyMs: number }];
}

interface SeenInstance {
  hb: Heartbeat;
  at: number;
}

function nowS(): number {
  return Date.now() / 1000;
}

/** Checks what the policy relies on; returns the problem or null. */
export function verdictProblem(v: Verdict, subject: string): string | null {
  if (!v.id) return "missing id";
  if (!v.detector) return "missing detector";
  const fromSubject = subject.startsWith("vigil.verdicts.") ? subject.slice("vigil.verdicts.".length) : v.detector;
  if (fromSubject !== v.detector) return `detector "${v.detector}" published on ${subject}`;
  if (!Number.isFinite(v.score) || !Number.isFinite(v.threshold)) return "score or threshold is not a finite number";
  if (!v.aggregate) {
    if (!v.address) return "no address on a non-aggregate verdict";
    try {
      parseAddress(v.address);
    } catch {
      return `unparseable address "${v.address.slice(0, 64)}"`;
    }
  }
  return null;
}

/**
 * The rules service: verdicts in, decisions out, rules enforced, persisted
 * and announced. One instance per host.
 */
export class RulesService extends EventEmitter<Watchers> {
  readonly rules = new Map<number, StoredRule>();
  /** Address-only allow rules, consulted on every decision. */
  private allowIndex = new Map<number, { cidr: Cidr; rule: Rule }>();
  private ruleIdCache = new Map<string, number>();
  private countersAt = 0;
  private offences = new Map<string, Offence>();
  private verdictLog: VerdictRecord[] = [];
  private verdictById = new Map<string, VerdictRecord>();
  private policy: Policy;
  private store: RuleStore;
  private subs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private instances = new Map<string, SeenInstance>();
  private eos = new Map<string, Map<string, Set<number>>>();
  private eosDone = new Set<string>();
  private verdictsBySource = new Map<string, number>();
  private readonly startedAt = nowS();
  private readonly instance: string;
  private readonly log: Logger;
  private enforcerProblem = "";
  private stopped = false;

  // Enforcement queue: changes coalesce while the back end is busy.
  private upserts = new Map<number, Rule>();
  private removals = new Map<number, Rule>();
  private waiters: Array<(ok: boolean) => void> = [];
  private reconcileWanted = false;
  private loop: Promise<void> | null = null;
  private reconcileRetry: NodeJS.Timeout | null = null;

  constructor(private readonly opts: RulesServiceOptions) {
    super();
    this.setMaxListeners(0);
    this.log = opts.logger;
    this.instance = opts.instance ?? `${hostname()}/rules/${process.pid}`;
    this.policy = new Policy(opts.config, opts.allowlist);
    this.store = new RuleStore(opts.nc, opts.config.bucket, opts.logger);
  }

  get enforcer(): Enforcer {
    return this.opts.enforcer;
  }

  get config(): RulesConfig {
    return this.opts.config;
  }

  async start(): Promise<void> {
    const { nc, enforcer } = this.opts;
    await this.store.open();
    const { rules, offences } = await this.store.loadAll();
    this.offences = offences;
    const now = nowS();
    for (const s of rules) {
      if (isActive(s.rule, now)) this.setRule(s);
      else this.store.deleteRule(s.rule.id);
    }
    this.log.info({ rules: this.rules.size, offences: offences.size }, "rules loaded from the store");
    this.applyStaticRules();
    try {
      await enforcer.start();
    } catch (err) {
      this.enforcerProblem = (err as Error).message;
      this.opts.metrics.enforcementErrors.inc({ enforcer: enforcer.name, op: "start" });
      this.log.error({ err }, "enforcer failed to start; retrying through reconciliation");
    }
    enforcer.onExpired((id) => this.kernelExpired(id));
    enforcer.onOverrun?.(() => this.requestReconcile());
    await this.reconcileNow();

    const on = (subject: string, handle: (data: Uint8Array, subject: string) => void) =>
      this.subs.push(
        nc.subscribe(subject, {
          callback: (err, msg) => {
            if (!err) handle(msg.data, msg.subject);
          },
        }),
      );
    on(subjects.verdictsAll, (d, s) => this.onVerdictMessage(d, s));
    on(subjects.heartbeatAll, (d, s) => this.onHeartbeat(d, s));
    on(subjects.endOfStreamAll, (d, s) => this.onEndOfStream(d, s));

    this.timers.push(setInterval(() => this.sweep(), 1000));
    this.timers.push(setInterval(() => this.requestReconcile(), this.opts.config.reconcileIntervalS * 1000));
    if (enforcer.check) this.timers.push(setInterval(() => void this.probeEnforcer(), 5000));
    this.timers.push(setInterval(() => this.forgetOldOffences(), 3600_000));
    this.forgetOldOffences();
    this.timers.push(setInterval(() => this.heartbeat(false), 2000));
    this.heartbeat(false);
    void this.watchBus();
    this.updateGauges();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.reconcileRetry) clearTimeout(this.reconcileRetry);
    for (const s of this.subs) s.unsubscribe();
    this.heartbeat(true);
    if (this.loop) await this.loop;
    await this.store.close();
    await this.opts.enforcer.close();
  }

  /** Rule store writes not yet acknowledged by NATS. */
  get storeBacklog(): number {
    return this.store.backlog;
  }

  /** Resolves once queued enforcement is done (tests, end-of-stream relay). */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  private async watchBus(): Promise<void> {
    for await (const s of this.opts.nc.status()) {
      if (this.stopped) return;
      // Heartbeats of others may have been missed; the store writes resume by themselves.
      if (s.type === "reconnect") this.heartbeat(false);
    }
  }

  // ---- verdicts -----------------------------------------------------------

  onVerdictMessage(data: Uint8Array, subject: string): void {
    const received = performance.now();
    const { metrics } = this.opts;
    let v: Verdict;
    try {
      v = codecs.verdict.decode(data, subject);
    } catch (err) {
      metrics.malformed.inc({ reason: "undecodable" });
      if (err instanceof DecodeError) this.log.warn({ subject, err: err.message }, "malformed verdict rejected");
      return;
    }
    const problem = verdictProblem(v, subject);
    if (problem) {
      metrics.malformed.inc({ reason: problem.split(" ")[0] === "detector" ? "detector-mismatch" : problem.replace(/ ".*$/, "").replace(/\s+/g, "-") });
      this.log.warn({ subject, id: v.id, problem }, "invalid verdict rejected");
      return;
    }
    metrics.verdicts.inc({ detector: v.detector });
    if (!v.aggregate) {
      let b = parseAddress(v.address);
      // An IPv4-mapped IPv6 address is the IPv4 host: a v6 rule would never match its packets.
      if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) b = b.subarray(12);
      v.address = formatAddress(b, 0, b.length);
    }
    if (v.sourceId) this.verdictsBySource.set(v.sourceId, (this.verdictsBySource.get(v.sourceId) ?? 0) + 1);
    this.decide(v, received);
  }

  private offencesOf(address: string): number {
    const o = this.offences.get(address);
    if (!o) return 0;
    if (nowS() - o.lastAt > this.opts.config.offenceMemoryS) {
      this.offences.delete(address);
      this.store.deleteOffence(address);
      return 0;
    }
    return o.count;
  }

  /** The id of the host block rule for a canonical address (memoized: hot path). */
  private detectorRuleId(address: string): number {
    let id = this.ruleIdCache.get(address);
    if (id === undefined) {
      id = canonicalRule(Rule.fromPartial({ action: Action.ACTION_DROP, srcCidr: hostCidr(address), direction: Direction.DIRECTION_BOTH })).rule.id;
      if (this.ruleIdCache.size >= 100_000) this.ruleIdCache.clear();
      this.ruleIdCache.set(address, id);
    }
    return id;
  }

  /** An active allow rule covering the address, described, or undefined. */
  private allowRuleFor(address: string): string | undefined {
    if (this.allowIndex.size === 0) return undefined;
    const b = parseAddress(address);
    const now = nowS();
    for (const { cidr, rule: r } of this.allowIndex.values()) {
      if (!isActive(r, now)) continue;
      if (cidrContains(cidr, b, 0, b.length)) return r.origin === Origin.ORIGIN_FEEDBACK ? `false-alarm allow rule ${r.id}` : `allow rule ${r.id}`;
    }
    return undefined;
  }

  private setRule(s: StoredRule): void {
    this.rules.set(s.rule.id, s);
    const r = s.rule;
    if (r.action === Action.ACTION_ACCEPT && !r.dstCidr && !r.protocol && !r.dportMin && !r.dportMax) this.allowIndex.set(r.id, { cidr: parseCidr(r.srcCidr), rule: r });
    else this.allowIndex.delete(r.id);
  }

  private unsetRule(id: number): void {
    this.rules.delete(id);
    this.allowIndex.delete(id);
  }

  private decide(v: Verdict, received: number): void {
    const { metrics } = this.opts;
    let decision: Decision;
    let ruleId = 0;
    if (v.aggregate) {
      decision = this.policy.decide(v, { offences: 0, alreadyBlocked: false });
    } else {
      const id = this.detectorRuleId(v.address);
      // A rule past its expiry that the sweep has not reached yet ends here, announced, before
      // the same source can be blocked again under the same id.
      const stale = this.rules.get(id);
      if (stale && !isActive(stale.rule, nowS())) this.expire(stale.rule, "expiry");
      const existing = this.rules.get(id);
      const blocked = !!existing;
      decision = this.policy.decide(v, { offences: this.offencesOf(v.address), alreadyBlocked: blocked, allowedBy: this.allowRuleFor(v.address) });
      if (decision.outcome === "blocked") {
        ruleId = id;
        if (blocked) this.attachVerdict(existing!, v, decision);
        else this.block(v, decision, id, received);
      }
    }
    metrics.decisions.inc({ outcome: decision.outcome });
    metrics.capTokens.set(this.policy.capTokens);
    const record: VerdictRecord = { verdict: v, outcome: decision.outcome, ruleId, receivedAt: nowS() };
    this.remember(record);
    this.log.debug({ verdict: v.id, address: v.address, outcome: decision.outcome, reason: decision.reason }, "decision");
    this.emit("verdict", record);
  }

  private remember(record: VerdictRecord): void {
    this.verdictLog.push(record);
    this.verdictById.set(record.verdict!.id, record);
    const excess = this.verdictLog.length - this.opts.config.verdictLogSize;
    if (excess > 0) for (const old of this.verdictLog.splice(0, excess)) if (this.verdictById.get(old.verdict!.id) === old) this.verdictById.delete(old.verdict!.id);
  }

  private attachVerdict(s: StoredRule, v: Verdict, d: Decision): void {
    if (s.rule.verdictIds.includes(v.id)) return;
    const named = s.rule.origin === Origin.ORIGIN_DETECTOR ? s.rule.detector.split("+").filter(Boolean) : [];
    const joining = d.agreement && named.length > 0 ? d.detectors.filter((x) => !named.includes(x)) : [];
    if (joining.length) return this.agree(s, v, [...new Set([...named, ...joining])].sort());
    s.rule.verdictIds = [...s.rule.verdictIds, v.id].slice(-20);
    s.verdicts = [...s.verdicts, v].slice(-5);
    this.store.saveRule(s);
  }

  /**
   * Another detector agrees on an already blocked source: the rule gets what it
   * would have had if the detectors had agreed before the block (their names,
   * the agreement TTL counted from its creation, never shorter), and keeps the
   * earliest capture time of decision, so the rule ends the same whichever
   * verdict arrived first. No new offence is counted.
   */
  private agree(s: StoredRule, v: Verdict, detectors: string[]): void {
    const now = nowS();
    const by = `vigil-rules/${this.instance}`;
    const verdicts = [...s.verdicts, v];
    const ts = v.lastTs || v.firstTs;
    const ttlS = this.policy.ttlFor(Math.max(0, s.rule.offences - 1), true);
    const rule: Rule = {
      ...s.rule,
      detector: detectors.join("+"),
      reason: this.policy.agreementReason(verdicts),
      verdictIds: [...s.rule.verdictIds, v.id].slice(-20),
      expiresAt: s.rule.expiresAt > 0 ? Math.max(s.rule.expiresAt, s.rule.createdAt + ttlS) : 0,
      decidedTs: s.rule.decidedTs > 0 && ts > 0 ? Math.min(s.rule.decidedTs, ts) : s.rule.decidedTs || ts,
    };
    const history: HistoryEntry[] = [...s.history, { ts: now, event: "updated", by, why: rule.reason, verdictIds: [v.id] }];
    if (rule.expiresAt !== s.rule.expiresAt) void this.enforce([rule], []);
    this.putRule({ rule, history, verdicts: verdicts.slice(-5) }, "updated", by, false);
  }

  private block(v: Verdict, d: Decision, id: number, received: number): void {
    const now = nowS();
    const offences = d.offences + 1;
    this.offences.set(v.address, { count: offences, lastAt: now });
    this.store.saveOffence(v.address, { count: offences, lastAt: now });
    const verdicts = d.verdictIds.map((vid) => (vid === v.id ? v : this.verdictById.get(vid)?.verdict)).filter((x): x is Verdict => !!x);
    const reason = d.agreement ? this.policy.agreementReason(verdicts) : d.reason;
    const rule = Rule.fromPartial({
      id,
      action: Action.ACTION_DROP,
      srcCidr: hostCidr(v.address),
      direction: Direction.DIRECTION_BOTH,
      priority: DETECTOR_RULE_PRIORITY,
      origin: Origin.ORIGIN_DETECTOR,
      reason,
      detector: d.detectors.join("+"),
      verdictIds: d.verdictIds,
      createdBy: `vigil-rules/${this.instance}`,
      createdAt: now,
      expiresAt: now + d.ttlS,
      offences,
      enforced: false,
      decidedTs: v.lastTs || v.firstTs,
    });
    const stored: StoredRule = { rule, history: [{ ts: now, event: "added", by: rule.createdBy, why: reason, verdictIds: d.verdictIds }], verdicts };
    // Enforcement starts first; persisting and announcing happen while the kernel works.
    const enforced = this.enforce([rule], []);
    this.putRule(stored, "added", rule.createdBy, true);
    void enforced.then((ok) => {
      if (!ok) return;
      const latencyMs = performance.now() - received;
      this.opts.metrics.latency.observe(latencyMs / 1000);
      this.emit("enforced", { rule, latencyMs });
    });
  }

  private putRule(s: StoredRule, kind: "added" | "updated", by: string, fresh: boolean): void {
    this.setRule(s);
    this.store.saveRule(s, fresh);
    if (kind === "added") this.opts.metrics.added.inc({ origin: originName(s.rule.origin) });
    this.publishRuleEvent(kind === "added" ? RuleEvent_Kind.KIND_ADDED : RuleEvent_Kind.KIND_UPDATED, s.rule, by);
  }

  private publishRuleEvent(kind: RuleEvent_Kind, rule: Rule, by: string): void {
    const ev = RuleEvent.fromPartial({ kind, rule, ts: nowS(), by });
    try {
      this.opts.nc.publish(subjects.ruleEvents, codecs.ruleEvent.encode(ev));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "cannot publish rule event");
    }
    this.emit("rule", ev);
  }

  private updateGauges(): void {
    const counts = new Map<string, number>();
    const now = nowS();
    for (const s of this.rules.values()) {
      if (!isActive(s.rule, now)) continue;
      const key = `${s.rule.origin}|${s.rule.action}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const g = this.opts.metrics.activeRules;
    g.reset();
    for (const [key, n] of counts) {
      const [origin, action] = key.split("|").map(Number);
      g.set({ origin: originName(origin), action: action === Action.ACTION_ACCEPT ? "accept" : "drop" }, n);
    }
    this.opts.metrics.storeBacklog.set(this.store.backlog);
  }

  // ---- enforcement queue --------------------------------------------------

  private enforce(upserts: Rule[], removals: Rule[]): Promise<boolean> {
    for (const r of removals) {
      this.upserts.delete(r.id);
      this.removals.set(r.id, r);
    }
    for (const r of upserts) {
      this.removals.delete(r.id);
      this.upserts.set(r.id, r);
    }
    const done = new Promise<boolean>((resolve) => this.waiters.push(resolve));
    this.runLoop();
    return done;
  }

  requestReconcile(): void {
    this.reconcileWanted = true;
    this.runLoop();
  }

  private runLoop(): void {
    if (this.loop || this.stopped) return;
    this.loop = this.drainQueue().finally(() => {
      this.loop = null;
      if ((this.upserts.size || this.removals.size || this.reconcileWanted) && !this.stopped) this.runLoop();
    });
  }

  private async drainQueue(): Promise<void> {
    const { enforcer, metrics } = this.opts;
    while (this.upserts.size || this.removals.size || this.reconcileWanted) {
      if (this.reconcileWanted) {
        this.reconcileWanted = false;
        this.upserts.clear();
        this.removals.clear();
        const waiters = this.waiters.splice(0);
        const ok = await this.reconcileNow();
        for (const w of waiters) w(ok);
        continue;
      }
      const up = [...this.upserts.values()];
      const rem = [...this.removals.values()];
      this.upserts.clear();
      this.removals.clear();
      const waiters = this.waiters.splice(0);
      let ok = true;
      try {
        await enforcer.apply(up, rem);
        this.enforcerProblem = "";
      } catch (err) {
        ok = false;
        metrics.enforcementErrors.inc({ enforcer: enforcer.name, op: "apply" });
        this.enforcerProblem = (err as Error).message;
        this.log.error({ err: (err as Error).message }, "enforcement failed; reconciling");
        this.reconcileWanted = true;
      }
      this.markEnforced(up, ok);
      for (const w of waiters) w(ok || !this.reconcileWanted);
    }
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

  private async reconcileNow(): Promise<boolean> {
    const { enforcer, metrics } = this.opts;
    const now = nowS();
    const desired = [...this.rules.values()].map((s) => s.rule).filter((r) => isActive(r, now));
    try {
      const res = await enforcer.reconcile(desired);
      this.enforcerProblem = "";
      metrics.reconciles.inc({ result: "ok" });
      if (res.added || res.removed) this.log.info(res, "reconciled the enforced rules");
      this.markEnforced(desired, true);
      return true;
    } catch (err) {
      metrics.reconciles.inc({ result: "error" });
      metrics.enforcementErrors.inc({ enforcer: enforcer.name, op: "reconcile" });
      this.enforcerProblem = (err as Error).message;
      this.markEnforced(desired, false);
      this.log.error({ err: (err as Error).message }, "reconciliation failed; retrying in 5 s");
      if (!this.reconcileRetry && !this.stopped)
        this.reconcileRetry = setTimeout(() => {
          this.reconcileRetry = null;
          this.requestReconcile();
        }, 5000);
      return false;
    }
  }

  /** Offences older than offenceMemoryS no longer count: dropped from memory and from the bucket. */
  private forgetOldOffences(): void {
    const cutoff = nowS() - this.opts.config.offenceMemoryS;
    for (const [address, o] of this.offences)
      if (o.lastAt < cutoff) {
        this.offences.delete(address);
        this.store.deleteOffence(address);
      }
  }

  private async probeEnforcer(): Promise<void> {
    if (this.loop || this.stopped) return;
    if (await this.opts.enforcer.check!()) {
      this.log.warn({ enforcer: this.opts.enforcer.name }, "enforced state was lost (firewall reload, module reload); reconciling");
      this.requestReconcile();
    }
  }

  // ---- expiry -------------------------------------------------------------

  private sweep(): void {
    const now = nowS();
    const expired: Rule[] = [];
    for (const s of this.rules.values()) if (!isActive(s.rule, now)) expired.push(s.rule);
    for (const r of expired) this.expire(r, "expiry");
    this.updateGauges();
  }

  private expire(rule: Rule, by: string): void {
    const s = this.rules.get(rule.id);
    if (!s) return;
    this.unsetRule(rule.id);
    this.store.deleteRule(rule.id);
    this.opts.metrics.expired.inc({ origin: originName(rule.origin) });
    this.publishRuleEvent(RuleEvent_Kind.KIND_EXPIRED, rule, by);
    // Kernel timeouts are whole seconds, rounded up: host entries may still be there for up to a
    // second, and a source announced expired must pass. Chain rules go now too.
    void this.enforce([], [rule]);
  }

  private kernelExpired(id: number): void {
    const s = this.rules.get(id);
    if (!s) return;
    if (s.rule.expiresAt && s.rule.expiresAt <= nowS() + 2) this.expire(s.rule, "kernel");
    else {
      this.log.warn({ id }, "the kernel expired a rule that is still desired; re-adding");
      this.requestReconcile();
    }
  }

  /** Makes the CONFIG rules match `rules.staticRules`: new ones added, changed ones replaced, dropped ones removed. */
  private applyStaticRules(): void {
    const now = nowS();
    const wanted = new Map<number, Rule>();
    this.opts.config.staticRules.forEach((sr, i) => {
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
            direction: { in: Direction.DIRECTION_INGRESS, out: Direction.DIRECTION_EGRESS, both: Direction.DIRECTION_BOTH }[sr.direction],
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
    for (const s of [...this.rules.values()])
      if (s.rule.origin === Origin.ORIGIN_CONFIG && !wanted.has(s.rule.id)) {
        this.unsetRule(s.rule.id);
        this.store.deleteRule(s.rule.id);
        this.opts.metrics.removed.inc({ cause: "config" });
        this.publishRuleEvent(RuleEvent_Kind.KIND_REMOVED, s.rule, "config");
      }
    for (const [id, rule] of wanted) {
      const existing = this.rules.get(id);
      if (existing?.rule.origin === Origin.ORIGIN_CONFIG && existing.rule.priority === rule.priority && existing.rule.expiresAt === 0) continue;
      this.putRule({ rule, history: [...(existing?.history ?? []), { ts: now, event: existing ? "updated" : "added", by: "config", why: rule.reason }], verdicts: [] }, existing ? "updated" : "added", "config", !existing);
    }
  }

  // ---- API operations ------------------------------------------------------

  /** A manual rule from the API (origin MANUAL); the service itself also adds FEEDBACK rules through here. */
  async addRule(input: Rule, ttlS: number, by: string, internal = false): Promise<Rule> {
    if (!input) throw new InvalidArgumentError("rule", "is required");
    validateTtl(ttlS, "ttl_s");
    const { rule } = canonicalRule(input, "rule");
    const origin = rule.origin === Origin.ORIGIN_UNSPECIFIED ? Origin.ORIGIN_MANUAL : rule.origin;
    if (origin !== Origin.ORIGIN_MANUAL && !(internal && origin === Origin.ORIGIN_FEEDBACK))
      throw new InvalidArgumentError("rule.origin", "only MANUAL rules can be added (DETECTOR rules come from verdicts, FEEDBACK from false alarms, CONFIG from the configuration)");
    const now = nowS();
    const existing = this.rules.get(rule.id);
    const full = Rule.fromPartial({
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
    const history: HistoryEntry[] = [...(existing?.history ?? []), { ts: now, event: existing ? "updated" : "added", by, why: full.reason }];
    this.putRule({ rule: full, history, verdicts: existing?.verdicts ?? [] }, existing ? "updated" : "added", by, !existing);
    await this.enforce([full], []);
    return this.rules.get(full.id)?.rule ?? full;
  }

  async deleteRule(id: number, by: string, cause = "deleted"): Promise<boolean> {
    const s = this.rules.get(id);
    if (!s) return false;
    this.unsetRule(id);
    this.store.deleteRule(id);
    this.opts.metrics.removed.inc({ cause });
    this.publishRuleEvent(RuleEvent_Kind.KIND_REMOVED, s.rule, by);
    await this.enforce([], [s.rule]);
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
    const now = nowS();
    let addr: Uint8Array | null = null;
    if (req.address) {
      try {
        addr = parseAddress(req.address);
      } catch (err) {
        throw new InvalidArgumentError("address", (err as AddressError).message);
      }
    }
    const out: Rule[] = [];
    for (const s of this.rules.values()) {
      const r = s.rule;
      if (!isActive(r, now)) continue;
      if (req.origin && r.origin !== req.origin) continue;
      if (req.action && r.action !== req.action) continue;
      if (addr && !cidrContains(parseCidr(r.srcCidr), addr, 0, addr.length)) continue;
      out.push(r);
    }
    out.sort((a, b) => b.createdAt - a.createdAt || a.id - b.id);
    return req.limit ? out.slice(0, req.limit) : out;
  }

  listVerdicts(req: Partial<ListVerdictsRequest>): VerdictRecord[] {
    const out: VerdictRecord[] = [];
    for (let i = this.verdictLog.length - 1; i >= 0; i--) {
      const rec = this.verdictLog[i];
      const v = rec.verdict!;
      if (req.detector && v.detector !== req.detector) continue;
      if (req.address && v.address !== req.address) continue;
      if (req.since && rec.receivedAt < req.since) continue;
      out.push(rec);
      if (req.limit && out.length >= req.limit) break;
    }
    return out;
  }

  /** The verdict as recorded: from the recent log, else from the rules that cite it. */
  findVerdict(id: string): Verdict | undefined {
    const rec = this.verdictById.get(id);
    if (rec) return rec.verdict;
    for (const s of this.rules.values()) for (const v of s.verdicts) if (v.id === id) return v;
    return undefined;
  }

  async markFalseAlarm(verdictId: string, allowTtlS: number, comment: string, by: string): Promise<{ removed: number[]; allowRuleId: number }> {
    if (!verdictId) throw new InvalidArgumentError("verdict_id", "is required");
    validateTtl(allowTtlS, "allow_ttl_s");
    const verdict = this.findVerdict(verdictId);
    if (!verdict) throw new NotFoundError(`verdict_id: no recorded verdict "${verdictId}"`);
    const removed: number[] = [];
    let allowRuleId = 0;
    if (verdict.address && !verdict.aggregate) {
      const hostRule = this.detectorRuleId(verdict.address);
      for (const s of [...this.rules.values()])
        if (s.rule.origin === Origin.ORIGIN_DETECTOR && (s.rule.id === hostRule || s.rule.verdictIds.includes(verdictId))) {
          await this.deleteRule(s.rule.id, by, "false-alarm");
          removed.push(s.rule.id);
        }
      this.offences.delete(verdict.address);
      this.store.deleteOffence(verdict.address);
      this.policy.forget(verdict.address);
      const allow = await this.addRule(
        Rule.fromPartial({
          action: Action.ACTION_ACCEPT,
          srcCidr: hostCidr(verdict.address),
          direction: Direction.DIRECTION_BOTH,
          priority: FEEDBACK_RULE_PRIORITY,
          origin: Origin.ORIGIN_FEEDBACK,
          reason: `false alarm on verdict ${verdictId}${comment ? `: ${comment}` : ""}`,
          detector: verdict.detector,
          verdictIds: [verdictId],
        }),
        allowTtlS || this.opts.config.falseAlarmAllowTtlS,
        by,
        true,
      );
      allowRuleId = allow.id;
      const s = this.rules.get(allow.id);
      if (s) {
        s.rule.verdictIds = [verdictId];
        s.verdicts = [verdict];
        this.store.saveRule(s);
      }
    }
    const rec = this.verdictById.get(verdictId);
    if (rec) rec.outcome = "false-alarm";
    const fb = Feedback.fromPartial({ verdictId, detector: verdict.detector, kind: FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, verdict, by, comment, ts: nowS() });
    this.opts.nc.publish(subjects.feedback, codecs.feedback.encode(fb));
    this.log.info({ verdict: verdictId, removed, allowRuleId, by }, "false alarm recorded");
    return { removed, allowRuleId };
  }

  status(): Status {
    const byOrigin: Record<string, number> = {};
    let active = 0;
    const now = nowS();
    for (const s of this.rules.values()) {
      if (!isActive(s.rule, now)) continue;
      active++;
      const o = originName(s.rule.origin);
      byOrigin[o] = (byOrigin[o] ?? 0) + 1;
    }
    const detectors: DetectorStatus[] = [];
    for (const { hb } of this.instances.values())
      detectors.push({ service: hb.service, instance: hb.instance, version: hb.version, lastHeartbeat: hb.ts, shards: hb.shards });
    detectors.sort((a, b) => a.service.localeCompare(b.service) || a.instance.localeCompare(b.instance));
    const e = this.opts.enforcer;
    const problems = [this.enforcerProblem && `last error: ${this.enforcerProblem}`, this.store.lastError && `store: ${this.store.lastError} (${this.store.backlog} writes pending)`].filter(Boolean);
    return {
      enforcer: e.name,
      enforcerDetail: [e.detail, ...problems].join("; "),
      dryRun: e.name === "dry-run",
      activeRules: active,
      rulesByOrigin: byOrigin,
      detectors,
      version: SERVICE_VERSION,
      startedAt: this.startedAt,
    };
  }

  // ---- heartbeats and end of stream ----------------------------------------

  private heartbeat(stopping: boolean): void {
    const hb = Heartbeat.fromPartial({ service: "rules", instance: this.instance, version: SERVICE_VERSION, host: hostname(), ts: nowS(), metricsPort: this.opts.metricsPort ?? 0, stopping });
    try {
      this.opts.nc.publish(subjects.heartbeat("rules"), codecs.heartbeat.encode(hb));
    } catch {
      /* NATS down: the next one will do */
    }
  }

  private onHeartbeat(data: Uint8Array, subject: string): void {
    let hb: Heartbeat;
    try {
      hb = codecs.heartbeat.decode(data, subject);
    } catch {
      return;
    }
    if (hb.instance === this.instance) return;
    if (hb.stopping) this.instances.delete(hb.instance);
    else this.instances.set(hb.instance, { hb, at: Date.now() });
    const cutoff = Date.now() - 30_000;
    for (const [k, v] of this.instances) if (v.at < cutoff) this.instances.delete(k);
  }

  /** Shards owned by the live members of each detector group (groups that own shards). */
  private detectorGroups(): Map<string, Set<number>> {
    const groups = new Map<string, Set<number>>();
    const cutoff = Date.now() - 10_000;
    for (const { hb, at } of this.instances.values()) {
      if (at < cutoff || hb.shards.length === 0 || hb.service === "rules" || hb.service === "capture") continue;
      let g = groups.get(hb.service);
      if (!g) groups.set(hb.service, (g = new Set()));
      for (const s of hb.shards) g.add(s);
    }
    return groups;
  }

  private onEndOfStream(data: Uint8Array, subject: string): void {
    let e: EndOfStream;
    try {
      e = codecs.endOfStream.decode(data, subject);
    } catch {
      this.opts.metrics.malformed.inc({ reason: "undecodable-eos" });
      return;
    }
    if (e.stage === "rules" || !e.sourceId || this.eosDone.has(e.sourceId)) return;
    let bySource = this.eos.get(e.sourceId);
    if (!bySource) this.eos.set(e.sourceId, (bySource = new Map()));
    let shards = bySource.get(e.stage);
    if (!shards) bySource.set(e.stage, (shards = new Set()));
    for (const s of e.shards) shards.add(s);
    this.checkEndOfStream(e.sourceId);
  }

  private checkEndOfStream(sourceId: string): void {
    const bySource = this.eos.get(sourceId);
    if (!bySource) return;
    const groups = this.detectorGroups();
    // Groups known from heartbeats must have covered their shards; a group that reported but has no live heartbeat counts as done.
    for (const [group, owned] of groups) {
      const seen = bySource.get(group);
      if (!seen) return;
      for (const s of owned) if (!seen.has(s)) return;
    }
    if (bySource.size === 0) return;
    this.eosDone.add(sourceId);
    this.eos.delete(sourceId);
    if (this.eosDone.size > 10_000) this.eosDone.delete(this.eosDone.values().next().value as string);
    // Verdicts published before the detectors' end-of-stream were received before it: wait for their enforcement.
    void this.idle().then(() => {
      const out = EndOfStream.fromPartial({ sourceId, stage: "rules", instance: this.instance, verdicts: this.verdictsBySource.get(sourceId) ?? 0 });
      this.verdictsBySource.delete(sourceId);
      this.opts.nc.publish(subjects.endOfStream("rules"), codecs.endOfStream.encode(out));
      this.log.info({ sourceId }, "end of stream relayed");
    });
  }
}
