import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ConsoleLogin {
  token: string;
  /** Holds the token (mode 0600): the console reads it from console.tokenFile. */
  tokenFile: string;
}

/**
 * A fresh console login token for this run of a launcher, written for the
 * console to read; the launcher prints the login link carrying it, as Jupyter
 * does. A new run makes the old link useless.
 */
export function freshConsoleLogin(dir: string): ConsoleLogin {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const token = randomBytes(24).toString("base64url");
  const tokenFile = join(dir, "console.token");
  writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
  return { token, tokenFile };
}
