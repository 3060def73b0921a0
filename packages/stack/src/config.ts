import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_SHARD_COUNT } from "@vigil/config";

type Section = Record<string, unknown>;

export interface StackConfigOptions {
  natsUrl: string;
  /** Each service keeps its state in <stateDir>/<service>. */
  stateDir: string;
  shardCount?: number;
  /** DIR/pst (PST models) and DIR/som (SOM model) replace the packaged models. */
  modelsDir?: string;
  /** Keys merged into each section last (e.g. { rules: { enforcer: "nftables" }, capture: { source: "pcap", file } }). */
  overrides?: { capture?: Section; pst?: Section; som?: Section; rules?: Section };
}

const EPHEMERAL_METRICS = { host: "127.0.0.1", port: 0 };

/**
 * One vigil.yaml for a private stack (replays, tests): every service on the
 * given bus with the same shard count, state under one directory, metrics on
 * ports of their own choosing, rules in dry-run with no control API listener. The one
 * place that knows the keys of each service's section.
 */
export function stackConfig(opts: StackConfigOptions): Record<string, Section> {
  const shardCount = opts.shardCount ?? DEFAULT_SHARD_COUNT;
  const o = opts.overrides ?? {};
  const cfg: Record<string, Section> = {
    nats: { servers: [opts.natsUrl] },
    pst: {
      shardCount,
      stateDir: join(opts.stateDir, "pst"),
      metrics: EPHEMERAL_METRICS,
      ...(opts.modelsDir ? { modelsDir: join(opts.modelsDir, "pst") } : {}),
      ...o.pst,
    },
    som: {
      shardCount,
      stateDir: join(opts.stateDir, "som"),
      metrics: EPHEMERAL_METRICS,
      ...(opts.modelsDir ? { model: join(opts.modelsDir, "som") } : {}),
      ...o.som,
    },
    rules: {
      enforcer: "dry-run",
      dryRun: true,
      stateDir: join(opts.stateDir, "rules"),
      grpc: { socket: "" },
      metrics: EPHEMERAL_METRICS,
      ...o.rules,
    },
  };
  if (o.capture) cfg.capture = { shardCount, metrics: EPHEMERAL_METRICS, ...o.capture };
  return cfg;
}

/** Writes a configuration where the services read it (JSON is YAML); returns the path. */
export function writeStackConfig(file: string, cfg: Record<string, Section>): string {
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}
