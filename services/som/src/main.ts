#!/usr/bin/env node
import { runDaemon } from "@vigil/lifecycle";
import { loadSomConfig, stateDirOf } from "./config.js";
import { loadModelWithFeedback } from "./feedback.js";
import { createSomMetrics, type SomMetrics } from "./metrics.js";
import { SomModelReloader } from "./model-reload.js";
import { SomService } from "./service.js";

let metrics: SomMetrics | null = null;

void runDaemon({
  service: "som",
  loadConfig: () => loadSomConfig(),
  settings: (cfg) => ({ nats: cfg.nats, metrics: cfg.som.metrics, instance: cfg.som.instance }),
  // A missing or corrupt model fails the start before anything listens.
  prepare(config, log) {
    const stateDir = stateDirOf(config.som);
    const loaded = loadModelWithFeedback(config.som.model, stateDir, { rate: config.som.feedbackRate, radius: config.som.feedbackRadius });
    const { model, store } = loaded;
    log.info({ model: model.id, threshold: model.threshold, window: model.json.window, feedback: store.entries.length, stateDir }, "SOM model loaded");
    return loaded;
  },
  registry: (instance) => (metrics = createSomMetrics(instance)).registry,
  start({ config, prepared, log, nc, instance, metricsPort, version }) {
    const { model, store } = prepared;
    const service = new SomService({ nc: nc!, config: config.som, model, feedback: store, instance, logger: log, metrics: metrics!, metricsPort, version });
    service.start();
    log.info({ instance }, "SOM detector running");
    const models = new SomModelReloader(service, { config: config.som, loadConfig: () => loadSomConfig().som, log, registry: metrics!.registry });
    return { stop: () => service.stop(), reload: () => void models.reload() };
  },
});
