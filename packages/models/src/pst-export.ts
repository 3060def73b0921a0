import { symbolText } from "./alphabet.js";
import { ModelError } from "./errors.js";
import { isObj, num, optNum, str, type Json } from "./fields.js";

/**
 * The PST detector's model export (`vigil pst export --format json`, and the reply on
 * vigil.models.pst): one entry per service class, its tree flattened into nodes that name their
 * parent. Contexts are symbol texts oldest first ("BOS C:S"), "ε" for the root.
 */
export interface PstNodeExport {
  id: number;
  context: string;
  depth: number;
  parent: number | null;
  count: number;
  next: Array<{ symbol: string; probability: number; count: number }>;
}

export interface PstTreeExport {
  /** The learning parameters; gammaMin is the smoothing floor the console shows. */
  params: { gammaMin: number } & Record<string, unknown>;
  nodes: PstNodeExport[];
}

export interface PstModelExport {
  model: string;
  name: string;
  version: number;
  serviceClass: { name: string; ports?: number[] } | string;
  threshold: { value: number } & Record<string, unknown>;
  training?: unknown;
  tree: PstTreeExport;
}

export type PstExport = PstModelExport[];

/** The console's view of one PST model: the tree with contexts as symbol lists, children by count. */
export interface PstNext {
  symbol: string;
  count: number;
  p: number;
}

export interface PstNode {
  context: string[];
  count: number;
  next: PstNext[];
  children: PstNode[];
}

export interface PstModelView {
  serviceClass: string;
  version: string;
  threshold: number | null;
  /** The smoothing floor: the probability of a symbol never seen after a context. */
  gammaMin: number | null;
  nodes: number;
  depth: number;
  root: PstNode;
}

function symbolAt(sym: number, where: string): string {
  try {
    return symbolText(sym);
  } catch (err) {
    throw new ModelError(`${where}: ${(err as Error).message}`);
  }
}

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
      context: [...ctx].reverse().map((s) => symbolAt(s, `${where}.tree[${i}]`)),
      parent: ctx.length ? (ids.get(parentKey) ?? null) : null,
      count: total,
      next: next
        .map(([sym, c]) => ({ symbol: symbolAt(sym, `${where}.counts`), count: c, p: total ? scale * (c / total) + g : 0 }))
        .sort((a, b) => b.p - a.p),
    };
  });
  return treeFromFlat(flat, where, stats);
}

/**
 * Reads a PST document into tree views, whatever form it came in: the detector's JSON export
 * (`PstExport`, as `vigil pst export --format json` prints it and vigil.models.pst answers), a
 * saved model file ("vigil-pst-model"), `{models: [...]}`, or one model. Anything else is refused
 * with a ModelError naming the field.
 */
export function parsePstExport(doc: unknown): PstModelView[] {
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
