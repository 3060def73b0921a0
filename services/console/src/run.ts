import { createLogger, Shutdown, startDaemon, type DaemonSpec } from "@vigil/lifecycle";
import { loadConsoleConfig, type FullConfig } from "./config.js";
import { createConsoleServer } from "./server.js";

/**
 * The console as a daemon. The HTTP server serves its /metrics; the console is
 * useful without the bus (rules, models from files), so NATS connects in the
 * background and live data starts when it is there.
 */
export function consoleDaemon(overrides: Record<string, unknown> = {}): DaemonSpec<FullConfig> {
  return {
    service: "console",
    loadConfig: () => loadConsoleConfig({ overrides }),
    settings: (cfg) => ({ nats: { ...cfg.nats, name: cfg.nats.name ?? "vigil-console" }, metrics: null }),
    bus: "optional",
    async start({ config, log, nc, bus }) {
      const server = await createConsoleServer({ config: config.console, logger: log, nats: nc });
      if (!nc)
        void bus.then((c) => {
          if (c) server.attachBus(c);
        });
      // Stopped before the bus drains: the goodbye heartbeat still goes out.
      return { stop: () => server.close() };
    },
  };
}

/** Runs the console until SIGTERM/SIGINT, for `vigil console` (the daemon uses runDaemon). */
export async function runConsole(overrides: Record<string, unknown> = {}): Promise<void> {
  const log = createLogger("console");
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();
  await startDaemon(consoleDaemon(overrides), log, shutdown);
}
