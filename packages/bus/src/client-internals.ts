import type { NatsConnection } from "@nats-io/transport-node";

/**
 * The parts of the nats.js 3.3 client that Vigil reads beyond its public API: how much it holds
 * unsent (capture's flow control) and its socket (publishInPlace). Not public API, hence the pinned
 * client version and tests that fail when the shape changes; this is the one place that knows it.
 */
export interface ClientInternals {
  connected?: boolean;
  infoReceived?: boolean;
  info?: { max_payload?: number };
  outBytes?: number;
  outMsgs?: number;
  noMorePublishing?: boolean;
  outbound?: { size(): number };
  flushPending?: () => void;
  transport?: {
    isClosed?: boolean;
    socket?: { destroyed?: boolean; writableLength?: number; cork(): void; uncork(): void; write(b: Uint8Array): boolean };
  };
}

export function clientInternals(nc: NatsConnection): ClientInternals | undefined {
  return (nc as unknown as { protocol?: ClientInternals }).protocol;
}

/** Bytes the client holds unsent: its outbound buffer (which keeps growing while disconnected) and the socket's write queue. */
export function clientPendingBytes(nc: NatsConnection): number {
  const p = clientInternals(nc);
  return (p?.outbound?.size() ?? 0) + (p?.transport?.socket?.writableLength ?? 0);
}

/** Whether the client is open and not between connections. */
export function clientConnected(nc: NatsConnection): boolean {
  if (nc.isClosed()) return false;
  return clientInternals(nc)?.connected !== false;
}
