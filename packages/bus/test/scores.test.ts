import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeNatsServer, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { codecs } from "../src/codec.js";
import { connectBus } from "../src/connection.js";
import { ScorePublisher, serveModelExport } from "../src/scores.js";
import { subjects } from "../src/subjects.js";

describe("score stream and model export", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => disposeNatsServer(nats));

  it("batches scores, bounded per interval, and answers model requests", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "t" });
    const batches: number[] = [];
    nc.subscribe(subjects.scores("pst"), { callback: (_e, m) => batches.push(codecs.scoreBatch.decode(m.data).scores.length) });
    await nc.flush();
    const pub = new ScorePublisher(nc, "pst", "i1", 100, 50);
    pub.start();
    for (let i = 0; i < 1000; i++) pub.add({ ts: i, score: i / 1000, threshold: 0.5, key: `c${i}`, model: "pst/web@1", bmu: -1 });
    await waitFor("a score batch", () => batches.length > 0, 3000);
    expect(batches[0]).toBe(50);
    pub.stop();

    const sub = serveModelExport(nc, "pst", () => ({ models: [{ name: "web" }] }));
    const reply = await nc.request(subjects.models("pst"), new Uint8Array(0), { timeout: 2000 });
    expect(JSON.parse(reply.string())).toEqual({ models: [{ name: "web" }] });
    sub.unsubscribe();
    await nc.close();
  });
});
