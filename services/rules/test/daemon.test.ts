import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeNatsServer, freePort, repoRoot, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { ControlApi } from "../src/client.js";
import type { Status } from "@vigil/proto";

const main = join(repoRoot, "services/rules/dist/main.js");
const skip = existsSync(main) ? toolMissing("nats-server") : "services/rules is not built (run the build)";
if (skip) console.warn(`rules daemon test skipped: ${skip}`);

describe.skipIf(skip)(`the rules daemon (dist/main.js)${skip ? ` (skipped: ${skip})` : ""}`, () => {
  let nats: NatsServerHandle;
  let dir: string;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    dir = mkdtempSync(join(tmpdir(), "vigil-rulesd-"));
  });
  afterAll(async () => {
    if (nats) await disposeNatsServer(nats);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("starts from configuration, serves the API, socket and metrics, and stops cleanly on SIGTERM", async () => {
    const config = join(dir, "vigil.yaml");
    writeFileSync(config, "rules:\n  enforcer: dry-run\n  allowlist: [192.0.2.0/24]\n");
    const grpcPort = await freePort();
    const metricsPort = await freePort();
    const child = spawn(process.execPath, [main], {
      env: {
        ...process.env,
        VIGIL_CONFIG: config,
        VIGIL_STATE_DIR: dir,
        VIGIL_NATS__SERVERS: `[${nats.url}]`,
        VIGIL_RULES__GRPC__PORT: String(grpcPort),
        VIGIL_RULES__GRPC__TOKEN: "daemon-test-token",
        VIGIL_RULES__METRICS__PORT: String(metricsPort),
        VIGIL_RULES__BUCKET: "daemon_test",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
    try {
      await waitFor("control socket", () => existsSync(join(dir, "control.sock")) || null, 20_000);
      const api = new ControlApi({ socket: join(dir, "control.sock"), token: "daemon-test-token" });
      const status = await api.call<object, Status>("getStatus", {});
      api.close();
      expect(status).toMatchObject({ enforcer: "dry-run", dryRun: true, version: "0.1.0" });
      const tcp = new ControlApi({ addr: `127.0.0.1:${grpcPort}`, token: "daemon-test-token" });
      expect((await tcp.call<object, Status>("getStatus", {})).enforcer).toBe("dry-run");
      tcp.close();
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(metrics).toContain("vigil_rules_decision_latency_seconds_bucket");
      expect(metrics).toContain("vigil_rules_verdicts_received_total");
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited, stderr.slice(-2000)).toBe(0);
    expect(stderr).toContain("rules service running");
  }, 40_000);

  it("exits with a clear error naming a bad configuration key", async () => {
    const config = join(dir, "bad.yaml");
    writeFileSync(config, "rules:\n  baseTtlS: -5\n");
    const child = spawn(process.execPath, [main], { env: { ...process.env, VIGIL_CONFIG: config, VIGIL_STATE_DIR: dir }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res) => child.once("exit", (c) => res(c)));
    expect(code).toBe(1);
    expect(stderr).toMatch(/rules\.baseTtlS: .*in .*bad\.yaml/);
  }, 20_000);
});
