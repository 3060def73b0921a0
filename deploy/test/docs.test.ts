import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "@vigil/testing";

const SECTIONS = ["capture", "pst", "som", "rules", "console", "notify"];
const configBuilt = existsSync(join(repoRoot, "packages/config/dist/index.js")) ? null : "packages/config is not built";

describe.skipIf(configBuilt)(`configuration reference ${configBuilt ? `(skipped: ${configBuilt})` : ""}`, () => {
  let dir: string;
  let text: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vigil-cfgref-"));
    const r = spawnSync(process.execPath, [join(repoRoot, "deploy/scripts/config-reference.mjs"), "--out", join(dir, "ref.md")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`config-reference.mjs failed: ${r.stderr}`);
    text = readFileSync(join(dir, "ref.md"), "utf8");
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the committed docs/config-reference.md is what the schemas generate", () => {
    const committed = join(repoRoot, "docs/config-reference.md");
    const stale = "docs/config-reference.md differs from the schemas: run node deploy/scripts/config-reference.mjs";
    expect(existsSync(committed), stale).toBe(true);
    expect(readFileSync(committed, "utf8"), stale).toBe(text);
  });

  for (const section of SECTIONS) {
    const dist = join(repoRoot, "services", section, "dist/config.js");
    const missing = existsSync(dist) ? null : `${dist} is missing`;
    it.skipIf(missing)(`lists every key of the ${section} section with its environment variable ${missing ? `(skipped: ${missing})` : ""}`, async () => {
      const mod = (await import(pathToFileURL(dist).href)) as Record<string, unknown>;
      // The section's own keys, read from the schema the service validates with.
      type Obj = { shape: Record<string, unknown>; def: { type: string; innerType?: unknown; in?: unknown } };
      const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && (v as Obj).def?.type === "object";
      const unwrap = (v: unknown): Obj | null => {
        let cur = v as { def?: { innerType?: unknown; in?: unknown } } | undefined;
        for (let i = 0; i < 10 && cur && !isObj(cur); i++) cur = (cur.def?.innerType ?? cur.def?.in) as typeof cur;
        return cur && isObj(cur) ? cur : null;
      };
      const holder = Object.values(mod).find((v) => isObj(v) && unwrap(v.shape[section]));
      expect(holder, `no exported schema with a ${section} section`).toBeDefined();
      const keys = Object.keys(unwrap((holder as Obj).shape[section])!.shape);
      expect(keys.length).toBeGreaterThan(2);
      const body = text.slice(text.indexOf(`## \`${section}\``));
      for (const k of keys) expect(body, `${section}.${k}`).toMatch(new RegExp(`\\| \`${section}\\.${k}(\\.[a-zA-Z.]+)?\` \\|`));
      const env = `VIGIL_${section.toUpperCase()}__`;
      expect(body).toContain(env);
    });
  }

  it("the shipped vigil.yaml, with its commented examples switched on too, is valid for every service", async () => {
    const { loadConfig } = await import("@vigil/config");
    const shipped = join(repoRoot, "deploy/config/vigil.yaml");
    const examples = join(dir, "examples.yaml");
    // "# key: value" and "#   - item" lines become YAML; prose comments stay comments.
    writeFileSync(examples, readFileSync(shipped, "utf8").replace(/^# ?(?=\s*(?:[a-zA-Z]+:(?:\s|$)|- ))/gm, ""));
    expect(readFileSync(examples, "utf8")).toMatch(/^rules:\n\s+enforcer: auto/m);
    let checked = 0;
    for (const section of SECTIONS) {
      const dist = join(repoRoot, "services", section, "dist/config.js");
      if (!existsSync(dist)) continue;
      const mod = (await import(pathToFileURL(dist).href)) as Record<string, unknown>;
      const holder = Object.values(mod).find((v) => {
        const shape = (v as { shape?: Record<string, unknown> })?.shape;
        return !!shape && typeof shape === "object" && section in shape;
      }) as Parameters<typeof loadConfig>[0];
      for (const file of [shipped, examples]) expect(() => loadConfig(holder, { file, env: {} }), `${section} with ${file}`).not.toThrow();
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  it("names the shared nats section and carries no path of this checkout", () => {
    expect(text).toContain("| `nats.servers` |");
    expect(text).toContain("`VIGIL_NATS__SERVERS`");
    expect(text).not.toContain(repoRoot);
  });
});

const errorsBuilt = existsSync(join(repoRoot, "packages/errors/dist/index.js")) ? null : "packages/errors is not built";

/** Every VIGIL_ERR_* literal in the source tree (code and tests), by code, with the files using it. */
function codesInSource(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const skip = new Set(["node_modules", "dist", "build", ".git", "test-artifacts"]);
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (skip.has(e.name)) continue;
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (/\.(ts|mts|mjs|cjs|js|cc|c|h|sh)$/.test(e.name))
        for (const [code] of readFileSync(path, "utf8").matchAll(/VIGIL_ERR_[A-Z0-9_]+/g)) found.set(code, [...(found.get(code) ?? []), relative(repoRoot, path)]);
    }
  };
  // The catalog itself does not count as a use.
  for (const top of ["services", "packages", "lab", "kmod", "deploy", "scripts"]) walk(join(repoRoot, top));
  for (const [code, files] of found) {
    const uses = files.filter((f) => !f.startsWith("packages/errors/"));
    if (uses.length) found.set(code, [...new Set(uses)]);
    else found.delete(code);
  }
  return found;
}

describe.skipIf(errorsBuilt)(`error reference ${errorsBuilt ? `(skipped: ${errorsBuilt})` : ""}`, () => {
  it("the committed docs/errors.md is what the catalog generates", () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-errref-"));
    try {
      const r = spawnSync(process.execPath, [join(repoRoot, "deploy/scripts/errors-reference.mjs"), "--out", join(dir, "errors.md")], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      const stale = "docs/errors.md differs from the catalog: run node deploy/scripts/errors-reference.mjs";
      expect(existsSync(join(repoRoot, "docs/errors.md")), stale).toBe(true);
      expect(readFileSync(join(repoRoot, "docs/errors.md"), "utf8"), stale).toBe(readFileSync(join(dir, "errors.md"), "utf8"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("every code used in the source is in the catalog, and every catalog code is used", async () => {
    const { errorCatalog } = (await import(pathToFileURL(join(repoRoot, "packages/errors/dist/index.js")).href)) as { errorCatalog: Record<string, unknown> };
    const used = codesInSource();
    const missing = [...used].filter(([code]) => !(code in errorCatalog)).map(([code, files]) => `${code} (${files.join(", ")})`);
    expect(missing, "codes used but missing from packages/errors/src/catalog.ts").toEqual([]);
    const unused = Object.keys(errorCatalog).filter((code) => !used.has(code));
    expect(unused, "codes in packages/errors/src/catalog.ts that nothing raises").toEqual([]);
    expect(used.size).toBeGreaterThan(40);
  });
});
