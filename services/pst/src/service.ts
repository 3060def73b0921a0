import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { codecs, subjects, type NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import type { Registry } from "@vigil/metrics";
import type { Feedback, FrameBatch, Verdict } from "@vigil/proto";
import { DetectorHost, type ShardOwnership } from "@vigil/shards";
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
  frames: number;
  verdicts: number;
  /** The capture said it is a replay (FrameBatch.replay): its verdicts say so too. */
  replay: boolean;
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
  private readonly host: DetectorHost;
  private readonly scores: PstScorePublisher;
  private readonly sources = new Map<string, SourceProgress>();
  private readonly lag = { seconds: 0 };
  private learnBuffer = new Map<string, TrainingSequence[]>();
  private learnTimer: NodeJS.Timeout | null = null;
  private readonly stateModels: string;
  private readonly metrics: ReturnType<typeof registerMetrics> | null;
  /** Per service class: its model's series in the score histogram. */
  private scoreSeries: Int32Array;
  feedbackApplied = 0;

  constructor(private readonly opts: PstServiceOptions) {
    const cfg = opts.config;
    const { models } = loadModels(cfg, opts.logger);
    this.stateModels = join(stateDirOf(cfg), "models");
    this.detector = new Detector(
      new ModelSet(new ServiceClassMap(cfg.serviceClasses), models),
      {
        ...detectorOptionsOf(cfg),
        detector: "pst",
        instance: opts.instance,
      },
      {
        onVerdict: (v) => this.publishVerdict(v),
        // The judged sequence is copied out (arrays per connection) only when learning needs it.
        onJudged: cfg.learning ? (j) => this.learnJudged(j) : undefined,
        onScore: (t, slot, score, model) => {
          const cls = t.classOf(slot);
          if (this.metrics) this.metrics.scores.observe(this.scoreSeries[cls], score);
          sampleScore(this.scores, t, slot, score, model, this.modelSet.classMap.classes[cls].name);
        },
      },
    );
    this.scores = createScorePublisher(opts.nc, opts.instance);
    this.host = new DetectorHost(
      {
        detector: "pst",
        nc: opts.nc,
        instance: opts.instance,
        shardCount: cfg.shardCount,
        logger: opts.logger,
        version: opts.version,
        metricsPort: opts.metricsPort,
        heartbeatMs: opts.heartbeatMs,
        registry: opts.registry,
        shedding: cfg.shedding,
        scores: this.scores,
      },
      {
        onBatch: (shard, batch, keep) => this.onBatch(shard, batch, keep),
        onSourceEnd: (sourceId) => this.onSourceEnd(sourceId),
        onFeedback: (f) => this.onFeedback(f),
        exportModel: () => exportModelsJson(this.modelSet.models.values()),
        onShards: (c) => {
          for (const s of c.removed) this.detector.dropShard(s);
        },
        onDropped: (reason) => this.metrics?.dropped.inc({ reason }),
        onLoss: (kind, n) => this.metrics?.lost.inc({ kind }, n),
        onFeedbackSkipped: (result) => this.metrics?.feedback.inc({ result }),
        framesShed: () => this.detector.table.segmentsShed,
      },
    );
    this.metrics = opts.registry ? registerMetrics(opts.registry, () => this.detector, this.lag, () => this.host.shards.length) : null;
    this.scoreSeries = this.scoreLabels();
  }

  /** The models in use: swapped as a whole by useModels. */
  get modelSet(): ModelSet {
    return this.detector.models;
  }

  /** Scores from now on come from these models (a reload); the connections and windows stay. */
  useModels(models: ModelSet): void {
    this.detector.setModels(models);
    this.scoreSeries = this.scoreLabels();
  }

  private scoreLabels(): Int32Array {
    const set = this.modelSet;
    return Int32Array.from(set.classMap.classes, (c) => (this.metrics ? this.metrics.scores.series(set.byClass[set.classMap.indexOf(c.name)].name) : -1));
  }

  start(): void {
    this.host.start();
    if (this.opts.config.learning) {
      this.learnTimer = setInterval(() => this.applyLearned(), this.opts.config.learnRebuildSeconds * 1000);
      this.learnTimer.unref();
      this.opts.logger.info("learning mode: judged connections are learnt as normal, no verdicts are published");
    }
  }

  get ownership(): ShardOwnership {
    return this.host.ownership;
  }

  get ownedShards(): readonly number[] {
    return this.host.shards;
  }

  private progress(sourceId: string): SourceProgress {
    let p = this.sources.get(sourceId);
    if (!p) {
      p = { frames: 0, verdicts: 0, replay: false };
      this.sources.set(sourceId, p);
    }
    return p;
  }

  private onBatch(shard: number, batch: FrameBatch, keep: number): void {
    const p = this.progress(batch.sourceId);
    if (batch.replay) p.replay = true;
    if (batch.records.byteLength) p.frames += this.detector.processRecords(shard, batch.sourceId, batch.records, keep);
    // Only the ending source's lane is flushed: a live capture sharing the shard goes on.
    if (batch.endOfStream) this.detector.endOfStream(shard, batch.sourceId);
    else {
      const clock = this.detector.table.clock[shard];
      if (clock > 0) this.lag.seconds = Date.now() / 1000 - clock;
    }
  }

  private onSourceEnd(sourceId: string): { frames: number; verdicts: number } {
    const p = this.progress(sourceId);
    this.sources.delete(sourceId);
    return { frames: p.frames, verdicts: p.verdicts };
  }

  private publishVerdict(v: Verdict): void {
    if (this.opts.config.learning) return;
    const p = this.progress(v.sourceId);
    p.verdicts++;
    v.replay = p.replay;
    this.metrics?.verdicts.inc({ model: v.model, label: v.label });
    this.opts.nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(v));
    this.opts.logger.info({ id: v.id, address: v.address || undefined, local: v.localAddress, label: v.label, connections: v.connections, score: v.score }, "verdict");
  }

  /** Learning mode: keeps a judged connection's symbols for the next rebuild of its model. */
  private learnJudged(j: JudgedSequence): void {
    const model = this.modelSet.byClass[this.modelSet.classMap.indexOf(j.serviceClass)].name;
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

  /** A false alarm: learn the verdict's sequences as normal, rebuild the tree in place and persist it. True when it is done with (not to be applied again). */
  private onFeedback(f: Feedback): boolean {
    const log = this.opts.logger;
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
    this.feedbackApplied++;
    this.metrics?.feedback.inc({ result: learnt ? "learnt" : "unknown_model" });
    return true;
  }

  private persist(model: PstModel): void {
    // Every model goes to the state directory together, so the next start reads a consistent set from there.
    for (const m of this.modelSet.models.values()) if (m === model || !existsSync(join(this.stateModels, `${m.name}${MODEL_SUFFIX}`))) writeModelFile(this.stateModels, m);
  }

  async stop(): Promise<void> {
    if (this.learnTimer) clearInterval(this.learnTimer);
    if (this.opts.config.learning) this.applyLearned();
    await this.host.stop();
  }
}
