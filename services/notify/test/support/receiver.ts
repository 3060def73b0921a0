import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
}

/**
 * A real HTTP receiver on 127.0.0.1: records every POST and answers with the
 * next scripted status for its path (then 200), or holds the answer until
 * released (a slow webhook).
 */
export class Receiver {
  readonly requests: Received[] = [];
  private script = new Map<string, number[]>();
  private held: Array<() => void> | null = null;
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(): Promise<Receiver> {
    let self: Receiver;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        const path = req.url ?? "/";
        const answer = () => {
          const status = self.script.get(path)?.shift() ?? 200;
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(body) as Record<string, unknown>;
          } catch {
            /* recorded as text */
          }
          self.requests.push({ path, headers: req.headers, body, json });
          res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : "no");
        };
        if (self.held) self.held.push(answer);
        else answer();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    self = new Receiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  /** The next answers for a path, e.g. [500, 500] then 200s. */
  answer(path: string, statuses: number[]): void {
    this.script.set(path, [...statuses]);
  }

  at(path: string): Received[] {
    return this.requests.filter((r) => r.path === path);
  }

  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const a of held) a();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A logger whose lines the test can read (to check what is, and is not, logged). */
export function memoryLogger(): { log: Logger; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { log: pino({ level: "debug" }, stream), text: () => text };
}
