// Runs a benchmark written in TypeScript without compiling it into any dist/:
// `node --import <repo>/scripts/ts-bench.mjs bench/bench.ts`. Only the bench
// files themselves are transpiled here (types stripped, nothing else); the
// code they measure is imported from the package's built dist/, so a benchmark
// times exactly what the service runs.
import { register } from "node:module";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { isMainThread } from "node:worker_threads";

if (isMainThread) register(import.meta.url);

let ts;
export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
  ts ??= (await import("typescript")).default;
  const source = await readFile(fileURLToPath(url), "utf8");
  const out = ts.transpileModule(source, {
    fileName: fileURLToPath(url),
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, sourceMap: false, inlineSourceMap: true },
  });
  return { format: "module", source: out.outputText, shortCircuit: true };
}
