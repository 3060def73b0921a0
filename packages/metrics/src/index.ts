import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry, collectDefaultMetrics } from "prom-client";

export * as prom from "prom-client";
export { Registry };

/** A registry with the default process metrics and a `service` label on every series. */
export function createRegistry(service: string, instance?: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(instance ? { service, instance } : { service });
  collectDefaultMetrics({ register: registry, prefix: "vigil_" });
  return registry;
}

export interface MetricsServer {
  server: Server;
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves /metrics (Prometheus text format) and /healthz. Port 0 picks a free port. */
export async function serveMetrics(
  registry: Registry,
  opts: { host?: string; port: number; healthy?: () => boolean },
): Promise<MetricsServer> {
  const host = opts.host ?? "127.0.0.1";
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (path === "/healthz") {
      const ok = opts.healthy ? opts.healthy() : true;
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "unhealthy\n");
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(Object.assign(new Error(`metrics: cannot listen on ${host}:${opts.port}: ${err.message}`), { code: "VIGIL_ERR_LISTEN" })),
    );
    server.listen(opts.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    host,
    port,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
