import { readFileSync } from "node:fs";
import { connect, createServer } from "node:net";

/** The first port the kernel hands out for outgoing connections and bind(0) (ip_local_port_range). */
function ephemeralStart(): number {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}
const LOW = 20000;
const HIGH = Math.max(LOW + 1000, ephemeralStart());

function tryListen(port: number, host: string): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(null));
    srv.listen(port, host, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : null));
    });
  });
}

/**
 * A TCP port that was free on 127.0.0.1 a moment ago. Chosen below the
 * ephemeral range, so that the local end of some other process's outgoing
 * connection, or another bind(0), cannot take it before the service that was
 * given it binds it.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await tryListen(LOW + Math.floor(Math.random() * (HIGH - LOW)), host);
    if (port !== null) return port;
  }
  const port = await tryListen(0, host);
  if (port === null) throw Object.assign(new Error(`no free TCP port on ${host}`), { code: "VIGIL_ERR_LISTEN" });
  return port;
}

/** Whether something accepts TCP connections on the port. */
export function portOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
