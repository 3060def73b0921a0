#!/usr/bin/env node
// The capture daemon: one source (kernel ring, AF_PACKET or a pcap replay) to
// vigil.frames.<shard>, with metrics and heartbeats, until SIGTERM.
import { runDaemon } from "@vigil/lifecycle";
import { createRegistry } from "@vigil/metrics";
import { startCapture } from "./capture.js";
import { loadCaptureConfig } from "./config.js";
import { CaptureMetrics } from "./metrics.js";

void runDaemon({
  service: "capture",
  loadConfig: () => loadCaptureConfig(),
  settings: (cfg) => ({ nats: cfg.nats, metrics: cfg.capture.metrics }),
  // Capture's series carry no instance label: a host has one capture per source, named by the source id.
  registry: () => createRegistry("capture"),
  start({ config, log, nc, registry, metricsPort, instance }) {
    const c = config.capture;
    const handle = startCapture({ ...c, nc: nc!, metrics: new CaptureMetrics(registry), logger: log, instance, metricsPort });
    log.info({ sourceId: handle.sourceId, source: c.source }, "capturing");
    return { done: handle.done, stop: () => handle.stop().catch(() => undefined) };
  },
});
