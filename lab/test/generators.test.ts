import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, toolMissing } from "@vigil/testing";
import { Lab, LAB_DIR, LAB_SCRIPT } from "../src/lab.js";
import { labAddress4, labAddress6, type LabHost } from "../src/topology.js";
import { connections, readPackets, type Connection, type Packet } from "./support/pcap-flows.js";

const run = promisify(execFile);
const STYLES_PY = join(LAB_DIR, "tools", "styles.py");

const skipReason =
  netnsUnavailableReason() ?? toolMissing("tcpdump", "scripts/deps/lab.apt") ?? toolMissing("tshark", "scripts/deps/lab.apt") ?? toolMissing("curl", "scripts/deps/lab.apt");
if (skipReason) console.warn(`lab generator tests skipped: ${skipReason}`);

/** Why a style cannot run here (a tool it needs is missing), or null. */
async function styleMissing(style: string): Promise<string | null> {
  const { stdout } = await run("/usr/bin/python3", [STYLES_PY, "missing", style]);
  return stdout.trim() ? `missing ${stdout.trim()}` : null;
}

const V4 = labAddress4("victim");
const V6 = labAddress6("victim");
const client = (h: LabHost, six = false) => (six ? labAddress6(h) : labAddress4(h));
const from = (ps: Packet[], src: string) => ps.filter((p) => p.src === src);
const toPort = (cs: Connection[], port: number) => cs.filter((c) => c.port === port);

/** What each style claims, checked on a short capture of it on the victim. */
const CHECKS: Record<string, { seconds: number; check: (ps: Packet[]) => void }> = {
  "http10-curl": {
    seconds: 4,
    check(ps) {
      const cs = toPort(connections(ps), 8000).filter((c) => c.firstFin !== null);
      expect(cs.length, "curl connections to :8000").toBeGreaterThanOrEqual(6);
      // HTTP/1.0: the server closes after its response, so it sends the first FIN (curl
      // may close first once it holds the whole body: 2 of 93 connections in the recording).
      expect(cs.filter((c) => c.firstFin === "server").length, "server-first FIN").toBeGreaterThan(cs.length / 2);
      expect(cs.every((c) => c.clientData === 1), "one request per connection").toBe(true);
      expect(new Set(cs.map((c) => c.client))).toEqual(new Set([client("c1"), client("c2"), client("c3", true)]));
    },
  },
  "http10-wget": {
    seconds: 4,
    check(ps) {
      const cs = toPort(connections(ps), 8081).filter((c) => c.firstFin !== null);
      expect(cs.length, "wget connections to busybox :8081").toBeGreaterThanOrEqual(3);
      expect(cs.filter((c) => c.firstFin === "server").length, "server-first FIN").toBeGreaterThan(cs.length / 2);
    },
  },
  "http-poll-nginx": {
    seconds: 5,
    check(ps) {
      const starts = toPort(connections(ps), 8080).filter((c) => c.client === client("c1")).map((c) => c.start);
      expect(starts.length, "c1 polls every second, a new connection each").toBeGreaterThanOrEqual(3);
      for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThan(0.6);
      for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeLessThan(1.6);
    },
  },
  "http-poll-python": {
    seconds: 5,
    check(ps) {
      const cs = toPort(connections(ps), 80);
      const c1 = cs.filter((c) => c.client === client("c1"));
      expect(c1.length, "c1 keeps one connection").toBe(1);
      expect(c1[0]!.clientData, "c1's polls on it (every 2 s)").toBeGreaterThanOrEqual(2);
    },
  },
  "http-parallel": {
    seconds: 5,
    check(ps) {
      for (const h of ["c1", "c2"] as const) {
        const starts = toPort(connections(ps), 8080).filter((c) => c.client === client(h)).map((c) => c.start).sort();
        expect(starts.length, `${h}: six parallel downloads`).toBeGreaterThanOrEqual(6);
        expect(starts[5]! - starts[0]!, `${h}: the six connections open together`).toBeLessThan(1);
      }
    },
  },
  "http-browser": {
    seconds: 5,
    check(ps) {
      const cs = toPort(connections(ps), 8080).filter((c) => c.client === client("c1"));
      expect(cs.length, "a pool of connections").toBeGreaterThanOrEqual(2);
      expect(cs.length, "at most six").toBeLessThanOrEqual(6);
      expect(Math.max(...cs.map((c) => c.clientData)), "requests reuse a connection").toBeGreaterThanOrEqual(2);
      expect(cs.reduce((n, c) => n + c.clientData, 0), "more requests than connections").toBeGreaterThan(cs.length);
    },
  },
  "ssh-commands": {
    seconds: 5,
    check(ps) {
      const cs = toPort(connections(ps), 22).filter((c) => c.firstFin !== null);
      expect(cs.length, "short, complete ssh sessions").toBeGreaterThanOrEqual(4);
    },
  },
  scp: {
    seconds: 3,
    check(ps) {
      const cs = toPort(connections(ps), 22).filter((c) => c.firstFin !== null);
      expect(cs.length, "one scp session per client").toBeGreaterThanOrEqual(3);
    },
  },
  "rsync-ssh": {
    seconds: 3,
    check(ps) {
      const cs = toPort(connections(ps), 22);
      expect(cs.length).toBeGreaterThanOrEqual(3);
      // The first sync copies the pages (hundreds of KB): far more than an ssh login.
      expect(Math.max(...cs.map((c) => c.serverBytes))).toBeGreaterThan(100_000);
    },
  },
  "git-ssh": {
    seconds: 5,
    check(ps) {
      for (const h of ["c1", "c2"] as const) {
        const cs = toPort(connections(ps), 22).filter((c) => c.client === client(h));
        expect(cs.length, `${h}: clone, then a fetch or a push`).toBeGreaterThanOrEqual(2);
      }
    },
  },
  "dns-udp": {
    seconds: 4,
    check(ps) {
      const q = ps.filter((p) => p.proto === "udp" && p.dport === 53 && p.dst === V4);
      const a = ps.filter((p) => p.proto === "udp" && p.sport === 53 && p.src === V4);
      expect(q.length).toBeGreaterThanOrEqual(3);
      expect(a.length).toBe(q.length);
    },
  },
  "dns-tcp": {
    seconds: 4,
    check(ps) {
      const cs = toPort(connections(ps), 53);
      expect(cs.length, "DNS over TCP connections").toBeGreaterThanOrEqual(3);
      expect(ps.filter((p) => p.proto === "udp" && p.dport === 53).length, "no UDP").toBe(0);
    },
  },
  ntp: {
    seconds: 5,
    check(ps) {
      const q = ps.filter((p) => p.proto === "udp" && p.dport === 123 && p.sport === 123 && p.src !== V4 && p.src !== V6);
      const a = ps.filter((p) => p.proto === "udp" && p.sport === 123 && (p.src === V4 || p.src === V6));
      expect(from(q, client("c1")).length, "iburst: a poll every 2 s").toBeGreaterThanOrEqual(2);
      expect(a.length).toBe(q.length);
    },
  },
  "snmp-poll": {
    seconds: 3,
    check(ps) {
      const q = from(ps, client("c1")).filter((p) => p.proto === "udp" && p.dport === 161);
      expect(q.length, "a burst of 200 requests").toBeGreaterThanOrEqual(200);
      // The issue's poller: 200 requests in under 100 ms (doubled for a loaded machine).
      expect(q[199]!.ts - q[0]!.ts).toBeLessThan(0.2);
      const a = ps.filter((p) => p.proto === "udp" && p.sport === 161 && p.dst === client("c1"));
      expect(a.length).toBeGreaterThanOrEqual(190);
    },
  },
  "icmp-monitor": {
    seconds: 5,
    check(ps) {
      const req = ps.filter((p) => p.proto === "icmp" && p.src === client("c1"));
      expect(req.length, "a ping a second").toBeGreaterThanOrEqual(3);
      expect(ps.filter((p) => p.proto === "icmp" && p.src === client("c3", true)).length, "c3 over IPv6").toBeGreaterThanOrEqual(2);
      expect(ps.filter((p) => p.proto === "icmp" && p.src === V4).length, "every request answered").toBe(
        ps.filter((p) => p.proto === "icmp" && p.dst === V4).length,
      );
    },
  },
};

describe.skipIf(skipReason)(`the benign styles and the attacks added for issue 13${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  const lab = new Lab({ prefix: `vlg${randomBytes(2).toString("hex")}` });
  const work = mkdtempSync(join(tmpdir(), "vigil-lab-styles-"));
  const env = { ...process.env, VLAB: lab.prefix, VLAB_STATE: lab.stateDir };

  /** Captures on the victim while fn runs; returns the pcap's packets. */
  async function captured(name: string, fn: () => Promise<unknown>): Promise<Packet[]> {
    const pcap = join(work, `${name}.pcap`);
    const cap = spawn("ip", ["netns", "exec", lab.namespace("victim"), "tcpdump", "-i", "eth0", "-s", "256", "-U", "-n", "-w", pcap, "-Z", "root"], { stdio: "ignore" });
    try {
      for (let i = 0; i < 50 && !existsSync(pcap); i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 300));
      await fn();
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      cap.kill("SIGINT");
      await new Promise((r) => cap.once("exit", r));
    }
    return readPackets(pcap);
  }

  beforeAll(async () => {
    await lab.up();
  }, 90_000);

  afterAll(async () => {
    await lab.down().catch(() => {});
    rmSync(lab.stateDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it("lists every style the test knows, and only those", async () => {
    const { stdout } = await run(LAB_SCRIPT, ["generators"], { env });
    expect(stdout.split("\n").filter(Boolean).sort()).toEqual(Object.keys(CHECKS).sort());
  });

  for (const [style, { seconds, check }] of Object.entries(CHECKS)) {
    it(`${style}: produces the traffic it claims`, async (ctx) => {
      const why = await styleMissing(style);
      if (why) {
        console.warn(`style ${style} skipped: ${why}`);
        ctx.skip();
      }
      // lab.sh generate exits non-zero when more than a tenth of the actions failed.
      const ps = await captured(style, () => run(LAB_SCRIPT, ["generate", style, String(seconds), "3"], { env, timeout: (seconds + 40) * 1000 }));
      check(ps);
    }, 90_000);
  }

  it("keeps the kernel's ICMP rate limit on the victim: a UDP scan gets few port-unreachables", async () => {
    const { stdout } = await run("ip", ["netns", "exec", lab.namespace("victim"), "sysctl", "-n", "net.ipv4.icmp_ratelimit"]);
    expect(Number(stdout)).toBeGreaterThan(0);
    const ps = await captured("scan-udp", () => lab.attack("scan-udp", 180_000));
    const probes = ps.filter((p) => p.src === labAddress4("atk") && p.proto === "udp");
    const unreachables = ps.filter((p) => p.src === V4 && p.proto === "icmp");
    expect(probes.length).toBeGreaterThanOrEqual(200);
    expect(unreachables.length).toBeLessThan(probes.length / 5);
  }, 200_000);

  it("scan-udp-silent, ftp-brute, ssh-slow: what the issue describes, from the attacker", async () => {
    const atk = labAddress4("atk");
    const t0 = Date.now();
    const ps = await captured("attacks", () => Promise.all(["scan-udp-silent", "ftp-brute", "ssh-slow"].map((a) => lab.attack(a, 120_000))));
    const wall = (Date.now() - t0) / 1000;
    // masscan-style: 1000 ports in about 10 s, and nothing answers.
    const probes = ps.filter((p) => p.src === atk && p.proto === "udp");
    expect(new Set(probes.map((p) => p.dport)).size).toBe(1000);
    expect(probes.at(-1)!.ts - probes[0]!.ts).toBeLessThan(12);
    expect(ps.filter((p) => p.dst === atk && (p.proto === "icmp" || p.proto === "udp")).length, "no answer to the sweep").toBe(0);
    // FTP: 30 logins in about 60 s, one connection each, every one answered (and refused).
    const ftp = toPort(connections(ps), 21).filter((c) => c.client === atk);
    expect(ftp.length).toBe(30);
    expect(ftp.at(-1)!.start - ftp[0]!.start).toBeLessThan(65);
    expect(ftp.every((c) => c.clientData >= 2 && c.serverBytes > 0)).toBe(true);
    // SSH: 11 short sessions in about 70 s. Once in a full-suite run under load the capture held 10
    // (never in isolation: 11 in every run of the attack alone); the starts are printed when so.
    const ssh = toPort(connections(ps), 22).filter((c) => c.client === atk);
    if (ssh.length !== 11) console.warn(`ssh-slow: ${ssh.length} sessions, starting at ${ssh.map((c) => (c.start - ssh[0]!.start).toFixed(1)).join(", ")} s`);
    expect(ssh.length).toBeGreaterThanOrEqual(10);
    expect(ssh.length).toBeLessThanOrEqual(11);
    expect(ssh.at(-1)!.start - ssh[0]!.start).toBeLessThan(72);
    expect(ssh.at(-1)!.start - ssh[0]!.start).toBeGreaterThan(55);
    expect(wall).toBeLessThan(110);
  }, 150_000);
});
