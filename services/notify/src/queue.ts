import type { EventKind } from "./config.js";
import { droppedSummary, type Notification } from "./notification.js";

/**
 * A target's bounded queue. A flood cannot grow it: past capacity a
 * notification is counted by kind and dropped, and the counts go out as one
 * summary message once the queue has drained (or after `capacity` deliveries,
 * so a flood that never lets it drain still gets its summary through).
 */
export class NotificationQueue {
  private items: Array<{ n: Notification; queuedAt: number }> = [];
  private overflow: Partial<Record<EventKind, number>> = {};
  private overflowing = false;
  private sinceOverflow = 0;
  private wake: (() => void) | null = null;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length;
  }

  /** false: the queue is full and the notification was counted instead. */
  push(n: Notification, now = Date.now()): boolean {
    if (this.items.length >= this.capacity) {
      if (n.kind !== "dropped" && n.kind !== "test") this.overflow[n.kind] = (this.overflow[n.kind] ?? 0) + 1;
      this.overflowing = true;
      this.wake?.();
      return false;
    }
    this.items.push({ n, queuedAt: now });
    this.wake?.();
    return true;
  }

  /** The next notification to deliver, or null when there is none. */
  take(now = Date.now()): { n: Notification; queuedAt: number } | null {
    if (this.overflowing && (this.items.length === 0 || this.sinceOverflow >= this.capacity)) {
      const summary = droppedSummary(this.overflow, now / 1000);
      this.overflow = {};
      this.overflowing = false;
      this.sinceOverflow = 0;
      return { n: summary, queuedAt: now };
    }
    const next = this.items.shift() ?? null;
    if (next && this.overflowing) this.sinceOverflow++;
    return next;
  }

  /** Resolves when there is something to take, or the signal aborts. */
  async ready(signal: AbortSignal): Promise<void> {
    while (this.items.length === 0 && !this.overflowing && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.wake = null;
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}
