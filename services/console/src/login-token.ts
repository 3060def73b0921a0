import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ConsoleConfig } from "./config.js";

export class ConsoleAuthError extends Error {
  readonly code = "VIGIL_ERR_CONFIG";
}

/** Where a console that was given no token keeps the one it made (0600), for its operator to read. */
export function generatedTokenFile(stateDir: string): string {
  return join(stateDir, "console-login.token");
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new ConsoleAuthError(`console.tokenFile: cannot read ${file}: ${(err as Error).message}`);
  }
  if (token.length < 12) throw new ConsoleAuthError(`console.tokenFile: the token in ${file} is shorter than 12 characters`);
  return token;
}

/**
 * The token every request must carry, or null with `console.auth: none` (labs).
 * Login is required by default, on loopback too: a console runs as a user that
 * can reach the rules service, and must not lend that to every local user.
 * Without console.token or console.tokenFile a token is made once and kept in
 * the state directory (like Jupyter's); `vigil up` hands a fresh one in and
 * prints the login link.
 */
export function consoleToken(cfg: ConsoleConfig, stateDir: string): { token: string | null; generatedIn?: string } {
  if (cfg.auth === "none") return { token: null };
  if (cfg.token) return { token: cfg.token };
  if (cfg.tokenFile) return { token: readToken(cfg.tokenFile) };
  const file = generatedTokenFile(stateDir);
  if (existsSync(file)) return { token: readToken(file), generatedIn: file };
  const token = randomBytes(24).toString("base64url");
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, token + "\n", { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, generatedIn: file };
}
