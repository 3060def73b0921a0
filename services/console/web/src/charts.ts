import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { fmtShortDate } from "./format";

export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

export const SERIES_COLORS = ["--series-1", "--series-2", "--series-3", "--series-4", "--series-5"];

export interface Level {
  value: number;
  label: string;
}

/**
 * Draws a dashed horizontal line for each level `get()` returns (a detector's thresholds: one per
 * service class), each named at the plot's right edge.
 */
export function levelLines(get: () => Level[], color: string): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u) => {
          const levels = get().filter((l) => Number.isFinite(l.value));
          const backing = withAlpha(cssVar("--panel"), 0.85);
          const { left, top, width, height } = u.bbox;
          const ctx = u.ctx;
          const dpr = devicePixelRatio;
          ctx.save();
          ctx.strokeStyle = color;
          ctx.fillStyle = color;
          ctx.lineWidth = 1.5 * dpr;
          ctx.font = `${11 * dpr}px system-ui`;
          ctx.textAlign = "right";
          ctx.textBaseline = "bottom";
          ctx.setLineDash([6 * dpr, 4 * dpr]);
          let lastLabelY = Infinity;
          for (const l of [...levels].sort((a, b) => a.value - b.value)) {
            const y = u.valToPos(l.value, "y", true);
            if (y < top || y > top + height) continue;
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(left + width, y);
            ctx.stroke();
            // Labels of close thresholds would overlap: each goes at least one text line above the previous.
            const ly = Math.min(y - 2 * dpr, lastLabelY - 12 * dpr);
            // On a backing of the panel's colour: the label stays legible over a cloud of points.
            const text = `${l.label} ${+l.value.toFixed(3)}`;
            const tw = ctx.measureText(text).width;
            ctx.fillStyle = backing;
            ctx.fillRect(left + width - 7 * dpr - tw, ly - 12 * dpr, tw + 6 * dpr, 13 * dpr);
            ctx.fillStyle = color;
            ctx.fillText(text, left + width - 4 * dpr, ly);
            lastLabelY = ly;
          }
          ctx.restore();
        },
      ],
    },
  };
}

/** Writes "×n" beside each pile of points that `get()` returns, where one dot stands for many. */
export function pileCounts(get: () => { t: number; y: number; n: number }[], color: string): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u) => {
          const dpr = devicePixelRatio;
          const ctx = u.ctx;
          ctx.save();
          ctx.font = `600 ${11 * dpr}px system-ui`;
          ctx.fillStyle = color;
          ctx.textBaseline = "middle";
          ctx.textAlign = "left";
          for (const c of get()) {
            const x = u.valToPos(c.t, "x", true);
            const y = u.valToPos(c.y, "y", true);
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.fillText(`×${c.n}`, x + 7 * dpr, y);
          }
          ctx.restore();
        },
      ],
    },
  };
}

/** A colour "#rrggbb" with an alpha, for points that overlap by the hundred. */
export function withAlpha(color: string, alpha: number): string {
  if (!/^#[0-9a-f]{6}$/i.test(color)) return color;
  return color + Math.round(alpha * 255).toString(16).padStart(2, "0");
}

export interface SeriesSpec {
  label: string;
  color: string;
  points?: boolean;
  dash?: number[];
  width?: number;
  /** Point size in px (points series). */
  size?: number;
  /** Fill opacity of points, so that a cloud shows its density. */
  alpha?: number;
}

/** A time chart that follows its container's width and the theme's colours. */
export function timeChart(container: HTMLElement, specs: SeriesSpec[], opts: { height?: number; yLabel?: string; utc?: boolean; minSpan?: number; plugins?: uPlot.Plugin[] } = {}) {
  const text = cssVar("--muted");
  const grid = cssVar("--grid");
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const utc = opts.utc !== false;
  const pad = (n: number) => String(n).padStart(2, "0");
  const clock = (ts: number, withSeconds: boolean) => {
    const d = new Date(ts * 1000);
    const [hh, mm, ss] = utc ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()] : [d.getHours(), d.getMinutes(), d.getSeconds()];
    return withSeconds ? `${pad(hh)}:${pad(mm)}:${pad(ss)}` : `${pad(hh)}:${pad(mm)}`;
  };
  const series: uPlot.Series[] = [
    {},
    ...specs.map<uPlot.Series>((s) => ({
      label: s.label,
      stroke: s.points ? "transparent" : s.color,
      width: s.width ?? 1.5,
      dash: s.dash,
      spanGaps: false,
      // Line series show their points when there are too few to draw a line.
      points: s.points ? { show: true, size: s.size ?? 5, stroke: withAlpha(s.color, Math.min(1, (s.alpha ?? 1) + 0.25)), fill: withAlpha(s.color, s.alpha ?? 1), width: 1 } : { show: (u: uPlot) => u.data[0].length < 3, size: 6, stroke: s.color, fill: s.color },
      paths: s.points ? () => null : undefined,
    })),
  ];
  const width = () => Math.max(240, container.clientWidth - 4);
  const plot = new uPlot(
    {
      width: width(),
      height: opts.height ?? 200,
      series,
      axes: [
        {
          ...axis,
          // Whole seconds at least: sub-second ticks mean nothing for per-second samples or capture times.
          // Room for "HH:MM:SS" labels side by side.
          space: 72,
          incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400],
          // Dated: the first tick and every tick on a new day carry the date under the time, so a
          // span over days (a replayed capture, an outage) cannot pass for a span over hours.
          values: (_u, splits, _i, _space, incr) => {
            const labels = splits.map((s, i) => {
              if (incr >= 86400) return fmtShortDate(s);
              const day = Math.floor(s / 86400);
              const newDay = i === 0 || Math.floor(splits[i - 1] / 86400) !== day;
              return newDay ? `${clock(s, incr < 60)}\n${fmtShortDate(s)}` : clock(s, incr < 60);
            });
            // The axis is drawn on the canvas: its labels are also kept as text (tests, assistive tools).
            container.dataset.xTicks = labels.join(" | ").replace(/\n/g, " ");
            return labels;
          },
          size: 50,
          label: utc ? "UTC" : undefined,
          labelSize: utc ? 14 : 0,
          labelFont: "11px system-ui",
        },
        { ...axis, label: opts.yLabel, labelSize: opts.yLabel ? 18 : 0, size: 56, values: (_u, splits) => splits.map(compact) },
      ],
      scales: {
        x: { time: true },
        y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, (max ?? 1) * 1.1)] } },
      legend: { live: true },
      // uPlot applies scales after the current task: the range in effect is kept on the container as it lands (tests read it).
      plugins: [
        ...(opts.plugins ?? []),
        {
          hooks: {
            setScale: [
              (u: uPlot, key: string) => {
                if (key !== "x") return;
                container.dataset.xmin = String(u.scales.x.min ?? "");
                container.dataset.xmax = String(u.scales.x.max ?? "");
              },
            ],
          },
        },
      ],
      cursor: { drag: { x: false, y: false } },
    },
    [[], ...specs.map(() => [])] as unknown as uPlot.AlignedData,
    container,
  );
  const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: opts.height ?? 200 }));
  ro.observe(container);
  return {
    plot,
    /** New data; `range` pins the x axis (a live view following the wall clock). */
    set(data: (number | null)[][], range?: [number, number]) {
      plot.setData(data as unknown as uPlot.AlignedData);
      if (range) {
        plot.setScale("x", { min: range[0], max: range[1] });
        return;
      }
      // A burst of capture time (a replay) spans a second or two: show at least minSpan around it.
      const xs = data[0] as number[];
      const span = opts.minSpan ?? 0;
      if (xs.length && xs[xs.length - 1] - xs[0] < span) {
        const mid = (xs[0] + xs[xs.length - 1]) / 2;
        plot.setScale("x", { min: mid - span / 2, max: mid + span / 2 });
      }
    },
    destroy() {
      ro.disconnect();
      plot.destroy();
    },
  };
}
