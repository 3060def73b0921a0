import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { codecs, subjects, type NatsConnection, type Subscription } from "@vigil/bus";
import { serveModelExport } from "@vigil/models";
import type { Logger } from "@vigil/lifecycle";
import type { Registry } from "@vigil/metrics";
import { FeedbackKind, type Verdict } from "@vigil/proto";
import { ShardOwnership } from "@vigil/shards";
import { detectorOptionsOf, stateDirOf, type PstConfig } from "./config.js";
import { Detector, type JudgedSequence } from "./detector.js";
import { sequencesOfVerdict } from "./feedback.js";
import { registerMetrics } from "./metrics.js";
import { exportModelsJson, MODEL_SUFFIX, ModelSet, readModelDir, ServiceClassMap, writeModelFile, type PstModel } from "./model.js";
import type { TrainingSequence } from "./pst.js";
import { createScorePublisher, sampleScore, type PstScorePublisher } from "./scores.js";

export interface PstServiceOptions {
  nc: NatsConnection;
  config: PstConfig;
  instance: string;
  logger: Logger;
  registry?: Registry;
  metricsPort?: number;
  version?: string;
  heartbeatMs?: number;
}

interface SourceProgress {
  eosShards: Set<number>;
  frames: number;
  verdicts: number;
}

/** Where models come from: the state directory once feedback or learning has touched them, else the shipped ones. */
export function loadModels(cfg: PstConfig, log?: Logger): { models: Map<string, PstModel>; from: string } {
  const stateModels = join(stateDirOf(cfg), "models");
  const useState = existsSync(stateModels) && readdirSync(stateModels).some((n) => n.endsWith(MODEL_SUFFIX));
  const dir = useState ? stateModels : cfg.modelsDir;
  const models = readModelDir(dir);
  log?.info({ dir, models: [...models.values()].map((m) => `${m.id} threshold ${m.threshold.value.toFixed(3)}`) }, "models loaded");
  return { models, from: dir };
}

/**
 * The PST detector on the bus: owns a share of the frame shards, judges
 * connections, publishes verdicts and end-of-stream reports, and learns from
 * false-alarm feedback without restarting.
 */
export class PstService {
  readonly detector: Detector;
  readonly ownership: ShardOwnership;
  readonly modelSet: ModelSet;
  private readonly subs = new Map<number, Subscription>();
  private feedbackSub: Subscription | null = null;
  private modelSub: { unsubscribe(): void } | null = null;
  private readonly scores: PstScorePublisher;
  private readonly sources = new Map<string, SourceProgress>();
  private readonly applied = new Set<string>();
  private readonly lag = { seconds: 0 };
  private learnBuffer = new Map<string, TrainingSequence[]>();
  private learnTimer: NodeJS.Timeout | null = null;
  private readonly stateModels: string;
  private readonly metrics: ReturnType<typeof registerMetrics> | null;
  private readonly scoreChildren: Array<{ observe(v: number): void }>;
  feedbackApplied = 0;
  private warnedShardCount = false;

  constructor(private readonly opts: PstServiceOptions) {
    const cfg = opts.config;
    const { models } = loadModels(cfg, opts.logger);
    this.modelSet = new ModelSet(new ServiceClassMap(cfg.serviceClasses), models);
    this.stateModels = join(stateDirOf(cfg), "models");
    this.detector = new Detector(
      this.modelSet,
      {
        ...detectorOptionsOf(cfg),
        detector: "pst",
        instance: opts.instance,
      },
      {
        onVerdict: (v) => this.publishVerdict(v),
        onJudged: (j) => this.judged(j),
        onScore: (t, slot, score, model) => sampleScore(this.scores, t, slot, score, model, this.modelSet.classMap.classes[t.cls[slot]].name),
      },
    );
    this.scores = createScorePublisher(opts.nc, opts.instance);
    this.metrics = opts.registry ? registerMetrics(opts.registry, () => this.detector, this.lag, () => this.ownership?.shards.length ?? 0) : null;
    this.scoreChildren = this.modelSet.classMap.classes.map((c) => {
      const model = this.modelSet.byClass[this.modelSet.classMap.indexOf(c.name)].name;
      return this.metrics ? this.metrics.scores.labels(model) : { observe: () => undefined };
    });
    this.ownership = new ShardOwnership({
      nc: opts.nc,
      group: "pst",
      instance: opts.instance,
      shardCount: cfg.shardCount,
      version: opts.version,
      metricsPort: opts.metricsPort,
      heartbeatMs: opts.heartbeatMs,
      logger: opts.logger,
    });
  }

  start(): void {
    const { nc, logger } = this.opts;
    this.ownership.on("change", (c) => {
      for (const s of c.removed) {
        this.subs.get(s)?.unsubscribe();
        this.subs.delete(s);
        this.detector.dropShard(s);
        for (const p of this.sources.values()) p.eosShards.delete(s);
      }
      for (const s of c.added) this.subscribeShard(s);
    });
    this.ownership.start();
    this.scores.start();
    this.modelSub = serveModelExport(nc, "pst", () => exportModelsJson(this.modelSet.models.values()));
    this.feedbackSub = nc.subscribe(subjects.feedback, {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.onFeedback(codecs.feedback.decode(msg.data, msg.subject));
        } catch (e) {
          this.metrics?.dropped.inc({ reason: "feedback" });
          logger.warn({ err: e }, "ignoring feedback");
        }
      },
    });
    if (this.opts.config.learning) {
      this.learnTimer = setInterval(() => this.applyLearned(), this.opts.config.learnRebuildSeconds * 1000);
      this.learnTimer.unref();
      logger.info("learning mode: judged connections are learnt as normal, no verdicts are published");
    }
  }

  get ownedShards(): readonly number[] {
    return this.ownership.shards;
  }

  private subscribeShard(shard: number): void {
    const { nc, logger } = this.opts;
    const sub = nc.subscribe(subjects.frames(shard), {
      callback: (err, msg) => {
        if (err) return;
        let batch;
        try {
          batch = codecs.frameBatch.decode(msg.data, msg.subject);
        } catch (e) {
          this.metrics?.dropped.inc({ reason: "frame_batch" });
          logger.warn({ err: e }, "dropping undecodable frame batch");
          return;
        }
        if (batch.shardCount && batch.shardCount !== this.opts.config.shardCount) {
          this.metrics?.dropped.inc({ reason: "shard_count_mismatch" });
          if (!this.warnedShardCount) logger.error({ capture: batch.shardCount, pst: this.opts.config.shardCount }, "capture and pst disagree on the shard count: dropping its batches");
          this.warnedShardCount = true;
          return;
        }
        if (batch.shard !== shard || !this.subs.has(shard)) {
          this.metrics?.dropped.inc({ reason: "wrong_shard" });
          return;
        }
        this.onBatch(shard, batch.sourceId, batch.records, batch.endOfStream);
      },
    });
    this.subs.set(shard, sub);
  }

  private progress(sourceId: string): SourceProgress {
    let p = this.sources.get(sourceId);
    if (!p) {
      p = { eosShards: new Set(), frames: 0, verdicts: 0 };
      this.sources.set(sourceId, p);
    }
    return p;
  }

  /** Public for tests and tools that feed batches without the bus. */
  onBatch(shard: number, sourceId: string, records: Uint8Array, endOfStream: boolean): void {
    const p = this.progress(sourceId);
    if (!endOfStream) {
      p.frames += this.detector.processRecords(shard, sourceId, records);
      const clock = this.detector.table.clock[shard];
      if (clock > 0) this.lag.seconds = Date.now() / 1000 - clock;
      this.metrics?.sync();
      return;
    }
    if (records.byteLength) p.frames += this.detector.processRecords(shard, sourceId, records);
    this.detector.endOfStream(shard);
    this.metrics?.sync();
    p.eosShards.add(shard);
    const owned = this.ownership.shards;
    if (owned.every((s) => p.eosShards.has(s))) {
      this.opts.nc.publish(
        subjects.endOfStream("pst"),
        codecs.endOfStream.encode({
          sourceId,
          stage: "pst",
          instance: this.opts.instance,
          shards: [...owned],
          frames: p.frames,
          verdicts: p.verdicts,
        }),
      );
      this.opts.logger.info({ sourceId, frames: p.frames, verdicts: p.verdicts, shards: owned }, "end of stream");
      this.sources.delete(sourceId);
    }
  }

  private publishVerdict(v: Verdict): void {
    if (this.opts.config.learning) return;
    this.progress(v.sourceId).verdicts++;
    this.metrics?.verdicts.inc({ model: v.model, label: v.label });
    this.opts.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(v));
    this.opts.logger.info({ id: v.id, address: v.address || undefined, local: v.localAddress, label: v.label, connections: v.connections, score: v.score }, "verdict");
  }

  private judged(j: JudgedSequence): void {
    const cls = this.modelSet.classMap.indexOf(j.serviceClass);
    this.scoreChildren[cls]?.observe(j.score);
    if (!this.opts.config.learning) return;
    const model = this.modelSet.byClass[cls].name;
    const list = this.learnBuffer.get(model) ?? [];
    list.push({ symbols: j.head, fromStart: true });
    if (j.tail) list.push({ symbols: j.tail, fromStart: false });
    this.learnBuffer.set(model, list);
  }

  /** Learning mode: fold the collected sequences into the models and persist them. */
  applyLearned(): void {
    const buf = this.learnBuffer;
    this.learnBuffer = new Map();
    for (const [name, seqs] of buf) {
      const model = this.modelSet.models.get(name);
      if (!model || seqs.length === 0) continue;
      model.learn(seqs, 1, "learned");
      this.persist(model);
      this.opts.logger.info({ model: model.id, sequences: seqs.length }, "learnt live sequences");
    }
  }

  /** A false alarm: learn the verdict's sequences as normal, rebuild the tree in place and persist it. */
  onFeedback(f: { verdictId: string; detector: string; kind: FeedbackKind; verdict?: Verdict }): boolean {
    const log = this.opts.logger;
    if (f.detector !== "pst") return false;
    if (f.kind !== FeedbackKind.FEEDBACK_KIND_FALSE_ALARM) {
      this.metrics?.feedback.inc({ result: "ignored_kind" });
      return false;
    }
    if (this.applied.has(f.verdictId)) {
      this.metrics?.feedback.inc({ result: "duplicate" });
      return false;
    }
    if (!f.verdict?.pst?.connections.length) {
      this.metrics?.feedback.inc({ result: "no_evidence" });
      log.warn({ verdictId: f.verdictId }, "false-alarm feedback without PST evidence: nothing to learn");
      return false;
    }
    let learnt = 0;
    for (const [name, seqs] of sequencesOfVerdict(f.verdict)) {
      const model = this.modelSet.models.get(name);
      if (!model) {
        log.warn({ verdictId: f.verdictId, model: name }, "feedback names a model this instance does not have");
        continue;
      }
      model.learn(seqs, this.opts.config.feedbackWeight, "feedback");
      this.persist(model);
      learnt += seqs.length;
      log.info({ verdictId: f.verdictId, model: model.id, sequences: seqs.length }, "learnt false alarm");
    }
    this.applied.add(f.verdictId);
    // Remember recent verdict ids only: redelivery happens within seconds, not after ten thousand verdicts.
    if (this.applied.size > 10_000) this.applied.delete(this.applied.values().next().value!);
    this.feedbackApplied++;
    this.metrics?.feedback.inc({ result: learnt ? "learnt" : "unknown_model" });
    return learnt > 0;
  }

  private persist(model: PstModel): void {
    // Every model goes to the state directory together, so the next start reads a consistent set from there.
    for (const m of this.modelSet.models.values()) if (m === model || !existsSync(join(this.stateModels, `${m.name}${MODEL_SUFFIX}`))) writeModelFile(this.stateModels, m);
  }

  async stop(): Promise<void> {
    if (this.learnTimer) clearInterval(this.learnTimer);
    if (this.opts.config.learning) this.applyLearned();
    for (const s of this.subs.values()) s.unsubscribe();
    this.subs.clear();
    this.feedbackSub?.unsubscribe();
    this.modelSub?.unsubscribe();
    this.scores.stop();
    await this.ownership.stop();
  }
}
