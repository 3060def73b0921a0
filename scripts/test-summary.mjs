// Prints the closing line of a test run from vitest's JSON report and, under CI (CI=true), fails the run when a
// test was skipped that is not listed as optional: on a fresh machine the README's test command installs every
// tool, kernel and image a test needs, so a skip there means a set-up step is missing, not a test that passed.
// Usage: node scripts/test-summary.mjs REPORT.json OPTIONAL-SKIPS.txt
import { readFileSync } from "node:fs";

const [reportPath, optionalPath] = process.argv.slice(2);
const report = JSON.parse(readFileSync(reportPath, "utf8"));
const skipped = report.numPendingTests + report.numTodoTests;
// A file whose set-up failed fails no test of its own: it is counted on its own.
const broken = report.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
console.log(
  `tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped${broken > 0 ? `; ${broken} test file(s) failed outside any test (set-up or import)` : ""}`,
);

if (process.env.CI !== "true" || skipped === 0) process.exit(0);

/** Lines "<text in the test's full name>  # why it may skip"; blank lines and lines starting with # are ignored. */
function optionalSkips(path) {
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const at = line.indexOf("#");
      return { match: (at < 0 ? line : line.slice(0, at)).trim(), why: at < 0 ? "" : line.slice(at + 1).trim() };
    })
    .filter((o) => o.match && o.why);
}

const optional = optionalSkips(optionalPath);
const unexpected = [];
for (const file of report.testResults) {
  for (const t of file.assertionResults) {
    if (t.status !== "pending" && t.status !== "skipped" && t.status !== "todo") continue;
    const name = `${file.name.replace(`${process.cwd()}/`, "")} > ${t.fullName}`;
    if (!optional.some((o) => name.includes(o.match))) unexpected.push(name);
  }
}
if (unexpected.length > 0) {
  console.error(`CI: ${unexpected.length} test(s) skipped that are not listed as optional in ${optionalPath}:`);
  for (const name of unexpected) console.error(`  ${name}`);
  console.error("A skip under CI means a set-up step is missing: the test command must install what the test needs.");
  process.exit(1);
}
