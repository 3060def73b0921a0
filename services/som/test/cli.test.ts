import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "@vigil/bus";
import { disposeNatsServer, freePort, repoRoot, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { FEATURE_COUNT } from "../src/index.js";
import { Collector, replay, scenario, T0 } from "./support/scenarios.js";

const vigil = join(repoRoot, "packages/cli/dist/main.js");
const daemon = join(repoRoot, "services/som/dist/main.js");
const labBenign = join(repoRoot, "lab/captures/train/benign-2.pcap");
const builtReason = !existsSync(vigil) || !existsSync(daemon) ? "needs the build (node scripts/build.mjs)" : null;
if (builtReason) console.warn(`SOM CLI/daemon tests skipped: ${builtReason}`);

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [vigil, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000 });
}

describe.skipIf(builtReason)("vigil train som / som export / som daemon", () => {
  const tmp = mkdtempSync(join(tmpdir(), "vigil-som-cli-"));
  const emptyConfig = join(tmp, "vigil.yaml");
  writeFileSync(emptyConfig, "# defaults only\n");
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connectBus({ servers: [nats.url], name: "som-cli-test" });
  });
  afterAll(async () => {
    await nc?.close();
    if (nats) await disposeNatsServer(nats);
    rmSync(tmp, { recursive: true, force: true });
  });

  it.skipIf(!existsSync(labBenign))("trains a versioned model from a capture with a progress bar, and exports the map", { timeout: 120_000 }, () => {
    const out = join(tmp, "model");
    const r = run(["train", "som", "--pcap", labBenign, "--local", "10.77.0.10/32,fd77::10/128", "--out", out, "--rows", "4", "--cols", "5", "--epochs", "3", "--seed", "9"]);
    expect(r.stderr).toMatch(/train som .*100%/);
    expect(r.status).toBe(0);
    const model = JSON.parse(readFileSync(join(out, "som-model.json"), "utf8"));
    expect(model).toMatchObject({ format: "vigil-som-model", formatVersion: 1, name: "custom", version: 1 });
    expect(model.map.weights).toHaveLength(4 * 5 * FEATURE_COUNT);
    expect(model.training).toMatchObject({ seed: 9, epochs: 3, rows: 4, cols: 5, topology: "hexagonal", inputs: ["benign-2.pcap"] });
    expect(model.training.dataSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(model.threshold).toBeGreaterThan(0);
    const again = join(tmp, "model2");
    expect(run(["train", "som", "--pcap", labBenign, "--local", "10.77.0.10/32,fd77::10/128", "--out", again, "--rows", "4", "--cols", "5", "--epochs", "3", "--seed", "9"]).status).toBe(0);
    const model2 = JSON.parse(readFileSync(join(again, "som-model.json"), "utf8"));
    expect(model2.map.weights).toEqual(model.map.weights);
    expect(model2.training.dataSha256).toBe(model.training.dataSha256);

    const attack = join(repoRoot, "lab/captures/eval/flood-syn.pcap");
    if (existsSync(attack)) {
      const labelled = join(tmp, "labelled");
      const r3 = run(["train", "som", "--pcap", labBenign, "--attack-pcap", `${attack}:syn-flood`, "--local", "10.77.0.10/32", "--out", labelled, "--epochs", "3"]);
      expect(r3.status).toBe(0);
      const m3 = JSON.parse(readFileSync(join(labelled, "som-model.json"), "utf8"));
      expect(m3.training.inputs).toEqual(["benign-2.pcap", "flood-syn.pcap:syn-flood"]);
      expect(Object.values(m3.labels).some((l) => (l as Record<string, number>)["syn-flood"] > 0)).toBe(true);
    }

    const exp = run(["som", "export", "--model", out, "--state-dir", join(tmp, "nostate")]);
    expect(exp.status).toBe(0);
    const map = JSON.parse(exp.stdout);
    expect(map.uMatrix).toHaveLength(20);
    expect(map.hits.reduce((a: number, b: number) => a + b, 0)).toBe(model.training.benignWindows);
    expect(map).toMatchObject({ rows: 4, cols: 5, topology: "hexagonal", model: "som/custom@1" });
  });

  it("rejects bad command lines with a clear message", () => {
    const noOut = run(["train", "som", "--pcap", "x.pcap"]);
    expect(noOut.status).not.toBe(0);
    const missing = run(["train", "som", "--pcap", join(tmp, "missing.pcap"), "--out", tmp]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("missing.pcap does not exist");
    const badTopo = run(["train", "som", "--pcap", daemon, "--out", tmp, "--topology", "round"]);
    expect(badTopo.status).toBe(2);
    expect(badTopo.stderr).toContain("--topology must be hexagonal or rectangular");
    const badModel = run(["som", "export", "--model", tmp]);
    expect(badModel.status).toBe(1);
    expect(badModel.stderr).toContain("cannot read SOM model");
  });

  it("runs as a daemon: consumes a replay, publishes verdicts and end of stream, serves metrics, stops cleanly", { timeout: 60_000 }, async () => {
    const collector = new Collector(nc);
    const port = await freePort();
    const proc = spawn(process.execPath, [daemon], {
      env: {
        ...process.env,
        VIGIL_CONFIG: emptyConfig,
        VIGIL_NATS__SERVERS: `[${nats.url}]`,
        VIGIL_STATE_DIR: join(tmp, "state"),
        VIGIL_SOM__METRICS__PORT: String(port),
        VIGIL_SOM__INSTANCE: "daemon-1",
        VIGIL_SOM__IDLE_MS: "10000",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor("daemon running", () => stderr.includes("SOM detector running"), 20_000);
      await new Promise((r) => setTimeout(r, 1500));
      await replay(nc, "daemon-src", scenario(401, (s) => s.synFlood(T0 + 10, 4, 3000)));
      await waitFor("end of stream", () => collector.eosFor("daemon-src").length === 1, 30_000);
      expect(collector.for("daemon-src").map((v) => [v.aggregate, v.instance])).toEqual([[true, "daemon-1"]]);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/vigil_som_verdicts_total\{[^}]*kind="aggregate"[^}]*\} 1/);
      expect(metrics).toMatch(/vigil_som_owned_shards\{[^}]*\} 16/);
      expect(metrics).toContain("vigil_som_lag_seconds");
    } finally {
      const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
      proc.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });

  it("fails fast with a clear error on a bad configuration", () => {
    const r = spawnSync(process.execPath, [daemon], {
      encoding: "utf8",
      env: { ...process.env, VIGIL_CONFIG: emptyConfig, VIGIL_SOM__MIN_WINDOW_PACKETS: "-3" },
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("som.minWindowPackets");
  });
});
