// A real Prometheus scrapes every Vigil service that is built, started against
// a real nats-server with a pcap replay flowing through the pipeline; the test
// reads the services' key metrics back through Prometheus' HTTP API, and checks
// that every dashboard panel and every alert names only metrics the services
// really export.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { disposeNatsServer, freePort, repoRoot, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { benignConnection, synScan, writePcap, type TimedPacket } from "./support/pcap.js";
import { exportedNames, fetchText, metricNamesIn, serviceMissing, startService, waitHealthy, type RunningService } from "./support/services.js";

const prometheusMissing = spawnSync("prometheus", ["--version"]).status === 0 ? null : "prometheus is not installed (apt-get install prometheus)";
const SCRAPED = ["capture", "pst", "som", "rules", "console", "notify"] as const;
type Scraped = (typeof SCRAPED)[number];

/** What each service must show in Prometheus once traffic flowed: metric and a check of the value. */
const KEY_METRICS: Record<Scraped, Array<[string, (v: number) => boolean, string]>> = {
  capture: [
    ["sum(vigil_capture_frames_captured_total)", (v) => v > 0, "frames captured"],
    ["sum(vigil_capture_frames_published_total)", (v) => v > 0, "frames published"],
    ["sum(vigil_capture_bus_connected)", (v) => v === 1, "connected to NATS"],
    ["count(vigil_capture_shard_frames_total)", (v) => v === 16, "one per-shard series for each of the 16 shards"],
    ["sum(vigil_capture_shard_frames_total)", (v) => v > 0, "frames counted per shard"],
  ],
  pst: [
    ["sum(vigil_pst_frames_total)", (v) => v > 0, "frames consumed"],
    ["count(vigil_pst_processing_lag_seconds)", (v) => v >= 1, "lag exported"],
  ],
  som: [
    ["sum(vigil_som_frames_total)", (v) => v > 0, "frames consumed"],
    ["sum(vigil_som_owned_shards)", (v) => v === 16, "owns every shard"],
  ],
  rules: [
    ["count(vigil_rules_cap_tokens)", (v) => v === 1, "block budget exported"],
    ["count(vigil_rules_store_backlog)", (v) => v === 1, "store backlog exported"],
  ],
  console: [["max(vigil_console_rules_reachable)", (v) => v === 1, "the rules service answers the console"]],
  notify: [["count(vigil_notify_dead_letters_total)", (v) => v === 1, "dead letters counted for its one target"]],
};

const missing = Object.fromEntries(SCRAPED.map((s) => [s, serviceMissing(s)])) as Record<Scraped, string | null>;
const available = SCRAPED.filter((s) => !missing[s]);
const noneAvailable = available.length === 0 ? "no Vigil service is built yet" : null;
for (const s of SCRAPED) if (missing[s]) console.warn(`deploy/test/metrics: ${s} skipped: ${missing[s]}`);

/** The console requires its login; the other services' metrics are open on loopback. */
const CONSOLE_TOKEN = "metrics-test-console-token";
const authOf = (s: string): Record<string, string> => (s === "console" ? { authorization: `Bearer ${CONSOLE_TOKEN}` } : {});

describe.skipIf(prometheusMissing ?? noneAvailable)(`metrics of the running services ${prometheusMissing ?? noneAvailable ? `(skipped: ${prometheusMissing ?? noneAvailable})` : ""}`, () => {
  let work: string;
  let nats: NatsServerHandle;
  const services = new Map<Scraped, RunningService>();
  const metricsPort = new Map<Scraped, number>();
  const exported = new Map<Scraped, Set<string>>();
  const running: Scraped[] = [];
  const startFailure = new Map<Scraped, string>();
  let prometheus: ChildProcess;
  let promLog = "";
  let promUrl: string;

  async function query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) });
    const body = (await r.json()) as { status: string; error?: string; data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    if (body.status !== "success") throw new Error(`query ${expr}: ${body.error}`);
    return body.data!.result;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "vigil-metrics-"));
    nats = await startNatsServer({ jetstream: true, auth: true });
    // Two minutes of recorded traffic replayed at its own pace: capture stays up
    // (and scrapeable) for the whole test while frames keep flowing.
    const t0 = Math.floor(Date.now() / 1000) - 3600;
    const packets: TimedPacket[] = [];
    for (let i = 0; i < 240; i++) packets.push(...benignConnection(`198.51.100.${1 + (i % 40)}`, "192.0.2.10", 40000 + i, 443, t0 + i * 0.5));
    packets.push(...synScan("203.0.113.66", "192.0.2.10", Array.from({ length: 400 }, (_, i) => i + 1), t0 + 5));
    const pcap = join(work, "traffic.pcap");
    writePcap(pcap, packets);

    for (const s of available) metricsPort.set(s, await freePort());
    // The console serves its metrics on its own port.
    const consolePort = metricsPort.get("console") ?? 0;
    // The console requires a login; Prometheus presents the token, as deploy/prometheus/prometheus.yml does.
    const consoleToken = join(work, "console.token");
    writeFileSync(consoleToken, `${CONSOLE_TOKEN}\n`, { mode: 0o600 });
    const cfg = {
      nats: { servers: [nats.url] },
      capture: { source: "pcap", file: pcap, speed: 1, local: ["192.0.2.0/24"], metrics: { host: "127.0.0.1", port: metricsPort.get("capture") ?? 0 } },
      pst: { instance: "pst-metrics-test", stateDir: join(work, "pst"), metrics: { host: "127.0.0.1", port: metricsPort.get("pst") ?? 0 } },
      som: { instance: "som-metrics-test", stateDir: join(work, "som"), metrics: { host: "127.0.0.1", port: metricsPort.get("som") ?? 0 } },
      rules: {
        enforcer: "dry-run",
        stateDir: join(work, "rules"),
        grpc: { socket: join(work, "control.sock") },
        metrics: { host: "127.0.0.1", port: metricsPort.get("rules") ?? 0 },
      },
      console: { host: "127.0.0.1", port: consolePort, tokenFile: consoleToken, rules: { address: `unix:${join(work, "control.sock")}` } },
      // One target, so its per-target series exist (nothing listens there: it is not the test's subject).
      notify: { metrics: { host: "127.0.0.1", port: metricsPort.get("notify") ?? 0 }, targets: [{ name: "metrics-test", type: "webhook", url: "http://127.0.0.1:1/" }] },
    };
    const cfgFile = join(work, "vigil.yaml");
    writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
    const env = { VIGIL_CONFIG: cfgFile, VIGIL_STATE_DIR: work };

    // Consumers first, so that the replay's first frames find them subscribed.
    // A service that is built but does not start fails its own test below; the others go on.
    for (const s of (["rules", "console", "notify", "pst", "som", "capture"] as const).filter((x) => available.includes(x))) {
      const svc = startService(s, { ...env, ...nats.serviceEnv(s) });
      services.set(s, svc);
      try {
        await waitHealthy(svc, `http://127.0.0.1:${metricsPort.get(s)}`, s === "console" ? "/metrics" : "/healthz", 30_000, authOf(s));
        running.push(s);
      } catch (err) {
        startFailure.set(s, (err as Error).message);
      }
    }
    // What each service declares (# TYPE lines count even before a first sample).
    // A service that answered and then went away also fails its own test, with its output.
    for (const s of [...running]) {
      try {
        exported.set(s, exportedNames(await fetchText(`http://127.0.0.1:${metricsPort.get(s)}/metrics`, authOf(s))));
      } catch (err) {
        const svc = services.get(s)!;
        running.splice(running.indexOf(s), 1);
        startFailure.set(s, `${s} answered its health check, then ${(err as Error).message} (exit ${svc.child.exitCode ?? svc.child.signalCode ?? "none yet"})\n--- ${s} output ---\n${svc.output().slice(-3000)}`);
      }
    }

    const promDir = join(work, "prometheus");
    mkdirSync(promDir);
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    writeFileSync(
      join(promDir, "prometheus.yml"),
      [
        "global: { scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }",
        `rule_files: ["${join(repoRoot, "deploy/prometheus/alerts.yml")}"]`,
        "scrape_configs:",
        ...running.map(
          (s) =>
            `  - { job_name: vigil-${s}, static_configs: [{ targets: ["127.0.0.1:${metricsPort.get(s)}"] }]${s === "console" ? `, authorization: { credentials_file: "${join(work, "console.token")}" }` : ""} }`,
        ),
      ].join("\n") + "\n",
    );
    prometheus = spawn(
      "prometheus",
      [
        `--config.file=${join(promDir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(promDir, "data")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--storage.tsdb.retention.time=1h",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    prometheus.stderr!.on("data", (d: Buffer) => (promLog = (promLog + d.toString()).slice(-5000)));
    await waitFor("Prometheus ready", async () => (await fetch(`${promUrl}/-/ready`).catch(() => null))?.ok, 30_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${promLog}`);
    });
  }, 120_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const done = new Promise((r) => prometheus.once("exit", r));
      prometheus.kill("SIGTERM");
      await done;
    }
    await Promise.all([...services.values()].map((s) => s.stop()));
    if (nats) await disposeNatsServer(nats);
    if (work) rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it("Prometheus scrapes every running service", async () => {
    await waitFor(
      "every target up",
      async () => {
        const r = await (await fetch(`${promUrl}/api/v1/targets`)).json() as { data: { activeTargets: Array<{ labels: { job: string }; health: string; lastError: string }> } };
        const t = r.data.activeTargets;
        return t.length === running.length && t.every((x) => x.health === "up");
      },
      20_000,
      250,
    );
    const up = await query('up{job=~"vigil-.*"}');
    expect(up.map((u) => u.metric.job).sort()).toEqual(running.map((s) => `vigil-${s}`).sort());
    for (const u of up) expect(u.value[1], u.metric.job).toBe("1");
  }, 40_000);

  for (const s of SCRAPED) {
    it.skipIf(missing[s])(`finds ${s}'s key metrics through the Prometheus API ${missing[s] ? `(skipped: ${missing[s]})` : ""}`, async () => {
      if (startFailure.has(s)) throw new Error(startFailure.get(s));
      // Process metrics carry the vigil_ prefix and the service label.
      const mem = await query(`vigil_process_resident_memory_bytes{job="vigil-${s}"}`);
      expect(mem.length, `${s} process metrics`).toBe(1);
      expect(mem[0].metric.service).toBe(s);
      for (const [expr, ok, what] of KEY_METRICS[s]) {
        // The pipeline needs a moment: frames go capture -> NATS -> detectors.
        await waitFor(`${s}: ${what} (${expr})`, async () => {
          const r = await query(expr);
          return r.length > 0 && ok(Number(r[0].value[1]));
        }, 30_000, 500);
      }
    }, 60_000);
  }

  /** Names a PromQL expression uses that no running service exports, and names of services not running. */
  function unknownNames(exprs: string[]): { unknown: string[]; unverified: string[] } {
    const all = new Set<string>();
    for (const names of exported.values()) for (const n of names) all.add(n);
    const unknown = new Set<string>();
    const unverified = new Set<string>();
    for (const expr of exprs)
      for (const n of metricNamesIn(expr)) {
        if (all.has(n)) continue;
        // The kernel module has no /metrics of its own: the rules service exports vigil_kernel_*.
        const owner = n.startsWith("vigil_kernel_") ? "rules" : SCRAPED.find((s) => n.startsWith(`vigil_${s}_`));
        // Process metrics are checked against any running service.
        if (owner && !exported.has(owner)) unverified.add(n);
        else unknown.add(n);
      }
    return { unknown: [...unknown].sort(), unverified: [...unverified].sort() };
  }

  // vigil_kernel_* are declared by the rules service whatever its enforcer (so dashboards can be checked against
  // its page), but carry samples only when the kmod enforcer read the module: here (dry-run) none, never a false 0.
  // Their values against the real module are checked in services/rules/test/kmod-vm.test.ts.
  it.skipIf(missing.rules)("the rules service declares the kernel module's metrics, with no samples without the module", async () => {
    if (!running.includes("rules")) throw new Error(`rules did not start: ${startFailure.get("rules")}`);
    const page = await fetchText(`http://127.0.0.1:${metricsPort.get("rules")}/metrics`);
    for (const n of ["vigil_kernel_module_up", "vigil_kernel_packets_seen_total", "vigil_kernel_packets_dropped_total", "vigil_kernel_ring_drops_total", "vigil_kernel_rule_hits_total"])
      expect(page, n).toMatch(new RegExp(`^# TYPE ${n} `, "m"));
    expect(page).not.toMatch(/^vigil_kernel_/m);
  });

  const dashboardsDir = join(repoRoot, "deploy/grafana/dashboards");
  const dashboardExprs = (): Array<{ where: string; expr: string }> =>
    readdirSync(dashboardsDir)
      .filter((f) => f.endsWith(".json"))
      .flatMap((f) => {
        const d = JSON.parse(readFileSync(join(dashboardsDir, f), "utf8")) as {
          panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
          annotations?: { list: Array<{ name: string; expr?: string }> };
        };
        return [
          ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${f} / ${p.title}`, expr: t.expr }))),
          // The block/unblock annotation queries too.
          ...(d.annotations?.list ?? []).flatMap((a) => (a.expr ? [{ where: `${f} / annotation ${a.name}`, expr: a.expr }] : [])),
        ];
      });

  it("every dashboard panel queries only metrics the services export, in valid PromQL", async () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(30);
    const { unknown, unverified } = unknownNames(exprs.map((e) => e.expr));
    if (unverified.length) console.warn(`dashboards: not verifiable until their service is built: ${unverified.join(", ")}`);
    const offenders = exprs.filter((e) => metricNamesIn(e.expr).some((n) => unknown.includes(n))).map((e) => `${e.where}: ${e.expr}`);
    expect(unknown, `unknown metrics in:\n${offenders.join("\n")}`).toEqual([]);
    // Prometheus itself parses every query (Grafana's $__rate_interval as Grafana would expand it).
    for (const { where, expr } of exprs) await query(expr.replaceAll("$__rate_interval", "1m")).catch((err: Error) => {
      throw new Error(`${where}: ${err.message}`);
    });
  }, 60_000);

  it("every alert names only metrics the services export, and Prometheus loaded the rules", async () => {
    const doc = parseYaml(readFileSync(join(repoRoot, "deploy/prometheus/alerts.yml"), "utf8")) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    const exprs = doc.groups.flatMap((g) => g.rules.map((r) => r.expr));
    const { unknown, unverified } = unknownNames(exprs);
    if (unverified.length) console.warn(`alerts: not verifiable until their service is built: ${unverified.join(", ")}`);
    expect(unknown).toEqual([]);
    type Loaded = { name: string; health: string; lastError?: string };
    const loaded = async (): Promise<Loaded[]> =>
      ((await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Loaded[] }> } }).data.groups.flatMap((g) => g.rules);
    expect((await loaded()).length).toBe(exprs.length);
    // Evaluated every second against the live series: none may error.
    const evaluated = await waitFor("every alert evaluated", async () => {
      const l = await loaded();
      return l.every((r) => r.health !== "unknown") ? l : null;
    }, 10_000, 250);
    for (const r of evaluated) expect(r.health, `${r.name}: ${r.lastError}`).toBe("ok");
  }, 30_000);
});
