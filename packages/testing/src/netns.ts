import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Why network-namespace tests cannot run here, or null when they can. */
export function netnsUnavailableReason(): string | null {
  if (!isRoot()) return "needs root to create network namespaces";
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore" });
  } catch {
    return "the ip command (iproute2) is missing";
  }
  return null;
}

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: "utf8", input: opts.input, stdio: ["pipe", "pipe", "pipe"] });
}

/** Runs a command inside a namespace. */
export function inNetns(ns: string, cmd: string, args: string[]): string {
  return sh("ip", ["netns", "exec", ns, cmd, ...args]);
}

export interface VethPair {
  /** Namespace names, unique per test run. */
  a: string;
  b: string;
  ifA: string;
  ifB: string;
  addrA4: string;
  addrB4: string;
  addrA6: string;
  addrB6: string;
  destroy(): void;
}

/**
 * Two namespaces joined by a veth pair, with IPv4 (10.x/30-style test net)
 * and IPv6 (ULA) addresses. Names are random so parallel tests do not collide.
 */
export function createVethPair(subnet = 200 + Math.floor(Math.random() * 50)): VethPair {
  const id = randomBytes(3).toString("hex");
  const a = `vgl-a-${id}`;
  const b = `vgl-b-${id}`;
  const ifA = `va${id}`;
  const ifB = `vb${id}`;
  const addrA4 = `10.${subnet}.0.1`;
  const addrB4 = `10.${subnet}.0.2`;
  const addrA6 = `fd00:${subnet}::1`;
  const addrB6 = `fd00:${subnet}::2`;
  sh("ip", ["netns", "add", a]);
  sh("ip", ["netns", "add", b]);
  try {
    sh("ip", ["link", "add", ifA, "netns", a, "type", "veth", "peer", "name", ifB, "netns", b]);
    for (const [ns, ifn, v4, v6] of [
      [a, ifA, addrA4, addrA6],
      [b, ifB, addrB4, addrB6],
    ]) {
      inNetns(ns, "ip", ["addr", "add", `${v4}/24`, "dev", ifn]);
      inNetns(ns, "ip", ["-6", "addr", "add", `${v6}/64`, "dev", ifn, "nodad"]);
      inNetns(ns, "ip", ["link", "set", ifn, "up"]);
      inNetns(ns, "ip", ["link", "set", "lo", "up"]);
    }
  } catch (err) {
    for (const ns of [a, b]) try { sh("ip", ["netns", "del", ns]); } catch { /* already gone */ }
    throw err;
  }
  return {
    a, b, ifA, ifB, addrA4, addrB4, addrA6, addrB6,
    destroy() {
      for (const ns of [a, b]) try { sh("ip", ["netns", "del", ns]); } catch { /* already gone */ }
    },
  };
}
