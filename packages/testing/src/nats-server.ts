import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer as startStackNats, type NatsServer } from "@vigil/stack";

/** A test's nats-server: its temporary JetStream store (if any) is removed by disposeNatsServer. */
export interface NatsServerHandle extends NatsServer {
  storeDir: string | null;
}

/** Starts Debian's nats-server on a free loopback port, with JetStream on a temporary store when asked. */
export async function startNatsServer(opts: { jetstream?: boolean; port?: number } = {}): Promise<NatsServerHandle> {
  const storeDir = opts.jetstream ? mkdtempSync(join(tmpdir(), "vigil-nats-")) : null;
  const server = await startStackNats({ port: opts.port, store: storeDir ?? undefined });
  return Object.assign(server, { storeDir });
}

/** Stops the server and removes its store. */
export async function disposeNatsServer(h: NatsServerHandle): Promise<void> {
  await h.stop();
  if (h.storeDir) rmSync(h.storeDir, { recursive: true, force: true });
}
