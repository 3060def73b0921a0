#!/usr/bin/env bash
# Installs what Vigil needs on a Debian machine and builds it. Idempotent and
# quick when everything is in place. Usage: scripts/bootstrap.sh [runtime|test]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-runtime}
log() { printf 'bootstrap: %s\n' "$*" >&2; }

lists=("$root/scripts/deps/runtime.apt")
if [ "$mode" = test ]; then
  for f in "$root"/scripts/deps/*.apt; do [ "$f" = "$root/scripts/deps/runtime.apt" ] || lists+=("$f"); done
fi
mapfile -t wanted < <(cat "${lists[@]}" | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
  else
    sudo=
  fi
  # The package lists may be stale or absent on a fresh machine.
  $sudo apt-get update -qq >&2 || log "apt-get update failed; trying with the lists we have"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # The lab starts nginx inside its own namespaces; a package that enables it as the host's
  # web server on :80 would be a side effect nobody asked for. Only what we just installed.
  for svc in nginx; do
    if [[ " ${missing[*]} " == *" $svc "* ]] && [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now "$svc" >&2 2>/dev/null && log "disabled the host's $svc service (the lab runs its own)"
    fi
  done
fi

cd "$root"
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2
fi
node scripts/build.mjs
