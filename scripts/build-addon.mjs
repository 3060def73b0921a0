#!/usr/bin/env node
// Builds the native addons of the workspace it is run in (every addon
// package's "build:pre"), all laid out the same way:
//
//   native/binding.gyp, native/src/*        the addon that ships
//   test/native/binding.gyp, test/native/*   test-only addons (optional); never
//                                            shipped: deploy/scripts/stage-runtime.mjs
//                                            leaves test/ out
//
// node-gyp configures once (again when binding.gyp changed), then builds
// incrementally, against the headers installed with the running Node, so
// nothing is downloaded.
//
//   node ../../scripts/build-addon.mjs [--needs HEADER --without "what happens instead"]
//
// --needs: an addon that only makes sense with an optional system library is
// skipped with a warning, not a failure, when HEADER is missing.
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Builds the binding.gyp in `dir`. */
export function buildAddon(dir) {
  const gyp = join(dirname(require.resolve("node-gyp/package.json")), "bin/node-gyp.js");
  const run = (...args) => execFileSync(process.execPath, [gyp, ...args], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
  const nodedir = join(dirname(process.execPath), "..");
  const nodeDirArgs = existsSync(join(nodedir, "include/node/node_api.h")) ? [`--nodedir=${nodedir}`] : [];
  const makefile = join(dir, "build/Makefile");
  if (!existsSync(makefile) || statSync(join(dir, "binding.gyp")).mtimeMs > statSync(makefile).mtimeMs) run("configure", ...nodeDirArgs);
  run("build", "-j", "2");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { needs: { type: "string" }, without: { type: "string" } } });
  const pkg = process.cwd();
  const name = relative(root, pkg);
  if (values.needs && !existsSync(values.needs)) {
    process.stderr.write(`build: ${name}: ${values.needs} is missing, the addon is skipped${values.without ? ` (${values.without})` : ""}\n`);
    process.exit(0);
  }
  if (!existsSync(join(pkg, "native/binding.gyp"))) {
    process.stderr.write(`build: ${name}: no native/binding.gyp here\n`);
    process.exit(1);
  }
  buildAddon(join(pkg, "native"));
  if (existsSync(join(pkg, "test/native/binding.gyp"))) buildAddon(join(pkg, "test/native"));
}
