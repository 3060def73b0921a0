#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The vigil.ko test cases. Runs INSIDE the VM (see run-tests.sh), as root,
# with the module at $VIGIL_KO and the tools in $VIGIL_KMOD/tools.
# Prints one line per case:   VIGIL-CASE <name> PASS|FAIL <ms> <detail>
# Optional argument: a space-separated list of case names to run.
set -u
T=$VIGIL_KMOD/tools
RULE=$T/vigil-rule
RING=$T/vigil-ringdump
TRAF=$T/vigil-traffic
FUZZ=$T/vigil-nlfuzz
A="ip netns exec vA"
B="ip netns exec vB"
A4=10.99.0.1 B4=10.99.0.2 A6=fd99::1 B6=fd99::2
TMP=$(mktemp -d)
ONLY=" ${1:-} "
FAILED=0

log() { echo "# $*"; }
want() { [ "$ONLY" = "  " ] || [ "$1" = load_unload ] || [[ "$ONLY" == *" $1 "* ]]; }

BAD_RE='WARNING:|BUG:|BUG |Oops|oops:|lockdep|possible circular|possible recursive|suspicious RCU|RCU stall|rcu_sched self-detected|general protection|Call Trace|UBSAN|KASAN|kernel BUG|refcount_t|list_add corruption|list_del corruption|slab error|Poison overwritten|double free|use-after-free|scheduling while atomic|sleeping function called'

# New kernel messages since the last call; fails on any splat.
dmesg_clean() {
	local new
	new=$(dmesg -c 2>/dev/null)
	printf '%s\n' "$new" >> "$TMP/dmesg.all"
	if printf '%s\n' "$new" | grep -Eq "$BAD_RE"; then
		printf '%s\n' "$new" | grep -E -A20 "$BAD_RE" | head -60 | sed 's/^/# dmesg: /'
		return 1
	fi
	return 0
}

run_case() {
	local name=$1 fn=$2 t0 t1 rc
	want "$name" || return 0
	DETAIL=""
	t0=$(date +%s%N)
	log "---- $name"
	$fn
	rc=$?
	if ! dmesg_clean; then
		rc=1
		DETAIL="$DETAIL; kernel log has a splat"
	fi
	t1=$(date +%s%N)
	if [ $rc = 0 ]; then
		echo "VIGIL-CASE $name PASS $(((t1 - t0) / 1000000)) ${DETAIL:-ok}"
	else
		FAILED=$((FAILED + 1))
		echo "VIGIL-CASE $name FAIL $(((t1 - t0) / 1000000)) ${DETAIL:-failed}"
	fi
}

fail() { DETAIL="$*"; log "FAIL: $*"; return 1; }
expect_eq() { # what got want
	if [ "$2" != "$3" ]; then fail "$1: got '$2' want '$3'"; return 1; fi
	DETAIL="${DETAIL:+$DETAIL, }$1=$2"
	return 0
}

stat_of() { # ns field
	ip netns exec "$1" "$RULE" stats | tr ' ' '\n' | sed -n "s/^$2=//p"
}

snmp() { # ns section field
	ip netns exec "$1" awk -v p="$2:" -v f="$3" '
		$1 == p { if (!h) { for (i = 2; i <= NF; i++) n[i] = $i; h = 1 }
			  else { for (i = 2; i <= NF; i++) if (n[i] == f) print $i } }' /proc/net/snmp
}

drain() { # ns file: read every frame of the namespace's rings
	ip netns exec "$1" "$RING" > "$2" 2>&1
}

count() { # file awk-condition over: dir fam proto dport icmp flags
	awk -v cond="$2" '
		/^frame / {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
			if (eval_cond()) n++
		}
		function eval_cond(   c, parts, k, m, ok, i) {
			m = split(cond, parts, " ")
			for (i = 1; i <= m; i++) {
				split(parts[i], k, "=")
				if (f[k[1]] != k[2]) return 0
			}
			return 1
		}
		END { print n + 0 }' "$1"
}

wait_for() { # file word: up to 30 s (the host may be loaded)
	local i
	for i in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
	log "timed out waiting for '$2' in $1"
	return 1
}
wait_ready() { wait_for "$1" ready; }

udp_exchange() { # from-ns to-addr port count [size [sport]] -> prints received count
	local ns=$1 addr=$2 port=$3 n=$4 size=${5:-64} sport=${6:-} dst rpid
	if [ "$ns" = vA ]; then dst=vB; else dst=vA; fi
	ip netns exec $dst "$TRAF" udp-recv "$port" "$n" 30000 > "$TMP/recv" 2>&1 &
	rpid=$!
	wait_ready "$TMP/recv"
	ip netns exec "$ns" "$TRAF" udp-send "$addr" "$port" "$n" "$size" $sport > "$TMP/send" 2>&1
	# veth delivers synchronously: once the sender is done, what was not
	# dropped is queued at the receiver. Tell it to stop waiting.
	sleep 0.3
	kill -TERM $rpid 2>/dev/null
	wait $rpid
	sed -n 's/^received=//p' "$TMP/recv"
}

setup_netns() {
	ip netns del vA 2>/dev/null; ip netns del vB 2>/dev/null
	ip netns add vA && ip netns add vB || return 1
	ip link add vA0 netns vA type veth peer name vB0 netns vB || return 1
	$A ip link set lo up; $B ip link set lo up
	$A ip addr add $A4/24 dev vA0; $B ip addr add $B4/24 dev vB0
	$A ip addr add $A6/64 dev vA0 nodad; $B ip addr add $B6/64 dev vB0 nodad
	$A ip link set vA0 up; $B ip link set vB0 up
	# Resolve neighbours once so that later counts are not disturbed.
	$A busybox ping -c 1 -W 2 $B4 > /dev/null 2>&1
	$A busybox ping -6 -c 1 -W 2 $B6 > /dev/null 2>&1
	return 0
}

# ---------------------------------------------------------------- cases

case_load_unload() {
	SLAB0=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
	modprobe veth || { fail "modprobe veth"; return 1; }
	insmod "$VIGIL_KO" || { fail "insmod"; return 1; }
	[ -c /dev/vigil ] || { fail "/dev/vigil missing"; return 1; }
	"$RULE" stats > /dev/null || { fail "genl family not reachable"; return 1; }
	rmmod vigil || { fail "rmmod"; return 1; }
	[ ! -e /dev/vigil ] || { fail "/dev/vigil still there"; return 1; }
	insmod "$VIGIL_KO" || { fail "second insmod"; return 1; }
	setup_netns || { fail "netns setup"; return 1; }
	$A "$RING" -i > "$TMP/info" || { fail "ring info"; return 1; }
	DETAIL="$(cat "$TMP/info")"
	# The second reader of a namespace gets EBUSY.
	$A "$RING" -q -H 8000 > "$TMP/hold" 2>&1 &
	local hpid=$!
	wait_for "$TMP/hold" holding
	$A "$RING" -q > /dev/null 2>&1
	local rc=$?
	kill $hpid; wait $hpid
	[ $rc = 4 ] || { fail "second open did not get EBUSY (rc=$rc)"; return 1; }
	# Another namespace has its own reader.
	$B "$RING" -q > /dev/null || { fail "open in vB"; return 1; }
	DETAIL="$DETAIL; second open EBUSY"
	return 0
}

cap_setup() { drain vA /dev/null; drain vB /dev/null; }

case_capture_udp() { # family
	local fam=$1 dst n=200
	[ $fam = 4 ] && dst=$B4 || dst=$B6
	cap_setup
	local got; got=$(udp_exchange vA $dst 5001 $n)
	drain vA "$TMP/ra"; drain vB "$TMP/rb"
	expect_eq received "$got" $n || return 1
	expect_eq A_egress "$(count "$TMP/ra" "dir=out fam=$fam proto=17 dport=5001")" $n || return 1
	expect_eq B_ingress "$(count "$TMP/rb" "dir=in fam=$fam proto=17 dport=5001")" $n || return 1
}

case_capture_icmp() {
	local fam=$1 dst req rep proto n=3
	if [ $fam = 4 ]; then dst=$B4 req=8 rep=0 proto=1; else dst=$B6 req=128 rep=129 proto=58; fi
	cap_setup
	$A busybox ping -$fam -c $n -i 1 -W 2 $dst > "$TMP/ping" 2>&1 || { fail "ping failed"; return 1; }
	drain vA "$TMP/ra"; drain vB "$TMP/rb"
	expect_eq A_req_out "$(count "$TMP/ra" "dir=out fam=$fam proto=$proto icmp=$req")" $n || return 1
	expect_eq B_req_in "$(count "$TMP/rb" "dir=in fam=$fam proto=$proto icmp=$req")" $n || return 1
	expect_eq B_rep_out "$(count "$TMP/rb" "dir=out fam=$fam proto=$proto icmp=$rep")" $n || return 1
	expect_eq A_rep_in "$(count "$TMP/ra" "dir=in fam=$fam proto=$proto icmp=$rep")" $n || return 1
}

case_capture_tcp() {
	local fam=$1 dst bytes=${2:-1000} pid a0 b0 a1 b1
	[ $fam = 4 ] && dst=$B4 || dst=$B6
	cap_setup
	a0=$(snmp vA Tcp OutSegs); b0=$(snmp vB Tcp OutSegs)
	$B "$TRAF" tcp-recv 5002 30000 > "$TMP/trecv" 2>&1 &
	pid=$!
	wait_ready "$TMP/trecv"
	$A "$TRAF" tcp-send $dst 5002 $bytes > "$TMP/tsend" 2>&1 || { fail "tcp-send: $(cat "$TMP/tsend")"; return 1; }
	wait $pid
	sleep 1
	a1=$(snmp vA Tcp OutSegs); b1=$(snmp vB Tcp OutSegs)
	drain vA "$TMP/ra"; drain vB "$TMP/rb"
	expect_eq received "$(sed -n 's/^received=//p' "$TMP/trecv")" $bytes || return 1
	local ao bi bo ai
	ao=$(count "$TMP/ra" "dir=out fam=$fam proto=6")
	bi=$(count "$TMP/rb" "dir=in fam=$fam proto=6")
	bo=$(count "$TMP/rb" "dir=out fam=$fam proto=6")
	ai=$(count "$TMP/ra" "dir=in fam=$fam proto=6")
	if [ "$bytes" -le 1000 ]; then
		# No GSO for one small segment: frames == segments sent.
		expect_eq A_out_vs_OutSegs "$ao" $((a1 - a0)) || return 1
		expect_eq B_out_vs_OutSegs "$bo" $((b1 - b0)) || return 1
	fi
	expect_eq B_in "$bi" "$ao" || return 1
	expect_eq A_in "$ai" "$bo" || return 1
}

case_gso() {
	# 2 MB over TCP: LOCAL_OUT sees GSO super-packets larger than the MTU,
	# captured once each with their full length.
	case_capture_tcp 4 2000000 || return 1
	local big
	big=$(awk '/^frame / && /dir=out/ && /proto=6/ { split($0, x, " len="); split(x[2], y, " "); if (y[1] > 1500) n++ } END { print n + 0 }' "$TMP/ra")
	[ "$big" -gt 0 ] || { fail "no GSO frame larger than the MTU captured"; return 1; }
	DETAIL="$DETAIL, gso_frames=$big"
}

case_ring_poll() {
	# A reader blocked in poll() is woken by new frames.
	drain vB /dev/null
	$B "$RING" -q -n 20 -t 30000 > "$TMP/poll" 2>&1 &
	local pid=$!
	sleep 0.5
	udp_exchange vA $B4 5010 20 > /dev/null
	wait $pid
	local rc=$?
	[ $rc = 0 ] || { fail "poll reader rc=$rc: $(cat "$TMP/poll")"; return 1; }
	DETAIL="$(tail -n1 "$TMP/poll")"
}

case_full_ring() {
	local rc
	full_ring_inner
	rc=$?
	# Back to the default geometry whatever happened.
	rmmod vigil 2>/dev/null
	insmod "$VIGIL_KO" || { fail "reload"; return 1; }
	return $rc
}

full_ring_inner() {
	rmmod vigil || { fail "rmmod"; return 1; }
	insmod "$VIGIL_KO" slots=64 || { fail "insmod slots=64"; return 1; }
	drain vB /dev/null	# allocates the rings
	local n=2000 got seen cap rd
	got=$(udp_exchange vA $B4 5003 $n)
	# One STATS_GET for all three: they must be consistent with each other.
	$B "$RULE" stats > "$TMP/st"
	drain vB "$TMP/rb"
	seen=$(tr ' ' '\n' < "$TMP/st" | sed -n 's/^seen=//p')
	cap=$(tr ' ' '\n' < "$TMP/st" | sed -n 's/^captured=//p')
	rd=$(tr ' ' '\n' < "$TMP/st" | sed -n 's/^ring_drops=//p')
	expect_eq received "$got" $n || return 1
	[ "$rd" -gt 0 ] || { fail "no ring drops counted"; return 1; }
	expect_eq seen "$seen" $((cap + rd)) || return 1
	# The namespace's own background packets (IPv6 ND/MLD) may add a few
	# frames between the two reads: the rings can only be ahead.
	local rdn ctld
	rdn=$(sed -n 's/^total=\([0-9]*\).*/\1/p' "$TMP/rb")
	ctld=$(sed -n 's/.*drops=//p' "$TMP/rb")
	[ "$rdn" -ge "$cap" ] && [ "$rdn" -le $((cap + 10)) ] || { fail "read $rdn frames, stats said $cap"; return 1; }
	[ "$ctld" -ge "$rd" ] && [ "$ctld" -le $((rd + 10)) ] || { fail "ctl drops $ctld, stats said $rd"; return 1; }
	[ "$rdn" -le 128 ] || { fail "read $rdn frames from 2 rings of 64"; return 1; }
	DETAIL="$DETAIL, read=$rdn, ring_drops=$rd"
}

rule_hits() { # ns id
	ip netns exec "$1" "$RULE" dump | awk -v id="id=$2" '$1 == id { for (i = 1; i <= NF; i++) if ($i ~ /^hits=/) { sub("hits=", "", $i); print $i } }'
}

case_rule_host() {
	local d0 d1 got
	$B "$RULE" flush
	drain vB /dev/null
	$B "$RULE" add 10 host $A4 || { fail "add"; return 1; }
	d0=$(stat_of vB dropped)
	got=$(udp_exchange vA $B4 5004 50)
	d1=$(stat_of vB dropped)
	drain vB "$TMP/rb"
	expect_eq received "$got" 0 || return 1
	expect_eq dropped $((d1 - d0)) 50 || return 1
	expect_eq hits "$(rule_hits vB 10)" 50 || return 1
	expect_eq captured_flagged "$(count "$TMP/rb" "dir=in fam=4 proto=17 dport=5004 flags=1")" 50 || return 1
	# Idempotent add: same id, same address, again.
	$B "$RULE" add 10 host $A4 || { fail "re-add"; return 1; }
	expect_eq rules "$(stat_of vB host_rules)" 1 || return 1
	$B "$RULE" del 10 || { fail "del"; return 1; }
	expect_eq after_del "$(udp_exchange vA $B4 5004 50)" 50 || return 1
	# IPv6 host rule.
	$B "$RULE" add 11 host $A6 || { fail "add v6"; return 1; }
	expect_eq v6_blocked "$(udp_exchange vA $B6 5004 20)" 0 || return 1
	expect_eq v4_passes "$(udp_exchange vA $B4 5004 20)" 20 || return 1
	$B "$RULE" flush
}

case_rule_cidr() {
	$B "$RULE" flush
	$B "$RULE" add 20 net src 10.99.0.0/24 dst 10.99.0.0/16 || { fail "add"; return 1; }
	expect_eq v4_blocked "$(udp_exchange vA $B4 5005 30)" 0 || return 1
	expect_eq v6_passes "$(udp_exchange vA $B6 5005 30)" 30 || return 1
	$B "$RULE" add 20 net src 10.98.0.0/16 || { fail "update"; return 1; }
	expect_eq other_net "$(udp_exchange vA $B4 5005 30)" 30 || return 1
	$B "$RULE" add 21 net src fd99::/64 || { fail "add v6"; return 1; }
	expect_eq v6_blocked "$(udp_exchange vA $B6 5005 30)" 0 || return 1
	$B "$RULE" flush
}

case_rule_ports() {
	$B "$RULE" flush
	$B "$RULE" add 30 net proto udp dport 6000-6010 || { fail "add"; return 1; }
	expect_eq in_range_low "$(udp_exchange vA $B4 6000 20)" 0 || return 1
	expect_eq in_range_high "$(udp_exchange vA $B4 6010 20)" 0 || return 1
	expect_eq above "$(udp_exchange vA $B4 6011 20)" 20 || return 1
	expect_eq below "$(udp_exchange vA $B4 5999 20)" 20 || return 1
	$B "$RULE" flush
}

case_rule_proto() {
	$B "$RULE" flush
	$B "$RULE" add 40 net proto icmp || { fail "add"; return 1; }
	if $A busybox ping -c 2 -W 1 $B4 > /dev/null 2>&1; then fail "ping passed"; return 1; fi
	expect_eq udp_passes "$(udp_exchange vA $B4 5006 20)" 20 || return 1
	$B "$RULE" flush
	$A busybox ping -c 1 -W 2 $B4 > /dev/null 2>&1 || { fail "ping after flush"; return 1; }
	DETAIL="$DETAIL, icmp blocked"
}

case_rule_egress() {
	local d0 d1
	$A "$RULE" flush
	# An ingress-only rule on A does not stop A's own egress datagrams.
	$A "$RULE" add 50 host $B4 dir in || { fail "add in"; return 1; }
	expect_eq dir_in_only "$(udp_exchange vA $B4 5007 20)" 20 || return 1
	$A "$RULE" add 50 host $B4 dir out || { fail "update out"; return 1; }
	d0=$(stat_of vA dropped)
	expect_eq egress_blocked "$(udp_exchange vA $B4 5007 20)" 0 || return 1
	d1=$(stat_of vA dropped)
	expect_eq dropped_at_A $((d1 - d0)) 20 || return 1
	# General egress rule: SRC is the remote side (B), the port A's own.
	$A "$RULE" add 51 net src 10.99.0.2/32 proto udp dport 5008 dir out || { fail "add general out"; return 1; }
	$A "$RULE" del 50
	expect_eq general_egress "$(udp_exchange vA $B4 6008 20 64 5008)" 0 || return 1
	expect_eq other_local_port "$(udp_exchange vA $B4 5008 20 64 5009)" 20 || return 1
	$A "$RULE" flush
}

case_rule_priority() {
	$B "$RULE" flush
	$B "$RULE" add 60 host $A4 action drop prio 100 || { fail "add host"; return 1; }
	$B "$RULE" add 61 net src 10.99.0.0/24 action accept prio 10 || { fail "add accept"; return 1; }
	expect_eq accept_wins "$(udp_exchange vA $B4 5011 20)" 20 || return 1
	expect_eq accept_hits "$(rule_hits vB 61)" 20 || return 1
	$B "$RULE" add 61 net src 10.99.0.0/24 action accept prio 200 || { fail "update"; return 1; }
	expect_eq drop_wins "$(udp_exchange vA $B4 5011 20)" 0 || return 1
	expect_eq drop_hits "$(rule_hits vB 60)" 20 || return 1
	# General rules among themselves: lower priority value first.
	$B "$RULE" flush
	$B "$RULE" add 62 net proto udp action drop prio 50
	$B "$RULE" add 63 net proto udp dport 5012 action accept prio 40
	expect_eq general_accept "$(udp_exchange vA $B4 5012 20)" 20 || return 1
	expect_eq general_drop "$(udp_exchange vA $B4 5013 20)" 0 || return 1
	$B "$RULE" flush
}

case_rule_fragments() {
	local d0 d1 fam dst
	for fam in 4 6; do
		[ $fam = 4 ] && dst=$B4 || dst=$B6
		$B "$RULE" flush
		# Port rule: only first fragments carry the port; the datagram
		# cannot be reassembled, nothing is delivered.
		$B "$RULE" add 70 net family $fam proto udp dport 7000 || { fail "add port rule"; return 1; }
		expect_eq v${fam}_port_rule "$(udp_exchange vA $dst 7000 10 3000)" 0 || return 1
		# A protocol rule matches every fragment: 3 per datagram.
		$B "$RULE" flush
		$B "$RULE" add 71 net family $fam proto udp || { fail "add proto rule"; return 1; }
		d0=$(stat_of vB dropped)
		expect_eq v${fam}_proto_rule "$(udp_exchange vA $dst 7001 10 3000)" 0 || return 1
		d1=$(stat_of vB dropped)
		expect_eq v${fam}_fragments_dropped $((d1 - d0)) 30 || return 1
		$B "$RULE" flush
		expect_eq v${fam}_after_flush "$(udp_exchange vA $dst 7001 10 3000)" 10 || return 1
	done
}

case_expiry() {
	local mpid t0
	$B "$RULE" flush
	$B "$RULE" monitor 2 40000 > "$TMP/mon" 2>&1 &
	mpid=$!
	wait_for "$TMP/mon" listening
	# 15 s: room for the blocked checks on a slow, shared, emulated host.
	t0=$(date +%s%N)
	$B "$RULE" add 80 host $A6 timeout 15000 || { fail "add"; return 1; }
	$B "$RULE" add 81 net src 10.99.0.0/24 proto udp dport 5021 timeout 15000 || { fail "add general"; return 1; }
	expect_eq host_blocked "$(udp_exchange vA $B6 5020 20)" 0 || return 1
	expect_eq general_blocked "$(udp_exchange vA $B4 5021 20)" 0 || return 1
	expect_eq other_port "$(udp_exchange vA $B4 5020 20)" 20 || return 1
	local el=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ $el -lt 14000 ] || { fail "host too slow: checks took ${el} ms of the 15 s timeout"; return 1; }
	# Sleep until 15.5 s after the add, however long the above took.
	local left=$(( (15500000000 - ($(date +%s%N) - t0)) / 1000000 ))
	[ $left -gt 0 ] && sleep "$(awk -v ms=$left 'BEGIN { print ms / 1000 }')"
	expect_eq host_expired "$(udp_exchange vA $B6 5020 20)" 20 || return 1
	expect_eq general_expired "$(udp_exchange vA $B4 5021 20)" 20 || return 1
	wait $mpid
	grep -q '^expired id=80 host fd99::1 ' "$TMP/mon" || { fail "no expiry event for 80: $(cat "$TMP/mon")"; return 1; }
	grep -q '^expired id=81 net src=10.99.0.0/24' "$TMP/mon" || { fail "no expiry event for 81: $(cat "$TMP/mon")"; return 1; }
	DETAIL="$DETAIL, events=2"
	sleep 0.5
	expect_eq rules_left "$($B "$RULE" dump count)" "rules=0" || return 1
	expect_eq host_rules "$(stat_of vB host_rules)" 0 || return 1
	expect_eq general_rules "$(stat_of vB general_rules)" 0 || return 1
}

case_bulk() {
	$B "$RULE" flush
	$B "$RULE" bulk 100000 10.200.0.0 idbase 1000000 batch 1000 > "$TMP/bulk" 2>&1 || { fail "bulk add: $(cat "$TMP/bulk")"; return 1; }
	local t0 t1
	t0=$(date +%s%N)
	expect_eq dump "$($B "$RULE" dump count)" "rules=100000" || return 1
	t1=$(date +%s%N)
	expect_eq host_rules "$(stat_of vB host_rules)" 100000 || return 1
	# Spot checks: one in the set drops egress to it, traffic from A passes.
	expect_eq traffic_passes "$(udp_exchange vA $B4 5030 20)" 20 || return 1
	DETAIL="$DETAIL, $(cat "$TMP/bulk"), dump_ms=$(((t1 - t0) / 1000000))"
	$B "$RULE" flush || { fail "flush"; return 1; }
	expect_eq after_flush "$(stat_of vB host_rules)" 0 || return 1
}

case_bulk_1m() {
	# The limit the header is sized for: a million host rules, added in
	# messages of 2000, dumped back completely (resumable dump).
	$B "$RULE" flush
	local t0 t1 slab
	$B "$RULE" bulk 1000000 20.0.0.0 idbase 10000000 batch 2000 > "$TMP/bulk" 2>&1 || { fail "bulk add: $(cat "$TMP/bulk")"; return 1; }
	slab=$(awk '$1 == "vigil_rule" { printf "%d objs x %d B", $2, $4 }' /proc/slabinfo)
	t0=$(date +%s%N)
	expect_eq dump "$($B "$RULE" dump count)" "rules=1000000" || return 1
	t1=$(date +%s%N)
	expect_eq host_rules "$(stat_of vB host_rules)" 1000000 || return 1
	expect_eq traffic_passes "$(udp_exchange vA $B4 5031 20)" 20 || return 1
	$B "$RULE" add 42 host $A4 || { fail "add one more"; return 1; }
	expect_eq blocked_in_1m "$(udp_exchange vA $B4 5031 20)" 0 || return 1
	DETAIL="$DETAIL, $(cat "$TMP/bulk"), dump_ms=$(((t1 - t0) / 1000000)), slab: $slab"
	$B "$RULE" flush || { fail "flush"; return 1; }
	expect_eq after_flush "$(stat_of vB host_rules)" 0 || return 1
}

case_policy() {
	local out
	out=$($B "$RULE" add 1 net src 10.0.0.0/33 2>&1) && { fail "prefix 33 accepted"; return 1; }
	echo "$out" | grep -q "prefix length too long" || { fail "no extack: $out"; return 1; }
	out=$($B "$RULE" add 1 net src 10.0.0.1/24 2>&1) && { fail "host bits accepted"; return 1; }
	out=$($B "$RULE" add 1 net src fd00::/64 dst 10.0.0.0/8 2>&1) && { fail "mixed accepted"; return 1; }
	out=$($B "$RULE" add 1 net proto icmp dport 80 2>&1) && { fail "ports with icmp accepted"; return 1; }
	out=$($B "$RULE" add 1 net dport 90-80 2>&1) && { fail "inverted range accepted"; return 1; }
	# Unprivileged: mutating commands need CAP_NET_ADMIN, reads do not.
	out=$($B setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$RULE" add 1 host 1.2.3.4 2>&1) && { fail "unprivileged add accepted"; return 1; }
	echo "$out" | grep -q "not permitted" || { fail "unprivileged add: $out"; return 1; }
	$B setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$RULE" stats > /dev/null || { fail "unprivileged stats refused"; return 1; }
	expect_eq rules "$(stat_of vB host_rules)/$(stat_of vB general_rules)" "0/0" || return 1
	DETAIL="strict policy + extack + CAP_NET_ADMIN ok"
}

case_config() {
	local got
	$B "$RULE" config capture 0 || { fail "set"; return 1; }
	drain vB /dev/null
	udp_exchange vA $B4 5040 20 > /dev/null
	drain vB "$TMP/rb"
	expect_eq capture_off "$(count "$TMP/rb" "dir=in proto=17 dport=5040")" 0 || return 1
	$B "$RULE" config capture 1 sample 4 || { fail "set sample"; return 1; }
	udp_exchange vA $B4 5040 400 > /dev/null
	drain vB "$TMP/rb"
	got=$(count "$TMP/rb" "dir=in proto=17 dport=5040")
	[ "$got" -ge 80 ] && [ "$got" -le 120 ] || { fail "sample 1/4 gave $got of 400"; return 1; }
	DETAIL="sample4=$got/400"
	$B "$RULE" config sample 1 capture_dropped 0
	$B "$RULE" add 90 host $A4
	udp_exchange vA $B4 5041 20 > /dev/null
	drain vB "$TMP/rb"
	expect_eq dropped_not_captured "$(count "$TMP/rb" "dir=in proto=17 dport=5041")" 0 || return 1
	$B "$RULE" config capture_dropped 1
	$B "$RULE" flush
	$B "$RULE" config | grep -q "capture=1 sample=1 capture_dropped=1 .*capture_loopback=0" || { fail "config get: $($B "$RULE" config)"; return 1; }
	# Loopback: not copied by default, rules still enforced on it; copied once asked for.
	drain vB /dev/null
	$B busybox ping -c 3 -W 2 127.0.0.1 > /dev/null || { fail "ping over lo"; return 1; }
	drain vB "$TMP/rb"
	expect_eq loopback_default "$(count "$TMP/rb" "if=1")" 0 || return 1
	$B "$RULE" add 91 net src 127.0.0.0/8 proto icmp
	$B busybox ping -c 1 -W 1 127.0.0.1 > /dev/null && { fail "loopback drop rule not enforced"; return 1; }
	$B "$RULE" flush
	$B "$RULE" config capture_loopback 1
	$B busybox ping -c 3 -W 2 127.0.0.1 > /dev/null || { fail "ping over lo"; return 1; }
	drain vB "$TMP/rb"
	expect_eq loopback_captured "$(count "$TMP/rb" "if=1 proto=1")" 12 || return 1
	$B "$RULE" config capture_loopback 0
	$B "$RULE" config | grep -q "capture_loopback=0" || { fail "config get"; return 1; }
}

case_fuzz() {
	$B "$RULE" flush
	$B "$T/vigil-nlfuzz" 10000 7 > "$TMP/fuzz" 2>&1 || { fail "fuzzer: $(cat "$TMP/fuzz")"; return 1; }
	"$T/vigil-nlfuzz" 3000 11 >> "$TMP/fuzz" 2>&1 || { fail "fuzzer init ns"; return 1; }
	DETAIL="$(head -n1 "$TMP/fuzz")"
	# Still functional afterwards.
	$B "$RULE" flush || { fail "flush after fuzz"; return 1; }
	"$RULE" flush
	expect_eq traffic "$(udp_exchange vA $B4 5050 20)" 20 || return 1
}

case_unload_traffic() {
	local fpid spid
	$B "$RULE" bulk 20000 10.201.0.0 idbase 5000000 > /dev/null || { fail "bulk"; return 1; }
	$B "$RULE" add 100 net src 10.98.0.0/16 timeout 60000
	$A "$RULE" add 101 host 10.202.0.1
	$B "$TRAF" sink 5060 4000 > "$TMP/sink" 2>&1 &
	spid=$!
	wait_ready "$TMP/sink"
	$A "$TRAF" flood $B4 5060 4000 > "$TMP/flood" 2>&1 &
	fpid=$!
	sleep 1.5
	rmmod vigil || { fail "rmmod under traffic"; return 1; }
	wait $fpid $spid
	[ ! -e /dev/vigil ] || { fail "device still present"; return 1; }
	DETAIL="flood: $(cat "$TMP/flood" | tr '\n' ' ') sink: $(cat "$TMP/sink" | tr '\n' ' ')"
	# Traffic still flows without the module.
	expect_eq traffic_after "$(udp_exchange vA $B4 5061 20)" 20 || return 1
	insmod "$VIGIL_KO" || { fail "reload"; return 1; }
}

case_slab() {
	rmmod vigil 2>/dev/null
	ip netns del vA; ip netns del vB
	sleep 2
	echo 3 > /proc/sys/vm/drop_caches
	local now delta
	now=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
	delta=$((now - SLAB0))
	grep -q '^vigil' /proc/slabinfo && { fail "vigil slab cache still present"; return 1; }
	DETAIL="SUnreclaim baseline=${SLAB0}kB now=${now}kB delta=${delta}kB"
	[ "$delta" -lt 4096 ] || { fail "$DETAIL"; return 1; }
}

# The cases of the security review's kernel findings (F5, F6, F14, F19).
. "$(dirname "${BASH_SOURCE[0]}")/cases-review.sh"

# Sourced with VIGIL_CASES_LIB=1: only the helpers above.
[ "${VIGIL_CASES_LIB:-0}" = 1 ] && return 0

dmesg -c > /dev/null 2>&1
SLAB0=0
run_case load_unload case_load_unload
if ! lsmod | grep -q '^vigil '; then
	echo "# module not loaded: stopping"
	exit 1
fi
run_case capture_v4_udp "case_capture_udp 4"
run_case capture_v6_udp "case_capture_udp 6"
run_case capture_v4_icmp "case_capture_icmp 4"
run_case capture_v6_icmp "case_capture_icmp 6"
run_case capture_v4_tcp "case_capture_tcp 4"
run_case capture_v6_tcp "case_capture_tcp 6"
run_case capture_gso case_gso
run_case ring_poll case_ring_poll
run_case full_ring case_full_ring
run_case rule_host case_rule_host
run_case rule_cidr case_rule_cidr
run_case rule_ports case_rule_ports
run_case rule_proto case_rule_proto
run_case rule_egress case_rule_egress
run_case rule_priority case_rule_priority
run_case rule_fragments case_rule_fragments
run_case rule_expiry case_expiry
run_case host_replace case_host_replace
run_case rule_remote case_rule_remote
run_case memcg_charge case_memcg
run_case userns_limit case_userns_limit
run_case priv_reads case_priv_reads
run_case frag6_ports case_frag6_ports
run_case bulk_100k case_bulk
run_case bulk_1m case_bulk_1m
run_case policy case_policy
run_case config case_config
run_case netlink_fuzz case_fuzz
run_case unload_under_traffic case_unload_traffic
run_case slab_baseline case_slab
echo "# failed cases: $FAILED"
rm -rf "$TMP"
exit $((FAILED > 0))
