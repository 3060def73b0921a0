#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the VM (see ../bench.sh): UDP packets per second through a
# veth pair between two namespaces, without the module, with the module and
# no rules, and with 100,000 host rules in both namespaces. Last line: JSON.
set -u
VIGIL_CASES_LIB=1 . "$VIGIL_KMOD/test/vm/cases.sh"
DUR=${VIGIL_BENCH_MS:-3000}
REPS=${VIGIL_BENCH_REPS:-5}
modprobe veth
setup_netns > /dev/null 2>&1 || { echo "setup failed"; exit 1; }

measure() { # -> received pps of one run
	$B "$TRAF" sink 5500 "$DUR" > "$TMP/sink" 2>&1 &
	local spid=$!
	wait_ready "$TMP/sink"
	$A "$TRAF" flood $B4 5500 $((DUR + 300)) > /dev/null 2>&1
	wait $spid
	sed -n 's/.*pps=//p' "$TMP/sink"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Interleaved rounds, so that a slow phase of the (shared, emulated) host
# hits all three configurations alike; medians over the rounds.
: > "$TMP/p0"; : > "$TMP/p1"; : > "$TMP/p2"
for r in $(seq "$REPS"); do
	lsmod | grep -q '^vigil ' && rmmod vigil
	measure >> "$TMP/p0"
	insmod "$VIGIL_KO" || exit 1
	measure >> "$TMP/p1"
	$A "$RULE" bulk 100000 10.200.0.0 > /dev/null || exit 1
	$B "$RULE" bulk 100000 10.200.0.0 > /dev/null || exit 1
	measure >> "$TMP/p2"
	echo "# round $r: no_module=$(tail -n1 "$TMP/p0") no_rules=$(tail -n1 "$TMP/p1") rules_100k=$(tail -n1 "$TMP/p2")"
done
$B "$RULE" stats | sed 's/^/# vB stats: /'
rmmod vigil
p0=$(median < "$TMP/p0"); p1=$(median < "$TMP/p1"); p2=$(median < "$TMP/p2")
awk -v p0="$p0" -v p1="$p1" -v p2="$p2" -v n="$REPS" 'BEGIN {
	printf "{\"unit\":\"udp packets/s through veth, TCG guest, median of %d interleaved rounds\",\"no_module_pps\":%d,\"module_no_rules_pps\":%d,\"module_100k_host_rules_pps\":%d,", n, p0, p1, p2
	printf "\"ratio_module_no_rules\":%.3f,\"ratio_module_100k_rules\":%.3f,\"ratio_100k_rules_vs_no_rules\":%.3f}\n", p1 / p0, p2 / p0, p2 / p1
}'
