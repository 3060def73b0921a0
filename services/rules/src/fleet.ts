import { codecs, PresenceView, startHeartbeat, subjects, type HeartbeatHandle, type NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import { EndOfStream, type DetectorStatus } from "@vigil/proto";
import type { RulesMetrics } from "./metrics.js";

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

/** Services whose heartbeats announce shards but which do not judge frames. */
const NOT_DETECTORS = new Set(["rules", "capture"]);

/**
 * The other services as seen on the bus: our heartbeat out, who is alive (the
 * bus's PresenceView, with its one liveness cut-off), the detector groups they
 * form, and the end-of-stream relay of a replayed capture (rules relays it once
 * every shard of every live detector group has reported).
 */
export class Fleet {
  private readonly presence: PresenceView;
  private heartbeat: HeartbeatHandle | null = null;
  private eos = new Map<string, Map<string, Set<number>>>();
  private eosDone = new Set<string>();
  private verdictsBySource = new Map<string, number>();
  private stopped = false;

  constructor(private readonly opts: FleetOptions) {
    this.presence = new PresenceView(opts.nc, { self: opts.instance, logger: opts.logger });
  }

  start(): void {
    const { nc, instance, version, metricsPort, logger } = this.opts;
    this.presence.start();
    this.heartbeat = startHeartbeat(nc, { service: "rules", instance, version, metricsPort, logger });
    void this.watchBus();
  }

  /** Stops watching and says goodbye on the bus. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.presence.stop();
    await this.heartbeat?.stop();
    this.heartbeat = null;
  }

  /** A verdict from a capture source was received (counted in its end of stream). */
  countVerdict(sourceId: string): void {
    if (sourceId) this.verdictsBySource.set(sourceId, (this.verdictsBySource.get(sourceId) ?? 0) + 1);
  }

  detectors(): DetectorStatus[] {
    const out: DetectorStatus[] = [];
    for (const { heartbeat: hb } of this.presence.instances())
      out.push({ service: hb.service, instance: hb.instance, version: hb.version, lastHeartbeat: hb.ts, shards: hb.shards, frames: hb.frames, framesLost: hb.framesLost, batchesLost: hb.batchesLost, framesShed: hb.framesShed, shedLevel: hb.shedLevel });
    return out.sort((a, b) => a.service.localeCompare(b.service) || a.instance.localeCompare(b.instance));
  }

  private async watchBus(): Promise<void> {
    for await (const s of this.opts.nc.status()) {
      if (this.stopped) return;
      // Heartbeats of others may have been missed while away: announce at once so they learn of us again.
      if (s.type === "reconnect") this.heartbeat?.beat();
    }
  }

  /** Shards owned by the live members of each detector group (groups that own shards). */
  private detectorGroups(): Map<string, Set<number>> {
    const groups = new Map<string, Set<number>>();
    for (const [service, members] of this.presence.groups()) {
      if (NOT_DETECTORS.has(service)) continue;
      const owned = new Set<number>();
      for (const { heartbeat } of members) for (const s of heartbeat.shards) owned.add(s);
      if (owned.size > 0) groups.set(service, owned);
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
