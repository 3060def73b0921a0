#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vigil.ko cases for the kernel findings of the security review: each is the
# attack, written before its fix. Sourced by cases.sh, whose helpers they use.

# F5: one host rule per address. A second id for the same address replaces
# the first (an allow over a detector's drop), instead of EEXIST wedging
# every later reconcile and the rest of the message.
case_host_replace() {
	local out
	$B "$RULE" flush
	$B "$RULE" add 110 host $A4 || { fail "add drop"; return 1; }
	expect_eq blocked "$(udp_exchange vA $B4 5070 20)" 0 || return 1
	out=$($B "$RULE" add 111 host $A4 action accept 2>&1) || { fail "second id for the address refused: $out"; return 1; }
	expect_eq allowed "$(udp_exchange vA $B4 5070 20)" 20 || return 1
	expect_eq host_rules "$(stat_of vB host_rules)" 1 || return 1
	expect_eq ids "$($B "$RULE" dump | awk '{ printf "%s %s ", $1, $3 }')" "id=111 $A4 " || return 1
	out=$($B "$RULE" del 110 2>&1) && { fail "the replaced id 110 still exists"; return 1; }
	# Replaced again, with an expiry: the expiry is the new rule's.
	$B "$RULE" add 112 host $A4 timeout 600000 || { fail "third id"; return 1; }
	expect_eq blocked_again "$(udp_exchange vA $B4 5070 20)" 0 || return 1
	$B "$RULE" dump | grep -q "^id=112 host $A4 .*timeout_ms=" || { fail "dump: $($B "$RULE" dump)"; return 1; }
	# A message whose first 50 rules take addresses held by other ids is
	# applied whole.
	$B "$RULE" bulk 100 10.210.0.0 idbase 1000 > /dev/null || { fail "bulk 1"; return 1; }
	$B "$RULE" bulk 100 10.210.0.50 idbase 2000 > "$TMP/bulk" 2>&1 || { fail "overlapping bulk: $(cat "$TMP/bulk")"; return 1; }
	expect_eq bulk_host_rules "$(stat_of vB host_rules)" 151 || return 1
	expect_eq bulk_dump "$($B "$RULE" dump count)" "rules=151" || return 1
	$B "$RULE" flush
}

# F6: general rules match the remote side (SRC) and the local side (DST),
# the port is the local one: direction means what it means to nftables.
case_rule_remote() {
	$A "$RULE" flush; $B "$RULE" flush
	# A CIDR blocked outbound on A stops A's traffic to that CIDR ...
	$A "$RULE" add 120 net src 10.99.0.2/31 dir out || { fail "add"; return 1; }
	expect_eq cidr_out_blocked "$(udp_exchange vA $B4 5071 20)" 0 || return 1
	# ... and not what comes from it.
	expect_eq cidr_in_passes "$(udp_exchange vB $A4 5071 20)" 20 || return 1
	$A "$RULE" add 120 net src 10.99.0.2/31 || { fail "update to both"; return 1; }
	expect_eq cidr_both_in "$(udp_exchange vB $A4 5071 20)" 0 || return 1
	expect_eq cidr_both_out "$(udp_exchange vA $B4 5071 20)" 0 || return 1
	$A "$RULE" flush
	$A "$RULE" add 121 net src fd99::2/127 dir out || { fail "add v6"; return 1; }
	expect_eq v6_cidr_out_blocked "$(udp_exchange vA $B6 5071 20)" 0 || return 1
	$A "$RULE" flush
	# DST is our own side: on egress, the source address.
	$A "$RULE" add 122 net dst 10.99.0.1/32 proto udp dir out || { fail "add local"; return 1; }
	expect_eq local_out_blocked "$(udp_exchange vA $B4 5072 20)" 0 || return 1
	$A "$RULE" flush
	# The port is ours: outbound, the source port of our replies.
	$B "$RULE" add 123 net proto udp dport 5073 dir out || { fail "add port"; return 1; }
	expect_eq local_port_out_blocked "$(udp_exchange vB $A4 6073 20 64 5073)" 0 || return 1
	expect_eq remote_port_out_passes "$(udp_exchange vB $A4 5073 20 64 6074)" 20 || return 1
	$B "$RULE" flush
}

# Runs sh -c "$1" as root of a new user namespace, in a new network
# namespace that user namespace owns: what anyone gets with unshare -Urn.
# unshare(CLONE_NEWUSER) refuses a chrooted caller, and the VM runs its
# commands chrooted into the host root: so it starts from pid 1's root (the
# initramfs, with busybox) and comes back into the host root inside.
userns_sh() {
	nsenter --root=/proc/1/root --wd=/ /bin/busybox unshare -Urn \
		/bin/busybox chroot /host /bin/sh -c "$1"
}

# F14: rule memory is charged to the memory cgroup of who adds it.
case_memcg() {
	local cg=/sys/fs/cgroup out
	mountpoint -q $cg || mount -t cgroup2 none $cg || { fail "cannot mount cgroup2"; return 1; }
	grep -qw memory $cg/cgroup.controllers || { fail "no memory controller"; return 1; }
	echo +memory > $cg/cgroup.subtree_control
	mkdir -p $cg/vigil-t
	out=$(
		echo $BASHPID > $cg/vigil-t/cgroup.procs
		userns_sh "
			'$RULE' stats > /dev/null
			b=\$(cat $cg/vigil-t/memory.current)
			'$RULE' bulk 20000 10.230.0.0 batch 1000 > /dev/null || exit 1
			a=\$(cat $cg/vigil-t/memory.current)
			echo \$((a - b))" 2>&1
	) || { fail "bulk in a user namespace: $out"; rmdir $cg/vigil-t; return 1; }
	sleep 1
	rmdir $cg/vigil-t 2>/dev/null
	DETAIL="20000 rules charged $out bytes"
	[ "$out" -gt 2500000 ] 2>/dev/null || { fail "$DETAIL"; return 1; }
}

# F14: a namespace owned by a user namespace (what anyone gets with
# unshare -Urn) holds at most userns_max_rules rules.
case_userns_limit() {
	local p=/sys/module/vigil/parameters/userns_max_rules out old
	old=$(cat $p 2>/dev/null) || { fail "no userns_max_rules parameter"; return 1; }
	echo 1000 > $p || { fail "parameter not writable"; return 1; }
	out=$(userns_sh "'$RULE' bulk 1000 10.220.0.0 batch 500 > /dev/null && '$RULE' add 1 net src 10.221.0.0/24" 2>&1)
	local rc=$?
	echo "$old" > $p
	[ $rc != 0 ] || { fail "rule 1001 accepted in a user namespace's netns"; return 1; }
	echo "$out" | grep -q "rule limit" || { fail "no extack: $out"; return 1; }
	# The initial namespace's owner is not limited by it.
	echo 1000 > $p
	$B "$RULE" bulk 2000 10.222.0.0 > /dev/null 2>&1
	rc=$?
	echo "$old" > $p
	[ $rc = 0 ] || { fail "init user namespace limited too"; return 1; }
	$B "$RULE" flush
	DETAIL="default=$old; $(echo "$out" | grep kernel:)"
}

# F19: the rule set and its events are for CAP_NET_ADMIN only.
case_priv_reads() {
	local out U="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all"
	$B "$RULE" flush
	$B "$RULE" add 130 host 10.240.0.1 || { fail "add"; return 1; }
	out=$($B $U "$RULE" dump 2>&1) && { fail "unprivileged dump: $out"; return 1; }
	echo "$out" | grep -q "not permitted" || { fail "unprivileged dump: $out"; return 1; }
	out=$($B $U "$RULE" monitor 1 300 2>&1) && { fail "unprivileged monitor: $out"; return 1; }
	echo "$out" | grep -q "not permitted" || { fail "unprivileged monitor: $out"; return 1; }
	$B "$RULE" dump | grep -q '^id=130 ' || { fail "privileged dump"; return 1; }
	# The owner of a user namespace reads its own namespace's rules.
	out=$(userns_sh "'$RULE' add 5 host 10.241.0.1 && '$RULE' dump" 2>&1)
	echo "$out" | grep -q '^id=5 ' || { fail "userns owner dump: $out"; return 1; }
	$B "$RULE" flush
	DETAIL="dump and events need CAP_NET_ADMIN"
}

# Sends one UDP datagram from A to B's IPv6 address as two hand-made
# fragments (test/vm/frag6.py MODE) and prints how many B received.
frag6_exchange() { # mode port
	local rpid mac
	mac=$($B cat /sys/class/net/vB0/address)
	$B "$TRAF" udp-recv "$2" 1 30000 > "$TMP/recv" 2>&1 &
	rpid=$!
	wait_ready "$TMP/recv"
	$A python3 "$VIGIL_KMOD/test/vm/frag6.py" vA0 "$mac" $A6 $B6 "$2" "$1" > "$TMP/send" 2>&1 ||
		log "frag6.py: $(cat "$TMP/send")"
	sleep 0.3
	kill -TERM $rpid 2>/dev/null
	wait $rpid
	sed -n 's/^received=//p' "$TMP/recv"
}

# F24: an IPv6 first fragment that does not hold the ports (the header
# chain, or the transport header, continues in the second fragment) cannot
# pass a port rule: a drop rule on the port drops it, so the datagram never
# reassembles.
case_frag6_ports() {
	local d0 d1
	$B "$RULE" flush
	# Without a rule the shapes reassemble: the attack packets are valid.
	expect_eq whole_open "$(frag6_exchange whole 7010)" 1 || return 1
	expect_eq chain_open "$(frag6_exchange split-chain 7010)" 1 || return 1
	$B "$RULE" add 140 net family 6 proto udp dport 7010 || { fail "add port rule"; return 1; }
	expect_eq whole_blocked "$(frag6_exchange whole 7010)" 0 || return 1
	d0=$(stat_of vB dropped)
	expect_eq chain_blocked "$(frag6_exchange split-chain 7010)" 0 || return 1
	d1=$(stat_of vB dropped)
	expect_eq chain_first_dropped $((d1 - d0)) 1 || return 1
	# The review's shape: 6.1 drops it on receive, the module first.
	d0=$(stat_of vB dropped)
	expect_eq ports_blocked "$(frag6_exchange split-ports 7010)" 0 || return 1
	d1=$(stat_of vB dropped)
	expect_eq ports_first_dropped $((d1 - d0)) 1 || return 1
	# A port accept rule does not vouch for a fragment that hides its port:
	# it falls through to the protocol drop below it.
	$B "$RULE" flush
	$B "$RULE" add 141 net family 6 proto udp dport 7011 action accept prio 10 || { fail "add accept"; return 1; }
	$B "$RULE" add 142 net family 6 proto udp action drop prio 20 || { fail "add drop"; return 1; }
	expect_eq accept_whole "$(frag6_exchange whole 7011)" 1 || return 1
	expect_eq accept_not_for_hidden "$(frag6_exchange split-chain 7011)" 0 || return 1
	$B "$RULE" flush
}
