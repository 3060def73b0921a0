import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports.js";

export interface NatsServerHandle {
  url: string;
  port: number;
  storeDir: string | null;
  /** Kills the server (SIGKILL when hard) and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Starts Debian's nats-server on a free loopback port, with JetStream on a temporary store when asked. */
export async function startNatsServer(opts: { jetstream?: boolean; port?: number } = {}): Promise<NatsServerHandle> {
  const port = opts.port ?? (await freePort());
  const storeDir = opts.jetstream ? mkdtempSync(join(tmpdir(), "vigil-nats-")) : null;
  let proc: ChildProcess | null = null;
  const start = async () => {
    const args = ["-a", "127.0.0.1", "-p", String(port)];
    if (storeDir) args.push("-js", "-sd", storeDir);
    proc = spawn(process.env.NATS_SERVER ?? "nats-server", args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) =>
      proc!.once("exit", (code) => reject(new Error(`nats-server exited with ${code}: ${stderr}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitFor(`nats-server on port ${port}`, () => portOpen(port), 10_000), exited]);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async stop(hard = false) {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      const done = new Promise<void>((r) => p.once("exit", () => r()));
      p.kill(hard ? "SIGKILL" : "SIGTERM");
      await done;
      proc = null;
    },
    start,
  };
}

/** Stops the server and removes its store. */
export async function disposeNatsServer(h: NatsServerHandle): Promise<void> {
  await h.stop();
  if (h.storeDir) rmSync(h.storeDir, { recursive: true, force: true });
}
