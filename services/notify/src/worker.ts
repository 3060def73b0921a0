import type { Logger } from "@vigil/lifecycle";
import type { NotifySection } from "./config.js";
import type { NotifyMetrics } from "./metrics.js";
import type { Notification } from "./notification.js";
import { NotificationQueue } from "./queue.js";
import { DeliveryError, type Sender } from "./send.js";

/** Waits ms, or less when the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The wait before retry `attempt` (1-based): doubling from backoffMs, capped, with ±20% jitter so targets do not retry in step. */
export function backoff(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ms = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(ms * (0.8 + 0.4 * random()));
}

/** One target: its queue and the loop delivering from it, one notification at a time, in order. */
export class TargetWorker {
  readonly queue: NotificationQueue;
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(
    private readonly sender: Sender,
    private readonly settings: Pick<NotifySection, "queueSize" | "retries" | "backoffMs" | "maxBackoffMs">,
    private readonly metrics: NotifyMetrics,
    private readonly log: Logger,
  ) {
    this.queue = new NotificationQueue(settings.queueSize);
    metrics.queueDepth.set({ target: this.name }, 0);
    for (const m of [metrics.sent, metrics.failedAttempts, metrics.deadLetters, metrics.dropped]) m.inc({ target: this.name }, 0);
  }

  get name(): string {
    return this.sender.target.name;
  }

  /** Queues a notification; a full queue counts it as dropped (and says so in a later summary). */
  offer(n: Notification): void {
    if (!this.queue.push(n)) this.metrics.dropped.inc({ target: this.name });
    this.metrics.queueDepth.set({ target: this.name }, this.queue.length);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops after the attempt in flight is cut short; what is still queued is counted and logged, not sent. */
  async stop(): Promise<number> {
    this.abort.abort();
    await this.loop;
    const left = this.queue.length;
    if (left) this.log.warn({ target: this.name, left }, "stopping with notifications not sent");
    return left;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      await this.queue.ready(signal);
      const next = this.queue.take();
      this.metrics.queueDepth.set({ target: this.name }, this.queue.length);
      if (!next) continue;
      await this.deliver(next.n, next.queuedAt, signal);
    }
  }

  private async deliver(n: Notification, queuedAt: number, signal: AbortSignal): Promise<void> {
    const { retries, backoffMs, maxBackoffMs } = this.settings;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.sender.send(n, signal);
        this.metrics.sent.inc({ target: this.name });
        this.metrics.deliverySeconds.observe({ target: this.name }, (Date.now() - queuedAt) / 1000);
        if (attempt > 0) this.log.info({ target: this.name, kind: n.kind, attempts: attempt + 1 }, "notification delivered after retrying");
        return;
      } catch (err) {
        if (signal.aborted) {
          // Shutting down: back in the queue, so stop() counts it as not sent.
          this.queue.push(n);
          return;
        }
        this.metrics.failedAttempts.inc({ target: this.name });
        const e = err instanceof DeliveryError ? err : new DeliveryError(`${this.name}: ${(err as Error).name}`, false);
        if (e.permanent || attempt >= retries) {
          this.metrics.deadLetters.inc({ target: this.name });
          this.log.error({ target: this.name, kind: n.kind, attempts: attempt + 1, err: e.message, permanent: e.permanent }, "notification dead-lettered");
          return;
        }
        const wait = backoff(attempt + 1, backoffMs, maxBackoffMs);
        this.log.warn({ target: this.name, kind: n.kind, attempt: attempt + 1, retryInMs: wait, err: e.message }, "notification not delivered, retrying");
        await sleep(wait, signal);
      }
    }
  }
}
