#!/usr/bin/env node
// Copies what the Vigil services need at run time from a built checkout into
// DEST: compiled dist/ trees, native addons, the workspace manifests and the
// production node_modules (dev dependencies pruned). Used by deploy/install.sh
// (DEST = /opt/vigil) and by the container build (DEST = the image's /opt/vigil).
//
//   node deploy/scripts/stage-runtime.mjs DEST [--root REPO] [--keep-dev]
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { root: { type: "string" }, "keep-dev": { type: "boolean", default: false } },
});
if (positionals.length !== 1) {
  process.stderr.write("usage: stage-runtime.mjs DEST [--root REPO] [--keep-dev]\n");
  process.exit(64);
}
const root = resolve(values.root ?? join(dirname(fileURLToPath(import.meta.url)), "../.."));
const dest = resolve(positionals[0]);
const fail = (msg) => {
  process.stderr.write(`stage-runtime: ${msg}\n`);
  process.exit(1);
};

// Workspaces that only exist for development and tests.
const DEV_ONLY = new Set(["packages/testing", "kmod"]);
// Never shipped: sources of tests, build intermediates, recorded captures.
const SKIP_NAMES = new Set(["test", "tests", "bench", "node_modules", "coverage", ".cache", "captures", "obj.target", ".deps"]);
const SKIP_SUFFIXES = [".test.ts", ".test.js", ".tsbuildinfo", ".o", ".d", ".mk", ".map"];

const rootPkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
function workspaceDirs() {
  const out = [];
  for (const pattern of rootPkg.workspaces ?? []) {
    if (!pattern.endsWith("/*")) {
      if (existsSync(join(root, pattern, "package.json"))) out.push(pattern);
      continue;
    }
    const base = pattern.slice(0, -2);
    if (!existsSync(join(root, base))) continue;
    for (const d of readdirSync(join(root, base)).sort())
      if (existsSync(join(root, base, d, "package.json"))) out.push(`${base}/${d}`);
  }
  return out;
}

function keep(src) {
  const name = basename(src);
  if (SKIP_NAMES.has(name)) return false;
  return !SKIP_SUFFIXES.some((s) => name.endsWith(s));
}

if (!existsSync(join(root, "node_modules"))) fail(`${root}/node_modules is missing: run npm ci and node scripts/build.mjs first`);
const workspaces = workspaceDirs().filter((w) => !DEV_ONLY.has(w));
const unbuilt = workspaces.filter((w) => {
  const pkg = JSON.parse(readFileSync(join(root, w, "package.json"), "utf8"));
  const wantsDist = JSON.stringify(pkg.exports ?? pkg.main ?? "").includes("dist/");
  return wantsDist && !existsSync(join(root, w, "dist"));
});
for (const w of unbuilt) process.stderr.write(`stage-runtime: warning: ${w} is not built (no dist/); it is shipped without it\n`);

rmSync(dest, { recursive: true, force: true });
mkdirSync(dest, { recursive: true });
for (const f of ["package.json", "package-lock.json", ".npmrc"]) if (existsSync(join(root, f))) cpSync(join(root, f), join(dest, f));
for (const w of workspaces) cpSync(join(root, w), join(dest, w), { recursive: true, filter: keep, verbatimSymlinks: true });
for (const d of ["docs", "deploy/config", "deploy/scripts/credentials.mjs"]) if (existsSync(join(root, d))) cpSync(join(root, d), join(dest, d), { recursive: true });
// Production dependencies only, from npm's record of the installed tree (the
// hidden lockfile): every top-level package not flagged dev. Offline and exact.
const hidden = join(root, "node_modules/.package-lock.json");
if (!existsSync(hidden)) fail(`${hidden} is missing: run npm ci first`);
const installed = JSON.parse(readFileSync(hidden, "utf8")).packages ?? {};
let copied = 0;
const shippedDirs = new Set(workspaces);
for (const [key, entry] of Object.entries(installed)) {
  // Top-level packages, and those npm could not hoist out of a shipped workspace.
  const m = /^(?:(.+?)\/)?node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(key);
  if (!m || (m[1] && !shippedDirs.has(m[1]))) continue;
  const name = m[2];
  if (name === "@vigil/testing" || (entry.dev && !values["keep-dev"])) continue;
  const from = join(root, key);
  if (!existsSync(from)) continue;
  cpSync(from, join(dest, key), { recursive: true, verbatimSymlinks: true, filter: (src) => !src.endsWith(".map") });
  copied++;
}
if (copied === 0) fail("no production dependency found in node_modules/.package-lock.json");

// The workspace list shrinks to what was shipped, so npm does not look for the others.
const shipped = { ...rootPkg, workspaces, devDependencies: undefined, scripts: undefined };
writeFileSync(join(dest, "package.json"), JSON.stringify(shipped, null, 2) + "\n");
const size = execFileSync("du", ["-sh", dest], { encoding: "utf8" }).split("\t")[0];
process.stderr.write(`stage-runtime: ${workspaces.length} workspaces staged in ${dest} (${size})\n`);
