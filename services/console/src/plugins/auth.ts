import type { FastifyPluginAsync } from "fastify";
import type { FastifyReply, FastifyRequest } from "fastify";
import { authenticate, credentialOffered, CSRF_HEADER, hostAllowed, isWildcard, sessionCookie } from "../auth.js";
import { LoginLimiter } from "../login-limit.js";

/** A login link's code works once and for this long. */
export const LOGIN_LINK_TTL_S = 600;
import { appWide, SECURITY_HEADERS, type ConsoleContext } from "../http.js";
import { loginPage } from "../login-page.js";

/**
 * Every request, before its route: security headers, the Host check (against DNS rebinding),
 * the token (header, session cookie, or once in the URL, traded for the cookie), and the
 * anti-CSRF header on anything that changes state. Also the login form it sends people to.
 */
export const authPlugin: FastifyPluginAsync<ConsoleContext> = appWide("vigil-console-auth", async (app, { cfg, loginCodes }) => {
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  const limiter = new LoginLimiter(cfg.loginAttemptsPerMinute);
  const tooMany = (req: FastifyRequest, reply: FastifyReply, wantsHtml: boolean): FastifyReply | null => {
    const wait = limiter.retryAfterS(req.ip);
    if (wait === 0) return null;
    const error = `too many failed logins from ${req.ip}: try again in ${wait} s`;
    reply.code(429).header("retry-after", String(wait)).header("cache-control", "no-store");
    if (wantsHtml) return reply.type("text/html; charset=utf-8").send(loginPage(error[0].toUpperCase() + error.slice(1) + "."));
    return reply.send({ error, code: "VIGIL_ERR_RATE_LIMITED" });
  };
  // The session cookie is Secure when this very connection is TLS (fastify's https option), whatever a client claims.
  const cookieFor = (req: FastifyRequest, token: string) => sessionCookie(token, cfg.sessionTtlS, (req.raw.socket as { encrypted?: boolean }).encrypted === true);

  app.addHook("onRequest", async (req, reply) => {
    reply.headers(SECURITY_HEADERS);
    const checkHost = !isWildcard(cfg.host) || cfg.allowedHosts.length > 0;
    if (checkHost && !hostAllowed(req.headers.host, cfg.host, cfg.allowedHosts)) {
      reply.code(421).type("text/plain").send(`console: Host "${req.headers.host ?? ""}" is not this console's address (add it to console.allowedHosts)\n`);
      return reply;
    }
    const url = new URL(req.url, "http://console.invalid");
    if (req.method === "POST" && url.pathname === "/login") return;
    const wantsHtml = req.method === "GET" && !url.pathname.startsWith("/api/") && !url.pathname.startsWith("/assets/");
    // The token in the URL opens a page only: on the API it would end up in proxies' and clients' logs.
    const query = wantsHtml ? url.searchParams : new URLSearchParams();
    const offered = { headers: req.headers, query };
    if (cfg.token && credentialOffered(offered) && tooMany(req, reply, wantsHtml)) return reply;
    const code = wantsHtml ? url.searchParams.get("login") : null;
    if (code !== null && cfg.token) {
      if (tooMany(req, reply, true)) return reply;
      url.searchParams.delete("login");
      if (loginCodes.redeem(code)) {
        reply.header("set-cookie", cookieFor(req, cfg.token)).redirect(url.pathname + url.search, 303);
        return reply;
      }
      limiter.fail(req.ip);
      reply.code(401).header("cache-control", "no-store").type("text/html; charset=utf-8").send(loginPage("That login link was used already or has expired."));
      return reply;
    }
    const result = authenticate(cfg.token, offered);
    if (!result.ok) {
      if (credentialOffered(offered)) limiter.fail(req.ip);
      reply.code(401).header("cache-control", "no-store");
      if (wantsHtml) reply.type("text/html; charset=utf-8").send(loginPage(url.searchParams.has("token") ? "That token is not right." : null));
      else reply.header("www-authenticate", 'Bearer realm="vigil-console"').send({ error: "a token is required", code: "VIGIL_ERR_UNAUTHORIZED" });
      return reply;
    }
    if (result.via === "query" && cfg.token) {
      // Trade the token in the URL for the session cookie, and drop it from the address bar and history.
      url.searchParams.delete("token");
      reply.header("set-cookie", cookieFor(req, cfg.token)).redirect(url.pathname + url.search, 303);
      return reply;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      if (req.headers[CSRF_HEADER] !== "1")
        return reply.code(403).send({ error: `mutating requests need the ${CSRF_HEADER}: 1 header`, code: "VIGIL_ERR_CSRF" });
    }
  });

  // A fresh single-use link for another browser, from a signed-in one: the token never goes into a URL.
  app.post("/api/login-link", async (_req, reply) => {
    if (!cfg.token) return reply.code(404).send({ error: "console.auth is none: there is no login", code: "VIGIL_ERR_NOT_FOUND" });
    const { code, expiresAt } = loginCodes.mint(LOGIN_LINK_TTL_S);
    return { url: `/?login=${code}`, expiresAt };
  });

  app.post<{ Body: { token?: string } }>("/login", async (req, reply) => {
    const given = typeof req.body?.token === "string" ? req.body.token : "";
    if (!cfg.token) return reply.redirect("/", 303);
    if (tooMany(req, reply, true)) return reply;
    if (authenticate(cfg.token, { headers: {}, query: new URLSearchParams({ token: given }) }).ok)
      return reply.header("set-cookie", cookieFor(req, cfg.token)).redirect("/", 303);
    limiter.fail(req.ip);
    return reply.code(401).type("text/html; charset=utf-8").send(loginPage("That token is not right."));
  });
});
