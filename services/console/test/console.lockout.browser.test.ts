import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@vigil/lifecycle";
import { disposeNatsServer, repoRoot, startNatsServer, waitFor, type NatsServerHandle } from "@vigil/testing";
import { RULES_MAIN, startRulesService, type RulesUnderTest } from "./support/rules-service.js";
import { consoleSchema, createConsoleServer, RulesClient, type ConsoleServer } from "../src/index.js";
import { browserSkipReason, launchChromium, type Browser } from "./support/browser.js";

/**
 * A manual rule the rules service refuses as a lockout (VIGIL_ERR_LOCKOUT) is sent again with
 * force only after the operator typed the address: in Chromium, against the real rules service.
 */
const ARTIFACTS = join(repoRoot, "test-artifacts/console/lockout");
const TOKEN = "lockout-browser-test-token";
const skipReason = browserSkipReason() ?? (existsSync(RULES_MAIN) ? null : `${RULES_MAIN} is not built (node scripts/build.mjs)`);
if (skipReason) console.warn(`console lockout browser test skipped: ${skipReason}`);

describe.skipIf(skipReason)("typed confirmation before forcing a lockout rule, in Chromium", () => {
  let nats: NatsServerHandle | null = null;
  let rules: RulesUnderTest | null = null;
  let rulesClient: RulesClient;
  let consoleServer: ConsoleServer | null = null;
  let browser: Browser | undefined;
  let page: Page;
  let stateDir: string;
  const errors: string[] = [];
  const posted: unknown[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stateDir = mkdtempSync(join(tmpdir(), "vigil-console-lockout-"));
    nats = await startNatsServer({ jetstream: true });
    rules = await startRulesService({ natsUrl: nats.url, stateDir, token: TOKEN });
    rulesClient = new RulesClient(rules.address, 3000, TOKEN);
    await waitFor(`the rules service's Control API (${rules.log()})`, () => rulesClient.getStatus().then(() => true), 30_000, 200);
    const config = consoleSchema.parse({ port: 0, token: TOKEN, rules: { address: rules.address, token: TOKEN } });
    consoleServer = await createConsoleServer({ config, logger: createLogger("console-lockout", "warn"), nats: null, env: { ...process.env, VIGIL_STATE_DIR: stateDir } });
    browser = await launchChromium(errors);
    page = browser.page;
    page.on("request", (r) => {
      if (r.method() === "POST" && r.url().endsWith("/api/rules")) posted.push(r.postDataJSON());
    });
    await page.goto(`${consoleServer.url}/?token=${TOKEN}`);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await consoleServer?.close();
    rulesClient?.close();
    await rules?.stop();
    if (nats) await disposeNatsServer(nats);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("shows why the rule was refused and resends it with force only once the address is typed", async () => {
    await page.goto(`${consoleServer!.url}/#/rules`);
    const form = page.getByTestId("add-rule");
    // 127.0.0.0/24 covers loopback and this very session (the browser is on 127.0.0.1).
    await form.locator("input[name=srcCidr]").fill("127.0.0.0/24");
    await form.locator("input[name=reason]").fill("testing the lockout guard");
    await form.locator("button[type=submit]").click();
    const confirm = page.getByTestId("lockout-confirm");
    await confirm.waitFor({ timeout: 10_000 });
    expect(await confirm.textContent()).toMatch(/would cut the host off: it covers 127\.0\.0\.0\/8 \(loopback\)/);
    expect(posted).toEqual([expect.objectContaining({ srcCidr: "127.0.0.0/24" })]);
    expect((posted[0] as { force?: boolean }).force).toBeUndefined();
    const typed = confirm.locator("input[name=confirm]");
    const anyway = confirm.getByRole("button", { name: /add anyway/i });
    expect(await anyway.isDisabled()).toBe(true);
    await typed.fill("127.0.0.1");
    expect(await anyway.isDisabled()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, "lockout-confirm.png"), fullPage: true });
    // Cancel sends nothing.
    await confirm.getByRole("button", { name: /cancel/i }).click();
    expect(await page.getByTestId("lockout-confirm").count()).toBe(0);
    expect(posted).toHaveLength(1);
    expect((await rulesClient.listRules()).rules).toHaveLength(0);

    await form.locator("button[type=submit]").click();
    await confirm.waitFor({ timeout: 10_000 });
    await confirm.locator("input[name=confirm]").fill("127.0.0.0/24");
    await anyway.click();
    await expect.poll(async () => (await rulesClient.listRules()).rules.map((r) => r.srcCidr), { timeout: 10_000 }).toEqual(["127.0.0.0/24"]);
    expect(posted).toHaveLength(3);
    expect(posted[2]).toMatchObject({ srcCidr: "127.0.0.0/24", force: true });
    // The audit trail: the connection the rules service saw, then the console's word for which session asked.
    const [made] = (await rulesClient.listRules()).rules;
    expect(made.createdBy).toMatch(/^via 127\.0\.0\.1:\d+ \(claims user "console session from 127\.0\.0\.1"\)$/);
    await expect.poll(() => page.getByTestId("lockout-confirm").count()).toBe(0);
  }, 60_000);

  it("offers no override for a rule refused even with force", async () => {
    await page.goto(`${consoleServer!.url}/#/rules`);
    const form = page.getByTestId("add-rule");
    await form.locator("input[name=srcCidr]").fill("0.0.0.0/0");
    await form.locator("input[name=reason]").fill("everything");
    await form.locator("button[type=submit]").click();
    await expect.poll(() => form.getByTestId("field-error").textContent(), { timeout: 10_000 }).toMatch(/drops all traffic of the family/);
    expect(await page.getByTestId("lockout-confirm").count()).toBe(0);
    errors.length = 0; // Chromium logs the refused requests (HTTP 409) as console errors: expected here.
  }, 60_000);
});
