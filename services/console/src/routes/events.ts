import type { FastifyPluginAsync, FastifyReply } from "fastify";
import { SECURITY_HEADERS } from "../http.js";
import type { LiveState } from "../live.js";

/**
 * The server-sent event stream every open page listens to: the once-a-second tick, verdicts,
 * rule changes and scores. Scores can arrive by the thousand per second: they are batched into
 * one event every 250 ms.
 */
export class EventHub {
  private readonly clients = new Set<FastifyReply>();
  private pendingScores = new Map<string, unknown[]>();
  private readonly scoreFlush: NodeJS.Timeout;

  constructor(live: LiveState) {
    this.scoreFlush = setInterval(() => {
      if (!this.pendingScores.size) return;
      this.broadcast("scores", Object.fromEntries(this.pendingScores));
      this.pendingScores = new Map();
    }, 250);
    this.scoreFlush.unref();
    live.on("tick", (t) => this.broadcast("tick", t));
    live.on("verdict", (v) => this.broadcast("verdict", v));
    live.on("rule", (r) => this.broadcast("rule", r));
    live.on("scores", ({ detector, points }: { detector: string; points: unknown[] }) => {
      const list = this.pendingScores.get(detector) ?? [];
      list.push(...points);
      this.pendingScores.set(detector, list.slice(-500));
    });
  }

  get size(): number {
    return this.clients.size;
  }

  add(reply: FastifyReply): void {
    this.clients.add(reply);
  }

  delete(reply: FastifyReply): void {
    this.clients.delete(reply);
  }

  broadcast(event: string, data: unknown): void {
    if (!this.clients.size) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.clients) {
      // A browser that stopped reading (a suspended laptop) is dropped rather than buffered without bound; EventSource reconnects.
      if (c.raw.writableLength > 1 << 20) {
        this.clients.delete(c);
        c.raw.destroy();
        continue;
      }
      c.raw.write(frame);
    }
  }

  close(): void {
    clearInterval(this.scoreFlush);
    for (const c of this.clients) c.raw.end();
    this.clients.clear();
  }
}

export const eventRoutes: FastifyPluginAsync<{ hub: EventHub }> = async (app, { hub }) => {
  app.get("/api/events", (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write("retry: 2000\n\n");
    hub.add(reply);
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    req.raw.on("close", () => {
      clearInterval(keepAlive);
      hub.delete(reply);
    });
  });
};
