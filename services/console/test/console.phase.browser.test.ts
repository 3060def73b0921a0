import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@vigil/lifecycle";
import { createVethPair, disposeNatsServer, netnsUnavailableReason, repoRoot, startNatsServer, toolMissing, waitFor, type NatsServerHandle, type VethPair } from "@vigil/testing";
import { RULES_MAIN, startRulesService, type RulesUnderTest } from "./support/rules-service.js";
import { consoleSchema, createConsoleServer, RulesClient, type ConsoleServer } from "../src/index.js";
import { browserSkipReason, launchChromium, type Browser } from "./support/browser.js";

/**
 * The overview says which phase is in force: the warm-up of a new host (until when), then blocking
 * once the operator ends it there, in Chromium, against the real rules service enforcing with
 * nftables in a namespace of its own. (The warm-up ending by itself: services/rules/test/warmup.test.ts.)
 */
const ARTIFACTS = join(repoRoot, "test-artifacts/console/phase");
const TOKEN = "phase-browser-test-token";
const WARMUP_S = 3600;
const skipReason =
  browserSkipReason() ?? (existsSync(RULES_MAIN) ? null : `${RULES_MAIN} is not built (node scripts/build.mjs)`) ?? toolMissing("nft") ?? netnsUnavailableReason();
if (skipReason) console.warn(`console phase browser test skipped: ${skipReason}`);

describe.skipIf(skipReason)("the overview shows the warm-up, then blocking, in Chromium", () => {
  let nats: NatsServerHandle | null = null;
  let pair: VethPair | null = null;
  let rules: RulesUnderTest | null = null;
  let rulesClient: RulesClient;
  let consoleServer: ConsoleServer | null = null;
  let browser: Browser | undefined;
  let page: Page;
  let stateDir: string;
  const errors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stateDir = mkdtempSync(join(tmpdir(), "vigil-console-phase-"));
    browser = await launchChromium(errors);
    page = browser.page;
    nats = await startNatsServer({ jetstream: true });
    pair = createVethPair();
    rules = await startRulesService({
      natsUrl: nats.url,
      stateDir,
      token: TOKEN,
      env: { VIGIL_RULES__ENFORCER: "nftables", VIGIL_RULES__NETNS: pair.b, VIGIL_RULES__WARMUP: `${WARMUP_S}s`, VIGIL_RULES__BUCKET: "console_phase" },
    });
    rulesClient = new RulesClient(rules.address, 3000, TOKEN);
    await waitFor(`the rules service's Control API (${rules.log()})`, () => rulesClient.getStatus().then(() => true), 30_000, 200);
    const config = consoleSchema.parse({ port: 0, token: TOKEN, rules: { address: rules.address, token: TOKEN } });
    consoleServer = await createConsoleServer({ config, logger: createLogger("console-phase", "warn"), nats: null, env: { ...process.env, VIGIL_STATE_DIR: stateDir } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await consoleServer?.close();
    rulesClient?.close();
    await rules?.stop();
    pair?.destroy();
    if (nats) await disposeNatsServer(nats);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("says warm-up until when, and blocking once the operator ended it from the overview", async () => {
    const st = await rulesClient.getStatus();
    expect(st.phase, `${JSON.stringify(st)} ${rules!.log()}`).toBe("warmup");
    await page.goto(`${consoleServer!.url}/?token=${TOKEN}`);
    await page.waitForSelector("h1:text('Overview')");
    const phase = page.getByTestId("phase");
    await expect.poll(() => phase.getAttribute("data-phase"), { timeout: 10_000 }).toBe("warmup");
    const until = new Date(st.warmupUntil * 1000).toISOString().slice(11, 19);
    expect(await phase.textContent()).toMatch(new RegExp(`warm-up until \\d{4}-\\d\\d-\\d\\d ${until} UTC \\(59m \\d\\ds left\\): automatic blocks are simulated`));
    await page.screenshot({ path: join(ARTIFACTS, "warmup.png"), fullPage: true });

    // Like every mutating call: the token, then the console's own header (no cross-site form ends it).
    const url = `${consoleServer!.url}/api/warmup/end`;
    expect((await fetch(url, { method: "POST" })).status).toBe(401);
    expect((await fetch(url, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(403);
    expect((await rulesClient.getStatus()).phase).toBe("warmup");

    // Ending it asks first; dismissed, nothing is sent.
    const asked: string[] = [];
    let accept = false;
    page.on("dialog", (d) => {
      asked.push(d.message());
      void (accept ? d.accept() : d.dismiss());
    });
    await page.getByTestId("end-warmup").click();
    expect(asked).toEqual([expect.stringMatching(/^End the warm-up now\? Automatic blocks are enforced from then on/)]);
    expect((await rulesClient.getStatus()).phase).toBe("warmup");
    accept = true;
    await page.getByTestId("end-warmup").click();
    await page.getByText("Warm-up ended: automatic blocks are enforced from now on").waitFor({ timeout: 10_000 });
    expect((await rulesClient.getStatus()).phase).toBe("blocking");
    await expect.poll(() => phase.getAttribute("data-phase"), { timeout: 10_000 }).toBe("blocking");
    expect(await page.getByTestId("end-warmup").count()).toBe(0);
    expect(await phase.textContent()).toMatch(/blocking\s*automatic blocks are enforced \(warm-up over since /);
    await page.screenshot({ path: join(ARTIFACTS, "blocking.png"), fullPage: true });
    expect(errors).toEqual([]);
  }, 60_000);
});
