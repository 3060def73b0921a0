// Runs inside the VM (see lab/vm/capture-e2e.sh): subscribes to every frame
// shard and the capture heartbeat, and counts the frames of the test's flows
// by family, protocol, port, direction and dropped flag. Touches READY_FILE on
// the first capture heartbeat; on SIGUSR1 prints its counts as one JSON line
// and exits.
import { writeFileSync } from "node:fs";
import { codecs, connectBus, subjects } from "@vigil/bus";
import { DIR_EGRESS, DIR_INGRESS, FRAME_F_DROPPED, decodeRecords } from "@vigil/frames";

const [url, readyFile, peer4, peer6] = process.argv.slice(2);
if (!url || !readyFile || !peer4 || !peer6) {
  console.error("usage: frame-counter.mjs NATS_URL READY_FILE PEER_V4 PEER_V6");
  process.exit(2);
}
const peer4Bytes = Uint8Array.from(peer4.split(".").map(Number));

const counts = {};
const bump = (key) => (counts[key] = (counts[key] ?? 0) + 1);
let batches = 0;
let frames = 0;
let loopbackFrames = 0;
let otherFrames = 0;
let droppedBefore = 0;
let seqGaps = 0;
const lastSeq = new Map();
const shardsSeen = new Set();

const sameBytes = (a, off, b) => b.every((x, i) => a[off + i] === x);

function peer6Bytes() {
  // fd98::1 style addresses only: expand "::" into the zero groups.
  const [head, tail] = peer6.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((g) => parseInt(g, 16));
  const out = new Uint8Array(16);
  groups.forEach((g, i) => ((out[2 * i] = g >> 8), (out[2 * i + 1] = g & 0xff)));
  return out;
}
const p6 = peer6Bytes();

function classify(rec) {
  const d = rec.data;
  const dir = rec.direction === DIR_INGRESS ? "in" : rec.direction === DIR_EGRESS ? "out" : "unknown";
  const dropped = rec.flags & FRAME_F_DROPPED ? "dropped" : "passed";
  let fam, proto, l4, remoteIsPeer;
  if (rec.family === 4) {
    fam = "v4";
    proto = d[9];
    l4 = (d[0] & 0x0f) * 4;
    const remoteOff = rec.direction === DIR_INGRESS ? 12 : 16;
    remoteIsPeer = sameBytes(d, remoteOff, peer4Bytes);
    if (d[12] === 127) return void loopbackFrames++;
  } else {
    fam = "v6";
    proto = d[6];
    l4 = 40;
    const remoteOff = rec.direction === DIR_INGRESS ? 8 : 24;
    remoteIsPeer = sameBytes(d, remoteOff, p6);
    if (d.subarray(8, 24).every((b, i) => b === (i === 15 ? 1 : 0))) return void loopbackFrames++;
  }
  if (!remoteIsPeer) return void otherFrames++;
  if (proto === 6 || proto === 17) {
    const sport = (d[l4] << 8) | d[l4 + 1];
    const dport = (d[l4 + 2] << 8) | d[l4 + 3];
    const port = rec.direction === DIR_INGRESS ? dport : sport;
    bump(`${fam}.${proto === 6 ? "tcp" : "udp"}.${port}.${dir}.${dropped}`);
  } else if (proto === 1 || proto === 58) {
    bump(`${fam}.icmp.${d[l4]}.${dir}.${dropped}`);
  } else {
    bump(`${fam}.proto${proto}.${dir}.${dropped}`);
  }
}

const nc = await connectBus({ servers: [url], name: "vm-frame-counter" });
let ready = false;
nc.subscribe(subjects.heartbeat("capture"), {
  callback: (err) => {
    if (err || ready) return;
    ready = true;
    writeFileSync(readyFile, "ready\n");
  },
});
nc.subscribe(subjects.framesAll, {
  callback: (err, msg) => {
    if (err) return;
    const b = codecs.frameBatch.decode(msg.data);
    batches++;
    shardsSeen.add(b.shard);
    droppedBefore += b.droppedBefore;
    const prev = lastSeq.get(b.shard);
    if (prev !== undefined && b.seq !== prev + 1) seqGaps++;
    lastSeq.set(b.shard, b.seq);
    const recs = decodeRecords(b.records);
    if (recs.length !== b.frameCount) counts.frame_count_mismatch = (counts.frame_count_mismatch ?? 0) + 1;
    // The subject's shard must be the shard in the envelope.
    if (msg.subject !== subjects.frames(b.shard)) counts.subject_mismatch = (counts.subject_mismatch ?? 0) + 1;
    for (const r of recs) {
      frames++;
      classify(r);
    }
  },
});
await nc.flush();
process.on("SIGUSR1", async () => {
  await nc.flush();
  console.log(JSON.stringify({ k: "frames", v: { batches, frames, loopbackFrames, otherFrames, droppedBefore, seqGaps, shards: shardsSeen.size, counts } }));
  await nc.close();
  process.exit(0);
});
setTimeout(() => {
  console.log(JSON.stringify({ k: "error", v: "frame-counter: never asked for its counts within 600 s" }));
  process.exit(1);
}, 600_000).unref();
