import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsAuth } from "@vigil/stack";
import { waitFor } from "@vigil/testing";

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}
const inNs = (ns: string, cmd: string, args: string[]) => sh("ip", ["netns", "exec", ns, cmd, ...args]);

export interface Host {
  ns: string;
  /** This host's address on its link to the hub (the hub's own on the observer link). */
  addr: string;
}

/**
 * Three "hosts" in network namespaces: a hub (capture, rules, the main
 * nats-server) and two detector hosts, each on its own point-to-point link to
 * the hub, plus a link from the test's own namespace to the hub so the test can
 * watch the bus. No bridge and no forwarding through the test's namespace: the
 * host's firewall never sees this traffic.
 */
export interface Topology {
  hub: Host;
  detectors: Host[];
  /** The hub's addresses on each detector link, in detector order. */
  hubOnLink: string[];
  destroy(): void;
}

export function createTopology(detectorCount = 2): Topology {
  const id = randomBytes(3).toString("hex");
  const subnet = 150 + Math.floor(Math.random() * 50);
  const hub = `vgl-hub-${id}`;
  const dets = Array.from({ length: detectorCount }, (_, i) => `vgl-det${i + 1}-${id}`);
  const created: string[] = [];
  const links: string[] = [];
  try {
    for (const ns of [hub, ...dets]) {
      sh("ip", ["netns", "add", ns]);
      created.push(ns);
      inNs(ns, "ip", ["link", "set", "lo", "up"]);
    }
    // Observer link: the test's namespace <-> hub, 10.S.0.1 <-> 10.S.0.2.
    const obs = `vo${id}`;
    sh("ip", ["link", "add", obs, "type", "veth", "peer", "name", `vh${id}`, "netns", hub]);
    links.push(obs);
    sh("ip", ["addr", "add", `10.${subnet}.0.1/30`, "dev", obs]);
    sh("ip", ["link", "set", obs, "up"]);
    inNs(hub, "ip", ["addr", "add", `10.${subnet}.0.2/30`, "dev", `vh${id}`]);
    inNs(hub, "ip", ["link", "set", `vh${id}`, "up"]);
    const hubOnLink: string[] = [];
    const detectors: Host[] = dets.map((ns, i) => {
      const a = `vd${i}a${id}`;
      const b = `vd${i}b${id}`;
      sh("ip", ["link", "add", a, "netns", hub, "type", "veth", "peer", "name", b, "netns", ns]);
      inNs(hub, "ip", ["addr", "add", `10.${subnet}.${i + 1}.1/24`, "dev", a]);
      inNs(hub, "ip", ["link", "set", a, "up"]);
      inNs(ns, "ip", ["addr", "add", `10.${subnet}.${i + 1}.2/24`, "dev", b]);
      inNs(ns, "ip", ["link", "set", b, "up"]);
      hubOnLink.push(`10.${subnet}.${i + 1}.1`);
      return { ns, addr: `10.${subnet}.${i + 1}.2` };
    });
    return {
      hub: { ns: hub, addr: `10.${subnet}.0.2` },
      detectors,
      hubOnLink,
      destroy() {
        for (const l of links) try { sh("ip", ["link", "del", l]); } catch { /* went with its namespace */ }
        for (const ns of created) try { sh("ip", ["netns", "del", ns]); } catch { /* already gone */ }
      },
    };
  } catch (err) {
    for (const l of links) try { sh("ip", ["link", "del", l]); } catch { /* ignore */ }
    for (const ns of created) try { sh("ip", ["netns", "del", ns]); } catch { /* ignore */ }
    throw err;
  }
}

/** Whether something accepts TCP connections on host:port inside a namespace (or here when ns is null). */
export function portOpenIn(ns: string | null, host: string, port: number): Promise<boolean> {
  if (!ns)
    return new Promise((resolve) => {
      const s = connect(port, host);
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
  return new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", ns, process.execPath, "-e",
      `const s=require("net").connect(${port},${JSON.stringify(host)});s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))`]);
    p.once("exit", (code) => resolve(code === 0));
  });
}

export interface Proc {
  name: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM (or SIGKILL when hard) and wait for the exit. */
  stop(hard?: boolean): Promise<void>;
}

/** Runs a command inside a namespace, keeping the tail of its output for failure messages. */
export function runIn(ns: string, name: string, cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn("ip", ["netns", "exec", ns, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return {
    name,
    child,
    output: () => out,
    stop: (hard = false) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill(hard ? "SIGKILL" : "SIGTERM");
        if (!hard) setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }),
  };
}

export interface NatsNode {
  proc: Proc;
  dir: string;
  clientUrl: string;
}

/** The generated users (as installed), for a server's configuration; "" without auth. */
const usersOf = (auth?: NatsAuth) => (auth ? readFileSync(auth.configFile, "utf8") : "");
/** The hub user a leaf node connects as (`detectors`, limited to detector subjects). */
const leafLogin = (auth?: NatsAuth) => (auth ? `${auth.leaf.user}:${encodeURIComponent(auth.leaf.password)}@` : "");

/** The hub: JetStream (rules keeps its state there), clients and leaf nodes on every address of its namespace. */
export async function startHubNats(hub: Host, opts: { clientPort?: number; leafPort?: number; auth?: NatsAuth } = {}): Promise<NatsNode> {
  const dir = mkdtempSync(join(tmpdir(), "vigil-hub-"));
  const clientPort = opts.clientPort ?? 4222;
  const leafPort = opts.leafPort ?? 7422;
  writeFileSync(
    join(dir, "nats.conf"),
    `server_name: hub\nlisten: 0.0.0.0:${clientPort}\njetstream { store_dir: "${dir}/js" }\nleafnodes { listen: 0.0.0.0:${leafPort} }\n${usersOf(opts.auth)}`,
  );
  const proc = runIn(hub.ns, "nats-hub", "nats-server", ["-c", join(dir, "nats.conf")]);
  await waitFor("the hub nats-server", () => portOpenIn(hub.ns, "127.0.0.1", clientPort), 10_000, 100);
  return { proc, dir, clientUrl: `nats://127.0.0.1:${clientPort}` };
}

/** A detector host's local nats-server: a leaf node of the hub; local clients use 127.0.0.1. */
export async function startLeafNats(host: Host, hubAddr: string, opts: { clientPort?: number; leafPort?: number; auth?: NatsAuth } = {}): Promise<NatsNode> {
  const dir = mkdtempSync(join(tmpdir(), "vigil-leaf-"));
  const clientPort = opts.clientPort ?? 4222;
  const leafPort = opts.leafPort ?? 7422;
  writeFileSync(
    join(dir, "nats.conf"),
    `server_name: leaf-${host.ns}\nlisten: 127.0.0.1:${clientPort}\nleafnodes { remotes: [ { url: "nats-leaf://${leafLogin(opts.auth)}${hubAddr}:${leafPort}" } ] }\n${usersOf(opts.auth)}`,
  );
  const proc = runIn(host.ns, `nats-leaf-${host.ns}`, "nats-server", ["-c", join(dir, "nats.conf")]);
  await waitFor(`the leaf nats-server in ${host.ns}`, () => portOpenIn(host.ns, "127.0.0.1", clientPort), 10_000, 100);
  return { proc, dir, clientUrl: `nats://127.0.0.1:${clientPort}` };
}

export async function stopNats(n: NatsNode): Promise<void> {
  await n.proc.stop();
  rmSync(n.dir, { recursive: true, force: true });
}
