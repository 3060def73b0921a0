#!/usr/bin/env node
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { connectBus } from "@vigil/bus";
import { createLogger, reportFatal, Shutdown } from "@vigil/lifecycle";
import { serveMetrics } from "@vigil/metrics";
import { loadSomConfig, stateDirOf } from "./config.js";
import { loadModelWithFeedback } from "./feedback.js";
import { createSomMetrics } from "./metrics.js";
import { SomService } from "./service.js";

async function main(): Promise<void> {
  const log = createLogger("som");
  const cfg = loadSomConfig();
  const som = cfg.som;
  const instance = som.instance ?? `som-${hostname()}-${process.pid}-${randomBytes(2).toString("hex")}`;
  const stateDir = stateDirOf(som);
  const { model, store } = loadModelWithFeedback(som.model, stateDir, { rate: som.feedbackRate, radius: som.feedbackRadius });
  log.info(
    { model: model.id, threshold: model.threshold, window: model.json.window, feedback: store.entries.length, stateDir },
    "SOM model loaded",
  );
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();
  const metrics = createSomMetrics(instance);
  const server = await serveMetrics(metrics.registry, som.metrics);
  shutdown.add("metrics", () => server.close());
  log.info({ url: server.url }, "metrics listening");
  const nc = await connectBus({ servers: cfg.nats.servers, name: instance, token: cfg.nats.token, logger: log });
  shutdown.add("nats", async () => {
    await nc.drain().catch(() => undefined);
  });
  const service = new SomService({ nc, config: som, model, feedback: store, instance, logger: log, metrics, metricsPort: server.port });
  service.start();
  shutdown.add("som", () => service.stop());
  log.info({ instance }, "SOM detector running");
}

main().catch((err: unknown) => {
  process.exitCode = reportFatal("vigil-som", err);
  process.exit();
});
