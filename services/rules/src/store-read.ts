import { DeliverPolicy, jetstream, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@vigil/bus";

/** What a KV message says was done to its key. */
export type KvOperation = "PUT" | "DEL" | "PURGE";

/** An entry of the bucket as read: its key, operation and value (the message's bytes, valid during the call only). */
export type BucketEntryHandler = (key: string, operation: KvOperation, value: Uint8Array) => void;

/** The operation of a KV message, read from its headers as the KV client's entries read it (no header: a PUT). */
function operationOf(m: JsMsg): KvOperation {
  const h = m.headers;
  if (!h) return "PUT";
  if (h.get("Nats-Marker-Reason") === "MaxAge") return "PURGE";
  return (h.get("KV-Operation") as KvOperation) || "PUT";
}

/**
 * Hands every message of a KV bucket's stream to `onEntry`, in stream order,
 * as each arrives, and resolves once the last message present when the read
 * began was handled (with how many were). It reads as the KV client's watcher
 * of all history does (an ordered push consumer of the bucket's subjects,
 * `$KV.<bucket>.<key>` in stream `KV_<bucket>`), without the watcher's
 * layers: that queues each message as an entry object for an async iterator,
 * so that a million records cost a million entry objects and promise chains
 * (a fifth of a restore's CPU time); here the handler runs synchronously on
 * the message the client parsed, and nothing is queued.
 *
 * The consumer delivers everything, not each key's last value only: such a
 * consumer is not even created within the API timeout at a million keys on
 * nats-server 2.9 (see RuleStore.loadAll). `onEntry` throwing ends the read
 * with that error.
 */
export async function readBucket(nc: NatsConnection, bucket: string, onEntry: BucketEntryHandler): Promise<number> {
  const prefix = `$KV.${bucket}.`;
  const consumer = await jetstream(nc).consumers.getPushConsumer(`KV_${bucket}`, {
    deliver_policy: DeliverPolicy.All,
    filter_subjects: `${prefix}>`,
  });
  const forget = () => void consumer.delete().catch(() => undefined);
  if ((await consumer.info(true)).num_pending === 0) {
    forget();
    return 0;
  }
  let handled = 0;
  let settle: ((err?: Error) => void) | null = null;
  const ended = new Promise<void>((resolve, reject) => {
    settle = (err) => {
      settle = null;
      if (err) reject(err);
      else resolve();
    };
  });
  const messages = await consumer.consume({
    callback: (m) => {
      if (!settle) return;
      try {
        onEntry(m.subject.slice(prefix.length), operationOf(m), m.data);
      } catch (err) {
        settle(err as Error);
        return;
      }
      handled++;
      if (m.info.pending === 0) settle();
    },
  });
  void messages.closed().then((err) => settle?.(err ?? new Error(`the read of bucket ${bucket} stopped after ${handled} messages, before its end`)));
  try {
    await ended;
    return handled;
  } finally {
    messages.stop();
    forget();
  }
}
