import { readFileSync } from "node:fs";
import { credsAuthenticator, type Authenticator } from "@nats-io/transport-node";
import { BusError } from "./errors.js";

/** How a service proves who it is to NATS: the `nats` section's credential keys. */
export interface BusCredentials {
  token?: string;
  user?: string;
  /** A file holding the user's password (one line), readable by the service only. */
  passwordFile?: string;
  /** A NATS credentials file (JWT and nkey seed). */
  credsFile?: string;
}

function readSecret(file: string, key: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new BusError(`nats.${key}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The connect options for a credential; the files are read now, so a missing one fails at start with its key named. */
export function credentialOptions(c: BusCredentials): { token?: string; user?: string; pass?: string; authenticator?: Authenticator } {
  if (c.passwordFile && !c.user) throw new BusError("nats.passwordFile is set but nats.user is not: name the user the password belongs to");
  if (c.credsFile && c.user) throw new BusError("nats.credsFile and nats.user are both set: use one credential");
  const out: { token?: string; user?: string; pass?: string; authenticator?: Authenticator } = {};
  if (c.token) out.token = c.token;
  if (c.user) {
    out.user = c.user;
    if (c.passwordFile) out.pass = readSecret(c.passwordFile, "passwordFile");
  }
  if (c.credsFile) out.authenticator = credsAuthenticator(new TextEncoder().encode(readSecret(c.credsFile, "credsFile")));
  return out;
}
