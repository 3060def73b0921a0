import type { FastifyPluginAsync } from "fastify";
import type { NatsConnection } from "@vigil/bus";
import type { ConsoleContext } from "../http.js";

/** The console's own health, the overview page's data, and the latest scores per detector. */
export const statusRoutes: FastifyPluginAsync<ConsoleContext> = async (app, { live, nats }) => {
  // What the browser's outage banner polls: the rules service as the last GetStatus found it, the bus by a round trip.
  app.get("/healthz", async () => {
    const nc = nats();
    return { ok: true, rules: live.rules.reachable, rulesAddress: live.rules.address, rulesError: live.rules.error, nats: await busAnswers(nc) };
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

/**
 * A connection that is reconnecting is not closed, yet nothing flows: only a PING answered by the
 * server within a second says the bus is there.
 */
async function busAnswers(nc: NatsConnection | null): Promise<boolean> {
  if (!nc || nc.isClosed()) return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([nc.flush().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 1000)))]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
