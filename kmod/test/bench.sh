#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Benchmark (not a test): packets per second through a veth pair inside the
# VM, without the module, with it and no rules, and with 100,000 host rules.
# Prints the JSON line; the numbers are TCG-emulated, so read the ratios.
#   VIGIL_BENCH_MS (default 3000) per run, VIGIL_BENCH_REPS (default 5).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
out=$(test/vm/run-vm.sh --timeout 900 --mem 2048 --smp 2 -- \
	"VIGIL_BENCH_MS=${VIGIL_BENCH_MS:-3000} VIGIL_BENCH_REPS=${VIGIL_BENCH_REPS:-5} bash test/vm/bench-vm.sh")
printf '%s\n' "$out" | grep '^#' >&2 || true
printf '%s\n' "$out" | grep '^{' | tail -n1
