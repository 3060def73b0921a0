import type { Rule } from "@vigil/proto";

export type EnforcerName = "kmod" | "nftables" | "dry-run";

export interface ReconcileResult {
  added: number;
  removed: number;
  kept: number;
  /** Present on both sides but different (match, or a timeout more than 5 s off): rewritten. */
  replaced: number;
}

/**
 * A back end that makes rules take effect. Rules carry their absolute expiry
 * (wall clock seconds); the back end converts it to a timeout so that the
 * kernel expires them on time even when the service is down.
 */
export interface Enforcer {
  readonly name: EnforcerName;
  /** One line for status: what it drives and any problem. */
  readonly detail: string;
  start(): Promise<void>;
  /** Adds or replaces `upserts` and removes `removals` (ids), as one change where the back end allows. */
  apply(upserts: Rule[], removals: Rule[]): Promise<void>;
  /** Makes the kernel hold exactly `desired`: missing added, stale removed, expiries honoured. */
  reconcile(desired: Rule[]): Promise<ReconcileResult>;
  /** Called with the id of a rule the kernel expired on its own. */
  onExpired(cb: (id: number) => void): void;
  /**
   * A cheap probe for lost kernel state (table deleted by a firewall reload,
   * module reloaded): resolves true when a reconciliation is needed.
   */
  check?(): Promise<boolean>;
  /** Per-rule packet and byte counts kept by the kernel, by rule id (back ends that count per rule). */
  counters?(): Promise<Map<number, { hits: number; bytes: number }>>;
  /** Called when kernel events were lost (the caller reconciles). */
  onOverrun?(cb: () => void): void;
  close(): Promise<void>;
}

export function remainingMs(rule: Rule, nowMs = Date.now()): number {
  if (!rule.expiresAt) return 0;
  return Math.max(1, Math.round(rule.expiresAt * 1000 - nowMs));
}
