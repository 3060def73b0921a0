import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { codecs, subjects, type NatsConnection, type Subscription } from "@vigil/bus";
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
  heartbeatMs?: number;
  /** A member silent for this long is considered gone. */
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
  private members = new Map<string, number>();
  private owned: number[] = [];
  private sub: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastChange = Date.now();
  private readonly heartbeatMs: number;
  private readonly expiryMs: number;

  constructor(private readonly opts: ShardOwnershipOptions) {
    super();
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.expiryMs = opts.expiryMs ?? 3500;
  }

  get shards(): readonly number[] {
    return this.owned;
  }

  get memberIds(): string[] {
    return [...this.members.keys()].sort();
  }

  owns(shard: number): boolean {
    return this.owned.includes(shard);
  }

  start(): void {
    const { nc, group, instance } = this.opts;
    this.members.set(instance, Date.now());
    this.sub = nc.subscribe(subjects.heartbeat(group), {
      callback: (err, msg) => {
        if (err) return;
        let hb;
        try {
          hb = codecs.heartbeat.decode(msg.data, msg.subject);
        } catch (e) {
          this.opts.logger?.warn({ err: e }, "ignoring malformed heartbeat");
          return;
        }
        if (hb.instance === instance) return;
        if (hb.stopping) {
          if (this.members.delete(hb.instance)) this.recompute();
          return;
        }
        const known = this.members.has(hb.instance);
        this.members.set(hb.instance, Date.now());
        if (!known) {
          this.announce();
          this.recompute();
        }
      },
    });
    this.recompute();
    this.announce();
    this.timer = setInterval(() => {
      this.announce();
      const now = Date.now();
      let changed = false;
      for (const [m, seen] of this.members)
        if (m !== instance && now - seen > this.expiryMs) {
          this.members.delete(m);
          changed = true;
        }
      if (changed) this.recompute();
    }, this.heartbeatMs);
    this.timer.unref();
  }

  /** Resolves once membership has been stable for `quietMs` (default two heartbeats). */
  async settled(quietMs = 2 * (this.opts.heartbeatMs ?? 1000)): Promise<void> {
    for (;;) {
      const wait = this.lastChange + quietMs - Date.now();
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.opts.nc.isClosed()) {
      this.announce(true);
      await this.opts.nc.flush().catch(() => undefined);
    }
    this.sub?.unsubscribe();
    this.sub = null;
  }

  private announce(stopping = false): void {
    const { nc, group, instance, version, metricsPort } = this.opts;
    if (nc.isClosed()) return;
    nc.publish(
      subjects.heartbeat(group),
      codecs.heartbeat.encode({
        service: group,
        instance,
        version: version ?? "",
        host: hostname(),
        shards: stopping ? [] : this.owned,
        ts: Date.now() / 1000,
        metricsPort: metricsPort ?? 0,
        stopping,
      }),
    );
  }

  private recompute(): void {
    const assignment = assignShards(this.members.keys(), this.opts.shardCount);
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
