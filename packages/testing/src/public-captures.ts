import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file lives in packages/testing/src or dist). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * Real captures recorded by others, beside the checkout in ../shared (see its
 * SOURCES.md for attribution). A user's clone has no ../shared: tests that need
 * them skip with the reason returned by publicCapturesSkipReason().
 */
export const publicCapturesDir = process.env.VIGIL_PUBLIC_PCAPS ?? join(repoRoot, "../shared/data/pcaps/public");

export function publicCapture(name: string): string {
  return join(publicCapturesDir, name);
}

export function publicCapturesSkipReason(): string | null {
  return existsSync(join(publicCapturesDir, "SOURCES.md"))
    ? null
    : `public captures not found at ${publicCapturesDir} (they live in ../shared beside the checkout; set VIGIL_PUBLIC_PCAPS to point elsewhere)`;
}
