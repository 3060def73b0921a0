import { ACTION_ACCEPT, ACTION_DROP, FAMILY_IPV4, FAMILY_IPV6, RULE_DIR_BOTH, RULE_GENERAL, RULE_HOST } from "@vigil/frames";
import { VigilNetlink, type KernelRule, type KernelStats } from "@vigil/netlink";
import { Action, type Rule } from "@vigil/proto";
import type { Logger } from "@vigil/lifecycle";
import { isHostMatch, normalizeMatch } from "../model.js";
import { remainingMs, type Enforcer, type ReconcileResult } from "./types.js";

/** Converts a rule into the module's attributes (host rules to its hash set, the rest to its ordered list). */
export function toKernelRule(rule: Rule, nowMs = Date.now()): KernelRule {
  const m = normalizeMatch(rule);
  const family = m.src.family === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  const common = {
    id: rule.id,
    family,
    direction: m.direction,
    action: m.action === Action.ACTION_ACCEPT ? ACTION_ACCEPT : ACTION_DROP,
    priority: rule.priority,
    timeoutMs: remainingMs(rule, nowMs),
  };
  if (isHostMatch(m)) return { ...common, kind: RULE_HOST, addr: Buffer.from(m.src.bytes) };
  const k: KernelRule = { ...common, kind: RULE_GENERAL, src: Buffer.from(m.src.bytes), srcPrefix: m.src.prefix, proto: m.protocol };
  if (m.dst) {
    k.dst = Buffer.from(m.dst.bytes);
    k.dstPrefix = m.dst.prefix;
  }
  if (m.dportMin || m.dportMax) {
    k.dportMin = m.dportMin;
    k.dportMax = m.dportMax;
  }
  return k;
}

function sameMatch(a: KernelRule, b: KernelRule): boolean {
  const buf = (x?: Buffer) => (x ? x.toString("hex") : "");
  const general = a.kind !== RULE_HOST;
  return (
    a.kind === b.kind &&
    a.family === b.family &&
    buf(a.addr) === buf(b.addr) &&
    (!general ||
      (buf(a.src) === buf(b.src) &&
        (a.srcPrefix ?? 0) === (b.srcPrefix ?? 0) &&
        (a.dst ? buf(a.dst) === buf(b.dst) && (a.dstPrefix ?? 0) === (b.dstPrefix ?? 0) : true) &&
        (a.proto ?? 0) === (b.proto ?? 0) &&
        (a.dportMin ?? 0) === (b.dportMin ?? 0) &&
        (a.dportMax ?? 65535) === (b.dportMax ?? 65535))) &&
    (a.direction ?? RULE_DIR_BOTH) === (b.direction ?? RULE_DIR_BOTH) &&
    (a.action ?? ACTION_DROP) === (b.action ?? ACTION_DROP) &&
    (a.priority ?? 0) === (b.priority ?? 0)
  );
}

/**
 * The kernel module back end over generic netlink. Adds go in batches; the
 * module's expiry events are mirrored to the service. The client is reopened
 * after a failure (module reloaded), and the caller reconciles.
 */
export class KmodEnforcer implements Enforcer {
  readonly name = "kmod" as const;
  private nl: VigilNetlink | null = null;
  private installed = new Set<number>();
  private expiredCb: (id: number) => void = () => undefined;
  private overrunCb: () => void = () => undefined;
  private problem = "";

  constructor(private readonly log?: Logger) {}

  get detail(): string {
    return `vigil kernel module over generic netlink${this.nl ? ` (family ${this.nl.familyId})` : ""}${this.problem ? `; ${this.problem}` : ""}`;
  }

  private client(): VigilNetlink {
    if (!this.nl) {
      this.nl = VigilNetlink.open();
      this.nl.onExpired(
        (r) => {
          this.installed.delete(r.id);
          this.expiredCb(r.id);
        },
        () => {
          this.log?.warn("kernel expiry events were lost; resynchronising");
          this.overrunCb();
        },
      );
    }
    return this.nl;
  }

  private async guard<T>(fn: (nl: VigilNetlink) => Promise<T>): Promise<T> {
    try {
      const out = await fn(this.client());
      this.problem = "";
      return out;
    } catch (err) {
      this.problem = (err as Error).message;
      const errno = (err as { errno?: number }).errno;
      // The family vanished (module unloaded) or the socket broke: reopen next time.
      if (errno === 2 || errno === 9 || errno === 111) {
        this.nl?.close();
        this.nl = null;
      }
      throw err;
    }
  }

  async start(): Promise<void> {
    await this.guard(async (nl) => {
      await nl.stats();
    });
  }

  /** Called when events were lost: the service should reconcile. */
  onOverrun(cb: () => void): void {
    this.overrunCb = cb;
  }

  async apply(upserts: Rule[], removals: Rule[]): Promise<void> {
    const nowMs = Date.now();
    await this.guard(async (nl) => {
      // A rule past its expiry is (or is about to be) removed by the module itself: deleting it could race to ENOENT.
      // Upserts need no delete: an add with an existing id replaces that rule in place, without a gap.
      const del = removals.filter((r) => (!r.expiresAt || r.expiresAt * 1000 > nowMs + 500) && this.installed.has(r.id)).map((r) => r.id);
      if (del.length) await nl.deleteRules(del);
      for (const id of del) this.installed.delete(id);
      const add = upserts.filter((r) => !r.expiresAt || r.expiresAt * 1000 > nowMs).map((r) => toKernelRule(r, nowMs));
      await nl.addRules(add);
      for (const k of add) this.installed.add(k.id);
    });
  }

  async reconcile(desired: Rule[]): Promise<ReconcileResult> {
    const nowMs = Date.now();
    return this.guard(async (nl) => {
      const actual = new Map((await nl.dumpRules()).map((k) => [k.id, k]));
      const want = new Map<number, KernelRule>();
      for (const r of desired) if (!r.expiresAt || r.expiresAt * 1000 > nowMs) want.set(r.id, toKernelRule(r, nowMs));
      const del: number[] = [];
      const add: KernelRule[] = [];
      let kept = 0;
      let removed = 0;
      let added = 0;
      let replaced = 0;
      for (const [id, k] of actual) {
        const w = want.get(id);
        const left = k.timeoutMs ?? 0;
        const drift = w ? !sameMatch(w, k) || (w.timeoutMs ? Math.abs(left - w.timeoutMs!) > 5000 || left === 0 : left !== 0) : true;
        if (!w) {
          removed++;
          del.push(id);
        } else if (drift) replaced++; // an add with the same id replaces the rule in place
        else {
          kept++;
          want.delete(id);
        }
      }
      for (const [id, w] of want) {
        add.push(w);
        if (!actual.has(id)) added++;
      }
      await nl.deleteRules(del);
      await nl.addRules(add);
      this.installed = new Set([...actual.keys()].filter((id) => !del.includes(id)).concat(add.map((k) => k.id)));
      return { added, removed, kept, replaced };
    });
  }

  onExpired(cb: (id: number) => void): void {
    this.expiredCb = cb;
  }

  async counters(): Promise<Map<number, { hits: number; bytes: number }>> {
    const dump = await this.guard((nl) => nl.dumpRules());
    return new Map(dump.map((k) => [k.id, { hits: k.hits ?? 0, bytes: k.bytes ?? 0 }]));
  }

  /** The module's own counters (packets seen, dropped, captured, ring drops, rule counts). */
  async stats(): Promise<KernelStats> {
    return this.guard((nl) => nl.stats());
  }

  /** True when the module was reloaded or unloaded (its family id changed or vanished) or holds fewer rules than we installed. */
  async check(): Promise<boolean> {
    const before = this.nl?.familyId;
    try {
      const st = await this.guard((nl) => nl.stats());
      if (before !== undefined && this.nl?.familyId !== before) return true;
      return st.hostRules + st.generalRules < this.installed.size - 64; // some slack for expiries in flight
    } catch {
      return true;
    }
  }

  async close(): Promise<void> {
    this.nl?.close();
    this.nl = null;
  }
}
