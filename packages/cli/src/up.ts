import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_PORTS } from "@vigil/config";
import { createLogger, EXIT, logColorOf, logFormatOf, type Command, type LogFormat } from "@vigil/lifecycle";
import {
  createNatsAuth,
  freshConsoleLogin,
  mainOf,
  portOpen,
  REPO_ROOT,
  spawnService,
  startNatsServer,
  stopChild,
  type NatsAuth,
  type NatsServer,
  type NatsService,
  onStopRequest,
  removePid,
  type ServiceProcess,
  type StopReason,
  writePid,
} from "@vigil/stack";
import { describeProtection, rulesStatus, sshSessionSource } from "./up-summary.js";
import { upWarmupEnv } from "./up-warmup.js";

interface ServiceSpec {
  name: string;
  /** The port whose /healthz (or /) answers once the service is up. */
  healthPort: number;
  /** What the service serves, for the printout. */
  endpoints: string[];
  env: Record<string, string>;
}

/** The interface of the IPv4 default route, else of the IPv6 one. */
export function defaultRouteInterface(): string | null {
  for (const fam of ["-4", "-6"]) {
    try {
      const out = execFileSync("ip", [fam, "route", "show", "default"], { encoding: "utf8" });
      const m = /\bdev (\S+)/.exec(out);
      if (m) return m[1];
    } catch {
      /* no route for this family */
    }
  }
  return null;
}

function captureSource(iface: string | undefined): { env: Record<string, string>; label: string } {
  if (existsSync("/dev/vigil")) return { env: { VIGIL_CAPTURE__SOURCE: "kernel" }, label: "kernel ring /dev/vigil" };
  const dev = iface ?? defaultRouteInterface();
  if (!dev) throw Object.assign(new Error("no /dev/vigil and no default route: name an interface with --interface"), { code: "VIGIL_ERR_USAGE" });
  return { env: { VIGIL_CAPTURE__SOURCE: "afpacket", VIGIL_CAPTURE__INTERFACE: dev }, label: `AF_PACKET on ${dev}` };
}

/**
 * A nats-server for Vigil with JetStream in the state directory and one user
 * per service. Never one already listening: whoever squats the port would
 * receive every frame and serve the rule store.
 */
async function startNats(stateDir: string, port: number, auth: NatsAuth): Promise<NatsServer> {
  if (await portOpen(port))
    throw Object.assign(new Error(`port ${port} is already in use: vigil up starts its own authenticated nats-server there (stop the other one, e.g. systemctl stop nats-server)`), {
      code: "VIGIL_ERR_LISTEN",
    });
  // Its log goes to a file: its banner does not interleave with the services' lines, and a closed terminal pipe cannot kill it.
  return startNatsServer({ port, store: join(stateDir, "nats"), monitor: DEFAULT_PORTS.natsMonitor, authConfig: auth.configFile, log: { file: natsLogOf(stateDir) }, detached: true });
}

function natsLogOf(stateDir: string): string {
  return join(stateDir, "nats-server.log");
}

export const upCommand: Command = {
  name: "up",
  summary: "start the whole stack on this host (nats-server, capture, detectors, rules, console)",
  usage:
    "usage: vigil up [--config FILE] [--interface IFACE] [--state-dir DIR] [--dry-run] [--log-format pretty|json|auto]\n\n" +
    "  --dry-run     decide and list rules but block nothing (rules.dryRun)\n" +
    "  --log-format  the services' logs: one readable line per event (pretty), JSON lines (json), or pretty on a\n" +
    "                terminal and JSON otherwise (auto, the default; also $VIGIL_LOG_FORMAT)\n" +
    "  A new host first warms up for 24 h (rules.warmup): automatic blocks are only simulated until then.\n" +
    "  The source of the SSH session you run it from ($SSH_CONNECTION) is allowlisted for this run.\n" +
    "  A service that fails while starting stops the whole stack with its own error (exit 1).\n" +
    "  SIGINT, SIGTERM, SIGHUP or a closed output (`vigil up | head`) stops every service and nats-server;\n" +
    "  the exit status is then 128 + the signal (141 for the closed output) and stderr says why.",
  async run(args) {
    let values;
    try {
      ({ values } = parseArgs({
        args,
        options: { config: { type: "string" }, interface: { type: "string" }, "state-dir": { type: "string" }, "dry-run": { type: "boolean" }, "log-format": { type: "string" } },
      }));
    } catch (err) {
      process.stderr.write(`vigil up: ${(err as Error).message}\n`);
      return EXIT.USAGE;
    }
    let logFormat: LogFormat;
    try {
      logFormat = logFormatOf({ VIGIL_LOG_FORMAT: values["log-format"] ?? process.env.VIGIL_LOG_FORMAT });
    } catch (err) {
      process.stderr.write(`vigil up: ${values["log-format"] !== undefined ? (err as Error).message.replace("VIGIL_LOG_FORMAT", "--log-format") : (err as Error).message}\n`);
      return EXIT.USAGE;
    }
    const log = createLogger("vigil-up", undefined, logFormat);
    // From the first moment: a signal or a closed pipe during start-up must stop what is already started, too.
    const stop: { reason: StopReason | null } = { reason: null };
    let stopRequested!: () => void;
    const stopSignal = new Promise<void>((r) => (stopRequested = r));
    const removeTriggers = onStopRequest((reason) => {
      stop.reason = reason;
      stopRequested();
    });
    const stoppedBecause = (reason: StopReason): number => {
      removeTriggers();
      try {
        process.stderr.write(`vigil up: ${reason.why}: stopped every service it started and nats-server\n`);
      } catch {
        /* stderr is gone too */
      }
      return reason.exitCode;
    };
    const stateDir = resolve(values["state-dir"] ?? process.env.VIGIL_STATE_DIR ?? join(REPO_ROOT, ".vigil"));
    const natsPort = DEFAULT_PORTS.nats;
    // Group vigil-control (or an older install's vigil) may reach the control socket; nobody else looks in.
    mkdirSync(stateDir, { recursive: true });
    chmodSync(stateDir, 0o750);
    const secrets = join(stateDir, "secrets");
    const auth = createNatsAuth(secrets);
    const login = freshConsoleLogin(secrets);
    let nats: NatsServer;
    try {
      nats = await startNats(stateDir, natsPort, auth);
    } catch (err) {
      log.error({ err: (err as Error).message }, "cannot start nats-server");
      removeTriggers();
      return EXIT.FAILURE;
    }
    if (stop.reason) {
      await nats.stop();
      return stoppedBecause(stop.reason);
    }
    let src: ReturnType<typeof captureSource>;
    try {
      src = captureSource(values.interface);
    } catch (err) {
      await nats.stop();
      removeTriggers();
      throw err;
    }
    const session = sshSessionSource();
    const rulesEnv: Record<string, string> = {
      ...(session ? { VIGIL_RULES__SESSION_ALLOWLIST: JSON.stringify([session]) } : {}),
      ...(values["dry-run"] ? { VIGIL_RULES__DRY_RUN: "true" } : {}),
      ...upWarmupEnv(values.config && resolve(values.config)),
    };
    const common: Record<string, string> = {
      VIGIL_NATS__SERVERS: `[nats://127.0.0.1:${natsPort}]`,
      VIGIL_STATE_DIR: stateDir,
      // The socket in the state directory, whatever the caller's environment names: the summary and the console look there.
      VIGIL_CONTROL_SOCKET: join(stateDir, "control.sock"),
      // The services write into pipes to this process: they log for this process's terminal, not for a pipe.
      VIGIL_LOG_FORMAT: logFormat,
      VIGIL_LOG_COLOR: logColorOf() ? "1" : "0",
      ...(values.config ? { VIGIL_CONFIG: resolve(values.config) } : {}),
    };
    const all: ServiceSpec[] = [
      { name: "capture", healthPort: DEFAULT_PORTS.captureMetrics, env: src.env, endpoints: [`source: ${src.label}`, `metrics http://127.0.0.1:${DEFAULT_PORTS.captureMetrics}/metrics`] },
      { name: "pst", healthPort: DEFAULT_PORTS.pstMetrics, env: {}, endpoints: [`metrics http://127.0.0.1:${DEFAULT_PORTS.pstMetrics}/metrics`] },
      { name: "som", healthPort: DEFAULT_PORTS.somMetrics, env: {}, endpoints: [`metrics http://127.0.0.1:${DEFAULT_PORTS.somMetrics}/metrics`] },
      {
        name: "rules",
        healthPort: DEFAULT_PORTS.rulesMetrics,
        env: rulesEnv,
        endpoints: [`gRPC unix:${join(stateDir, "control.sock")} (vigil.v1.Control; root and group vigil-control, else vigil)`, `metrics http://127.0.0.1:${DEFAULT_PORTS.rulesMetrics}/metrics`],
      },
      {
        name: "console",
        healthPort: DEFAULT_PORTS.console,
        env: { VIGIL_CONSOLE__TOKEN_FILE: login.tokenFile },
        endpoints: [`web console http://127.0.0.1:${DEFAULT_PORTS.console}/?token=${login.token} (this run's login link)`],
      },
      { name: "notify", healthPort: 9474, env: {}, endpoints: ["notifications: notify.targets in the configuration, `vigil notify test` to try them", "metrics http://127.0.0.1:9474/metrics"] },
    ];
    const specs = all.filter((s) => existsSync(mainOf(s.name)));

    const children = new Map<string, ServiceProcess>();
    let stopping = false;
    let starting = true;
    let failedToStart: { name: string; code: number | null; signal: string | null; output: string } | null = null;
    const launch = (spec: ServiceSpec, attempt = 0) => {
      // Its own process group: a Ctrl-C reaches only the launcher, which stops the services before NATS.
      // The output is passed through and its tail kept: a service that cannot start is reported with its own words.
      const svc = spawnService(spec.name, { env: { ...common, ...auth.env(spec.name as NatsService), ...spec.env }, inheritVigilEnv: true, log: "buffer", detached: true });
      svc.child.stdout?.on("data", (d: Buffer) => process.stdout.write(d));
      svc.child.stderr?.on("data", (d: Buffer) => process.stderr.write(d));
      children.set(spec.name, svc);
      const child = svc.child;
      if (child.pid) writePid(stateDir, spec.name, child.pid);
      const startedAt = Date.now();
      child.once("exit", (code, signal) => {
        if (stopping) return;
        removePid(stateDir, spec.name);
        if (starting) {
          // A configuration error fails the same way on every restart: stop now instead of claiming to run.
          failedToStart ??= { name: spec.name, code, signal, output: "" };
          child.once("close", () => failedToStart && failedToStart.name === spec.name && (failedToStart.output = svc.output()));
          return;
        }
        const next = Date.now() - startedAt > 30_000 ? 0 : attempt + 1;
        const delay = Math.min(30_000, 500 * 2 ** next);
        log.error({ service: spec.name, code, signal, restartInMs: delay }, "service exited; restarting");
        setTimeout(() => !stopping && launch(spec, next), delay).unref();
      });
    };
    const stopAll = async () => {
      stopping = true;
      await Promise.all([...children.values()].map((c) => stopChild(c.child, 15_000)));
      for (const s of specs) removePid(stateDir, s.name);
      await nats.stop();
    };
    for (const spec of specs) launch(spec);
    const up = await Promise.all(
      specs.map(async (s) => {
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && !failedToStart && !stop.reason) {
          if (await portOpen(s.healthPort)) return true;
          await new Promise((r) => setTimeout(r, 200));
        }
        return false;
      }),
    );
    if (stop.reason) {
      await stopAll();
      return stoppedBecause(stop.reason);
    }
    if (failedToStart) {
      const f = failedToStart as { name: string; code: number | null; signal: string | null; output: string };
      await new Promise((r) => setTimeout(r, 300)); // its last lines, after the pipes close
      await stopAll();
      removeTriggers();
      const lastLines = (f.output || children.get(f.name)?.output() || "").trim().split("\n").slice(-8);
      process.stderr.write(
        `\nvigil up: ${f.name} could not start (${f.signal ?? `exit ${f.code}`}); everything is stopped again. Its last output:\n` +
          lastLines.map((l) => `  ${l}`).join("\n") +
          "\n",
      );
      return EXIT.FAILURE;
    }
    starting = false;
    const protection = specs.some((s) => s.name === "rules") ? describeProtection(await rulesStatus(join(stateDir, "control.sock"))) : [];

    const lines = [
      "",
      "Vigil is running:",
      `  watching   ${src.label}`,
      ...protection,
      ...(session ? [`               your SSH session: ${session} (from $SSH_CONNECTION, for this run)`] : []),
      "",
      `  nats       nats://127.0.0.1:${natsPort} (one user per service, credentials in ${secrets}; JetStream in ${join(stateDir, "nats")}), monitoring http://127.0.0.1:${DEFAULT_PORTS.natsMonitor}/, log ${natsLogOf(stateDir)}`,
      ...specs.map((s, i) => `  ${s.name.padEnd(10)} ${up[i] ? "" : "(NOT RESPONDING, see its log above) "}${s.endpoints.join("; ")}`),
      "",
      "Stop with Ctrl-C or SIGTERM; `vigil reload` re-reads the rules configuration and the detectors' models.",
      "",
    ];
    process.stdout.write(lines.join("\n"));

    await stopSignal;
    await stopAll();
    return stoppedBecause(stop.reason!);
  },
};
