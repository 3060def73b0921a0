import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./public-captures.js";

/**
 * Why a test needing a command-line tool cannot run: "<command> is not
 * installed" (with the hint, such as the deps list naming its package), or
 * null when `command ...versionArgs` runs.
 */
export function toolMissing(command: string, hint = "", versionArgs = ["--version"]): string | null {
  try {
    execFileSync(command, versionArgs, { stdio: "ignore" });
    return null;
  } catch {
    return `${command} is not installed${hint ? ` (${hint})` : ""}`;
  }
}

let guestKernelCache: string | null | undefined;

/**
 * The Debian 6.1 kernel release every VM test boots, chosen in one place: kmod/test/vm/kver.sh ($VIGIL_KVER, else
 * the newest installed one with headers, else Debian's current one, installed). Null when none can be had (not
 * root, or no package). Cached: the script may install a kernel the first time.
 */
export function guestKernel(): string | null {
  if (guestKernelCache !== undefined) return guestKernelCache;
  guestKernelCache = null;
  if (process.getuid?.() !== 0) return guestKernelCache;
  try {
    guestKernelCache = execFileSync(join(repoRoot, "kmod/test/vm/kver.sh"), { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim() || null;
  } catch {
    guestKernelCache = null;
  }
  return guestKernelCache;
}
