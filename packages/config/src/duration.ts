import { z } from "zod";

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
/** Longer than any warm-up or timeout an operator means; a typo like "240000h" is refused. */
const MAX_DURATION_S = 366 * 86_400;

/**
 * A duration as written in the configuration, in whole seconds: a number of
 * seconds, or text like "90s", "30m", "24h", "7d", "1h30m"; 0, "0", "off" and
 * false mean none. Returns null for anything else.
 */
export function parseConfigDuration(value: unknown): number | null {
  if (value === false) return 0;
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 && value <= MAX_DURATION_S ? value : null;
  if (typeof value !== "string") return null;
  const text = value.trim().toLowerCase();
  if (text === "off" || text === "0") return 0;
  if (!/^(\d+[smhd])+$/.test(text)) return null;
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([smhd])/g)) total += Number(n) * UNIT_S[unit!]!;
  return total <= MAX_DURATION_S ? total : null;
}

/**
 * A configuration key holding a duration (see parseConfigDuration), `fallback` when absent; parsed to whole
 * seconds. The default sits before the parsing, so the configuration reference shows it as written.
 */
export const durationSchema = (fallback: number | string | false) =>
  z
    .union([z.number(), z.string(), z.literal(false)])
    .default(fallback)
    .transform((value, ctx) => {
      const s = parseConfigDuration(value);
      if (s !== null) return s;
      ctx.addIssue({
        code: "custom",
        message: `${JSON.stringify(value)} is not a duration: whole seconds, or like "90s", "30m", "24h", "7d" (at most 366d); 0 or "off" for none`,
      });
      return z.NEVER;
    });
