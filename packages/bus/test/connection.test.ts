import { describe, expect, it } from "vitest";
import { freePort, startNatsServer, disposeNatsServer } from "@vigil/testing";
import { BusError, connectBus } from "../src/connection.js";

describe("connectBus", () => {
  it("gives up after the first-connect timeout with an error naming the servers", async () => {
    const port = await freePort();
    const t = Date.now();
    await expect(connectBus({ servers: [`nats://127.0.0.1:${port}`], name: "t", firstConnectTimeoutMs: 700 })).rejects.toThrow(BusError);
    expect(Date.now() - t).toBeLessThan(3000);
  });

  it("connects, and survives a server restart", async () => {
    const nats = await startNatsServer();
    try {
      const nc = await connectBus({ servers: [nats.url], name: "t", firstConnectTimeoutMs: 5000 });
      await nats.stop();
      await nats.start();
      const sub = nc.subscribe("x", { max: 1 });
      const got = (async () => {
        for await (const m of sub) return m.string();
      })();
      await new Promise((r) => setTimeout(r, 1500));
      nc.publish("x", "hello");
      expect(await got).toBe("hello");
      await nc.close();
    } finally {
      await disposeNatsServer(nats);
    }
  });
});
