import { api, type ScorePoint } from "../api";
import { cssVar, levelLine, timeChart } from "../charts";
import { h } from "../dom";
import { fmtScore, fmtTime } from "../format";
import { on } from "../live";

const KEEP = 1500;

/** One panel per detector: every score against the threshold, by capture time. */
export function scoresPage(root: HTMLElement): () => void {
  const panels = h("div");
  const intro = h(
    "p",
    { class: "muted" },
    "Each point is one judged item (a connection for PST, a traffic window for SOM) at its capture time, against the dashed threshold; orange points crossed it, red ones became verdicts. Detectors that publish vigil.scores.<detector> show every score, others only their verdicts.",
  );
  root.append(h("h1", null, "Live scores"), intro, panels);
  const views = new Map<string, { points: ScorePoint[]; chart: ReturnType<typeof timeChart>; recent: HTMLElement; stats: HTMLElement }>();

  const view = (detector: string) => {
    let v = views.get(detector);
    if (v) return v;
    const chartEl = h("div", { class: "chart" });
    const recent = h("tbody");
    const stats = h("span", { class: "muted" });
    panels.append(
      h(
        "section",
        { class: "panel", "data-detector": detector },
        h("h2", null, `${detector} `, stats),
        chartEl,
        h("table", null, h("thead", null, h("tr", null, ["Capture time", "Item", "Model", "Score", "Threshold", ""].map((t) => h("th", null, t)))), recent),
      ),
    );
    const chart = timeChart(
      chartEl,
      [
        { label: "score", color: cssVar("--series-1"), points: true },
        { label: "above threshold", color: cssVar("--warn"), points: true },
        { label: "verdict", color: cssVar("--danger"), points: true },
      ],
      // The current threshold spans the whole plot, also when only a few scores are in.
      { height: 240, yLabel: "score", minSpan: 60, plugins: [levelLine(() => v?.points[v.points.length - 1]?.threshold ?? null, cssVar("--series-2"))] },
    );
    v = { points: [], chart, recent, stats };
    chart.plot.redraw();
    views.set(detector, v);
    return v;
  };

  const redraw = (detector: string) => {
    const v = view(detector);
    const pts = v.points;
    pts.sort((a, b) => a.t - b.t);
    v.chart.set([
      pts.map((p) => p.t),
      pts.map((p) => (p.verdict || p.score >= p.threshold ? null : p.score)),
      pts.map((p) => (!p.verdict && p.score >= p.threshold ? p.score : null)),
      pts.map((p) => (p.verdict ? p.score : null)),
    ]);
    const above = pts.filter((p) => p.score >= p.threshold).length;
    v.stats.textContent = `— ${pts.length} scores, ${above} at or above threshold (${fmtScore(pts[pts.length - 1]?.threshold)}, dashed)`;
    const last = pts.slice(-8).reverse();
    v.recent.replaceChildren(
      ...last.map((p) =>
        h(
          "tr",
          null,
          h("td", null, fmtTime(p.t)),
          h("td", { class: "mono" }, p.key || "–"),
          h("td", null, p.model || "–"),
          h("td", null, fmtScore(p.score)),
          h("td", null, fmtScore(p.threshold)),
          h("td", null, p.verdict ? h("span", { class: "badge bad" }, "verdict") : p.score >= p.threshold ? h("span", { class: "badge warn" }, "above") : ""),
        ),
      ),
    );
  };

  const add = (detector: string, points: ScorePoint[]) => {
    const v = view(detector);
    v.points.push(...points);
    if (v.points.length > KEEP) v.points.splice(0, v.points.length - KEEP);
  };

  let disposed = false;
  api.get<{ detectors: Record<string, ScorePoint[]> }>("/api/scores").then((r) => {
    if (disposed) return;
    for (const [d, pts] of Object.entries(r.detectors)) {
      add(d, pts);
      redraw(d);
    }
    if (!views.size) panels.append(h("div", { class: "panel empty", "data-testid": "no-scores" }, "No scores yet: waiting for detectors."));
  });
  const off = on("scores", (batch) => {
    panels.querySelector("[data-testid=no-scores]")?.remove();
    for (const [d, pts] of Object.entries(batch)) {
      add(d, pts);
      redraw(d);
    }
  });
  return () => {
    disposed = true;
    off();
    for (const v of views.values()) v.chart.destroy();
  };
}
