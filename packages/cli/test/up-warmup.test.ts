import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, repoRoot, toolMissing, waitFor } from "@vigil/testing";
import { describeProtection } from "../src/up-summary.js";
import { UP_WARMUP, upWarmupEnv } from "../src/up-warmup.js";

describe("vigil up and the warm-up of a new host", () => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-up-warmup-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it("warms up for 24 h unless the file or the environment sets rules.warmup", () => {
    expect(UP_WARMUP).toBe("24h");
    const none = file("none.yaml", "rules:\n  allowlist: [192.0.2.0/24]\n");
    expect(upWarmupEnv(none, {})).toEqual({ VIGIL_RULES__WARMUP: "24h" });
    expect(upWarmupEnv(undefined, { VIGIL_CONFIG: none })).toEqual({ VIGIL_RULES__WARMUP: "24h" });
    expect(upWarmupEnv(file("off.yaml", "rules:\n  warmup: off\n"), {})).toEqual({});
    expect(upWarmupEnv(file("short.yaml", "rules:\n  warmup: 2h\n"), {})).toEqual({});
    expect(upWarmupEnv(undefined, { VIGIL_CONFIG: file("zero.yaml", "rules:\n  warmup: 0\n") })).toEqual({});
    expect(upWarmupEnv(none, { VIGIL_RULES__WARMUP: "0" })).toEqual({});
    // A broken file is the rules service's to report; the default stands meanwhile.
    expect(upWarmupEnv(file("broken.yaml", "rules: [\n"), {})).toEqual({ VIGIL_RULES__WARMUP: "24h" });
  });

  it("the start-up summary says which phase blocks", () => {
    const until = Date.UTC(2026, 11, 8, 6, 30, 0) / 1000;
    const [warm] = describeProtection({ enforcer: "nftables", enforcerDetail: "table inet vigil", phase: "warmup", warmupUntil: until });
    expect(warm).toBe(
      "  blocking   WARM-UP until 2026-12-08T06:30:00Z: enforcer nftables (table inet vigil); learning this host's traffic, automatic blocks are simulated until then (manual rules are enforced; `vigil warmup end` blocks now)",
    );
    expect(describeProtection({ enforcer: "nftables", phase: "blocking", warmupUntil: until })[0]).toMatch(/^ {2}blocking {3}LIVE: enforcer nftables; detector verdicts become real block rules$/);
    expect(describeProtection({ enforcer: "kmod" })[0]).toMatch(/LIVE: enforcer kmod/);
    expect(describeProtection({ enforcer: "dry-run", dryRun: true, phase: "dry-run" })[0]).toMatch(/SIMULATED \(dry run\)/);
  });
});

// The whole stack under `vigil up` in a network namespace of its own (free default ports, its own nftables),
// enforcing, as a new host: warm-up first, and a second run continues from the rule store in the state dir.
const cliMain = join(repoRoot, "packages/cli/dist/main.js");
const built = ["capture", "pst", "som", "rules"].every((s) => existsSync(join(repoRoot, "services", s, "dist", "main.js"))) && existsSync(cliMain);
const skip = netnsUnavailableReason() ?? toolMissing("nats-server") ?? toolMissing("nft") ?? (built ? null : "not built (node scripts/build.mjs)");
if (skip) console.warn(`vigil up warm-up test skipped: ${skip}`);

function vigil(ns: string, args: string[]): { child: ChildProcess; out: { stdout: string; stderr: string }; exit: Promise<number | null> } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIGIL_") && !k.startsWith("SSH_")));
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, cliMain, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout!.on("data", (d: Buffer) => (out.stdout += d));
  child.stderr!.on("data", (d: Buffer) => (out.stderr += d));
  return { child, out, exit: new Promise((r) => child.on("close", (code) => r(code))) };
}

describe.skipIf(skip)("vigil up on a new host", () => {
  const ns = `vigil-upwarm-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), "vigil-upwarm-"));
  beforeAll(() => {
    execFileSync("ip", ["netns", "add", ns]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
  });
  afterAll(() => {
    for (const pid of execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean))
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        /* gone */
      }
    execFileSync("ip", ["netns", "del", ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  const upOnce = async (check: (summary: string, sock: string) => Promise<void>) => {
    const cfg = join(dir, "vigil.yaml");
    writeFileSync(cfg, "rules:\n  allowlist: [192.0.2.0/24]\n");
    const up = vigil(ns, ["up", "--interface", "lo", "--config", cfg, "--state-dir", join(dir, "state")]);
    try {
      await waitFor("Vigil is running", () => (/Stop with Ctrl-C/.test(up.out.stdout) ? true : up.child.exitCode !== null ? (() => { throw new Error(up.out.stderr); })() : null), 80_000);
      await check(up.out.stdout, join(dir, "state", "control.sock"));
    } finally {
      up.child.kill("SIGTERM");
      expect(await up.exit).toBe(143); // stopped by SIGTERM: 128 + 15, as up-stop.test.ts asserts
    }
  };
  const cli = async (args: string[]) => {
    const p = vigil(ns, args);
    return { code: await p.exit, ...p.out };
  };

  it("starts in a 24 h warm-up that the summary and vigil status name; ended, it stays ended on the next run", async () => {
    const t0 = Date.now() / 1000;
    await upOnce(async (summary, sock) => {
      const m = /blocking {3}WARM-UP until (\S+): enforcer nftables/.exec(summary);
      expect(m, summary).not.toBeNull();
      const until = Date.parse(m![1]!) / 1000;
      expect(until).toBeGreaterThanOrEqual(Math.floor(t0) + 86_400 - 1);
      expect(until).toBeLessThan(t0 + 86_400 + 120);
      expect((await cli(["status", "--socket", sock])).stdout).toMatch(/phase\s+warm-up until \S+ \(23h\d+m left\): automatic blocks are simulated/);
      const end = await cli(["warmup", "end", "--socket", sock]);
      expect(end.code, end.stderr).toBe(0);
      expect(end.stdout).toMatch(/^phase: blocking \(warm-up over since /);
    });
    await upOnce(async (summary, sock) => {
      expect(summary).toMatch(/blocking {3}LIVE: enforcer nftables/);
      expect((await cli(["status", "--socket", sock])).stdout).toMatch(/phase\s+blocking \(warm-up over since /);
    });
  }, 240_000);
});
