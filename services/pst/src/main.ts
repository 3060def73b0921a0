#!/usr/bin/env node
import { hostname } from "node:os";
import { connectBus } from "@vigil/bus";
import { Shutdown, createLogger, reportFatal } from "@vigil/lifecycle";
import { createRegistry, serveMetrics } from "@vigil/metrics";
import { loadPstConfig } from "./config.js";
import { PstService } from "./service.js";

async function main(): Promise<void> {
  const cfg = loadPstConfig();
  const instance = cfg.pst.instance ?? `pst-${hostname()}-${process.pid}`;
  const log = createLogger("pst").child({ instance });
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();
  const registry = createRegistry("pst", instance);
  const metrics = await serveMetrics(registry, { host: cfg.pst.metrics.host, port: cfg.pst.metrics.port });
  shutdown.add("metrics", () => metrics.close());
  log.info({ url: metrics.url }, "metrics listening");
  const nc = await connectBus({ servers: cfg.nats.servers, name: instance, token: cfg.nats.token, logger: log });
  shutdown.add("nats", () => nc.drain());
  const service = new PstService({ nc, config: cfg.pst, instance, logger: log, registry, metricsPort: metrics.port, version: "0.1.0" });
  service.start();
  shutdown.add("pst", () => service.stop());
  log.info({ shards: cfg.pst.shardCount, maxConnections: cfg.pst.maxConnections, bytesPerConnection: service.detector.table.bytesPerConnection }, "pst detector running");
}

main().catch((err: unknown) => {
  process.exitCode = reportFatal("vigil-pst", err);
});
