import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";

export const SESSION_COOKIE = "vigil_console";
/** Mutating API calls must carry this header: a cross-site form or image cannot set it (CSRF). */
export const CSRF_HEADER = "x-vigil-console";

/**
 * A session is `<expiry>.<nonce>.<MAC>`, keyed by the token: never the token itself, each login
 * its own value, and an expiry the server signed (a client that stretches it breaks the MAC).
 * Rotating the token ends every session.
 */
export function sessionValue(token: string, ttlS: number, now = Date.now()): string {
  const exp = Math.floor(now / 1000) + ttlS;
  const nonce = randomBytes(12).toString("base64url");
  return `${exp}.${nonce}.${sessionMac(token, exp, nonce)}`;
}

function sessionMac(token: string, exp: number, nonce: string): string {
  return createHmac("sha256", token).update(`vigil-console-session-v2|${exp}|${nonce}`).digest("base64url");
}

export function sessionValid(token: string, value: string, now = Date.now()): boolean {
  const [exp, nonce, mac, extra] = value.split(".");
  if (extra !== undefined || !/^[0-9]{1,12}$/.test(exp ?? "") || !nonce || !mac) return false;
  if (Number(exp) <= now / 1000) return false;
  return safeEqual(mac, sessionMac(token, Number(exp), nonce));
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    try {
      out.set(name, decodeURIComponent(raw));
    } catch {
      out.set(name, raw);
    }
  }
  return out;
}

export type AuthResult = { ok: true; via: "none" | "header" | "cookie" | "query" } | { ok: false };

export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  query: URLSearchParams;
}

/**
 * Checks the bearer header, the session cookie, then the ?token= parameter (which the caller
 * passes only for page loads: an API URL with the token would spread it into logs and history).
 */
export function authenticate(token: string | undefined, req: AuthRequest, now = Date.now()): AuthResult {
  if (!token) return { ok: true, via: "none" };
  const auth = req.headers.authorization;
  if (typeof auth === "string" && auth.startsWith("Bearer ") && safeEqual(auth.slice(7).trim(), token)) return { ok: true, via: "header" };
  const cookie = parseCookies(typeof req.headers.cookie === "string" ? req.headers.cookie : undefined).get(SESSION_COOKIE);
  if (cookie && sessionValid(token, cookie, now)) return { ok: true, via: "cookie" };
  const q = req.query.get("token");
  if (q && safeEqual(q, token)) return { ok: true, via: "query" };
  return { ok: false };
}

/** Secure only when this connection is TLS: a client's X-Forwarded-Proto is not trusted. */
export function sessionCookie(token: string, ttlS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${sessionValue(token, ttlS)}; Path=/; Max-Age=${ttlS}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

/** Whether a credential was offered at all: only those count as failed guesses. */
export function credentialOffered(req: AuthRequest): boolean {
  return typeof req.headers.authorization === "string" || req.query.has("token");
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

export function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || host.startsWith("127.") || host === "::ffff:127.0.0.1";
}

export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/** The host name of a Host header, without the port. */
export function hostName(header: string): string {
  if (header.startsWith("[")) {
    const end = header.indexOf("]");
    return end > 0 ? header.slice(0, end + 1) : header;
  }
  const colon = header.lastIndexOf(":");
  return (colon > 0 && !header.slice(0, colon).includes(":") ? header.slice(0, colon) : header).toLowerCase();
}

/**
 * A Host header naming anything but the console's own address is refused:
 * a web page on another origin cannot then reach a loopback console through
 * DNS rebinding. IP literals are always fine (rebinding needs a name).
 */
export function hostAllowed(header: string | undefined, bound: string, extra: string[]): boolean {
  if (!header) return false;
  const name = hostName(header);
  const bare = name.replace(/^\[|\]$/g, "");
  if (extra.includes("*")) return true;
  if (isIP(bare)) return true;
  if (LOOPBACK_NAMES.has(name)) return true;
  if (name === bound.toLowerCase()) return true;
  return extra.some((h) => h.toLowerCase() === name);
}
