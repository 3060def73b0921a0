import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { spawnWithOutput, type OutputTarget } from "./output.js";
import { freePort, portOpen } from "./ports.js";
import { stopChild } from "./services.js";

export interface NatsServerOptions {
  /** Default: a free port below the ephemeral range. */
  port?: number;
  /** JetStream store directory (created); absent: no JetStream. */
  store?: string;
  /** HTTP monitoring port; absent: none. */
  monitor?: number;
  log?: OutputTarget;
  /** Its own process group, so a Ctrl-C at the launcher's terminal does not reach it before the services stop. */
  detached?: boolean;
  startTimeoutMs?: number;
  /** nats-server configuration with the users (createNatsAuth's configFile); absent: no authentication. */
  authConfig?: string;
}

export interface NatsServer {
  url: string;
  /** The configuration with the users, when it was started with one. */
  authConfig: string | null;
  port: number;
  store: string | null;
  /** Stops the server (SIGKILL when hard) and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
}

export class NatsServerError extends Error {
  readonly code = "VIGIL_ERR_NATS";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts nats-server ($NATS_SERVER, else from PATH) on 127.0.0.1 and waits until it accepts connections. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const port = opts.port ?? (await freePort());
  const log = opts.log ?? "buffer";
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  let proc: ChildProcess | null = null;
  const start = async () => {
    const args = ["-a", "127.0.0.1", "-p", String(port)];
    if (opts.authConfig) args.unshift("-c", opts.authConfig);
    if (opts.monitor) args.push("-m", String(opts.monitor));
    if (opts.store) {
      mkdirSync(opts.store, { recursive: true });
      args.push("-js", "-sd", opts.store);
    }
    const { child: p, output } = spawnWithOutput(log, (stdio) =>
      spawn(process.env.NATS_SERVER ?? "nats-server", args, { stdio: ["ignore", stdio, stdio], detached: opts.detached }),
    );
    proc = p;
    let spawnError: Error | null = null;
    p.once("error", (e) => (spawnError = e));
    const deadline = Date.now() + timeoutMs;
    while (!(await portOpen(port))) {
      if (spawnError) throw new NatsServerError(`cannot start nats-server: ${(spawnError as Error).message} (apt-get install nats-server)`);
      if (p.exitCode !== null) throw new NatsServerError(`nats-server exited with ${p.exitCode}: ${output().slice(-4000).trim()}`);
      if (Date.now() > deadline) {
        p.kill("SIGKILL");
        throw new NatsServerError(`nats-server did not start on port ${port} within ${timeoutMs / 1000} s`);
      }
      await sleep(50);
    }
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    authConfig: opts.authConfig ?? null,
    store: opts.store ?? null,
    async stop(hard = false) {
      const p = proc;
      proc = null;
      if (p) await stopChild(p, hard ? 0 : 10_000);
    },
    start,
  };
}
