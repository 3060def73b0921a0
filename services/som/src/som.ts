/** mulberry32: a small seeded PRNG, so that training is reproducible bit for bit. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

export type Topology = "rectangular" | "hexagonal";

export interface SomShape {
  rows: number;
  cols: number;
  dim: number;
  topology: Topology;
}

export interface TrainOptions {
  /** Passes over the training set. */
  epochs: number;
  seed: number;
  learningRate: number;
  finalLearningRate: number;
  /** Initial neighbourhood radius in grid units; default half the larger side. */
  radius?: number;
  finalRadius: number;
  onProgress?: (done: number, total: number) => void;
}

export class SomError extends Error {
  readonly code = "VIGIL_ERR_SOM";
}

/**
 * A Kohonen self-organizing map on a rectangular or hexagonal grid, weights in
 * one Float32Array (unit-major). Online training with a Gaussian
 * neighbourhood and exponentially decaying learning rate and radius.
 */
export class Som {
  readonly rows: number;
  readonly cols: number;
  readonly dim: number;
  readonly topology: Topology;
  readonly units: number;
  readonly weights: Float32Array;
  /** Grid coordinates of each unit: hexagonal rows are offset by half a unit and sqrt(3)/2 apart. */
  readonly posX: Float64Array;
  readonly posY: Float64Array;

  constructor(shape: SomShape, weights?: Float32Array) {
    if (!(shape.rows >= 1 && shape.cols >= 1 && shape.dim >= 1)) throw new SomError(`invalid map shape ${JSON.stringify(shape)}`);
    if (shape.topology !== "rectangular" && shape.topology !== "hexagonal") throw new SomError(`unknown topology "${shape.topology}"`);
    this.rows = shape.rows;
    this.cols = shape.cols;
    this.dim = shape.dim;
    this.topology = shape.topology;
    this.units = shape.rows * shape.cols;
    if (weights && weights.length !== this.units * this.dim)
      throw new SomError(`map weights hold ${weights.length} values, expected ${this.units} units x ${this.dim}`);
    this.weights = weights ?? new Float32Array(this.units * this.dim);
    this.posX = new Float64Array(this.units);
    this.posY = new Float64Array(this.units);
    for (let r = 0; r < this.rows; r++)
      for (let c = 0; c < this.cols; c++) {
        const u = r * this.cols + c;
        if (this.topology === "hexagonal") {
          this.posX[u] = c + (r & 1 ? 0.5 : 0);
          this.posY[u] = (r * Math.sqrt(3)) / 2;
        } else {
          this.posX[u] = c;
          this.posY[u] = r;
        }
      }
  }

  get shape(): SomShape {
    return { rows: this.rows, cols: this.cols, dim: this.dim, topology: this.topology };
  }

  /** Squared distance between a vector and unit u. */
  dist2(x: ArrayLike<number>, u: number): number {
    const w = this.weights;
    const base = u * this.dim;
    let s = 0;
    for (let i = 0; i < this.dim; i++) {
      const d = x[i] - w[base + i];
      s += d * d;
    }
    return s;
  }

  /** Best-matching unit; its squared distance is left in lastDist2. Ties go to the lower unit. */
  lastDist2 = 0;
  bmu(x: ArrayLike<number>): number {
    let best = 0;
    let bestD = Infinity;
    for (let u = 0; u < this.units; u++) {
      const d = this.dist2(x, u);
      if (d < bestD) {
        bestD = d;
        best = u;
      }
    }
    this.lastDist2 = bestD;
    return best;
  }

  /** Quantization error: Euclidean distance to the best-matching unit. */
  quantizationError(x: ArrayLike<number>): number {
    this.bmu(x);
    return Math.sqrt(this.lastDist2);
  }

  gridDist2(a: number, b: number): number {
    const dx = this.posX[a] - this.posX[b];
    const dy = this.posY[a] - this.posY[b];
    return dx * dx + dy * dy;
  }

  /** Moves the units around `bmu` towards x: w += rate * exp(-d^2 / 2 sigma^2) * (x - w). */
  update(x: ArrayLike<number>, bmu: number, rate: number, sigma: number): void {
    const w = this.weights;
    const inv = 1 / (2 * sigma * sigma);
    // Beyond 3 sigma the Gaussian is below 1.2% of the rate: skip those units.
    const cutoff = 9 * sigma * sigma;
    for (let u = 0; u < this.units; u++) {
      const g2 = this.gridDist2(u, bmu);
      if (g2 > cutoff) continue;
      const h = rate * Math.exp(-g2 * inv);
      const base = u * this.dim;
      for (let i = 0; i < this.dim; i++) w[base + i] += h * (x[i] - w[base + i]);
    }
  }

  /** Initialises the units from distinct random samples (with repetition once samples run out). */
  initFromSamples(samples: Float64Array[], prng: Prng): void {
    if (samples.length === 0) throw new SomError("cannot initialise a map without training samples");
    const order = prng.shuffle([...samples.keys()]);
    for (let u = 0; u < this.units; u++) {
      const s = samples[order[u % order.length]];
      for (let i = 0; i < this.dim; i++) this.weights[u * this.dim + i] = s[i] + (prng.next() - 0.5) * 1e-3;
    }
  }

  /**
   * Trains on samples in a seeded random order. Learning rate and radius
   * decay exponentially from their initial to their final values over all steps.
   */
  train(samples: Float64Array[], opts: TrainOptions): void {
    const prng = new Prng(opts.seed);
    this.initFromSamples(samples, prng);
    const steps = Math.max(1, opts.epochs * samples.length);
    const r0 = opts.radius ?? Math.max(this.rows, this.cols) / 2;
    const rEnd = Math.min(opts.finalRadius, r0);
    const rateDecay = Math.log(opts.finalLearningRate / opts.learningRate) / steps;
    const radiusDecay = Math.log(rEnd / r0) / steps;
    const order = [...samples.keys()];
    let t = 0;
    for (let e = 0; e < opts.epochs; e++) {
      prng.shuffle(order);
      for (const i of order) {
        const x = samples[i];
        const rate = opts.learningRate * Math.exp(rateDecay * t);
        const sigma = r0 * Math.exp(radiusDecay * t);
        this.update(x, this.bmu(x), rate, sigma);
        t++;
      }
      opts.onProgress?.(t, steps);
    }
  }

  /** Mean distance from each unit to its grid neighbours, in weight space: the U-matrix. */
  uMatrix(): number[] {
    const out: number[] = [];
    const near = this.topology === "hexagonal" ? 1.01 : 1.01;
    for (let u = 0; u < this.units; u++) {
      let sum = 0;
      let n = 0;
      for (let v = 0; v < this.units; v++) {
        if (v === u || this.gridDist2(u, v) > near * near) continue;
        let s = 0;
        for (let i = 0; i < this.dim; i++) {
          const d = this.weights[u * this.dim + i] - this.weights[v * this.dim + i];
          s += d * d;
        }
        sum += Math.sqrt(s);
        n++;
      }
      out.push(n ? sum / n : 0);
    }
    return out;
  }
}
