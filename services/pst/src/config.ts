import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_PORTS, DEFAULT_SHARD_COUNT, DEFAULT_SHEDDING, loadConfig, metricsSchema, natsSchema, shardCountSchema, sheddingSchema, z, type LoadOptions } from "@vigil/config";
import { stateDir } from "@vigil/lifecycle";
import { DEFAULT_SERVICE_CLASSES } from "./model.js";
import type { DetectorOptions } from "./detector.js";

/** The models shipped with the package. */
export const DEFAULT_MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../models");

const serviceClassSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "lower-case letters, digits and dashes"),
  ports: z.array(z.number().int().min(1).max(65535)),
});

export const pstSchema = z.strictObject({
  instance: z.string().min(1).optional(),
  /** Frame shards; capture and som must use the same number. */
  shardCount: shardCountSchema.default(DEFAULT_SHARD_COUNT),
  /** Where trained models are read from when the state directory has none of its own. */
  modelsDir: z.string().default(DEFAULT_MODELS_DIR),
  /** Defaults to $VIGIL_STATE_DIR/pst: models updated by feedback and learning are kept there. */
  stateDir: z.string().optional(),
  serviceClasses: z.array(serviceClassSchema).default(DEFAULT_SERVICE_CLASSES),
  maxConnections: z.number().int().min(1).max(1 << 26).default(1_000_000),
  idleTimeoutSeconds: z.number().positive().default(120),
  lingerSeconds: z.number().nonnegative().default(10),
  minSymbols: z.number().int().min(1).default(8),
  windowSeconds: z.number().positive().default(60),
  /** A source still attacking after its verdict gets a renewed one at most this often (capture seconds); 0: never. */
  verdictUpdateSeconds: z.number().min(0).default(5),
  minConnections: z.number().int().min(1).default(5),
  minSuspicious: z.number().int().min(1).default(12),
  alpha: z.number().positive().max(1).default(1e-6),
  floodMinConnections: z.number().int().min(1).default(50),
  floodMinSources: z.number().int().min(1).default(20),
  evidenceMax: z.number().int().min(1).max(1000).default(20),
  maxWindowsPerShard: z.number().int().min(1).default(20_000),
  /** Copies of each fed-back sequence added to the counts on a false alarm. */
  feedbackWeight: z.number().positive().default(50),
  /** Learning mode: judged sequences go into the models instead of verdicts being published. */
  learning: z.boolean().default(false),
  learnRebuildSeconds: z.number().positive().default(60),
  /**
   * Load shedding when pst falls behind live traffic: segments of established TCP flows are sampled
   * (kept for 1/2 .. 1/16 of the flows), connections with shed segments are never judged; connection
   * events and everything but TCP are always kept. See docs/operations.md, "Load shedding".
   */
  shedding: sheddingSchema.default(DEFAULT_SHEDDING),
  metrics: metricsSchema.default({ host: "127.0.0.1", port: DEFAULT_PORTS.pstMetrics }),
});

export const configSchema = z.object({
  nats: natsSchema.default({ servers: [`nats://127.0.0.1:${DEFAULT_PORTS.nats}`] }),
  pst: pstSchema.default(pstSchema.parse({})),
});

export type PstConfig = z.infer<typeof pstSchema>;
export type Config = z.infer<typeof configSchema>;

export function loadPstConfig(opts: LoadOptions = {}): Config {
  return loadConfig(configSchema, opts);
}

export function stateDirOf(cfg: PstConfig, env: NodeJS.ProcessEnv = process.env): string {
  return stateDir(cfg, "pst", env);
}

/** The detector options the configuration sets: the daemon and the offline scan build their detector alike. */
export function detectorOptionsOf(cfg: PstConfig): Partial<DetectorOptions> {
  return {
    shardCount: cfg.shardCount,
    maxConnections: cfg.maxConnections,
    idleTimeout: cfg.idleTimeoutSeconds,
    linger: cfg.lingerSeconds,
    minSymbols: cfg.minSymbols,
    windowSeconds: cfg.windowSeconds,
    verdictUpdateSeconds: cfg.verdictUpdateSeconds,
    minConnections: cfg.minConnections,
    minSuspicious: cfg.minSuspicious,
    alpha: cfg.alpha,
    floodMinConnections: cfg.floodMinConnections,
    floodMinSources: cfg.floodMinSources,
    evidenceMax: cfg.evidenceMax,
    maxWindowsPerShard: cfg.maxWindowsPerShard,
  };
}
