// Prints a TypeScript file as JavaScript (types stripped, ES2022 modules, an
// inline source map): the transpiler behind scripts/ts-bench.mjs, in a process
// of its own so the benchmark's memory figures do not include TypeScript.
// Usage: node scripts/ts-transpile.mjs FILE.ts
import { readFileSync } from "node:fs";
import ts from "typescript";

const file = process.argv[2];
const out = ts.transpileModule(readFileSync(file, "utf8"), {
  fileName: file,
  compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, sourceMap: false, inlineSourceMap: true },
});
process.stdout.write(out.outputText);
