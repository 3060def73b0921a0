// Runs inside a network namespace: subscribes to vigil.frames.* and
// vigil.heartbeat.capture on the namespace's nats-server, prints "ready",
// and after DURATION_MS one JSON line with what arrived.
import { connect } from "@nats-io/transport-node";
import { codecs, subjects } from "@vigil/bus";

const [url, durationMs] = process.argv.slice(2);
let nc;
for (let i = 0; ; i++) {
  try {
    nc = await connect({ servers: [url], name: "netns-sink" });
    break;
  } catch (err) {
    if (i > 100) throw err;
    await new Promise((r) => setTimeout(r, 50));
  }
}
const frames = [];
const batches = [];
let heartbeats = 0;
nc.subscribe(subjects.framesAll, {
  callback: (_e, m) => {
    const b = codecs.frameBatch.decode(m.data);
    batches.push({ shard: b.shard, seq: b.seq, frameCount: b.frameCount, sourceId: b.sourceId });
    const r = Buffer.from(b.records);
    for (let p = 0; p < r.length; ) {
      const cap = r.readUInt16LE(p + 16);
      const fam = r[p + 19];
      const d = r.subarray(p + 24, p + 24 + cap);
      const v4 = fam === 4;
      const addr = (o, n) => (v4 ? [...d.subarray(o, o + n)].join(".") : d.subarray(o, o + n).toString("hex"));
      frames.push({ shard: b.shard, direction: r[p + 18], family: fam, proto: v4 ? d[9] : d[6], src: addr(v4 ? 12 : 8, v4 ? 4 : 16), dst: addr(v4 ? 16 : 24, v4 ? 4 : 16) });
      p += 24 + cap;
    }
  },
});
nc.subscribe(subjects.heartbeat("capture"), { callback: () => heartbeats++ });
await nc.flush();
process.stdout.write("ready\n");
await new Promise((r) => setTimeout(r, Number(durationMs)));
await nc.close();
process.stdout.write(JSON.stringify({ frames, batches, heartbeats }) + "\n");
