import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir, hostname } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { createLogger } from "@vigil/lifecycle";
import { createRegistry, prom, serveMetrics, type MetricsServer } from "@vigil/metrics";
import { Heartbeat, Origin, ScoreBatch } from "@vigil/proto";
import { disposeNatsServer, repoRoot, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { ALLOWLISTED, RULES_MAIN, startRulesService, type RulesUnderTest } from "./support/rules-service.js";
import { consoleSchema, createConsoleServer, RulesClient, type ConsoleServer } from "../src/index.js";
import { ModelSource, modelSubject } from "../src/models.js";
import { browserSkipReason, launchChromium, type Browser } from "./support/browser.js";
import { startControlStandIn } from "./support/control-standin.js";
import { ATTACKER, pstExport, pstVerdict, SCANNER, somExport, somVerdict } from "./support/fixtures.js";

const ARTIFACTS = join(repoRoot, "test-artifacts/console");
const TOKEN = "console-test-token-0123456789";
/** The models shipped in the repository, given to the console as its configured model directories. */
const SHIPPED_MODELS = { pst: join(repoRoot, "services/pst/models"), som: join(repoRoot, "services/som/models/default") };

const skipReason = browserSkipReason();
if (skipReason) console.warn(`console browser tests skipped: ${skipReason}`);

const useRealRules = existsSync(RULES_MAIN);
const rulesLabel = useRealRules ? "the real rules service (services/rules/dist)" : "a Control API stand-in (services/rules is not built yet)";
if (!useRealRules) console.warn(`console browser test: ${RULES_MAIN} missing, the false-alarm flow runs against ${rulesLabel}`);

/** "18.2 k" -> 18200, as the overview cards print rates. */
function parseRate(text: string): number {
  const m = /^([\d.]+)\s*([kM]?)/.exec(text.trim());
  if (!m) return Number.NaN;
  return Number.parseFloat(m[1]) * (m[2] === "k" ? 1e3 : m[2] === "M" ? 1e6 : 1);
}

/** Where the console finds the detector's model without a live detector: the configured (shipped) model directories. */
async function modelFileOrigin(detector: "pst" | "som", stateDir: string): Promise<string | null> {
  const source = new ModelSource({ nats: () => null, stateDir, dirs: SHIPPED_MODELS, requestTimeoutMs: 100 });
  try {
    return (await source.get(detector)).origin;
  } catch {
    return null;
  }
}

/** The console's own credential to a rules service that listens on TCP. */
const RULES_TOKEN = "console-browser-rules-token";

describe.skipIf(skipReason)(`web console in Chromium, rules via ${rulesLabel}`, () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let consoleServer: ConsoleServer;
  let rulesClient: RulesClient;
  let rules: RulesUnderTest | null = null;
  let standIn: Awaited<ReturnType<typeof startControlStandIn>> | null = null;
  let metrics: MetricsServer;
  let frames: prom.Counter;
  let drops: prom.Counter;
  let browser: Browser | undefined;
  let page: Page;
  let stateDir: string;
  const timers: NodeJS.Timeout[] = [];
  const consoleErrors: string[] = [];
  const modelSources: Record<string, string> = {};
  const t0 = Math.floor(Date.now() / 1000) - 3600;

  const shot = async (name: string) => {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stateDir = mkdtempSync(join(tmpdir(), "vigil-console-state-"));
    nats = await startNatsServer({ jetstream: true });
    nc = await connectBus({ servers: [nats.url], name: "console-test" });

    let rulesAddress: string;
    if (useRealRules) {
      rules = await startRulesService({ natsUrl: nats.url, stateDir, token: RULES_TOKEN });
      rulesAddress = rules.address;
    } else {
      standIn = await startControlStandIn(nc);
      rulesAddress = standIn.address;
    }
    rulesClient = new RulesClient(rulesAddress, 3000, standIn ? undefined : RULES_TOKEN);
    await waitFor("the rules service's Control API", () => rulesClient.getStatus().then(() => true), 30_000, 200);

    // Capture's side of the overview: its heartbeat names its metrics port, where the console scrapes the counters.
    const registry = createRegistry("capture", "capture-test-1");
    frames = new prom.Counter({ name: "vigil_capture_frames_captured_total", help: "frames captured", registers: [registry] });
    drops = new prom.Counter({ name: "vigil_capture_ring_drops_total", help: "frames lost", registers: [registry] });
    metrics = await serveMetrics(registry, { port: 0 });
    const beat = (service: string, instance: string, extra: Partial<Heartbeat> = {}) =>
      nc.publish(
        subjects.heartbeat(service),
        codecs.heartbeat.encode(Heartbeat.fromPartial({ service, instance, version: "0.1.0", host: hostname(), ts: Date.now() / 1000, ...extra })),
      );
    const beatAll = () => {
      beat("capture", "capture-test-1", { metricsPort: metrics.port });
      // Load shedding as detectors announce it: one pst instance sheds now, the other shed earlier, som never did.
      beat("pst", "pst-test-1", { shards: [0, 1, 2, 3, 4, 5, 6, 7], frames: 80_000, framesShed: 20_000, shedLevel: 2 });
      beat("pst", "pst-test-2", { shards: [8, 9, 10, 11, 12, 13, 14, 15], frames: 50_000, framesShed: 5_000 });
      beat("som", "som-test-1", { shards: Array.from({ length: 16 }, (_, i) => i), frames: 130_000 });
    };
    beatAll();
    timers.push(setInterval(beatAll, 500));
    timers.push(
      setInterval(() => {
        frames.inc(4000 + Math.floor(Math.random() * 1000));
        drops.inc(Math.random() < 0.3 ? 3 : 0);
      }, 250),
    );

    // Model views: the detectors' trained exports when they exist, else exports answered on the request subject.
    for (const det of ["pst", "som"] as const) {
      const origin = await modelFileOrigin(det, stateDir);
      if (origin) {
        modelSources[det] = `the trained model (${origin})`;
        continue;
      }
      modelSources[det] = `${modelSubject(det)} answered by the test with an export in the detector's format (no trained ${det} model in services/${det}/models yet)`;
      const doc = JSON.stringify(det === "pst" ? pstExport() : somExport());
      const sub = nc.subscribe(modelSubject(det));
      void (async () => {
        for await (const m of sub) m.respond(new TextEncoder().encode(doc));
      })();
    }
    console.warn(`console browser test: models from ${JSON.stringify(modelSources)}`);

    const config = consoleSchema.parse({ port: 0, token: TOKEN, rules: { address: rulesAddress, ...(standIn ? {} : { token: RULES_TOKEN }) }, models: { pstDir: SHIPPED_MODELS.pst, somDir: SHIPPED_MODELS.som } });
    consoleServer = await createConsoleServer({ config, logger: createLogger("console-test", "warn"), nats: nc, env: { ...process.env, VIGIL_STATE_DIR: stateDir } });

    browser = await launchChromium(consoleErrors);
    page = browser.page;
    page.on("dialog", (d) => void d.accept());
  }, 120_000);

  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    await browser?.close();
    await consoleServer?.close();
    rulesClient?.close();
    await standIn?.close();
    await rules?.stop();
    await metrics?.close();
    await nc?.drain();
    if (nats) await disposeNatsServer(nats);
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("refuses every request without the token, including static assets and the event stream", async () => {
    const base = consoleServer.url;
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(401);
    expect(await index.text()).toContain("Access token");
    const html = await (await fetch(`${base}/`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeTruthy();
    for (const path of [asset!, "/api/events", "/api/overview", "/api/rules", "/healthz", "/metrics"]) expect((await fetch(`${base}${path}`)).status, path).toBe(401);
    expect((await fetch(`${base}/api/rules`, { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status).toBe(401);
    expect((await fetch(`${base}/api/rules`, { headers: { cookie: "vigil_console=forged" } })).status).toBe(401);
    expect((await fetch(`${base}${asset}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // A mutating call with a valid token but without the console's header (a cross-site form) is refused.
    const csrf = await fetch(`${base}/api/rules/1`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(csrf.status).toBe(403);
    // A rebinding attempt: a foreign name in Host.
    const rebind = await new Promise<number>((resolve, reject) =>
      request(`${base}/api/overview`, { headers: { authorization: `Bearer ${TOKEN}`, host: "attacker.example" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on("error", reject)
        .end(),
    );
    expect(rebind).toBe(421);
  }, 60_000);

  it("signs in through the login form, then the overview counters move and every instance's health shows", async () => {
    await page.goto(consoleServer.url);
    await page.fill("#token", "not-the-token");
    await page.click("button[type=submit]");
    await page.waitForSelector("text=That token is not right.");
    await shot("login");
    await page.fill("#token", TOKEN);
    await page.click("button[type=submit]");
    await page.waitForSelector("h1:text('Overview')");
    await page.waitForSelector(".conn.live");
    // The sign-in answers are 401 by design, and Chromium logs every 401 document: count errors from here on.
    consoleErrors.length = 0;
    const packets = page.getByTestId("packets-rate");
    await expect.poll(async () => parseRate((await packets.textContent()) ?? ""), { timeout: 15_000 }).toBeGreaterThan(1000);
    const first = await page.getByTestId("packets-total").textContent();
    await expect.poll(async () => page.getByTestId("packets-total").textContent(), { timeout: 10_000 }).not.toBe(first);
    const health = page.getByTestId("health");
    for (const service of ["capture", "pst", "som"]) await expect.poll(() => health.locator(`tr[data-service=${service}]`).count(), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await health.locator("tr[data-service=pst]").count()).toBe(2);
    // Each detector's row says what it shed under overload, apart from loss, and whether it sheds now.
    const shed = (instance: string) => health.locator(`tr:has(td:text-is("${instance}")) [data-testid=shed]`);
    expect(await shed("pst-test-1").textContent()).toBe("20,000 frames (25.0%) shedding, level 2");
    expect(await shed("pst-test-1").getByTestId("shedding-now").getAttribute("title")).toMatch(/^shedding now at level 2: the established segments of 1\/4 of the flows are kept/);
    expect(await shed("pst-test-2").textContent()).toBe("5,000 frames (10.0%)");
    expect(await shed("pst-test-2").getByTestId("shedding-now").count()).toBe(0);
    expect(await shed("som-test-1").textContent()).toBe("–");
    expect(await shed("som-test-1").locator("xpath=..").getByTestId("lost").textContent()).toBe("0");
    expect(await health.locator("th", { hasText: "Shed" }).count()).toBe(1);
    // The console announces itself like every service.
    await expect.poll(() => health.locator("tr[data-service=console]").count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => health.locator("text=reachable").count(), { timeout: 10_000 }).toBeGreaterThan(0);
    if (useRealRules) {
      // What the rules service never blocks is on the overview, with why.
      const allowlist = page.getByTestId("allowlist");
      await expect.poll(() => allowlist.count(), { timeout: 10_000 }).toBe(1);
      await allowlist.locator("summary").click();
      expect(await allowlist.locator("td.mono").allTextContents()).toContain(ALLOWLISTED);
      // Which phase is in force: this rules service runs dry.
      expect(await page.getByTestId("phase").getAttribute("data-phase")).toBe("dry-run");
    }
  }, 60_000);

  it("shows verdicts as they arrive, with their evidence, and false alarm removes the rule (checked through gRPC)", async () => {
    const pst = pstVerdict(t0);
    const som = somVerdict(t0 + 60);
    // Scores around each verdict, as the detectors publish them on vigil.scores.<detector>.
    const scores = (detector: string, threshold: number, base: number, bmu: (i: number) => number) =>
      ScoreBatch.encode({
        detector,
        instance: `${detector}-test-1`,
        scores: Array.from({ length: 120 }, (_, i) => ({
          ts: base + i,
          score: threshold * (0.2 + 0.5 * Math.abs(Math.sin(i / 7))) + (i > 100 && i < 106 ? threshold * 1.3 : 0),
          threshold,
          key: detector === "pst" ? `192.0.2.${i % 40} -> 10.20.0.5:${i % 2 ? 22 : 80}` : `window ${i}`,
          model: detector === "pst" ? "pst/ssh@3" : "som/default@1",
          bmu: bmu(i),
        })),
      }).finish();
    nc.publish("vigil.scores.pst", scores("pst", 3.2, t0 - 100, () => -1));
    nc.publish("vigil.scores.som", scores("som", 2.5, t0 - 100, (i) => (i * 13) % 100));
    nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(pst));
    nc.publish(subjects.verdicts("som"), codecs.verdict.encode(som));

    const overviewVerdicts = page.getByTestId("verdicts-total");
    await expect.poll(async () => Number.parseFloat(((await overviewVerdicts.textContent()) ?? "0").replace(/,/g, "")), { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    await shot("overview");

    await page.click("a[data-page=verdicts]");
    const row = page.locator(`tr[data-verdict-id="${pst.id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.locator(".badge").textContent(), { timeout: 15_000 }).toBe("blocked");
    await row.click();
    const evidence = page.getByTestId("pst-evidence");
    await evidence.waitFor();
    expect(await evidence.locator(".sym.c", { hasText: "C:S" }).count()).toBeGreaterThan(0);
    expect(await evidence.locator(".sym.s", { hasText: "S:RA" }).count()).toBeGreaterThan(0);
    // The first connection (ssh, "C:S S:SA C:R END") explained symbol by symbol with the ssh tree.
    await evidence.getByTestId("explain").first().click();
    const explain = evidence.getByTestId("pst-explain");
    await explain.waitFor();
    expect(await explain.locator("tbody tr").count()).toBe(4);
    expect(await explain.locator("tbody tr").nth(1).textContent()).toContain("S:SA");
    await shot("verdict-pst");

    await page.locator(`tr[data-verdict-id="${som.id}"]`).click();
    const somEv = page.getByTestId("som-evidence");
    await somEv.waitFor();
    expect(await page.getByTestId("som-features").locator("tbody tr").count()).toBe(10);
    expect(await page.getByTestId("som-sources").locator("tbody tr").first().textContent()).toContain(SCANNER);
    expect(await page.getByTestId("som-features").locator("strong", { hasText: "half_open" }).count()).toBe(1);
    await shot("verdict-som");

    const blockRules = async (address: string) =>
      (await rulesClient.listRules()).rules.filter((r) => r.srcCidr.startsWith(`${address}/`) && r.origin === Origin.ORIGIN_DETECTOR);
    await waitFor("the block rule of the PST verdict", async () => (await blockRules(ATTACKER)).length > 0, 15_000);

    await page.click("a[data-page=rules]");
    const ruleRow = page.locator(`tr[data-src^="${ATTACKER}/"]`).first();
    await ruleRow.waitFor();
    const c1 = await ruleRow.locator("td.countdown").textContent();
    await expect.poll(() => ruleRow.locator("td.countdown").textContent(), { timeout: 5000 }).not.toBe(c1);
    await shot("rules");

    await page.goto(`${consoleServer.url}/#/verdicts?id=${encodeURIComponent(pst.id)}`);
    await page.getByTestId("pst-evidence").waitFor();
    await page.getByTestId("false-alarm").click();
    await expect.poll(() => page.getByTestId("false-alarm-result").textContent(), { timeout: 10_000 }).toMatch(/Removed rule/);
    expect(await blockRules(ATTACKER)).toEqual([]);
    await expect.poll(() => page.locator(`tr[data-verdict-id="${pst.id}"] .badge`).textContent(), { timeout: 10_000 }).toBe("false-alarm");
    await shot("verdict-false-alarm");
  }, 60_000);

  it("adds, extends and deletes a manual rule from the rules page", async () => {
    await page.click("a[data-page=rules]");
    const form = page.getByTestId("add-rule");
    await form.locator("input[name=srcCidr]").fill("192.0.2.77/32");
    await form.locator("input[name=reason]").fill("manual test block");
    await form.locator("button[type=submit]").click();
    const row = page.locator('tr[data-src="192.0.2.77/32"]');
    await row.waitFor({ timeout: 10_000 });
    const manual = (await rulesClient.listRules()).rules.find((r) => r.srcCidr === "192.0.2.77/32");
    expect(manual?.origin).toBe(Origin.ORIGIN_MANUAL);
    const before = manual!.expiresAt;
    await row.locator("select").selectOption("86400");
    await waitFor("the extended expiry", async () => ((await rulesClient.listRules()).rules.find((r) => r.srcCidr === "192.0.2.77/32")?.expiresAt ?? 0) > before + 80_000, 10_000);
    await page.locator('tr[data-src="192.0.2.77/32"]').getByTestId("delete-rule").click();
    await page.locator('tr[data-src="192.0.2.77/32"]').waitFor({ state: "detached", timeout: 10_000 });
    expect((await rulesClient.listRules()).rules.some((r) => r.srcCidr === "192.0.2.77/32")).toBe(false);
  }, 60_000);

  it("draws the live scores against the threshold", async () => {
    await page.click("a[data-page=scores]");
    for (const det of ["pst", "som"]) {
      const panel = page.locator(`section[data-detector=${det}]`);
      await panel.waitFor({ timeout: 10_000 });
      await expect.poll(() => panel.locator("canvas").count()).toBeGreaterThan(0);
      expect(await panel.locator("h2").textContent()).toMatch(/[1-9]\d* scores/);
    }
    await shot("scores");
  }, 60_000);

  it(`renders the PST trees and the SOM map from model data`, async () => {
    await page.click("a[data-page=models]");
    const tree = page.getByTestId("pst-tree");
    await tree.waitFor({ timeout: 10_000 });
    const nodes = tree.locator(".node");
    const n0 = await nodes.count();
    expect(n0).toBeGreaterThan(1);
    await nodes.nth(1).locator("button.toggle").click();
    await expect.poll(() => nodes.count()).toBeGreaterThan(n0);
    expect(await tree.locator(".next").count()).toBeGreaterThan(0);
    await shot("models-pst");
    await page.click("button[data-tab=som]");
    const map = page.getByTestId("som-map");
    await map.waitFor({ timeout: 10_000 });
    expect(await map.locator(".cell").count()).toBeGreaterThan(16);
    await expect.poll(() => map.locator(".bmu").count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await shot("models-som");
    console.warn(`console browser test: model views rendered from ${JSON.stringify(modelSources)}`);
  }, 60_000);

  it("follows the dark colour scheme and the theme toggle, without console errors", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.click("a[data-page=overview]");
    await page.waitForTimeout(1500);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe("rgb(15, 20, 25)");
    await shot("overview-dark");
    await page.click("#theme");
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe("rgb(246, 247, 249)");
    await page.click("#theme");
    await page.click("a[data-page=models]");
    await page.getByTestId("pst-tree").waitFor();
    await shot("models-pst-dark");
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
