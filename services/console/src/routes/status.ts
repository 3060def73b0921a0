import type { FastifyPluginAsync } from "fastify";
import type { ConsoleContext } from "../http.js";

/** The console's own health, the overview page's data, and the latest scores per detector. */
export const statusRoutes: FastifyPluginAsync<ConsoleContext> = async (app, { live, nats }) => {
  app.get("/healthz", async () => {
    const nc = nats();
    return { ok: true, rules: live.rules.reachable, nats: !!nc && !nc.isClosed() };
  });

  app.get("/api/overview", async () => {
    const nc = nats();
    return {
      now: Date.now() / 1000,
      series: live.series,
      health: live.health(),
      rules: live.rules,
      nats: nc ? { connected: !nc.isClosed(), server: nc.getServer() } : { connected: false, server: null },
      counters: live.counters,
    };
  });

  app.get("/api/scores", async () => ({ detectors: Object.fromEntries(live.scores) }));
};
