import { z } from "zod";

/** Frames are spread over this many shards unless configured; capture and every detector must agree. */
export const DEFAULT_SHARD_COUNT = 16;
/** One limit for capture and the detectors: a detector keeps state per shard. */
export const MAX_SHARD_COUNT = 4096;

/** The `shardCount` key of the capture, pst and som sections. */
export const shardCountSchema = z.number().int().min(1).max(MAX_SHARD_COUNT);
