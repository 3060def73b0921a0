#!/usr/bin/env bash
# Installs Vigil on this host from a checkout: the kernel module with DKMS, the
# services under /opt/vigil, the `vigil` CLI, the systemd units and
# /etc/vigil/vigil.yaml. Idempotent: running it again upgrades in place and
# never overwrites a configuration file you edited (the new one lands beside
# it as *.dist).
#
#   deploy/install.sh [options]
#     --prefix DIR     where the services go (default /opt/vigil)
#     --destdir DIR    stage everything under DIR instead of / (packaging, tests);
#                      implies --no-dkms --no-systemctl --no-users (ownership is
#                      recorded in DIR/usr/lib/tmpfiles.d/vigil.conf)
#     --no-build       do not build the checkout first (it must be built)
#     --no-dkms        do not install the kernel module (AF_PACKET capture, nftables enforcement)
#     --kernel KVER    build the module for kernel KVER (default: the running one);
#                      DKMS builds it for kernels installed later by itself
#     --no-systemctl   do not reload systemd or enable the units
#     --no-users       do not create the accounts (one per service, with
#                      systemd-sysusers) nor apply ownership (systemd-tmpfiles)
#     --users          with --destdir: create them in DIR/etc/passwd and apply
#                      ownership inside DIR
#     --enable         enable vigil.target at boot
#     --start          start (or restart) vigil.target now
#     --uninstall      remove the services, units and CLI (keeps /etc/vigil,
#                      /var/lib/vigil and the DKMS module: deploy/dkms.sh remove)
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
prefix=/opt/vigil
destdir=
kernel=
build=1 dkms=1 systemctl=1 users=1 users_asked=0 enable=0 start=0 uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
    --destdir) destdir=$(readlink -m "${2:?--destdir needs a directory}"); dkms=0 systemctl=0 users=0; shift ;;
    --no-build) build=0 ;;
    --no-dkms) dkms=0 ;;
    --kernel) kernel=${2:?--kernel needs a kernel release}; shift ;;
    --no-systemctl) systemctl=0 ;;
    --no-users) users=0 ;;
    --users) users_asked=1 ;;
    --enable) enable=1 ;;
    --start) start=1 ;;
    --uninstall) uninstall=1 ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done
if [ "$users_asked" = 1 ]; then users=1; fi

log() { printf 'vigil-install: %s\n' "$*" >&2; }
die() { printf 'vigil-install: error: %s\n' "$*" >&2; exit 1; }

if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then die "run as root (or stage with --destdir DIR)"; fi
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path, got $prefix" ;; esac

unitdir=/etc/systemd/system
root=${destdir:-}
units=(vigil.target vigil-nats.service vigil-capture.service vigil-pst.service vigil-som.service vigil-rules.service vigil-console.service)
templates=(vigil-pst@.service vigil-som@.service)
have_systemd() { [ "$systemctl" = 1 ] && [ -d /run/systemd/system ]; }

if [ "$uninstall" = 1 ]; then
  if have_systemd; then systemctl disable --now vigil.target "${units[@]}" 2>/dev/null || true; fi
  for u in "${units[@]}" "${templates[@]}"; do rm -f "$root$unitdir/$u"; done
  rm -f "$root/usr/local/bin/vigil" "$root/etc/udev/rules.d/60-vigil.rules" "$root/usr/lib/sysusers.d/vigil.conf" "$root/usr/lib/tmpfiles.d/vigil.conf"
  rm -rf "$root$prefix"
  if have_systemd; then systemctl daemon-reload; fi
  log "removed the services, units and CLI; kept /etc/vigil, /var/lib/vigil and the DKMS module (deploy/dkms.sh remove removes it)"
  exit 0
fi

# Node: the services need >= 20.19 (require(esm), stable fetch and test APIs).
node=$(command -v node || true)
[ -n "$node" ] || die "node is not installed: Vigil needs Node.js >= 20.19 (Debian 12's nodejs is 18: use NodeSource's or the official build)"
node_ok=$("$node" -e 'const [a,b]=process.versions.node.split(".").map(Number); console.log(a>20||(a===20&&b>=19)?1:0)')
[ "$node_ok" = 1 ] || die "$node is $("$node" --version); Vigil needs Node.js >= 20.19"
node=$(readlink -f "$node")

if [ "$build" = 1 ]; then
  log "building the checkout"
  (cd "$repo" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && node scripts/build.mjs) >&2
fi
missing=()
for s in capture pst som rules console; do [ -f "$repo/services/$s/dist/main.js" ] || missing+=("$s"); done
[ -f "$repo/packages/cli/dist/main.js" ] || die "the CLI is not built ($repo/packages/cli/dist/main.js): run node scripts/build.mjs"
if [ ${#missing[@]} -gt 0 ]; then log "warning: not built, their units will fail to start: ${missing[*]}"; fi

log "installing the services in $root$prefix"
# Staged beside the target so that the swap is a rename: a running service
# keeps its open files, a restart picks up the new tree, and the previous one
# is kept for rollback.
mkdir -p "$(dirname "$root$prefix")"
stage=$(mktemp -d "$(dirname "$root$prefix")/.vigil-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
node "$repo/deploy/scripts/stage-runtime.mjs" "$stage/app" --root "$repo"
mkdir -p "$stage/app/bin"
# One place for the units to find the interpreter, whatever its install path.
ln -s "$node" "$stage/app/bin/node"
if [ -d "$root$prefix" ]; then rm -rf "$root$prefix.previous"; mv "$root$prefix" "$root$prefix.previous"; fi
mv "$stage/app" "$root$prefix"

log "installing the vigil CLI in $root/usr/local/bin/vigil"
mkdir -p "$root/usr/local/bin"
cat > "$root/usr/local/bin/vigil" <<EOF
#!/bin/sh
# The Vigil command line (installed by deploy/install.sh).
: "\${VIGIL_CONFIG:=/etc/vigil/vigil.yaml}"
# The rules service's control socket (group vigil-control), unless the caller
# names a state directory of its own (\`vigil up\`, a container volume).
if [ -z "\${VIGIL_STATE_DIR:-}" ]; then : "\${VIGIL_CONTROL_SOCKET:=/run/vigil/control.sock}"; export VIGIL_CONTROL_SOCKET; fi
: "\${VIGIL_STATE_DIR:=/var/lib/vigil}"
export VIGIL_CONFIG VIGIL_STATE_DIR
exec $prefix/bin/node $prefix/packages/cli/dist/main.js "\$@"
EOF
chmod 0755 "$root/usr/local/bin/vigil"

log "installing the systemd units in $root$unitdir"
mkdir -p "$root$unitdir" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" "$root/etc/udev/rules.d"
for u in "${units[@]}" "${templates[@]}"; do
  sed "s#/opt/vigil#$prefix#g" "$repo/deploy/systemd/$u" > "$root$unitdir/$u"
  chmod 0644 "$root$unitdir/$u"
done
install -m 0644 "$repo/deploy/systemd/vigil.sysusers.conf" "$root/usr/lib/sysusers.d/vigil.conf"
install -m 0644 "$repo/deploy/systemd/vigil.tmpfiles.conf" "$root/usr/lib/tmpfiles.d/vigil.conf"
install -m 0644 "$repo/deploy/systemd/60-vigil.rules" "$root/etc/udev/rules.d/60-vigil.rules"

# Configuration: installed once; a changed default is offered as *.dist.
mkdir -p "$root/etc/vigil"
for f in vigil.yaml nats-server.conf; do
  if [ -e "$root/etc/vigil/$f" ]; then
    if ! cmp -s "$repo/deploy/config/$f" "$root/etc/vigil/$f"; then
      install -m 0640 "$repo/deploy/config/$f" "$root/etc/vigil/$f.dist"
      log "kept your /etc/vigil/$f; the shipped default is /etc/vigil/$f.dist"
    fi
  else
    install -m 0640 "$repo/deploy/config/$f" "$root/etc/vigil/$f"
  fi
done

# Credentials of this install, made once (never printed): a NATS user per
# service limited to its subjects, and the console's login token. The units
# name each service's file; nats-server.conf includes secrets/nats-users.conf.
node "$repo/deploy/scripts/credentials.mjs" "$root/etc/vigil/secrets" || die "could not generate the credentials in $root/etc/vigil/secrets"

# Host-specific choices go to /etc/default/vigil (read by every unit), written once.
# It may hold tokens (VIGIL_*__TOKEN): 0640, group vigil once the accounts exist
# (vigil.tmpfiles.conf); systemd reads it as root. An older install's 0644 is tightened.
if [ -e "$root/etc/default/vigil" ]; then
  chmod o-rwx "$root/etc/default/vigil"
else
  mkdir -p "$root/etc/default"
  iface=$(ip -4 route show default 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -1)
  (umask 077; : > "$root/etc/default/vigil")
  chmod 0640 "$root/etc/default/vigil"
  {
    echo "# Vigil: settings of this host, as VIGIL_<SECTION>__<KEY> overrides of /etc/vigil/vigil.yaml."
    if [ "$dkms" = 1 ]; then
      echo "VIGIL_CAPTURE__SOURCE=kernel"
    else
      echo "# No kernel module installed: capture with AF_PACKET."
      echo "VIGIL_CAPTURE__SOURCE=afpacket"
      echo "VIGIL_CAPTURE__INTERFACE=${iface:-eth0}"
    fi
  } > "$root/etc/default/vigil"
fi

if [ "$users" = 1 ]; then
  # One account per service (F17 in the security review); an install made
  # before them (every service uid vigil) is moved over: deploy/scripts/accounts.sh.
  if have_systemd && systemctl is-active --quiet vigil.target; then
    log "stopping vigil.target while ownership changes; it starts again at the end"
    systemctl stop vigil.target
    start=1
  fi
  ROOT="$root" "$repo/deploy/scripts/accounts.sh" || die "could not create the accounts or apply their ownership (see above)"
fi

if [ "$dkms" = 1 ]; then
  command -v dkms >/dev/null || die "dkms is not installed (apt-get install dkms linux-headers-${kernel:-\$(uname -r)}), or pass --no-dkms to capture with AF_PACKET and enforce with nftables"
  "$repo/deploy/dkms.sh" install ${kernel:+--kernel "$kernel"} || die "the kernel module did not build with DKMS (see above), or pass --no-dkms"
  echo vigil > /etc/modules-load.d/vigil.conf
  # A C tool that talks to the module directly: the way out when Node or the
  # services are broken (vigil-rule flush, see "Locked out" in the guide).
  if make -s -C "$repo/kmod/tools" vigil-rule >&2; then
    install -m 0755 "$repo/kmod/tools/vigil-rule" /usr/local/sbin/vigil-rule
  else
    log "warning: could not build kmod/tools/vigil-rule (needs gcc and libmnl-dev)"
  fi
  if have_systemd; then udevadm control --reload || true; fi
  if [ -n "$kernel" ] && [ "$kernel" != "$(uname -r)" ]; then
    log "the module is built for $kernel, not the running $(uname -r): it loads when $kernel boots"
  elif lsmod | grep -q '^vigil '; then
    log "the running module is the old one: 'systemctl stop vigil.target && rmmod vigil && modprobe vigil' switches (see Upgrade in docs/operations.md)"
  else
    modprobe vigil || log "warning: modprobe vigil failed; see dmesg"
  fi
fi

if have_systemd; then
  systemctl daemon-reload
  if [ "$enable" = 1 ]; then systemctl enable vigil.target "${units[@]:1}"; fi
  if [ "$start" = 1 ]; then systemctl restart vigil.target; fi
fi
log "done. Next: edit /etc/vigil/vigil.yaml, then systemctl enable --now vigil.target; 'vigil status' shows the stack"
