#!/usr/bin/env node
// The capture daemon: one source (kernel ring, AF_PACKET or a pcap replay) to
// vigil.frames.<shard>, with metrics and heartbeats, until SIGTERM.
import { connectBus } from "@vigil/bus";
import { createLogger, reportFatal, Shutdown } from "@vigil/lifecycle";
import { createRegistry, serveMetrics } from "@vigil/metrics";
import { startCapture } from "./capture.js";
import { loadCaptureConfig } from "./config.js";
import { CaptureMetrics } from "./metrics.js";

async function main(): Promise<number> {
  const log = createLogger("capture");
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();
  try {
    const cfg = loadCaptureConfig();
    const c = cfg.capture;
    const registry = createRegistry("capture");
    const metrics = new CaptureMetrics(registry);
    const server = await serveMetrics(registry, { host: c.metrics.host, port: c.metrics.port });
    shutdown.add("metrics server", () => server.close());
    log.info({ url: server.url }, "metrics listening");
    const nc = await connectBus({ servers: cfg.nats.servers, name: cfg.nats.name ?? "vigil-capture", token: cfg.nats.token, logger: log });
    shutdown.add("nats", async () => {
      if (!nc.isClosed()) await nc.drain();
    });
    const handle = startCapture({ ...c, nc, metrics, logger: log, heartbeatMs: c.heartbeatMs, metricsPort: server.port });
    shutdown.add("capture", async () => {
      await handle.stop().catch(() => undefined);
    });
    log.info({ sourceId: handle.sourceId, source: c.source }, "capturing");
    await handle.done;
    await shutdown.run();
    return 0;
  } catch (err) {
    const code = reportFatal("vigil-capture", err);
    await shutdown.run();
    return code;
  }
}

main().then((code) => process.exit(code));
