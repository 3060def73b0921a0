#!/usr/bin/env bash
# The kernel module with DKMS: registers kmod/ as vigil/<PACKAGE_VERSION of
# kmod/dkms.conf>, builds and installs it for a kernel, and removes it again.
# deploy/install.sh runs "install" for the running kernel; DKMS then rebuilds
# the module by itself for every kernel installed later (AUTOINSTALL).
#
#   deploy/dkms.sh install [--kernel KVER]   copy the sources to /usr/src/vigil-VERSION,
#                                            dkms add, build, install (default: uname -r);
#                                            replaces an earlier registration of VERSION
#   deploy/dkms.sh remove                    dkms remove --all, delete /usr/src/vigil-VERSION
#   deploy/dkms.sh status                    dkms status of vigil
#   deploy/dkms.sh module-path [--kernel KVER]   where the installed vigil.ko is
#
# Loading the module stays with the caller (install.sh: modprobe vigil).
# Needs root, Debian's dkms and the headers of the kernel
# (apt-get install dkms linux-headers-KVER).
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
log() { printf 'vigil-dkms: %s\n' "$*" >&2; }
die() { printf 'vigil-dkms: error: %s\n' "$*" >&2; exit 1; }

cmd=${1:-}
[ $# -gt 0 ] && shift
kver=$(uname -r)
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kver=${2:?--kernel needs a kernel release}; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done
case "$cmd" in
  install|remove|status|module-path) ;;
  -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "usage: dkms.sh install|remove|status|module-path [--kernel KVER] (got '${cmd}')" ;;
esac

conf=$repo/kmod/dkms.conf
[ -f "$conf" ] || die "$conf is missing"
field() { sed -n "s/^$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}\$/\1/p" "$conf" | head -1; }
name=$(field PACKAGE_NAME)
version=$(field PACKAGE_VERSION)
[ -n "$name" ] || die "no PACKAGE_NAME in $conf"
[ -n "$version" ] || die "no PACKAGE_VERSION in $conf"
src=/usr/src/$name-$version

[ "$(id -u)" -eq 0 ] || die "run as root"
command -v dkms >/dev/null || die "dkms is not installed (apt-get install dkms linux-headers-$kver)"
registered() { [ -n "$(dkms status -m "$name" -v "$version" 2>/dev/null)" ]; }

case "$cmd" in
status)
  dkms status -m "$name"
  ;;
module-path)
  # dkms 3 installs under /lib/modules/KVER/updates/dkms (DEST_MODULE_LOCATION
  # is ignored on Debian); look where it says the module is.
  found=$(find "/lib/modules/$kver/updates" "/lib/modules/$kver/extra" -name "$name.ko*" 2>/dev/null | head -1 || true)
  [ -n "$found" ] || die "$name is not installed for $kver (deploy/dkms.sh install --kernel $kver)"
  echo "$found"
  ;;
remove)
  if registered; then
    log "removing $name/$version from every kernel"
    dkms remove -m "$name" -v "$version" --all >&2
  fi
  rm -rf "$src"
  ;;
install)
  [ -d "/lib/modules/$kver/build" ] || die "no headers for kernel $kver (/lib/modules/$kver/build): apt-get install linux-headers-$kver, pass --kernel KVER, or install with --no-dkms"
  # A reinstall of the same version must pick up changed sources: DKMS keys
  # its tree by version only.
  if registered; then dkms remove -m "$name" -v "$version" --all >&2; fi
  rm -rf "$src"
  mkdir -p "$src"
  # Only what the module's build uses: no objects of an in-tree build, no tests or tools.
  (cd "$repo/kmod" && tar -cf - --exclude='*.o' --exclude='*.ko' --exclude='*.mod' --exclude='*.mod.c' \
     --exclude='.*.cmd' --exclude=Module.symvers --exclude=modules.order --exclude=test --exclude=tools \
     --exclude=node_modules --exclude=package.json --exclude='vitest.config.*' --exclude='.cache' .) | tar -xf - -C "$src"
  log "building $name/$version for $kver"
  dkms add -m "$name" -v "$version" >&2
  if ! dkms build -m "$name" -v "$version" -k "$kver" >&2; then
    log "build log: /var/lib/dkms/$name/$version/build/make.log"
    tail -n 30 "/var/lib/dkms/$name/$version/build/make.log" >&2 2>/dev/null || true
    die "dkms build failed for $kver"
  fi
  dkms install -m "$name" -v "$version" -k "$kver" --force >&2
  log "installed $("$0" module-path --kernel "$kver")"
  ;;
esac
