import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason } from "@vigil/testing";
import { Lab, LAB_DIR } from "../src/lab.js";
import { labAddress4, labAddress6 } from "../src/topology.js";

const TOOLS = ["nmap", "hping3", "sshd", "ssh", "sshpass", "tcpdump", "ethtool", "curl", "ping"];

function missingTools(): string | null {
  const missing = TOOLS.filter((t) => {
    try {
      execFileSync("sh", ["-c", `command -v ${t} || test -x /usr/sbin/${t}`], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
  return missing.length ? `missing ${missing.join(", ")} (apt-get install the packages in scripts/deps/lab.apt)` : null;
}

const skipReason = netnsUnavailableReason() ?? missingTools();
if (skipReason) console.warn(`lab tests skipped: ${skipReason}`);

function namespaces(): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter(Boolean);
}

/** Counts packets in a pcap that match a tcpdump filter. */
function countPackets(file: string, filter: string): number {
  const out = execFileSync("tcpdump", ["-r", file, "-n", "-q", filter], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return out.split("\n").filter(Boolean).length;
}

describe.skipIf(skipReason)(`the lab${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  const lab = new Lab({ prefix: `vlt${randomBytes(3).toString("hex")}` });
  const hosts = ["sw", "victim", "c1", "c2", "c3", "atk", "atk2"] as const;
  const sshOpts = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"];
  const work = mkdtempSync(join(tmpdir(), "vigil-lab-test-"));

  beforeAll(async () => {
    await lab.up();
  }, 90_000);

  afterAll(async () => {
    await lab.down().catch(() => {});
    rmSync(lab.stateDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it("creates every namespace with its IPv4 and IPv6 (ULA) addresses", async () => {
    const present = namespaces();
    for (const h of hosts) expect(present).toContain(lab.namespace(h));
    const addrs = await lab.exec("victim", ["ip", "-br", "addr", "show", "eth0"]);
    expect(addrs).toContain(`${labAddress4("victim")}/24`);
    expect(addrs).toContain(`${labAddress6("victim")}/64`);
  });

  it("serves HTTP pages and downloads to clients over IPv4 and IPv6", async () => {
    const v4 = await lab.exec("c1", ["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", `http://${labAddress4("victim")}/files/medium-1m.bin`]);
    expect(v4).toBe(`200 ${1 << 20}`);
    const v6 = await lab.exec("c2", ["curl", "-sS", "--max-time", "5", `http://[${labAddress6("victim")}]/index.html`]);
    expect(v6).toContain("<title>Vigil lab</title>");
  });

  it("runs commands over SSH with the lab user's key", async () => {
    const out = await lab.exec("c3", ["ssh", ...sshOpts, "-o", "BatchMode=yes", "-i", `${lab.stateDir}/ssh/client_key`, `vlab@${labAddress6("victim")}`, "id -un"]);
    expect(out.trim()).toBe("vlab");
  });

  it("accepts the lab user's password and refuses a wrong one (the brute-force target)", async () => {
    const ok = await lab.exec("atk", ["sshpass", "-p", "sunshine", "ssh", ...sshOpts, `vlab@${labAddress4("victim")}`, "echo in"]);
    expect(ok.trim()).toBe("in");
    await expect(lab.exec("atk", ["sshpass", "-p", "wrong", "ssh", ...sshOpts, `vlab@${labAddress4("victim")}`, "true"])).rejects.toThrow(/failed/);
  });

  it("answers DNS-like UDP queries over IPv4 and IPv6", async () => {
    for (const server of [labAddress4("victim"), labAddress6("victim")]) {
      // dns-query exits non-zero unless every query got its answer.
      await lab.exec("c1", ["/usr/bin/python3", join(LAB_DIR, "tools/benign.py"), "dns-query", server, "3", "7"]);
    }
  });

  it("lets a client ping the victim and reach it through the bridge only", async () => {
    const out = await lab.exec("c2", ["ping", "-c", "1", "-W", "2", labAddress4("victim")]);
    expect(out).toMatch(/1 received/);
  });

  it("shows an nmap SYN scan from the attacker in a capture on the victim", async () => {
    const pcap = join(work, "scan.pcap");
    const cap = spawn("ip", ["netns", "exec", lab.namespace("victim"), "tcpdump", "-i", "eth0", "-s", "160", "-U", "-n", "-w", pcap, "-Z", "root"], { stdio: "ignore" });
    try {
      // tcpdump is listening once the file exists (it opens it after the socket).
      for (let i = 0; i < 50 && !existsSync(pcap); i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 300));
      await lab.exec("atk", ["nmap", "-n", "-Pn", "-sS", "-T4", "-p", "20-100", labAddress4("victim")], 60_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      cap.kill("SIGINT");
      await new Promise((r) => cap.once("exit", r));
    }
    const syns = countPackets(pcap, `src host ${labAddress4("atk")} and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn`);
    expect(syns).toBeGreaterThanOrEqual(81);
    // Port 22 and 80 are open: the victim answers those probes with SYN-ACK.
    const synAcks = countPackets(pcap, `src host ${labAddress4("victim")} and tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)`);
    expect(synAcks).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it("runs the benign generators with (almost) no failed activity", async () => {
    // lab.sh benign exits non-zero when more than a tenth of the activities fail.
    await lab.benign(10, 5);
  }, 90_000);

  it("is idempotent: up on a running lab rebuilds it", async () => {
    await lab.up();
    const out = await lab.exec("c1", ["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", `http://${labAddress4("victim")}/`]);
    expect(out).toBe("200");
  }, 90_000);

  it("comes down cleanly: namespaces deleted, services stopped", async () => {
    const httpdPid = Number(readFileSync(`${lab.stateDir}/httpd.pid`, "utf8"));
    const sshdPid = Number(readFileSync(`${lab.stateDir}/sshd.pid`, "utf8"));
    await lab.down();
    expect(namespaces().filter((n) => n.startsWith(`${lab.prefix}-`))).toEqual([]);
    for (const pid of [httpdPid, sshdPid]) expect(() => process.kill(pid, 0)).toThrow();
    // A second down is harmless.
    await lab.down();
  }, 60_000);
});
