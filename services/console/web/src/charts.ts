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

export interface SeriesSpec {
  label: string;
  color: string;
  points?: boolean;
  dash?: number[];
  width?: number;
}

/** A time chart that follows its container's width and the theme's colours. */
export function timeChart(container: HTMLElement, specs: SeriesSpec[], opts: { height?: number; yLabel?: string; utc?: boolean } = {}) {
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
      points: s.points ? { show: true, size: 5, stroke: s.color, fill: s.color, width: 1 } : { show: false },
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
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, (max ?? 1) * 1.1)] } },
      legend: { live: true },
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
    },
    destroy() {
      ro.disconnect();
      plot.destroy();
    },
  };
}
