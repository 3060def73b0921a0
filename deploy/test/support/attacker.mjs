// Run as an unprivileged user by auth.test.ts and up-auth.test.ts: tries one thing against a running
// stack and prints what happened as one JSON line ({ ok, error }).
import { readFileSync } from "node:fs";
import { connect } from "@nats-io/transport-node";

const [action, ...args] = process.argv.slice(2);
const out = (r) => process.stdout.write(JSON.stringify(r) + "\n");

async function nats(url, fn) {
  let nc;
  try {
    nc = await connect({ servers: [url], reconnect: false, timeout: 3000 });
  } catch (err) {
    return out({ ok: false, error: `connect: ${err.message}` });
  }
  try {
    await fn(nc);
    await nc.flush();
    await nc.close();
    out({ ok: true });
  } catch (err) {
    out({ ok: false, error: err.message });
  }
}

switch (action) {
  case "read":
    try {
      readFileSync(args[0]);
      out({ ok: true });
    } catch (err) {
      out({ ok: false, error: err.message });
    }
    break;
  case "publish":
    await nats(args[0], async (nc) => nc.publish(args[1], new TextEncoder().encode("forged")));
    break;
  case "subscribe":
    await nats(args[0], async (nc) => {
      nc.subscribe(args[1]);
    });
    break;
  default:
    out({ ok: false, error: `unknown action ${action}` });
}
