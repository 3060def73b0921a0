import { connect, type NatsConnection } from "@nats-io/transport-node";
import { codecs, subjects } from "@vigil/bus";
import type { FrameBatch } from "@vigil/proto";

export { expectedRecords, readCaptureFile } from "../../../../packages/packet-sources/test/support/pcap-reader.js";
export { conversationPackets, ether, tempDir, writeCapture } from "../../../../packages/packet-sources/test/support/gen.js";

/** Subscribes to every shard and keeps the decoded batches per source, in arrival order. */
export class FrameSink {
  readonly batches: FrameBatch[] = [];
  private constructor(readonly nc: NatsConnection) {}

  static async open(url: string, reconnectTimeWait = 100): Promise<FrameSink> {
    const nc = await connect({ servers: [url], name: "test-sink", reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait, reconnectJitter: 0 });
    const sink = new FrameSink(nc);
    nc.subscribe(subjects.framesAll, { callback: (err, msg) => !err && sink.batches.push(codecs.frameBatch.decode(msg.data, msg.subject)) });
    await nc.flush();
    return sink;
  }

  of(sourceId: string): FrameBatch[] {
    return this.batches.filter((b) => b.sourceId === sourceId);
  }

  endOfStreamShards(sourceId: string): number {
    return new Set(this.of(sourceId).filter((b) => b.endOfStream).map((b) => b.shard)).size;
  }

  /** Records of each shard concatenated in sequence order. */
  shardRecords(sourceId: string, shardCount: number): Buffer[] {
    const out: Buffer[][] = Array.from({ length: shardCount }, () => []);
    for (const b of [...this.of(sourceId)].sort((x, y) => x.seq - y.seq)) if (!b.endOfStream) out[b.shard].push(Buffer.from(b.records));
    return out.map((p) => Buffer.concat(p));
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
