import { Verdict } from "@vigil/proto";
import type { DetectorPolicy, RulesConfig } from "./config.js";
import type { Allowlist } from "./allowlist.js";
import { judgeEvidence } from "./attack-evidence.js";
import type { Evidence } from "./evidence.js";

/**
 * "table-full": a block the policy wanted, refused because the automatic rules reached rules.maxAutomaticRules.
 * "seen-while-blocked": the evidence was captured while the source was blocked (packets the firewall dropped): no renewal.
 * "replay-simulated": the verdict came from a replayed capture on an enforcing service (rules.enforceReplays off): recorded, never blocked.
 * "unspecific": the verdict's evidence shows unusual traffic, not an attack's shape (attack-evidence.ts): recorded, never blocked.
 */
export type Outcome = "blocked" | "allowlisted" | "below-threshold" | "capped" | "aggregate" | "table-full" | "seen-while-blocked" | "replay-simulated" | "unspecific";

export interface Decision {
  outcome: Outcome;
  reason: string;
  /** Completed TCP handshakes with the source found in the evidence. */
  verified: number;
  /** Detectors whose verdicts on this source (within the agreement window) count. */
  detectors: string[];
  verdictIds: string[];
  agreement: boolean;
  /** For "blocked": the TTL to apply to a new rule. */
  ttlS: number;
  /** The previous offences the TTL was computed from. */
  offences: number;
}

/**
 * Whether a TCP conversation proves the remote end received our packets.
 * Remote as client: it sent SYN, we answered SYN-ACK, and it then sent an ACK
 * (without RST) — only possible with our initial sequence number, which a
 * blind spoofer never sees (the real owner of a spoofed address answers our
 * SYN-ACK with a RST instead). Remote as server: it answered our SYN with a
 * SYN-ACK acknowledging our sequence number.
 */
export function handshakeCompleted(symbols: string, remoteIsClient: boolean): boolean {
  const tokens = symbols.trim().split(/\s+/);
  let state = 0;
  for (const t of tokens) {
    if (state === 0 && t === "C:S") state = 1;
    else if (state === 1 && t === "S:SA") {
      if (!remoteIsClient) return true;
      state = 2;
    } else if (state === 2 && t.startsWith("C:")) {
      const flags = t.slice(2);
      if (flags.includes("R")) return false;
      if (flags.includes("A") && !flags.includes("S")) return true;
    }
  }
  return false;
}

/** Completed handshakes with `v.address` in the verdict's connection evidence. */
export function completedHandshakes(v: Verdict): number {
  if (!v.address || !v.pst) return 0;
  let n = 0;
  for (const c of v.pst.connections) {
    if (c.client === v.address && handshakeCompleted(c.symbols, true)) n++;
    else if (c.server === v.address && handshakeCompleted(c.symbols, false)) n++;
  }
  return n;
}

/** A token bucket of new unverified blocks: `perMinute` sustained, `burst` at once. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }
  take(now = Date.now()): boolean {
    // Verdicts of one source arrive slightly out of capture order: time never runs backwards here.
    const elapsed = Math.max(0, now - this.last);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 60_000) * this.perMinute);
    this.last = Math.max(this.last, now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
  get available(): number {
    return Math.floor(this.tokens);
  }
}

interface Flag {
  weight: number;
  lastTs: number;
  verdictId: string;
}

export interface DecideContext {
  /** Offences already recorded for the address (0 = first). */
  offences: number;
  /** An active allow rule (manual or false-alarm feedback) covers the address. */
  allowedBy?: string;
  /** The address is already blocked by an active rule. */
  alreadyBlocked: boolean;
  /** Clock for the block budget when the verdict carries no capture time (ms). */
  nowMs?: number;
}

/**
 * Turns verdicts into decisions. Order: aggregate -> allowlist -> detector
 * thresholds -> attack evidence -> combined weight -> anti-spoofing budget -> TTL.
 */
export class Policy {
  /**
   * Detector flags per source, for agreement. Sources with a completed
   * handshake are kept apart: a flood of unverified (spoofable) verdicts can
   * only push out other unverified sources, never a verified attacker's flags.
   */
  private readonly flags = new Map<string, Map<string, Flag>>();
  private readonly verifiedFlags = new Map<string, Map<string, Flag>>();
  /** One block budget per capture source, clocked by capture time (see budgetFor). */
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly cfg: RulesConfig,
    private readonly allowlist: Allowlist,
  ) {}

  /**
   * The budget runs on the verdicts' capture time, so a replay at any speed
   * caps exactly as the live traffic would have been capped, and one budget
   * per capture source keeps a replayed capture from spending the live one.
   */
  private budgetFor(v: Verdict, fallbackMs: number): { bucket: TokenBucket; nowMs: number } {
    const ts = v.lastTs || v.firstTs;
    const nowMs = ts > 0 ? ts * 1000 : fallbackMs;
    let bucket = this.buckets.get(v.sourceId);
    if (!bucket) {
      if (this.buckets.size >= 1000) this.buckets.delete(this.buckets.keys().next().value as string);
      bucket = new TokenBucket(this.cfg.capPerMinute, this.cfg.capBurst, nowMs);
      this.buckets.set(v.sourceId, bucket);
    }
    return { bucket, nowMs };
  }

  detectorPolicy(detector: string): DetectorPolicy {
    return this.cfg.detectors[detector] ?? this.cfg.defaultDetector;
  }

  /** TTL for the n-th offence (0-based): base doubling per repeat, capped; agreement multiplies. */
  ttlFor(previousOffences: number, agreement: boolean): number {
    const doubled = this.cfg.baseTtlS * 2 ** Math.min(previousOffences, 40);
    const ttl = agreement ? doubled * this.cfg.agreementTtlFactor : doubled;
    return Math.min(Math.round(ttl), this.cfg.maxTtlS);
  }

  /** New unverified blocks still allowed, summed over the capture sources. */
  get capTokens(): number {
    if (this.buckets.size === 0) return this.cfg.capBurst;
    let n = 0;
    for (const b of this.buckets.values()) n += b.available;
    return n;
  }

  decide(v: Verdict, ctx: DecideContext): Decision {
    const base: Decision = { outcome: "below-threshold", reason: "", verified: 0, detectors: [v.detector], verdictIds: [v.id], agreement: false, ttlS: 0, offences: ctx.offences };
    if (v.aggregate || !v.address)
      return { ...base, outcome: "aggregate", reason: "aggregate verdict (no dominant source): never a host block" };
    const allowWhy = this.allowlist.why(v.address) ?? ctx.allowedBy;
    if (allowWhy) return { ...base, outcome: "allowlisted", reason: `allowlisted (${allowWhy})` };

    const p = this.detectorPolicy(v.detector);
    const minScore = p.minScore > 0 ? p.minScore : v.threshold;
    if (v.score < minScore) return { ...base, reason: `score ${fmt(v.score)} < ${fmt(minScore)}` };
    if (v.connections < p.minConnections) return { ...base, reason: `connections ${v.connections} < ${p.minConnections}` };
    if (v.packets < p.minPackets) return { ...base, reason: `packets ${v.packets} < ${p.minPackets}` };
    // Unusual is not hostile: only evidence of what attacks do counts, towards a block and towards agreement.
    const evidence = judgeEvidence(v);
    if (evidence && !evidence.specific) return { ...base, outcome: "unspecific", reason: `${v.detector} score ${fmt(v.score)}, but ${evidence.why}` };

    const verified = completedHandshakes(v);
    const flags = this.remember(v, p.weight, verified >= this.cfg.verifiedMinConnections);
    let weight = 0;
    const detectors: string[] = [];
    const verdictIds: string[] = [];
    for (const [det, f] of [...flags].sort(([a], [b]) => a.localeCompare(b))) {
      weight += f.weight;
      detectors.push(det);
      verdictIds.push(f.verdictId);
    }
    const agreement = detectors.length >= 2;
    const common = { ...base, detectors, verdictIds, agreement, verified };
    if (weight < this.cfg.blockWeight)
      return { ...common, reason: `weight ${fmt(weight)} of ${detectors.join("+")} < ${fmt(this.cfg.blockWeight)}` };
    if (ctx.alreadyBlocked) return { ...common, outcome: "blocked", reason: "already blocked" };
    const ttlS = this.ttlFor(ctx.offences, agreement);
    const why = `${detectors.join("+")} score ${fmt(v.score)}${agreement ? " (detectors agree)" : ""}`;
    if (verified >= this.cfg.verifiedMinConnections)
      return { ...common, outcome: "blocked", ttlS, reason: `${why}; ${verified} completed handshake(s)` };
    const { bucket, nowMs } = this.budgetFor(v, ctx.nowMs ?? Date.now());
    if (!bucket.take(nowMs))
      return { ...common, outcome: "capped", reason: `${why}; unverified source and the cap of ${this.cfg.capPerMinute}/min (burst ${this.cfg.capBurst}) is spent` };
    return { ...common, outcome: "blocked", ttlS, reason: `${why}; unverified source, within the cap` };
  }

  /**
   * Why a rule stands once several detectors flagged its source, from the
   * earliest verdict of each (by capture time): the same text whichever
   * detector's verdict reached the service first.
   */
  agreementReason(verdicts: Evidence[]): string {
    const earliest = new Map<string, Evidence>();
    for (const v of verdicts) {
      const e = earliest.get(v.detector);
      if (!e || v.ts < e.ts || (v.ts === e.ts && v.id < e.id)) earliest.set(v.detector, v);
    }
    const decisive = [...earliest.values()].sort((a, b) => a.detector.localeCompare(b.detector));
    const names = decisive.map((v) => v.detector).join("+");
    const scores = decisive.map((v) => `${v.detector} score ${fmt(v.score)}`).join(", ");
    const verified = Math.max(0, ...decisive.map((v) => v.handshakes));
    const check = verified >= this.cfg.verifiedMinConnections ? `${verified} completed handshake(s)` : "unverified source, within the cap";
    return `${names} agree (${scores}); ${check}`;
  }

  private remember(v: Verdict, weight: number, verified: boolean): Map<string, Flag> {
    const ts = v.lastTs || v.firstTs;
    let m = this.verifiedFlags.get(v.address) ?? this.flags.get(v.address);
    if (verified && m && !this.verifiedFlags.has(v.address)) {
      this.flags.delete(v.address);
      this.verifiedFlags.set(v.address, m);
    }
    if (!m) {
      if (this.flags.size + this.verifiedFlags.size >= this.cfg.agreementMemory) this.makeRoom(ts);
      m = new Map();
      (verified ? this.verifiedFlags : this.flags).set(v.address, m);
    }
    m.set(v.detector, { weight, lastTs: ts, verdictId: v.id });
    for (const [det, f] of m) if (Math.abs(ts - f.lastTs) > this.cfg.agreementWindowS) m.delete(det);
    return m;
  }

  /**
   * Frees one place: the oldest sources whose flags are all past the
   * agreement window go first (a bounded look, oldest first), else the oldest
   * unverified source, and a verified one only when there is no other.
   */
  private makeRoom(ts: number): void {
    let looked = 0;
    let freed = false;
    for (const [address, m] of this.flags) {
      if (++looked > 1000) break;
      let live = false;
      for (const f of m.values()) if (Math.abs(ts - f.lastTs) <= this.cfg.agreementWindowS) live = true;
      if (!live) {
        this.flags.delete(address);
        freed = true;
      }
    }
    if (freed) return;
    const victims = this.flags.size ? this.flags : this.verifiedFlags;
    const oldest = victims.keys().next();
    if (!oldest.done) victims.delete(oldest.value);
  }

  /** Forget the detectors' flags on an address (after a false alarm). */
  forget(address: string): void {
    this.flags.delete(address);
    this.verifiedFlags.delete(address);
  }
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(3);
}
