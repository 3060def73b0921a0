import { codecs, identityScore, ScorePublisher, subjects, type NatsConnection } from "@vigil/bus";
import { MALFORMED_NAMES } from "@vigil/frames";
import type { Logger } from "@vigil/lifecycle";
import type { Feedback, FrameBatch, Verdict } from "@vigil/proto";
import { DetectorHost, type OwnershipChange, type ShardOwnership } from "@vigil/shards";
import type { SomConfig } from "./config.js";
import { WindowPipeline, type JudgedWindow } from "./detector.js";
import { featuresFromFeedback, type FeedbackStore } from "./feedback.js";
import { ShardMerger } from "./merger.js";
import type { SomMetrics } from "./metrics.js";
import type { SomModel } from "./model.js";

export interface SomServiceOptions {
  nc: NatsConnection;
  config: SomConfig;
  model: SomModel;
  feedback: FeedbackStore;
  instance: string;
  logger: Logger;
  metrics?: SomMetrics;
  metricsPort?: number;
  version?: string;
  /** Called for every judged window (tests, tools). */
  onWindow?: (sourceId: string, w: JudgedWindow) => void;
}

interface SourceState {
  pipeline: WindowPipeline;
  merger: ShardMerger;
  shardCount: number;
  lastWall: number;
  /** The capture said it is a replay (FrameBatch.replay): its verdicts say so too. */
  replay: boolean;
}

/** A source silent this long (wall clock) is judged as ended: its partial window is scored and its state freed. */
const SOURCE_EXPIRY_MS = 10 * 60_000;

/**
 * The SOM detector instance: consumes the frame shards it owns, keeps one
 * window pipeline per capture source, publishes verdicts, learns from
 * false-alarm feedback.
 */
export class SomService {
  private readonly host: DetectorHost;
  private readonly scores: ScorePublisher;
  private readonly sources = new Map<string, SourceState>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  verdictsPublished = 0;
  /** Frames shed under overload by sources that ended (the live ones' count is in their windowers). */
  private shedEnded = 0;

  constructor(private readonly opts: SomServiceOptions) {
    const m = opts.metrics;
    this.scores = new ScorePublisher(opts.nc, "som", opts.instance, { format: identityScore });
    this.host = new DetectorHost(
      {
        detector: "som",
        nc: opts.nc,
        instance: opts.instance,
        shardCount: opts.config.shardCount,
        logger: opts.logger,
        version: opts.version,
        metricsPort: opts.metricsPort,
        scores: this.scores,
        registry: opts.metrics?.registry,
        shedding: opts.config.shedding,
      },
      {
        onBatch: (shard, batch, keep) => this.onBatch(shard, batch, keep),
        onSourceEnd: (sourceId) => this.finishSource(sourceId),
        onFeedback: (fb) => this.onFeedback(fb),
        exportModel: () => this.opts.model.exportMap(),
        onShards: (c) => this.onOwnership(c),
        onDropped: (reason) => {
          if (reason === "feedback") m?.feedback.inc({ result: "malformed" });
          else if (reason === "frame_batch") m?.malformedBatches.inc();
          else m?.droppedBatches.inc({ reason });
        },
        onLoss: (kind, n) => m?.lost.inc({ kind }, n),
        onFeedbackSkipped: (result) => {
          if (result === "duplicate") m?.feedback.inc({ result });
        },
        feedbackKnown: (id) => this.opts.feedback.has(id),
        framesShed: () => {
          let n = this.shedEnded;
          for (const st of this.sources.values()) n += st.pipeline.windower.shed;
          return n;
        },
      },
    );
    opts.metrics?.threshold.set(opts.model.threshold);
  }

  get ownership(): ShardOwnership {
    return this.host.ownership;
  }

  get model(): SomModel {
    return this.opts.model;
  }

  /** Judges from now on with this model (a reload): every source's open window stays and is judged by it. */
  useModel(model: SomModel): void {
    this.opts.model = model;
    for (const st of this.sources.values()) st.pipeline.model = model;
    this.opts.metrics?.threshold.set(model.threshold);
  }

  start(): void {
    this.host.start();
    // The tick re-checks silent shards: it bounds how long past idleMs a held-back record waits.
    const tick = Math.max(10, Math.floor(Math.min(this.opts.config.idleMs, this.opts.config.replayIdleMs) / 3));
    this.timer = setInterval(() => this.tick(), tick);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.host.stop();
  }

  private onOwnership({ owned }: OwnershipChange): void {
    for (const st of this.sources.values()) st.merger.setShards(owned);
    this.opts.metrics?.ownedShards.set(owned.length);
    this.opts.logger.info({ owned }, "consuming frame shards");
  }

  private scale(shardCount: number): number {
    if (!this.opts.config.normalizeByShards) return 1;
    const owned = this.ownership.shards.length;
    return owned > 0 ? shardCount / owned : 1;
  }

  private source(sourceId: string, shardCount: number): SourceState {
    let st = this.sources.get(sourceId);
    if (st) return st;
    const { config, metrics } = this.opts;
    const state: SourceState = {
      shardCount: shardCount || config.shardCount,
      lastWall: Date.now(),
      replay: false,
      merger: undefined as unknown as ShardMerger,
      pipeline: new WindowPipeline({
        model: this.opts.model,
        sourceId,
        instance: this.opts.instance,
        scale: () => this.scale(state.shardCount),
        settings: {
          minWindowPackets: config.minWindowPackets,
          mergePeriodS: config.mergePeriodSeconds,
          attribution: {
            dominantShare: config.dominantShare,
            aggregateShare: config.aggregateShare,
            maxSources: config.maxSources,
            minSourcePackets: config.minSourcePackets,
          },
        },
        hooks: {
          onVerdict: (v) => this.publishVerdict(v),
          onMalformed: (reason) => metrics?.malformed.inc({ reason: MALFORMED_NAMES[reason] ?? String(reason) }),
          onMerged: (kind) => metrics?.merged.inc({ kind }),
          onWindow: (w) => {
            metrics?.windows.inc({ result: w.anomalous ? "anomalous" : w.forgiven ? "forgiven" : "normal" });
            metrics?.quantizationError.observe(w.quantizationError);
            this.scores.add({
              ts: w.end,
              score: w.excess,
              threshold: this.opts.model.threshold,
              key: `window ${sourceId}`,
              model: this.opts.model.id,
              bmu: w.bmu,
            });
            this.opts.onWindow?.(sourceId, w);
          },
        },
      }),
    };
    state.merger = new ShardMerger((c) => state.pipeline.ingest(c), { idleMs: config.idleMs, replayIdleMs: config.replayIdleMs });
    state.merger.setShards(this.ownership.shards);
    this.sources.set(sourceId, state);
    st = state;
    return st;
  }

  private onBatch(shard: number, batch: FrameBatch, keep: number): void {
    const m = this.opts.metrics;
    const st = this.source(batch.sourceId, batch.shardCount);
    // Applies to the records the merge releases from now on, which may include earlier batches': close enough for sampling.
    st.pipeline.windower.keep = keep;
    st.lastWall = Date.now();
    if (batch.replay) st.replay = true;
    if (batch.endOfStream) {
      st.merger.end(shard);
      this.drain(st);
      return;
    }
    m?.frames.inc(batch.frameCount);
    if (!st.merger.push(shard, batch.records)) {
      m?.malformedBatches.inc();
      this.opts.logger.warn({ source: batch.sourceId, shard, seq: batch.seq }, "frame batch truncated: a record overruns it");
    }
    this.drain(st);
  }

  private drain(st: SourceState, force = false): void {
    const before = st.pipeline.windower.packets;
    st.merger.drain(force);
    const m = this.opts.metrics;
    if (!m) return;
    m.packets.inc(st.pipeline.windower.packets - before);
    m.buffered.set(st.merger.buffered);
    m.late.set(st.pipeline.windower.late);
    if (st.pipeline.windower.lastTs > 0) m.lag.set(Date.now() / 1000 - st.pipeline.windower.lastTs / 1000);
  }

  /** Every owned shard has ended: judge the rest of the source and free its state. */
  private finishSource(sourceId: string): { frames: number; verdicts: number } {
    const st = this.sources.get(sourceId);
    if (!st) return { frames: 0, verdicts: 0 };
    this.drain(st, true);
    st.pipeline.finish();
    this.shedEnded += st.pipeline.windower.shed;
    this.sources.delete(sourceId);
    this.opts.logger.info({ source: sourceId, windows: st.pipeline.windows }, "end of stream judged");
    return { frames: st.pipeline.windower.frames, verdicts: st.pipeline.verdicts };
  }

  private tick(): void {
    const now = Date.now();
    for (const [id, st] of this.sources) {
      if (now - st.lastWall > SOURCE_EXPIRY_MS) {
        this.drain(st, true);
        st.pipeline.finish();
        this.shedEnded += st.pipeline.windower.shed;
        this.sources.delete(id);
        continue;
      }
      this.drain(st);
    }
  }

  private publishVerdict(v: Verdict): void {
    v.replay = this.sources.get(v.sourceId)?.replay ?? false;
    this.verdictsPublished++;
    this.opts.metrics?.verdicts.inc({ kind: v.aggregate ? "aggregate" : "attributed" });
    this.opts.logger.info({ id: v.id, address: v.address, aggregate: v.aggregate, local: v.localAddress, score: v.score, label: v.label }, v.summary);
    if (!this.opts.nc.isClosed()) this.opts.nc.publish(subjects.verdicts("som"), codecs.verdict.encode(v));
  }

  /** A false alarm: pull the map away from the window's features and persist it; true when learned. */
  private onFeedback(fb: Feedback): boolean {
    const m = this.opts.metrics;
    const { feedback, model, config, logger } = this.opts;
    const features = featuresFromFeedback(fb);
    if (typeof features === "string") {
      m?.feedback.inc({ result: "unusable" });
      logger.warn({ verdict: fb.verdictId }, `cannot learn from false alarm: ${features}`);
      return false;
    }
    const at = fb.ts || Date.now() / 1000;
    const { before, after } = model.learnFalseAlarm(fb.verdictId, features, at, config.feedbackRate, config.feedbackRadius);
    try {
      feedback.add({ verdictId: fb.verdictId, features, at }, model);
      m?.feedback.inc({ result: "learned" });
    } catch (err) {
      m?.feedback.inc({ result: "not-persisted" });
      logger.error({ err: (err as Error).message, verdict: fb.verdictId }, "false alarm learned but not persisted");
    }
    logger.info({ verdict: fb.verdictId, before, after, threshold: model.threshold }, "learned false alarm");
    return true;
  }
}
