import { CONTEXT_SIZE, PREDICT_SIZE, SYM_BOS, symbolText } from "@vigil/models";

/**
 * Probabilistic suffix tree after Ron, Singer and Tishby, "The power of
 * amnesia" (1996): a variable-order Markov model whose contexts are kept only
 * where they predict the next symbol significantly differently from their
 * shorter suffix.
 */
export interface PstParams {
  /** L: the longest context kept. */
  maxDepth: number;
  /** P_min: a context must occur with at least this empirical probability. */
  pMin: number;
  /** γ_min: every symbol gets at least this probability (smoothing); an unseen symbol costs -ln(γ_min). */
  gammaMin: number;
  /** α: a next symbol only counts as evidence if P(σ|s) ≥ (1+α)γ_min. */
  alpha: number;
  /** r: a context is kept when P(σ|s)/P(σ|suffix(s)) ≥ r or ≤ 1/r for such a σ. */
  ratio: number;
}

export const DEFAULT_PST_PARAMS: PstParams = { maxDepth: 4, pMin: 0.001, gammaMin: 1e-4, alpha: 0, ratio: 1.05 };

export class PstError extends Error {
  constructor(
    message: string,
    readonly code = "VIGIL_ERR_PST",
  ) {
    super(message);
  }
}

export function validateParams(p: PstParams): void {
  const bad = (what: string) => {
    throw new PstError(`PST parameter ${what}`, "VIGIL_ERR_PST_PARAMS");
  };
  if (!Number.isInteger(p.maxDepth) || p.maxDepth < 0 || p.maxDepth > 15) bad(`maxDepth=${p.maxDepth} must be an integer 0..15`);
  if (!(p.pMin > 0 && p.pMin < 1)) bad(`pMin=${p.pMin} must be in (0, 1)`);
  if (!(p.gammaMin > 0 && p.gammaMin * PREDICT_SIZE < 1)) bad(`gammaMin=${p.gammaMin} must be in (0, 1/${PREDICT_SIZE})`);
  if (!(p.alpha >= 0)) bad(`alpha=${p.alpha} must be ≥ 0`);
  if (!(p.ratio > 1)) bad(`ratio=${p.ratio} must be > 1`);
}

/** A training sequence: predicted symbols (segments, possibly END last); fromStart means BOS precedes it. */
export interface TrainingSequence {
  symbols: ArrayLike<number>;
  fromStart: boolean;
}

/** Empirical next-symbol counts for one context (nearest symbol first). */
export interface ContextCounts {
  ctx: number[];
  next: Map<number, number>;
  total: number;
}

const ctxKey = (ctx: readonly number[]) => ctx.join(",");

/**
 * Next-symbol counts for every context up to maxDepth seen in the data. This
 * is the sufficient statistic the tree is (re)built from: feedback adds to it
 * and the tree is rebuilt, so learning online and learning offline agree.
 */
export class ContextCounter {
  readonly contexts = new Map<string, ContextCounts>();

  constructor(readonly maxDepth: number) {
    this.node([]);
  }

  get root(): ContextCounts {
    return this.contexts.get("")!;
  }

  node(ctx: number[]): ContextCounts {
    const key = ctxKey(ctx);
    let n = this.contexts.get(key);
    if (!n) {
      n = { ctx: ctx.slice(), next: new Map(), total: 0 };
      this.contexts.set(key, n);
    }
    return n;
  }

  get(ctx: readonly number[]): ContextCounts | undefined {
    return this.contexts.get(ctxKey(ctx));
  }

  add(seq: TrainingSequence, weight = 1): void {
    const s = seq.symbols;
    for (let i = 0; i < s.length; i++) {
      const x = s[i];
      const ctx: number[] = [];
      for (let d = 0; ; d++) {
        const n = this.node(ctx);
        n.next.set(x, (n.next.get(x) ?? 0) + weight);
        n.total += weight;
        if (d >= this.maxDepth) break;
        const j = i - 1 - d;
        if (j >= 0) ctx.push(s[j]);
        else if (j === -1 && seq.fromStart) ctx.push(SYM_BOS);
        else break;
      }
    }
  }

  toJSON(): Array<[number[], Array<[number, number]>]> {
    return [...this.contexts.values()]
      .sort((a, b) => a.ctx.length - b.ctx.length || ctxKey(a.ctx).localeCompare(ctxKey(b.ctx)))
      .map((n) => [n.ctx, [...n.next.entries()].sort((a, b) => a[0] - b[0])]);
  }

  static fromJSON(maxDepth: number, rows: unknown, where: string): ContextCounter {
    const c = new ContextCounter(maxDepth);
    if (!Array.isArray(rows)) throw new PstError(`${where}: counts must be an array`, "VIGIL_ERR_PST_MODEL");
    rows.forEach((row, i) => {
      const ok =
        Array.isArray(row) &&
        row.length === 2 &&
        Array.isArray(row[0]) &&
        row[0].length <= maxDepth &&
        row[0].every((s: unknown) => Number.isInteger(s) && (s as number) >= 0 && (s as number) < CONTEXT_SIZE) &&
        Array.isArray(row[1]) &&
        row[1].every(
          (e: unknown) =>
            Array.isArray(e) && Number.isInteger(e[0]) && e[0] >= 0 && e[0] < PREDICT_SIZE && typeof e[1] === "number" && e[1] >= 0,
        );
      if (!ok) throw new PstError(`${where}: counts row ${i} is malformed`, "VIGIL_ERR_PST_MODEL");
      const n = c.node(row[0] as number[]);
      for (const [sym, cnt] of row[1] as Array<[number, number]>) {
        n.next.set(sym, (n.next.get(sym) ?? 0) + cnt);
        n.total += cnt;
      }
    });
    return c;
  }
}

/** One node of a learnt tree: a context and its smoothed next-symbol distribution. */
export interface TreeNode {
  ctx: number[];
  /** Occurrences of the context in the training data. */
  count: number;
  /** Empirical next-symbol counts (unsmoothed). */
  next: Map<number, number>;
}

/** Learn-PST: the contexts worth keeping, each with all its suffixes. */
export function learnTree(counts: ContextCounter, p: PstParams): TreeNode[] {
  validateParams(p);
  const N = counts.root.total;
  const kept = new Map<string, ContextCounts>([["", counts.root]]);
  if (N === 0) return [{ ctx: [], count: 0, next: new Map() }];
  const prob = (n: ContextCounts, sym: number) => (n.total > 0 ? (n.next.get(sym) ?? 0) / n.total : 0);
  const queue: ContextCounts[] = [];
  for (let sym = 0; sym < CONTEXT_SIZE; sym++) {
    const n = counts.get([sym]);
    if (n && n.total / N >= p.pMin) queue.push(n);
  }
  const floor = (1 + p.alpha) * p.gammaMin;
  // Each context's one-symbol-older extensions that occur at all, oldest symbol ascending (the
  // order of a scan of every symbol): a scan looked up all CONTEXT_SIZE candidates per context
  // through a string key, which made loading the models a large part of the service's start.
  const extensions = new Map<string, ContextCounts[]>();
  for (const n of counts.contexts.values()) {
    if (n.ctx.length === 0) continue;
    const key = ctxKey(n.ctx.slice(0, -1));
    const list = extensions.get(key);
    if (list) list.push(n);
    else extensions.set(key, [n]);
  }
  for (const list of extensions.values()) list.sort((a, b) => a.ctx[a.ctx.length - 1] - b.ctx[b.ctx.length - 1]);
  while (queue.length) {
    const s = queue.shift()!;
    const parent = counts.get(s.ctx.slice(0, -1))!;
    let significant = false;
    for (const [sym, c] of s.next) {
      const ps = c / s.total;
      if (ps < floor) continue;
      const rr = ps / prob(parent, sym);
      if (rr >= p.ratio || rr <= 1 / p.ratio) {
        significant = true;
        break;
      }
    }
    if (significant)
      for (let len = s.ctx.length; len > 0; len--) {
        const suffix = s.ctx.slice(0, len);
        const key = ctxKey(suffix);
        if (kept.has(key)) break;
        kept.set(key, counts.get(suffix)!);
      }
    if (s.ctx.length < p.maxDepth && s.ctx[s.ctx.length - 1] !== SYM_BOS)
      for (const child of extensions.get(ctxKey(s.ctx)) ?? []) if (child.total / N >= p.pMin) queue.push(child);
  }
  return [...kept.values()]
    .sort((a, b) => a.ctx.length - b.ctx.length || ctxKey(a.ctx).localeCompare(ctxKey(b.ctx)))
    .map((n) => ({ ctx: n.ctx, count: n.total, next: n.next }));
}

/**
 * The tree compiled for prediction: node i's child for an older context
 * symbol c is child[i * CONTEXT_SIZE + c] (-1 when absent) and its cost of
 * predicting σ is nll[i * PREDICT_SIZE + σ] = -ln γ_s(σ). A prediction walks
 * at most maxDepth steps from the root.
 */
export class CompiledPst {
  readonly child: Int32Array;
  readonly nll: Float32Array;
  readonly maxDepth: number;

  constructor(
    readonly nodes: TreeNode[],
    readonly params: PstParams,
  ) {
    this.maxDepth = nodes.reduce((m, n) => Math.max(m, n.ctx.length), 0);
    this.child = new Int32Array(nodes.length * CONTEXT_SIZE).fill(-1);
    this.nll = new Float32Array(nodes.length * PREDICT_SIZE);
    const index = new Map(nodes.map((n, i) => [ctxKey(n.ctx), i]));
    const g = params.gammaMin;
    const scale = 1 - PREDICT_SIZE * g;
    nodes.forEach((n, i) => {
      if (n.ctx.length > 0) {
        const parent = index.get(ctxKey(n.ctx.slice(0, -1)));
        if (parent === undefined) throw new PstError(`tree node [${n.ctx}] has no parent`);
        this.child[parent * CONTEXT_SIZE + n.ctx[n.ctx.length - 1]] = i;
      }
      const row = i * PREDICT_SIZE;
      for (let sym = 0; sym < PREDICT_SIZE; sym++) {
        const pe = n.count > 0 ? (n.next.get(sym) ?? 0) / n.count : 1 / PREDICT_SIZE;
        this.nll[row + sym] = -Math.log(scale * pe + g);
      }
    });
  }

  /** The deepest tree node matching the context ending before position `len` of seq (BOS before index 0 when fromStart). */
  nodeFor(seq: ArrayLike<number>, len: number, fromStart: boolean): number {
    let node = 0;
    for (let d = 1; d <= this.maxDepth; d++) {
      const j = len - d;
      let c: number;
      if (j >= 0) c = seq[j];
      else if (j === -1 && fromStart) c = SYM_BOS;
      else break;
      const next = this.child[node * CONTEXT_SIZE + c];
      if (next < 0) break;
      node = next;
      if (c === SYM_BOS) break;
    }
    return node;
  }

  /** -ln P(seq[i] | its context). */
  cost(seq: ArrayLike<number>, i: number, fromStart: boolean): number {
    return this.nll[this.nodeFor(seq, i, fromStart) * PREDICT_SIZE + seq[i]];
  }

  /** Average negative log-likelihood per symbol (nats). */
  score(seq: ArrayLike<number>, fromStart = true): number {
    if (seq.length === 0) return 0;
    let sum = 0;
    for (let i = 0; i < seq.length; i++) sum += this.cost(seq, i, fromStart);
    return sum / seq.length;
  }

  /**
   * The statistic a connection is judged by, as the tracker computes it while
   * symbols arrive: the largest running average after at least minSymbols
   * symbols, or the final average of a shorter sequence.
   */
  judgeStatistic(seq: ArrayLike<number>, minSymbols: number, fromStart = true): number {
    let sum = 0;
    let best = -Infinity;
    for (let i = 0; i < seq.length; i++) {
      sum += this.cost(seq, i, fromStart);
      if (i + 1 >= minSymbols) best = Math.max(best, sum / (i + 1));
    }
    if (seq.length === 0) return 0;
    return Math.max(best, sum / seq.length);
  }
}

export function percentile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** The tree for people (DOT) and programs (JSON): context, counts, next-symbol probabilities. */
export interface TreeExport {
  params: PstParams;
  nodes: Array<{
    id: number;
    context: string;
    depth: number;
    parent: number | null;
    count: number;
    next: Array<{ symbol: string; probability: number; count: number }>;
  }>;
}

export function exportTree(pst: CompiledPst, topNext = 8): TreeExport {
  const index = new Map(pst.nodes.map((n, i) => [ctxKey(n.ctx), i]));
  const g = pst.params.gammaMin;
  const scale = 1 - PREDICT_SIZE * g;
  return {
    params: pst.params,
    nodes: pst.nodes.map((n, id) => ({
      id,
      // Contexts read in time order, oldest first, as people read sequences.
      context: n.ctx.length ? [...n.ctx].reverse().map(symbolText).join(" ") : "ε",
      depth: n.ctx.length,
      parent: n.ctx.length ? index.get(ctxKey(n.ctx.slice(0, -1)))! : null,
      count: n.count,
      next: [...n.next.entries()]
        .sort((a, b) => b[1] - a[1] || a[0] - b[0])
        .slice(0, topNext)
        .map(([sym, c]) => ({ symbol: symbolText(sym), probability: scale * (c / n.count) + g, count: c })),
    })),
  };
}

export function treeToDot(name: string, t: TreeExport): string {
  const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
  const lines = [`digraph "${esc(name)}" {`, "  rankdir=LR;", '  node [shape=box, fontname="monospace", fontsize=10];'];
  for (const n of t.nodes) {
    const next = n.next
      .slice(0, 4)
      .map((x) => `${x.symbol} ${x.probability.toFixed(3)}`)
      .join("\\l");
    lines.push(`  n${n.id} [label="${esc(n.context)}\\ncount ${Math.round(n.count)}\\l${esc(next)}\\l"];`);
    if (n.parent !== null) lines.push(`  n${n.parent} -> n${n.id};`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}
