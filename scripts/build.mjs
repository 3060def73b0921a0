#!/usr/bin/env node
// Builds every workspace: code generation and native addons ("build:pre";
// every addon package runs scripts/build-addon.mjs, which builds its native/
// and, for tests, its test/native/), TypeScript with project references, then
// front ends ("build:post").
// Incremental: a second run with nothing changed takes a few seconds.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const rootPkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const typecheckOnly = process.argv.includes("--typecheck");

function workspaces() {
  const dirs = [];
  for (const pattern of rootPkg.workspaces) {
    if (!pattern.endsWith("/*")) {
      if (existsSync(join(root, pattern, "package.json"))) dirs.push(pattern);
      continue;
    }
    const base = pattern.slice(0, -2);
    const out = execFileSync("ls", ["-1", join(root, base)], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const d of out.sort()) if (existsSync(join(root, base, d, "package.json"))) dirs.push(`${base}/${d}`);
  }
  return dirs.map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) }));
}

function run(cmd, args, cwd) {
  const t = Date.now();
  try {
    execFileSync(cmd, args, { cwd, stdio: "inherit", env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH}` } });
  } catch (err) {
    process.stderr.write(`build: ${cmd} ${args.join(" ")} failed in ${cwd} (exit ${err.status ?? err.signal})\n`);
    process.exit(1);
  }
  return Date.now() - t;
}

const all = workspaces();
// Code generation first: everything else depends on the proto and ABI outputs.
const order = (w) => (w.dir === "proto" ? 0 : w.dir === "packages/frames" ? 1 : 2);
for (const w of [...all].sort((a, b) => order(a) - order(b))) {
  if (w.pkg.scripts?.["build:pre"]) {
    const ms = run("npm", ["run", "--silent", "build:pre"], join(root, w.dir));
    process.stderr.write(`build: ${w.dir} build:pre ${ms} ms\n`);
  }
}
const projects = all.filter((w) => existsSync(join(root, w.dir, "tsconfig.json"))).map((w) => w.dir);
const ms = run("tsc", ["-b", ...(typecheckOnly ? ["--noEmit"] : []), ...projects], root);
process.stderr.write(`build: tsc -b (${projects.length} projects) ${ms} ms\n`);
if (!typecheckOnly)
  for (const w of all)
    if (w.pkg.scripts?.["build:post"]) {
      const ms = run("npm", ["run", "--silent", "build:post"], join(root, w.dir));
      process.stderr.write(`build: ${w.dir} build:post ${ms} ms\n`);
    }
