import { describe, expect, it } from "vitest";
import { prom } from "@vigil/metrics";
import type { KernelStats } from "@vigil/netlink";
import { KernelMetrics, type KernelStatsSource } from "../src/kernel-metrics.js";

/** Stands in for the module: the shapes @vigil/netlink returns from VIGIL_CMD_STATS_GET and a rule dump. */
class FakeModule implements KernelStatsSource {
  st: KernelStats = { seen: 0, dropped: 0, captured: 0, ringDrops: 0, hostRules: 0, generalRules: 0 };
  rules = new Map<number, { hits: number; bytes: number }>();
  fail: Error | null = null;
  reads = 0;
  async stats(): Promise<KernelStats> {
    this.reads++;
    if (this.fail) throw this.fail;
    return { ...this.st };
  }
  async counters(): Promise<Map<number, { hits: number; bytes: number }>> {
    if (this.fail) throw this.fail;
    return new Map([...this.rules].map(([id, c]) => [id, { ...c }]));
  }
}

/** Parses the exposition text: "name{labels}" -> value, plus the declared families. */
async function scrape(registry: prom.Registry) {
  const text = await registry.metrics();
  const samples = new Map<string, number>();
  const declared = new Set<string>();
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) declared.add(`${t[1]} ${t[2]}`);
    const m = /^(vigil_kernel_[a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) samples.set(`${m[1]}${m[2] ?? ""}`, Number(m[3]));
  }
  return { samples, declared };
}

const origins: Record<number, string> = { 1: "detector", 2: "detector", 3: "manual" };

describe("kernel module metrics (vigil_kernel_*)", () => {
  it("declares every family but shows no sample when the enforcer is not kmod", async () => {
    const registry = new prom.Registry();
    new KernelMetrics(registry, null, () => undefined);
    const { samples, declared } = await scrape(registry);
    expect(samples.size).toBe(0);
    expect([...declared].sort()).toEqual(
      [
        "vigil_kernel_frames_captured_total counter",
        "vigil_kernel_module_up gauge",
        "vigil_kernel_packets_dropped_total counter",
        "vigil_kernel_packets_seen_total counter",
        "vigil_kernel_ring_drops_total counter",
        "vigil_kernel_rule_bytes_total counter",
        "vigil_kernel_rule_hits_total counter",
        "vigil_kernel_rules gauge",
      ].sort(),
    );
  });

  it("exports the module's stats and per-origin rule hits that never go down when rules expire", async () => {
    const mod = new FakeModule();
    const registry = new prom.Registry();
    const km = new KernelMetrics(registry, mod, (id) => origins[id], { minIntervalMs: 0 });
    mod.st = { seen: 1000, dropped: 40, captured: 900, ringDrops: 7, hostRules: 2, generalRules: 1 };
    mod.rules.set(1, { hits: 10, bytes: 840 }).set(2, { hits: 5, bytes: 420 }).set(3, { hits: 1, bytes: 60 }).set(99, { hits: 2, bytes: 120 });
    let { samples } = await scrape(registry);
    expect(samples.get("vigil_kernel_module_up")).toBe(1);
    expect(samples.get("vigil_kernel_packets_seen_total")).toBe(1000);
    expect(samples.get("vigil_kernel_packets_dropped_total")).toBe(40);
    expect(samples.get("vigil_kernel_frames_captured_total")).toBe(900);
    expect(samples.get("vigil_kernel_ring_drops_total")).toBe(7);
    expect(samples.get('vigil_kernel_rules{kind="host"}')).toBe(2);
    expect(samples.get('vigil_kernel_rules{kind="general"}')).toBe(1);
    expect(samples.get('vigil_kernel_rule_hits_total{origin="detector"}')).toBe(15);
    expect(samples.get('vigil_kernel_rule_bytes_total{origin="detector"}')).toBe(1260);
    expect(samples.get('vigil_kernel_rule_hits_total{origin="manual"}')).toBe(1);
    expect(samples.get('vigil_kernel_rule_hits_total{origin="unknown"}')).toBe(2);
    expect(samples.get('vigil_kernel_rule_hits_total{origin="feedback"}')).toBe(0);

    // Rule 1 expires with 3 more hits seen before; rule 2 keeps counting; rule 3 comes back from zero (module reload).
    mod.rules.set(1, { hits: 13, bytes: 1092 });
    await km.refresh();
    mod.rules.delete(1);
    mod.rules.set(2, { hits: 9, bytes: 756 }).set(3, { hits: 1, bytes: 60 });
    mod.rules.set(3, { hits: 0, bytes: 0 });
    await km.refresh();
    mod.rules.set(3, { hits: 4, bytes: 240 });
    ({ samples } = await scrape(registry));
    expect(samples.get('vigil_kernel_rule_hits_total{origin="detector"}')).toBe(15 + 3 + 4);
    expect(samples.get('vigil_kernel_rule_hits_total{origin="manual"}')).toBe(1 + 4);
    expect(samples.get('vigil_kernel_rule_bytes_total{origin="manual"}')).toBe(60 + 240);
    // One series per origin, whatever the number of rules.
    for (let id = 1000; id < 3000; id++) mod.rules.set(id, { hits: 1, bytes: 60 });
    ({ samples } = await scrape(registry));
    expect([...samples.keys()].filter((k) => k.startsWith("vigil_kernel_rule_hits_total")).length).toBe(5);
    expect(samples.get('vigil_kernel_rule_hits_total{origin="unknown"}')).toBe(2 + 2000);
  });

  it("reads the module once per interval however many families are scraped, and shows it down without stale numbers", async () => {
    const mod = new FakeModule();
    mod.st.seen = 5;
    const registry = new prom.Registry();
    new KernelMetrics(registry, mod, () => undefined, { minIntervalMs: 60_000 });
    await Promise.all([scrape(registry), scrape(registry)]);
    expect(mod.reads).toBe(1);

    const mod2 = new FakeModule();
    mod2.st.seen = 5;
    const registry2 = new prom.Registry();
    new KernelMetrics(registry2, mod2, () => undefined, { minIntervalMs: 0 });
    expect((await scrape(registry2)).samples.get("vigil_kernel_packets_seen_total")).toBe(5);
    mod2.fail = Object.assign(new Error("Generic netlink family vigil not found"), { errno: 2 });
    const { samples } = await scrape(registry2);
    expect(samples.get("vigil_kernel_module_up")).toBe(0);
    expect(samples.has("vigil_kernel_packets_seen_total")).toBe(false);
    expect(samples.has('vigil_kernel_rules{kind="host"}')).toBe(false);
  });
});
