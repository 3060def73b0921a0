import { connectBus, type NatsConnection } from "@vigil/bus";
import { createLogger, Shutdown } from "@vigil/lifecycle";
import { loadConsoleConfig } from "./config.js";
import { createConsoleServer } from "./server.js";

/** Runs the console until SIGTERM/SIGINT; shared by the daemon and `vigil console`. */
export async function runConsole(overrides: Record<string, unknown> = {}): Promise<void> {
  const log = createLogger("console");
  const cfg = loadConsoleConfig({ overrides });
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();
  let nc: NatsConnection | null = null;
  // The console is useful without the bus (rules, models from files): connect in the background.
  const bus = connectBus({ servers: cfg.nats.servers, name: cfg.nats.name ?? "vigil-console", token: cfg.nats.token, logger: log })
    .then((c) => {
      nc = c;
      return c;
    })
    .catch((err: Error) => {
      log.error({ err: err.message }, "NATS connection failed");
      return null;
    });
  const first = await Promise.race([bus, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
  if (!first) log.warn({ servers: cfg.nats.servers }, "NATS not reachable yet: live data starts when it is");
  const server = await createConsoleServer({ config: cfg.console, logger: log, nats: first });
  if (!first)
    void bus.then((c) => {
      if (c) server.attachBus(c);
    });
  // Hooks run in reverse: the HTTP side (and the goodbye heartbeat) first, then the bus drains.
  shutdown.add("nats", async () => {
    if (nc) await nc.drain();
  });
  shutdown.add("http", () => server.close());
}
