import { hostname } from "node:os";
import { basename } from "node:path";
import { startHeartbeat, type NatsConnection } from "@vigil/bus";
import { DEFAULT_SHARD_COUNT } from "@vigil/config";
import { instanceId, VERSION, type Logger } from "@vigil/lifecycle";
import { prom } from "@vigil/metrics";
import {
  openAfPacket,
  openKernelRing,
  openPcap,
  PacketSourceError,
  type PacketSource,
  type SourceOptions,
} from "@vigil/packet-sources";
import type { SourceKind } from "./config.js";
import { CaptureMetrics } from "./metrics.js";
import { BatchPublisher } from "./publisher.js";

export interface CaptureOptions {
  source: SourceKind;
  /** pcap: the capture file. */
  file?: string;
  /** afpacket: the interface. */
  interface?: string;
  /** kernel: the ring device or a file laid out like it (default /dev/vigil). */
  device?: string;
  filter?: string;
  speed?: number;
  shardCount?: number;
  batchBytes?: number;
  flushMs?: number;
  snaplen?: number;
  /** Records carry the IP and transport headers only (default true): the detectors read nothing past them. */
  headersOnly?: boolean;
  local?: string[];
  fanoutGroup?: number;
  sourceId?: string;
  /** Unsent bytes the NATS client may hold before batches are dropped (live) or reading waits (file). */
  maxPendingBytes?: number;
  /** The bus connection; the caller owns it (capture flushes it but never closes it). */
  nc: NatsConnection;
  /** Metrics land here; default: a private registry nobody serves. */
  metrics?: CaptureMetrics;
  logger?: Logger;
  /** Heartbeats on vigil.heartbeat.capture every this many ms (0: none). */
  heartbeatMs?: number;
  instance?: string;
  metricsPort?: number;
  /** End of a file replay: how long to wait for NATS to come back before giving up on end-of-stream. */
  endOfStreamWaitMs?: number;
}

export interface CaptureSummary {
  sourceId: string;
  kind: SourceKind;
  framesCaptured: number;
  framesPublished: number;
  framesDropped: number;
  batchesPublished: number;
  bytesPublished: number;
  ringDrops: number;
  /** Frames published per shard (what end-of-stream reported as frames_total). */
  framesPerShard: number[];
  endOfStream: boolean;
  native: Record<string, number>;
  wallMs: number;
}

export interface CaptureHandle {
  readonly sourceId: string;
  /** Resolves when the source ends (file) or after stop(); rejects with the source's error (corrupt file). */
  readonly done: Promise<CaptureSummary>;
  /** Graceful stop: stop reading, publish what was read, flush NATS. */
  stop(): Promise<CaptureSummary>;
  summary(): CaptureSummary;
}

export function defaultSourceId(opts: Pick<CaptureOptions, "source" | "file" | "interface" | "device">): string {
  const target =
    opts.source === "pcap" ? basename(opts.file ?? "") : opts.source === "afpacket" ? (opts.interface ?? "") : (opts.device ?? "/dev/vigil");
  return `${hostname()}/${opts.source}:${target}`;
}

function openSource(opts: CaptureOptions, headroom: number): PacketSource {
  const common: SourceOptions = {
    headroom,
    shardCount: opts.shardCount ?? DEFAULT_SHARD_COUNT,
    batchBytes: opts.batchBytes ?? 65536,
    flushMs: opts.flushMs ?? 5,
    snaplen: opts.snaplen ?? 128,
    headersOnly: opts.headersOnly ?? true,
    local: opts.local ?? [],
    filter: opts.filter || undefined,
  };
  switch (opts.source) {
    case "pcap":
      if (!opts.file) throw new PacketSourceError("source pcap needs a file", "VIGIL_ERR_USAGE");
      return openPcap(opts.file, { ...common, speed: opts.speed ?? 0 });
    case "afpacket":
      if (!opts.interface) throw new PacketSourceError("source afpacket needs an interface", "VIGIL_ERR_USAGE");
      return openAfPacket(opts.interface, { ...common, fanoutGroup: opts.fanoutGroup });
    case "kernel":
      return openKernelRing({ ...common, device: opts.device });
  }
}

/**
 * Starts capturing: opens the source (throwing its error at once: unknown
 * interface, missing /dev/vigil, unreadable file) and publishes its batches
 * until the source ends or stop() is called. A file replay ends with an
 * end-of-stream FrameBatch on every shard, also after a corrupt record (the
 * frames before it are published, then `done` rejects with the error).
 */
export function startCapture(opts: CaptureOptions): CaptureHandle {
  const log = opts.logger;
  const metrics = opts.metrics ?? new CaptureMetrics(new prom.Registry());
  const sourceId = opts.sourceId ?? defaultSourceId(opts);
  const shardCount = opts.shardCount ?? DEFAULT_SHARD_COUNT;
  // Room for the envelope before each batch (a very long source id falls back to a copy).
  const finite = opts.source === "pcap";
  const publisher = new BatchPublisher(
    opts.nc,
    sourceId,
    shardCount,
    opts.batchBytes ?? 65536,
    opts.maxPendingBytes ?? 32 << 20,
    metrics,
    log,
    finite,
  );
  const source = openSource(opts, Math.min(4096, publisher.headroomNeeded));
  const started = Date.now();
  let endOfStream = false;
  let stopping = false;
  const instance = opts.instance ?? instanceId("capture");

  const summary = (): CaptureSummary => {
    const native = source.stats();
    const totals = publisher.totals();
    return {
      sourceId,
      kind: opts.source,
      framesCaptured: native.frames_captured ?? 0,
      framesPublished: totals.reduce((a, t) => a + t.framesPublished, 0),
      framesDropped: totals.reduce((a, t) => a + t.framesDropped, 0) + (native.queue_drops ?? 0),
      batchesPublished: publisher.batchesPublished,
      bytesPublished: publisher.bytesPublished,
      ringDrops: native.ring_drops ?? 0,
      framesPerShard: totals.map((t) => t.framesPublished),
      endOfStream,
      native,
      wallMs: Date.now() - started,
    };
  };

  const sync = () => {
    metrics.syncNative(opts.source, source.stats());
    metrics.busConnected.set(publisher.connected() ? 1 : 0);
  };
  metrics.initSource(opts.source);
  metrics.onCollect = sync;

  const traffic = () => {
    const s = summary();
    return { frames: s.framesCaptured, lost: s.framesDropped + s.ringDrops };
  };
  const heartbeatMs = opts.heartbeatMs ?? 0;
  // Beats are skipped while disconnected rather than queued behind the frames.
  const heartbeat =
    heartbeatMs > 0
      ? startHeartbeat(opts.nc, { service: "capture", instance, version: VERSION, metricsPort: opts.metricsPort, traffic, intervalMs: heartbeatMs, canSend: () => publisher.connected(), logger: log })
      : null;

  const pump = async (): Promise<CaptureSummary> => {
    let failure: unknown = null;
    try {
      for await (const batch of source) {
        if (finite && publisher.connected() && publisher.backedUp()) await publisher.waitForRoom();
        publisher.publish(batch);
      }
    } catch (err) {
      failure = err;
    }
    if (finite && !stopping) {
      // Downstream judges what is pending for this source when it sees end-of-stream:
      // publish it after the last batch, even after a corrupt record.
      if (await publisher.waitConnected(opts.endOfStreamWaitMs ?? 30_000)) {
        publisher.publishEndOfStream();
        endOfStream = true;
      } else {
        log?.error({ sourceId }, "NATS unreachable at the end of the replay: end-of-stream not published");
      }
    }
    try {
      if (publisher.connected()) await opts.nc.flush();
    } catch (err) {
      log?.warn({ err }, "NATS flush failed");
    }
    metrics.onCollect = null;
    await heartbeat?.stop();
    sync();
    const result = summary();
    await source.close();
    if (failure) throw failure;
    log?.info({ ...result, native: undefined, framesPerShard: undefined }, "capture finished");
    return result;
  };

  const done = pump();
  done.catch(() => undefined);
  return {
    sourceId,
    done,
    summary,
    async stop() {
      stopping = true;
      source.end();
      return done;
    },
  };
}

/** Runs a capture to its end (a file) or until the signal aborts (live sources). */
export async function runCapture(opts: CaptureOptions & { signal?: AbortSignal }): Promise<CaptureSummary> {
  const handle = startCapture(opts);
  const onAbort = () => void handle.stop();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await handle.done;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
