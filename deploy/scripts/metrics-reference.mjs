#!/usr/bin/env node
// Generates docs/metrics-reference.md from what the services really export:
// starts a private nats-server (JetStream) and every built service on free
// loopback ports (rules in dry-run), reads each /metrics page, and lists every
// vigil_* metric with its type, labels and help text.
//
//   node deploy/scripts/metrics-reference.mjs [--out FILE]
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { values } = parseArgs({ options: { out: { type: "string" } } });
const out = values.out ?? join(root, "docs/metrics-reference.md");
const SERVICES = ["capture", "pst", "som", "rules", "console", "notify"];

// The one launcher of nats-server and the daemons (@vigil/stack), as built.
const stackDist = join(root, "packages/stack/dist/index.js");
if (!existsSync(stackDist)) {
  process.stderr.write(`metrics-reference: ${stackDist} is missing: run node scripts/build.mjs\n`);
  process.exit(1);
}
const { freePort, mainOf, spawnService, startNatsServer } = await import(pathToFileURL(stackDist).href);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const work = mkdtempSync(join(tmpdir(), "vigil-metricsref-"));
const children = [];
const nats = await startNatsServer({ store: join(work, "js") });
const cleanup = async () => {
  await Promise.all(children.map((c) => c.stop(5000)));
  await nats.stop();
  rmSync(work, { recursive: true, force: true });
};
// A failure on the way leaves nothing running either.
process.on("exit", () => {
  for (const c of children) c.child.kill("SIGKILL");
  void nats.stop(true);
});

const ports = {};
for (const s of SERVICES) ports[s] = await freePort();
const cfg = {
  nats: { servers: [nats.url] },
  // A live source that stays up (a replay would end before its page is read); the filter keeps it idle.
  capture: { source: "afpacket", interface: "lo", filter: "tcp port 9", metrics: { host: "127.0.0.1", port: ports.capture } },
  pst: { stateDir: join(work, "pst"), metrics: { host: "127.0.0.1", port: ports.pst } },
  som: { stateDir: join(work, "som"), metrics: { host: "127.0.0.1", port: ports.som } },
  // Only this script reads the console here, on loopback: no login, as console.auth: none says.
  console: { host: "127.0.0.1", port: ports.console, auth: "none", rules: { address: `unix:${join(work, "control.sock")}` } },
  notify: { metrics: { host: "127.0.0.1", port: ports.notify } },
  rules: { enforcer: "dry-run", stateDir: join(work, "rules"), grpc: { socket: join(work, "control.sock") }, metrics: { host: "127.0.0.1", port: ports.rules } },
};
writeFileSync(join(work, "vigil.yaml"), JSON.stringify(cfg));

const pages = {};
const missing = [];
for (const s of SERVICES) {
  if (!existsSync(mainOf(s))) {
    missing.push(`${s} (not built)`);
    continue;
  }
  const svc = spawnService(s, { configFile: join(work, "vigil.yaml"), env: { VIGIL_STATE_DIR: work, VIGIL_LOG_LEVEL: "warn" } });
  children.push(svc);
  try {
    await until(`${s} metrics`, async () => {
      const r = await fetch(`http://127.0.0.1:${ports[s]}/metrics`);
      if (!r.ok) return false;
      const text = await r.text();
      // A service may serve its page before it has registered its own metrics (rules after its store opens).
      if (!text.includes(`# HELP vigil_${s}_`)) return false;
      pages[s] = text;
      return true;
    }, 15_000);
  } catch {
    missing.push(`${s} (did not serve metrics: ${svc.output().trim().split("\n").pop() ?? ""})`);
  }
}

/** name -> { service, type, help, labels:Set } */
const metrics = new Map();
for (const [service, text] of Object.entries(pages)) {
  for (const line of text.split("\n")) {
    let m;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      const e = metrics.get(m[1]) ?? { services: new Set(), type: "", help: "", labels: new Set() };
      e.help = m[2];
      e.services.add(service);
      metrics.set(m[1], e);
    } else if ((m = /^# TYPE (\S+) (\S+)$/.exec(line))) {
      metrics.get(m[1]).type = m[2];
    } else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/.exec(line))) {
      const base = [...metrics.keys()].find((k) => m[1] === k || m[1] === `${k}_bucket` || m[1] === `${k}_sum` || m[1] === `${k}_count`);
      if (!base) continue;
      for (const [, l] of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) if (!["service", "instance", "le", "quantile"].includes(l)) metrics.get(base).labels.add(l);
    }
  }
}

// Label names declared in the sources complete those seen in samples (a metric
// that has not counted yet has no sample to show its labels).
for (const s of SERVICES) {
  const dir = join(root, "services", s, "src");
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))) {
    const text = readFileSync(join(dir, f), "utf8");
    for (const m of text.matchAll(/name:\s*"(vigil_[a-z0-9_]+)"/g)) {
      const e = metrics.get(m[1]);
      if (!e) continue;
      const tail = text.slice(m.index, m.index + 600).split(/\}\s*\)/)[0];
      const ln = /labelNames:\s*\[([^\]]*)\]/.exec(tail);
      if (ln) for (const [, l] of ln[1].matchAll(/"([a-zA-Z_][a-zA-Z0-9_]*)"/g)) e.labels.add(l);
    }
    // Helpers in the style of counter("vigil_x_total", "help", ["label"]).
    for (const m of text.matchAll(/\(\s*"(vigil_[a-z0-9_]+)"\s*,\s*"(?:[^"\\]|\\.)*"\s*,\s*\[([^\]]*)\]/g)) {
      const e = metrics.get(m[1]);
      if (e) for (const [, l] of m[2].matchAll(/"([a-zA-Z_][a-zA-Z0-9_]*)"/g)) e.labels.add(l);
    }
  }
}

const lines = [
  "# Metrics reference",
  "",
  "<!-- Generated by deploy/scripts/metrics-reference.mjs from the services' /metrics pages: do not edit by hand. -->",
  "",
  "Every service serves `/metrics` (Prometheus text format) and `/healthz` on its metrics port (capture 9470, pst 9471,",
  "som 9472, rules 9473, notify 9474, loopback by default; the console on its own port, 9480). Every series carries a `service`",
  "label, and detectors an `instance` label; the labels below are the others.",
  "",
];
const own = [...metrics.entries()].filter(([n]) => !/^vigil_(process|nodejs)_/.test(n));
for (const s of SERVICES) {
  const rows = own.filter(([n]) => n.startsWith(`vigil_${s}_`)).sort(([a], [b]) => a.localeCompare(b));
  if (!rows.length) continue;
  lines.push(`## ${s}`, "", "| metric | type | labels | meaning |", "| --- | --- | --- | --- |");
  for (const [n, e] of rows) lines.push(`| \`${n}\` | ${e.type} | ${[...e.labels].map((l) => `\`${l}\``).join(", ") || "—"} | ${e.help.replaceAll("|", "\\|")} |`);
  lines.push("");
}
// The module has no /metrics of its own: the rules service reads it over generic netlink at each scrape.
const kernel = own.filter(([n]) => n.startsWith("vigil_kernel_")).sort(([a], [b]) => a.localeCompare(b));
if (kernel.length) {
  lines.push(
    "## kernel module (served by rules)",
    "",
    "Read from the vigil module over generic netlink when the rules service is scraped (at most once a second). The",
    "families are always declared; they carry samples only with the kmod enforcer, so a host without the module shows",
    "no data rather than zeros. Rule hits and bytes are summed by the origin of the rule, one series per origin.",
    "",
    "| metric | type | labels | meaning |",
    "| --- | --- | --- | --- |",
  );
  for (const [n, e] of kernel) lines.push(`| \`${n}\` | ${e.type} | ${[...e.labels].map((l) => `\`${l}\``).join(", ") || "—"} | ${e.help.replaceAll("|", "\\|")} |`);
  lines.push("");
}
const proc = [...metrics.entries()].filter(([n]) => /^vigil_(process|nodejs)_/.test(n)).sort(([a], [b]) => a.localeCompare(b));
if (proc.length) {
  lines.push("## Every service: process and Node.js", "", "prom-client's default metrics with the `vigil_` prefix.", "", "| metric | type | meaning |", "| --- | --- | --- |");
  for (const [n, e] of proc) lines.push(`| \`${n}\` | ${e.type} | ${e.help.replaceAll("|", "\\|")} |`);
  lines.push("");
}
if (missing.length) lines.push("## Not covered", "", ...missing.map((m) => `- ${m}`), "");
writeFileSync(out, lines.join("\n"));
process.stderr.write(`metrics-reference: ${own.length} service metrics, ${proc.length} process metrics in ${out}${missing.length ? `; not covered: ${missing.join("; ")}` : ""}\n`);
await cleanup();
process.exit(0);
