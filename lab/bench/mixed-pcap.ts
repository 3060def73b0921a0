// The benchmark's capture with realistic connection structure: every capture
// of lab/captures/eval (benign traffic and the lab's attacks against the
// victim) laid over one another by capture time, the mix repeated until it
// holds the requested number of frames. Each repetition starts a second after
// the longest capture of the previous one ended, so flows never overlap their
// own copies; addresses are kept, so the victim stays the protected host.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LINKTYPE, PcapWriter } from "@vigil/packet-sources";

interface Rec {
  /** Nanoseconds from the start of its capture. */
  rel: bigint;
  data: Buffer;
}

/** The records of a classic pcap file (micro- or nanosecond, little-endian, Ethernet). */
export function readPcap(file: string): Rec[] {
  const buf = readFileSync(file);
  const magic = buf.readUInt32LE(0);
  const nano = magic === 0xa1b23c4d;
  if (!nano && magic !== 0xa1b2c3d4) throw new Error(`${file}: not a little-endian pcap file (magic ${magic.toString(16)})`);
  if (buf.readUInt32LE(20) !== LINKTYPE.ETHERNET) throw new Error(`${file}: link type ${buf.readUInt32LE(20)}, only Ethernet is mixed`);
  const out: Rec[] = [];
  let first: bigint | null = null;
  for (let off = 24; off + 16 <= buf.length; ) {
    const ts = BigInt(buf.readUInt32LE(off)) * 1_000_000_000n + BigInt(buf.readUInt32LE(off + 4)) * (nano ? 1n : 1000n);
    const len = buf.readUInt32LE(off + 8);
    if (off + 16 + len > buf.length) break;
    first ??= ts;
    out.push({ rel: ts - first, data: buf.subarray(off + 16, off + 16 + len) });
    off += 16 + len;
  }
  return out;
}

export interface MixedCapture {
  path: string;
  frames: number;
  repetitions: number;
  sources: string[];
  /** The protected addresses (labels.json "local"). */
  local: string[];
}

export function generateMixedCapture(evalDir: string, path: string, frames: number): MixedCapture {
  const sources = readdirSync(evalDir).filter((f) => f.endsWith(".pcap")).sort();
  const labels = JSON.parse(readFileSync(join(evalDir, "labels.json"), "utf8")) as { local: string[] };
  const merged: Rec[] = [];
  let span = 0n;
  for (const f of sources) {
    const recs = readPcap(join(evalDir, f));
    merged.push(...recs);
    if (recs.length && recs.at(-1)!.rel > span) span = recs.at(-1)!.rel;
  }
  merged.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  if (!merged.length) throw new Error(`${evalDir}: no captures to mix`);
  const period = span + 1_000_000_000n;
  const base = 1_800_000_000_000_000_000n;
  const w = new PcapWriter(path, LINKTYPE.ETHERNET);
  let rep = 0;
  for (; w.packets < frames; rep++) {
    for (const r of merged) {
      if (w.packets >= frames) break;
      w.write(base + BigInt(rep) * period + r.rel, r.data);
    }
  }
  w.close();
  return { path, frames: w.packets, repetitions: rep, sources, local: labels.local };
}
