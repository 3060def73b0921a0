// Builds the native addon with node-gyp: configure only when native/build is
// missing, then an incremental build. The Node headers installed with the
// running Node are used, so nothing is downloaded.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), "../native");
const require = createRequire(import.meta.url);
const gyp = join(dirname(require.resolve("node-gyp/package.json")), "bin/node-gyp.js");
const nodedir = join(dirname(process.execPath), "..");
const nodeDirArgs = existsSync(join(nodedir, "include/node/node_api.h")) ? [`--nodedir=${nodedir}`] : [];
const run = (...args) => execFileSync(process.execPath, [gyp, ...args], { cwd: nativeDir, stdio: ["ignore", "ignore", "inherit"] });
if (!existsSync(join(nativeDir, "build/Makefile"))) run("configure", ...nodeDirArgs);
run("build", "-j", "2");
