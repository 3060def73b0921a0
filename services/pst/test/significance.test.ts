import { describe, expect, it } from "vitest";
import { binomialTail, logFactorial, significant, TIER_NONE, TIER_SUSPICION, TIER_THRESHOLD } from "../src/significance.js";

/** The tail summed over every term, in log space, with nothing left out: the reference. */
function fullTail(n: number, k: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  let logC = 0;
  for (let i = 1; i <= k; i++) logC += Math.log(n - k + i) - Math.log(i);
  let term = logC + k * Math.log(p) + (n - k) * Math.log1p(-p);
  let sum = 0;
  for (let i = k; i <= n; i++) {
    sum += Math.exp(term);
    term += Math.log(n - i) - Math.log(i + 1) + Math.log(p) - Math.log1p(-p);
  }
  return Math.min(1, sum);
}

describe("binomialTail", () => {
  it("matches the full sum (to 1e-9: both add thousands of rounded logarithms), on either side of the mean", () => {
    let seed = 3;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let t = 0; t < 2000; t++) {
      const n = 1 + Math.floor(rnd() * 5000);
      const k = Math.floor(rnd() * (n + 1));
      const p = 10 ** (-6 * rnd());
      const want = fullTail(n, k, p);
      const got = binomialTail(n, k, p);
      if (want === 0) expect(got, `n=${n} k=${k} p=${p}`).toBe(0);
      else expect(Math.abs(got - want) / want, `n=${n} k=${k} p=${p}`).toBeLessThan(1e-9);
    }
    expect(binomialTail(10, 0, 0.5)).toBe(1);
    expect(binomialTail(10, 11, 0.5)).toBe(0);
    expect(binomialTail(20, 20, 0.5)).toBeCloseTo(2 ** -20, 20);
  });

  it("is near 1 for a count far below the mean, where the first terms underflow", () => {
    // 12 suspicious connections of a million at a rate of 1%: far fewer than the 10,000 expected.
    expect(binomialTail(1_000_000, 12, 0.01)).toBe(1);
    expect(significant(1_000_000, 0, 12, 1e-3, 1e-2, { minConnections: 5, minSuspicious: 12, alpha: 1e-6 })).toBe(TIER_NONE);
    expect(binomialTail(4423, 1291, 0.8422)).toBe(1);
  });

  it("stops at the bound the caller compares with, giving the same answer to `< bound`", () => {
    for (const [n, k, p] of [
      [100_000, 30, 1e-4],
      [100_000, 5, 1e-3],
      [50, 5, 0.01],
      [2_000_000, 400, 1e-4],
    ] as const) {
      const alpha = 1e-6;
      const full = fullTail(n, k, p);
      const stopped = binomialTail(n, k, p, alpha);
      expect(stopped < alpha, `n=${n} k=${k}`).toBe(full < alpha);
      if (full < alpha) expect(stopped).toBe(binomialTail(n, k, p));
      else expect(stopped).toBeGreaterThanOrEqual(alpha);
    }
  });

  it("says which count made a window significant", () => {
    const o = { minConnections: 5, minSuspicious: 12, alpha: 1e-6 };
    expect(significant(1000, 20, 20, 1e-3, 1e-2, o)).toBe(TIER_THRESHOLD);
    expect(significant(1000, 2, 60, 1e-3, 1e-2, o)).toBe(TIER_SUSPICION);
    expect(significant(1000, 2, 12, 1e-3, 1e-2, o)).toBe(TIER_NONE);
    // A busy benign source: thousands of connections at the calibrated rates is no evidence.
    expect(significant(1_000_000, 1000, 10_000, 1e-3, 1e-2, o)).toBe(TIER_NONE);
  });
});

describe("logFactorial", () => {
  it("matches the sum of logarithms past the table, where Stirling's series takes over", () => {
    let sum = 0;
    for (let x = 1; x <= 20_000; x++) {
      sum += Math.log(x);
      if (x % 97 === 0 || (x >= 250 && x <= 260)) expect(Math.abs(logFactorial(x) - sum) / sum, `x=${x}`).toBeLessThan(1e-13);
    }
    expect(logFactorial(0)).toBe(0);
    expect(logFactorial(1)).toBe(0);
  });
});
