/**
 * The JSON the console's server sends and its browser code reads (REST
 * responses and server-sent events). Types only, no runtime code: the browser
 * bundle imports this file too.
 */

export interface InstanceHealth {
  service: string;
  instance: string;
  version: string;
  host: string;
  shards: number[];
  metricsPort: number;
  /** From its heartbeat, since it started: frames handled, frames and batches lost before it. */
  frames: number;
  framesLost: number;
  batchesLost: number;
  /** Detectors, from their heartbeats: frames shed under overload since start, and the shedding level now (0: none). */
  framesShed: number;
  shedLevel: number;
  lastSeen: number;
  state: "up" | "stale" | "stopped";
}

export interface SeriesPoint {
  t: number;
  packets: number | null;
  drops: number | null;
  verdicts: Record<string, number>;
  activeRules: number | null;
}

export interface ScorePoint {
  t: number;
  score: number;
  threshold: number;
  key: string;
  detector: string;
  model: string;
  bmu: number;
  verdict: boolean;
}

/** The rules service's GetStatus, as JSON (the fields the console shows). */
export interface RulesStatus {
  enforcer?: string;
  enforcerDetail?: string;
  dryRun?: boolean;
  activeRules?: number;
  rulesByOrigin?: Record<string, number>;
  version?: string;
  startedAt?: number;
  /** The effective allowlist: what the rules service never blocks, and why (configured, local, gateway, DNS, session). */
  allowlist?: { cidr: string; why: string }[];
  /** "warmup" (automatic blocks simulated until warmupUntil), "blocking" or "dry-run". */
  phase?: string;
  warmupStartedAt?: number;
  warmupUntil?: number;
}

export interface RulesState {
  reachable: boolean;
  address: string;
  error: string | null;
  status: RulesStatus | null;
}

export interface Overview {
  now: number;
  series: SeriesPoint[];
  health: InstanceHealth[];
  rules: RulesState;
  nats: { connected: boolean; server: string | null };
}

/** The once-a-second summary pushed to every open page. */
export interface Tick {
  point: SeriesPoint;
  health: InstanceHealth[];
  rules: RulesState;
}

/** The model views are the model contract's (@vigil/models): the console shows what the parsers produce. */
export type { PstModelView, PstNext, PstNode, SomModelView, Topology } from "@vigil/models";

export interface ModelDocument<T> {
  detector: string;
  origin: string;
  loadedAt: number;
  models: T[];
  /** SOM only: the latest best-matching units, to trace on the map. */
  recent?: ScorePoint[];
}
