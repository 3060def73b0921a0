import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, repoRoot, toolMissing, waitFor } from "@vigil/testing";

// `vigil up` must never leave its services behind: a closed output pipe or a
// signal stops every service and nats-server. Each run is in a network
// namespace of its own test file, so "nothing left" is "no process in it".

const cliMain = join(repoRoot, "packages/cli/dist/main.js");
const built = ["capture", "pst", "som", "rules"].every((s) => existsSync(join(repoRoot, "services", s, "dist", "main.js"))) && existsSync(cliMain);
const skip = netnsUnavailableReason() ?? toolMissing("nats-server") ?? (built ? null : "not built (node scripts/build.mjs)");
if (skip) console.warn(`vigil up stop tests skipped: ${skip}`);

const sh = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

function nsPids(ns: string): string[] {
  return execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once("close", (code) => r(code))));
}

describe.skipIf(skip)("vigil up stops what it started", () => {
  const ns = `vigil-upstop-${process.pid}`;
  let dir: string;

  beforeAll(() => {
    execFileSync("ip", ["netns", "add", ns]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    dir = mkdtempSync(join(tmpdir(), "vigil-upstop-"));
  });
  afterAll(() => {
    for (const pid of nsPids(ns)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        /* gone */
      }
    }
    execFileSync("ip", ["netns", "del", ns]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("`vigil up | head -1`: once head is gone, every service and nats-server stop and it exits 141 saying why", async () => {
    const state = join(dir, "pipe");
    const rc = join(dir, "pipe.rc");
    const err = join(dir, "pipe.err");
    const up = `${sh(process.execPath)} ${sh(cliMain)} up --interface lo --dry-run --state-dir ${sh(state)}`;
    const child = spawn("ip", ["netns", "exec", ns, "sh", "-c", `{ ${up}; echo $? > ${sh(rc)}; } 2> ${sh(err)} | head -1`], {
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIGIL_") && !k.startsWith("SSH_"))),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d));
    // head exits after the summary's first line; the pipeline ends only once vigil up has.
    expect(await Promise.race([exited(child), new Promise((r) => setTimeout(() => r("timeout"), 120_000))])).toBe(0);
    const stderr = readFileSync(err, "utf8");
    expect(stderr, stderr).toMatch(/vigil up: the reader of its output went away \(closed pipe\): stopped every service it started and nats-server/);
    expect(readFileSync(rc, "utf8").trim()).toBe("141");
    expect(out.split("\n").length).toBeLessThanOrEqual(2);
    // Services started detached (their own process groups) are gone too, and so are their pid files.
    await waitFor("the namespace to be empty", () => (nsPids(ns).length === 0 ? true : null), 10_000);
    expect(readdirSync(join(state, "run")).filter((f) => f.endsWith(".pid"))).toEqual([]);
  }, 150_000);

  it("--log-format takes pretty, json or auto and names anything else", async () => {
    const child = spawn(process.execPath, [cliMain, "up", "--log-format", "fancy"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d));
    expect(await exited(child)).toBe(2);
    expect(stderr.trim()).toBe('vigil up: --log-format: "fancy" is not one of json, pretty, auto');
  });

  for (const [signal, status, when] of [
    ["SIGHUP", 129, "running"],
    ["SIGTERM", 143, "starting"],
  ] as const) {
    it(`${signal} while ${when}: every service and nats-server stop, exit ${status} naming the signal`, async () => {
      const state = join(dir, signal);
      // The running one also shows the services' logs as readable lines (its stderr is a pipe: only when asked).
      const pretty = when === "running" ? ["--log-format", "pretty"] : [];
      const child = spawn("ip", ["netns", "exec", ns, process.execPath, cliMain, "up", "--interface", "lo", "--dry-run", "--state-dir", state, ...pretty], {
        env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIGIL_") && !k.startsWith("SSH_"))),
        stdio: ["ignore", "pipe", "pipe"],
      });
      const out = { stdout: "", stderr: "" };
      child.stdout!.on("data", (d: Buffer) => (out.stdout += d));
      child.stderr!.on("data", (d: Buffer) => (out.stderr += d));
      const code = exited(child);
      if (when === "running") await waitFor("Vigil is running", () => (/Stop with Ctrl-C/.test(out.stdout) ? true : null), 100_000);
      // Starting: nats-server is up and the services are being launched, not yet all answering.
      else await waitFor("services launched", () => (existsSync(join(state, "run")) && readdirSync(join(state, "run")).length > 0 ? true : null), 60_000, 20);
      child.kill(signal);
      expect(await code).toBe(status);
      expect(out.stderr).toContain(`vigil up: received ${signal}: stopped every service it started and nats-server`);
      if (when === "starting") expect(out.stdout).not.toMatch(/Vigil is running/);
      if (pretty.length) {
        expect(out.stderr).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  pst      pst detector running shards=16/m);
        expect(out.stderr).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  rules    /m);
        expect(out.stderr).not.toMatch(/^\{"level"/m);
        expect(out.stderr).not.toContain("\x1b["); // not a terminal, no VIGIL_LOG_COLOR
      }
      await waitFor("the namespace to be empty", () => (nsPids(ns).length === 0 ? true : null), 10_000);
    }, 150_000);
  }
});
