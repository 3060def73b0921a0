#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test (unit, integration
# with a real nats-server and nftables in namespaces, the kernel module in a
# VM, the console in Chromium). Extra arguments go to vitest (a file filter).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/bootstrap.sh" test
mkdir -p test-artifacts
report=test-artifacts/vitest-report.json
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
set -e
if [ -f "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    // A file whose set-up failed fails no test of its own: it is counted on its own.
    const broken = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped${broken > 0 ? `; ${broken} test file(s) failed outside any test (set-up or import)` : ""}`);
  ' "$report"
fi
exit $status
