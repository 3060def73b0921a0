import { parseCidr } from "@vigil/frames";
import { addon, type NativeBatch, type NativeSourceHandle } from "./native.js";

export { addon } from "./native.js";
export { PcapWriter, LINKTYPE } from "./pcap-writer.js";

/** Frame records of one shard, packed as described in packages/frames/README.md. */
export interface SourceBatch {
  shard: number;
  records: Buffer;
  frameCount: number;
  /** Frames of this shard lost since its previous batch (the consumer fell behind a live source). */
  droppedBefore: number;
  /**
   * Free bytes before `records` in `records.buffer` (the `headroom` option): a
   * publisher may write an envelope there and send it with the records without a copy.
   */
  headroom: number;
}

export interface SourceOptions {
  /** Shards frames are split into by remote address (default 16). */
  shardCount?: number;
  /** A shard's batch is handed over when the next record would make it larger (default 65536). */
  batchBytes?: number;
  /** ... or when its first record is this old (default 5 ms). */
  flushMs?: number;
  /** Local networks: they decide the direction of frames read from files (dst local: ingress, src local: egress). */
  local?: string[];
  /** tcpdump filter syntax. */
  filter?: string;
  /** Bytes kept from the IP header on (default 128). */
  snaplen?: number;
  /**
   * Keep only the IP header (IPv6: with its extension headers) and the transport header, at most
   * snaplen bytes (default false). A packet whose headers cannot be measured keeps snaplen bytes.
   */
  headersOnly?: boolean;
  /** Batches queued for JavaScript before a live source drops (or a file source waits); default 256. */
  maxQueuedBatches?: number;
  /** Free bytes to keep before each batch's records (see SourceBatch.headroom); default 0. */
  headroom?: number;
}

export interface PcapOptions extends SourceOptions {
  /** 0: as fast as possible (default); 1: the recorded pace; 10: ten times faster. */
  speed?: number;
}

export interface AfPacketOptions extends SourceOptions {
  /** Join this PACKET_FANOUT group (hash mode) to share the interface with other capture processes. */
  fanoutGroup?: number;
  /** TPACKET_V3 block size (default 1 MiB) and count (default 64). */
  blockBytes?: number;
  blockCount?: number;
}

export interface KernelRingOptions extends SourceOptions {
  /** The ring device, or a file laid out the same way (default /dev/vigil). */
  device?: string;
}

export interface PacketSource extends AsyncIterable<SourceBatch> {
  readonly kind: "pcap" | "afpacket" | "kernel";
  /** The file, interface or device read. */
  readonly target: string;
  /** Counters of the native reader (frames_captured, ring_drops, queue_drops, skipped_non_ip, ...). */
  stats(): Record<string, number>;
  /** Stops reading; frames already read are still delivered (open batches flushed), then the iteration ends. */
  end(): void;
  /** Stops the reader thread at once; batches not yet taken are discarded. */
  close(): Promise<void>;
}

/** An error of a packet source: code VIGIL_ERR_*, and for capture files the file and byte offset. */
export class PacketSourceError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly file?: string,
    readonly offset?: number,
  ) {
    super(message);
    this.name = "PacketSourceError";
  }
}

export const DEFAULT_KERNEL_DEVICE = "/dev/vigil";

function fromNative(err: unknown): unknown {
  const e = err as { code?: unknown; message?: string; file?: string; offset?: number };
  if (e && typeof e.code === "string" && e.code.startsWith("VIGIL_ERR_"))
    return new PacketSourceError(e.message ?? String(err), e.code, e.file, e.offset);
  return err;
}

function intOption(name: string, value: number | undefined, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  if (!Number.isInteger(value) || value < min || value > max)
    throw new PacketSourceError(`${name} must be an integer in ${min}..${max}, got ${value}`, "VIGIL_ERR_OPTIONS");
  return value;
}

function boolOption(name: string, value: boolean | undefined, def: boolean): boolean {
  if (value === undefined) return def;
  if (typeof value !== "boolean") throw new PacketSourceError(`${name} must be true or false, got ${String(value)}`, "VIGIL_ERR_OPTIONS");
  return value;
}

function nativeOptions(opts: SourceOptions & { speed?: number }): Record<string, unknown> {
  const local = (opts.local ?? []).map((text) => {
    try {
      const c = parseCidr(text.trim());
      return { bytes: Buffer.from(c.bytes), prefix: c.prefix };
    } catch (err) {
      throw new PacketSourceError(`local network: ${(err as Error).message}`, "VIGIL_ERR_OPTIONS");
    }
  });
  const speed = opts.speed ?? 0;
  if (typeof speed !== "number" || !Number.isFinite(speed) || speed < 0)
    throw new PacketSourceError(`speed must be a number >= 0 (0: as fast as possible), got ${speed}`, "VIGIL_ERR_OPTIONS");
  return {
    shardCount: intOption("shardCount", opts.shardCount, 16, 1, 65536),
    batchBytes: intOption("batchBytes", opts.batchBytes, 65536, 256, 64 << 20),
    flushMs: intOption("flushMs", opts.flushMs, 5, 1, 60_000),
    snaplen: intOption("snaplen", opts.snaplen, 128, 1, 65535),
    headersOnly: boolOption("headersOnly", opts.headersOnly, false),
    maxQueuedBatches: intOption("maxQueuedBatches", opts.maxQueuedBatches, 256, 1, 1 << 20),
    headroom: intOption("headroom", opts.headroom, 0, 0, 4096),
    speed,
    local,
    filter: opts.filter ?? "",
  };
}

class NativePacketSource implements PacketSource {
  private readonly handle: NativeSourceHandle;
  private pending: NativeBatch[] = [];
  private next = 0;
  private wake: (() => void) | null = null;
  private closed = false;
  private iterating = false;

  constructor(
    readonly kind: PacketSource["kind"],
    readonly target: string,
    nativeKind: "pcap" | "afpacket" | "ring",
    options: Record<string, unknown>,
  ) {
    const Native = addon().NativeSource;
    try {
      this.handle = new Native(nativeKind, target, options, () => this.signal());
    } catch (err) {
      throw fromNative(err);
    }
  }

  private signal(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SourceBatch> {
    if (this.iterating) throw new PacketSourceError("a packet source can be iterated only once at a time", "VIGIL_ERR_USAGE");
    this.iterating = true;
    let completed = false;
    try {
      for (;;) {
        if (this.next === this.pending.length) {
          if (this.closed) return;
          // Read "finished" before taking: every batch is queued before the flag is set.
          const finished = this.handle.finished();
          this.pending = this.handle.take(64);
          this.next = 0;
          if (this.pending.length === 0) {
            if (finished) {
              completed = true;
              const failure = this.handle.failure();
              if (failure) throw fromNative(failure);
              return;
            }
            await new Promise<void>((resolve) => (this.wake = resolve));
            continue;
          }
        }
        const n = this.pending[this.next];
        this.pending[this.next++] = undefined as never;
        yield {
          shard: n.shard,
          records: Buffer.from(n.records.buffer, n.records.byteOffset, n.records.byteLength),
          frameCount: n.frameCount,
          droppedBefore: n.droppedBefore,
          headroom: n.records.byteOffset,
        };
      }
    } finally {
      this.iterating = false;
      if (!completed) await this.close();
    }
  }

  stats(): Record<string, number> {
    return this.handle.stats();
  }

  end(): void {
    if (!this.closed) this.handle.end();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
    this.pending = [];
    this.next = 0;
    this.signal();
  }
}

/** Reads a pcap or pcapng file (chosen by magic number), optionally at the recorded pace. */
export function openPcap(path: string, opts: PcapOptions = {}): PacketSource {
  return new NativePacketSource("pcap", path, "pcap", nativeOptions(opts));
}

/** Captures live on an interface through a TPACKET_V3 ring (needs CAP_NET_RAW). */
export function openAfPacket(iface: string, opts: AfPacketOptions = {}): PacketSource {
  const o = nativeOptions(opts);
  if (opts.fanoutGroup !== undefined) o.fanoutGroup = intOption("fanoutGroup", opts.fanoutGroup, 0, 0, 65535);
  if (opts.blockBytes !== undefined) o.blockBytes = intOption("blockBytes", opts.blockBytes, 1 << 20, 4096, 1 << 30);
  if (opts.blockCount !== undefined) o.blockCount = intOption("blockCount", opts.blockCount, 64, 2, 65536);
  return new NativePacketSource("afpacket", iface, "afpacket", o);
}

/** Drains the vigil kernel module's per-CPU rings (/dev/vigil), or a file laid out the same way. */
export function openKernelRing(opts: KernelRingOptions = {}): PacketSource {
  const device = opts.device ?? DEFAULT_KERNEL_DEVICE;
  return new NativePacketSource("kernel", device, "ring", nativeOptions(opts));
}

/**
 * Every record of a capture file as packed record buffers, in file order (one
 * shard): for training and evaluation tools. A corrupt file ends the iteration
 * with a PacketSourceError (code VIGIL_ERR_PCAP, file, offset) after the
 * records read before the fault.
 */
export async function* readPcapRecords(
  path: string,
  opts: { local?: string[]; filter?: string; snaplen?: number; headersOnly?: boolean } = {},
): AsyncGenerator<Buffer> {
  const source = openPcap(path, { ...opts, shardCount: 1, speed: 0 });
  try {
    for await (const batch of source) yield batch.records;
  } finally {
    await source.close();
  }
}
