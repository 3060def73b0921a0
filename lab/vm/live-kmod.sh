#!/bin/bash
# Runs INSIDE the kernel-module VM (kmod/test/vm/run-vm.sh), from the repo root:
# live blocking with the kernel module. A small lab: a bridge (namespace vlS),
# a victim (vlV) serving HTTP, an attacker (vlA) and a benign client (vlC).
# The whole stack runs in the victim's namespace: nats-server (JetStream),
# rules (enforcer kmod), pst, som, capture (source kernel); lab/vm/live-kmod.mjs
# drives the attacks and prints JSON lines {"k":..,"v":..}.
#   env: VM_LIVE_TTL (rule TTL, default 10), VM_LIVE_DETECTORS (default pst,som),
#        VM_LIVE_ATTACKS (default scan,flood)
set -u
W=/tmp/vmstack-live
mkdir -p "$W/www" "$W/js"
V4=10.97.0.10 V6=fd97::10 AT4=10.97.0.66 AT6=fd97::66 C4=10.97.0.21 C6=fd97::21

emit() { printf '{"k":"%s","v":%s}\n' "$1" "$2"; }
fail() { emit error "\"$(echo "$*" | tr '"\n' "' ")\""; cleanup; exit 1; }
now_ms() { date +%s%3N; }
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for ns in vlV vlA vlC vlS; do ip netns del $ns 2>/dev/null; done
}

t0=$(now_ms)
modprobe veth 2>/dev/null; modprobe bridge 2>/dev/null
insmod "$VIGIL_KO" || fail "insmod $VIGIL_KO"
for ns in vlS vlV vlA vlC; do ip netns add $ns || fail "netns add $ns"; ip -n $ns link set lo up; done
ip -n vlS link add br0 type bridge || fail "bridge"
ip -n vlS link set br0 up
i=0
for h in "vlV $V4 $V6" "vlA $AT4 $AT6" "vlC $C4 $C6"; do
	set -- $h
	i=$((i + 1))
	ip link add eth0 netns $1 type veth peer name p$i netns vlS || fail "veth $1"
	ip -n vlS link set p$i master br0 up
	ip -n $1 addr add $2/24 dev eth0
	ip -n $1 addr add $3/64 dev eth0 nodad
	ip -n $1 link set eth0 up
done
for h in vlA vlC; do
	ip netns exec $h busybox ping -c 1 -W 5 $V4 > /dev/null 2>&1 || fail "no IPv4 path from $h"
	ip netns exec $h busybox ping -6 -c 1 -W 5 $V6 > /dev/null 2>&1 || fail "no IPv6 path from $h"
done
echo "<html><body>vigil vm lab</body></html>" > "$W/www/index.html"
# The lab's own web server (HTTP/1.1, keep-alive), as in the captures the detectors' models were built from.
ip netns exec vlV python3 lab/tools/httpd.py --port 80 --root "$W/www" > "$W/httpd.log" 2>&1 &
PIDS+=($!)
for i in $(seq 300); do ip netns exec vlC curl -s -o /dev/null -m 2 http://$V4/ && break; sleep 0.1; done
ip netns exec vlC curl -s -o /dev/null -m 5 -f "http://[$V6]/" || fail "the victim's HTTP server does not answer"

ip netns exec vlV nats-server -a 127.0.0.1 -p 4222 -js -sd "$W/js" > "$W/nats.log" 2>&1 &
PIDS+=($!)
for i in $(seq 200); do ip netns exec vlV bash -c "exec 3<>/dev/tcp/127.0.0.1/4222" 2>/dev/null && break; sleep 0.1; done
emit lab_setup_ms $(($(now_ms) - t0))

ip netns exec vlV node lab/vm/live-kmod.mjs --nats nats://127.0.0.1:4222 --victim4 $V4 --victim6 $V6 \
	--atk $AT4 --atkNs vlA --client4 $C4 --client6 $C6 --clientNs vlC --ttl "${VM_LIVE_TTL:-10}" \
	--detectors "${VM_LIVE_DETECTORS:-pst,som}" --attacks "${VM_LIVE_ATTACKS:-scan,flood}" \
	--rule "$VIGIL_KMOD/tools/vigil-rule" 2> "$W/live.err"
rc=$?
emit live_rc $rc
[ $rc = 0 ] || tail -c 2000 "$W/live.err" | sed 's/^/live-err: /'
grep '^live-kmod:' "$W/live.err" | sed 's/^/log: /'
for f in /tmp/vigil-replay-*/rules.log /tmp/vigil-replay-*/capture-live.log; do [ -f "$f" ] && tail -c 2500 "$f" | sed "s|^|$(basename $f): |"; done
emit kmod_stats_end "\"$(ip netns exec vlV "$VIGIL_KMOD/tools/vigil-rule" stats | tr '\n' ' ')\""
cleanup
rmmod vigil; emit rmmod $?
dmesg | grep -E -i 'WARNING|BUG|Oops|general protection|Call Trace' | head -5 | sed 's/^/dmesg: /'
emit done true
