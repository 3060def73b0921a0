#!/usr/bin/env bash
# The Vigil attack lab: network namespaces joined by a bridge, a victim with
# HTTP/SSH/UDP services, benign clients and two attackers. Nothing leaves the
# namespaces this script creates.
#
#   lab.sh up                 build the lab and start the victim's services
#   lab.sh down               stop everything and delete the namespaces
#   lab.sh status             list namespaces and service pids
#   lab.sh exec HOST CMD...   run CMD in HOST's namespace (victim, c1, c2, c3, atk, atk2, sw)
#   lab.sh benign SECONDS [SEED]    run the benign traffic generators (a mix)
#   lab.sh generate STYLE SECONDS [SEED]   run one benign style (lab.sh generators lists them)
#   lab.sh generators         list the benign styles
#   lab.sh attack NAME        run one bounded attack (lab.sh attacks lists them)
#   lab.sh attacks            list the attack names
#   lab.sh capture FILE SECONDS     tcpdump on the victim's interface for SECONDS
#
# Environment: VLAB (namespace prefix, default "vlab") lets several labs exist
# side by side (tests use their own prefix); VLAB_STATE (default
# /run/vigil-lab/$VLAB) holds keys, configs, the web root and pid files;
# VLAB_ICMP_RATELIMIT=lifted (at up) lifts the victim's ICMP rate limit
# (default: the kernel's).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
VLAB=${VLAB:-vlab}
VLAB_STATE=${VLAB_STATE:-/run/vigil-lab/$VLAB}
PYTHON=${VLAB_PYTHON:-/usr/bin/python3}
LAB_USER=vlab
LAB_PASSWORD=sunshine

NET4=10.77.0
NET6=fd77:
GW4=$NET4.1
GW6=${NET6}:1

# name  last-octet (v4 and v6 suffix)  role
HOSTS=(victim:10 c1:21 c2:22 c3:23 atk:66 atk2:67)

die() { echo "lab: $*" >&2; exit 1; }
ns() { echo "$VLAB-$1"; }
host_octet() { local h; for h in "${HOSTS[@]}"; do [ "${h%%:*}" = "$1" ] && { echo "${h#*:}"; return; }; done; die "unknown host \"$1\" (hosts: victim c1 c2 c3 atk atk2 sw)"; }
addr4() { echo "$NET4.$(host_octet "$1")"; }
addr6() { echo "${NET6}:$(host_octet "$1")"; }
mac() { printf '02:77:00:00:00:%02x' "$(host_octet "$1")"; }
nsexec() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
need_root() { [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"; }

# ---------------------------------------------------------------- topology --

make_host() {
  local h=$1 n; n=$(ns "$h")
  ip netns add "$n"
  ip link add eth0 netns "$n" address "$(mac "$h")" type veth peer name "p-$h" netns "$(ns sw)"
  nsexec "$h" ip link set lo up
  # No router solicitations, no duplicate-address probes: less link-up chatter.
  nsexec "$h" sysctl -qw net.ipv6.conf.eth0.accept_ra=0 net.ipv6.conf.eth0.autoconf=0 \
    net.ipv6.conf.eth0.router_solicitations=0 net.ipv6.conf.eth0.dad_transmits=0
  nsexec "$h" ip addr add "$(addr4 "$h")/24" dev eth0
  nsexec "$h" ip -6 addr add "$(addr6 "$h")/64" dev eth0 nodad
  # Real NICs put MTU-sized segments on the wire; without this the capture
  # would hold 64 KB GSO super-packets that no detector sees in production.
  nsexec "$h" ethtool -K eth0 tso off gso off gro off >/dev/null 2>&1 || true
  nsexec "$h" ip link set eth0 up
  nsexec "$h" ip route add default via "$GW4"
  nsexec "$h" ip -6 route add default via "$GW6"
  ip netns exec "$(ns sw)" ip link set "p-$h" master br0
  # Switch ports are not hosts: no link-local address, no stray MLD/RS frames.
  ip netns exec "$(ns sw)" sysctl -qw "net.ipv6.conf.p-$h.disable_ipv6=1"
  ip netns exec "$(ns sw)" ethtool -K "p-$h" tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$(ns sw)" ip link set "p-$h" up
}

make_switch() {
  ip netns add "$(ns sw)"
  nsexec sw ip link set lo up
  nsexec sw ip link add br0 address 02:77:00:00:00:01 type bridge
  nsexec sw sysctl -qw net.ipv6.conf.br0.accept_ra=0 2>/dev/null || true
  # The bridge holds the gateway address so that replies to forged sources
  # leave the victim as they would on a real LAN; forwarding stays off, so the
  # gateway swallows them and nothing is routed anywhere.
  nsexec sw sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
  nsexec sw ip addr add "$GW4/24" dev br0
  nsexec sw ip -6 addr add "$GW6/64" dev br0 nodad
  nsexec sw ip link set br0 up
}

# ---------------------------------------------------------------- services --

ensure_lab_user() {
  # Labs built in parallel (tests) race for the passwd lock: retry briefly.
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    if ! id "$LAB_USER" >/dev/null 2>&1; then
      useradd --create-home --shell /bin/bash --comment "Vigil lab SSH target" "$LAB_USER" 2>/dev/null || true
    fi
    if id "$LAB_USER" >/dev/null 2>&1 && echo "$LAB_USER:$LAB_PASSWORD" | chpasswd 2>/dev/null; then
      return 0
    fi
    sleep 0.3
  done
  die "cannot create the lab user $LAB_USER (useradd/chpasswd keep failing)"
}

make_web_root() {
  local www=$VLAB_STATE/www
  [ -f "$www/.complete" ] && return 0
  mkdir -p "$www/pages" "$www/img" "$www/files"
  "$PYTHON" "$LAB_DIR/tools/mkwww.py" "$www"
  touch "$www/.complete"
}

make_ssh_material() {
  local d=$VLAB_STATE/ssh
  mkdir -p "$d"
  chmod 755 "$VLAB_STATE" "$d"
  [ -f "$d/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "vigil-lab host" -f "$d/ssh_host_ed25519_key"
  [ -f "$d/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C "vigil-lab client" -f "$d/client_key"
  install -m 644 "$d/client_key.pub" "$d/authorized_keys"
  cat >"$d/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey $d/ssh_host_ed25519_key
PidFile $VLAB_STATE/sshd.pid
AuthorizedKeysFile $d/authorized_keys
AllowUsers $LAB_USER
PermitRootLogin no
PasswordAuthentication yes
KbdInteractiveAuthentication no
# Password checks go to /etc/shadow directly: PAM session modules
# (pam_loginuid) fail inside containers.
UsePAM no
MaxAuthTries 6
MaxStartups 30:30:100
LoginGraceTime 20
PrintMotd no
Subsystem sftp internal-sftp
EOF
}

start_services() {
  mkdir -p /run/sshd
  nsexec victim /usr/sbin/sshd -f "$VLAB_STATE/ssh/sshd_config" -E "$VLAB_STATE/sshd.log"
  # A plain command (not the nsexec function) so $! is the daemon itself:
  # ip and setsid exec into python without forking.
  ip netns exec "$(ns victim)" setsid "$PYTHON" "$LAB_DIR/tools/httpd.py" --port 80 --root "$VLAB_STATE/www" \
    </dev/null >>"$VLAB_STATE/httpd.log" 2>&1 &
  echo $! >"$VLAB_STATE/httpd.pid"
  ip netns exec "$(ns victim)" setsid "$PYTHON" "$LAB_DIR/tools/udpd.py" --port 53 \
    </dev/null >>"$VLAB_STATE/udpd.log" 2>&1 &
  echo $! >"$VLAB_STATE/udpd.pid"
  wait_for_services
}

wait_for_services() {
  local i
  for i in $(seq 1 50); do
    if nsexec c1 curl -s -o /dev/null --max-time 1 "http://$(addr4 victim)/" \
      && nsexec c1 bash -c "exec 3<>/dev/tcp/$(addr4 victim)/22" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "the victim's services did not come up (see $VLAB_STATE/*.log)"
}

kill_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# ------------------------------------------------------------------ up/down --

lab_down() {
  local h n pid
  for f in sshd httpd udpd ftpd; do kill_pidfile "$VLAB_STATE/$f.pid"; done
  # Anything still running inside a lab namespace (a generator cut short, a
  # capture) belongs to this lab: end it so the namespace can go.
  for h in victim c1 c2 c3 atk atk2 sw; do
    n=$(ns "$h")
    ns_exists "$n" || continue
    for pid in $(ip netns pids "$n" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  done
  sleep 0.1
  for h in victim c1 c2 c3 atk atk2 sw; do
    n=$(ns "$h")
    ns_exists "$n" || continue
    for pid in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
}

lab_up() {
  need_root
  for tool in ip ethtool tcpdump nmap hping3 sshd ssh sshpass curl "$PYTHON"; do
    command -v "$tool" >/dev/null || [ -x "$tool" ] || [ -x "/usr/sbin/$tool" ] || die "missing $tool (apt-get install -y \$(grep -v '^#' scripts/deps/lab.apt))"
  done
  lab_down
  mkdir -p "$VLAB_STATE"
  trap 'echo "lab: setup failed, tearing down" >&2; lab_down' ERR
  make_switch
  for h in "${HOSTS[@]}"; do make_host "${h%%:*}"; done
  # The victim keeps the kernel's ICMP rate limit, as every real host does:
  # a UDP scan then gets a few "port unreachable" a second, not one per probe.
  # VLAB_ICMP_RATELIMIT=lifted restores the old lab (the committed train/ and
  # eval/ captures were recorded so): an answer per probe, scans in seconds.
  case ${VLAB_ICMP_RATELIMIT:-default} in
    default) ;;
    lifted) nsexec victim sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 ;;
    *) die "VLAB_ICMP_RATELIMIT=\"$VLAB_ICMP_RATELIMIT\": use default or lifted" ;;
  esac
  ensure_lab_user
  make_web_root
  make_ssh_material
  start_services
  trap - ERR
  # Hosts announce their multicast groups (MLD reports) for about two seconds
  # after link-up: let that pass so captures begin with a quiet network and
  # a benign capture holds no packet from an attacker's namespace.
  sleep "${VLAB_SETTLE:-3}"
  echo "lab $VLAB up: victim $(addr4 victim) $(addr6 victim), clients c1-c3, attackers atk $(addr4 atk), atk2 $(addr4 atk2)"
}

lab_status() {
  local h
  for h in sw victim c1 c2 c3 atk atk2; do
    if ns_exists "$(ns "$h")"; then echo "$(ns "$h") up"; else echo "$(ns "$h") absent"; fi
  done
  for f in sshd httpd udpd; do
    if [ -f "$VLAB_STATE/$f.pid" ] && kill -0 "$(cat "$VLAB_STATE/$f.pid")" 2>/dev/null; then
      echo "$f running (pid $(cat "$VLAB_STATE/$f.pid"))"
    else
      echo "$f stopped"
    fi
  done
}

# ------------------------------------------------------------------ traffic --

run_benign() {
  local seconds=${1:?seconds} seed=${2:-1}
  # exec: a SIGTERM sent to this script must reach the generator itself.
  exec "$PYTHON" "$LAB_DIR/tools/benign.py" --prefix "$VLAB" --state "$VLAB_STATE" \
    --seconds "$seconds" --seed "$seed" --victim4 "$(addr4 victim)" --victim6 "$(addr6 victim)" \
    --clients c1 c2 c3
}

run_style() {
  local style=${1:?style} seconds=${2:?seconds} seed=${3:-1}
  exec "$PYTHON" "$LAB_DIR/tools/styles.py" run "$style" --prefix "$VLAB" --state "$VLAB_STATE" \
    --seconds "$seconds" --seed "$seed" --victim4 "$(addr4 victim)" --victim6 "$(addr6 victim)" \
    --clients c1 c2 c3
}

ATTACKS=(scan-syn scan-connect scan-xmas scan-fin scan-null scan-udp scan-slow scan-ipv6
  flood-syn flood-udp flood-icmp flood-frag flood-spoofed ssh-brute
  scan-udp-silent ftp-brute ssh-slow)

# Which namespace sends each attack (attack-spoofed comes from the second attacker).
attack_host() { case $1 in flood-spoofed) echo atk2 ;; *) echo atk ;; esac; }

# hping3 exits 1 when nothing answered, which is the normal end of a flood.
hping() {
  local rc=0 host=$2
  shift 2
  nsexec "$host" timeout --signal=INT 30 hping3 -q "$@" || rc=$?
  [ $rc -le 1 ]
}

run_attack() {
  local name=$1 v4 v6
  v4=$(addr4 victim); v6=$(addr6 victim)
  local nm=(timeout --signal=INT 150 nmap -n -Pn --max-retries 1 --reason)
  case $name in
    scan-syn)     nsexec atk "${nm[@]}" -sS -T4 --top-ports 1000 "$v4" ;;
    scan-connect) nsexec atk "${nm[@]}" -sT -T4 --top-ports 1000 "$v4" ;;
    scan-xmas)    nsexec atk "${nm[@]}" -sX -T4 --top-ports 1000 "$v4" ;;
    scan-fin)     nsexec atk "${nm[@]}" -sF -T4 --top-ports 1000 "$v4" ;;
    scan-null)    nsexec atk "${nm[@]}" -sN -T4 --top-ports 1000 "$v4" ;;
    scan-udp)     nsexec atk "${nm[@]}" -sU -T4 --top-ports 200 "$v4" ;;
    # -T2 waits 0.4 s between probes: 100 ports take about 45 s.
    scan-slow)    nsexec atk "${nm[@]}" -sS -T2 --top-ports 100 "$v4" ;;
    scan-ipv6)    nsexec atk "${nm[@]}" -6 -sS -T4 --top-ports 1000 "$v6" ;;
    # Floods: -i sets the rate, -c bounds the count, timeout bounds the time.
    flood-syn)    hping "$name" atk -S -p 80 -i u250 -c 8000 "$v4" ;;
    flood-udp)    hping "$name" atk --udp -p 53 -d 64 -i u250 -c 8000 "$v4" ;;
    flood-icmp)   hping "$name" atk --icmp -d 56 -i u250 -c 8000 "$v4" ;;
    # 600-byte UDP payloads cut into 200-byte fragments: 4 fragments a datagram.
    flood-frag)   hping "$name" atk --udp -p 53 -d 600 -f -m 200 -i u1000 -c 2000 "$v4" ;;
    flood-spoofed) hping "$name" atk2 -S -p 80 --rand-source -i u250 -c 8000 "$v4" ;;
    ssh-brute)
      nsexec atk timeout --signal=INT 150 nmap -n -Pn -p 22 --script ssh-brute \
        --script-args "userdb=$LAB_DIR/tools/users.txt,passdb=$LAB_DIR/tools/passwords.txt,brute.firstonly=true,unpwdb.timelimit=100s" \
        "$v4" ;;
    # masscan-style: ports 1-1000 in random order at 100/s from one source port;
    # the victim drops them (a filtered host), so nothing answers.
    scan-udp-silent)
      echo "table inet vlab_silent { chain input { type filter hook input priority -10; ip saddr $(addr4 atk) meta l4proto udp drop; }; }" \
        | nsexec victim nft -f -
      local rc=0
      nsexec atk timeout 30 "$PYTHON" "$LAB_DIR/tools/udp-sweep.py" "$v4" 1 1000 100 || rc=$?
      nsexec victim nft delete table inet vlab_silent
      return $rc ;;
    # 30 failed FTP logins in 60 s, one connection each (curl), against an FTP
    # server started for the attack that refuses every password.
    ftp-brute)
      with_server ftpd 21 "$PYTHON" "$LAB_DIR/tools/ftpd.py" --port 21
      local i=0 u p
      while [ $i -lt 30 ]; do
        u=$(sed -n "$((i % 4 + 1))p" "$LAB_DIR/tools/users.txt")
        p=$(sed -n "$((i % 19 + 1))p" "$LAB_DIR/tools/passwords.txt")
        # curl exits 67 (login denied): the expected answer.
        nsexec atk curl -s --max-time 5 -o /dev/null "ftp://$u:$p@$v4/" || true
        i=$((i + 1))
        if [ $i -lt 30 ]; then sleep 1.5; fi
      done
      kill_pidfile "$VLAB_STATE/ftpd.pid" ;;
    # Slow password guessing: 11 sessions in about 70 s, one wrong password each.
    ssh-slow)
      local i
      for i in $(seq 1 11); do
        nsexec atk sshpass -p "$(sed -n "${i}p" "$LAB_DIR/tools/passwords.txt")" ssh -F /dev/null \
          -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 \
          -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 "$LAB_USER@$v4" true 2>/dev/null || true
        if [ "$i" -lt 11 ]; then sleep 6; fi
      done ;;
    *) die "unknown attack \"$name\" (lab.sh attacks lists them)" ;;
  esac
}

# Starts a server in the victim's namespace for one attack (pid in
# $VLAB_STATE/NAME.pid) and waits until it listens on PORT/tcp.
with_server() {
  local name=$1 port=$2 i
  shift 2
  ip netns exec "$(ns victim)" setsid "$@" </dev/null >>"$VLAB_STATE/$name.log" 2>&1 &
  echo $! >"$VLAB_STATE/$name.pid"
  for i in $(seq 1 50); do
    [ -n "$(nsexec victim ss -Hltn "sport = :$port")" ] && return 0
    sleep 0.1
  done
  die "$name did not come up (see $VLAB_STATE/$name.log)"
}

# ---------------------------------------------------------------- recording --

# Captures on the victim's interface with a small snaplen: headers are what the
# detectors read, and the files stay small enough to commit.
capture() {
  local file=${1:?file} seconds=${2:?seconds}
  mkdir -p "$(dirname "$file")"
  nsexec victim timeout --signal=INT "$seconds" tcpdump -i eth0 -s "${VLAB_SNAPLEN:-160}" -U -n -q -w "$file" 2>/dev/null || true
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    up) lab_up ;;
    down) need_root; lab_down; rm -rf "$VLAB_STATE/sshd.log" "$VLAB_STATE"/*.pid; echo "lab $VLAB down" ;;
    status) lab_status ;;
    exec) [ $# -ge 2 ] || die "usage: lab.sh exec HOST CMD..."; h=$1; shift; [ "$h" = sw ] || host_octet "$h" >/dev/null; nsexec "$h" "$@" ;;
    benign) run_benign "$@" ;;
    generate) [ $# -ge 2 ] || die "usage: lab.sh generate STYLE SECONDS [SEED]"; run_style "$@" ;;
    generators) "$PYTHON" "$LAB_DIR/tools/styles.py" list | cut -f1 ;;
    attack) [ $# -eq 1 ] || die "usage: lab.sh attack NAME"; run_attack "$1" ;;
    attacks) printf '%s\n' "${ATTACKS[@]}" ;;
    attack-host) attack_host "$1" ;;
    addr4) addr4 "$1" ;;
    addr6) addr6 "$1" ;;
    mac) mac "$1" ;;
    capture) capture "$@" ;;
    ""|-h|--help|help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command \"$cmd\" (lab.sh help)" ;;
  esac
}

main "$@"
