#!/usr/bin/env node
// Writes the Vigil Grafana dashboards (deploy/grafana/dashboards/*.json) from
// the panel lists below, so every dashboard has the same layout rules,
// datasource variable and units. Edit here, run `node deploy/grafana/build-dashboards.mjs`,
// and commit both; deploy/test/dashboards.test.ts fails when they drift apart.
//
//   node deploy/grafana/build-dashboards.mjs [OUT_DIR]
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const outDir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "dashboards");
const DS = { type: "prometheus", uid: "${datasource}" };
const R = "$__rate_interval";

/** A time series panel; targets are [expr, legend] pairs. */
function ts(title, description, targets, unit = "short", opts = {}) {
  return { type: "timeseries", title, description, unit, targets, ...opts };
}
function stat(title, description, targets, unit = "short", opts = {}) {
  return { type: "stat", title, description, unit, targets, w: 6, h: 4, ...opts };
}
function heatmap(title, description, expr) {
  return { type: "heatmap", title, description, unit: "short", targets: [[expr, "{{le}}"]], heatmap: true };
}
const row = (title) => ({ row: title });

const dashboards = [
  {
    uid: "vigil-pipeline",
    title: "Vigil / Pipeline overview",
    description: "From the wire to the detectors: capture rate, losses at every stage, load per instance.",
    panels: [
      stat("Packets/s captured", "Frames read from the source (kernel ring, AF_PACKET, pcap), all capture instances.", [[`sum(rate(vigil_capture_frames_captured_total[${R}]))`, "captured"]], "pps"),
      stat("Frames lost", "Share of frames that never reached the bus: ring full plus capture's own drops.", [
        [`(sum(rate(vigil_capture_ring_drops_total[${R}])) + sum(rate(vigil_capture_frames_dropped_total[${R}]))) / clamp_min(sum(rate(vigil_capture_frames_captured_total[${R}])) + sum(rate(vigil_capture_ring_drops_total[${R}])), 1)`, "lost"],
      ], "percentunit", { thresholds: [0.001, 0.01] }),
      stat("Services up", "Scrape targets answering, by job: red at 0 (no instance of that service answers).", [["sum by (job) (up{job=~\"vigil-.*\"})", "{{job}}"]], "short", { upDown: true }),
      stat("Bus connected", "Capture instances connected to NATS: red at 0.", [["sum(vigil_capture_bus_connected)", "connected"]], "short", { upDown: true }),
      row("Capture"),
      ts("Packets/s captured and published", "Read from the source versus published on vigil.frames.<shard>; the gap is skipped (non-IP, filtered) or dropped frames.", [
        [`sum by (instance, source) (rate(vigil_capture_frames_captured_total[${R}]))`, "captured {{instance}} ({{source}})"],
        [`sum by (instance) (rate(vigil_capture_frames_published_total[${R}]))`, "published {{instance}}"],
      ], "pps"),
      ts("Bytes/s captured", "Wire bytes (L3) of the frames read.", [[`sum by (instance) (rate(vigil_capture_captured_bytes_total[${R}]))`, "{{instance}}"]], "Bps"),
      ts("Ring drops", "Frames lost before capture read them: the kernel ring or the AF_PACKET ring was full. Raise the module's slots parameter or add capture threads.", [
        [`sum by (instance, source) (rate(vigil_capture_ring_drops_total[${R}]))`, "{{instance}} ({{source}})"],
      ], "pps"),
      ts("Bus drops", "Frames and batches capture read but could not publish: NATS down or backed up, consumer behind.", [
        [`sum by (instance, reason) (rate(vigil_capture_frames_dropped_total[${R}]))`, "frames {{reason}} {{instance}}"],
        [`sum by (instance, reason) (rate(vigil_capture_batches_dropped_total[${R}]))`, "batches {{reason}} {{instance}}"],
      ], "pps"),
      ts("Skipped frames", "Frames read but not published on purpose (non-IP, malformed, filtered out).", [[`sum by (reason) (rate(vigil_capture_frames_skipped_total[${R}]))`, "{{reason}}"]], "pps"),
      ts("Batch fill", "Median batch size over the configured batch bytes: low means batches are flushed by time (light traffic).", [
        [`histogram_quantile(0.5, sum by (le) (rate(vigil_capture_batch_fill_ratio_bucket[${R}])))`, "median fill"],
      ], "percentunit"),
      row("Shard load"),
      ts("Frames/s per shard", "Frames published on each vigil.frames.<shard> subject, all capture instances. Shards follow remote addresses, so one busy remote host loads one shard: the detector instance owning it carries it alone.", [
        [`sum by (shard) (rate(vigil_capture_shard_frames_total[${R}]))`, "shard {{shard}}"],
      ], "pps"),
      ts("Shard imbalance", "Busiest shard over the mean shard, frames and bytes: 1 is even; a high value means a few remote addresses dominate the traffic, and adding detector instances will not spread it.", [
        [`max(sum by (shard) (rate(vigil_capture_shard_frames_total[${R}]))) / clamp_min(avg(sum by (shard) (rate(vigil_capture_shard_frames_total[${R}]))), 1e-9)`, "frames"],
        [`max(sum by (shard) (rate(vigil_capture_shard_bytes_total[${R}]))) / clamp_min(avg(sum by (shard) (rate(vigil_capture_shard_bytes_total[${R}]))), 1e-9)`, "bytes"],
      ], "short"),
      ts("Bytes/s per shard", "FrameBatch bytes published on each shard subject: what each detector instance receives from NATS.", [
        [`sum by (shard) (rate(vigil_capture_shard_bytes_total[${R}]))`, "shard {{shard}}"],
      ], "Bps"),
      row("Detector load"),
      ts("Frames/s per pst instance", "How the shards' load is split between pst instances (each owns a share of the shards).", [[`sum by (instance) (rate(vigil_pst_frames_total[${R}]))`, "{{instance}}"]], "pps"),
      ts("Frames/s per som instance", "How the shards' load is split between som instances.", [[`sum by (instance) (rate(vigil_som_frames_total[${R}]))`, "{{instance}}"]], "pps"),
      ts("Shards per som instance", "Frame shards each som instance owns now (rendezvous hashing over the live instances): a dead instance's shards move to the others.", [
        ["sum by (instance) (vigil_som_owned_shards)", "{{instance}}"],
      ], "short"),
      ts("Rejected bus messages", "Messages detectors could not decode or that arrived on a shard they do not own.", [
        [`sum by (instance, reason) (rate(vigil_pst_bus_messages_dropped_total[${R}]))`, "pst {{reason}} {{instance}}"],
      ], "short"),
      row("Processes"),
      ts("CPU", "CPU seconds per second, by service instance.", [[`sum by (job, instance) (rate(vigil_process_cpu_seconds_total[${R}]))`, "{{job}} {{instance}}"]], "percentunit"),
      ts("Resident memory", "", [["sum by (job, instance) (vigil_process_resident_memory_bytes)", "{{job}} {{instance}}"]], "bytes"),
      ts("Event loop lag (p99)", "A busy event loop delays everything a service does.", [["max by (job, instance) (vigil_nodejs_eventloop_lag_p99_seconds)", "{{job}} {{instance}}"]], "s"),
    ],
  },
  {
    uid: "vigil-detectors",
    title: "Vigil / Detectors",
    description: "What pst and som see: scores against thresholds, verdicts, feedback and how far behind capture they are.",
    panels: [
      stat("pst verdicts/s", "", [[`sum(rate(vigil_pst_verdicts_total[${R}]))`, "pst"]], "short"),
      stat("som verdicts/s", "", [[`sum(rate(vigil_som_verdicts_total[${R}]))`, "som"]], "short"),
      stat("Max detector lag", "Wall-clock time minus the capture time of the last frame judged.", [
        ["max(vigil_pst_processing_lag_seconds)", "pst"],
        ["max(vigil_som_lag_seconds)", "som"],
      ], "s", { thresholds: [5, 30] }),
      stat("Feedback (false alarms) last hour", "", [["sum(increase(vigil_pst_feedback_total[1h]))", "pst"], ["sum(increase(vigil_som_feedback_total[1h]))", "som"]], "short"),
      row("pst: probabilistic suffix trees"),
      heatmap("pst connection scores", "Average negative log-likelihood per symbol of judged connections; the anomalous ones sit above the model's threshold.", `sum by (le) (rate(vigil_pst_connection_score_bucket[${R}]))`),
      ts("pst scores (quantiles)", "Per-connection scores; each service class model has its own threshold (vigil pst models).", [
        [`histogram_quantile(0.5, sum by (le) (rate(vigil_pst_connection_score_bucket[${R}])))`, "p50"],
        [`histogram_quantile(0.99, sum by (le) (rate(vigil_pst_connection_score_bucket[${R}])))`, "p99"],
      ], "short"),
      ts("pst verdicts/s", "Verdicts published, by model (service class) and label.", [[`sum by (model, label) (rate(vigil_pst_verdicts_total[${R}]))`, "{{model}} {{label}}"]], "short"),
      ts("pst judgements", "Connections judged, anomalous and normal.", [[`sum by (result) (rate(vigil_pst_judgements_total[${R}]))`, "{{result}}"]], "short"),
      ts("pst connection table", "Tracked connections and evictions (table full: raise maxConnections or add instances).", [
        ["sum by (instance) (vigil_pst_connections_tracked)", "tracked {{instance}}"],
        [`sum by (instance) (rate(vigil_pst_evictions_total[${R}]))`, "evicted/s {{instance}}"],
      ], "short"),
      ts("pst lag", "", [["max by (instance) (vigil_pst_processing_lag_seconds)", "{{instance}}"]], "s"),
      row("som: self-organizing map"),
      heatmap("som window scores", "Quantization error of each scored traffic window: its distance to the best-matching unit of the map.", `sum by (le) (rate(vigil_som_quantization_error_bucket[${R}]))`),
      ts("som scores (quantiles) and threshold", "Windows above the threshold are anomalous.", [
        [`histogram_quantile(0.5, sum by (le) (rate(vigil_som_quantization_error_bucket[${R}])))`, "p50"],
        [`histogram_quantile(0.99, sum by (le) (rate(vigil_som_quantization_error_bucket[${R}])))`, "p99"],
        ["max(vigil_som_threshold)", "threshold"],
      ], "short"),
      ts("som windows and verdicts/s", "Windows scored by result, and verdicts published (attributed to a source, or aggregate).", [
        [`sum by (result) (rate(vigil_som_windows_total[${R}]))`, "windows {{result}}"],
        [`sum by (kind) (rate(vigil_som_verdicts_total[${R}]))`, "verdicts {{kind}}"],
      ], "short"),
      ts("som lag", "", [["max by (instance) (vigil_som_lag_seconds)", "{{instance}}"]], "s"),
      row("Verdicts reaching rules"),
      ts("Verdicts received by rules", "Per detector, as the rules service counts them.", [[`sum by (detector) (rate(vigil_rules_verdicts_received_total[${R}]))`, "{{detector}}"]], "short"),
      ts("Feedback", "False alarms fed back to the detectors, by result.", [
        [`sum by (result) (rate(vigil_pst_feedback_total[${R}]))`, "pst {{result}}"],
        [`sum by (result) (rate(vigil_som_feedback_total[${R}]))`, "som {{result}}"],
      ], "short"),
    ],
  },
  {
    uid: "vigil-rules",
    title: "Vigil / Rules",
    description: "Decisions from verdicts to enforced rules: what is blocked, why, for how long, and how fast.",
    panels: [
      stat("Rules service up", "Rules instances Prometheus scrapes: red at 0 (no decisions, no expiries).", [["sum(up{job=\"vigil-rules\"})", "up"]], "short", { upDown: true }),
      stat("Active rules", "", [["sum(vigil_rules_active_rules)", "active"]], "short"),
      stat("Decision latency p99", "From verdict received to rule enforced.", [[`histogram_quantile(0.99, sum by (le) (rate(vigil_rules_decision_latency_seconds_bucket[${R}])))`, "p99"]], "s", { thresholds: [0.1, 1] }),
      stat("Enforcement errors (1h)", "", [["sum(increase(vigil_rules_enforcement_errors_total[1h]))", "errors"]], "short", { thresholds: [1, 1] }),
      stat("Unverified block budget", "New blocks of sources without a completed handshake still allowed now (spoofing guard).", [["min(vigil_rules_cap_tokens)", "tokens"]], "short"),
      ts("Active rules by origin", "Detector-made, operator-made, allowlist.", [["sum by (origin, action) (vigil_rules_active_rules)", "{{origin}} {{action}}"]], "short"),
      ts("Rules added and expired", "", [
        [`sum by (origin) (rate(vigil_rules_rules_added_total[${R}]))`, "added {{origin}}"],
        [`sum by (origin) (rate(vigil_rules_rules_expired_total[${R}]))`, "expired {{origin}}"],
        [`sum by (cause) (rate(vigil_rules_rules_removed_total[${R}]))`, "removed {{cause}}"],
      ], "short"),
      ts("Decisions", "What became of each verdict: blocked, waiting for agreement, capped, allowlisted...", [[`sum by (outcome) (rate(vigil_rules_decisions_total[${R}]))`, "{{outcome}}"]], "short"),
      ts("Decision latency", "", [
        [`histogram_quantile(0.5, sum by (le) (rate(vigil_rules_decision_latency_seconds_bucket[${R}])))`, "p50"],
        [`histogram_quantile(0.99, sum by (le) (rate(vigil_rules_decision_latency_seconds_bucket[${R}])))`, "p99"],
      ], "s"),
      ts("Enforcement errors", "", [[`sum by (enforcer, op) (rate(vigil_rules_enforcement_errors_total[${R}]))`, "{{enforcer}} {{op}}"]], "short"),
      ts("Reconciliations", "Desired rules compared with the enforced table; repairs mean something else changed it.", [[`sum by (result) (rate(vigil_rules_reconciles_total[${R}]))`, "{{result}}"]], "short"),
      ts("Rejected verdicts", "", [[`sum by (reason) (rate(vigil_rules_verdicts_malformed_total[${R}]))`, "{{reason}}"]], "short"),
      ts("Store backlog", "Rule writes waiting for JetStream.", [["max(vigil_rules_store_backlog)", "backlog"]], "short"),
    ],
  },
  {
    uid: "vigil-kernel",
    title: "Vigil / Kernel module",
    description: "The vigil module as the services see it: frames through its capture ring and their losses, the rule table the rules service keeps in it. Without the module (enforcer nftables or dry-run, capture on AF_PACKET) these panels show no data: that is expected.",
    panels: [
      stat("Frames/s through the ring", "", [[`sum(rate(vigil_capture_frames_captured_total{source="kernel"}[${R}]))`, "frames"]], "pps"),
      stat("Ring drops/s", "Frames the module could not put in a full ring. Packets are never affected, only what the detectors see.", [[`sum(rate(vigil_capture_ring_drops_total{source="kernel"}[${R}]))`, "drops"]], "pps", { thresholds: [1, 100] }),
      stat("Rules in force", "Active rules; with the kmod enforcer they are the module's table.", [["sum(vigil_rules_active_rules)", "rules"]], "short"),
      stat("Module errors (1h)", "Rule table operations over generic netlink that failed.", [[`sum(increase(vigil_rules_enforcement_errors_total{enforcer="kmod"}[1h]))`, "errors"]], "short", { thresholds: [1, 1] }),
      stat("Packets/s through the hooks", "Packets the module's netfilter hooks saw (module stats over generic netlink, read by the rules service with the kmod enforcer).", [[`sum(rate(vigil_kernel_packets_seen_total[${R}]))`, "seen"]], "pps"),
      stat("Dropped by rules/s", "Packets the module dropped because a rule matched.", [[`sum(rate(vigil_kernel_packets_dropped_total[${R}]))`, "dropped"]], "pps"),
      stat("Module ring drops/s", "Frames the module itself counted as lost to full capture rings (all readers).", [[`sum(rate(vigil_kernel_ring_drops_total[${R}]))`, "drops"]], "pps", { thresholds: [1, 100] }),
      stat("Module reachable", "1: the rules service read the module's stats at the last scrape; 0: the module is unloaded or does not answer; no data: the enforcer is not kmod.", [["min(vigil_kernel_module_up)", "up"]], "short", { upDown: true }),
      row("Module counters"),
      ts("Packets seen and dropped by the module", "From the module's own counters: packets through the hooks, dropped by a rule, and written to the capture rings.", [
        [`sum(rate(vigil_kernel_packets_seen_total[${R}]))`, "seen"],
        [`sum(rate(vigil_kernel_packets_dropped_total[${R}]))`, "dropped by rules"],
        [`sum(rate(vigil_kernel_frames_captured_total[${R}]))`, "captured to rings"],
      ], "pps"),
      ts("Module ring drops", "Frames lost to full capture rings as the module counts them; compare with the capture service's ring drops below.", [
        [`sum(rate(vigil_kernel_ring_drops_total[${R}]))`, "module ring drops"],
      ], "pps"),
      ts("Rule hits by origin", "Packets matched by the module's rules, summed by the origin of the rule (detector, manual, feedback, config; unknown: a rule the service does not hold).", [
        [`sum by (origin) (rate(vigil_kernel_rule_hits_total[${R}]))`, "{{origin}}"],
      ], "pps"),
      ts("Rule hit bytes by origin", "", [[`sum by (origin) (rate(vigil_kernel_rule_bytes_total[${R}]))`, "{{origin}}"]], "Bps"),
      ts("Rules held by the module", "The module's own count, host rules (hash set) and general rules (ordered list); it should match the active rules the service holds.", [
        ["sum by (kind) (vigil_kernel_rules)", "{{kind}}"],
        ["sum(vigil_rules_active_rules)", "active in the rules service"],
      ], "short"),
      row("Capture ring and rule table"),
      ts("Capture ring: frames and drops", "Frames read from /dev/vigil and frames lost to a full ring, per capture instance. Drops: raise the module's slots parameter or sample.", [
        [`sum by (instance) (rate(vigil_capture_frames_captured_total{source="kernel"}[${R}]))`, "captured {{instance}}"],
        [`sum by (instance) (rate(vigil_capture_ring_drops_total{source="kernel"}[${R}]))`, "dropped {{instance}}"],
      ], "pps"),
      ts("Ring bytes/s", "L3 bytes of the frames read from the ring.", [[`sum by (instance) (rate(vigil_capture_captured_bytes_total{source="kernel"}[${R}]))`, "{{instance}}"]], "Bps"),
      ts("Rules in the module by origin and action", "", [["sum by (origin, action) (vigil_rules_active_rules)", "{{origin}} {{action}}"]], "short"),
      ts("Rule table changes", "Rules written to and expired from the module.", [
        [`sum by (origin) (rate(vigil_rules_rules_added_total[${R}]))`, "added {{origin}}"],
        [`sum by (origin) (rate(vigil_rules_rules_expired_total[${R}]))`, "expired {{origin}}"],
      ], "short"),
      ts("Module operation errors", "Failed generic netlink operations on the rule table, by operation.", [[`sum by (op) (rate(vigil_rules_enforcement_errors_total{enforcer="kmod"}[${R}]))`, "{{op}}"]], "short"),
      ts("Reconciliations", "The rules service compares the module's table with the rules it should hold and repairs differences.", [[`sum by (result) (rate(vigil_rules_reconciles_total[${R}]))`, "{{result}}"]], "short"),
    ],
  },
];

/**
 * The instance filter every query carries: each vigil_* selector and up{} gets
 * instance=~"$instance", so one host (or one detector replica) can be picked.
 */
const INSTANCE = 'instance=~"$instance"';
export function withInstance(expr) {
  return expr.replace(/\b(vigil_[a-z0-9_]+|up)(\{([^}]*)\})?(?=[\s[)]|$)/g, (_m, name, _b, inner) =>
    `${name}{${inner ? `${inner}, ` : ""}${INSTANCE}}`,
  );
}

/** Block and unblock marks on every time series, from the rules service's counters (a Prometheus annotation query). */
const ANNOTATIONS = [
  {
    name: "Blocks",
    iconColor: "red",
    expr: `sum by (origin) (increase(vigil_rules_rules_added_total[1m])) > 0`,
    titleFormat: "Rules added",
    textFormat: "{{origin}}: rules added",
    tagKeys: "origin",
  },
  {
    name: "Unblocks",
    iconColor: "green",
    expr: `sum by (origin) (increase(vigil_rules_rules_expired_total[1m])) > 0 or sum by (cause) (increase(vigil_rules_rules_removed_total[1m])) > 0`,
    titleFormat: "Rules expired or removed",
    textFormat: "{{origin}}{{cause}}: rules expired or removed",
    tagKeys: "origin,cause",
  },
];

/** Up/connected stats: red at 0, green from 1. */
const UP_DOWN = { mode: "absolute", steps: [{ color: "red", value: null }, { color: "green", value: 1 }] };

function thresholds(steps) {
  if (!steps) return { mode: "absolute", steps: [{ color: "green", value: null }] };
  return { mode: "absolute", steps: [{ color: "green", value: null }, { color: "orange", value: steps[0] }, { color: "red", value: steps[1] }] };
}

function build(d) {
  const panels = [];
  let id = 1;
  let x = 0;
  let y = 0;
  let rowH = 0;
  const newline = () => {
    y += rowH;
    x = 0;
    rowH = 0;
  };
  for (const p of d.panels) {
    if (p.row) {
      if (x) newline();
      panels.push({ id: id++, type: "row", title: p.row, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
      y += 1;
      continue;
    }
    const w = p.w ?? 12;
    const h = p.h ?? 8;
    if (x + w > 24) newline();
    const panel = {
      id: id++,
      type: p.type,
      title: p.title,
      description: p.description,
      datasource: DS,
      gridPos: { h, w, x, y },
      fieldConfig: {
        defaults: { unit: p.unit, thresholds: p.upDown ? UP_DOWN : thresholds(p.thresholds), color: { mode: p.type === "stat" ? "thresholds" : "palette-classic" } },
        overrides: [],
      },
      options:
        p.type === "stat"
          ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", graphMode: "area", textMode: "auto" }
          : p.type === "heatmap"
            ? { calculate: false, yAxis: { unit: "short" }, cellGap: 1, color: { mode: "scheme", scheme: "Oranges" } }
            : { legend: { displayMode: "list", placement: "bottom", showLegend: true }, tooltip: { mode: "multi", sort: "desc" } },
      targets: p.targets.map(([expr, legend], i) => ({
        refId: String.fromCharCode(65 + i),
        datasource: DS,
        expr: withInstance(expr),
        legendFormat: legend,
        ...(p.heatmap ? { format: "heatmap" } : {}),
        range: true,
      })),
    };
    panels.push(panel);
    x += w;
    rowH = Math.max(rowH, h);
  }
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ["vigil"],
    timezone: "utc",
    editable: false,
    graphTooltip: 1,
    refresh: "10s",
    schemaVersion: 39,
    version: 1,
    time: { from: "now-1h", to: "now" },
    links: [{ type: "dashboards", tags: ["vigil"], asDropdown: true, title: "Vigil", includeVars: true, keepTime: true }],
    templating: {
      list: [
        { name: "datasource", label: "Prometheus", type: "datasource", query: "prometheus", current: { text: "Prometheus", value: "vigil-prometheus" }, hide: 0 },
        {
          name: "instance",
          label: "Instance",
          description: "Host or replica (the scrape target's instance label); All shows every one.",
          type: "query",
          datasource: DS,
          query: { query: 'label_values(up{job=~"vigil-.*"}, instance)', refId: "instance" },
          definition: 'label_values(up{job=~"vigil-.*"}, instance)',
          refresh: 2,
          multi: true,
          includeAll: true,
          allValue: ".*",
          current: { text: ["All"], value: ["$__all"] },
          sort: 1,
          hide: 0,
        },
      ],
    },
    annotations: {
      list: [
        { builtIn: 1, name: "Annotations & Alerts", type: "dashboard", datasource: { type: "grafana", uid: "-- Grafana --" }, enable: true, hide: true, iconColor: "rgba(0, 211, 255, 1)" },
        ...ANNOTATIONS.map((a) => ({ datasource: DS, enable: true, hide: false, step: "1m", useValueForTime: false, ...a, expr: withInstance(a.expr) })),
      ],
    },
    panels,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(outDir, { recursive: true });
  for (const d of dashboards) writeFileSync(join(outDir, `${d.uid}.json`), JSON.stringify(build(d), null, 2) + "\n");
  process.stderr.write(`build-dashboards: ${dashboards.length} dashboards in ${outDir}\n`);
}
