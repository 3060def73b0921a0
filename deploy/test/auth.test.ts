import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { subjects } from "@vigil/bus";
import { createNatsAuth, startNatsServer, type NatsAuth, type NatsServer } from "@vigil/stack";
import { freePort, repoRoot } from "@vigil/testing";
import { serviceMissing, startService, waitHealthy, type RunningService } from "./support/services.js";

/**
 * Issue 12: the attacks of security review F2, run as `nobody` against a stack
 * started the way `vigil up` starts it (per-service NATS users generated into
 * the state directory, rules on its unix socket, TCP only with a token).
 */
const missing = serviceMissing("rules");
const CLI = join(repoRoot, "packages/cli/dist/main.js");
const ATTACKER = join(repoRoot, "deploy/test/support/attacker.mjs");
const BUS_CLIENT = join(repoRoot, "deploy/test/support/bus-client.mjs");

function asNobody(cmd: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", cmd, ...args], { encoding: "utf8", timeout: 20_000, cwd: repoRoot, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const attack = (...args: string[]) => JSON.parse(asNobody(process.execPath, [ATTACKER, ...args]).stdout.trim().split("\n").pop() ?? "{}") as { ok: boolean; error?: string };

describe.skipIf(missing)("authentication everywhere (F2, F18, F22)", () => {
  let state: string;
  let auth: NatsAuth;
  let nats: NatsServer;
  let rules: RunningService;
  let grpcPort: number;
  const token = "t-" + Math.random().toString(36).slice(2);

  beforeAll(async () => {
    state = mkdtempSync(join(tmpdir(), "vigil-auth-"));
    chmodSync(state, 0o750); // as an install makes it: group vigil only
    auth = createNatsAuth(join(state, "secrets"));
    nats = await startNatsServer({ store: join(state, "nats"), authConfig: auth.configFile });
    grpcPort = await freePort();
    const metricsPort = await freePort();
    const cfg = {
      nats: { servers: [nats.url] },
      rules: { enforcer: "dry-run", allowlistDefaults: false, grpc: { host: "127.0.0.1", port: grpcPort, token }, metrics: { host: "127.0.0.1", port: metricsPort } },
    };
    writeFileSync(join(state, "vigil.yaml"), JSON.stringify(cfg));
    rules = startService("rules", { VIGIL_CONFIG: join(state, "vigil.yaml"), VIGIL_STATE_DIR: state, ...auth.env("rules") });
    await waitHealthy(rules, `http://127.0.0.1:${metricsPort}`);
  }, 60_000);

  afterAll(async () => {
    await rules?.stop();
    await nats?.stop();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it("keeps every credential file to its owner", () => {
    for (const c of Object.values(auth.credentials)) {
      expect(statSync(c.passwordFile).mode & 0o777).toBe(0o600);
      expect(attack("read", c.passwordFile).ok).toBe(false);
    }
    expect(statSync(auth.configFile).mode & 0o777).toBe(0o600);
    expect(attack("read", auth.configFile).ok).toBe(false);
  });

  it("refuses an anonymous NATS publish of a forged verdict and a subscription to frames", () => {
    const forged = attack("publish", nats.url, subjects.verdicts("pst"));
    expect(forged.ok).toBe(false);
    expect(forged.error).toMatch(/authoriz/i);
    const frames = attack("subscribe", nats.url, subjects.framesAll);
    expect(frames.ok).toBe(false);
  });

  it("limits each service's user to its own subjects, and a pst verdict still becomes a rule", () => {
    const run = spawnSync(process.execPath, [BUS_CLIENT, nats.url, join(state, "secrets")], { encoding: "utf8", cwd: repoRoot, timeout: 25_000 });
    const r = JSON.parse(run.stdout.trim().split("\n").pop() || "{}") as { events?: string[]; verdicts?: string[]; errors?: string[] };
    const why = `${run.stderr}\n--- rules ---\n${rules.output().slice(-3000)}`;
    expect(r.events?.some((e) => e.includes("192.0.2.55")), why).toBe(true);
    expect(r.verdicts).toContain("192.0.2.55");
    // pst posing as som: refused by the server, never delivered, never a rule.
    expect(r.verdicts).not.toContain("192.0.2.77");
    expect(r.events?.some((e) => e.includes("192.0.2.77"))).toBe(false);
    expect(r.errors?.join("\n")).toMatch(/publish to "vigil\.verdicts\.som"/i);
    // The console may not read frames.
    expect(r.errors?.join("\n")).toMatch(/subscription to "vigil\.frames\.\*"/i);
  }, 30_000);

  it("refuses gRPC over TCP without the token, and the CLI does not fall back from the socket to TCP", () => {
    const tcp = asNobody(process.execPath, [CLI, "rules", "ls", "--addr", `127.0.0.1:${grpcPort}`]);
    expect(tcp.code).not.toBe(0);
    expect(tcp.stderr + tcp.stdout).toMatch(/UNAUTHENTICATED|credentials/i);
    const sock = asNobody(process.execPath, [CLI, "rules", "ls", "--socket", join(state, "control.sock")]);
    expect(sock.code).not.toBe(0);
    expect(sock.stderr + sock.stdout).toMatch(/EACCES|permission denied/i);
    // No explicit target: the default socket, even where nobody cannot reach it; never TCP.
    const dflt = spawnSync("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath, CLI, "rules", "ls"], { encoding: "utf8", cwd: repoRoot, env: { PATH: process.env.PATH ?? "", VIGIL_STATE_DIR: state }, timeout: 20_000 });
    expect(dflt.status).not.toBe(0);
    expect(dflt.stderr + dflt.stdout).toMatch(/control\.sock/);
    expect(dflt.stderr + dflt.stdout).not.toMatch(/127\.0\.0\.1:9479/);
    // root, with the token, over TCP: the service works.
    const ok = execFileSync(process.execPath, [CLI, "rules", "ls", "--addr", `127.0.0.1:${grpcPort}`, "--token", token], { encoding: "utf8", cwd: repoRoot });
    expect(ok).toMatch(/192\.0\.2\.55/);
  });

  it("refuses to open gRPC on TCP without a token, naming the key (F15)", async () => {
    const svc = startService("rules", {
      VIGIL_CONFIG: "/dev/null",
      VIGIL_STATE_DIR: join(state, "no-token"),
      VIGIL_NATS__SERVERS: `[${nats.url}]`,
      VIGIL_RULES__ENFORCER: "dry-run",
      VIGIL_RULES__GRPC__HOST: "0.0.0.0",
      VIGIL_RULES__GRPC__PORT: String(await freePort()),
      VIGIL_RULES__METRICS__PORT: String(await freePort()),
      ...auth.env("rules"),
    });
    const exit = await new Promise<number | null>((r) => svc.child.once("exit", (code) => r(code)));
    expect(exit).not.toBe(0);
    expect(svc.output()).toMatch(/rules\.grpc\.port .*needs rules\.grpc\.token/);
  }, 30_000);
});
