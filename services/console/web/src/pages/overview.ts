import { api, type InstanceHealth, type Overview, type RulesState, type SeriesPoint } from "../api";
import { cssVar, SERIES_COLORS, timeChart } from "../charts";
import { h } from "../dom";
import { fmtAgo, fmtCount, fmtDuration, fmtRate } from "../format";
import { on } from "../live";
import { phaseView } from "../phase";

/** Instances that said goodbye, or stale ones silent this long, are folded away: most are finished `vigil capture --pcap` runs. */
const GONE_AFTER_MS = 10 * 60_000;

/** Per point, the verdicts of one detector in the 60 s up to it. */
function lastMinute(series: SeriesPoint[], detector: string): number[] {
  const out: number[] = [];
  let sum = 0;
  let from = 0;
  for (let i = 0; i < series.length; i++) {
    sum += series[i].verdicts[detector] ?? 0;
    while (series[i].t - series[from].t >= 60) sum -= series[from++].verdicts[detector] ?? 0;
    out.push(sum);
  }
  return out;
}

/** What never reached an instance: red when anything was lost, so a slow consumer or a full ring is seen. */
function lossCell(i: InstanceHealth): HTMLElement {
  if (!i.frames && !i.framesLost && !i.batchesLost) return h("td", { "data-testid": "lost" }, "–");
  if (!i.framesLost && !i.batchesLost) return h("td", { "data-testid": "lost" }, "0");
  const parts: string[] = [];
  if (i.framesLost) parts.push(`${fmtCount(i.framesLost)} frames (${((100 * i.framesLost) / (i.frames + i.framesLost)).toFixed(1)}%)`);
  if (i.batchesLost) parts.push(`${fmtCount(i.batchesLost)} batches`);
  return h(
    "td",
    { "data-testid": "lost" },
    h("span", { class: "badge bad", title: "frames dropped before this instance saw them (ring full, NATS backed up, slow consumer): see vigil_*_lost_total" }, parts.join(" + ")),
  );
}

/** Flows a shedding level keeps the established segments of: level n keeps 1 in 2^n (docs/operations.md, "Load shedding"). */
const keptShare = (level: number) => `1/${2 ** level}`;

/**
 * What a detector sampled out under overload: deliberate, unlike loss, so an amber badge rather than a red one,
 * shown only while it sheds now (the count is since start; only the level says whether it still is). "–" for none,
 * as in `vigil status`.
 */
function shedCell(i: InstanceHealth): HTMLElement {
  const cell = (...content: (HTMLElement | string)[]) => h("td", { "data-testid": "shed" }, ...content);
  if (!i.framesShed && !i.shedLevel) return cell("–");
  const shed = `${fmtCount(i.framesShed)} frames (${((100 * i.framesShed) / Math.max(1, i.frames)).toFixed(1)}%)`;
  const metric = `vigil_${i.service}_shed_frames_total`;
  if (!i.shedLevel) return cell(h("span", { title: `shed under overload since start, not shedding now: see ${metric}` }, shed));
  return cell(
    h("span", { title: `shed under overload since start: see ${metric}` }, i.framesShed ? shed : "0"),
    " ",
    h(
      "span",
      {
        class: "badge warn",
        "data-testid": "shedding-now",
        title: `shedding now at level ${i.shedLevel}: the established segments of ${keptShare(i.shedLevel)} of the flows are kept; scans, floods and connection attempts are always seen whole (vigil_${i.service}_shed_level)`,
      },
      `shedding, level ${i.shedLevel}`,
    ),
  );
}

export function overviewPage(root: HTMLElement): () => void {
  const cards = {
    packets: h("div", { class: "value", "data-testid": "packets-rate" }, "–"),
    packetsTotal: h("div", { class: "sub", "data-testid": "packets-total" }, ""),
    drops: h("div", { class: "value", "data-testid": "drops-rate" }, "–"),
    dropsTotal: h("div", { class: "sub" }, ""),
    verdicts: h("div", { class: "value", "data-testid": "verdicts-count" }, "–"),
    verdictsTotal: h("div", { class: "sub", "data-testid": "verdicts-total" }, ""),
    rules: h("div", { class: "value", "data-testid": "active-rules" }, "–"),
    rulesSub: h("div", { class: "sub" }, ""),
  };
  const card = (label: string, value: HTMLElement, sub: HTMLElement) => h("div", { class: "card" }, h("div", { class: "label" }, label), value, sub);
  const trafficEl = h("div", { class: "chart" });
  const verdictEl = h("div", { class: "chart" });
  const rulesEl = h("div", { class: "chart" });
  const healthBody = h("tbody");
  const rulesInfo = h("div", { class: "muted" });
  const notice = h("div");
  root.append(
    h("h1", null, "Overview"),
    notice,
    h(
      "div",
      { class: "cards" },
      card("Packets/s captured", cards.packets, cards.packetsTotal),
      card("Drops/s", cards.drops, cards.dropsTotal),
      // Verdicts are rare: a per-second rate reads 0.00 nearly always, a count over the window says something.
      card("Verdicts, last 15 min", cards.verdicts, cards.verdictsTotal),
      card("Active rules", cards.rules, cards.rulesSub),
    ),
    h(
      "div",
      { class: "grid2" },
      h("section", { class: "panel" }, h("h2", null, "Traffic (per second)"), trafficEl),
      h("section", { class: "panel" }, h("h2", null, "Verdicts in the last minute, by detector"), verdictEl),
      h("section", { class: "panel" }, h("h2", null, "Active rules"), rulesEl),
      h(
        "section",
        { class: "panel wide", "data-testid": "health" },
        h("h2", null, "Service health"),
        rulesInfo,
        h(
          "table",
          null,
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              ["Service", "Instance", "Host", "Shards", "Frames", "Lost", "Shed", "Last heartbeat", "State"].map((t) =>
                h("th", t === "Shed" ? { title: "frames a detector left out on purpose because it fell behind (load shedding): not lost, counted apart" } : null, t),
              ),
            ),
          ),
          healthBody,
        ),
      ),
    ),
  );

  const series: SeriesPoint[] = [];
  const detectors: string[] = [];
  const totals = { packets: 0, drops: 0, verdicts: 0 };
  const traffic = timeChart(trafficEl, [
    { label: "packets/s", color: cssVar("--series-1") },
    { label: "drops/s", color: cssVar("--series-5") },
  ], { utc: false });
  let verdictChart: ReturnType<typeof timeChart> | null = null;
  const rulesChart = timeChart(rulesEl, [{ label: "active rules", color: cssVar("--series-3") }], { height: 160, utc: false });

  const rebuildVerdictChart = () => {
    verdictChart?.destroy();
    verdictEl.replaceChildren();
    const specs = (detectors.length ? detectors : ["(none yet)"]).map((d, i) => ({ label: d, color: cssVar(SERIES_COLORS[i % SERIES_COLORS.length]) }));
    verdictChart = timeChart(verdictEl, specs, { utc: false });
  };

  const redraw = () => {
    const xs = series.map((p) => p.t);
    traffic.set([xs, series.map((p) => p.packets), series.map((p) => p.drops)]);
    rulesChart.set([xs, series.map((p) => p.activeRules)]);
    for (const p of series) for (const d of Object.keys(p.verdicts)) if (!detectors.includes(d)) {
      detectors.push(d);
      detectors.sort();
      rebuildVerdictChart();
    }
    verdictChart?.set([xs, ...(detectors.length ? detectors.map((d) => lastMinute(series, d)) : [series.map(() => 0)])]);
    const last = series[series.length - 1];
    cards.packets.textContent = fmtRate(last?.packets);
    cards.drops.textContent = fmtRate(last?.drops);
    cards.verdicts.textContent = fmtCount(totals.verdicts);
    cards.rules.textContent = fmtCount(last?.activeRules);
    cards.packetsTotal.textContent = `${fmtCount(totals.packets)} in the last ${series.length} s`;
    cards.dropsTotal.textContent = `${fmtCount(totals.drops)} in the last ${series.length} s`;
    // An hourly rate extrapolated from a few seconds would be noise: it shows once five minutes are in.
    const perHour = series.length >= 300 ? `, about ${fmtCount((totals.verdicts / series.length) * 3600)}/h` : "";
    cards.verdictsTotal.textContent = `${fmtCount(totals.verdicts)} in the last ${fmtDuration(series.length)}${perHour}`;
  };

  const addPoint = (p: SeriesPoint, prev: SeriesPoint | undefined) => {
    const dt = prev ? Math.max(0.25, Math.min(5, p.t - prev.t)) : 1;
    totals.packets += (p.packets ?? 0) * dt;
    totals.drops += (p.drops ?? 0) * dt;
    totals.verdicts += Object.values(p.verdicts).reduce((a, b) => a + b, 0) * dt;
    series.push(p);
    if (series.length > 900) {
      const old = series.shift()!;
      totals.packets -= old.packets ?? 0;
      totals.drops -= old.drops ?? 0;
      totals.verdicts -= Object.values(old.verdicts).reduce((a, b) => a + b, 0);
    }
  };

  let showGone = false;
  let lastHealth: [InstanceHealth[], RulesState] | null = null;
  const showHealth = (all: InstanceHealth[], rules: RulesState) => {
    lastHealth = [all, rules];
    // Short-lived instances (a pcap fed with vigil capture) would pile up as stale rows: long-silent ones fold into one line.
    const gone = all.filter((i) => i.state === "stopped" || (i.state === "stale" && Date.now() - i.lastSeen > GONE_AFTER_MS));
    const health = showGone ? all : all.filter((i) => !gone.includes(i));
    const toggle = h("button", { type: "button", class: "ghost", "data-testid": "toggle-gone" }, showGone ? "hide them" : "show them");
    toggle.addEventListener("click", () => {
      showGone = !showGone;
      if (lastHealth) showHealth(...lastHealth);
    });
    healthBody.replaceChildren(
      ...(health.length
        ? health.map((i) =>
            h(
              "tr",
              { "data-service": i.service },
              h("td", null, i.service),
              h("td", { class: "mono" }, i.instance),
              h("td", null, i.host || "–"),
              h("td", null, i.shards.length ? `${i.shards.length} (${i.shards.slice(0, 8).join(", ")}${i.shards.length > 8 ? ", …" : ""})` : "–"),
              h("td", null, i.frames || i.framesLost || i.batchesLost ? fmtCount(i.frames) : "–"),
              lossCell(i),
              shedCell(i),
              h("td", null, fmtAgo(i.lastSeen)),
              h("td", null, h("span", { class: `badge ${i.state === "up" ? "ok" : i.state === "stale" ? "bad" : "info"}`, title: i.state === "stale" ? "no heartbeat for a while" : i.state === "stopped" ? "said goodbye" : "" }, i.state)),
            ),
          )
        : [h("tr", null, h("td", { colspan: 9, class: "empty" }, "No heartbeats received yet."))]),
      gone.length ? h("tr", { "data-testid": "gone-instances" }, h("td", { colspan: 9, class: "muted" }, `${gone.length} instance${gone.length === 1 ? "" : "s"} stopped, or stale for over ${GONE_AFTER_MS / 60_000} min `, toggle)) : "",
    );
    const st = rules.status;
    rulesInfo.replaceChildren(
      rules.reachable
        ? h("p", null, "Rules API ", h("span", { class: "badge ok" }, "reachable"), ` at ${rules.address}; enforcer ${st?.enforcer ?? "?"}${st?.dryRun ? " (dry run)" : ""}`)
        : h("p", null, "Rules API ", h("span", { class: "badge bad" }, "unreachable"), ` at ${rules.address}: `, h("span", { class: "muted" }, rules.error ?? "")),
      rules.reachable ? phaseView(st) : "",
      // What is never blocked, and why: the operator checks here that the resolver, the gateway and their own session are safe.
      rules.reachable && st?.allowlist?.length
        ? h(
            "details",
            { "data-testid": "allowlist" },
            h("summary", null, `Never blocked: ${st.allowlist.length} allowlist entr${st.allowlist.length === 1 ? "y" : "ies"}`),
            h("table", null, ...st.allowlist.map((e) => h("tr", null, h("td", { class: "mono" }, e.cidr), h("td", { class: "muted" }, e.why)))),
          )
        : "",
    );
    const origins = st?.rulesByOrigin ? Object.entries(st.rulesByOrigin).map(([o, n]) => `${o.replace(/^ORIGIN_/, "").toLowerCase()} ${n}`).join(", ") : "";
    cards.rulesSub.textContent = rules.reachable ? origins || "none" : "rules service unreachable";
  };

  let disposed = false;
  api.get<Overview>("/api/overview").then(
    (o) => {
      if (disposed) return;
      for (const p of o.series) addPoint(p, series[series.length - 1]);
      if (!o.nats.connected) notice.replaceChildren(h("div", { class: "notice" }, "The console is not connected to NATS: no live data."));
      rebuildVerdictChart();
      redraw();
      showHealth(o.health, o.rules);
    },
    (err: Error) => notice.replaceChildren(h("div", { class: "notice" }, err.message)),
  );
  const off = on("tick", (t) => {
    addPoint(t.point, series[series.length - 1]);
    redraw();
    showHealth(t.health, t.rules);
  });
  return () => {
    disposed = true;
    off();
    traffic.destroy();
    rulesChart.destroy();
    verdictChart?.destroy();
  };
}
