import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer as startStackNats } from "@vigil/stack";

export interface NatsServerHandle {
  url: string;
  port: number;
  storeDir: string | null;
  /** Kills the server (SIGKILL when hard) and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
}

/** Starts Debian's nats-server on a free loopback port, with JetStream on a temporary store when asked. */
export async function startNatsServer(opts: { jetstream?: boolean; port?: number } = {}): Promise<NatsServerHandle> {
  const storeDir = opts.jetstream ? mkdtempSync(join(tmpdir(), "vigil-nats-")) : null;
  const server = await startStackNats({ port: opts.port, store: storeDir ?? undefined });
  return { url: server.url, port: server.port, storeDir, stop: (hard) => server.stop(hard), start: () => server.start() };
}

/** Stops the server and removes its store. */
export async function disposeNatsServer(h: NatsServerHandle): Promise<void> {
  await h.stop();
  if (h.storeDir) rmSync(h.storeDir, { recursive: true, force: true });
}
