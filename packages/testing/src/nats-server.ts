import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNatsAuth, startNatsServer as startStackNats, type NatsAuth, type NatsServer, type NatsService } from "@vigil/stack";

/** A test's nats-server: its temporary JetStream store (if any) is removed by disposeNatsServer. */
export interface NatsServerHandle extends NatsServer {
  storeDir: string | null;
  /** Per-service users, when started with auth (as `vigil up` and installs run it). */
  auth: NatsAuth | null;
  /** Connect options of a service's user ({} without auth), for a test's own connection. */
  credentials(service: NatsService): { user?: string; pass?: string };
  /** The variables that make a spawned service connect as its user ({} without auth). */
  serviceEnv(service: NatsService): Record<string, string>;
}

/**
 * Starts Debian's nats-server on a free loopback port, with JetStream on a
 * temporary store when asked, and with one user per service (the real
 * subject permissions) when `auth` is set.
 */
export async function startNatsServer(opts: { jetstream?: boolean; port?: number; auth?: boolean } = {}): Promise<NatsServerHandle> {
  const storeDir = opts.jetstream || opts.auth ? mkdtempSync(join(tmpdir(), "vigil-nats-")) : null;
  const auth = opts.auth && storeDir ? createNatsAuth(join(storeDir, "secrets")) : null;
  const server = await startStackNats({ port: opts.port, store: opts.jetstream && storeDir ? join(storeDir, "js") : undefined, authConfig: auth?.configFile });
  return Object.assign(server, {
    storeDir,
    auth,
    credentials: (s: NatsService) => (auth ? { user: auth.credentials[s].user, pass: auth.credentials[s].password } : {}),
    serviceEnv: (s: NatsService) => (auth ? auth.env(s) : {}),
  });
}

/** Stops the server and removes its store. */
export async function disposeNatsServer(h: NatsServerHandle): Promise<void> {
  await h.stop();
  if (h.storeDir) rmSync(h.storeDir, { recursive: true, force: true });
}
