import type { FastifyPluginAsync } from "fastify";
import { createRegistry, prom } from "@vigil/metrics";
import type { LiveState } from "../live.js";
import type { EventHub } from "./events.js";

/** The console's own metrics. Behind the token like everything else: Prometheus sends it with `authorization: {credentials: TOKEN}`. */
export const metricsRoutes: FastifyPluginAsync<{ live: LiveState; hub: EventHub }> = async (app, { live, hub }) => {
  const registry = createRegistry("console", live.instance);
  const counter = (name: string, help: string, read: () => number) =>
    new prom.Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  counter("vigil_console_bus_messages_total", "Heartbeats, verdicts and score batches received", () => live.counters.messages);
  counter("vigil_console_decode_errors_total", "Bus messages that could not be decoded", () => live.counters.decodeErrors);
  counter("vigil_console_capture_scrape_errors_total", "Failed scrapes of capture instances' metrics", () => live.counters.scrapeErrors);
  counter("vigil_console_rules_status_errors_total", "Failed GetStatus polls of the rules service", () => live.counters.rulesErrors);
  new prom.Gauge({ name: "vigil_console_event_streams", help: "Browsers connected to the event stream", registers: [registry], collect() { this.set(hub.size); } });
  new prom.Gauge({ name: "vigil_console_rules_reachable", help: "1 while the rules service answers", registers: [registry], collect() { this.set(live.rules.reachable ? 1 : 0); } });
  app.get("/metrics", async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
};
