import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FEATURE_COUNT, ModelError, Prng, Som, SomModel, trainModel } from "../src/index.js";

function blobs(seed: number, n: number, dim = 3): Float64Array[] {
  const prng = new Prng(seed);
  const centres = [
    [0, 0, 0],
    [5, 5, 0],
    [0, 5, 5],
  ];
  return Array.from({ length: n }, (_, i) => {
    const c = centres[i % centres.length];
    return Float64Array.from({ length: dim }, (_, d) => c[d % 3] + (prng.next() - 0.5));
  });
}

const OPTS = { epochs: 10, seed: 42, learningRate: 0.5, finalLearningRate: 0.01, finalRadius: 0.5 };

describe("self-organizing map", () => {
  it("trains reproducibly: same seed, same weights bit for bit; another seed differs", () => {
    const data = blobs(1, 300);
    const a = new Som({ rows: 6, cols: 6, dim: 3, topology: "hexagonal" });
    const b = new Som({ rows: 6, cols: 6, dim: 3, topology: "hexagonal" });
    const c = new Som({ rows: 6, cols: 6, dim: 3, topology: "hexagonal" });
    a.train(data, OPTS);
    b.train(data, OPTS);
    c.train(data, { ...OPTS, seed: 43 });
    expect(Buffer.from(a.weights.buffer).equals(Buffer.from(b.weights.buffer))).toBe(true);
    expect(Buffer.from(a.weights.buffer).equals(Buffer.from(c.weights.buffer))).toBe(false);
  });

  it("finds the best-matching unit and quantization error by exhaustive search", () => {
    const som = new Som({ rows: 4, cols: 5, dim: 3, topology: "rectangular" });
    som.train(blobs(2, 200), OPTS);
    const prng = new Prng(9);
    for (let k = 0; k < 50; k++) {
      const x = [prng.next() * 8 - 1, prng.next() * 8 - 1, prng.next() * 8 - 1];
      let best = -1;
      let bestD = Infinity;
      for (let u = 0; u < som.units; u++) {
        let d = 0;
        for (let i = 0; i < 3; i++) d += (x[i] - som.weights[u * 3 + i]) ** 2;
        if (d < bestD) [best, bestD] = [u, d];
      }
      expect(som.bmu(x)).toBe(best);
      expect(som.quantizationError(x)).toBeCloseTo(Math.sqrt(bestD), 9);
    }
  });

  it("learns the data: quantization error on the training clusters falls far below the spread", () => {
    const data = blobs(3, 300);
    const som = new Som({ rows: 6, cols: 6, dim: 3, topology: "hexagonal" });
    som.train(data, OPTS);
    const mean = data.reduce((s, x) => s + som.quantizationError(x), 0) / data.length;
    expect(mean).toBeLessThan(0.5);
    expect(som.quantizationError([20, -20, 20])).toBeGreaterThan(20);
  });

  it("lays out hexagonal grids with offset rows and six neighbours inside", () => {
    const som = new Som({ rows: 3, cols: 3, dim: 1, topology: "hexagonal" });
    const centre = 4;
    const neighbours = [...Array(9).keys()].filter((u) => u !== centre && som.gridDist2(u, centre) < 1.01);
    expect(neighbours).toHaveLength(6);
    const rect = new Som({ rows: 3, cols: 3, dim: 1, topology: "rectangular" });
    expect([...Array(9).keys()].filter((u) => u !== centre && rect.gridDist2(u, centre) < 1.01)).toHaveLength(4);
  });

  it("applies the Gaussian neighbourhood: the BMU moves most, far units not at all", () => {
    const som = new Som({ rows: 1, cols: 10, dim: 1, topology: "rectangular" }, new Float32Array(10));
    som.update([1], 0, 0.5, 1);
    expect(som.weights[0]).toBeCloseTo(0.5, 6);
    expect(som.weights[1]).toBeCloseTo(0.5 * Math.exp(-0.5), 6);
    expect(som.weights[9]).toBe(0);
  });

  it("computes a U-matrix: high between clusters", () => {
    const som = new Som({ rows: 8, cols: 8, dim: 3, topology: "rectangular" });
    som.train(blobs(4, 300), OPTS);
    const u = som.uMatrix();
    expect(u).toHaveLength(64);
    expect(Math.max(...u)).toBeGreaterThan(3 * Math.min(...u));
  });
});

describe("model", () => {
  const benign = (seed: number, n: number) => {
    const prng = new Prng(seed);
    return Array.from({ length: n }, () =>
      Array.from({ length: FEATURE_COUNT }, (_, i) => (i === 0 ? 300 + prng.next() * 400 : Math.exp(prng.next() * 4))),
    );
  };

  it("stores scaler, map, threshold, labels and hash; loads back identical and scores the same", () => {
    const model = trainModel({
      name: "t",
      window: { windowMs: 1000, maxPackets: 4096 },
      benign: benign(1, 400),
      attacks: [{ label: "syn-flood", features: [60, 1e5, 0, 1e5, 0, 0, 0, 1e5, 1, 1e5, 0, 1] }],
      params: { rows: 5, cols: 5, epochs: 5 },
      createdAt: "2026-01-01T00:00:00Z",
    });
    expect(model.json.training.dataSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(model.threshold).toBeGreaterThan(0);
    expect(model.json.training.heldOutWindows).toBe(80);
    expect(model.json.scaler.center).toHaveLength(FEATURE_COUNT);
    const x = new Float64Array(FEATURE_COUNT);
    model.transform([60, 1e5, 0, 1e5, 0, 0, 0, 1e5, 1, 1e5, 0, 1], x);
    const unit = model.som.bmu(x);
    expect(model.label(unit)).toBe("syn-flood");
    const dir = mkdtempSync(join(tmpdir(), "som-model-"));
    try {
      model.save(dir);
      const back = SomModel.load(dir);
      expect(back.toJSON()).toEqual(model.toJSON());
      expect(back.som.quantizationError(x)).toBe(model.som.quantizationError(x));
      const again = trainModel({ name: "t", window: { windowMs: 1000, maxPackets: 4096 }, benign: benign(1, 400), params: { rows: 5, cols: 5, epochs: 5 } });
      expect(Array.from(again.som.weights)).toEqual(Array.from(model.som.weights));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects bad model files with a clear error", () => {
    const dir = mkdtempSync(join(tmpdir(), "som-model-"));
    try {
      expect(() => SomModel.load(dir)).toThrow(ModelError);
      const model = trainModel({ name: "t", window: { windowMs: 1000, maxPackets: 4096 }, benign: benign(2, 100), params: { rows: 3, cols: 3, epochs: 2 } });
      const json = model.toJSON();
      expect(() => new SomModel({ ...json, features: ["x"] })).toThrow(/features/);
      expect(() => new SomModel({ ...json, formatVersion: 99 })).toThrow(/version 99/);
      expect(() => new SomModel({ ...json, map: { ...json.map, weights: [1, 2] } })).toThrow(/weights/);
      expect(() => trainModel({ name: "t", window: { windowMs: 1000, maxPackets: 10 }, benign: benign(3, 5) })).toThrow(/at least 20/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("learns a false alarm online: the window stops being flagged, the neighbourhood moves little", () => {
    const model = trainModel({ name: "t", window: { windowMs: 1000, maxPackets: 4096 }, benign: benign(4, 300), params: { rows: 6, cols: 6, epochs: 5 } });
    const odd = [900, 5, 5, 5, 5, 5, 5, 5, 5, 5000, 5, 5];
    const x = model.transform(odd, new Float64Array(FEATURE_COUNT));
    const before = model.som.quantizationError(x);
    expect(before).toBeGreaterThan(model.threshold);
    const bmu = model.som.bmu(x);
    const far = [...Array(model.som.units).keys()].sort((a, b) => model.som.gridDist2(b, bmu) - model.som.gridDist2(a, bmu))[0];
    const farBefore = Array.from(model.som.weights.subarray(far * FEATURE_COUNT, (far + 1) * FEATURE_COUNT));
    const r = model.learnFalseAlarm("v1", odd, 1, 0.1, 1);
    expect(r.after).toBeLessThan(r.before);
    expect(model.nearestFeedback(x)).toBe(0);
    expect(model.json.feedback).toHaveLength(1);
    const farAfter = Array.from(model.som.weights.subarray(far * FEATURE_COUNT, (far + 1) * FEATURE_COUNT));
    const moved = Math.hypot(...farAfter.map((v, i) => v - farBefore[i]));
    expect(moved).toBe(0);
  });
});
