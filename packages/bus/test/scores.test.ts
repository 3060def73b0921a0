import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeNatsServer, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { codecs } from "../src/codec.js";
import { connectBus } from "../src/connection.js";
import { identityScore, ScorePublisher } from "../src/scores.js";
import { subjects } from "../src/subjects.js";

describe("score stream", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => disposeNatsServer(nats));

  it("batches scores, bounded per interval", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "t" });
    const batches: number[] = [];
    nc.subscribe(subjects.scores("pst"), {
      callback: (_e, m) => {
        batches.push(codecs.scoreBatch.decode(m.data).scores.length);
      },
    });
    await nc.flush();
    const pub = new ScorePublisher(nc, "pst", "i1", { format: identityScore, intervalMs: 100, maxPerBatch: 50 });
    pub.start();
    for (let i = 0; i < 1000; i++) pub.add({ ts: i, score: i / 1000, threshold: 0.5, key: `c${i}`, model: "pst/web@1", bmu: -1 });
    await waitFor("a score batch", () => batches.length > 0, 3000);
    expect(batches[0]).toBe(50);
    pub.stop();
    await nc.close();
  });

  it("formats only the samples it keeps, at flush", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "t" });
    const keys: string[][] = [];
    nc.subscribe(subjects.scores("pst"), {
      callback: (_e, m) => {
        keys.push(codecs.scoreBatch.decode(m.data).scores.map((s) => s.key));
      },
    });
    await nc.flush();
    let formatted = 0;
    const pub = new ScorePublisher<{ n: number }>(nc, "pst", "i1", {
      maxPerBatch: 10,
      format: (raw) => {
        formatted++;
        return { ts: raw.n, score: 1, threshold: 2, key: `raw ${raw.n}`, model: "m", bmu: -1 };
      },
    });
    let built = 0;
    for (let i = 0; i < 10_000; i++) {
      const at = pub.reserve();
      if (at < 0) continue;
      built++;
      pub.fill(at, { n: i });
    }
    expect(formatted).toBe(0);
    expect(built).toBeLessThan(1000);
    pub.flush();
    await nc.flush();
    await waitFor("the batch", () => keys.length === 1, 3000);
    expect(formatted).toBe(10);
    expect(keys[0]).toHaveLength(10);
    expect(keys[0].every((k) => /^raw \d+$/.test(k))).toBe(true);
    pub.flush();
    await nc.flush();
    expect(keys).toHaveLength(1);
    await nc.close();
  });
});
