import { z } from "zod";

/** Levels of load shedding: level n keeps 1/2^n of the established flows (see @vigil/shards load-shedding). */
export const MAX_SHED_LEVEL = 4;

/**
 * The `shedding` key of the pst and som sections: when a detector falls behind live traffic it
 * samples the segments of established TCP flows (never connection events nor anything but TCP).
 * Its lag is the wall time since the capture of a batch's newest frame, above the smallest lag seen
 * lately for the source (so that clock skew between hosts does not count).
 */
export const sheddingSchema = z
  .strictObject({
    /** Lag above the usual (seconds) that, held for stepSeconds, steps shedding up a level. */
    highLagSeconds: z.number().positive().default(0.5),
    /** Lag above the usual (seconds) that, held for stepSeconds, steps shedding down a level. */
    lowLagSeconds: z.number().nonnegative().default(0.1),
    /** Seconds a mark must stay crossed before each step, up or down. */
    stepSeconds: z.number().positive().default(1),
    /** Seconds over which the smallest lag (the usual, skew included) is remembered while nothing is shed. */
    baselineSeconds: z.number().positive().default(60),
    /** A fixed level 0..4 for every batch, replays included (evaluation and tests); unset: by lag, live traffic only. */
    force: z.number().int().min(0).max(MAX_SHED_LEVEL).optional(),
  })
  .refine((s) => s.lowLagSeconds < s.highLagSeconds, { message: "lowLagSeconds must be below highLagSeconds", path: ["lowLagSeconds"] });

export type SheddingConfig = z.infer<typeof sheddingSchema>;

export const DEFAULT_SHEDDING: SheddingConfig = sheddingSchema.parse({});
