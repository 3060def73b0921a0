import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeFlagsOf } from "./node-flags.js";
import { spawnWithOutput, type OutputTarget } from "./output.js";

/** The checkout (src/ and dist/ are both two levels below it). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** A service's built daemon: services/<name>/dist/main.js. */
export function mainOf(service: string): string {
  return join(REPO_ROOT, "services", service, "dist", "main.js");
}

/** The services whose daemon is not built. */
export function missingServices(services: readonly string[]): string[] {
  return services.filter((s) => !existsSync(mainOf(s)));
}

export interface SpawnServiceOptions {
  /** The daemon to run when `name` is a label (e.g. "capture-2"); default: name. */
  service?: string;
  /** Variables on top of the inherited environment. */
  env?: Record<string, string>;
  /** The configuration file (VIGIL_CONFIG). */
  configFile?: string;
  /** Keep the inherited VIGIL_* variables (a launcher for the user's own settings, like `vigil up`); default: drop them, so nothing leaks in from the caller. */
  inheritVigilEnv?: boolean;
  /** Run inside this network namespace (ip netns exec). */
  ns?: string;
  log?: OutputTarget;
  detached?: boolean;
  /** Options for node itself, before the daemon (e.g. --cpu-prof, which NODE_OPTIONS does not take). */
  nodeArgs?: string[];
}

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** The last 50 kB of its output (empty when inherited). */
  output(): string;
  /** Resolves when it exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, SIGKILL after graceMs; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `node [its heap flags] services/<service>/dist/main.js` from the checkout. */
export function spawnService(name: string, opts: SpawnServiceOptions = {}): ServiceProcess {
  const env: Record<string, string> = {};
  const inherit = opts.inheritVigilEnv ?? false;
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && (inherit || !k.startsWith("VIGIL_"))) env[k] = v;
  if (opts.configFile) env.VIGIL_CONFIG = opts.configFile;
  Object.assign(env, opts.env);
  const service = opts.service ?? name;
  // The caller's options come after the daemon's own, so that they win where both set one.
  const node = [...nodeFlagsOf(service), ...(opts.nodeArgs ?? []), mainOf(service)];
  const [cmd, args] = opts.ns ? ["ip", ["netns", "exec", opts.ns, process.execPath, ...node]] : [process.execPath, node];
  const log = opts.log ?? "buffer";
  const { child, output } = spawnWithOutput(log, (stdio) => spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ["ignore", stdio, stdio], detached: opts.detached }));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  return { name, child, output, exited, stop: (graceMs = 15_000) => stopChild(child, graceMs) };
}

/**
 * Stops a child: SIGTERM, then SIGKILL after graceMs (0: SIGKILL at once).
 * Resolves when it has exited.
 */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill(graceMs > 0 ? "SIGTERM" : "SIGKILL");
  });
}
