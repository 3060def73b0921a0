import { DEFAULT_PORTS } from "@vigil/config";
import { EXIT, parseCommandArgs, UserError, type Command } from "@vigil/lifecycle";

// `vigil metrics`: the counters an operator asks about first (cscli metrics),
// scraped from each service's Prometheus page on its default port.

const NOTIFY_PORT = 9474;

/** Per service: the series summed over their labels, with a short name. */
const SUMMARY: Record<string, { port: number; series: Array<[string, string]> }> = {
  capture: {
    port: DEFAULT_PORTS.captureMetrics,
    series: [
      ["vigil_capture_frames_captured_total", "frames captured"],
      ["vigil_capture_frames_published_total", "frames published"],
      ["vigil_capture_frames_dropped_total", "frames dropped"],
      ["vigil_capture_ring_drops_total", "ring drops"],
    ],
  },
  pst: {
    port: DEFAULT_PORTS.pstMetrics,
    series: [
      ["vigil_pst_frames_total", "frames"],
      ["vigil_pst_connections_tracked", "connections tracked"],
      ["vigil_pst_verdicts_total", "verdicts"],
      ["vigil_pst_processing_lag_seconds", "lag (s)"],
    ],
  },
  som: {
    port: DEFAULT_PORTS.somMetrics,
    series: [
      ["vigil_som_frames_total", "frames"],
      ["vigil_som_windows_total", "windows"],
      ["vigil_som_verdicts_total", "verdicts"],
      ["vigil_som_lag_seconds", "lag (s)"],
    ],
  },
  rules: {
    port: DEFAULT_PORTS.rulesMetrics,
    series: [
      ["vigil_rules_verdicts_received_total", "verdicts received"],
      ["vigil_rules_rules_added_total", "rules added"],
      ["vigil_rules_active_rules", "active rules"],
      ["vigil_rules_automatic_refused_total", "automatic blocks refused"],
      ["vigil_rules_enforcement_errors_total", "enforcement errors"],
    ],
  },
  notify: {
    port: NOTIFY_PORT,
    series: [
      ["vigil_notify_sent_total", "notifications sent"],
      ["vigil_notify_failed_attempts_total", "failed attempts"],
      ["vigil_notify_dropped_total", "dropped"],
    ],
  },
};

/** Sums each metric's samples over their labels (the Prometheus text format); a declared metric without samples (a labelled counter never incremented) is 0. */
export function sumSamples(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    const declared = /^# TYPE (\S+)/.exec(line);
    if (declared && !sums.has(declared[1]!)) sums.set(declared[1]!, 0);
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{.*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) sums.set(m[1]!, (sums.get(m[1]!) ?? 0) + v);
  }
  return sums;
}

function format(v: number | undefined): string {
  if (v === undefined) return "-";
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}

async function scrape(url: string): Promise<{ text: string } | { error: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return { error: `HTTP ${res.status}` };
    return { text: await res.text() };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { error: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

export const metricsCommand: Command = {
  name: "metrics",
  summary: "a short summary of the running services' Prometheus counters (frames, verdicts, rules, drops)",
  usage:
    "usage: vigil metrics [--url SERVICE=URL]... [--json]\n\n" +
    `  Scrapes http://127.0.0.1:PORT/metrics of ${Object.entries(SUMMARY).map(([s, d]) => `${s} (${d.port})`).join(", ")};\n` +
    "  --url points one service elsewhere (e.g. --url rules=http://10.0.0.5:9473/metrics).\n" +
    "exit codes: 0 all reachable, 1 some are down, 69 none is reachable",
  async run(args) {
    const values = parseCommandArgs(args, { url: { type: "string", multiple: true }, json: { type: "boolean" } }, { command: "metrics" });
    const urls = new Map(Object.entries(SUMMARY).map(([s, d]) => [s, `http://127.0.0.1:${d.port}/metrics`]));
    for (const u of values.url ?? []) {
      const m = /^([\w-]+)=(https?:\/\/\S+)$/.exec(u);
      if (!m || !SUMMARY[m[1]!]) throw new UserError(`vigil metrics: --url "${u}" is not SERVICE=URL with SERVICE one of ${Object.keys(SUMMARY).join(", ")}`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      urls.set(m[1]!, m[2]!);
    }
    const results = await Promise.all([...urls].map(async ([service, url]) => ({ service, url, res: await scrape(url) })));
    const json: Record<string, unknown> = {};
    const rows: string[][] = [];
    for (const { service, url, res } of results) {
      if ("error" in res) {
        json[service] = { url, up: false, error: res.error };
        rows.push([service, "DOWN", `cannot scrape ${url}: ${res.error}`]);
        continue;
      }
      const sums = sumSamples(res.text);
      const picked = Object.fromEntries(SUMMARY[service]!.series.map(([name, label]) => [label, sums.get(name)]));
      json[service] = { url, up: true, ...picked };
      SUMMARY[service]!.series.forEach(([, label], i) => rows.push([i === 0 ? service : "", label, format(sums.get(SUMMARY[service]!.series[i]![0]))]));
    }
    if (values.json) process.stdout.write(JSON.stringify(json) + "\n");
    else {
      const w0 = Math.max(7, ...rows.map((r) => r[0]!.length));
      const w1 = Math.max(6, ...rows.map((r) => r[1]!.length));
      const line = (r: string[]) => `${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`.trimEnd() + "\n";
      process.stdout.write(line(["SERVICE", "METRIC", "VALUE"]) + rows.map(line).join(""));
    }
    const down = results.filter((r) => "error" in r.res).length;
    return down === 0 ? EXIT.OK : down === results.length ? EXIT.UNAVAILABLE : EXIT.FAILURE;
  },
};
