import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** Vigil's version: every package is released together, so this package's version is everyone's. */
export const VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** The state root when $VIGIL_STATE_DIR is not set. */
export const DEFAULT_STATE_ROOT = "/var/lib/vigil";

/** $VIGIL_STATE_DIR, else /var/lib/vigil. */
export function stateRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.VIGIL_STATE_DIR ?? DEFAULT_STATE_ROOT;
}

/** Where an install's rules service listens (its systemd RuntimeDirectory, group vigil-control). */
export const DEFAULT_CONTROL_SOCKET = "/run/vigil/control.sock";

/**
 * The rules service's control socket: $VIGIL_CONTROL_SOCKET; else control.sock in
 * $VIGIL_STATE_DIR when that is set (`vigil up`, tests, containers); else the
 * install's /run/vigil/control.sock. The rules service, the console and the
 * CLI all ask here, so they agree without configuration.
 */
export function controlSocket(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VIGIL_CONTROL_SOCKET) return env.VIGIL_CONTROL_SOCKET;
  if (env.VIGIL_STATE_DIR) return join(env.VIGIL_STATE_DIR, "control.sock");
  return DEFAULT_CONTROL_SOCKET;
}

/** A service's state directory: its section's `stateDir` when set, else <state root>/<service>. */
export function stateDir(section: { stateDir?: string } | undefined, service: string, env: NodeJS.ProcessEnv = process.env): string {
  return section?.stateDir ?? join(stateRoot(env), service);
}

/** Names one running process of a service, on the bus and in metrics: "<host>/<service>/<pid>". */
export function instanceId(service: string): string {
  return `${hostname()}/${service}/${process.pid}`;
}
