import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeNatsServer, freePort, repoRoot, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { EXIT } from "@vigil/lifecycle";
import { codecs, subjects } from "@vigil/bus";
import { Heartbeat } from "@vigil/proto";
import { parseDuration } from "../src/cli.js";
import { startGrpcServer, type GrpcHandle } from "../src/grpc-server.js";
import { publishVerdict, runCommand, startService, verdict, type Running } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
if (natsSkip) console.warn(`CLI tests skipped: ${natsSkip}`);

describe("CLI without a service", () => {
  it("exits 69 when the service is unavailable and 2 on usage errors", async () => {
    const port = await freePort();
    const res = await runCommand(["status", "--addr", `127.0.0.1:${port}`]);
    expect(res.code).toBe(EXIT.UNAVAILABLE);
    expect(res.stderr).toMatch(/cannot reach the rules service at 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
    expect((await runCommand(["rules", "frobnicate"])).code).toBe(EXIT.USAGE);
    expect((await runCommand(["rules", "add", "block"])).code).toBe(EXIT.USAGE);
    expect((await runCommand(["rules", "add", "block", "10.0.0.1", "--ttl", "soon"])).stderr).toMatch(/--ttl: "soon" is not a duration/);
    expect((await runCommand(["rules", "add", "block", "10.0.0.1", "--port", "a-b"])).code).toBe(EXIT.USAGE);
    expect((await runCommand(["status", "--bogus"])).code).toBe(EXIT.USAGE);
    expect((await runCommand(["false-alarm"])).code).toBe(EXIT.USAGE);
    expect(parseDuration("10m", "x")).toBe(600);
    expect(parseDuration("1d", "x")).toBe(86400);
  });
});

describe.skipIf(natsSkip)("CLI against a running service", () => {
  let nats: NatsServerHandle;
  let r: Running;
  let server: GrpcHandle;
  let dir: string;
  let sock: string;

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    r = await startService(nats.url, { bucket: "cli_test", dryRun: true });
    dir = mkdtempSync(join(tmpdir(), "vigil-cli-"));
    sock = join(dir, "control.sock");
    server = await startGrpcServer(r.svc, { host: "127.0.0.1", port: await freePort(), socket: sock, token: "tok" });
  });
  afterAll(async () => {
    await server?.close();
    await r?.stop();
    if (nats) await disposeNatsServer(nats);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("status, rules add/ls/rm, verdicts, false-alarm, watch: tables and --json", async () => {
    const c = ["--socket", sock, "--token", "tok"];
    expect((await runCommand(["status", "--socket", sock])).code).toBe(EXIT.FAILURE); // no token: refused
    const st = await runCommand(["status", ...c]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/enforcer\s+dry-run/);
    const stj = JSON.parse((await runCommand(["status", ...c, "--json"])).stdout);
    expect(stj).toMatchObject({ enforcer: "dry-run", dryRun: true });
    // A detector that lost frames says so in its row, next to one that lost nothing.
    const beat = (instance: string, frames: number, framesLost: number, batchesLost: number, framesShed = 0, shedLevel = 0) =>
      r.nc.publish(subjects.heartbeat("som"), codecs.heartbeat.encode(Heartbeat.fromPartial({ service: "som", instance, shards: [0], ts: Date.now() / 1000, frames, framesLost, batchesLost, framesShed, shedLevel })));
    beat("som-lossy", 9_600, 400, 3);
    // One that shed under overload: deliberate sampling, shown apart from loss.
    beat("som-fine", 5_000, 0, 0, 1_250);
    // One shedding now: its level says so, beside the count since start.
    beat("som-shedding", 8_000, 0, 0, 2_000, 2);
    await waitFor("the three heartbeats", () => r.svc.status().detectors.filter((d) => d.service === "som").length === 3 || null);
    const lossy = await runCommand(["status", ...c]);
    expect(lossy.stdout).toMatch(/^SERVICE\s+INSTANCE\s+VERSION\s+LAST HEARTBEAT\s+SHARDS\s+FRAMES\s+LOST\s+SHED$/m);
    expect(lossy.stdout).toMatch(/^som\s+som-lossy\s.*\s9600\s+LOST 400 frames \(4\.0%\) \+ 3 batches\s+-$/m);
    expect(lossy.stdout).toMatch(/^som\s+som-fine\s.*\s5000\s+0\s+1250 \(25\.0%\)$/m);
    expect(lossy.stdout).toMatch(/^som\s+som-shedding\s.*\s8000\s+0\s+2000 \(25\.0%\), level 2 now$/m);

    const add = await runCommand(["rules", "add", "block", "198.51.100.0/24", "--proto", "tcp", "--port", "22", "--direction", "in", "--ttl", "1h", "--reason", "ssh abuse", ...c, "--json"]);
    expect(add.code).toBe(0);
    const rule = JSON.parse(add.stdout);
    expect(rule).toMatchObject({ srcCidr: "198.51.100.0/24", protocol: 6, dportMin: 22, dportMax: 22, direction: "DIRECTION_INGRESS", origin: "ORIGIN_MANUAL" });
    const bad = await runCommand(["rules", "add", "block", "198.51.100.0/33", ...c]);
    expect(bad.code).toBe(EXIT.USAGE);
    expect(bad.stderr).toMatch(/rule\.src_cidr/);

    const ls = await runCommand(["rules", "ls", ...c]);
    expect(ls.stdout).toMatch(/^ID\s+ACTION\s+SOURCE/);
    expect(ls.stdout).toMatch(new RegExp(`${rule.id}\\s+drop\\s+198\\.51\\.100\\.0/24\\s+\\*\\s+tcp\\s+22\\s+ingress\\s+manual\\s+(59m|1h0m)`));
    const lsj = JSON.parse((await runCommand(["rules", "ls", "--origin", "manual", ...c, "--json"])).stdout);
    expect(lsj.rules).toHaveLength(1);

    const v = verdict("192.0.2.31", { handshakes: 1, label: "ssh-brute-force" });
    publishVerdict(r.nc, v);
    await waitFor("verdict", () => r.svc.listVerdicts({}).length === 1 || null);
    const vs = await runCommand(["verdicts", ...c]);
    expect(vs.stdout).toMatch(new RegExp(`${v.id}\\s+pst\\s+192\\.0\\.2\\.31\\s+5\\.000\\s+ssh-brute-force\\s+blocked`));
    const vj = JSON.parse((await runCommand(["verdicts", "--detector", "pst", ...c, "--json"])).stdout);
    expect(vj.verdicts[0]).toMatchObject({ outcome: "blocked", verdict: { id: v.id } });

    const fa = await runCommand(["false-alarm", v.id, "--allow-ttl", "2h", "--comment", "backup", ...c]);
    expect(fa.code).toBe(0);
    expect(fa.stdout).toMatch(/removed rule\(s\) \d+/);
    expect(fa.stdout).toMatch(/allow rule \d+ added/);

    // watch captures stdout until it has seen two events; they are caused without the CLI meanwhile.
    const watching = runCommand(["watch", "--rules", "--count", "2", ...c, "--json"]);
    await new Promise((res) => setTimeout(res, 200));
    const other = verdict("192.0.2.32", { handshakes: 1 });
    publishVerdict(r.nc, other);
    await waitFor("blocked", () => r.svc.listVerdicts({}).length === 2 || null);
    await r.svc.markFalseAlarm(other.id, 60, "", "test");
    const w = await watching;
    expect(w.code).toBe(0);
    expect(w.stdout.trim().split("\n").map((l) => JSON.parse(l).rule.kind)).toEqual(["KIND_ADDED", "KIND_REMOVED"]);
    expect((await runCommand(["false-alarm", "nope", ...c])).code).toBe(EXIT.FAILURE);

    const rm = await runCommand(["rules", "rm", String(rule.id), ...c]);
    expect(rm).toMatchObject({ code: 0, stdout: `removed rule ${rule.id}\n` });
    expect((await runCommand(["rules", "rm", String(rule.id), ...c])).code).toBe(EXIT.FAILURE);
  });

  const cliMain = join(repoRoot, "packages/cli/dist/main.js");
  const builtSkip = existsSync(cliMain) && existsSync(join(repoRoot, "services/rules/dist/cli.js")) ? null : "the CLI is not built (run the build)";
  it.skipIf(builtSkip)(`the built \`vigil\` binary runs the subcommands${builtSkip ? ` (skipped: ${builtSkip})` : ""}`, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [cliMain, "rules", "ls", "--socket", sock, "--token", "tok", "--json"]);
    expect(JSON.parse(stdout)).toHaveProperty("rules");
    const err = await promisify(execFile)(process.execPath, [cliMain, "status", "--addr", `127.0.0.1:${await freePort()}`]).catch((e: { code: number }) => e);
    expect((err as { code: number }).code).toBe(69);
  });
});
