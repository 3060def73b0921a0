import type { ScorePoint } from "./api";

/** "pst/ssh@3" -> "ssh", "som/default@1" -> "default": the class whose threshold a score is judged against. */
export function serviceClass(p: { model: string }): string {
  const m = /^[^/]+\/([^@]+)/.exec(p.model || "");
  return m ? m[1] : p.model || "?";
}

export interface Run {
  from: number;
  to: number;
  count: number;
}

/** A gap in capture time this long starts a new replay run (another pcap, another day). */
const RUN_GAP_S = 600;

/** Replayed capture times grouped into runs: each is drawn on its own, so two pcaps days apart do not share an axis. */
export function replayRuns(times: number[]): Run[] {
  const ts = [...times].sort((a, b) => a - b);
  const runs: Run[] = [];
  for (const t of ts) {
    const last = runs[runs.length - 1];
    if (last && t - last.to <= RUN_GAP_S) {
      last.to = t;
      last.count++;
    } else runs.push({ from: t, to: t, count: 1 });
  }
  return runs;
}

/**
 * Thins a flood of ordinary scores to one per 3×3 px cell of the plot, so thousands of points stay
 * readable and cheap to draw; points at or above their threshold and verdicts are always kept.
 */
export function decimate<P extends ScorePoint>(points: P[], width: number, height: number, range?: [number, number]): P[] {
  if (points.length <= width) return [...points].sort((a, b) => a.t - b.t);
  const xs = points.map((p) => p.t);
  const [x0, x1] = range ?? [Math.min(...xs), Math.max(...xs)];
  const yMax = Math.max(1e-9, ...points.map((p) => Math.max(p.score, p.threshold)));
  const cell = (p: P) => `${Math.round(((p.t - x0) / Math.max(1e-9, x1 - x0)) * (width / 3))}:${Math.round((p.score / yMax) * (height / 3))}`;
  const seen = new Set<string>();
  const kept: P[] = [];
  for (const p of points) {
    if (p.verdict || p.score >= p.threshold) {
      kept.push(p);
      continue;
    }
    const c = cell(p);
    if (seen.has(c)) continue;
    seen.add(c);
    kept.push(p);
  }
  return kept.sort((a, b) => a.t - b.t);
}

export interface Cluster {
  t: number;
  y: number;
  n: number;
}

/**
 * Points above their threshold that land on one spot (a scan judged in one second: hundreds of
 * connections with one score) hide behind each other: each such pile is counted, so the chart can
 * say "×500" where it draws one dot.
 */
export function clusters<P extends ScorePoint>(points: P[], y: (p: P) => number, width: number, height: number, range: [number, number], yMax: number, min = 5): Cluster[] {
  const cellPx = 10;
  const cols = Math.max(1, width / cellPx);
  const rows = Math.max(1, height / cellPx);
  const span = Math.max(1e-9, range[1] - range[0]);
  const cells = new Map<string, Cluster>();
  for (const p of points) {
    if (!(p.verdict || p.score >= p.threshold)) continue;
    const key = `${Math.round(((p.t - range[0]) / span) * cols)}:${Math.round((y(p) / Math.max(1e-9, yMax)) * rows)}`;
    const c = cells.get(key);
    if (c) c.n++;
    else cells.set(key, { t: p.t, y: y(p), n: 1 });
  }
  return [...cells.values()].filter((c) => c.n >= min);
}
