import { ModelError } from "./errors.js";
import { isObj, num, optNum, str } from "./fields.js";

/**
 * The SOM detector's map export (`vigil som export`, and the reply on vigil.models.som): the grid,
 * its U-matrix (row-major, rows x cols), hits per unit and the labels learnt per unit.
 */
export type Topology = "rectangular" | "hexagonal";

export interface SomExport {
  model: string;
  rows: number;
  cols: number;
  topology: Topology;
  features: readonly string[];
  threshold: number;
  uMatrix: number[];
  hits: number[];
  labels: Array<{ unit: number; label: string; counts: Record<string, number> }>;
  /** Feedback entries learnt since training. */
  feedback: number;
}

/** The console's view of a SOM map. */
export interface SomModelView {
  rows: number;
  cols: number;
  topology: Topology;
  version: string;
  features: string[];
  umatrix: number[];
  hits: number[];
  labels: (string | null)[];
  threshold: number | null;
}

function flatGrid(v: unknown, rows: number, cols: number, where: string): number[] {
  if (!Array.isArray(v)) throw new ModelError(`${where}: expected a list`);
  const flat = Array.isArray(v[0]) ? (v as unknown[][]).flat() : v;
  if (flat.length !== rows * cols) throw new ModelError(`${where}: expected ${rows * cols} cells (${rows}x${cols}), got ${flat.length}`);
  return flat.map((x, i) => num(x, `${where}[${i}]`));
}

/** Grid position of a unit: hexagonal odd rows are offset by half a unit, rows sqrt(3)/2 apart (as the SOM detector lays them out). */
export function unitPosition(unit: number, cols: number, topology: Topology): [number, number] {
  const r = Math.floor(unit / cols);
  const c = unit % cols;
  return topology === "hexagonal" ? [c + (r & 1 ? 0.5 : 0), (r * Math.sqrt(3)) / 2] : [c, r];
}

/** Mean distance of each unit's weights to its grid neighbours' (the U-matrix). */
export function uMatrixFromWeights(weights: number[][], rows: number, cols: number, topology: Topology = "rectangular"): number[] {
  const units = rows * cols;
  const pos = Array.from({ length: units }, (_, u) => unitPosition(u, cols, topology));
  const out: number[] = [];
  for (let u = 0; u < units; u++) {
    let sum = 0;
    let n = 0;
    for (let v = Math.max(0, u - cols - 1); v <= Math.min(units - 1, u + cols + 1); v++) {
      if (v === u) continue;
      const dx = pos[u][0] - pos[v][0];
      const dy = pos[u][1] - pos[v][1];
      if (dx * dx + dy * dy > 1.01 * 1.01) continue;
      let s = 0;
      for (let k = 0; k < weights[u].length; k++) s += (weights[u][k] - weights[v][k]) ** 2;
      sum += Math.sqrt(s);
      n++;
    }
    out.push(n ? sum / n : 0);
  }
  return out;
}

/** The label with the most windows behind it: {"syn-scan": 12, "benign": 3} -> "syn-scan". */
function dominantLabel(v: unknown): string | null {
  if (typeof v === "string") return v || null;
  if (!isObj(v)) return null;
  if (typeof v.label === "string") return v.label || null;
  let best: string | null = null;
  let bestN = -Infinity;
  for (const [k, n] of Object.entries(v)) if (typeof n === "number" && n > bestN) [best, bestN] = [k, n];
  return best;
}

/**
 * Reads a SOM document into map views: the detector's exportMap() shape (`SomExport`, as
 * `vigil som export` prints it and vigil.models.som answers), a saved model file
 * ("vigil-som-model", U-matrix computed from the weights), or a list of either. Anything else is
 * refused with a ModelError naming the field.
 */
export function parseSomExport(doc: unknown): SomModelView[] {
  const list: unknown[] = Array.isArray(doc) ? doc : isObj(doc) && Array.isArray(doc.models) ? doc.models : [doc];
  return list.map((m, i) => {
    const where = list.length > 1 ? `models[${i}]` : "SOM export";
    if (!isObj(m)) throw new ModelError(`${where}: expected an object`);
    const map = isObj(m.map) ? m.map : m;
    const rows = num(map.rows ?? map.height, `${where}.rows`);
    const cols = num(map.cols ?? map.width, `${where}.cols`);
    const topology: Topology = map.topology === "hexagonal" ? "hexagonal" : "rectangular";
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || rows * cols > 100_000)
      throw new ModelError(`${where}: rows and cols must be positive integers (at most 100000 cells)`);
    let umatrix: number[];
    if (m.umatrix ?? m.uMatrix ?? m.u_matrix) umatrix = flatGrid(m.umatrix ?? m.uMatrix ?? m.u_matrix, rows, cols, `${where}.umatrix`);
    else if (Array.isArray(map.weights)) {
      let w = map.weights as unknown[];
      // The model file stores the weights flat: units x dim.
      if (w.length > 0 && !Array.isArray(w[0])) {
        const dim = w.length / (rows * cols);
        if (!Number.isInteger(dim) || dim < 1) throw new ModelError(`${where}.weights: ${w.length} values do not split into ${rows * cols} units`);
        w = Array.from({ length: rows * cols }, (_, u) => (w as number[]).slice(u * dim, (u + 1) * dim));
      }
      if (w.length !== rows * cols || !w.every((x) => Array.isArray(x)))
        throw new ModelError(`${where}.weights: expected ${rows * cols} weight vectors`);
      umatrix = uMatrixFromWeights(w as number[][], rows, cols, topology);
    } else throw new ModelError(`${where}: neither umatrix nor weights present`);
    const hits = m.hits ?? m.hitCounts ?? m.hit_counts;
    const labelsRaw = m.labels;
    const labels: (string | null)[] = new Array(rows * cols).fill(null);
    if (Array.isArray(labelsRaw))
      labelsRaw.forEach((l, k) => {
        // Either one entry per unit, or [{unit, label, counts}].
        const idx = isObj(l) && typeof l.unit === "number" ? l.unit : k;
        if (Number.isInteger(idx) && idx >= 0 && idx < labels.length) labels[idx] = dominantLabel(l);
      });
    else if (isObj(labelsRaw))
      for (const [k, l] of Object.entries(labelsRaw)) {
        const idx = Number(k);
        if (Number.isInteger(idx) && idx >= 0 && idx < labels.length) labels[idx] = dominantLabel(l);
      }
    return {
      rows,
      cols,
      topology,
      version: str(m.model ?? (m.name && m.version !== undefined ? `som/${str(m.name)}@${str(m.version)}` : m.version)),
      features: Array.isArray(m.features) ? m.features.map((f) => (isObj(f) ? str(f.name) : str(f))) : [],
      umatrix,
      hits: hits ? flatGrid(hits, rows, cols, `${where}.hits`) : new Array(rows * cols).fill(0),
      labels,
      threshold: optNum(m.threshold),
    };
  });
}
