import type { Registry } from "@vigil/metrics";

/**
 * One exported sample as prom-client's histograms give it: for the text, `labels` (le) then
 * `sharedLabels` (the series'); for JSON, one `labels` and an exemplar slot (null on buckets).
 */
interface Sample {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  exemplar?: null;
}

/**
 * A Prometheus histogram with one label, observed once per judged connection. prom-client's
 * observe builds a label hash string and a closure per call: at hundreds of thousands of judged
 * connections a second that was a measurable share of the detector's CPU and garbage. Here a
 * series is an index chosen once (series()), an observation two array increments, and the text
 * is built only on a scrape, in the format prom-client's own histograms have.
 */
export class ScoreHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly bounds: Float64Array;
  private readonly labelValues: string[] = [];
  /** Per series, per bucket (bounds, then +Inf): observations in it alone, not cumulative. */
  private counts = new Float64Array(0);
  private sums = new Float64Array(0);

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    buckets: readonly number[],
  ) {
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1])))
      throw new RangeError(`${name}: buckets must be finite and increasing, got [${buckets.join(", ")}]`);
    this.bounds = Float64Array.from(buckets);
    registry.registerMetric(this as never);
  }

  /** The series of a label value, created at zero on first use (as prom-client's labels().observe would on the first observation). */
  series(labelValue: string): number {
    const i = this.labelValues.indexOf(labelValue);
    if (i >= 0) return i;
    this.labelValues.push(labelValue);
    const per = this.bounds.length + 1;
    const counts = new Float64Array(this.labelValues.length * per);
    counts.set(this.counts);
    this.counts = counts;
    const sums = new Float64Array(this.labelValues.length);
    sums.set(this.sums);
    this.sums = sums;
    return this.labelValues.length - 1;
  }

  observe(series: number, value: number): void {
    // prom-client refuses a non-finite value (by throwing, here on the detector's hot path): it is left out.
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[series * (b.length + 1) + i]++;
    this.sums[series] += value;
  }

  /** The count of one series (tests, and a cheap total). */
  count(series: number): number {
    const per = this.bounds.length + 1;
    let n = 0;
    for (let i = 0; i < per; i++) n += this.counts[series * per + i];
    return n;
  }

  private samples(splay: boolean): Sample[] {
    const out: Sample[] = [];
    const per = this.bounds.length + 1;
    const bucketName = `${this.name}_bucket`;
    this.labelValues.forEach((lv, s) => {
      const shared = { [this.labelName]: lv };
      const sample = (labels: Record<string, string | number>, value: number, metricName: string): Sample =>
        splay ? { labels: { ...labels, ...shared }, value, metricName } : { labels, sharedLabels: shared, value, metricName };
      const bucket = (le: number | string, value: number): Sample => (splay ? { ...sample({ le }, value, bucketName), exemplar: null } : sample({ le }, value, bucketName));
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += this.counts[s * per + i];
        out.push(bucket(this.bounds[i], acc));
      }
      acc += this.counts[s * per + this.bounds.length];
      out.push(bucket("+Inf", acc));
      out.push(sample({}, this.sums[s], `${this.name}_sum`));
      out.push(sample({}, acc, `${this.name}_count`));
    });
    return out;
  }

  /** For the text exposition (Registry.metrics). */
  getForPromString() {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values: this.samples(false), aggregator: this.aggregator });
  }

  /** For Registry.getMetricsAsJSON. */
  get() {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values: this.samples(true), aggregator: this.aggregator });
  }

  /** Registry.resetMetrics: back to zero, the series kept. */
  reset(): void {
    this.counts.fill(0);
    this.sums.fill(0);
  }
}
