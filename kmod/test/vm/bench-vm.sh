#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the VM (see ../bench.sh): UDP packets per second through a
# veth pair between two namespaces, without the module, with the module and
# no rules, and with 100,000 host rules in both namespaces. Last line: JSON.
set -u
VIGIL_CASES_LIB=1 . "$VIGIL_KMOD/test/vm/cases.sh"
DUR=${VIGIL_BENCH_MS:-3000}
REPS=${VIGIL_BENCH_REPS:-3}
modprobe veth
setup_netns > /dev/null 2>&1 || { echo "setup failed"; exit 1; }

measure() { # -> median received pps over REPS runs
	local i vals=()
	for i in $(seq "$REPS"); do
		$B "$TRAF" sink 5500 "$DUR" > "$TMP/sink" 2>&1 &
		local spid=$!
		wait_ready "$TMP/sink"
		$A "$TRAF" flood $B4 5500 $((DUR + 300)) > /dev/null 2>&1
		wait $spid
		vals+=("$(sed -n 's/.*pps=//p' "$TMP/sink")")
	done
	printf '%s\n' "${vals[@]}" | sort -n | sed -n "$(((REPS + 1) / 2))p"
}

echo "# no module"
p0=$(measure)
insmod "$VIGIL_KO" || exit 1
echo "# module, no rules"
p1=$(measure)
$A "$RULE" bulk 100000 10.200.0.0 > /dev/null || exit 1
$B "$RULE" bulk 100000 10.200.0.0 > /dev/null || exit 1
echo "# module, 100000 host rules in each namespace"
p2=$(measure)
$B "$RULE" stats | sed 's/^/# vB stats: /'
rmmod vigil
awk -v p0="$p0" -v p1="$p1" -v p2="$p2" 'BEGIN {
	printf "{\"unit\":\"udp packets/s through veth, TCG guest\",\"no_module_pps\":%d,\"module_no_rules_pps\":%d,\"module_100k_host_rules_pps\":%d,", p0, p1, p2
	printf "\"ratio_module_no_rules\":%.3f,\"ratio_module_100k_rules\":%.3f,\"ratio_100k_rules_vs_no_rules\":%.3f}\n", p1 / p0, p2 / p0, p2 / p1
}'
