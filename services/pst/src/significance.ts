// Pure statistics: is a count of odd connections more than benign traffic plausibly shows?

/** P(X ≥ k) for X ~ Binomial(n, p), summed in log space. */
export function binomialTail(n: number, k: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  // log C(n, k) by summation; n is a window's connection count, so this stays cheap.
  let logC = 0;
  for (let i = 1; i <= k; i++) logC += Math.log(n - k + i) - Math.log(i);
  let term = logC + k * lp + (n - k) * lq;
  let sum = 0;
  for (let i = k; i <= n; i++) {
    sum += Math.exp(term);
    term += Math.log(n - i) - Math.log(i + 1) + lp - lq;
    if (term < -745) break;
  }
  return Math.min(1, sum);
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
  if (anomalous >= o.minConnections && binomialTail(judged, anomalous, rateAnomalous) < o.alpha) return TIER_THRESHOLD;
  if (suspicious >= o.minSuspicious && binomialTail(judged, suspicious, rateSuspicious) < o.alpha) return TIER_SUSPICION;
  return TIER_NONE;
}
