import type { Logger } from "@vigil/lifecycle";
import type { Rule } from "@vigil/proto";
import type { Enforcer } from "./enforcers/types.js";
import type { RulesMetrics } from "./metrics.js";

export interface QueueOwner {
  /** The rules the kernel should hold now (for a reconciliation). */
  desired(): Rule[];
  /** Records whether these rules took effect. */
  markEnforced(rules: Rule[], ok: boolean): void;
}

/**
 * The only caller of the Enforcer. Changes coalesce while the back end is busy
 * (the latest change of a rule id wins), a failed apply turns into a full
 * reconciliation, a failed reconciliation is retried every 5 s, and a cheap
 * probe notices kernel state lost to a firewall or module reload.
 */
export class EnforcementQueue {
  /** The last enforcement error, "" when the last operation worked. */
  problem = "";
  private upserts = new Map<number, Rule>();
  private removals = new Map<number, Rule>();
  private waiters: Array<(ok: boolean) => void> = [];
  private reconcileWanted = false;
  private loop: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly enforcer: Enforcer,
    private readonly owner: QueueOwner,
    private readonly metrics: RulesMetrics,
    private readonly log: Logger,
  ) {}

  /** Queues a change; resolves true once it took effect (or a reconciliation made it so). */
  enforce(upserts: Rule[], removals: Rule[]): Promise<boolean> {
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

  /** Resolves once queued enforcement is done. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.loop) await this.loop;
  }

  private runLoop(): void {
    if (this.loop || this.stopped) return;
    this.loop = this.drain().finally(() => {
      this.loop = null;
      if ((this.upserts.size || this.removals.size || this.reconcileWanted) && !this.stopped) this.runLoop();
    });
  }

  private async drain(): Promise<void> {
    const { enforcer, metrics } = this;
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
        this.problem = "";
      } catch (err) {
        ok = false;
        metrics.enforcementErrors.inc({ enforcer: enforcer.name, op: "apply" });
        this.problem = (err as Error).message;
        this.log.error({ err: (err as Error).message }, "enforcement failed; reconciling");
        this.reconcileWanted = true;
      }
      this.owner.markEnforced(up, ok);
      for (const w of waiters) w(ok || !this.reconcileWanted);
    }
  }

  /** Makes the kernel hold exactly the desired rules. */
  async reconcileNow(): Promise<boolean> {
    const { enforcer, metrics } = this;
    const desired = this.owner.desired();
    try {
      const res = await enforcer.reconcile(desired);
      this.problem = "";
      metrics.reconciles.inc({ result: "ok" });
      if (res.added || res.removed) this.log.info(res, "reconciled the enforced rules");
      this.owner.markEnforced(desired, true);
      return true;
    } catch (err) {
      metrics.reconciles.inc({ result: "error" });
      metrics.enforcementErrors.inc({ enforcer: enforcer.name, op: "reconcile" });
      this.problem = (err as Error).message;
      this.owner.markEnforced(desired, false);
      this.log.error({ err: (err as Error).message }, "reconciliation failed; retrying in 5 s");
      if (!this.retry && !this.stopped)
        this.retry = setTimeout(() => {
          this.retry = null;
          this.requestReconcile();
        }, 5000);
      return false;
    }
  }

  /** Asks the back end whether its state was lost; reconciles when it was. */
  async probe(): Promise<void> {
    if (this.loop || this.stopped || !this.enforcer.check) return;
    if (await this.enforcer.check()) {
      this.log.warn({ enforcer: this.enforcer.name }, "enforced state was lost (firewall reload, module reload); reconciling");
      this.requestReconcile();
    }
  }
}
