#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build vigil.ko against Debian 12's 6.1 headers, boot that kernel under
# qemu (TCG) and run test/vm/cases.sh inside. Prints the guest's output,
# including one "VIGIL-CASE <name> PASS|FAIL <ms> <detail>" line per case,
# then "N passed, N failed". Exit status 0 only if every case passed.
#
#   kmod/test/vm/run-tests.sh [CASE...]
#
# VIGIL_VM_TIMEOUT (default 1500 s) bounds the whole VM run.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KMOD=$(cd "$HERE/../.." && pwd)
cd "$KMOD"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$HERE/run-vm.sh" --timeout "${VIGIL_VM_TIMEOUT:-1500}" --mem 2048 --smp 2 -- \
	bash test/vm/cases.sh "'$*'" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
pass=$(grep -c '^VIGIL-CASE [^ ]* PASS' "$out")
fail=$(grep -c '^VIGIL-CASE [^ ]* FAIL' "$out")
echo "$pass passed, $fail failed"
[ "$rc" = 0 ] && [ "$fail" = 0 ] && [ "$pass" -gt 0 ]
