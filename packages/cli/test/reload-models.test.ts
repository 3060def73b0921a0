import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { readPcapRecords } from "@vigil/packet-sources";
import { splitByShard } from "@vigil/pst";
import { writePid } from "@vigil/stack";
import { disposeNatsServer, freePort, repoRoot, spawnService, startNatsServer, toolMissing, waitFor, type NatsServerHandle, type ServiceProcess } from "@vigil/testing";

// The guided training path's last step: the running detectors (real daemons on
// a real nats-server) take new models on `vigil reload` without a restart,
// keep their connections and windows and every frame, and refuse a corrupt
// model while the running one stays.

const cliMain = join(repoRoot, "packages/cli/dist/main.js");
const capture = join(repoRoot, "lab/captures/train/benign-1.pcap");
const built = ["pst", "som"].every((s) => existsSync(join(repoRoot, "services", s, "dist", "main.js"))) && existsSync(cliMain);
const skip = toolMissing("nats-server") ?? (built ? null : "not built (node scripts/build.mjs)") ?? (existsSync(capture) ? null : `${capture} missing`);
if (skip) console.warn(`model reload tests skipped: ${skip}`);

const SHARDS = 16;
const LOCAL = ["10.77.0.10/32", "fd77::10/128"];

function vigil(args: string[]) {
  return spawnSync(process.execPath, [cliMain, ...args], { encoding: "utf8", timeout: 60_000 });
}

async function metric(port: number, name: string, labels = ""): Promise<number | null> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? "").includes(labels)) return Number(m[3]);
  }
  return null;
}

async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** Publishes the capture's frames as capture would (by shard, in order); end of stream only when told. */
class Feeder {
  private readonly seq = new Array<number>(SHARDS).fill(0);
  private readonly totals = new Array<number>(SHARDS).fill(0);
  frames = 0;
  constructor(
    private readonly nc: NatsConnection,
    private readonly sourceId: string,
  ) {}

  async publish(batches: Uint8Array[]): Promise<void> {
    for (const batch of batches)
      splitByShard(batch, SHARDS).forEach((records, shard) => {
        if (!records.byteLength) return;
        let n = 0;
        for (let off = 0; off < records.byteLength; n++) off += 24 + (records[off + 16] | (records[off + 17] << 8));
        this.frames += n;
        this.totals[shard] += n;
        this.nc.publish(
          subjects.frames(shard),
          codecs.frameBatch.encode({ sourceId: this.sourceId, seq: ++this.seq[shard], shard, shardCount: SHARDS, frameCount: n, records: Buffer.from(records), droppedBefore: 0, endOfStream: false, framesTotal: 0 }),
        );
      });
    await this.nc.flush();
  }

  async end(): Promise<void> {
    for (let shard = 0; shard < SHARDS; shard++)
      this.nc.publish(
        subjects.frames(shard),
        codecs.frameBatch.encode({ sourceId: this.sourceId, seq: ++this.seq[shard], shard, shardCount: SHARDS, frameCount: 0, records: Buffer.alloc(0), droppedBefore: 0, endOfStream: true, framesTotal: this.totals[shard] }),
      );
    await this.nc.flush();
  }
}

describe.skipIf(skip)("vigil reload: the detectors take new models without a restart", () => {
  let dir: string;
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let batches: Uint8Array[];
  const procs: ServiceProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vigil-reload-"));
    nats = await startNatsServer();
    nc = await connectBus({ servers: [nats.url], name: "reload-test" });
    batches = [];
    for await (const b of readPcapRecords(capture, { local: LOCAL })) batches.push(Buffer.from(b));
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(5000)));
    await nc?.close();
    if (nats) await disposeNatsServer(nats);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function start(service: "pst" | "som", config: string, state: string): Promise<{ proc: ServiceProcess; port: number }> {
    const port = await freePort();
    const key = service.toUpperCase();
    const proc = spawnService(service, {
      configFile: config,
      env: { VIGIL_NATS__SERVERS: `[${nats.url}]`, VIGIL_STATE_DIR: state, [`VIGIL_${key}__METRICS__PORT`]: String(port), [`VIGIL_${key}__INSTANCE`]: `${service}-reload` },
    });
    procs.push(proc);
    await waitFor(`${service} running`, () => (/detector running/.test(proc.output()) ? true : proc.child.exitCode !== null ? Promise.reject(new Error(proc.output())) : null), 30_000);
    // `vigil reload` signals what the pid files of a `vigil up` name.
    writePid(state, service, proc.child.pid!);
    await new Promise((r) => setTimeout(r, 1000)); // shard ownership settles
    return { proc, port };
  }

  it("pst: new models in pst.modelsDir are swapped in on `vigil reload`, connections and frames kept; a corrupt model is refused", async () => {
    const models = join(dir, "pst-models");
    cpSync(join(repoRoot, "services/pst/models"), models, { recursive: true });
    const config = join(dir, "pst.yaml");
    writeFileSync(config, `pst:\n  modelsDir: ${models}\n`);
    const state = join(dir, "pst-state");
    const { proc, port } = await start("pst", config, state);
    const feeder = new Feeder(nc, "reload-pst");
    const half = Math.floor(batches.length / 2);
    await feeder.publish(batches.slice(0, half));
    await waitFor("the first half consumed", async () => ((await metric(port, "vigil_pst_frames_total")) === feeder.frames ? true : null), 30_000, 200);
    const tracked = await metric(port, "vigil_pst_connections_tracked");
    expect(tracked).toBeGreaterThan(0);
    expect(await metricsText(port)).toMatch(/vigil_pst_model_info\{[^}]*model="pst\/web@1"/);

    // Nothing changed: the running models stay.
    expect(vigil(["reload", "--state-dir", state]).stdout).toMatch(/pst\s+SIGHUP sent \(pid \d+\): models re-read/);
    await waitFor("unchanged", () => (/models unchanged in/.test(proc.output()) ? true : null), 10_000);

    // "Retrained": a new version of the web model.
    const web = JSON.parse(readFileSync(join(models, "web.pst.json"), "utf8"));
    web.version = 7;
    web.threshold.value *= 1.5;
    writeFileSync(join(models, "web.pst.json"), JSON.stringify(web));
    expect(vigil(["reload", "--state-dir", state]).status).toBe(0);
    await waitFor("reloaded", () => (/models reloaded from/.test(proc.output()) ? true : null), 10_000);
    const text = await metricsText(port);
    expect(text).toMatch(/vigil_pst_model_info\{[^}]*model="pst\/web@7",sha256="[0-9a-f]{16}"/);
    expect(text).not.toMatch(/model="pst\/web@1"/);
    expect(await metric(port, "vigil_pst_model_reloads_total", 'result="loaded"')).toBe(1);
    expect(await metric(port, "vigil_pst_model_reloads_total", 'result="unchanged"')).toBe(1);
    // The table is untouched by the swap.
    expect(await metric(port, "vigil_pst_connections_tracked")).toBe(tracked);

    // A corrupt model: refused with the file and the reason; the running ones stay.
    writeFileSync(join(models, "ssh.pst.json"), '{"format": "vigil-pst-model", "formatVer');
    vigil(["reload", "--state-dir", state]);
    await waitFor("refused", () => (/model reload refused: model \S+ssh\.pst\.json is not valid JSON.*the running models stay/.test(proc.output()) ? true : null), 10_000);
    expect(await metric(port, "vigil_pst_model_reloads_total", 'result="refused"')).toBe(1);
    expect(await metricsText(port)).toMatch(/model="pst\/web@7"/);

    // The rest of the capture: every frame is consumed by the same process.
    await feeder.publish(batches.slice(half));
    await feeder.end();
    await waitFor("every frame consumed", async () => ((await metric(port, "vigil_pst_frames_total")) === feeder.frames ? true : null), 30_000, 200);
    expect(proc.child.exitCode).toBeNull();
  }, 120_000);

  it("som: a new model in som.model is swapped in on `vigil reload` with the open windows kept; a model cutting windows differently is refused", async () => {
    const model = join(dir, "som-model");
    cpSync(join(repoRoot, "services/som/models/default"), model, { recursive: true });
    const config = join(dir, "som.yaml");
    writeFileSync(config, `som:\n  model: ${model}\n`);
    const state = join(dir, "som-state");
    const { proc, port } = await start("som", config, state);
    const file = join(model, "som-model.json");
    const json = JSON.parse(readFileSync(file, "utf8"));
    const before = `som/${json.name}@${json.version}`;
    expect(await metricsText(port)).toContain(`model="${before}"`);
    const feeder = new Feeder(nc, "reload-som");
    const half = Math.floor(batches.length / 2);
    await feeder.publish(batches.slice(0, half));
    await waitFor("the first half consumed", async () => ((await metric(port, "vigil_som_frames_total")) === feeder.frames ? true : null), 30_000, 200);

    json.version += 1;
    json.threshold *= 2;
    writeFileSync(file, JSON.stringify(json));
    expect(vigil(["reload", "--state-dir", state]).stdout).toMatch(/som\s+SIGHUP sent \(pid \d+\): model re-read/);
    await waitFor("reloaded", () => (/model reloaded from/.test(proc.output()) ? true : null), 10_000);
    const after = `som/${json.name}@${json.version}`;
    expect(await metricsText(port)).toContain(`model="${after}"`);
    expect(await metric(port, "vigil_som_threshold")).toBeCloseTo(json.threshold, 6);

    const other = { ...json, version: json.version + 1, window: { ...json.window, windowMs: json.window.windowMs * 2 } };
    writeFileSync(file, JSON.stringify(other));
    vigil(["reload", "--state-dir", state]);
    await waitFor("refused", () => (/model reload refused: \S+som-model\.json cuts windows as .*restart the som service/.test(proc.output()) ? true : null), 10_000);
    expect(await metricsText(port)).toContain(`model="${after}"`);
    expect(await metric(port, "vigil_som_model_reloads_total", 'result="refused"')).toBe(1);

    await feeder.publish(batches.slice(half));
    await feeder.end();
    await waitFor("every frame consumed", async () => ((await metric(port, "vigil_som_frames_total")) === feeder.frames ? true : null), 30_000, 200);
    expect(proc.child.exitCode).toBeNull();
  }, 120_000);
});
