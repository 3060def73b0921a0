import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A batch as the addon hands it over. */
export interface NativeBatch {
  shard: number;
  /** The records, a view into a buffer that starts with the batch's headroom. */
  records: Uint8Array;
  frameCount: number;
  droppedBefore: number;
}

export interface NativeSourceHandle {
  take(max: number): NativeBatch[];
  finished(): boolean;
  failure(): (Error & { code: string; file?: string; offset?: number }) | null;
  stats(): Record<string, number>;
  end(): void;
  close(): void;
}

interface Addon {
  NativeSource: new (kind: "pcap" | "afpacket" | "ring", target: string, options: object, onSignal: () => void) => NativeSourceHandle;
}

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const addonPath = process.env.VIGIL_PACKET_SOURCES_ADDON ?? join(packageDir, "native/build/Release/vigil_packet_sources.node");

let cached: Addon | null = null;

/** Loads the compiled addon (built by `npm run build:pre` in packages/packet-sources). */
export function addon(): Addon {
  if (cached) return cached;
  if (!existsSync(addonPath))
    throw Object.assign(new Error(`the packet-sources addon is not built (${addonPath} missing): run node scripts/build.mjs`), {
      code: "VIGIL_ERR_ADDON",
    });
  cached = createRequire(import.meta.url)(addonPath) as Addon;
  return cached;
}
