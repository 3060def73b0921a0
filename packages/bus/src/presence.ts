import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Heartbeat } from "@vigil/proto";
import { codecs } from "./codec.js";
import type { BusLogger } from "./connection.js";
import { subjects } from "./subjects.js";

/** How often every instance announces itself on vigil.heartbeat.<service>. */
export const HEARTBEAT_INTERVAL_MS = 1000;
/** An instance not heard from for this long is gone: three missed heartbeats and a margin. */
export const LIVENESS_CUTOFF_MS = 3500;

export interface HeartbeatOptions {
  service: string;
  instance: string;
  version?: string;
  /** Where the instance's /metrics is served (0: nowhere); read at every beat. */
  metricsPort?: number | (() => number);
  /** The shards the instance owns, read at every beat. */
  shards?: () => readonly number[];
  intervalMs?: number;
  /** Frames handled, lost and shed since start, and the shedding level now, read at every beat (see Heartbeat.frames_lost, frames_shed, shed_level). */
  traffic?: () => { frames: number; lost: number; batchesLost?: number; shed?: number; shedLevel?: number };
  /** Beats are skipped while this says no (e.g. while disconnected, rather than queueing them). */
  canSend?: () => boolean;
  logger?: BusLogger;
}

export interface HeartbeatHandle {
  /** Announces now, outside the interval (e.g. to answer a newcomer). */
  beat(): void;
  /** Stops the interval and says goodbye (stopping: true, no shards), so others need not wait for the cut-off. */
  stop(): Promise<void>;
}

/** Announces an instance on vigil.heartbeat.<service> now and every interval, until stop(). */
export function startHeartbeat(nc: NatsConnection, opts: HeartbeatOptions): HeartbeatHandle {
  const host = hostname();
  const send = (stopping: boolean): boolean => {
    if (nc.isClosed() || (opts.canSend && !opts.canSend())) return false;
    const port = typeof opts.metricsPort === "function" ? opts.metricsPort() : opts.metricsPort;
    const traffic = opts.traffic?.() ?? { frames: 0, lost: 0, batchesLost: 0 };
    try {
      nc.publish(
        subjects.heartbeat(opts.service),
        codecs.heartbeat.encode({
          service: opts.service,
          instance: opts.instance,
          version: opts.version ?? "",
          host,
          shards: stopping ? [] : [...(opts.shards?.() ?? [])],
          ts: Date.now() / 1000,
          metricsPort: port ?? 0,
          stopping,
          frames: traffic.frames,
          framesLost: traffic.lost,
          batchesLost: traffic.batchesLost ?? 0,
          framesShed: traffic.shed ?? 0,
          shedLevel: traffic.shedLevel ?? 0,
        }),
      );
      return true;
    } catch (err) {
      opts.logger?.warn({ err: (err as Error).message }, "heartbeat publish failed");
      return false;
    }
  };
  let timer: NodeJS.Timeout | null = setInterval(() => send(false), opts.intervalMs ?? HEARTBEAT_INTERVAL_MS);
  timer.unref();
  send(false);
  return {
    beat: () => void send(false),
    async stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = null;
      if (send(true)) await nc.flush().catch(() => undefined);
    },
  };
}

export interface Presence {
  heartbeat: Heartbeat;
  /** Wall-clock ms of the last heartbeat. */
  lastSeen: number;
}

export interface PresenceOptions {
  /** Watch one service's instances; default every service. */
  service?: string;
  /** An instance to leave out (the watcher itself). */
  self?: string;
  cutoffMs?: number;
  /** How often silent instances are looked for; default the heartbeat interval. */
  checkMs?: number;
  logger?: BusLogger;
}

/**
 * Who is alive, from the heartbeats: instances that said goodbye leave at
 * once, silent ones after the liveness cut-off. Emits "join" for an instance
 * heard from the first time, "leave" when one goes, "beat" for every heartbeat.
 */
export class PresenceView extends EventEmitter<{ join: [Heartbeat]; leave: [Heartbeat]; beat: [Heartbeat] }> {
  private readonly live = new Map<string, Presence>();
  private sub: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly cutoffMs: number;

  constructor(
    private readonly nc: NatsConnection | null,
    private readonly opts: PresenceOptions = {},
  ) {
    super();
    this.cutoffMs = opts.cutoffMs ?? LIVENESS_CUTOFF_MS;
  }

  start(): void {
    if (this.nc && !this.sub) {
      this.sub = this.nc.subscribe(this.opts.service ? subjects.heartbeat(this.opts.service) : subjects.heartbeatAll, {
        callback: (err, msg) => {
          if (err) return;
          try {
            this.observe(codecs.heartbeat.decode(msg.data, msg.subject));
          } catch (e) {
            this.opts.logger?.warn({ err: (e as Error).message }, "ignoring malformed heartbeat");
          }
        },
      });
    }
    this.timer = setInterval(() => this.expire(), this.opts.checkMs ?? HEARTBEAT_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sub?.unsubscribe();
    this.sub = null;
  }

  /** Takes in one heartbeat (from the subscription, or fed by a caller that has its own). */
  observe(hb: Heartbeat, now = Date.now()): void {
    if (hb.instance === this.opts.self) return;
    if (this.opts.service && hb.service !== this.opts.service) return;
    const key = `${hb.service}/${hb.instance}`;
    const known = this.live.get(key);
    if (hb.stopping) {
      if (known) {
        this.live.delete(key);
        this.emit("leave", hb);
      }
      return;
    }
    this.live.set(key, { heartbeat: hb, lastSeen: now });
    if (!known) this.emit("join", hb);
    this.emit("beat", hb);
  }

  /** Forgets instances silent past the cut-off; returns them. */
  expire(now = Date.now()): Heartbeat[] {
    const gone: Heartbeat[] = [];
    for (const [key, p] of this.live)
      if (now - p.lastSeen > this.cutoffMs) {
        this.live.delete(key);
        gone.push(p.heartbeat);
      }
    for (const hb of gone) this.emit("leave", hb);
    return gone;
  }

  /** Live instances of one service (or all). */
  instances(service?: string): Presence[] {
    return [...this.live.values()].filter((p) => !service || p.heartbeat.service === service);
  }

  /** Live instances by service. */
  groups(): Map<string, Presence[]> {
    const out = new Map<string, Presence[]>();
    for (const p of this.live.values()) {
      const list = out.get(p.heartbeat.service) ?? [];
      list.push(p);
      out.set(p.heartbeat.service, list);
    }
    return out;
  }

  /** Whether the live instances of a service together announce every one of shardCount shards. */
  ownsAll(service: string, shardCount: number): boolean {
    const owned = new Set<number>();
    for (const p of this.instances(service)) for (const s of p.heartbeat.shards) owned.add(s);
    return owned.size >= shardCount;
  }
}
