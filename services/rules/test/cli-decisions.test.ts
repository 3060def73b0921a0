import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeNatsServer, freePort, repoRoot, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { EXIT } from "@vigil/lifecycle";
import { startGrpcServer, type GrpcHandle } from "../src/grpc-server.js";
import { codecs, subjects } from "@vigil/bus";
import { Heartbeat } from "@vigil/proto";
import { publishVerdict, startService, verdict, type Running } from "./support/rules.js";

// The decisions workflow through the built `vigil` binary, spawned as a
// process against a real rules service (real nats-server, gRPC on a unix socket).

const cliMain = join(repoRoot, "packages/cli/dist/main.js");
const skip = toolMissing("nats-server") ?? (existsSync(cliMain) ? null : "the CLI is not built (node scripts/build.mjs)");
if (skip) console.warn(`CLI decisions tests skipped: ${skip}`);

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `vigil ARGS`; with closeStdout the reader goes away at once (`| head -0`). */
function vigil(args: string[], opts: { closeStdout?: boolean; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliMain, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    if (opts.closeStdout) child.stdout.destroy();
    else child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const t = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

const noStack = (r: Ran) => {
  expect(r.stderr).not.toMatch(/\n\s+at |Error:|node:internal/);
  expect(r.stderr.trim().split("\n").length).toBeLessThanOrEqual(1);
};

describe.skipIf(skip)("vigil CLI: errors are one line, broken pipes are quiet", () => {
  it("a closed socket: one line naming it, exit 69", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-cli-"));
    try {
      for (const cmd of [["status"], ["rules", "ls"], ["verdicts", "show", "x"], ["allowlist"], ["watch"]]) {
        const r = await vigil([...cmd, "--socket", join(dir, "gone.sock")]);
        expect(r.code, cmd.join(" ")).toBe(EXIT.UNAVAILABLE);
        expect(r.stderr).toMatch(/cannot reach the rules service/);
        noStack(r);
      }
      const w = await vigil(["watch", "--addr", `127.0.0.1:${await freePort()}`]);
      expect(w.code).toBe(EXIT.UNAVAILABLE);
      expect(w.stdout).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("bad arguments: one line, exit 2", async () => {
    for (const args of [["rules", "ls", "--limit", "-1"], ["rules", "rm", "--address", "not-an-ip"], ["rules", "rm", "1", "--address", "192.0.2.1"], ["watch", "--count", "x"], ["verdicts", "show"], ["allowlist", "extra"]]) {
      const r = await vigil(args);
      expect(r.code, args.join(" ")).toBe(EXIT.USAGE);
      noStack(r);
    }
  });

  it("`vigil pst export | head`: the reader leaves, the command exits 0 without a word", async () => {
    const r = await vigil(["pst", "export"], { closeStdout: true });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});

describe.skipIf(skip)("vigil CLI: the decisions workflow against a running rules service", () => {
  let nats: NatsServerHandle;
  let r: Running;
  let server: GrpcHandle;
  let dir: string;
  let c: string[];

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    r = await startService(nats.url, { bucket: "cli_decisions", dryRun: true, allowlist: ["203.0.113.0/24"] });
    dir = mkdtempSync(join(tmpdir(), "vigil-cli-"));
    const sock = join(dir, "control.sock");
    server = await startGrpcServer(r.svc, { host: "127.0.0.1", port: await freePort(), socket: sock, token: "tok" });
    c = ["--socket", sock, "--token", "tok"];
  });
  afterAll(async () => {
    await server?.close();
    await r?.stop();
    if (nats) await disposeNatsServer(nats);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("`vigil rules ls --json | head -1`: exits 0 quietly", async () => {
    const res = await vigil(["rules", "ls", "--json", ...c], { closeStdout: true });
    expect(res).toMatchObject({ code: 0, stderr: "" });
  });

  it("verdicts show ID: the evidence the console shows; rules rm --address removes the source's rules", async () => {
    const v = verdict("192.0.2.41", { handshakes: 1, label: "ssh-brute-force" });
    publishVerdict(r.nc, v);
    const rec = await waitFor("blocked", () => r.svc.listVerdicts({}).find((x) => x.verdict?.id === v.id && x.ruleId) ?? null);
    const manual = await vigil(["rules", "add", "block", "192.0.2.0/24", "--ttl", "1h", ...c, "--json"]);
    expect(manual.code).toBe(0);
    const wide = JSON.parse(manual.stdout);

    const show = await vigil(["verdicts", "show", v.id.slice(0, 14), ...c]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/detector\s+pst \(pst-1\)/);
    expect(show.stdout).toMatch(/label\s+ssh-brute-force/);
    expect(show.stdout).toMatch(/score\s+5\.000 vs threshold 3\.000 \(at or above\)/);
    expect(show.stdout).toMatch(/evidence\s+4 connection\(s\), 30 packet\(s\)/);
    expect(show.stdout).toMatch(/capture time\s+2023-11-14T22:13:20\.\d{3}Z \.\. 2023-11-14T22:13:20\.\d{3}Z/);
    expect(show.stdout).toMatch(new RegExp(`outcome\\s+blocked \\(rule ${rec.ruleId}\\)`));
    expect(show.stdout).toMatch(/192\.0\.2\.41:40000\s+10\.0\.0\.1:22\s+ssh\s+4\.000/);
    expect(JSON.parse((await vigil(["verdicts", "show", v.id, "--json", ...c])).stdout).verdict.id).toBe(v.id);
    const none = await vigil(["verdicts", "show", "pst-nope", ...c]);
    expect(none.code).toBe(EXIT.FAILURE);
    expect(none.stderr).toMatch(/no verdict "pst-nope"/);

    const rm = await vigil(["rules", "rm", "--address", "192.0.2.41", ...c]);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toMatch(new RegExp(`removed rule ${rec.ruleId} \\(192\\.0\\.2\\.41/32`));
    expect(rm.stdout).toMatch(new RegExp(`rule ${wide.id} \\(192\\.0\\.2\\.0/24\\) still covers 192\\.0\\.2\\.41`));
    expect(r.svc.listRules({}).map((x) => x.srcCidr)).toEqual(["192.0.2.0/24"]);
    const again = await vigil(["rules", "rm", "--address", "192.0.2.41", ...c]);
    expect(again.code).toBe(EXIT.FAILURE);
    expect(again.stdout).toMatch(/no active rule has the source 192\.0\.2\.41\/32/);
  });

  it("allowlist: the effective list with where each entry comes from", async () => {
    const a = await vigil(["allowlist", ...c]);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^ADDRESS\s+FROM/);
    expect(a.stdout).toMatch(/203\.0\.113\.0\/24\s+\S+/);
    const j = JSON.parse((await vigil(["allowlist", "--json", ...c])).stdout);
    expect(j.allowlist).toContainEqual(expect.objectContaining({ cidr: "203.0.113.0/24" }));
  });

  it("watch: a header and aligned columns", async () => {
    const watching = vigil(["watch", "--count", "2", ...c]);
    await new Promise((res) => setTimeout(res, 1500));
    const v = verdict("192.0.2.77", { handshakes: 1 });
    publishVerdict(r.nc, v);
    const w = await watching;
    expect(w.code).toBe(0);
    const lines = w.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TIME\s+EVENT\s+SOURCE\s+BY\s+DETAIL$/);
    expect(lines).toHaveLength(3);
    const col = lines[0]!.indexOf("SOURCE");
    for (const l of lines.slice(1)) expect(l.slice(col)).toMatch(/^192\.0\.2\.77/);
    expect(lines.slice(1).some((l) => /verdict\s+192\.0\.2\.77\s+pst\s+syn-scan score 5\.000\/3\.000 -> blocked/.test(l))).toBe(true);
  });

  it("bus- and store-supplied text reaches the terminal with its control characters shown, never obeyed", async () => {
    const evil = "\x1b[2J\x1b]0;pwned\x07";
    const bidi = "ok\u202egnp.exe";
    const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
    const watching = vigil(["watch", "--verdicts", "--count", "1", ...c]);
    await new Promise((res) => setTimeout(res, 1500));
    const v = verdict("192.0.2.90", { handshakes: 1, label: `scan${evil}`, summary: `sum${evil}${bidi}`, instance: `pst${evil}`, model: bidi });
    publishVerdict(r.nc, v);
    await waitFor("the verdict", () => r.svc.listVerdicts({}).find((x) => x.verdict?.id === v.id) ?? null);
    const added = await vigil(["rules", "add", "block", "198.51.100.9", "--ttl", "1h", "--reason", `why${evil}`, ...c]);
    const beat = Heartbeat.fromPartial({ service: "som", instance: `som${evil}`, version: bidi, shards: [0], ts: Date.now() / 1000 });
    r.nc.publish(subjects.heartbeat("som"), codecs.heartbeat.encode(beat));
    await waitFor("the heartbeat", () => r.svc.status().detectors.find((d) => d.instance.startsWith("som")) ?? null);
    const status = await vigil(["status", ...c]);
    const outputs = { watch: await watching, verdicts: await vigil(["verdicts", ...c]), show: await vigil(["verdicts", "show", v.id, ...c]), rules: await vigil(["rules", "ls", ...c]), added, status };
    for (const [name, o] of Object.entries(outputs)) {
      expect(o.code, name).toBe(0);
      expect(o.stdout, name).not.toMatch(raw);
      expect(o.stdout, name).toContain("\\x1b[2J\\x1b]0;pwned\\x07");
    }
    expect(outputs.show.stdout).toMatch(/summary\s+sum\\x1b\[2J\\x1b\]0;pwned\\x07ok\\u202egnp\.exe/);
    expect(outputs.status.stdout).toContain("ok\\u202egnp.exe");
    // JSON output is escaped by JSON itself, and keeps the text exact.
    expect(JSON.parse((await vigil(["verdicts", "show", v.id, "--json", ...c])).stdout).verdict.label).toBe(`scan${evil}`);
  });

  it("rules extend: a detector's block stays the detector's and lasts longer; never shorter, never unchecked", async () => {
    const v = verdict("192.0.2.60", { handshakes: 1 });
    publishVerdict(r.nc, v);
    const rec = await waitFor("blocked", () => r.svc.listVerdicts({}).find((x) => x.verdict?.id === v.id && x.ruleId) ?? null);
    const before = r.svc.rules.get(rec.ruleId)!;
    const historyBefore = (await r.svc.ruleRecord(rec.ruleId))!.history;
    const ext = await vigil(["rules", "extend", String(rec.ruleId), "--ttl", "3h", ...c]);
    expect(ext.code, ext.stderr).toBe(0);
    expect(ext.stdout).toMatch(new RegExp(`^${rec.ruleId}\\s+drop\\s+192\\.0\\.2\\.60/32\\s.*\\sdetector\\s+(2h59m|3h0m)\\s`, "m"));
    const after = r.svc.rules.get(rec.ruleId)!;
    expect(after.rule).toMatchObject({ origin: before.rule.origin, detector: "pst", reason: before.rule.reason, verdictIds: [v.id] });
    expect(after.rule.expiresAt).toBeGreaterThan(Date.now() / 1000 + 3 * 3600 - 30);
    const history = (await r.svc.ruleRecord(rec.ruleId))!.history;
    expect(history.at(-1)).toMatchObject({ event: "updated", why: expect.stringMatching(/^extended: expires /) });
    expect(history.length).toBe(historyBefore.length + 1);

    const shorter = await vigil(["rules", "extend", String(rec.ruleId), "--ttl", "1m", ...c]);
    expect(shorter.code).toBe(EXIT.USAGE);
    expect(shorter.stderr).toMatch(/ttl_s: rule \d+ expires in \d+ s: a ttl of 60 s would shorten it/);
    expect(r.svc.rules.get(rec.ruleId)!.rule.expiresAt).toBe(after.rule.expiresAt);
    const loop = await vigil(["rules", "add", "block", "127.0.0.7", "--ttl", "10m", "--force", "--json", ...c]);
    const loopId = JSON.parse(loop.stdout).id;
    const locked = await vigil(["rules", "extend", String(loopId), "--ttl", "1h", ...c]);
    expect(locked.code).toBe(EXIT.FAILURE);
    expect(locked.stderr).toMatch(/refused: VIGIL_ERR_LOCKOUT: .*covers 127\.0\.0\.0\/8 \(loopback\)/);
    expect((await vigil(["rules", "extend", String(loopId), "--ttl", "1h", "--force", ...c])).code).toBe(0);
    const gone = await vigil(["rules", "extend", "999", "--ttl", "1h", ...c]);
    expect(gone.code).toBe(EXIT.FAILURE);
    expect(gone.stderr).toMatch(/not found: no active rule 999/);
    for (const args of [["rules", "extend", String(rec.ruleId)], ["rules", "extend", "x", "--ttl", "1h"], ["rules", "extend", String(rec.ruleId), "--ttl", "soon"]]) {
      const u = await vigil([...args, ...c]);
      expect(u.code, args.join(" ")).toBe(EXIT.USAGE);
      noStack(u);
    }
  });
});

describe.skipIf(skip)("vigil watch when the rules service goes away", () => {
  it("says so in one line and exits 69 instead of ending silently with 0", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const r = await startService(nats.url, { bucket: "cli_watch_gone", dryRun: true });
    const dir = mkdtempSync(join(tmpdir(), "vigil-cli-"));
    const sock = join(dir, "control.sock");
    const server = await startGrpcServer(r.svc, { host: "127.0.0.1", port: await freePort(), socket: sock, token: "tok" });
    try {
      const watching = vigil(["watch", "--socket", sock, "--token", "tok"]);
      await new Promise((res) => setTimeout(res, 1500));
      await server.close();
      const w = await watching;
      expect(w.code).toBe(EXIT.UNAVAILABLE);
      expect(w.stdout).toMatch(/^TIME\s+EVENT/);
      expect(w.stderr).toMatch(/^vigil watch: the rules service closed the stream/);
      noStack(w);
    } finally {
      await server.close().catch(() => undefined);
      await r.stop();
      await disposeNatsServer(nats);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
