import { DEFAULT_PORTS, DEFAULT_SHARD_COUNT, loadConfig, natsSchema, shardCountSchema, warnRenamedKey, z, type LoadOptions } from "@vigil/config";
import { parseCidr } from "@vigil/frames";

const cidr = z.string().superRefine((text, ctx) => {
  try {
    parseCidr(text.trim());
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
  }
});

export const SOURCE_KINDS = ["kernel", "afpacket", "pcap"] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** The `capture` section of vigil.yaml (env: VIGIL_CAPTURE__<KEY>). */
export const captureSectionSchema = z
  .strictObject({
    source: z.enum(SOURCE_KINDS).default("kernel"),
    /** AF_PACKET: the interface to capture on. */
    interface: z.string().min(1).optional(),
    /** Kernel ring: the device (or a file laid out like it). */
    device: z.string().min(1).default("/dev/vigil"),
    /** pcap: the capture file to replay. */
    file: z.string().min(1).optional(),
    /** tcpdump filter syntax. */
    filter: z.string().optional(),
    /** pcap: 0 as fast as possible, 1 recorded pace, 10 ten times faster. */
    speed: z.number().min(0).default(0),
    /** Frame shards; pst and som must use the same number. */
    shardCount: shardCountSchema.default(DEFAULT_SHARD_COUNT),
    /** Deprecated: the old name of shardCount, still accepted. */
    shards: shardCountSchema.optional(),
    batchBytes: z.number().int().min(256).max(16 << 20).default(65536),
    flushMs: z.number().int().min(1).max(60_000).default(5),
    snaplen: z.number().int().min(1).max(65535).default(128),
    /**
     * Records carry the IP header (IPv6: and its extension headers) and the transport header only, at
     * most snaplen bytes. The detectors read nothing past them, and the bus carries about half the
     * bytes. false: snaplen bytes from the IP header on, payload included.
     */
    headersOnly: z.boolean().default(true),
    /** Local networks (CIDRs): give frames read from files a direction. */
    local: z.array(cidr).default([]),
    /** AF_PACKET: PACKET_FANOUT group shared by several capture processes. */
    fanoutGroup: z.number().int().min(0).max(65535).optional(),
    /** Names the stream in every FrameBatch; default "<host>/<source>:<target>". */
    sourceId: z.string().min(1).optional(),
    /** Bytes the NATS client may hold unsent before batches are dropped instead. */
    maxPendingBytes: z.number().int().min(1 << 16).default(32 << 20),
    heartbeatMs: z.number().int().min(100).default(1000),
    metrics: z
      .strictObject({
        host: z.string().default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(DEFAULT_PORTS.captureMetrics),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.source === "afpacket" && !c.interface)
      ctx.addIssue({ code: "custom", path: ["interface"], message: "source afpacket needs an interface" });
    if (c.source === "pcap" && !c.file) ctx.addIssue({ code: "custom", path: ["file"], message: "source pcap needs a file" });
  })
  .transform(({ shards, ...c }) => {
    if (shards === undefined) return c;
    warnRenamedKey("capture.shards", "capture.shardCount");
    return { ...c, shardCount: shards };
  });

export const captureConfigSchema = z.object({
  nats: natsSchema.prefault({}),
  capture: captureSectionSchema.prefault({}),
});

export type CaptureConfig = z.infer<typeof captureConfigSchema>;

export function loadCaptureConfig(opts: LoadOptions = {}): CaptureConfig {
  return loadConfig(captureConfigSchema, opts);
}
