import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { DEFAULT_WEB_DIR } from "../../src/index.js";

export const CHROMIUM = process.env.VIGIL_CHROMIUM ?? "/usr/bin/chromium";

/** Why a browser test cannot run here (no Chromium, front end not built), or null. */
export function browserSkipReason(): string | null {
  if (!existsSync(CHROMIUM)) return `Chromium not found at ${CHROMIUM} (apt-get install chromium, listed in scripts/deps/console.apt)`;
  if (!existsSync(join(DEFAULT_WEB_DIR, "index.html"))) return `the console front end is not built (${DEFAULT_WEB_DIR}): run node scripts/build.mjs`;
  return null;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Closes Chromium and removes its profile. */
  close(): Promise<void>;
}

/** Debian's Chromium, headless, in a fresh profile; the page's console errors and uncaught errors go to `errors`. */
export async function launchChromium(errors: string[]): Promise<Browser> {
  const userDataDir = mkdtempSync(join(tmpdir(), "vigil-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1366, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(msg.text());
  });
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
