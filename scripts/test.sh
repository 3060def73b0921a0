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
  node "$root/scripts/test-summary.mjs" "$report" "$root/scripts/optional-skips.txt" || status=$((status == 0 ? 1 : status))
fi
exit $status
