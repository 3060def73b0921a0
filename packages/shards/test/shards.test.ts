import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "@vigil/bus";
import { disposeNatsServer, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { assignShards, ShardOwnership } from "../src/index.js";

describe("assignShards", () => {
  it("gives every shard to exactly one member, deterministically", () => {
    const a = assignShards(["c", "a", "b"], 16);
    const b = assignShards(["b", "c", "a"], 16);
    expect([...a.entries()]).toEqual([...b.entries()]);
    const all = [...a.values()].flat().sort((x, y) => x - y);
    expect(all).toEqual([...Array(16).keys()]);
    for (const shards of a.values()) expect(shards.length).toBeGreaterThan(0);
  });

  it("moves only the leaving member's shards", () => {
    const before = assignShards(["a", "b", "c"], 64);
    const after = assignShards(["a", "b"], 64);
    for (const m of ["a", "b"]) for (const s of before.get(m)!) expect(after.get(m)).toContain(s);
  });
});

describe("ShardOwnership over a real nats-server", () => {
  let nats: NatsServerHandle;
  const conns: NatsConnection[] = [];
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    for (const c of conns) await c.close();
    await disposeNatsServer(nats);
  });

  it("splits shards between live instances and rebalances when one stops", async () => {
    const members: ShardOwnership[] = [];
    for (const id of ["i1", "i2", "i3"]) {
      const nc = await connectBus({ servers: [nats.url], name: id });
      conns.push(nc);
      const o = new ShardOwnership({ nc, group: "test", instance: id, shardCount: 16, heartbeatMs: 100, expiryMs: 400 });
      o.start();
      members.push(o);
    }
    const partition = () => members.map((m) => [...m.shards]);
    await waitFor("three-way split", () => partition().flat().length === 16 && partition().every((s) => s.length > 0), 5000);
    expect(partition().flat().sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    await members[2].stop();
    await waitFor("two-way split", () => members[0].shards.length + members[1].shards.length === 16, 5000);
    expect([...members[0].shards, ...members[1].shards].sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    for (const m of members.slice(0, 2)) await m.stop();
  });
});
