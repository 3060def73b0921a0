import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import pino from "pino";
import { createLogger, type Logger } from "@vigil/lifecycle";
import { consoleSchema, createConsoleServer, type ConsoleServer } from "../src/index.js";

// F23: the console's session is hardened against the attacks the security review lists.
const tmp: string[] = [];
afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));
const TOKEN = "a-long-console-token-for-f23";

async function start(extra: object = {}, logger: Logger = createLogger("console-session", "silent")): Promise<ConsoleServer> {
  const state = mkdtempSync(join(tmpdir(), "vigil-console-session-"));
  tmp.push(state);
  const config = consoleSchema.parse({ port: 0, token: TOKEN, rules: { address: "unix:/nonexistent/control.sock", timeoutMs: 300 }, ...extra });
  return createConsoleServer({ config, logger, nats: null, env: { VIGIL_STATE_DIR: state } });
}

async function login(server: ConsoleServer, headers: Record<string, string> = {}): Promise<string> {
  const res = await server.app.inject({ method: "POST", url: "/login", payload: `token=${TOKEN}`, headers: { "content-type": "application/x-www-form-urlencoded", ...headers } });
  expect(res.statusCode).toBe(303);
  return String(res.headers["set-cookie"]);
}

describe("console session hardening (F23)", () => {
  it("gives a session cookie that expires, is HttpOnly and SameSite=Strict, and is Secure over TLS", async () => {
    const server = await start({ sessionTtlS: 600 });
    try {
      const plain = await login(server);
      expect(plain).toMatch(/HttpOnly/);
      expect(plain).toMatch(/SameSite=Strict/);
      expect(plain).toMatch(/Max-Age=600/);
      expect(plain).not.toMatch(/Secure/);
      expect(await login(server, { "x-forwarded-proto": "https" })).not.toMatch(/Secure/); // a client's claim is not TLS
      const cookie = plain.split(";")[0];
      expect((await server.app.inject({ url: "/api/rules", headers: { cookie } })).statusCode).toBe(503); // in
      // Two logins never share a session value: each is its own session, not a value derived from the token alone.
      expect((await login(server)).split(";")[0]).not.toBe(cookie);
    } finally {
      await server.close();
    }
  });

  it("refuses a session cookie past its expiry, even one the browser did not drop", async () => {
    const server = await start({ sessionTtlS: 60 });
    try {
      const cookie = (await login(server)).split(";")[0];
      const [, value] = cookie.split("=");
      const [exp, ...rest] = value.split(".");
      expect(Number(exp)).toBeGreaterThan(Date.now() / 1000);
      // A client that rewrites the expiry breaks the MAC; the server checks the expiry it signed.
      const stretched = `vigil_console=${Number(exp) + 86400}.${rest.join(".")}`;
      expect((await server.app.inject({ url: "/api/rules", headers: { cookie: stretched } })).statusCode).toBe(401);
      const expired = `vigil_console=${Math.floor(Date.now() / 1000) - 1}.${rest.join(".")}`;
      expect((await server.app.inject({ url: "/api/rules", headers: { cookie: expired } })).statusCode).toBe(401);
    } finally {
      await server.close();
    }
  });

  it("rate-limits wrong tokens at /login, in the header and in the URL with a clear 429", async () => {
    const server = await start();
    try {
      const wrong = () =>
        server.app.inject({ method: "POST", url: "/login", payload: "token=guess-guess-guess", headers: { "content-type": "application/x-www-form-urlencoded" } });
      const codes: number[] = [];
      for (let i = 0; i < 12; i++) codes.push((await wrong()).statusCode);
      expect(codes.slice(0, 10).every((c) => c === 401)).toBe(true);
      const limited = await wrong();
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
      expect(limited.body).toMatch(/too many failed logins/i);
      // Once limited, the right token waits too: otherwise guessing would just go on.
      expect((await server.app.inject({ url: "/api/rules", headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(429);
      const api = await server.app.inject({ url: "/api/rules", headers: { authorization: "Bearer nope-nope-nope" } });
      expect(api.statusCode).toBe(429);
      expect(api.json()).toMatchObject({ code: "VIGIL_ERR_RATE_LIMITED" });
      // Another address is not locked out by this one.
      expect((await server.app.inject({ url: "/api/rules", remoteAddress: "127.0.0.9", headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(503);
    } finally {
      await server.close();
    }
  });

  it("takes ?token= only to open a page, never on the API, and keeps it out of the logs", async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const server = await start({}, pino({ level: "trace" }, sink) as unknown as Logger);
    try {
      expect((await server.app.inject({ url: `/api/rules?token=${TOKEN}` })).statusCode).toBe(401);
      expect((await server.app.inject({ url: `/api/nothing-here?token=${TOKEN}` })).statusCode).toBe(401);
      const page = await server.app.inject({ url: `/?token=${TOKEN}` });
      expect(page.statusCode).toBe(303);
      expect(page.headers.location).toBe("/");
      expect(String(page.headers["set-cookie"])).toMatch(/Max-Age=/);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join("")).not.toContain(TOKEN);
    } finally {
      await server.close();
    }
  });

  it("hands out login links with a fresh code that works once and only for minutes", async () => {
    const server = await start();
    try {
      const cookie = (await login(server)).split(";")[0];
      const made = await server.app.inject({ method: "POST", url: "/api/login-link", headers: { cookie, "x-vigil-console": "1" } });
      expect(made.statusCode).toBe(200);
      const { url, expiresAt } = made.json() as { url: string; expiresAt: number };
      expect(url).toMatch(/^\/\?login=[A-Za-z0-9_-]{20,}$/);
      expect(url).not.toContain(TOKEN);
      expect(expiresAt - Date.now() / 1000).toBeGreaterThan(60);
      expect(expiresAt - Date.now() / 1000).toBeLessThanOrEqual(600);
      const first = await server.app.inject({ url });
      expect(first.statusCode).toBe(303);
      expect(first.headers.location).toBe("/");
      expect(String(first.headers["set-cookie"])).toMatch(/^vigil_console=/);
      // Used: a second browser with the same link (a leaked log line, a history entry) gets the login form.
      expect((await server.app.inject({ url })).statusCode).toBe(401);
      // Without a session nobody can make one.
      expect((await server.app.inject({ method: "POST", url: "/api/login-link", headers: { "x-vigil-console": "1" } })).statusCode).toBe(401);
    } finally {
      await server.close();
    }
  });
});
