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
    // Described with describe(): the configuration reference reads them from the schema, wherever it is used.
    highLagSeconds: z.number().positive().default(0.5).describe("Lag above the usual (seconds) that, held for stepSeconds, steps shedding up a level."),
    lowLagSeconds: z.number().nonnegative().default(0.1).describe("Lag above the usual (seconds) that, held for stepSeconds, steps shedding down a level; below highLagSeconds."),
    stepSeconds: z.number().positive().default(1).describe("Seconds a mark must stay crossed before each step, up or down."),
    baselineSeconds: z
      .number()
      .positive()
      .default(60)
      .describe("Seconds over which the smallest lag (the usual one, clock skew between hosts included) is remembered; not renewed while shedding."),
    force: z
      .number()
      .int()
      .min(0)
      .max(MAX_SHED_LEVEL)
      .optional()
      .describe("A fixed level 0..4 (keep 1/2^level of the established flows) for every batch, replays included: evaluation and tests. Unset: by lag, live traffic only."),
  })
  .refine((s) => s.lowLagSeconds < s.highLagSeconds, { message: "lowLagSeconds must be below highLagSeconds", path: ["lowLagSeconds"] });

export type SheddingConfig = z.infer<typeof sheddingSchema>;

export const DEFAULT_SHEDDING: SheddingConfig = sheddingSchema.parse({});
