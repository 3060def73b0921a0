import { EventEmitter } from "node:events";
import { HEARTBEAT_INTERVAL_MS, LIVENESS_CUTOFF_MS, PresenceView, startHeartbeat, type HeartbeatHandle, type HeartbeatOptions, type NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/**
 * Rendezvous (highest random weight) assignment: each shard goes to the
 * member with the highest hash of (member, shard). Every member computes the
 * same answer from the same membership, and a member joining or leaving
 * moves only the shards it gains or loses.
 */
export function assignShards(members: Iterable<string>, shardCount: number): Map<string, number[]> {
  const list = [...new Set(members)].sort();
  const out = new Map<string, number[]>(list.map((m) => [m, []]));
  for (let shard = 0; shard < shardCount; shard++) {
    let best = "";
    let bestScore = -1;
    for (const m of list) {
      const score = hashString(`${m}/${shard}`);
      if (score > bestScore || (score === bestScore && m < best)) {
        best = m;
        bestScore = score;
      }
    }
    if (best) out.get(best)!.push(shard);
  }
  return out;
}

export interface ShardOwnershipOptions {
  nc: NatsConnection;
  /** The service whose instances share the shards, e.g. "pst". */
  group: string;
  instance: string;
  shardCount: number;
  version?: string;
  metricsPort?: number;
  /** What the instance handled and lost, announced in its heartbeats. */
  traffic?: HeartbeatOptions["traffic"];
  /** Default HEARTBEAT_INTERVAL_MS. */
  heartbeatMs?: number;
  /** A member silent for this long is considered gone; default LIVENESS_CUTOFF_MS. */
  expiryMs?: number;
  logger?: Logger;
}

export interface OwnershipChange {
  owned: number[];
  added: number[];
  removed: number[];
  members: string[];
}

/**
 * Splits shards between the live instances of a group. Instances announce
 * themselves on vigil.heartbeat.<group> (the same heartbeats the rules service
 * shows in its status), answer a newcomer at once so membership converges in
 * one round trip, and say goodbye on stop so their shards move immediately.
 * Emits "change" with the shards gained and lost.
 */
export class ShardOwnership extends EventEmitter<{ change: [OwnershipChange] }> {
  private owned: number[] = [];
  private readonly peers: PresenceView;
  private heartbeat: HeartbeatHandle | null = null;
  private lastChange = Date.now();
  private readonly heartbeatMs: number;

  constructor(private readonly opts: ShardOwnershipOptions) {
    super();
    this.heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
    this.peers = new PresenceView(opts.nc, {
      service: opts.group,
      self: opts.instance,
      cutoffMs: opts.expiryMs ?? LIVENESS_CUTOFF_MS,
      checkMs: this.heartbeatMs,
      logger: opts.logger,
    });
  }

  get shards(): readonly number[] {
    return this.owned;
  }

  get memberIds(): string[] {
    return [this.opts.instance, ...this.peers.instances().map((p) => p.heartbeat.instance)].sort();
  }

  owns(shard: number): boolean {
    return this.owned.includes(shard);
  }

  start(): void {
    const { nc, group, instance, version, metricsPort, traffic } = this.opts;
    this.peers.on("join", () => {
      this.heartbeat?.beat();
      this.recompute();
    });
    this.peers.on("leave", () => this.recompute());
    this.peers.start();
    this.recompute();
    this.heartbeat = startHeartbeat(nc, { service: group, instance, version, metricsPort, traffic, shards: () => this.owned, intervalMs: this.heartbeatMs, logger: this.opts.logger });
  }

  /** Resolves once membership has been stable for `quietMs` (default two heartbeats). */
  async settled(quietMs = 2 * this.heartbeatMs): Promise<void> {
    for (;;) {
      const wait = this.lastChange + quietMs - Date.now();
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  async stop(): Promise<void> {
    this.peers.stop();
    await this.heartbeat?.stop();
    this.heartbeat = null;
  }

  private recompute(): void {
    const assignment = assignShards(this.memberIds, this.opts.shardCount);
    const next = assignment.get(this.opts.instance) ?? [];
    const prev = new Set(this.owned);
    const nextSet = new Set(next);
    const added = next.filter((s) => !prev.has(s));
    const removed = this.owned.filter((s) => !nextSet.has(s));
    this.owned = next;
    if (added.length || removed.length) {
      this.lastChange = Date.now();
      this.opts.logger?.info({ owned: next, members: this.memberIds }, "shard ownership changed");
      this.emit("change", { owned: next, added, removed, members: this.memberIds });
    }
  }
}
