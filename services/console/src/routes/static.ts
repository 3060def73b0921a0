import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Asset } from "../static.js";

/** The built front end: index.html at /, every other file by its path, with ETags; anything else is a 404. */
export const staticRoutes: FastifyPluginAsync<{ assets: Map<string, Asset> }> = async (app, { assets }) => {
  const sendAsset = (req: FastifyRequest, reply: FastifyReply, asset: Asset) => {
    reply.header("etag", asset.etag).header("cache-control", asset.immutable ? "public, max-age=31536000, immutable" : "no-cache");
    if (req.headers["if-none-match"] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };
  app.get("/", (req, reply) => sendAsset(req, reply, assets.get("/index.html")!));
  app.get("/*", (req, reply) => {
    const path = new URL(req.url, "http://console.invalid").pathname;
    const asset = assets.get(path);
    if (!asset) return reply.code(404).send({ error: `no such file: ${path}`, code: "VIGIL_ERR_NOT_FOUND" });
    return sendAsset(req, reply, asset);
  });
};
