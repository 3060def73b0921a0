import type { FastifyPluginAsync } from "fastify";
import { Status } from "@vigil/proto";
import type { ConsoleContext } from "../http.js";

/** The blocking phase: an operator ends the warm-up of a new host from the overview (the rules service's EndWarmup). */
export const phaseRoutes: FastifyPluginAsync<ConsoleContext> = async (app, { rules }) => {
  // Who ended it goes to the rules service's record and log, as the console session's address.
  app.post("/api/warmup/end", async (req) => Status.toJSON(await rules.endWarmup(`console session from ${req.ip}`)));
};
