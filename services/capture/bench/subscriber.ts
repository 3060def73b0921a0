// Benchmark consumer, in its own process: counts frames per source on
// vigil.frames.* and prints one JSON line when a source's end-of-stream has
// arrived on every shard.
import { connect } from "@nats-io/transport-node";
import { codecs, subjects } from "@vigil/bus";

const [url, shardsArg] = process.argv.slice(2);
const shards = Number(shardsArg ?? 16);
const nc = await connect({ servers: [url], name: "bench-subscriber" });
const perSource = new Map<string, { frames: number; batches: number; bytes: number; dropped: number; eos: Set<number>; framesTotal: number }>();
nc.subscribe(subjects.framesAll, {
  callback: (err, msg) => {
    if (err) return;
    const b = codecs.frameBatch.decode(msg.data);
    let s = perSource.get(b.sourceId);
    if (!s) perSource.set(b.sourceId, (s = { frames: 0, batches: 0, bytes: 0, dropped: 0, eos: new Set(), framesTotal: 0 }));
    s.frames += b.frameCount;
    s.batches++;
    s.bytes += msg.data.byteLength;
    s.dropped += b.droppedBefore;
    if (b.endOfStream) {
      s.eos.add(b.shard);
      s.framesTotal += b.framesTotal;
      if (s.eos.size === shards) {
        process.stdout.write(`${JSON.stringify({ sourceId: b.sourceId, frames: s.frames, batches: s.batches, bytes: s.bytes, dropped: s.dropped, framesTotal: s.framesTotal })}\n`);
        perSource.delete(b.sourceId);
      }
    }
  },
});
await nc.flush();
process.stdout.write("ready\n");
process.stdin.resume();
process.stdin.on("end", () => void nc.close().then(() => process.exit(0)));
