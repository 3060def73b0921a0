import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

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

/** Draws a dashed horizontal line across the plot at the value `get()` returns (a detector's threshold). */
export function levelLine(get: () => number | null, color: string): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u) => {
          const v = get();
          if (v === null || !Number.isFinite(v)) return;
          const y = u.valToPos(v, "y", true);
          const { left, width } = u.bbox;
          const ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = color;
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(left, y);
          ctx.lineTo(left + width, y);
          ctx.stroke();
          ctx.restore();
        },
      ],
    },
  };
}

export interface SeriesSpec {
  label: string;
  color: string;
  points?: boolean;
  dash?: number[];
  width?: number;
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
      points: s.points ? { show: true, size: 5, stroke: s.color, fill: s.color, width: 1 } : { show: (u: uPlot) => u.data[0].length < 3, size: 6, stroke: s.color, fill: s.color },
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
          incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400],
          values: (_u, splits, _i, _space, incr) => splits.map((s) => clock(s, incr < 60)),
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
      plugins: opts.plugins ?? [],
      cursor: { drag: { x: false, y: false } },
    },
    [[], ...specs.map(() => [])] as unknown as uPlot.AlignedData,
    container,
  );
  const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: opts.height ?? 200 }));
  ro.observe(container);
  return {
    plot,
    set(data: (number | null)[][]) {
      plot.setData(data as unknown as uPlot.AlignedData);
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
