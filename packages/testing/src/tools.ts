import { execFileSync } from "node:child_process";

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
