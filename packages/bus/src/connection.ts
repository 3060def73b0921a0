import { connect, type NatsConnection } from "@nats-io/transport-node";
import { credentialOptions, type BusCredentials } from "./credentials.js";
import { BusError } from "./errors.js";

export { BusError };

/**
 * The logging the bus needs: a pino logger fits. Structural, because
 * @vigil/lifecycle (which owns the logger) builds on this package.
 */
export interface BusLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface BusOptions extends BusCredentials {
  servers: string[];
  name: string;
  logger?: BusLogger;
  /** Give up if the first connection cannot be made within this time (ms); default: keep trying. */
  firstConnectTimeoutMs?: number;
}

/**
 * Connects to NATS and keeps reconnecting forever with backoff: a service
 * outlives NATS restarts. Status changes are logged.
 */
export async function connectBus(opts: BusOptions): Promise<NatsConnection> {
  const log = opts.logger;
  const options = {
    servers: opts.servers,
    name: opts.name,
    ...credentialOptions(opts),
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 250,
    pingInterval: 10_000,
  };
  let nc: NatsConnection;
  if (opts.firstConnectTimeoutMs) {
    // Each attempt fails fast, so nothing is left retrying in the background when we give up.
    const deadline = Date.now() + opts.firstConnectTimeoutMs;
    for (;;) {
      try {
        nc = await connect({ ...options, waitOnFirstConnect: false, timeout: Math.max(100, deadline - Date.now()) });
        break;
      } catch (err) {
        if (Date.now() + 250 >= deadline)
          throw new BusError(`cannot reach NATS at ${opts.servers.join(", ")} within ${opts.firstConnectTimeoutMs} ms: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } else {
    nc = await connect({ ...options, waitOnFirstConnect: true });
  }
  log?.info({ server: nc.getServer() }, "connected to NATS");
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") log?.warn({ server: s.server }, "NATS disconnected");
      else if (s.type === "reconnect") log?.info({ server: s.server }, "NATS reconnected");
      else if (s.type === "error") log?.error({ err: s.error }, "NATS error");
      else if (s.type === "slowConsumer") log?.warn({ subject: s.sub.getSubject() }, "NATS slow consumer");
    }
  })();
  return nc;
}
