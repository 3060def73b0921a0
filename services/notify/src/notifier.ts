import { codecs, DecodeError, subjects, type NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import { DEFAULT_EVENTS, type NotifySection } from "./config.js";
import type { NotifyMetrics } from "./metrics.js";
import { fromFeedback, fromRuleEvent, type Notification } from "./notification.js";
import { createSender } from "./send.js";
import { TargetWorker } from "./worker.js";

export interface NotifierOptions {
  nc: NatsConnection;
  config: NotifySection;
  metrics: NotifyMetrics;
  log: Logger;
}

export interface Notifier {
  readonly workers: readonly TargetWorker[];
  /** Hands a notification to every target that wants its kind (the bus subscriptions call it). */
  dispatch(n: Notification): void;
  stop(): Promise<void>;
}

/**
 * Subscribes to rule events and feedback and hands what people should hear
 * about to each target's worker. Plain subscriptions, not a durable consumer:
 * notifications are about now; the rules service's KV keeps the record.
 */
export function startNotifier({ nc, config, metrics, log }: NotifierOptions): Notifier {
  const workers = config.targets.map((t) => new TargetWorker(createSender(t, config.timeoutMs), config, metrics, log));
  const wants = new Map(workers.map((w, i) => [w, new Set<string>(config.targets[i].events ?? DEFAULT_EVENTS)]));
  const dispatch = (n: Notification) => {
    for (const w of workers) if (n.kind === "dropped" || n.kind === "test" || wants.get(w)!.has(n.kind)) w.offer(n);
  };
  const receive = <T>(subject: string, decode: (data: Uint8Array) => T, convert: (m: T) => Notification | null) =>
    nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return log.error({ err: err.message, subject }, "subscription failed");
        let n: Notification | null;
        try {
          n = convert(decode(msg.data));
        } catch (e) {
          if (!(e instanceof DecodeError)) throw e;
          metrics.malformed.inc({ subject });
          return;
        }
        metrics.events.inc({ kind: n?.kind ?? "ignored" });
        if (n) dispatch(n);
      },
    });
  const subs = [
    receive(subjects.ruleEvents, (d) => codecs.ruleEvent.decode(d, subjects.ruleEvents), (e) => fromRuleEvent(e)),
    receive(subjects.feedback, (d) => codecs.feedback.decode(d, subjects.feedback), (f) => fromFeedback(f)),
  ];
  for (const w of workers) w.start();
  log.info({ targets: workers.map((w) => `${w.name} (${config.targets.find((t) => t.name === w.name)!.type})`) }, workers.length ? "notifying" : "no notification targets configured: counting events only");
  return {
    workers,
    dispatch,
    async stop() {
      for (const s of subs) s.unsubscribe();
      await Promise.all(workers.map((w) => w.stop()));
    },
  };
}
