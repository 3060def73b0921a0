#!/usr/bin/env node
// The notifier daemon: rule events and false-alarm feedback from NATS to the
// configured webhooks, Slack-style hooks and e-mail, until SIGTERM.
import { runDaemon } from "@vigil/lifecycle";
import { createRegistry } from "@vigil/metrics";
import { loadNotifyConfig } from "./config.js";
import { NotifyMetrics } from "./metrics.js";
import { startNotifier } from "./notifier.js";

void runDaemon({
  service: "notify",
  loadConfig: () => loadNotifyConfig(),
  settings: (cfg) => ({ nats: cfg.nats, metrics: cfg.notify.metrics }),
  // One notifier per host: its series need no instance label.
  registry: () => createRegistry("notify"),
  start({ config, log, nc, registry }) {
    const notifier = startNotifier({ nc: nc!, config: config.notify, metrics: new NotifyMetrics(registry), log });
    return { stop: () => notifier.stop() };
  },
});
