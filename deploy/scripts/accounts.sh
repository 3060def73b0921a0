#!/usr/bin/env bash
# Creates Vigil's accounts (one user per service, groups vigil and
# vigil-control: deploy/systemd/vigil.sysusers.conf) and applies the ownership
# of its files (vigil.tmpfiles.conf), under $ROOT (empty: this host).
# deploy/install.sh runs it after staging those two files.
#
# An install made before the services had users of their own (every service
# ran as `vigil` over one /var/lib/vigil) is moved over: each service's state
# goes to its user, the stale control socket goes (it is /run/vigil/control.sock
# now), the console's made login token moves to its own directory, and the
# members of group vigil (operators who used the CLI) join vigil-control, which
# now holds the socket. The old account is left for the operator to remove.
set -euo pipefail

root=${ROOT:-}
sysusers=$root/usr/lib/sysusers.d/vigil.conf
tmpfiles=$root/usr/lib/tmpfiles.d/vigil.conf
log() { printf 'vigil-install: %s\n' "$*" >&2; }
die() { printf 'vigil-install: error: %s\n' "$*" >&2; exit 1; }
[ -f "$sysusers" ] && [ -f "$tmpfiles" ] || die "$sysusers or $tmpfiles is missing: run deploy/install.sh"

# Names are resolved in $root's own databases, not this host's.
# A root without them yet (a fresh staging directory) has no such names.
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/passwd" 2>/dev/null || true; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/group" 2>/dev/null || true; }
members_of() { awk -F: -v n="$1" '$1 == n { gsub(",", " ", $4); print $4 }' "$root/etc/group" 2>/dev/null || true; }

# The earlier layout: /var/lib/vigil owned by the shared account.
state=$root/var/lib/vigil
old_uid=$(uid_of vigil)
migrate=0 operators=()
if [ -n "$old_uid" ] && [ -d "$state" ] && [ "$(stat -c %u "$state")" = "$old_uid" ]; then
  migrate=1
  for m in $(members_of vigil); do case "$m" in vigil | vigil-*) ;; *) operators+=("$m") ;; esac; done
fi

# The units are systemd's: so are the tools that make their accounts and ownership.
for t in systemd-sysusers systemd-tmpfiles; do
  command -v "$t" >/dev/null || die "$t is missing (Debian: package systemd); Vigil's units need systemd"
done
systemd-sysusers ${root:+--root="$root"} "$sysusers"

if [ "$migrate" = 1 ]; then
  log "moving an install with the shared account vigil over to one user per service"
  own() { # dir user: the directory and everything in it, 0750
    mkdir -p "$1"
    chown -R "$(uid_of "$2"):$(gid_of "$2")" "$1"
    chmod 0750 "$1"
  }
  mkdir -p "$state/console"
  if [ -e "$state/console-login.token" ]; then mv "$state/console-login.token" "$state/console/"; fi
  own "$state/console" vigil-console
  # Made again in the rules unit's RuntimeDirectory (/run/vigil); a stale one would only mislead.
  rm -f "$state/control.sock"
  for s in pst som; do
    if [ -d "$state/$s" ]; then own "$state/$s" "vigil-$s"; fi
  done
  left=$(find "$state" -mindepth 1 -maxdepth 1 ! -name pst ! -name som ! -name console -printf '%f ' 2>/dev/null || true)
  if [ -n "$left" ]; then log "left as they were in /var/lib/vigil (no service uses them now): $left"; fi
  for u in ${operators[@]+"${operators[@]}"}; do
    if [ -z "$(uid_of "$u")" ]; then log "$u (group vigil) is not a local account: add it to vigil-control yourself"; continue; fi
    systemd-sysusers ${root:+--root="$root"} --inline "m $u vigil-control"
    log "$u (group vigil) joins vigil-control: the control socket's group now"
  done
  log "the account vigil is no longer used: 'userdel vigil' once nothing of yours belongs to it"
fi

systemd-tmpfiles ${root:+--root="$root"} --create "$tmpfiles"
