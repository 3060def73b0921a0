import { join } from "node:path";
import { RecordCursor, RecordWriter, shardOf } from "@vigil/frames";
import type { Verdict } from "@vigil/proto";
import { SomModel, TrafficSynth, WindowPipeline, type DetectorSettings, type JudgedWindow } from "../../src/index.js";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { createLogger } from "@vigil/lifecycle";
import { Prng, SomService, createSomMetrics, loadModelWithFeedback, somSchema, type SomConfig, type SomMetrics } from "../../src/index.js";
import type { EndOfStream } from "@vigil/proto";

export const DEFAULT_MODEL = join(import.meta.dirname, "../../models/default");
export const T0 = 1_800_000_000;

let cached: SomModel | null = null;
/** A fresh copy of the shipped default model. */
export function defaultModel(): SomModel {
  cached ??= SomModel.load(DEFAULT_MODEL);
  return new SomModel(structuredClone(cached.toJSON()));
}

export function judge(records: Uint8Array, model = defaultModel(), settings?: Partial<DetectorSettings>) {
  const verdicts: Verdict[] = [];
  const windows: JudgedWindow[] = [];
  const p = new WindowPipeline({
    model,
    sourceId: "test",
    instance: "t",
    settings,
    hooks: { onVerdict: (v) => verdicts.push(v), onWindow: (w) => windows.push(w) },
  });
  p.ingestRecords(records);
  p.finish();
  return { verdicts, windows, pipeline: p };
}

/** Benign background around an attack, as one capture. */
export function scenario(seed: number, attack: (s: TrafficSynth) => void, opts: { directions?: boolean; seconds?: number } = {}): Uint8Array {
  const s = new TrafficSynth({ seed, directions: opts.directions ?? true });
  s.benign(T0, opts.seconds ?? 60);
  attack(s);
  return s.records();
}

/** Splits records into per-shard record buffers by the remote address, as capture does. */
export function splitShards(records: Uint8Array, shardCount: number): Uint8Array[][] {
  const writers = Array.from({ length: shardCount }, () => new RecordWriter());
  const batches: Uint8Array[][] = Array.from({ length: shardCount }, () => []);
  const c = new RecordCursor().reset(records);
  while (c.next()) {
    const b = c.buf;
    const off = c.dataOffset;
    let shard = 0;
    if (c.capLen >= 20 && b[off] >> 4 === 4) shard = shardOf(c.direction, b, off + 12, off + 16, 4, shardCount);
    else if (c.capLen >= 40 && b[off] >> 4 === 6) shard = shardOf(c.direction, b, off + 8, off + 24, 16, shardCount);
    const w = writers[shard];
    w.append({ ...c.toRecord(), origLen: c.origLen });
    if (w.byteLength > 32768) {
      batches[shard].push(w.bytes().slice());
      w.clear();
    }
  }
  writers.forEach((w, i) => w.count && batches[i].push(w.bytes().slice()));
  return batches;
}


/**
 * Publishes a capture as capture would: per-shard batches, each shard's in
 * order but the shards interleaved in a seeded random order (so one shard's
 * batch may run far ahead of another's), then end_of_stream on every shard.
 */
export async function replay(nc: NatsConnection, sourceId: string, records: Uint8Array, shardCount = 16, seed = 1, replayMark = false): Promise<number> {
  const perShard = splitShards(records, shardCount);
  const prng = new Prng(seed);
  const next = perShard.map(() => 0);
  let frames = 0;
  const totals = perShard.map(() => 0);
  for (;;) {
    const open = perShard.map((b, i) => (next[i] < b.length ? i : -1)).filter((i) => i >= 0);
    if (open.length === 0) break;
    const shard = open[prng.int(open.length)];
    const rec = perShard[shard][next[shard]++];
    const n = countRecords(rec);
    totals[shard] += n;
    frames += n;
    nc.publish(
      subjects.frames(shard),
      codecs.frameBatch.encode({ sourceId, seq: next[shard], shard, shardCount, frameCount: n, records: Buffer.from(rec), droppedBefore: 0, endOfStream: false, framesTotal: 0, replay: replayMark }),
    );
  }
  for (let shard = 0; shard < shardCount; shard++)
    nc.publish(
      subjects.frames(shard),
      codecs.frameBatch.encode({ sourceId, seq: next[shard] + 1, shard, shardCount, frameCount: 0, records: Buffer.alloc(0), droppedBefore: 0, endOfStream: true, framesTotal: totals[shard], replay: replayMark }),
    );
  await nc.flush();
  return frames;
}

function countRecords(buf: Uint8Array): number {
  let n = 0;
  const c = new RecordCursor().reset(buf);
  while (c.next()) n++;
  return n;
}

export interface Running {
  service: SomService;
  metrics: SomMetrics;
  nc: NatsConnection;
  stop(): Promise<void>;
}

export async function startService(url: string, instance: string, stateDir: string, overrides: Partial<SomConfig> = {}): Promise<Running> {
  const config = { ...somSchema.parse({}), idleMs: 10_000, replayIdleMs: 10_000, ...overrides, stateDir };
  const { model, store } = loadModelWithFeedback(DEFAULT_MODEL, stateDir, { rate: config.feedbackRate, radius: config.feedbackRadius });
  const nc = await connectBus({ servers: [url], name: instance });
  const logger = createLogger(`som-test-${instance}`, "warn");
  const metrics = createSomMetrics(instance);
  const service = new SomService({ nc, config, model, feedback: store, instance, logger, metrics });
  service.start();
  return {
    service,
    metrics,
    nc,
    async stop() {
      await service.stop();
      await nc.close();
    },
  };
}

/** Collects verdicts and end-of-stream reports from the bus. */
export class Collector {
  verdicts: Verdict[] = [];
  eos: EndOfStream[] = [];
  constructor(nc: NatsConnection) {
    nc.subscribe(subjects.verdicts("som"), { callback: (_e, m) => void this.verdicts.push(codecs.verdict.decode(m.data)) });
    nc.subscribe(subjects.endOfStream("som"), { callback: (_e, m) => void this.eos.push(codecs.endOfStream.decode(m.data)) });
  }
  for(sourceId: string): Verdict[] {
    return this.verdicts.filter((v) => v.sourceId === sourceId);
  }
  eosFor(sourceId: string): EndOfStream[] {
    return this.eos.filter((e) => e.sourceId === sourceId);
  }
}
