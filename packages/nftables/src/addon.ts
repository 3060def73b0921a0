import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One libnftables context (native/src/nftables.cc), optionally bound to a network namespace. */
export interface NftContext {
  run(doc: string): Promise<string>;
  close(): void;
}

interface NftAddon {
  NftContext: new (netnsPath?: string) => NftContext;
}

export const addonPath = join(dirname(fileURLToPath(import.meta.url)), "../native/build/Release/vigil_nftables.node");
let addon: NftAddon | null | undefined;
let loadError: string | null = null;

/** The libnftables binding, or null when it is not built here (no libnftables-dev at build time). */
export function loadAddon(): NftAddon | null {
  if (addon === undefined) {
    try {
      addon = existsSync(addonPath) ? (createRequire(import.meta.url)(addonPath) as NftAddon) : null;
      if (!addon) loadError = `the libnftables binding is not built (${addonPath})`;
    } catch (err) {
      addon = null;
      loadError = `the libnftables binding cannot be loaded (${addonPath}): ${(err as Error).message}`;
    }
  }
  return addon;
}

/** Why the in-process libnftables driver cannot be used, or null when it can. */
export function libnftablesUnavailableReason(): string | null {
  return loadAddon() ? null : loadError;
}
