import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { disposeNatsServer, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { connectBus } from "../src/connection.js";
import { publishHeadroom, publishInPlace } from "../src/publish-in-place.js";

/** A payload with `room` free bytes before it in its own memory, as a capture source hands batches over. */
function withRoom(room: number, fill: (i: number) => number, len: number): Buffer {
  const whole = Buffer.alloc(room + len, 0xee);
  const payload = whole.subarray(room);
  for (let i = 0; i < len; i++) payload[i] = fill(i);
  return payload;
}

describe("publishInPlace", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => disposeNatsServer(nats));

  it("delivers the payload intact and in order with nc.publish, without going through the client's copy", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "in-place" });
    const got: { subject: string; data: Buffer }[] = [];
    nc.subscribe("t.>", { callback: (_e, m) => got.push({ subject: m.subject, data: Buffer.from(m.data) }) });
    await nc.flush();
    const subject = "t.frames.12";
    const room = publishHeadroom(subject);
    const sent: { subject: string; data: Buffer }[] = [];
    const publish = vi.spyOn(nc, "publish");
    for (let n = 0; n < 40; n++) {
      // Sizes across the client's 32 KiB flush threshold, and an empty payload.
      const len = n === 7 ? 0 : 1 + ((n * 7919) % 90_000);
      const data = withRoom(room, (i) => (i * 31 + n) & 0xff, len);
      const copy = Buffer.from(data);
      if (n % 3 === 0) {
        // A message the client queues: what publishInPlace writes must come after it.
        nc.publish("t.other", Buffer.from([n]));
        sent.push({ subject: "t.other", data: Buffer.from([n]) });
      }
      publishInPlace(nc, subject, data, room);
      sent.push({ subject, data: copy });
    }
    const queued = publish.mock.calls.length;
    publish.mockRestore();
    // Only the t.other messages went through nc.publish: every frame took the direct path.
    expect(queued).toBe(sent.filter((s) => s.subject === "t.other").length);
    await nc.flush();
    await waitFor("every message", () => got.length === sent.length, 5000);
    expect(got.map((g) => g.subject)).toEqual(sent.map((s) => s.subject));
    for (let i = 0; i < sent.length; i++) expect(got[i].data.equals(sent[i].data), `message ${i}`).toBe(true);
    const stats = nc.stats();
    expect(stats.outMsgs).toBe(sent.length);
    expect(stats.outBytes).toBe(sent.reduce((a, s) => a + s.data.length, 0));
    await nc.close();
  });

  it("falls back to nc.publish without enough room, and refuses a payload over max_payload as the client does", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "in-place-fallback" });
    const got: Buffer[] = [];
    nc.subscribe("t.small", { callback: (_e, m) => got.push(Buffer.from(m.data)) });
    await nc.flush();
    const publish = vi.spyOn(nc, "publish");
    const tight = withRoom(3, (i) => i & 0xff, 1000);
    publishInPlace(nc, "t.small", tight, 3);
    expect(publish).toHaveBeenCalledTimes(1);
    // The bytes before the payload are not the caller's to lose when the fallback is taken.
    expect(Buffer.from(tight.buffer, tight.byteOffset - 3, 3).equals(Buffer.from([0xee, 0xee, 0xee]))).toBe(true);
    const max = nc.info!.max_payload;
    const huge = withRoom(64, () => 1, max + 1);
    expect(() => publishInPlace(nc, "t.small", huge, 64)).toThrow(/max_payload/);
    publish.mockRestore();
    await nc.flush();
    await waitFor("the fallback message", () => got.length === 1, 5000);
    expect(got[0].equals(Buffer.from(tight))).toBe(true);
    await nc.close();
  });

  it("refuses what nc.publish refuses: a subject with whitespace, a closed client", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "in-place-closed" });
    const data = withRoom(64, () => 2, 10);
    expect(() => publishInPlace(nc, "t.bad subject", data, 64)).toThrow(/subject/);
    expect(() => publishInPlace(nc, "", data, 64)).toThrow(/subject/);
    await nc.close();
    expect(() => publishInPlace(nc, "t.closed", data, 64)).toThrow(/closed/);
  });
});
