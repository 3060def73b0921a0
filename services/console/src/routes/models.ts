import type { FastifyPluginAsync } from "fastify";
import { isErrorCode } from "@vigil/errors";
import { httpError, type ConsoleContext } from "../http.js";

/** The PST and SOM model views: asked of the detectors over NATS, or read from the configured model files. */
export const modelRoutes: FastifyPluginAsync<ConsoleContext> = async (app, { live, models }) => {
  app.get<{ Params: { detector: string } }>("/api/models/:detector", async (req) => {
    const d = req.params.detector;
    if (d !== "pst" && d !== "som") throw httpError(404, "VIGIL_ERR_NOT_FOUND", `no model view for "${d}" (pst or som)`);
    try {
      const doc = await models.get(d);
      return d === "som" ? { ...doc, recent: live.bmus.slice(-50) } : doc;
    } catch (err) {
      const e = err as Error & { notFound?: boolean; code?: string };
      throw httpError(e.notFound ? 404 : 502, isErrorCode(e.code) ? e.code : "VIGIL_ERR_MODEL", e.message);
    }
  });
};
