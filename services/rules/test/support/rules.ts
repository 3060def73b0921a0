import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { createLogger, type Logger } from "@vigil/lifecycle";
import { createRegistry, type Registry } from "@vigil/metrics";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { Verdict } from "@vigil/proto";
import { createVethPair, disposeNatsServer, freePort, inNetns, startNatsServer, type NatsServerHandle, type VethPair } from "@vigil/testing";
import { Allowlist } from "../../src/allowlist.js";
import { commands } from "../../src/cli.js";
import { ControlApi } from "../../src/client.js";
import { rulesDefaults, type RulesConfig } from "../../src/config.js";
import { DryRunEnforcer } from "../../src/enforcers/dry-run.js";
import { startGrpcServer, type GrpcHandle } from "../../src/grpc-server.js";
import type { Enforcer } from "../../src/enforcers/types.js";
import { createRulesMetrics } from "../../src/metrics.js";
import { RulesService } from "../../src/service.js";

export const log = createLogger("rules-test", process.env.VIGIL_LOG_LEVEL ?? "silent");

/**
 * A JetStream nats-server and a veth pair (the enforcer works in its second
 * namespace) for the tests of one describe block: started before them,
 * removed after.
 */
export function natsAndVeth(): { readonly nats: NatsServerHandle; readonly pair: VethPair } {
  const env = {} as { nats: NatsServerHandle; pair: VethPair };
  beforeAll(async () => {
    env.nats = await startNatsServer({ jetstream: true });
    env.pair = createVethPair();
  });
  afterAll(async () => {
    env.pair?.destroy();
    if (env.nats) await disposeNatsServer(env.nats);
  });
  return env;
}

/** Whether one ping from namespace ns reaches addr within a second. */
export function ping(ns: string, addr: string): boolean {
  try {
    inNetns(ns, "ping", ["-c", "1", "-W", "1", addr]);
    return true;
  } catch {
    return false;
  }
}

export interface Running {
  svc: RulesService;
  nc: NatsConnection;
  registry: Registry;
  stop(): Promise<void>;
}

export async function startService(
  url: string,
  overrides: Partial<RulesConfig> = {},
  enforcer: Enforcer = new DryRunEnforcer("test"),
  allowlist?: Allowlist,
  logger: Logger = log,
): Promise<Running> {
  const config = rulesDefaults(overrides);
  const nc = await connectBus({ servers: [url], name: "rules-test", firstConnectTimeoutMs: 5000 });
  const registry = createRegistry("rules");
  const svc = new RulesService({
    config,
    nc,
    enforcer,
    allowlist: allowlist ?? Allowlist.fromConfig(config.allowlist),
    metrics: createRulesMetrics(registry),
    logger,
  });
  try {
    await svc.start();
  } catch (err) {
    await nc.close();
    throw err;
  }
  return {
    svc,
    nc,
    registry,
    async stop() {
      await svc.stop();
      await nc.close();
    },
  };
}

/** A dry-run rules service with its gRPC API on loopback TCP and a unix socket, and a client of it. */
export interface GrpcStack {
  readonly nats: NatsServerHandle;
  readonly r: Running;
  readonly server: GrpcHandle;
  /** Holds control.sock. */
  readonly dir: string;
  /** A client over TCP, with the token when there is one. */
  readonly api: ControlApi;
}

/**
 * The gRPC API of a real rules service, on a real JetStream nats-server, for the tests of one describe block:
 * started before them, stopped after.
 */
export function grpcStack(opts: { bucket: string; token?: string; allowlist?: Allowlist }): GrpcStack {
  const env = {} as { -readonly [K in keyof GrpcStack]: GrpcStack[K] };
  beforeAll(async () => {
    env.nats = await startNatsServer({ jetstream: true });
    env.r = await startService(env.nats.url, { bucket: opts.bucket, dryRun: true }, undefined, opts.allowlist);
    env.dir = mkdtempSync(join(tmpdir(), "vigil-grpc-"));
    env.server = await startGrpcServer(env.r.svc, { host: "127.0.0.1", port: await freePort(), socket: join(env.dir, "control.sock"), token: opts.token });
    env.api = new ControlApi({ addr: env.server.address, token: opts.token });
  });
  afterAll(async () => {
    env.api?.close();
    await env.server?.close();
    await env.r?.stop();
    if (env.nats) await disposeNatsServer(env.nats);
    if (env.dir) rmSync(env.dir, { recursive: true, force: true });
  });
  return env;
}

let seq = 0;

/** A pst verdict; `handshakes` connections from the address complete the TCP handshake, the rest are answered by RST. */
export function verdict(address: string, opts: Partial<Verdict> & { handshakes?: number; half?: number } = {}): Verdict {
  const { handshakes = 0, half = 3, ...rest } = opts;
  const connections = [];
  for (let i = 0; i < handshakes; i++)
    connections.push({ client: address, clientPort: 40000 + i, server: "10.0.0.1", serverPort: 22, serviceClass: "ssh", symbols: "C:S S:SA C:A C:PA S:PA C:FA S:FA C:A", score: 4, firstTs: 1, lastTs: 2 });
  for (let i = 0; i < half; i++)
    connections.push({ client: address, clientPort: 50000 + i, server: "10.0.0.1", serverPort: 80, serviceClass: "http", symbols: "C:S S:SA C:R", score: 5, firstTs: 1, lastTs: 2 });
  seq++;
  return Verdict.fromPartial({
    id: `pst-test-${seq}-${address}`,
    detector: "pst",
    instance: "pst-1",
    sourceId: "test",
    address,
    score: 5,
    threshold: 3,
    connections: connections.length,
    packets: 30,
    // A capture a few milliseconds apart per verdict: a flood, as far as the block budget's clock goes.
    firstTs: 1_700_000_000 + seq / 1000,
    lastTs: 1_700_000_000.5 + seq / 1000,
    label: "syn-scan",
    pst: { connections },
    ...rest,
  });
}

export function publishVerdict(nc: NatsConnection, v: Verdict): void {
  nc.publish(subjects.verdicts(v.detector), codecs.verdict.encode(v));
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  if (!m) return 0;
  let sum = 0;
  for (const v of m.values as Array<{ value: number; labels: Record<string, string>; metricName?: string }>) {
    if (v.metricName && v.metricName !== name && !v.metricName.endsWith("_count")) continue;
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

/** Runs a `vigil` command of the rules service in-process ("status", "rules", ...); returns its exit code and what it wrote. */
export async function runCommand(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const [name, ...rest] = args;
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) throw new Error(`no command ${name}`);
  let stdout = "";
  let stderr = "";
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
  try {
    return { code: await cmd.run(rest), stdout, stderr };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}
