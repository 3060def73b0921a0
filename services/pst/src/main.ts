#!/usr/bin/env node
import { runDaemon } from "@vigil/lifecycle";
import { loadPstConfig } from "./config.js";
import { PstModelReloader } from "./model-reload.js";
import { PstService } from "./service.js";

void runDaemon({
  service: "pst",
  loadConfig: () => loadPstConfig(),
  settings: (cfg) => ({ nats: cfg.nats, metrics: cfg.pst.metrics, instance: cfg.pst.instance }),
  start({ config, log, nc, instance, registry, metricsPort, version }) {
    const service = new PstService({ nc: nc!, config: config.pst, instance, logger: log, registry, metricsPort, version });
    service.start();
    log.info({ shards: config.pst.shardCount, maxConnections: config.pst.maxConnections, bytesPerConnection: service.detector.table.bytesPerConnection }, "pst detector running");
    const models = new PstModelReloader(service, { config: config.pst, loadConfig: () => loadPstConfig().pst, log, registry });
    return { stop: () => service.stop(), reload: () => void models.reload() };
  },
});
