import { connectBus, type NatsConnection } from "@vigil/bus";
import { createRegistry, serveMetrics, type Registry } from "@vigil/metrics";
import { EXIT } from "./command.js";
import { reportFatal } from "./errors.js";
import { instanceId, VERSION } from "./identity.js";
import { createLogger, type Logger } from "./log.js";
import { Shutdown } from "./shutdown.js";

/** What a daemon's configuration must say about the parts runDaemon sets up. */
export interface DaemonSettings {
  nats: { servers: string[]; name?: string; token?: string; user?: string; passwordFile?: string; credsFile?: string };
  /** Where /metrics and /healthz listen; null: the service serves them itself. */
  metrics: { host: string; port: number } | null;
  /** An instance id set in the configuration, else instanceId(service). */
  instance?: string;
}

export interface DaemonContext<C, P = undefined> {
  config: C;
  /** What spec.prepare returned. */
  prepared: P;
  log: Logger;
  instance: string;
  version: string;
  registry: Registry;
  /** The metrics server's port (0 when the service serves its own). */
  metricsPort: number;
  /** The bus; null when it is optional and was not reachable within the first seconds. */
  nc: NatsConnection | null;
  /** Resolves with the bus once connected (optional bus), or null if connecting failed. */
  bus: Promise<NatsConnection | null>;
  shutdown: Shutdown;
}

/** A started service: stopped first on shutdown; `done` resolves when it ends by itself (a file replay). */
export interface DaemonService {
  stop(): Promise<unknown> | void;
  done?: Promise<unknown>;
  /** SIGHUP (`vigil reload`): re-read what can change without a restart. */
  reload?(): Promise<void> | void;
}

export interface DaemonSpec<C, P = undefined> {
  /** "capture", "pst", ...: names the logger, the metrics and the instance. */
  service: string;
  loadConfig(): C;
  /** Work that can fail on its own (reading a model): done before anything listens or connects. */
  prepare?(config: C, log: Logger): P;
  settings(config: C): DaemonSettings;
  /** The registry the metrics server serves; default createRegistry(service, instance). */
  registry?(instance: string): Registry;
  /** "optional": the service is useful without NATS and connects in the background. */
  bus?: "required" | "optional";
  start(ctx: DaemonContext<C, P>): Promise<DaemonService> | DaemonService;
}

/** How long an optional bus may take before the service starts without it. */
const OPTIONAL_BUS_WAIT_MS = 3000;

/**
 * Runs a service daemon: logger, signal handlers, configuration, metrics
 * server, bus, then the service. Shutdown (SIGTERM, SIGINT, or the service's
 * own end) stops them in reverse: the service, the bus (drained), the metrics
 * server. A failure at any step is reported as one line (or a stack for a bug)
 * and the process exits with reportFatal's code; nothing left connecting keeps
 * it alive.
 */
export async function runDaemon<C, P = undefined>(spec: DaemonSpec<C, P>): Promise<never> {
  const log = createLogger(spec.service);
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();
  let code: number = EXIT.OK;
  // Node ends a process on SIGHUP by default: `vigil reload` must never stop a service.
  let reload: (() => Promise<void> | void) | undefined;
  process.on("SIGHUP", () => {
    if (!reload) {
      log.info("SIGHUP: nothing here reloads without a restart; restart the service to apply configuration changes");
      return;
    }
    log.info("SIGHUP: reloading");
    void Promise.resolve()
      .then(reload)
      .catch((err: unknown) => log.error({ err }, "reload failed; the previous settings stay"));
  });
  try {
    const service = await startDaemon(spec, log, shutdown);
    reload = service.reload?.bind(service);
    if (service.done) {
      await service.done;
      await shutdown.run();
      process.exit(EXIT.OK);
    }
    // Runs until a signal: the Shutdown's handler exits.
    return await new Promise<never>(() => undefined);
  } catch (err) {
    code = reportFatal(`vigil-${spec.service}`, err);
  }
  await shutdown.run();
  process.exit(code);
}

/** runDaemon's start-up, for callers that own the process (`vigil console`). */
export async function startDaemon<C, P = undefined>(spec: DaemonSpec<C, P>, rootLog: Logger, shutdown: Shutdown): Promise<DaemonService> {
  const config = spec.loadConfig();
  const settings = spec.settings(config);
  const instance = settings.instance ?? instanceId(spec.service);
  const log = rootLog.child({ instance });
  const prepared = spec.prepare ? spec.prepare(config, log) : (undefined as P);
  const registry = spec.registry ? spec.registry(instance) : createRegistry(spec.service, instance);
  let metricsPort = 0;
  if (settings.metrics) {
    const server = await serveMetrics(registry, settings.metrics);
    shutdown.add("metrics server", () => server.close());
    metricsPort = server.port;
    log.info({ url: server.url }, "metrics listening");
  }
  let nc: NatsConnection | null = null;
  const connecting = connectBus({
    servers: settings.nats.servers,
    name: settings.nats.name ?? instance,
    token: settings.nats.token,
    user: settings.nats.user,
    passwordFile: settings.nats.passwordFile,
    credsFile: settings.nats.credsFile,
    logger: log,
  }).then((c) => (nc = c));
  // Hooks run in reverse: the service stops before the bus drains.
  shutdown.add("nats", async () => {
    if (nc && !nc.isClosed()) await nc.drain().catch(() => undefined);
  });
  let bus: Promise<NatsConnection | null> = connecting;
  if (spec.bus === "optional") {
    bus = connecting.catch((err: Error) => {
      log.error({ err: err.message }, "NATS connection failed");
      return null;
    });
    const first = await Promise.race([bus, new Promise<null>((r) => setTimeout(() => r(null), OPTIONAL_BUS_WAIT_MS).unref())]);
    if (!first) log.warn({ servers: settings.nats.servers }, "NATS not reachable yet: bus features start when it is");
  } else {
    await connecting;
  }
  const service = await spec.start({ config, prepared, log, instance, version: VERSION, registry, metricsPort, nc, bus, shutdown });
  shutdown.add(spec.service, async () => {
    await service.stop();
  });
  return service;
}
