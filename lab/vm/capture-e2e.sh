#!/bin/bash
# Runs INSIDE the kernel-module VM (kmod/test/vm/run-vm.sh), from the repo root:
# the real /dev/vigil rings -> the capture service (source kernel) -> NATS ->
# a subscriber counting the frames of known flows. Results are JSON lines
# {"k":..,"v":..} on stdout (the host is read-only in the VM); the vitest side
# (lab/test/vm-stack.test.ts) asserts on them.
set -u
REPO=$(pwd)
RULE=$VIGIL_KMOD/tools/vigil-rule
TRAF=$VIGIL_KMOD/tools/vigil-traffic
W=/tmp/vmstack-capture
mkdir -p "$W"
A="ip netns exec vsA"
B="ip netns exec vsB"
A4=10.98.0.1 B4=10.98.0.2 A6=fd98::1 B6=fd98::2

emit() { printf '{"k":"%s","v":%s}\n' "$1" "$2"; }
fail() { emit error "\"$(echo "$*" | tr '"\n' "' ")\""; cleanup; exit 1; }
now_ms() { date +%s%3N; }
wait_file() { # file word seconds
	local i
	for i in $(seq $(($3 * 20))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
	return 1
}
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
snmp_tcp() { # ns field -> value (Tcp line of /proc/net/snmp; v4 and v6 both count there)
	ip netns exec "$1" awk -v f="$2" '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == f) c = i; h = 1 } else print $c }' /proc/net/snmp
}

t0=$(now_ms)
modprobe veth 2>/dev/null
# Loopback capture on, so that every packet is in the ring (captured == seen)
# and the capture service's own skipping of loopback frames is exercised.
insmod "$VIGIL_KO" capture_loopback=1 || fail "insmod $VIGIL_KO"
ip netns add vsA && ip netns add vsB || fail "netns add"
ip link add vsA0 netns vsA type veth peer name vsB0 netns vsB || fail "veth"
$A ip link set lo up; $B ip link set lo up
$A ip addr add $A4/24 dev vsA0; $B ip addr add $B4/24 dev vsB0
$A ip addr add $A6/64 dev vsA0 nodad; $B ip addr add $B6/64 dev vsB0 nodad
$A ip link set vsA0 up; $B ip link set vsB0 up
# Neighbours resolved before the capture starts, so the counted flows are not
# interleaved with first-contact resolution.
$A busybox ping -c 1 -W 5 $B4 > /dev/null 2>&1 || fail "no IPv4 path between the namespaces"
$A busybox ping -6 -c 1 -W 5 $B6 > /dev/null 2>&1 || fail "no IPv6 path between the namespaces"

$B nats-server -a 127.0.0.1 -p 4222 > "$W/nats.log" 2>&1 &
PIDS+=($!)
for i in $(seq 200); do $B bash -c "exec 3<>/dev/tcp/127.0.0.1/4222" 2>/dev/null && break; sleep 0.1; done
$B bash -c "exec 3<>/dev/tcp/127.0.0.1/4222" 2>/dev/null || fail "nats-server did not listen: $(tail -5 $W/nats.log)"

$B node lab/vm/frame-counter.mjs nats://127.0.0.1:4222 "$W/ready" $A4 $A6 > "$W/counter.out" 2> "$W/counter.err" &
CPID=$!
PIDS+=($CPID)
cat > "$W/vigil.yaml" <<EOF
{"nats": {"servers": ["nats://127.0.0.1:4222"]},
 "capture": {"source": "kernel", "flushMs": 2, "sourceId": "vm/kernel", "metrics": {"host": "127.0.0.1", "port": 9470}}}
EOF
tc0=$(now_ms)
$B env VIGIL_CONFIG="$W/vigil.yaml" VIGIL_STATE_DIR="$W" node services/capture/dist/main.js > "$W/capture.log" 2>&1 &
CAPPID=$!
PIDS+=($CAPPID)
wait_file "$W/ready" ready 120 || fail "no capture heartbeat within 120 s: capture: $(tail -c 1500 $W/capture.log) counter: $(tail -c 500 $W/counter.err)"
emit capture_start_ms $(($(now_ms) - tc0))
emit vm_setup_ms $(($(now_ms) - t0))
$B "$RULE" stats > "$W/stats0"

# --- UDP, v4 and v6: 100 datagrams each from A to B:7001.
$B "$TRAF" udp-recv 7001 200 30000 > "$W/udp.recv" 2>&1 &
RPID=$!
wait_file "$W/udp.recv" ready 30 || fail "udp receiver not ready"
$A "$TRAF" udp-send $B4 7001 100 200 > /dev/null
$A "$TRAF" udp-send $B6 7001 100 200 > /dev/null
sleep 0.3; kill -TERM $RPID 2>/dev/null; wait $RPID
emit udp_received "$(sed -n 's/^received=//p' "$W/udp.recv")"

# --- ICMP echo: 5 pings each way of family.
$A busybox ping -c 5 -i 0.2 -W 5 $B4 > /dev/null 2>&1; emit ping4_rc $?
$A busybox ping -6 -c 5 -i 0.2 -W 5 $B6 > /dev/null 2>&1; emit ping6_rc $?

# --- TCP: one small connection per family; A's segment counters are the truth
# (A's namespace carries no other TCP).
for fam in 4 6; do
	if [ $fam = 4 ]; then dst=$B4; else dst=$B6; fi
	out0=$(snmp_tcp vsA OutSegs); in0=$(snmp_tcp vsA InSegs); rst0=$(snmp_tcp vsA OutRsts)
	$B "$TRAF" tcp-recv 7002 20000 > "$W/tcp.recv" 2>&1 &
	RPID=$!
	wait_file "$W/tcp.recv" ready 30 || fail "tcp receiver not ready"
	$A "$TRAF" tcp-send $dst 7002 1000 10000 > /dev/null 2>&1 || fail "tcp-send v$fam failed"
	wait $RPID
	sleep 0.5
	emit tcp${fam}_segs "{\"out\":$(($(snmp_tcp vsA OutSegs) - out0)),\"in\":$(($(snmp_tcp vsA InSegs) - in0))}"
done

# --- Packets dropped by rules keep being captured, flagged dropped:
# a general rule (v4 UDP to port 7009) and a host rule (fd98::1, v6 UDP to 7010).
$B "$RULE" add 9001 net src $A4/32 proto udp dport 7009 > /dev/null || fail "rule 9001"
$B "$TRAF" udp-recv 7009 50 5000 > "$W/drop.recv" 2>&1 &
RPID=$!
wait_file "$W/drop.recv" ready 30 || fail "receiver not ready"
$A "$TRAF" udp-send $B4 7009 50 100 > /dev/null
$B "$RULE" add 9002 host $A6 > /dev/null || fail "rule 9002"
$A "$TRAF" udp-send $B6 7009 30 100 > /dev/null
sleep 0.3; kill -TERM $RPID 2>/dev/null; wait $RPID
emit drop_received "$(sed -n 's/^received=//p' "$W/drop.recv")"
$B "$RULE" dump > "$W/dump"
emit rule_hits "{\"general\":$(sed -n 's/^id=9001 .* hits=\([0-9]*\).*/\1/p' "$W/dump"),\"host\":$(sed -n 's/^id=9002 .* hits=\([0-9]*\).*/\1/p' "$W/dump")}"
$B "$RULE" flush > /dev/null

# Let the last batches leave (flushMs 2) and reach the counter.
sleep 1.5
$B "$RULE" stats > "$W/stats1"
field() { sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$1" | head -n1; }
emit kmod_stats "{\"seen\":$(($(field $W/stats1 seen) - $(field $W/stats0 seen))),\"captured\":$(($(field $W/stats1 captured) - $(field $W/stats0 captured))),\"dropped\":$(($(field $W/stats1 dropped) - $(field $W/stats0 dropped))),\"ring_drops\":$(($(field $W/stats1 ring_drops) - $(field $W/stats0 ring_drops)))}"
$B curl -s -m 10 -o "$W/metrics" http://127.0.0.1:9470/metrics
metric() { awk -v m="$1" '$1 ~ "^"m"({|$)" { s += $2 } END { printf "%d", s }' "$W/metrics"; }
reason() { awk -v m="$1" -v r="reason=\"$2\"" 'index($1, m"{") == 1 && index($1, r) { s += $2 } END { printf "%d", s }' "$W/metrics"; }
emit capture_metrics "{\"captured\":$(metric vigil_capture_frames_captured_total),\"published\":$(metric vigil_capture_frames_published_total),\"ring_drops\":$(metric vigil_capture_ring_drops_total),\"frames_dropped\":$(metric vigil_capture_frames_dropped_total),\"malformed\":$(reason vigil_capture_frames_skipped_total malformed),\"loopback\":$(reason vigil_capture_frames_skipped_total loopback)}"

kill -USR1 $CPID
for i in $(seq 200); do [ -s "$W/counter.out" ] && break; sleep 0.1; done
cat "$W/counter.out"
[ -s "$W/counter.out" ] || emit error "\"frame counter printed nothing: $(tail -c 500 "$W/counter.err" | tr '"\n' "' ")\""

# A graceful stop of the capture service.
ts=$(now_ms)
kill -TERM $CAPPID
for i in $(seq 150); do kill -0 $CAPPID 2>/dev/null || break; sleep 0.1; done
if kill -0 $CAPPID 2>/dev/null; then emit capture_exit '"still running 15 s after SIGTERM"'; else wait $CAPPID; emit capture_exit $?; fi
emit capture_stop_ms $(($(now_ms) - ts))
grep -i '"level":\(50\|60\)' "$W/capture.log" | head -3 | sed 's/^/capture-log: /'
cleanup
ip netns del vsA; ip netns del vsB
rmmod vigil; emit rmmod $?
dmesg | grep -E -i 'WARNING|BUG|Oops|general protection|Call Trace' | head -5 | sed 's/^/dmesg: /'
emit done true
