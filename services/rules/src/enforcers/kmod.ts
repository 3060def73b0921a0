import { ACTION_ACCEPT, ACTION_DROP, FAMILY_IPV4, FAMILY_IPV6, RULE_DIR_BOTH, RULE_GENERAL, RULE_HOST } from "@vigil/frames";
import { VigilNetlink, type KernelRule, type KernelStats } from "@vigil/netlink";
import { Action, Direction, type Rule } from "@vigil/proto";
import type { Logger } from "@vigil/lifecycle";
import { isHostMatch, normalizeMatch } from "../model.js";
import { hostKey, mergeHostRules } from "./kmod-hosts.js";
import { kernelPriority, withKernelPriority } from "./kmod-precedence.js";
import { remainingMs, type Enforcer, type ReconcileResult } from "./types.js";

/**
 * Converts a rule into the module's attributes: rules for one address in both directions to its hash set, the rest
 * (one-direction host rules among them, as in the nftables chains) to its ordered list. Host rules keep the rule's
 * priority here (kmod-hosts.ts names a merged rule after it); what the kernel gets is kmod-precedence.ts's.
 */
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
  if (isHostMatch(m) && m.direction === Direction.DIRECTION_BOTH) return { ...common, kind: RULE_HOST, addr: Buffer.from(m.src.bytes) };
  const k: KernelRule = { ...common, kind: RULE_GENERAL, src: Buffer.from(m.src.bytes), srcPrefix: m.src.prefix, proto: m.protocol };
  k.priority = kernelPriority(k);
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

const alive = (r: Rule, nowMs: number) => !r.expiresAt || r.expiresAt * 1000 > nowMs;

/**
 * The kernel module back end over generic netlink. Adds go in batches; the
 * module's expiry events are mirrored to the service. The client is reopened
 * after a failure (module reloaded), and the caller reconciles. The module
 * holds one host rule per address, so the host rules of each address are
 * kept here and merged into what the kernel holds (kmod-hosts.ts).
 */
export class KmodEnforcer implements Enforcer {
  readonly name = "kmod" as const;
  private nl: VigilNetlink | null = null;
  /** Kernel rule ids we installed, and when each ends (ms since the epoch, 0 = never). */
  private installed = new Map<number, number>();
  /** The host rules of each address, and what the kernel holds for it. */
  private hosts = new Map<string, Map<number, Rule>>();
  private hostKernel = new Map<string, KernelRule[]>();
  private hostOf = new Map<number, string>();
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

  /** A rule we installed that the module is not about to remove itself (deleting that could race to ENOENT). */
  private deletable(id: number, nowMs: number): boolean {
    const end = this.installed.get(id);
    return end !== undefined && (end === 0 || end > nowMs + 500);
  }

  /** What the kernel should hold for the host rules of `key` now. */
  private mergeHost(key: string, nowMs: number): KernelRule[] {
    const live = [...(this.hosts.get(key)?.values() ?? [])].filter((r) => alive(r, nowMs));
    return live.length ? mergeHostRules(live.map((r) => toKernelRule(r, nowMs))).map(withKernelPriority) : [];
  }

  private rememberHost(r: Rule, key: string): void {
    const g = this.hosts.get(key) ?? new Map<number, Rule>();
    g.set(r.id, r);
    this.hosts.set(key, g);
    this.hostOf.set(r.id, key);
  }

  private forgetHost(id: number): string | undefined {
    const key = this.hostOf.get(id);
    if (key === undefined) return undefined;
    this.hostOf.delete(id);
    const g = this.hosts.get(key);
    g?.delete(id);
    if (!g?.size) this.hosts.delete(key);
    return key;
  }

  private noteAdded(add: KernelRule[], nowMs: number): void {
    for (const k of add) this.installed.set(k.id, k.timeoutMs ? nowMs + k.timeoutMs : 0);
  }

  async apply(upserts: Rule[], removals: Rule[]): Promise<void> {
    const nowMs = Date.now();
    await this.guard(async (nl) => {
      const del: number[] = [];
      const add: KernelRule[] = [];
      const touched = new Set<string>();
      for (const r of removals) {
        const key = this.forgetHost(r.id);
        if (key !== undefined) touched.add(key);
        else if (this.deletable(r.id, nowMs) && alive(r, nowMs + 500)) del.push(r.id);
      }
      // Upserts need no delete: an add with an existing id replaces that rule in place, without a gap.
      for (const r of upserts) {
        if (!alive(r, nowMs)) continue;
        const k = toKernelRule(r, nowMs);
        if (k.kind !== RULE_HOST) {
          add.push(k);
          continue;
        }
        const key = hostKey(k);
        this.rememberHost(r, key);
        touched.add(key);
      }
      const gone: number[] = [];
      for (const key of touched) {
        const before = this.hostKernel.get(key) ?? [];
        const after = this.mergeHost(key, nowMs);
        // A new host rule for the address replaces the old one in the kernel by itself.
        const replacesHost = after.some((k) => k.kind === RULE_HOST);
        for (const k of before) {
          if (after.some((a) => a.id === k.id)) continue;
          gone.push(k.id);
          if (!(k.kind === RULE_HOST && replacesHost) && this.deletable(k.id, nowMs)) del.push(k.id);
        }
        add.push(...after);
        if (after.length) this.hostKernel.set(key, after);
        else this.hostKernel.delete(key);
      }
      if (del.length) await nl.deleteRules(del);
      for (const id of del) this.installed.delete(id);
      await nl.addRules(add);
      for (const id of gone) this.installed.delete(id);
      this.noteAdded(add, nowMs);
    });
  }

  async reconcile(desired: Rule[]): Promise<ReconcileResult> {
    const nowMs = Date.now();
    return this.guard(async (nl) => {
      const actual = new Map((await nl.dumpRules()).map((k) => [k.id, k]));
      this.hosts.clear();
      this.hostOf.clear();
      this.hostKernel.clear();
      const want = new Map<number, KernelRule>();
      for (const r of desired) {
        if (!alive(r, nowMs)) continue;
        const k = toKernelRule(r, nowMs);
        if (k.kind === RULE_HOST) this.rememberHost(r, hostKey(k));
        else want.set(r.id, k);
      }
      for (const key of this.hosts.keys()) {
        const merged = this.mergeHost(key, nowMs);
        this.hostKernel.set(key, merged);
        for (const k of merged) want.set(k.id, k);
      }
      const wanted = new Set(want.keys());
      const wantHosts = new Set([...want.values()].filter((k) => k.kind === RULE_HOST).map(hostKey));
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
          // Another id's host rule for this address replaces it when added.
          if (!(k.kind === RULE_HOST && wantHosts.has(hostKey(k)))) del.push(id);
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
      // The kernel now holds what we want: the rules kept, and those just added.
      this.installed = new Map();
      for (const [id, k] of actual) if (wanted.has(id)) this.installed.set(id, k.timeoutMs ? nowMs + k.timeoutMs : 0);
      this.noteAdded(add, nowMs);
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
