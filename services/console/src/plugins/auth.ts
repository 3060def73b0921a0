import type { FastifyPluginAsync } from "fastify";
import { authenticate, CSRF_HEADER, hostAllowed, isWildcard, sessionCookie } from "../auth.js";
import { appWide, SECURITY_HEADERS, type ConsoleContext } from "../http.js";
import { loginPage } from "../login-page.js";

/**
 * Every request, before its route: security headers, the Host check (against DNS rebinding),
 * the token (header, session cookie, or once in the URL, traded for the cookie), and the
 * anti-CSRF header on anything that changes state. Also the login form it sends people to.
 */
export const authPlugin: FastifyPluginAsync<ConsoleContext> = appWide("vigil-console-auth", async (app, { cfg }) => {
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.addHook("onRequest", async (req, reply) => {
    reply.headers(SECURITY_HEADERS);
    const checkHost = !isWildcard(cfg.host) || cfg.allowedHosts.length > 0;
    if (checkHost && !hostAllowed(req.headers.host, cfg.host, cfg.allowedHosts)) {
      reply.code(421).type("text/plain").send(`console: Host "${req.headers.host ?? ""}" is not this console's address (add it to console.allowedHosts)\n`);
      return reply;
    }
    const url = new URL(req.url, "http://console.invalid");
    if (req.method === "POST" && url.pathname === "/login") return;
    const result = authenticate(cfg.token, { headers: req.headers, query: url.searchParams });
    if (!result.ok) {
      const wantsHtml = req.method === "GET" && !url.pathname.startsWith("/api/") && !url.pathname.startsWith("/assets/");
      reply.code(401).header("cache-control", "no-store");
      if (wantsHtml) reply.type("text/html; charset=utf-8").send(loginPage(url.searchParams.has("token") ? "That token is not right." : null));
      else reply.header("www-authenticate", 'Bearer realm="vigil-console"').send({ error: "a token is required", code: "VIGIL_ERR_UNAUTHORIZED" });
      return reply;
    }
    if (result.via === "query" && cfg.token) {
      // Trade the token in the URL for the session cookie, and drop it from the address bar and history.
      url.searchParams.delete("token");
      reply.header("set-cookie", sessionCookie(cfg.token, false)).redirect(url.pathname + url.search, 303);
      return reply;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      if (req.headers[CSRF_HEADER] !== "1")
        return reply.code(403).send({ error: `mutating requests need the ${CSRF_HEADER}: 1 header`, code: "VIGIL_ERR_CSRF" });
    }
  });

  app.post<{ Body: { token?: string } }>("/login", async (req, reply) => {
    const given = typeof req.body?.token === "string" ? req.body.token : "";
    if (!cfg.token) return reply.redirect("/", 303);
    if (authenticate(cfg.token, { headers: {}, query: new URLSearchParams({ token: given }) }).ok)
      return reply.header("set-cookie", sessionCookie(cfg.token, false)).redirect("/", 303);
    return reply.code(401).type("text/html; charset=utf-8").send(loginPage("That token is not right."));
  });
});
