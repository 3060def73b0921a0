import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeNatsServer, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { connectBus } from "../src/connection.js";
import { PresenceView, startHeartbeat } from "../src/presence.js";

describe("heartbeats and presence", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => disposeNatsServer(nats));

  it("sees instances join, announce their shards, leave on goodbye, and expire when silent", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "t" });
    const view = new PresenceView(nc, { cutoffMs: 400, checkMs: 50 });
    const left: string[] = [];
    view.on("leave", (hb) => left.push(hb.instance));
    view.start();
    await nc.flush();
    const a = startHeartbeat(nc, { service: "pst", instance: "a", shards: () => [0, 1], intervalMs: 100 });
    const b = startHeartbeat(nc, { service: "pst", instance: "b", shards: () => [2], intervalMs: 100 });
    const crashing = await connectBus({ servers: [nats.url], name: "crashing" });
    const c = startHeartbeat(crashing, { service: "rules", instance: "c", intervalMs: 100 });
    await waitFor("three instances", () => view.instances().length === 3, 3000);
    expect([...view.groups().keys()].sort()).toEqual(["pst", "rules"]);
    expect(view.ownsAll("pst", 3)).toBe(true);
    expect(view.ownsAll("pst", 4)).toBe(false);
    await b.stop();
    await waitFor("b said goodbye", () => left.includes("b"), 3000);
    expect(view.ownsAll("pst", 3)).toBe(false);
    // Silent without a goodbye (its connection gone, as in a crash): gone after the cut-off, not before.
    await crashing.close();
    const t = Date.now();
    await waitFor("c expired", () => left.includes("c"), 3000);
    expect(Date.now() - t).toBeGreaterThanOrEqual(250);
    expect(left).not.toContain("a");
    await c.stop();
    await a.stop();
    view.stop();
    await nc.close();
  });
});
