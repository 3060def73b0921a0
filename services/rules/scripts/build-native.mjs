// Builds the libnftables binding with node-gyp: configure once, then
// incremental `make`. Without libnftables' headers it is skipped with a
// warning: the service then drives nftables by running `nft -j -f`.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const gyp = join(dirname(require.resolve("node-gyp/package.json")), "bin/node-gyp.js");
const run = (...args) => execFileSync(process.execPath, [gyp, ...args], { cwd: pkg, stdio: ["ignore", "ignore", "inherit"] });
// The headers of the running Node are installed with it; no download needed.
const nodedir = join(dirname(process.execPath), "..");
const nodeDirArgs = existsSync(join(nodedir, "include/node/node_api.h")) ? [`--nodedir=${nodedir}`] : [];
if (!existsSync("/usr/include/nftables/libnftables.h")) {
  process.stderr.write("build: services/rules: libnftables-dev is not installed; the in-process nftables binding is skipped (the service will run `nft`)\n");
  process.exit(0);
}
if (!existsSync(join(pkg, "build/Makefile"))) run("configure", ...nodeDirArgs);
run("build", "-j", "2");
