// Runs a benchmark written in TypeScript without compiling it into any dist/:
// `node --import <repo>/scripts/ts-bench.mjs bench/bench.ts`. Only the bench
// files themselves are transpiled here (types stripped, nothing else); the
// code they measure is imported from the package's built dist/, so a benchmark
// times exactly what the service runs.
//
// The transpiler runs in a short-lived child process (scripts/ts-transpile.mjs),
// never in the benchmark's own: TypeScript's compiler would add about 90 MB to
// the peak RSS the benchmarks report.
import { execFileSync } from "node:child_process";
import { register } from "node:module";
import { fileURLToPath } from "node:url";
import { isMainThread } from "node:worker_threads";

if (isMainThread) register(import.meta.url);

const transpiler = fileURLToPath(new URL("./ts-transpile.mjs", import.meta.url));

export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
  const source = execFileSync(process.execPath, [transpiler, fileURLToPath(url)], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  return { format: "module", source, shortCircuit: true };
}
