#!/usr/bin/env bash
# Records benign TCP traffic for the default PST models: real conversations (HTTP, HTTPS, DNS over TCP,
# FTP control, SSH with OpenSSH, a key-value protocol, a few refused connections) between two network
# namespaces over a veth pair with a 1500-byte MTU, captured with tcpdump (headers only).
# Needs root, iproute2, tcpdump, openssh-server, openssh-client, openssl, node.
# usage: gen-benign.sh OUT.pcap [SEED] [CONNECTIONS]
set -euo pipefail
out=${1:?usage: gen-benign.sh OUT.pcap [SEED] [CONNECTIONS]}
seed=${2:-20261127}
conns=${3:-3000}
here=$(cd "$(dirname "$0")" && pwd)
ns_s=vigil-pst-srv-$$
ns_c=vigil-pst-cli-$$
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns_s" 2>/dev/null || true
  ip netns del "$ns_c" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns_s"
ip netns add "$ns_c"
ip link add vps$$ netns "$ns_s" type veth peer name vpc$$ netns "$ns_c"
ip -n "$ns_s" addr add 10.77.0.1/24 dev vps$$
ip -n "$ns_c" addr add 10.77.0.2/24 dev vpc$$
ip -n "$ns_s" addr add fd77::1/64 dev vps$$ nodad
ip -n "$ns_c" addr add fd77::2/64 dev vpc$$ nodad
for ns in "$ns_s" "$ns_c"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set vps$$ up
ip -n "$ns_c" link set vpc$$ up
# No offloads: the capture should show segments as they are on a real 1500-byte wire.
ip netns exec "$ns_s" ethtool -K vps$$ tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec "$ns_c" ethtool -K vpc$$ tso off gso off gro off >/dev/null 2>&1 || true

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=lab >/dev/null 2>&1
ssh-keygen -q -t ed25519 -N "" -f "$tmp/id" >/dev/null
ssh-keygen -q -t ed25519 -N "" -f "$tmp/id.wrong" >/dev/null
ssh-keygen -q -t ed25519 -N "" -f "$tmp/hostkey" >/dev/null
cat > "$tmp/sshd_config" <<CONF
Port 22
ListenAddress 10.77.0.1
ListenAddress fd77::1
HostKey $tmp/hostkey
PermitRootLogin prohibit-password
AuthorizedKeysFile $tmp/id.pub
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $tmp/sshd.pid
MaxStartups 100
CONF
mkdir -p /run/sshd
ip netns exec "$ns_s" /usr/sbin/sshd -D -f "$tmp/sshd_config" -E "$tmp/sshd.log" &
pids+=($!)

ip netns exec "$ns_s" node "$here/benign-traffic.mjs" serve 10.77.0.1 fd77::1 "$tmp" > "$tmp/serve.out" &
pids+=($!)
for _ in $(seq 50); do grep -q ready "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done

ip netns exec "$ns_c" tcpdump -i vpc$$ -s 96 -U -w "$tmp/capture.pcap" tcp 2>"$tmp/tcpdump.log" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
sleep 1
ip netns exec "$ns_c" node "$here/benign-traffic.mjs" drive 10.77.0.1 fd77::1 "$seed" "$conns" "$tmp/id" || { echo "traffic driver failed with $?" >&2; exit 1; }
sleep 2
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
cp "$tmp/capture.pcap" "$out"
echo "wrote $out: $(tcpdump -nr "$out" 2>/dev/null | wc -l) TCP segments" >&2
