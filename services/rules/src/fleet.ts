import { hostname } from "node:os";
import { codecs, subjects, type NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import { EndOfStream, Heartbeat, type DetectorStatus } from "@vigil/proto";
import type { RulesMetrics } from "./metrics.js";
import { nowS } from "./model.js";

export interface FleetOptions {
  nc: NatsConnection;
  instance: string;
  version: string;
  metricsPort: number;
  metrics: RulesMetrics;
  logger: Logger;
  /** Resolves once the verdicts received so far are enforced (before an end of stream is relayed). */
  idle(): Promise<void>;
}

interface SeenInstance {
  hb: Heartbeat;
  at: number;
}

/**
 * The other services as seen on the bus: our heartbeat out, theirs in, the
 * detector groups they form, and the end-of-stream relay of a replayed
 * capture (rules relays it once every shard of every group has reported).
 */
export class Fleet {
  private instances = new Map<string, SeenInstance>();
  private eos = new Map<string, Map<string, Set<number>>>();
  private eosDone = new Set<string>();
  private verdictsBySource = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly opts: FleetOptions) {}

  start(): void {
    this.timer = setInterval(() => this.heartbeat(false), 2000);
    this.heartbeat(false);
    void this.watchBus();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.heartbeat(true);
  }

  /** A verdict from a capture source was received (counted in its end of stream). */
  countVerdict(sourceId: string): void {
    if (sourceId) this.verdictsBySource.set(sourceId, (this.verdictsBySource.get(sourceId) ?? 0) + 1);
  }

  detectors(): DetectorStatus[] {
    const out: DetectorStatus[] = [];
    for (const { hb } of this.instances.values()) out.push({ service: hb.service, instance: hb.instance, version: hb.version, lastHeartbeat: hb.ts, shards: hb.shards });
    return out.sort((a, b) => a.service.localeCompare(b.service) || a.instance.localeCompare(b.instance));
  }

  private async watchBus(): Promise<void> {
    for await (const s of this.opts.nc.status()) {
      if (this.stopped) return;
      // Heartbeats of others may have been missed; the store writes resume by themselves.
      if (s.type === "reconnect") this.heartbeat(false);
    }
  }

  private heartbeat(stopping: boolean): void {
    const { instance, version, metricsPort } = this.opts;
    const hb = Heartbeat.fromPartial({ service: "rules", instance, version, host: hostname(), ts: nowS(), metricsPort, stopping });
    try {
      this.opts.nc.publish(subjects.heartbeat("rules"), codecs.heartbeat.encode(hb));
    } catch {
      /* NATS down: the next one will do */
    }
  }

  onHeartbeat(data: Uint8Array, subject: string): void {
    let hb: Heartbeat;
    try {
      hb = codecs.heartbeat.decode(data, subject);
    } catch {
      return;
    }
    if (hb.instance === this.opts.instance) return;
    if (hb.stopping) this.instances.delete(hb.instance);
    else this.instances.set(hb.instance, { hb, at: Date.now() });
    const cutoff = Date.now() - 30_000;
    for (const [k, v] of this.instances) if (v.at < cutoff) this.instances.delete(k);
  }

  /** Shards owned by the live members of each detector group (groups that own shards). */
  private detectorGroups(): Map<string, Set<number>> {
    const groups = new Map<string, Set<number>>();
    const cutoff = Date.now() - 10_000;
    for (const { hb, at } of this.instances.values()) {
      if (at < cutoff || hb.shards.length === 0 || hb.service === "rules" || hb.service === "capture") continue;
      let g = groups.get(hb.service);
      if (!g) groups.set(hb.service, (g = new Set()));
      for (const s of hb.shards) g.add(s);
    }
    return groups;
  }

  onEndOfStream(data: Uint8Array, subject: string): void {
    let e: EndOfStream;
    try {
      e = codecs.endOfStream.decode(data, subject);
    } catch {
      this.opts.metrics.malformed.inc({ reason: "undecodable-eos" });
      return;
    }
    if (e.stage === "rules" || !e.sourceId || this.eosDone.has(e.sourceId)) return;
    let bySource = this.eos.get(e.sourceId);
    if (!bySource) this.eos.set(e.sourceId, (bySource = new Map()));
    let shards = bySource.get(e.stage);
    if (!shards) bySource.set(e.stage, (shards = new Set()));
    for (const s of e.shards) shards.add(s);
    this.checkEndOfStream(e.sourceId);
  }

  private checkEndOfStream(sourceId: string): void {
    const bySource = this.eos.get(sourceId);
    if (!bySource) return;
    const groups = this.detectorGroups();
    // Groups known from heartbeats must have covered their shards; a group that reported but has no live heartbeat counts as done.
    for (const [group, owned] of groups) {
      const seen = bySource.get(group);
      if (!seen) return;
      for (const s of owned) if (!seen.has(s)) return;
    }
    if (bySource.size === 0) return;
    this.eosDone.add(sourceId);
    this.eos.delete(sourceId);
    if (this.eosDone.size > 10_000) this.eosDone.delete(this.eosDone.values().next().value as string);
    // Verdicts published before the detectors' end-of-stream were received before it: wait for their enforcement.
    void this.opts.idle().then(() => {
      const out = EndOfStream.fromPartial({ sourceId, stage: "rules", instance: this.opts.instance, verdicts: this.verdictsBySource.get(sourceId) ?? 0 });
      this.verdictsBySource.delete(sourceId);
      this.opts.nc.publish(subjects.endOfStream("rules"), codecs.endOfStream.encode(out));
      this.opts.logger.info({ sourceId }, "end of stream relayed");
    });
  }
}
