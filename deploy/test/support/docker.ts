import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { waitFor } from "@vigil/testing";

/** The compose command that works here: v2 plugin first, then v1 docker-compose. */
export function composeCommand(): string[] | null {
  if (spawnSync("docker", ["compose", "version"], { stdio: "ignore" }).status === 0) return ["docker", "compose"];
  if (spawnSync("docker-compose", ["version"], { stdio: "ignore" }).status === 0) return ["docker-compose"];
  return null;
}

export interface DockerEngine {
  /** DOCKER_HOST value for clients. */
  host: string;
  /** True when this process started dockerd (and stop() ends it). */
  started: boolean;
  /** Stops the engine if this process started it, and removes the docker0 bridge it made. */
  stop(): Promise<void>;
}

function pingable(host: string): boolean {
  return spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { env: { ...process.env, DOCKER_HOST: host }, stdio: "ignore", timeout: 10_000 }).status === 0;
}

const linkExists = (name: string) => spawnSync("ip", ["link", "show", name], { stdio: "ignore" }).status === 0;

/**
 * A running Docker engine: the host's when it answers, else a dockerd this
 * process starts on a private socket (Debian's docker.io). Returns the reason
 * when neither is possible.
 */
export async function dockerEngine(): Promise<DockerEngine | string> {
  if (spawnSync("docker", ["--version"], { stdio: "ignore" }).status !== 0) return "the docker client is not installed (apt-get install docker.io; scripts/deps/deploy.apt lists it)";
  for (const host of [process.env.DOCKER_HOST, "unix:///var/run/docker.sock", "unix:///tmp/vigil-dockerd/docker.sock"]) {
    if (host && pingable(host)) return { host, started: false, stop: async () => undefined };
  }
  if (spawnSync("dockerd", ["--version"], { stdio: "ignore" }).status !== 0) return "no Docker engine answers and dockerd is not installed (apt-get install docker.io)";
  if (process.getuid?.() !== 0) return "no Docker engine answers and starting dockerd needs root";
  const dir = "/tmp/vigil-dockerd";
  mkdirSync(dir, { recursive: true });
  const host = `unix://${dir}/docker.sock`;
  const hadDocker0 = linkExists("docker0");
  let log = "";
  // The host's firewall is not ours to change: no iptables rules, no forwarding
  // switch. Containers then have no NAT to the outside,
  // which the lab does not need (published ports go through docker-proxy).
  const args = ["--exec-root", `${dir}/exec`, "-p", `${dir}/pid`, "-H", host, "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"];
  const child: ChildProcess = spawn("dockerd", args, { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-3000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(killer);
    }
    // dockerd leaves its default bridge behind; the host had none before us.
    if (!hadDocker0 && linkExists("docker0")) spawnSync("ip", ["link", "del", "docker0"], { stdio: "ignore" });
  };
  try {
    await waitFor("dockerd", () => child.exitCode === null && existsSync(`${dir}/docker.sock`) && pingable(host), 60_000, 250);
  } catch {
    await stop();
    const lastLines = log.trim().split("\n").slice(-3).join(" | ");
    return `dockerd cannot run here (storage driver, iptables or cgroups): ${lastLines || "it exited without a word"}`;
  }
  return { host, started: true, stop };
}

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Takes an exclusive flock(1) on `path`, held by a child process until
 * release(): tests in other processes (another engineer's, another vitest
 * worker) that use the same engine, images and host ports wait their turn.
 */
export async function holdLock(path: string, timeoutMs: number): Promise<HeldLock> {
  const child = spawn("flock", ["-w", String(Math.ceil(timeoutMs / 1000)), path, "sh", "-c", "echo locked; exec cat >/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`could not take the lock ${path} within ${timeoutMs} ms (flock exited ${code}): ${err.trim()}`)));
  });
  return {
    release: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.stdin!.end();
      }),
  };
}
