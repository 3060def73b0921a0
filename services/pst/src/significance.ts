// Pure statistics: is a count of odd connections more than benign traffic plausibly shows?

/** ln(x!) for x < 256, summed once. */
const LOG_FACTORIAL = (() => {
  const t = new Float64Array(256);
  for (let i = 2; i < 256; i++) t[i] = t[i - 1]! + Math.log(i);
  return t;
})();

/** ln(x!): the table, else Stirling's series, whose next term is below 1e-20 from 256 on. */
export function logFactorial(x: number): number {
  if (x < 256) return LOG_FACTORIAL[x]!;
  const r = 1 / x;
  const r2 = r * r;
  return x * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI * x) + r * (1 / 12 - r2 * (1 / 360 - r2 / 1260));
}

/** ln C(n, k) in constant time: a window's counts grow with each connection, and so would a sum. */
function logChoose(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

/**
 * P(X ≥ k) for X ~ Binomial(n, p), summed in log space from the end nearer k, where the terms fall
 * away from the mode: above the mode the upper tail itself, at or below it one minus the lower tail
 * (then at least about 1/2). Summing upward from a k below the mode would start with terms that
 * underflow to 0 while the tail is near 1: a busy source with fewer odd connections than its rate
 * predicts would look significant. The sum stops early, so a window of many connections does not
 * cost a pass over all of them for each connection it gains:
 * - once the upper tail reaches `stopAt` (the caller only asks whether it is below; the partial sum,
 *   already at least `stopAt`, answers that exactly);
 * - once a term is below 2^-60 of the sum while the terms at least halve each step (the rest then
 *   adds less than 2^-59 of it: beyond a double's precision), or underflows.
 */
export function binomialTail(n: number, k: number, p: number, stopAt = Infinity): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  const upper = k > Math.floor((n + 1) * p);
  // The first term's index: k for the upper tail, k - 1 for the lower one.
  const first = upper ? k : k - 1;
  let term = logChoose(n, first) + first * lp + (n - first) * lq;
  let sum = 0;
  if (upper) {
    for (let i = k; i <= n; i++) {
      sum += Math.exp(term);
      if (sum >= stopAt) return sum;
      const step = Math.log(n - i) - Math.log(i + 1) + lp - lq;
      term += step;
      if (term < -745 || (step < -Math.LN2 && term < Math.log(sum) - 60 * Math.LN2)) break;
    }
    return Math.min(1, sum);
  }
  for (let i = first; i >= 0; i--) {
    sum += Math.exp(term);
    const step = Math.log(i) - Math.log(n - i + 1) - lp + lq;
    term += step;
    if (term < -745 || (step < -Math.LN2 && term < Math.log(sum) - 60 * Math.LN2)) break;
  }
  return Math.min(1, Math.max(0, 1 - sum));
}

export interface SignificanceOptions {
  minConnections: number;
  minSuspicious: number;
  alpha: number;
}

/** Which count made a window significant: the anomalous one (above the threshold), the suspicious one, or neither. */
export const TIER_NONE = 0;
export const TIER_SUSPICION = 1;
export const TIER_THRESHOLD = 2;

/**
 * Whether `anomalous` (or `suspicious`) of `judged` connections are more than benign traffic plausibly
 * shows at the rates the thresholds were calibrated for: TIER_THRESHOLD on the anomalous count,
 * TIER_SUSPICION on the suspicious count, TIER_NONE when neither.
 */
export function significant(
  judged: number,
  anomalous: number,
  suspicious: number,
  rateAnomalous: number,
  rateSuspicious: number,
  o: SignificanceOptions,
): number {
  if (anomalous >= o.minConnections && binomialTail(judged, anomalous, rateAnomalous, o.alpha) < o.alpha) return TIER_THRESHOLD;
  if (suspicious >= o.minSuspicious && binomialTail(judged, suspicious, rateSuspicious, o.alpha) < o.alpha) return TIER_SUSPICION;
  return TIER_NONE;
}
