import { codecs, subjects, type NatsConnection, type Subscription } from "@vigil/bus";
import { serveModelExport } from "@vigil/models";
import type { Logger } from "@vigil/lifecycle";
import { FeedbackKind, type Feedback, type FrameBatch } from "@vigil/proto";
import type { SheddingConfig } from "@vigil/config";
import { prom, type Registry } from "@vigil/metrics";
import { DEFAULT_SHEDDING, keepOfLevel, LoadShedder } from "./load-shedding.js";
import { StreamLoss, type LossKind } from "./loss.js";
import { ShardOwnership, type OwnershipChange } from "./ownership.js";

/** Why the host dropped a bus message before the detector saw it. */
export type DropReason = "frame_batch" | "shard_count_mismatch" | "wrong_shard" | "feedback";

/** What the host did with a feedback message instead of handing it over. */
export type FeedbackSkip = "ignored_kind" | "duplicate";

/** What a detector (pst, som) does; the host does the bus work around it. */
export interface DetectorHooks {
  /**
   * A frame batch of an owned shard, end-of-stream batches included. `keep`: the detector keeps the
   * established segments of the flows of buckets below it (FLOW_BUCKETS: all; see shedsSegment).
   */
  onBatch(shard: number, batch: FrameBatch, keep: number): void;
  /** Every owned shard has seen end-of-stream for the source: judge what is pending and report the counts. */
  onSourceEnd(sourceId: string): { frames: number; verdicts: number };
  /** A false alarm for this detector not applied before; true when it is applied (and so remembered). */
  onFeedback(feedback: Feedback): boolean;
  /** The model's JSON export, served on vigil.models.<detector>. */
  exportModel(): unknown;
  /** After the host has (un)subscribed the shards that moved. */
  onShards?(change: OwnershipChange): void;
  onDropped?(reason: DropReason): void;
  /** Frames (capture, bus) or batches (batches) that never reached the detector; see LossKind. */
  onLoss?(kind: LossKind, count: number): void;
  onFeedbackSkipped?(why: FeedbackSkip): void;
  /** Feedback applied in an earlier run (a persistent store). */
  feedbackKnown?(verdictId: string): boolean;
  /** Frames shed under overload since start (see load-shedding.ts), for the heartbeats. */
  framesShed?(): number;
}

export interface DetectorHostOptions {
  /** "pst", "som": the group, the subjects and the score stream. */
  detector: string;
  nc: NatsConnection;
  instance: string;
  shardCount: number;
  logger: Logger;
  version?: string;
  metricsPort?: number;
  heartbeatMs?: number;
  /** Where the host's own metrics go (load shedding: vigil_<detector>_shed_*). */
  registry?: Registry;
  /** Load shedding under overload (the detector's `shedding` config section); default: DEFAULT_SHEDDING. */
  shedding?: SheddingConfig;
  /** The detector's score stream (a ScorePublisher with the detector's format hook): started and stopped with the host. */
  scores: { start(): void; stop(): void };
}

/** Redelivered feedback comes within seconds: this many recent verdict ids are remembered. */
const RECENT_FEEDBACK = 10_000;

/**
 * The bus side of a detector service: owns a share of the frame shards and
 * subscribes to exactly those; decodes and checks frame batches; reports
 * end-of-stream per source once every owned shard has passed it; decodes and
 * dedupes feedback; answers model-export requests; publishes the score stream.
 *
 * Batches cut for another shard count are dropped, counted and logged once:
 * their shards do not match the ones this group owns, so judging them would
 * silently miss part of the traffic.
 */
export class DetectorHost {
  readonly ownership: ShardOwnership;
  private readonly subs = new Map<number, Subscription>();
  private readonly ended = new Map<string, Set<number>>();
  private readonly recentFeedback = new Set<string>();
  private feedbackSub: Subscription | null = null;
  private modelSub: { unsubscribe(): void } | null = null;
  private warnedShardCount = false;
  private readonly loss: StreamLoss;
  readonly shedder: LoadShedder;
  /** Since start, for the heartbeats: frames received, frames and batches lost before us. */
  private readonly traffic = { frames: 0, lost: 0, batchesLost: 0 };
  private stopped = false;

  constructor(
    private readonly opts: DetectorHostOptions,
    private readonly hooks: DetectorHooks,
  ) {
    this.shedder = new LoadShedder(opts.shedding ?? DEFAULT_SHEDDING);
    if (opts.registry) this.registerMetrics(opts.registry);
    this.loss = new StreamLoss((kind, n) => {
      if (kind === "batches") this.traffic.batchesLost += n;
      else this.traffic.lost += n;
      hooks.onLoss?.(kind, n);
    });
    this.ownership = new ShardOwnership({
      nc: opts.nc,
      group: opts.detector,
      instance: opts.instance,
      shardCount: opts.shardCount,
      version: opts.version,
      metricsPort: opts.metricsPort,
      traffic: () => ({ ...this.traffic, shed: hooks.framesShed?.() ?? 0, shedLevel: this.shedder.maxLevel }),
      heartbeatMs: opts.heartbeatMs,
      logger: opts.logger,
    });
  }

  private registerMetrics(registry: Registry): void {
    const { detector } = this.opts;
    const framesShed = () => this.hooks.framesShed?.() ?? 0;
    let seen = 0;
    new prom.Counter({
      name: `vigil_${detector}_shed_frames_total`,
      help: "Segments of established TCP flows shed (sampled out) because the detector fell behind live traffic",
      registers: [registry],
      collect() {
        const now = framesShed();
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
    const shedder = this.shedder;
    new prom.Gauge({
      name: `vigil_${detector}_shed_level`,
      help: "Load shedding level now, the highest over live sources: 0 keeps every flow, n keeps the established segments of 1/2^n of the flows (4: 1/16)",
      registers: [registry],
      collect() {
        this.set(shedder.maxLevel);
      },
    });
  }

  get shards(): readonly number[] {
    return this.ownership.shards;
  }

  start(): void {
    const { nc, detector } = this.opts;
    this.ownership.on("change", (c) => this.onOwnership(c));
    this.ownership.start();
    this.opts.scores.start();
    this.modelSub = serveModelExport(nc, detector, () => this.hooks.exportModel());
    this.feedbackSub = nc.subscribe(subjects.feedback, {
      callback: (err, msg) => {
        if (!err) this.onFeedbackMessage(msg.data, msg.subject);
      },
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.subs.values()) s.unsubscribe();
    this.subs.clear();
    this.feedbackSub?.unsubscribe();
    this.modelSub?.unsubscribe();
    this.opts.scores.stop();
    await this.ownership.stop();
  }

  private onOwnership(c: OwnershipChange): void {
    for (const s of c.removed) {
      this.subs.get(s)?.unsubscribe();
      this.subs.delete(s);
      this.loss.forget(s);
      for (const shards of this.ended.values()) shards.delete(s);
    }
    for (const s of c.added) if (!this.subs.has(s)) this.subscribeShard(s);
    this.hooks.onShards?.(c);
  }

  private subscribeShard(shard: number): void {
    const sub = this.opts.nc.subscribe(subjects.frames(shard), {
      callback: (err, msg) => {
        if (!err) this.onFrames(shard, msg.data, msg.subject);
      },
    });
    this.subs.set(shard, sub);
  }

  private onFrames(shard: number, data: Uint8Array, subject: string): void {
    const { logger, shardCount, detector } = this.opts;
    let batch: FrameBatch;
    try {
      batch = codecs.frameBatch.decode(data, subject);
    } catch (err) {
      this.hooks.onDropped?.("frame_batch");
      logger.warn({ err: (err as Error).message }, "dropping undecodable frame batch");
      return;
    }
    if (batch.shardCount && batch.shardCount !== shardCount) {
      this.hooks.onDropped?.("shard_count_mismatch");
      if (!this.warnedShardCount)
        logger.error(
          { captureShards: batch.shardCount, [`${detector}Shards`]: shardCount, source: batch.sourceId },
          `capture and ${detector} disagree on the shard count: dropping its batches; set shardCount alike`,
        );
      this.warnedShardCount = true;
      return;
    }
    if (batch.shard !== shard || !this.subs.has(shard)) {
      this.hooks.onDropped?.("wrong_shard");
      return;
    }
    this.loss.observe(shard, batch);
    this.traffic.frames += batch.frameCount;
    const level = batch.endOfStream ? this.shedder.level(batch.sourceId) : this.shedder.observe(batch, Date.now());
    this.hooks.onBatch(shard, batch, keepOfLevel(level));
    if (batch.endOfStream) this.sourceEnded(batch.sourceId, shard);
  }

  private sourceEnded(sourceId: string, shard: number): void {
    const ended = this.ended.get(sourceId) ?? new Set<number>();
    ended.add(shard);
    this.ended.set(sourceId, ended);
    const owned = this.ownership.shards;
    if (!owned.every((s) => ended.has(s))) return;
    this.ended.delete(sourceId);
    this.shedder.forget(sourceId);
    const { frames, verdicts } = this.hooks.onSourceEnd(sourceId);
    const { nc, detector, instance, logger } = this.opts;
    if (nc.isClosed()) return;
    nc.publish(subjects.endOfStream(detector), codecs.endOfStream.encode({ sourceId, stage: detector, instance, shards: [...owned], frames, verdicts }));
    logger.info({ sourceId, frames, verdicts, shards: owned }, "end of stream");
  }

  private onFeedbackMessage(data: Uint8Array, subject: string): void {
    let fb: Feedback;
    try {
      fb = codecs.feedback.decode(data, subject);
    } catch (err) {
      this.hooks.onDropped?.("feedback");
      this.opts.logger.warn({ err: (err as Error).message }, "ignoring undecodable feedback");
      return;
    }
    if (fb.detector !== this.opts.detector) return;
    if (fb.kind !== FeedbackKind.FEEDBACK_KIND_FALSE_ALARM) {
      this.hooks.onFeedbackSkipped?.("ignored_kind");
      return;
    }
    if (this.recentFeedback.has(fb.verdictId) || this.hooks.feedbackKnown?.(fb.verdictId)) {
      this.hooks.onFeedbackSkipped?.("duplicate");
      return;
    }
    if (!this.hooks.onFeedback(fb)) return;
    this.recentFeedback.add(fb.verdictId);
    if (this.recentFeedback.size > RECENT_FEEDBACK) this.recentFeedback.delete(this.recentFeedback.values().next().value!);
  }
}
