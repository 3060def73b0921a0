// Runs inside a network namespace (ip netns exec): captures on an interface
// with the built addon and prints what it saw as one JSON line.
import { openAfPacket } from "../../dist/index.js";

const [iface, durationMs, optsJson] = process.argv.slice(2);
let source;
try {
  source = openAfPacket(iface, JSON.parse(optsJson ?? "{}"));
} catch (err) {
  process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message } }) + "\n");
  process.exit(0);
}
process.stdout.write("ready\n");
const frames = [];
setTimeout(() => source.end(), Number(durationMs));
for await (const b of source) {
  const buf = b.records;
  let p = 0;
  while (p < buf.length) {
    const capLen = buf.readUInt16LE(p + 16);
    const family = buf[p + 19];
    const d = buf.subarray(p + 24, p + 24 + capLen);
    const v4 = family === 4;
    const addr = (o, n) => (v4 ? [...d.subarray(o, o + n)].join(".") : d.subarray(o, o + n).toString("hex"));
    frames.push({
      shard: b.shard,
      ifindex: buf.readUInt32LE(p + 8),
      origLen: buf.readUInt32LE(p + 12),
      capLen,
      direction: buf[p + 18],
      family,
      proto: v4 ? d[9] : d[6],
      src: addr(v4 ? 12 : 8, v4 ? 4 : 16),
      dst: addr(v4 ? 16 : 24, v4 ? 4 : 16),
      sport: v4 && (d[9] === 17 || d[9] === 6) ? d.readUInt16BE((d[0] & 15) * 4) : 0,
    });
    p += 24 + capLen;
  }
}
process.stdout.write(JSON.stringify({ frames, stats: source.stats() }) + "\n");
