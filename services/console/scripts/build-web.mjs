#!/usr/bin/env node
// Builds the front end (type check, then Vite) unless dist/web is newer than
// every source: the shared build runs this on every `node scripts/build.mjs`.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const output = join(pkg, "dist/web/index.html");

function newest(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((n) => newest(join(path, n))));
}

const inputs = [join(pkg, "web"), join(pkg, "src/wire.ts"), join(pkg, "package.json"), join(pkg, "../../package-lock.json")].filter(existsSync);
if (!process.argv.includes("--force") && existsSync(output) && statSync(output).mtimeMs > Math.max(...inputs.map(newest))) {
  process.stderr.write("console: front end up to date\n");
  process.exit(0);
}
const run = (cmd, args) => execFileSync(cmd, args, { cwd: pkg, stdio: "inherit" });
run("tsc", ["-p", "web/tsconfig.json"]);
run("vite", ["build", "--config", "web/vite.config.ts", "--logLevel", "warn"]);
