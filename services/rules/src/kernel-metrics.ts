import type { Logger } from "@vigil/lifecycle";
import type { prom, Registry } from "@vigil/metrics";
import type { KernelStats } from "@vigil/netlink";

/** What the kernel module tells over generic netlink: its stats and per-rule counters. */
export interface KernelStatsSource {
  stats(): Promise<KernelStats>;
  counters(): Promise<Map<number, { hits: number; bytes: number }>>;
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

const ORIGINS = ["detector", "manual", "feedback", "config", "unknown"] as const;

/**
 * One metric family whose samples come from the last kernel snapshot. Unlike a
 * prom-client Gauge it has no sample at all when there is nothing to show (no
 * module, enforcer not kmod), so a dashboard shows "no data", never a false 0,
 * while HELP and TYPE still say the rules service exports it.
 */
class SnapshotFamily {
  readonly aggregator = "sum";
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
    private readonly samples: () => Promise<Sample[]>,
  ) {}

  async get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: await this.samples() };
  }

  reset(): void {}
}

/**
 * The kernel module's counters as vigil_kernel_* metrics, read from the module
 * when Prometheus scrapes (at most once per `minIntervalMs`, concurrent scrapes
 * share one read). Per-rule hits and bytes are summed by rule origin: one
 * series per origin whatever the number of rules. Those sums are kept as true
 * counters by adding each rule's increase since the last read, so a rule that
 * expires does not make them go down.
 */
export class KernelMetrics {
  private stats: KernelStats | null = null;
  private up: number | null = null;
  private readonly lastRule = new Map<number, { hits: number; bytes: number }>();
  private readonly hits = new Map<string, number>();
  private readonly bytes = new Map<string, number>();
  private readAt = 0;
  private inFlight: Promise<void> | null = null;

  constructor(
    registry: Registry,
    private readonly source: KernelStatsSource | null,
    private readonly originOf: (ruleId: number) => string | undefined,
    private readonly opts: { minIntervalMs?: number; logger?: Logger } = {},
  ) {
    // labelNames document the family (and let the metrics reference list labels that have no sample yet).
    const family = (name: string, help: string, _labelNames: string[], type: "counter" | "gauge", samples: () => Sample[]) =>
      registry.registerMetric(
        new SnapshotFamily(name, help, type, async () => {
          await this.refresh();
          return samples();
        }) as unknown as prom.Metric,
      );
    const stat = (key: keyof KernelStats) => (): Sample[] => (this.stats ? [{ labels: {}, value: this.stats[key] }] : []);
    const byOrigin = (m: Map<string, number>) => (): Sample[] => [...m].map(([origin, value]) => ({ labels: { origin }, value }));
    family("vigil_kernel_module_up", "1 when the last read of the kernel module's stats over generic netlink succeeded, 0 when it failed; absent unless the enforcer is kmod", [], "gauge", () =>
      this.up === null ? [] : [{ labels: {}, value: this.up }],
    );
    family("vigil_kernel_packets_seen_total", "Packets through the module's netfilter hooks since it was loaded", [], "counter", stat("seen"));
    family("vigil_kernel_packets_dropped_total", "Packets the module dropped by rule since it was loaded", [], "counter", stat("dropped"));
    family("vigil_kernel_frames_captured_total", "Frames the module wrote to its capture rings since it was loaded", [], "counter", stat("captured"));
    family("vigil_kernel_ring_drops_total", "Frames the module lost to full capture rings since it was loaded", [], "counter", stat("ringDrops"));
    family("vigil_kernel_rules", "Rules held by the module, by kind (host: hash set, general: ordered list)", ["kind"], "gauge", () =>
      this.stats
        ? [
            { labels: { kind: "host" }, value: this.stats.hostRules },
            { labels: { kind: "general" }, value: this.stats.generalRules },
          ]
        : [],
    );
    family("vigil_kernel_rule_hits_total", "Packets matched by the module's rules, summed by rule origin (unknown: a rule the service does not hold)", ["origin"], "counter", byOrigin(this.hits));
    family("vigil_kernel_rule_bytes_total", "Bytes of the packets matched by the module's rules, summed by rule origin", ["origin"], "counter", byOrigin(this.bytes));
  }

  /** Reads the module now unless it was read less than `minIntervalMs` ago. */
  refresh(): Promise<void> {
    if (!this.source) return Promise.resolve();
    if (this.inFlight) return this.inFlight;
    if (Date.now() - this.readAt < (this.opts.minIntervalMs ?? 1000)) return Promise.resolve();
    this.inFlight = this.read(this.source).finally(() => {
      this.readAt = Date.now();
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async read(source: KernelStatsSource): Promise<void> {
    try {
      const [stats, counters] = await Promise.all([source.stats(), source.counters()]);
      this.stats = stats;
      this.up = 1;
      this.accumulate(counters);
    } catch (err) {
      // Stale module numbers would look current: show none until it answers again.
      this.stats = null;
      this.up = 0;
      this.opts.logger?.warn({ err: (err as Error).message }, "cannot read the kernel module's stats for metrics");
    }
  }

  private accumulate(counters: Map<number, { hits: number; bytes: number }>): void {
    if (this.hits.size === 0) for (const o of ORIGINS) (this.hits.set(o, 0), this.bytes.set(o, 0));
    for (const [id, c] of counters) {
      const prev = this.lastRule.get(id);
      // A rule re-added after a module reload starts again from zero: its whole count is new.
      const dHits = prev && c.hits >= prev.hits ? c.hits - prev.hits : c.hits;
      const dBytes = prev && c.bytes >= prev.bytes ? c.bytes - prev.bytes : c.bytes;
      if (dHits || dBytes) {
        const origin = this.originOf(id) ?? "unknown";
        this.hits.set(origin, (this.hits.get(origin) ?? 0) + dHits);
        this.bytes.set(origin, (this.bytes.get(origin) ?? 0) + dBytes);
      }
      this.lastRule.set(id, { hits: c.hits, bytes: c.bytes });
    }
    for (const id of this.lastRule.keys()) if (!counters.has(id)) this.lastRule.delete(id);
  }
}
