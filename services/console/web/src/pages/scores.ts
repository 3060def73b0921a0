import { api, type ScorePoint } from "../api";
import { cssVar, levelLines, pileCounts, timeChart, type Level } from "../charts";
import { h } from "../dom";
import { fmtDate, fmtItemKey, fmtScore, fmtTime, isReplayed, LIVE_SKEW_S } from "../format";
import { on } from "../live";
import { clusters, decimate, replayRuns, serviceClass, type Cluster, type Run } from "../scores-view";

const KEEP = 3000;
/** The live view's window: the last 15 minutes of wall-clock time. */
const LIVE_WINDOW_S = 900;

type Point = ScorePoint & { replay: boolean };
type Mode = "live" | "replay";

interface Panel {
  points: Point[];
  chart: ReturnType<typeof timeChart>;
  chartEl: HTMLElement;
  recent: HTMLElement;
  stats: HTMLElement;
  classSel: HTMLSelectElement;
  ratio: HTMLInputElement;
  levels: Level[];
  piles: Cluster[];
}

/**
 * One panel per detector: every score against its own class's threshold. Live traffic is drawn
 * against the wall clock (the last 15 minutes); replayed captures, whose capture times lie in the
 * past, get their own view, one replay run at a time, so mixing them never stretches an axis over days.
 */
export function scoresPage(root: HTMLElement, params: URLSearchParams): () => void {
  const panels = h("div");
  const liveBtn = h("button", { type: "button", "data-view": "live" }, "Live");
  const replayBtn = h("button", { type: "button", "data-view": "replay" }, "Replayed captures");
  const runSel = h("select", { "aria-label": "Replay run", "data-testid": "replay-run", hidden: true });
  const intro = h(
    "p",
    { class: "muted" },
    "Each point is one judged item (a connection for PST, a traffic window for SOM) at its capture time, against its own service class's threshold (dashed, one line per class); orange points crossed it, red ones became verdicts; dense clouds are faded and thinned, points above a threshold are always drawn, and ×n counts those piled on one spot. ",
    `Live: capture time within ${LIVE_SKEW_S / 60} min of the wall clock, drawn over the last 15 min. Replayed: older capture times (a pcap), one run at a time.`,
  );
  root.append(h("h1", null, "Live scores"), intro, h("div", { class: "toolbar tabs", "data-testid": "score-views" }, liveBtn, replayBtn, runSel), panels);
  const views = new Map<string, Panel>();
  let mode: Mode = params.get("view") === "replay" ? "replay" : "live";
  let modeChosen = params.has("view");
  let runs: Run[] = [];
  let runIndex = -1; // -1: the latest run

  const view = (detector: string) => {
    let v = views.get(detector);
    if (v) return v;
    const chartEl = h("div", { class: "chart" });
    const recent = h("tbody");
    const stats = h("span", { class: "muted" });
    const classSel = h("select", { "aria-label": `${detector} service class`, "data-testid": "class-filter" }, h("option", { value: "" }, "all classes"));
    // Each score divided by its own class's threshold: one line at 1 then judges every point of every class.
    const ratio = h("input", { type: "checkbox", "data-testid": "ratio" });
    panels.append(
      h(
        "section",
        { class: "panel", "data-detector": detector },
        h("div", { class: "panel-head" }, h("h2", null, `${detector} `, stats), h("div", { class: "toolbar" }, h("label", { title: "Plot each score divided by its own class's threshold: one line at 1 for every class" }, ratio, "score ÷ own threshold"), classSel)),
        chartEl,
        scrollTable(h("table", { "data-testid": "recent-scores" }, h("thead", null, h("tr", null, ["Capture time", "Item", "Model", "Score", "Threshold", ""].map((t) => h("th", null, t)))), recent)),
      ),
    );
    const panel: Panel = { points: [], chart: null!, chartEl, recent, stats, classSel, ratio, levels: [], piles: [] };
    panel.chart = timeChart(
      chartEl,
      [
        { label: "score", color: cssVar("--series-1"), points: true, size: 4, alpha: 0.35 },
        { label: "above threshold", color: cssVar("--warn"), points: true, size: 6 },
        { label: "verdict", color: cssVar("--danger"), points: true, size: 7 },
      ],
      { height: 260, yLabel: "score", minSpan: 60, plugins: [levelLines(() => panel.levels, cssVar("--muted")), pileCounts(() => panel.piles, cssVar("--text"))] },
    );
    classSel.addEventListener("change", () => redraw(detector));
    ratio.addEventListener("change", () => redraw(detector));
    views.set(detector, panel);
    return panel;
  };

  const inView = (p: Point, run: Run | undefined) => (mode === "live" ? !p.replay : p.replay && !!run && p.t >= run.from && p.t <= run.to);

  const redraw = (detector: string) => {
    const v = view(detector);
    const now = Date.now() / 1000;
    const run = runIndex >= 0 ? runs[runIndex] : runs[runs.length - 1];
    const klass = v.classSel.value;
    const pts = v.points.filter((p) => inView(p, run) && (!klass || serviceClass(p) === klass));
    const range: [number, number] | undefined = mode === "live" ? [now - LIVE_WINDOW_S, now + 5] : undefined;
    const above = (p: Point) => p.score >= p.threshold;
    // The latest threshold of every class shown: each point is coloured by its own class's line (drawn with the data below).
    const byClass = new Map<string, number>();
    for (const p of pts) byClass.set(serviceClass(p), p.threshold);
    const relative = v.ratio.checked;
    v.levels = relative ? (pts.length ? [{ label: "each class's threshold", value: 1 }] : []) : [...byClass].map(([label, value]) => ({ label, value }));
    const y = (p: Point) => (relative ? p.score / (p.threshold || 1) : p.score);
    const width = v.chartEl.clientWidth || 800;
    const xs = pts.map((p) => p.t);
    const xRange: [number, number] = range ?? [Math.min(...xs), Math.max(...xs)];
    v.piles = pts.length ? clusters(pts, y, width, 260, xRange, Math.max(...pts.map(y)) * 1.1) : [];
    const drawn = decimate(pts, v.chartEl.clientWidth || 800, 260, range);
    v.chart.set(
      [
        drawn.map((p) => p.t),
        drawn.map((p) => (p.verdict || above(p) ? null : y(p))),
        drawn.map((p) => (!p.verdict && above(p) ? y(p) : null)),
        drawn.map((p) => (p.verdict ? y(p) : null)),
      ],
      range,
    );
    v.chartEl.dataset.levels = JSON.stringify(v.levels);
    v.chartEl.dataset.drawn = String(drawn.length);
    v.chartEl.dataset.piles = JSON.stringify(v.piles.map((c) => c.n));
    v.chartEl.dataset.shown = String(pts.length);
    v.chartEl.dataset.above = String(pts.filter(above).length);
    v.chartEl.dataset.aboveDrawn = String(drawn.filter(above).length);
    const nAbove = pts.filter(above).length;
    v.stats.textContent = `— ${pts.length} scores${pts.length > drawn.length ? ` (${drawn.length} drawn)` : ""}, ${nAbove} at or above their class's threshold`;
    const have = new Set([...v.classSel.options].map((o) => o.value));
    for (const c of [...new Set(v.points.map(serviceClass))].sort()) if (!have.has(c)) v.classSel.append(h("option", { value: c }, c));
    const last = [...pts].sort((a, b) => b.t - a.t).slice(0, 8);
    v.recent.replaceChildren(
      ...(last.length
        ? last.map((p) =>
            h(
              "tr",
              null,
              h("td", { class: "nowrap" }, h("span", { class: "muted" }, fmtDate(p.t), " "), fmtTime(p.t)),
              // A verdict's connections name both ports, the detector's scores only the server's.
              h("td", { class: "mono" }, p.key ? fmtItemKey(p.key, p.verdict) : "–"),
              h("td", null, p.model || "–"),
              h("td", null, fmtScore(p.score)),
              h("td", null, fmtScore(p.threshold)),
              h("td", null, p.verdict ? h("span", { class: "badge bad" }, "verdict") : above(p) ? h("span", { class: "badge warn" }, "above") : ""),
            ),
          )
        : [h("tr", null, h("td", { colspan: 6, class: "empty" }, mode === "live" ? "No live scores in the last minutes." : "No replayed scores."))]),
    );
  };

  const redrawAll = () => {
    const all = [...views.values()].flatMap((v) => v.points);
    runs = replayRuns(all.filter((p) => p.replay).map((p) => p.t));
    if (!modeChosen && mode === "live" && !all.some((p) => !p.replay) && runs.length) mode = "replay";
    liveBtn.classList.toggle("active", mode === "live");
    replayBtn.classList.toggle("active", mode === "replay");
    liveBtn.textContent = `Live (${all.filter((p) => !p.replay).length})`;
    replayBtn.textContent = `Replayed captures (${all.filter((p) => p.replay).length})`;
    runSel.hidden = mode !== "replay" || !runs.length;
    runSel.replaceChildren(
      ...runs.map((r, i) =>
        h("option", { value: i, selected: (runIndex < 0 ? runs.length - 1 : runIndex) === i }, `${fmtDate(r.from)} ${fmtTime(r.from)} → ${fmtDate(r.to) === fmtDate(r.from) ? "" : `${fmtDate(r.to)} `}${fmtTime(r.to)} UTC (${r.count})`),
      ),
    );
    for (const d of views.keys()) redraw(d);
  };

  const setMode = (m: Mode) => {
    mode = m;
    modeChosen = true;
    redrawAll();
  };
  liveBtn.addEventListener("click", () => setMode("live"));
  replayBtn.addEventListener("click", () => setMode("replay"));
  runSel.addEventListener("change", () => {
    runIndex = Number(runSel.value) === runs.length - 1 ? -1 : Number(runSel.value);
    redrawAll();
  });

  const add = (detector: string, points: ScorePoint[], replayed: (p: ScorePoint) => boolean) => {
    const v = view(detector);
    v.points.push(...points.map((p) => ({ ...p, replay: replayed(p) })));
    if (v.points.length > KEEP) v.points.splice(0, v.points.length - KEEP);
  };

  let disposed = false;
  api.get<{ detectors: Record<string, ScorePoint[]> }>("/api/scores").then((r) => {
    if (disposed) return;
    // When these arrived is not known: capture times within the console's history window count as live.
    const now = Date.now() / 1000;
    for (const [d, pts] of Object.entries(r.detectors)) add(d, pts, (p) => p.t < now - LIVE_WINDOW_S - LIVE_SKEW_S || p.t > now + LIVE_SKEW_S);
    redrawAll();
    if (!views.size) panels.append(h("div", { class: "panel empty", "data-testid": "no-scores" }, "No scores yet: waiting for detectors."));
  });
  const off = on("scores", (batch) => {
    panels.querySelector("[data-testid=no-scores]")?.remove();
    const now = Date.now() / 1000;
    for (const [d, pts] of Object.entries(batch)) add(d, pts, (p) => isReplayed(p.t, now));
    redrawAll();
  });
  // The live view follows the wall clock also when nothing arrives.
  const follow = window.setInterval(() => mode === "live" && views.forEach((_v, d) => redraw(d)), 1000);
  return () => {
    disposed = true;
    off();
    clearInterval(follow);
    for (const v of views.values()) v.chart.destroy();
  };
}

function scrollTable(el: HTMLElement): HTMLElement {
  return h("div", { class: "scroll" }, el);
}
