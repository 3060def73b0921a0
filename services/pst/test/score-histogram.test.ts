import { describe, expect, it } from "vitest";
import { prom, Registry } from "@vigil/metrics";
import { ScoreHistogram } from "../src/score-histogram.js";

const BUCKETS = [0.25, 0.5, 1, 2, 4];
const VALUES: Array<[string, number]> = [
  ["web", 0.1],
  ["web", 0.25],
  ["ssh", 3.9],
  ["web", 0.7],
  ["ssh", 12],
  ["web", 2],
  ["ssh", 0.5],
];

function registry(): Registry {
  const r = new Registry();
  r.setDefaultLabels({ service: "pst" });
  return r;
}

describe("ScoreHistogram", () => {
  it("exposes what a prom-client histogram observed with the same values exposes", async () => {
    const ours = registry();
    const h = new ScoreHistogram(ours, "score", "help text", "model", BUCKETS);
    const theirs = registry();
    const p = new prom.Histogram({ name: "score", help: "help text", labelNames: ["model"], buckets: BUCKETS, registers: [theirs] });
    // Series in the order prom-client creates them: on first observation.
    const series = new Map<string, number>();
    for (const [model, v] of VALUES) {
      if (!series.has(model)) series.set(model, h.series(model));
      h.observe(series.get(model)!, v);
      p.labels(model).observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    expect(h.count(series.get("ssh")!)).toBe(3);
  });

  it("keeps a series' index, leaves out non-finite values and resets to zero", async () => {
    const r = registry();
    const h = new ScoreHistogram(r, "score", "help", "model", BUCKETS);
    const web = h.series("web");
    expect(h.series("ssh")).toBe(web + 1);
    expect(h.series("web")).toBe(web);
    h.observe(web, 0.3);
    h.observe(web, Number.NaN);
    h.observe(web, Number.POSITIVE_INFINITY);
    expect(h.count(web)).toBe(1);
    expect(await r.metrics()).toMatch(/^score_sum\{service="pst",model="web"\} 0\.3$/m);
    r.resetMetrics();
    expect(h.count(web)).toBe(0);
    expect(await r.metrics()).toMatch(/^score_count\{service="pst",model="web"\} 0$/m);
  });

  it("refuses buckets that are not finite and increasing", () => {
    expect(() => new ScoreHistogram(registry(), "score", "help", "model", [1, 1])).toThrow(/increasing/);
    expect(() => new ScoreHistogram(registry(), "score", "help", "model", [])).toThrow(/increasing/);
    expect(() => new ScoreHistogram(registry(), "score", "help", "model", [1, Infinity])).toThrow(/finite/);
  });
});
