// Builds a package's native addon with node-gyp: configure only when the
// build directory has no Makefile yet, then an incremental build. The Node
// headers installed with the running Node are used, so nothing is downloaded.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** Builds the binding.gyp in `dir`. */
export function buildAddon(dir) {
  const gyp = join(dirname(require.resolve("node-gyp/package.json")), "bin/node-gyp.js");
  const run = (...args) => execFileSync(process.execPath, [gyp, ...args], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
  const nodedir = join(dirname(process.execPath), "..");
  const nodeDirArgs = existsSync(join(nodedir, "include/node/node_api.h")) ? [`--nodedir=${nodedir}`] : [];
  if (!existsSync(join(dir, "build/Makefile"))) run("configure", ...nodeDirArgs);
  run("build", "-j", "2");
}
