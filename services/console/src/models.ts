import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { subjects, type NatsConnection } from "@vigil/bus";
import type { ModelDocument, PstModelView, PstNext, PstNode, SomModelView, Topology } from "./wire.js";

/**
 * Model views for the console. Detectors are asked first on the request
 * subject vigil.models.<detector> (empty request, JSON reply: the same document
 * as `vigil <detector> export --format json`); when no instance answers, the
 * newest *.json export in the model directories is read. The normalizers
 * accept the shapes documented in the README and reject anything else with an
 * error naming the field.
 */

export const modelSubject = subjects.models;

export class ModelError extends Error {
  readonly code = "VIGIL_ERR_MODEL";
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown, where: string): number => {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  throw new ModelError(`${where}: expected a finite number, got ${JSON.stringify(v)?.slice(0, 40)}`);
};
const optNum = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const str = (v: unknown): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");

function contextOf(v: unknown, where: string): string[] {
  if (v === undefined || v === null || v === "") return [];
  if (typeof v === "string") return v.split(/\s+/).filter(Boolean);
  if (Array.isArray(v)) return v.map((s) => str(s));
  throw new ModelError(`${where}.context: expected a list of symbols or a space-separated string`);
}

function nextOf(v: unknown, where: string): PstNext[] {
  const out: PstNext[] = [];
  if (v === undefined || v === null) return out;
  if (Array.isArray(v)) {
    v.forEach((e, i) => {
      if (!isObj(e)) throw new ModelError(`${where}.next[${i}]: expected an object`);
      const symbol = str(e.symbol ?? e.sym ?? e.s);
      if (!symbol) throw new ModelError(`${where}.next[${i}].symbol: missing`);
      out.push({ symbol, count: optNum(e.count ?? e.n) ?? 0, p: optNum(e.p ?? e.prob ?? e.probability) ?? Number.NaN });
    });
  } else if (isObj(v)) {
    for (const [symbol, e] of Object.entries(v)) {
      if (typeof e === "number") out.push({ symbol, count: e, p: Number.NaN });
      else if (isObj(e)) out.push({ symbol, count: optNum(e.count ?? e.n) ?? 0, p: optNum(e.p ?? e.prob ?? e.probability) ?? Number.NaN });
      else throw new ModelError(`${where}.next.${symbol}: expected a count or {count, p}`);
    }
  } else throw new ModelError(`${where}.next: expected a list or a map of symbols`);
  const total = out.reduce((s, e) => s + e.count, 0);
  for (const e of out) if (Number.isNaN(e.p)) e.p = total > 0 ? e.count / total : 0;
  return out.sort((a, b) => b.p - a.p);
}

function pstNode(v: unknown, where: string, parent: string[] | null, depth: number, stats: { nodes: number; depth: number }): PstNode {
  if (!isObj(v)) throw new ModelError(`${where}: expected a node object`);
  if (depth > 64) throw new ModelError(`${where}: tree deeper than 64 levels`);
  if (++stats.nodes > 200_000) throw new ModelError(`${where}: more than 200000 nodes`);
  stats.depth = Math.max(stats.depth, depth);
  let context = contextOf(v.context ?? v.ctx, where);
  // A child may name only its own symbol: the context grows to the left (suffix trees).
  if (parent && context.length === 0 && typeof v.symbol === "string") context = [v.symbol, ...parent];
  const next = nextOf(v.next ?? v.probs ?? v.counts, where);
  const countField = optNum(v.count ?? v.total ?? v.n);
  const count = countField ?? next.reduce((s, e) => s + e.count, 0);
  let rawChildren: unknown[] = [];
  if (Array.isArray(v.children)) rawChildren = v.children;
  else if (isObj(v.children))
    rawChildren = Object.entries(v.children).map(([sym, c]) => (isObj(c) && c.symbol === undefined ? { symbol: sym, ...c } : c));
  const children = rawChildren.map((c, i) => pstNode(c, `${where}.children[${i}]`, context, depth + 1, stats));
  children.sort((a, b) => b.count - a.count);
  return { context, count, next, children };
}

/** Text of a PST symbol: (direction << 8) | TCP flags, 512 END, 513 BOS (services/pst/src/alphabet.ts). */
// Letter order as the detector prints them (SYN-ACK "SA", PSH-ACK "PA", FIN-ACK "FA", RST-ACK "RA"); the unit test cross-checks it.
const FLAG_LETTERS: Array<[number, string]> = [[0x02, "S"], [0x01, "F"], [0x04, "R"], [0x08, "P"], [0x10, "A"], [0x20, "U"], [0x40, "E"], [0x80, "W"]];
export function pstSymbolText(sym: number): string {
  if (sym === 512) return "END";
  if (sym === 513) return "BOS";
  if (!Number.isInteger(sym) || sym < 0 || sym > 513) throw new ModelError(`symbol ${sym} is outside the PST alphabet (0..513)`);
  const flags = sym & 0xff;
  let letters = "";
  for (const [bit, l] of FLAG_LETTERS) if (flags & bit) letters += l;
  return `${sym >> 8 ? "S" : "C"}:${letters || "0"}`;
}

interface FlatNode {
  id: number;
  context: string[];
  parent: number | null;
  count: number;
  next: PstNext[];
}

function treeFromFlat(flat: FlatNode[], where: string, stats: { nodes: number; depth: number }): PstNode {
  const byId = new Map<number, PstNode>();
  for (const n of flat) byId.set(n.id, { context: n.context, count: n.count, next: n.next, children: [] });
  let root: PstNode | null = null;
  for (const n of flat) {
    const node = byId.get(n.id)!;
    stats.nodes++;
    stats.depth = Math.max(stats.depth, n.context.length);
    if (n.parent === null || n.parent === undefined) {
      if (root) throw new ModelError(`${where}: more than one root node (ids without a parent)`);
      root = node;
    } else {
      const parent = byId.get(n.parent);
      if (!parent) throw new ModelError(`${where}: node ${n.id} names parent ${n.parent}, which is not in the tree`);
      parent.children.push(node);
    }
  }
  if (!root) throw new ModelError(`${where}: no root node (a node without a parent)`);
  const sortKids = (n: PstNode) => {
    n.children.sort((a, b) => b.count - a.count);
    n.children.forEach(sortKids);
  };
  sortKids(root);
  return root;
}

/** The detector's JSON export: nodes [{id, context "C:S S:SA" (oldest first) or "ε", parent, count, next [{symbol, probability, count}]}]. */
function flatExport(nodes: unknown[], where: string, stats: { nodes: number; depth: number }): PstNode {
  const flat = nodes.map<FlatNode>((n, i) => {
    if (!isObj(n)) throw new ModelError(`${where}.nodes[${i}]: expected an object`);
    const ctx = n.context === "ε" ? [] : contextOf(n.context, `${where}.nodes[${i}]`);
    return {
      id: num(n.id ?? i, `${where}.nodes[${i}].id`),
      context: ctx,
      parent: n.parent === null || n.parent === undefined ? null : num(n.parent, `${where}.nodes[${i}].parent`),
      count: optNum(n.count) ?? 0,
      next: nextOf(n.next, `${where}.nodes[${i}]`),
    };
  });
  return treeFromFlat(flat, where, stats);
}

/**
 * A model file as the detector saves it ("vigil-pst-model"): the learnt
 * contexts (numbers, nearest symbol first) and the next-symbol counts of every
 * context; probabilities smoothed as the detector does (gammaMin floor).
 */
function modelFileTree(m: Json, where: string, stats: { nodes: number; depth: number }): PstNode {
  const tree = m.tree as unknown[];
  const rows = Array.isArray(m.counts) ? (m.counts as unknown[]) : [];
  const counts = new Map<string, Array<[number, number]>>();
  rows.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== 2 || !Array.isArray(row[0]) || !Array.isArray(row[1]))
      throw new ModelError(`${where}.counts[${i}]: expected [context, [[symbol, count], ...]]`);
    counts.set((row[0] as number[]).join(","), row[1] as Array<[number, number]>);
  });
  const params = isObj(m.params) ? m.params : {};
  const g = optNum(params.gammaMin) ?? 0;
  const scale = 1 - 513 * g;
  const ids = new Map<string, number>();
  tree.forEach((ctx, i) => {
    if (!Array.isArray(ctx)) throw new ModelError(`${where}.tree[${i}]: expected a list of symbols`);
    ids.set(ctx.join(","), i);
  });
  const flat = tree.map<FlatNode>((raw, i) => {
    const ctx = raw as number[];
    const next = counts.get(ctx.join(",")) ?? [];
    const total = next.reduce((s, [, c]) => s + c, 0);
    const parentKey = ctx.slice(0, -1).join(",");
    return {
      id: i,
      // Shown oldest first, as people read sequences.
      context: [...ctx].reverse().map(pstSymbolText),
      parent: ctx.length ? (ids.get(parentKey) ?? null) : null,
      count: total,
      next: next
        .map(([sym, c]) => ({ symbol: pstSymbolText(sym), count: c, p: total ? scale * (c / total) + g : 0 }))
        .sort((a, b) => b.p - a.p),
    };
  });
  return treeFromFlat(flat, where, stats);
}

export function normalizePst(doc: unknown): PstModelView[] {
  let list: unknown[];
  if (Array.isArray(doc)) list = doc;
  else if (isObj(doc) && Array.isArray(doc.models)) list = doc.models;
  else if (isObj(doc) && isObj(doc.models))
    list = Object.entries(doc.models).map(([k, m]) => (isObj(m) ? { serviceClass: k, ...m } : m));
  else if (isObj(doc) && (doc.root || doc.nodes || doc.tree)) list = [doc];
  else throw new ModelError("PST export: expected {models: [...]}, a list of models or one model");
  return list.map((m, i) => {
    const where = `models[${i}]`;
    if (!isObj(m)) throw new ModelError(`${where}: expected an object`);
    const stats = { nodes: 0, depth: 0 };
    let root: PstNode;
    const tree = m.tree;
    if (Array.isArray(m.nodes)) root = flatExport(m.nodes, where, stats);
    else if (isObj(tree) && Array.isArray(tree.nodes)) root = flatExport(tree.nodes, `${where}.tree`, stats);
    else if (Array.isArray(tree) && (tree.length === 0 || Array.isArray(tree[0]))) root = modelFileTree(m, where, stats);
    else root = pstNode(m.root ?? tree, `${where}.root`, null, 0, stats);
    const sc = m.serviceClass ?? m.service_class ?? m.class;
    const th = m.threshold;
    const params = isObj(m.params) ? m.params : isObj(tree) && isObj(tree.params) ? tree.params : {};
    return {
      serviceClass: (isObj(sc) ? str(sc.name) : str(sc)) || str(m.name) || `model ${i + 1}`,
      version: str(m.version ?? m.model),
      threshold: isObj(th) ? optNum(th.value) : optNum(th),
      gammaMin: optNum(params.gammaMin),
      nodes: stats.nodes,
      depth: stats.depth,
      root,
    };
  });
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

export function normalizeSom(doc: unknown): SomModelView[] {
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

const repoServices = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

async function jsonFiles(dir: string): Promise<{ path: string; mtime: number }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const files: { path: string; mtime: number }[] = [];
  for (const n of names.sort()) {
    if (!n.endsWith(".json")) continue;
    const path = join(dir, n);
    const st = await stat(path).catch(() => null);
    if (st?.isFile()) files.push({ path, mtime: st.mtimeMs });
  }
  return files;
}

export interface ModelSourceOptions {
  nats: () => NatsConnection | null;
  stateDir: string;
  dirs: Partial<Record<"pst" | "som", string>>;
  requestTimeoutMs: number;
}

export class ModelSource {
  private cache = new Map<string, { at: number; value: Promise<ModelDocument<unknown>> }>();

  constructor(private readonly opts: ModelSourceOptions) {}

  /**
   * Where model files are looked for when no detector answers, in order: the
   * detector's state directory (models updated by feedback), then the models
   * shipped in the repository.
   */
  directories(detector: "pst" | "som"): string[] {
    const configured = this.opts.dirs[detector];
    if (configured) return [configured];
    const state = join(this.opts.stateDir, detector);
    const shipped = join(repoServices, detector, "models");
    return [join(state, "models"), state, join(shipped, "default"), shipped];
  }

  get(detector: "pst" | "som"): Promise<ModelDocument<unknown>> {
    const hit = this.cache.get(detector);
    if (hit && Date.now() - hit.at < 2000) return hit.value;
    const value = this.load(detector);
    this.cache.set(detector, { at: Date.now(), value });
    value.catch(() => this.cache.delete(detector));
    return value;
  }

  private async load(detector: "pst" | "som"): Promise<ModelDocument<unknown>> {
    const normalize = detector === "pst" ? normalizePst : normalizeSom;
    const nc = this.opts.nats();
    const problems: string[] = [];
    if (nc && !nc.isClosed()) {
      try {
        const reply = await nc.request(modelSubject(detector), new Uint8Array(0), { timeout: this.opts.requestTimeoutMs });
        const text = new TextDecoder().decode(reply.data);
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch (err) {
          throw new ModelError(`reply on ${modelSubject(detector)} is not JSON: ${(err as Error).message}`);
        }
        return { detector, origin: `live: ${modelSubject(detector)}`, loadedAt: Date.now() / 1000, models: normalize(doc) };
      } catch (err) {
        if (err instanceof ModelError) throw err;
        problems.push(`no answer on ${modelSubject(detector)} (${(err as Error).message})`);
      }
    }
    // PST keeps one file per service class; SOM one map. Files that are not models (feedback stores) are passed over.
    const dirs = this.directories(detector);
    for (const dir of dirs) {
      const files = await jsonFiles(dir);
      if (!files.length) continue;
      if (detector === "som") files.sort((a, b) => b.mtime - a.mtime);
      const models: unknown[] = [];
      const used: string[] = [];
      for (const file of files) {
        try {
          models.push(...normalize(JSON.parse(await readFile(file.path, "utf8"))));
          used.push(file.path);
          if (detector === "som") break;
        } catch (err) {
          problems.push(`${file.path}: ${(err as Error).message}`);
        }
      }
      if (models.length) {
        const origin = used.length === 1 ? `file: ${used[0]}` : `files: ${dir}/ (${used.length})`;
        return { detector, origin, loadedAt: Date.now() / 1000, models };
      }
    }
    if (!problems.some((p) => p.includes(".json"))) problems.push(`no *.json model in ${dirs.join(", ")}`);
    throw Object.assign(new ModelError(`${detector} model unavailable: ${problems.join("; ")}`), { notFound: true });
  }
}
