import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "@vigil/lifecycle";
import { connectBus } from "@vigil/bus";
import { disposeNatsServer, freePort, startNatsServer } from "@vigil/testing";
import { authenticate, hostAllowed, hostName, parseCookies, sessionValue } from "../src/auth.js";
import { CounterRates, sumCounters } from "../src/capture-metrics.js";
import { consoleSchema, createConsoleServer } from "../src/index.js";
import { parsePstExport, parseSymbol } from "@vigil/models";
import { ModelSource, modelSubject } from "../src/models.js";
import { explainSequence } from "../web/src/evidence.js";
import { pstExport, somExport } from "./support/fixtures.js";

const tmp: string[] = [];
afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "vigil-console-unit-"));
  tmp.push(d);
  return d;
};

describe("PST evidence", () => {
  it("explains a sequence with the detector's own score", async () => {
    let pst: typeof import("@vigil/pst");
    try {
      pst = await import("@vigil/pst");
    } catch (err) {
      console.warn(`skipping the PST cross-check: @vigil/pst not importable (${(err as Error).message})`);
      return;
    }
    const counts = new pst.ContextCounter(4);
    const seq = (s: string, n: number) => {
      for (let i = 0; i < n; i++) counts.add({ symbols: s.split(" ").map(parseSymbol), fromStart: true } as never, 1);
    };
    seq("C:S S:SA C:A C:PA S:PA S:A C:FA S:FA C:A", 50);
    seq("C:S S:SA C:A C:PA S:A C:FA S:FA C:A", 30);
    seq("C:S S:RA", 5);
    const model = new pst.PstModel(
      "ssh", 1, { name: "ssh", ports: [22] }, { ...pst.DEFAULT_PST_PARAMS, maxDepth: 4 }, counts,
      { value: 3, percentile: 99, suspicion: 2, suspicionPercentile: 95, heldOut: 0, minSymbols: 3 },
      { sequences: 85, symbols: 0, heldOut: 0, sha256: "", inputs: [], feedbackSequences: 0, learnedSequences: 0 } as never,
    );
    const fromFile = parsePstExport(JSON.parse(JSON.stringify(model.toFile())))[0];
    // The console's per-symbol explanation gives the detector's own score.
    for (const text of ["C:S S:SA C:A C:PA S:PA S:A C:FA S:FA C:A", "C:S S:RA", "C:S S:SA C:R", "C:PA C:PA S:FA"]) {
      const costs = explainSequence(fromFile as never, text.split(" "));
      const mean = costs.reduce((s, c) => s - Math.log(c.p), 0) / costs.length;
      expect(mean, text).toBeCloseTo(model.compiled.score(text.split(" ").map(parseSymbol), true), 4);
    }
    // An unproven completion ("?C:FPAU": the detector's mark for an ACK that missed our ISN + 1) is the same symbol.
    const marked = explainSequence(fromFile as never, "C:S S:SA ?C:FPAU S:R".split(" "));
    expect(marked.map((c) => c.symbol)).toEqual(["C:S", "S:SA", "C:FPAU", "S:R"]);
    expect(marked.map((c) => c.p)).toEqual(explainSequence(fromFile as never, "C:S S:SA C:FPAU S:R".split(" ")).map((c) => c.p));
  });
});

describe("model sources", () => {
  it("falls back to model files, skipping files that are not models, and names broken ones", async () => {
    const state = tempDir();
    mkdirSync(join(state, "pst", "models"), { recursive: true });
    writeFileSync(join(state, "pst", "models", "ssh.pst.json"), JSON.stringify(pstExport()));
    const src = new ModelSource({ nats: () => null, stateDir: state, dirs: {}, requestTimeoutMs: 100 });
    expect(src.directories("pst")).toEqual([join(state, "pst", "models"), join(state, "pst")]);
    const doc = await src.get("pst");
    expect(doc.origin).toContain(join(state, "pst", "models"));
    expect(doc.models).toHaveLength(2);
    const bad = tempDir();
    writeFileSync(join(bad, "broken.json"), "{ not json");
    const src2 = new ModelSource({ nats: () => null, stateDir: state, dirs: { som: bad }, requestTimeoutMs: 100 });
    await expect(src2.get("som")).rejects.toThrow(/broken\.json/);
  });
});

describe("live models over NATS", () => {
  it("asks the detector on vigil.models.<detector> first and falls back to files when nobody answers", async () => {
    const nats = await startNatsServer();
    const nc = await connectBus({ servers: [nats.url], name: "console-unit" });
    try {
      const state = tempDir();
      mkdirSync(join(state, "som"), { recursive: true });
      writeFileSync(join(state, "som", "map.json"), JSON.stringify({ rows: 1, cols: 2, umatrix: [0, 1] }));
      const src = new ModelSource({ nats: () => nc, stateDir: state, dirs: {}, requestTimeoutMs: 300 });
      const fromFile = await src.get("som");
      expect(fromFile.origin).toBe(`file: ${join(state, "som", "map.json")}`);
      const sub = nc.subscribe(modelSubject("som"));
      void (async () => {
        for await (const m of sub) m.respond(new TextEncoder().encode(JSON.stringify(somExport())));
      })();
      await nc.flush();
      const live = await new ModelSource({ nats: () => nc, stateDir: state, dirs: {}, requestTimeoutMs: 2000 }).get("som");
      expect(live.origin).toBe("live: vigil.models.som");
      expect((live.models[0] as { rows: number }).rows).toBe(10);
      sub.unsubscribe();
      const garbled = nc.subscribe(modelSubject("pst"));
      void (async () => {
        for await (const m of garbled) m.respond(new TextEncoder().encode("not json"));
      })();
      await nc.flush();
      await expect(new ModelSource({ nats: () => nc, stateDir: state, dirs: {}, requestTimeoutMs: 2000 }).get("pst")).rejects.toThrow(/vigil\.models\.pst is not JSON/);
    } finally {
      await nc.drain();
      await disposeNatsServer(nats);
    }
  });
});

describe("capture counters", () => {
  it("sums every label set of the named counters", () => {
    const text = [
      "# HELP vigil_capture_frames_captured_total frames",
      "# TYPE vigil_capture_frames_captured_total counter",
      'vigil_capture_frames_captured_total{source="pcap",service="capture"} 1200',
      'vigil_capture_frames_captured_total{source="afpacket",service="capture"} 34',
      "vigil_capture_frames_captured_totalx 99",
      'vigil_capture_ring_drops_total{source="pcap"} 5 1700000000000',
    ].join("\n");
    const sums = sumCounters(text, ["vigil_capture_frames_captured_total", "vigil_capture_ring_drops_total"]);
    expect(sums.get("vigil_capture_frames_captured_total")).toBe(1234);
    expect(sums.get("vigil_capture_ring_drops_total")).toBe(5);
  });

  it("treats a counter that goes down as a restart", () => {
    const r = new CounterRates();
    expect(r.delta("a|f", 100)).toBe(0);
    expect(r.delta("a|f", 150)).toBe(50);
    expect(r.delta("a|f", 20)).toBe(20);
  });
});

describe("access control", () => {
  const token = "a-long-enough-token";
  it("accepts the bearer header, the derived session cookie or the query token, nothing else", () => {
    const q = new URLSearchParams();
    expect(authenticate(token, { headers: { authorization: `Bearer ${token}` }, query: q })).toEqual({ ok: true, via: "header" });
    expect(authenticate(token, { headers: { cookie: `x=1; vigil_console=${sessionValue(token, 600)}` }, query: q })).toEqual({ ok: true, via: "cookie" });
    expect(authenticate(token, { headers: {}, query: new URLSearchParams({ token }) })).toEqual({ ok: true, via: "query" });
    expect(authenticate(token, { headers: { cookie: `vigil_console=${token}` }, query: q }).ok).toBe(false);
    expect(authenticate(token, { headers: { authorization: `Bearer ${token}x` }, query: q }).ok).toBe(false);
    expect(authenticate(undefined, { headers: {}, query: q }).ok).toBe(true);
    expect(sessionValue(token, 600)).not.toContain(token);
  });

  it("accepts only the console's own host names", () => {
    expect(hostAllowed("127.0.0.1:9480", "127.0.0.1", [])).toBe(true);
    expect(hostAllowed("localhost:9480", "127.0.0.1", [])).toBe(true);
    expect(hostAllowed("[::1]:9480", "::1", [])).toBe(true);
    expect(hostAllowed("evil.example:9480", "127.0.0.1", [])).toBe(false);
    expect(hostAllowed("fw1.lan:9480", "0.0.0.0", ["fw1.lan"])).toBe(true);
    expect(hostAllowed(undefined, "127.0.0.1", [])).toBe(false);
    expect(hostName("[fd00::1]:80")).toBe("[fd00::1]");
    expect(parseCookies("a=1; b=%20x").get("b")).toBe(" x");
  });

  it("rejects a short token in the configuration", () => {
    expect(() => consoleSchema.parse({ token: "short" })).toThrow(/at least 12 characters/);
  });
});

describe("console API without the rules service", () => {
  it("answers 503 naming the unreachable rules service, and still serves what it has", async () => {
    const port = await freePort();
    const state = tempDir();
    const server = await createConsoleServer({
      config: consoleSchema.parse({ port: 0, rules: { address: `127.0.0.1:${port}`, timeoutMs: 500 } }),
      logger: createLogger("console-unit", "silent"),
      nats: null,
      env: { VIGIL_STATE_DIR: state },
    });
    // Login is required by default: the token the console made for itself is in its state directory.
    const token = readFileSync(join(state, "console-login.token"), "utf8").trim();
    const fetch = (url: string, init: RequestInit = {}) => globalThis.fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    try {
      const rules = await fetch(`${server.url}/api/rules`);
      expect(rules.status).toBe(503);
      const body = (await rules.json()) as { code: string; error: string };
      expect(body.code).toBe("VIGIL_ERR_RULES_UNAVAILABLE");
      expect(body.error).toContain(`127.0.0.1:${port}`);
      const verdicts = (await (await fetch(`${server.url}/api/verdicts`)).json()) as { verdicts: unknown[]; rulesError: string };
      expect(verdicts.verdicts).toEqual([]);
      expect(verdicts.rulesError).toContain("unreachable");
      const bad = await fetch(`${server.url}/api/rules`, { method: "POST", headers: { "content-type": "application/json", "x-vigil-console": "1" }, body: JSON.stringify({ srcCidr: "x" }) });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/reason/);
      expect((await fetch(`${server.url}/api/models/nope`)).status).toBe(404);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/vigil_console_rules_reachable\{[^}]*\} 0/);
      expect(metrics).toContain("vigil_console_event_streams");
      expect((await fetch(`${server.url}/`)).headers.get("content-security-policy")).toContain("default-src 'self'");
    } finally {
      await server.close();
    }
  });
});

describe("console login by default", () => {
  const config = (extra: object) => consoleSchema.parse({ port: 0, rules: { address: "unix:/nonexistent/control.sock", timeoutMs: 300 }, ...extra });
  it("refuses the API on loopback without a login, keeps its made token private, and lets the token in", async () => {
    const state = tempDir();
    const server = await createConsoleServer({ config: config({}), logger: createLogger("console-unit", "silent"), nats: null, env: { VIGIL_STATE_DIR: state } });
    try {
      expect((await fetch(`${server.url}/api/rules`)).status).toBe(401);
      expect((await fetch(`${server.url}/api/rules`, { method: "POST", headers: { "content-type": "application/json", "x-vigil-console": "1" }, body: "{}" })).status).toBe(401);
      const file = join(state, "console-login.token");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const token = readFileSync(file, "utf8").trim();
      const login = await fetch(`${server.url}/?token=${token}`, { redirect: "manual" });
      expect(login.status).toBe(303);
      const cookie = login.headers.get("set-cookie")!.split(";")[0];
      expect((await fetch(`${server.url}/api/rules`, { headers: { cookie } })).status).toBe(503); // in, and the rules service is away
    } finally {
      await server.close();
    }
  });

  it("reads the token from console.tokenFile and names the file when it is unusable", async () => {
    const state = tempDir();
    const file = join(state, "given.token");
    writeFileSync(file, "short\n");
    await expect(createConsoleServer({ config: config({ tokenFile: file }), logger: createLogger("console-unit", "silent"), nats: null, env: { VIGIL_STATE_DIR: state } })).rejects.toThrow(
      /console\.tokenFile: the token in .*given\.token is shorter than 12/,
    );
    writeFileSync(file, "a-token-given-by-vigil-up\n");
    const server = await createConsoleServer({ config: config({ tokenFile: file }), logger: createLogger("console-unit", "silent"), nats: null, env: { VIGIL_STATE_DIR: state } });
    try {
      expect((await fetch(`${server.url}/api/rules`)).status).toBe(401);
      expect((await fetch(`${server.url}/api/rules`, { headers: { authorization: "Bearer a-token-given-by-vigil-up" } })).status).toBe(503);
    } finally {
      await server.close();
    }
  });

  it("is open only with an explicit console.auth: none", async () => {
    const server = await createConsoleServer({ config: config({ auth: "none" }), logger: createLogger("console-unit", "silent"), nats: null, env: { VIGIL_STATE_DIR: tempDir() } });
    try {
      expect((await fetch(`${server.url}/api/rules`)).status).toBe(503);
    } finally {
      await server.close();
    }
  });
});
