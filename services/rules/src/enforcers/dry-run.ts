import type { Rule } from "@vigil/proto";
import type { Enforcer, ReconcileResult } from "./types.js";

/** Decides and records, never enforces. */
export class DryRunEnforcer implements Enforcer {
  readonly name = "dry-run" as const;
  /** `fallback`: nobody asked for dry-run; `enforcer: auto` found no back end it could use. */
  constructor(
    readonly detail: string,
    readonly fallback = false,
  ) {}
  async start(): Promise<void> {}
  async apply(_upserts: Rule[], _removals: Rule[]): Promise<void> {}
  async reconcile(desired: Rule[]): Promise<ReconcileResult> {
    return { added: 0, removed: 0, kept: desired.length, replaced: 0 };
  }
  onExpired(): void {}
  async close(): Promise<void> {}
}
