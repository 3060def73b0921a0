import { createHash } from "node:crypto";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, type Malformed, type RecordCursor } from "@vigil/frames";
import { Verdict } from "@vigil/proto";
import { attribute, DEFAULT_ATTRIBUTION, type Attribution, type AttributionOptions } from "./attribution.js";
import { F_AVG_SIZE, FEATURE_COUNT, FEATURE_NAMES, WindowStats } from "./features.js";
import type { SomModel } from "./model.js";
import { ProbeTracker } from "./probes.js";
import { Windower, type ClosedBy } from "./windower.js";

export interface DetectorSettings {
  /** Windows with fewer packets are scored but never reported: floods are never that small. */
  minWindowPackets: number;
  /** Capture-time seconds during which further anomalous windows of the same culprit merge into its verdict. */
  mergePeriodS: number;
  attribution: AttributionOptions;
}

export const DEFAULT_DETECTOR: DetectorSettings = {
  minWindowPackets: 20,
  mergePeriodS: 60,
  attribution: DEFAULT_ATTRIBUTION,
};

export interface JudgedWindow {
  start: number;
  end: number;
  packets: number;
  closedBy: ClosedBy;
  raw: number[];
  quantizationError: number;
  excess: number;
  bmu: number;
  anomalous: boolean;
  /** Anomalous by the map but within reach of a window people marked as a false alarm. */
  forgiven: boolean;
  attribution?: Attribution;
}

export interface DetectorHooks {
  onVerdict(v: Verdict): void;
  onWindow?(w: JudgedWindow): void;
  onMalformed?(reason: Malformed): void;
  /** An anomalous window merged into a verdict already published for the same culprit. */
  onMerged?(kind: "attributed" | "aggregate"): void;
}

export interface PipelineOptions {
  model: SomModel;
  sourceId: string;
  instance: string;
  settings?: Partial<DetectorSettings>;
  hooks: DetectorHooks;
  /** Shard count / owned shards: counts are scaled to estimate the host's totals. */
  scale?: () => number;
}

const pos2 = (v: number) => (v > 0 ? v * v : 0);
/** Probes a window verdict names that show its source's scan already: no separate scan verdict within the merge period. */
const SHOWN_PROBES = 20;

function verdictId(sourceId: string, key: string, firstTs: number): string {
  return "som-" + createHash("sha256").update(`som\0${sourceId}\0${key}\0${firstTs.toFixed(6)}`).digest("hex").slice(0, 24);
}

/**
 * One stream of packets (a capture source, over the shards this instance
 * owns) cut into windows, each scored against the map when it closes; an
 * anomalous window is attributed and becomes verdicts.
 */
export class WindowPipeline {
  /** Replaced whole by a model reload, between two windows. */
  model: SomModel;
  readonly settings: DetectorSettings;
  readonly windower: Windower;
  private readonly raw = new Float64Array(FEATURE_COUNT);
  private readonly scaled = new Float64Array(FEATURE_COUNT);
  private readonly deviation = new Float64Array(FEATURE_COUNT);
  /** Culprit key -> capture second its current merge period started. */
  private readonly periods = new Map<string, number>();
  private readonly probes = new ProbeTracker();
  /** Source -> capture second of its last window verdict that named many probes (the scan shown already). */
  private readonly probesShown = new Map<string, number>();
  windows = 0;
  verdicts = 0;

  constructor(private readonly opts: PipelineOptions) {
    this.model = opts.model;
    this.settings = { ...DEFAULT_DETECTOR, ...opts.settings, attribution: { ...DEFAULT_ATTRIBUTION, ...opts.settings?.attribution } };
    this.windower = new Windower(opts.model.json.window, (_w, closedBy, slotEnd) => this.close(closedBy, slotEnd), opts.hooks.onMalformed);
  }

  get stats(): WindowStats {
    return this.windower.stats;
  }

  /** Adds every record of a batch (tools and tests; the service feeds records one by one through the merger). */
  ingestRecords(records: Uint8Array): void {
    this.windower.ingestRecords(records);
  }

  /** Adds the cursor's current record. */
  ingest(c: RecordCursor): void {
    this.windower.ingest(c);
  }

  /** End of the stream: judges the partial window. */
  finish(): void {
    this.windower.finish();
  }

  private close(closedBy: ClosedBy, slotEnd: number): void {
    const w = this.stats;
    if (w.packets === 0) return;
    this.windows++;
    const model = this.model;
    const som = model.som;
    w.features(this.raw, closedBy === "packets" ? "packets" : "time", this.opts.scale ? this.opts.scale() : 1);
    const x = model.transform(this.raw, this.scaled);
    const bmu = som.bmu(x);
    const qe = Math.sqrt(som.lastDist2);
    const dev = this.deviation;
    let excess2 = 0;
    for (let i = 0; i < FEATURE_COUNT; i++) {
      dev[i] = x[i] - som.weights[bmu * FEATURE_COUNT + i];
      excess2 += i === F_AVG_SIZE ? dev[i] * dev[i] : pos2(dev[i]);
    }
    const excess = Math.sqrt(excess2);
    // Novelty made of less traffic than usual is not an attack: only the excess counts.
    let anomalous = excess > model.threshold && w.packets >= this.settings.minWindowPackets;
    let forgiven = false;
    if (anomalous && model.json.feedback.length > 0 && model.nearestFeedback(x) <= model.threshold) {
      anomalous = false;
      forgiven = true;
    }
    const judged: JudgedWindow = {
      start: w.start / 1000,
      end: (closedBy === "packets" ? w.lastTs : slotEnd) / 1000,
      packets: w.packets,
      closedBy,
      raw: Array.from(this.raw),
      quantizationError: qe,
      excess,
      bmu,
      anomalous,
      forgiven,
    };
    if (anomalous) {
      judged.attribution = attribute(w, dev, this.settings.attribution);
      this.report(judged, judged.attribution);
    }
    // A window people marked as a false alarm (forgiven) is no scan either.
    if (!forgiven) this.scans(judged);
    this.opts.hooks.onWindow?.(judged);
  }

  /** Sources whose probes, window after window, add up to a scan: a verdict of their own (see probes.ts). */
  private scans(j: JudgedWindow): void {
    const w = this.stats;
    const min = this.probes.opts.minPerWindow;
    for (let i = 0; i < w.addrCount; i++) {
      if (w.sentProbes[i] < min || w.isLocalIndex(i)) continue;
      const address = w.address(i);
      const scan = this.probes.note(address, w.sentProbes[i], j.start);
      if (!scan) continue;
      const shown = this.probesShown.get(address);
      if (shown !== undefined && j.start - shown <= this.settings.mergePeriodS) continue;
      this.verdicts++;
      const features = FEATURE_NAMES.map((name, k) => ({ name, value: round(j.raw[k]), deviation: 0 }));
      const sources = [{ address, share: 1, packets: w.sentPackets[i], ports: scan.probes, halfOpen: w.halfOpen[i], fragments: w.sentFragments[i] }];
      this.opts.hooks.onVerdict(
        Verdict.fromPartial({
          id: verdictId(this.opts.sourceId, `scan:${address}`, scan.since),
          detector: "som",
          instance: this.opts.instance,
          sourceId: this.opts.sourceId,
          address,
          aggregate: false,
          localAddress: w.localIndex >= 0 ? w.address(w.localIndex) : "",
          protocol: w.udp >= 0.8 * w.packets ? IPPROTO_UDP : 0,
          score: scan.probes,
          threshold: this.probes.opts.minProbes,
          model: "som/probes@1",
          label: "port-scan",
          packets: w.sentPackets[i],
          connections: w.halfOpen[i],
          firstTs: scan.since,
          lastTs: w.lastTs / 1000,
          summary: `port-scan: ${address} probed ${scan.probes} ports or hosts in ${scan.windows} windows since ${new Date(scan.since * 1000).toISOString()} (at least ${min} a window, ${this.probes.opts.minProbes} within ${this.probes.opts.horizonS} s)`,
          som: { features, deviations: [], sources, bmu: j.bmu, quantizationError: round(j.quantizationError), windowStart: j.start, windowEnd: j.end, windowPackets: w.packets },
        }),
      );
    }
  }

  private report(j: JudgedWindow, a: Attribution): void {
    const w = this.stats;
    const model = this.model;
    const firstTs = w.firstTs / 1000;
    const lastTs = w.lastTs / 1000;
    for (const [key, started] of this.periods) if (firstTs >= started + this.settings.mergePeriodS || firstTs < started) this.periods.delete(key);

    const features = FEATURE_NAMES.map((name, i) => ({ name, value: round(j.raw[i]), deviation: round(this.deviation[i]) }));
    const deviations = [...features]
      .filter((f, i) => (i === F_AVG_SIZE ? f.deviation !== 0 : f.deviation > 0))
      .sort((p, q) => Math.abs(q.deviation) - Math.abs(p.deviation))
      .slice(0, 4);
    const sources = a.ranked.map((s) => ({
      address: s.address,
      share: round(s.share),
      packets: s.packets,
      // Ports or hosts the source opened: what a scan sends (a server's answers to our ports are not probes).
      ports: s.probes,
      halfOpen: s.halfOpen,
      fragments: s.fragments,
    }));
    const label = model.label(j.bmu);
    const protocol = w.tcp >= 0.8 * w.packets ? IPPROTO_TCP : w.udp >= 0.8 * w.packets ? IPPROTO_UDP : w.icmp >= 0.8 * w.packets ? IPPROTO_ICMP : 0;
    const devText = deviations.map((d) => `${d.name} ${d.deviation > 0 ? "+" : ""}${d.deviation.toFixed(1)}`).join(", ");
    const evidence = {
      features,
      deviations,
      sources,
      bmu: j.bmu,
      quantizationError: round(j.quantizationError),
      windowStart: j.start,
      windowEnd: j.end,
      windowPackets: w.packets,
    };
    const emit = (key: string, fields: Partial<Verdict>, kind: "attributed" | "aggregate") => {
      if (this.periods.has(key)) {
        this.opts.hooks.onMerged?.(kind);
        return;
      }
      this.periods.set(key, firstTs);
      this.verdicts++;
      this.opts.hooks.onVerdict(
        Verdict.fromPartial({
          id: verdictId(this.opts.sourceId, key, firstTs),
          detector: "som",
          instance: this.opts.instance,
          sourceId: this.opts.sourceId,
          localAddress: a.localAddress,
          localPorts: a.localPorts,
          protocol,
          score: round(j.quantizationError),
          threshold: round(model.threshold),
          model: model.id,
          label,
          firstTs,
          lastTs,
          som: evidence,
          ...fields,
        }),
      );
    };
    for (const s of a.dominant) {
      if (s.probes >= SHOWN_PROBES) {
        if (this.probesShown.size >= 10_000) this.probesShown.delete(this.probesShown.keys().next().value as string);
        this.probesShown.set(s.address, firstTs);
      }
      emit(
        `src:${s.address}`,
        {
          address: s.address,
          aggregate: false,
          packets: s.packets,
          connections: s.halfOpen,
          summary: `${s.address} holds ${(s.share * 100).toFixed(0)}% of an anomalous window (QE ${j.quantizationError.toFixed(2)} > ${model.threshold.toFixed(2)}${label ? `, like ${label}` : ""}): ${devText}`,
        },
        "attributed",
      );
    }
    if (a.aggregate) {
      let packets = 0;
      for (let i = 0; i < w.addrCount; i++) if (i !== a.localIndex) packets += w.sentPackets[i];
      emit(
        `agg:${a.localAddress}`,
        {
          address: "",
          aggregate: true,
          packets,
          connections: w.inactive,
          summary: `no dominant source: ${a.sources} sources, largest share ${((a.ranked[0]?.share ?? 0) * 100).toFixed(1)}%, against ${a.localAddress || "?"}${a.localPorts.length ? ` port ${a.localPorts.join(",")}` : ""} (QE ${j.quantizationError.toFixed(2)} > ${model.threshold.toFixed(2)}${label ? `, like ${label}` : ""}): ${devText}`,
        },
        "aggregate",
      );
    }
  }
}

function round(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}
