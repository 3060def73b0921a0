import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_PORTS, DEFAULT_SHARD_COUNT, DEFAULT_SHEDDING, loadConfig, metricsSchema, natsSchema, shardCountSchema, sheddingSchema, z, type LoadOptions } from "@vigil/config";
import { stateDir } from "@vigil/lifecycle";

/** The model shipped with the package. */
export const DEFAULT_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../models/default");

export const somSchema = z.strictObject({
  instance: z.string().min(1).optional(),
  /** Frame shards; capture and pst must use the same number. */
  shardCount: shardCountSchema.default(DEFAULT_SHARD_COUNT),
  /** A model directory or file; the state directory's copy (with learned feedback) wins when it derives from the same training data. */
  model: z.string().default(DEFAULT_MODEL_DIR),
  /** Defaults to $VIGIL_STATE_DIR/som: false alarms learned online are kept there. */
  stateDir: z.string().optional(),
  /** Scale counts by shard count / owned shards, so one model serves any number of instances. */
  normalizeByShards: z.boolean().default(true),
  minWindowPackets: z.number().int().min(1).default(20),
  mergePeriodSeconds: z.number().positive().default(60),
  dominantShare: z.number().gt(0).max(1).default(0.25),
  aggregateShare: z.number().gt(0).max(1).default(0.5),
  maxSources: z.number().int().min(1).max(64).default(4),
  minSourcePackets: z.number().int().min(1).default(10),
  /**
   * A shard silent this long (wall clock) no longer holds back the time-ordered merge of the
   * others: live sources, where capture batches leave within 5 ms, so this bounds added latency.
   */
  idleMs: z.number().int().min(10).default(150),
  /** The same for full-speed replays (capture time running ahead of the wall clock): a margin for a consumer behind the bus. */
  replayIdleMs: z.number().int().min(10).default(2000),
  /** Online update on a false alarm: learning rate and neighbourhood radius (grid units). */
  feedbackRate: z.number().gt(0).max(1).default(0.1),
  feedbackRadius: z.number().gt(0).default(1),
  /**
   * Load shedding when som falls behind live traffic: segments of established TCP flows are sampled
   * (kept for 1/2 .. 1/16 of the flows) and left out of the windows, their flows never counted
   * half-open; connection events and everything but TCP are always kept. See docs/operations.md, "Load shedding".
   */
  shedding: sheddingSchema.default(DEFAULT_SHEDDING),
  metrics: metricsSchema.default({ host: "127.0.0.1", port: DEFAULT_PORTS.somMetrics }),
});

export const configSchema = z.object({
  nats: natsSchema.default({ servers: [`nats://127.0.0.1:${DEFAULT_PORTS.nats}`] }),
  som: somSchema.default(somSchema.parse({})),
});

export type SomConfig = z.infer<typeof somSchema>;
export type Config = z.infer<typeof configSchema>;

export function loadSomConfig(opts: LoadOptions = {}): Config {
  return loadConfig(configSchema, opts);
}

export function stateDirOf(cfg: Pick<SomConfig, "stateDir">, env: NodeJS.ProcessEnv = process.env): string {
  return stateDir(cfg, "som", env);
}
