import { loadConfig, z } from "@vigil/config";

/**
 * How long a stack started by `vigil up` learns the host's own traffic before
 * its automatic blocks take effect (rules.warmup): a day of the host's usual
 * rhythm, backups and monitoring included.
 */
export const UP_WARMUP = "24h";

const warmupOnly = z.object({ rules: z.looseObject({ warmup: z.unknown() }).optional() });

/**
 * The rules service's warm-up under `vigil up`: 24 h unless the configuration
 * file or the environment sets rules.warmup (0 or "off" turns it off). Only a
 * new host warms up: the rules service keeps the start in its store, so later
 * runs continue or skip it.
 */
export function upWarmupEnv(configFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (env.VIGIL_RULES__WARMUP !== undefined) return {};
  try {
    if (loadConfig(warmupOnly, { file: configFile ?? env.VIGIL_CONFIG, env: {} }).rules?.warmup !== undefined) return {};
  } catch {
    // An unreadable file is the rules service's to report, with its own words.
  }
  return { VIGIL_RULES__WARMUP: UP_WARMUP };
}
