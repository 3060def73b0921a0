#!/usr/bin/env bash
# Builds, without any container registry, local stand-ins for the public base
# images the Vigil Dockerfile and compose.yaml name by default:
#
#   vigil-local/bookworm:slim          debootstrap --variant=minbase of Debian 12
#   vigil-local/node:20-bookworm-slim  that + this host's Node.js (>= 20.19) in
#                                      /usr/local/bin, laid out like node:20-bookworm-slim
#   vigil-local/nats:2                 that + Debian's nats-server and busybox wget
#   vigil-local/prometheus:2           that + Debian's prometheus and promtool
#
# Use them with:  VIGIL_NODE_IMAGE=vigil-local/node:20-bookworm-slim \
#   VIGIL_NATS_IMAGE=vigil-local/nats:2 VIGIL_PROMETHEUS_IMAGE=vigil-local/prometheus:2 docker compose ...
# Debian (deb.debian.org or the mirror in /etc/apt/sources) must be reachable for
# debootstrap. The rootfs tarball is cached in $VIGIL_IMAGE_CACHE (default
# /var/cache/vigil-images), keyed by a hash of its recipe, checked against its
# sha256 before use and rebuilt after $VIGIL_BASE_MAX_AGE_DAYS (default 14) days,
# so a rebuild usually costs seconds. Every image is labelled with a hash of its
# inputs and rebuilt only when they change.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cache=${VIGIL_IMAGE_CACHE:-/var/cache/vigil-images}
docker=${DOCKER:-docker}
log() { printf 'local-base-images: %s\n' "$*" >&2; }
die() { printf 'local-base-images: error: %s\n' "$*" >&2; exit 1; }
have_image() { $docker image inspect "$1" >/dev/null 2>&1; }
dir= ctx=
trap 'rm -rf ${dir:+"$dir"} ${ctx:+"$ctx"}' EXIT

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
mirror=${DEBIAN_MIRROR:-$(sed -n 's#^URIs: *\(http[^ ]*/debian\)/*$#\1#p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}

# What the services load at run time: libpcap (capture's native addon),
# nftables (rules' nftables backend), iproute2 (rules reads routes and
# addresses for its allowlist), busybox (wget for health checks).
packages=libpcap0.8,libmnl0,nftables,iproute2,busybox,ca-certificates
suite=bookworm variant=minbase
# Debian's point releases and security fixes reach the base after this many days.
max_age_days=${VIGIL_BASE_MAX_AGE_DAYS:-14}
# The cache key covers everything that decides the rootfs' content: change the
# recipe below and bump "recipe" too.
recipe="recipe=2 suite=$suite variant=$variant packages=$packages"
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-12)
mkdir -p "$cache"
rootfs_tar="$cache/$suite-$variant-$key.tar"
label() { $docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }
sha() { sha256sum "$1" | cut -c1-16; }

# A cached rootfs is used only when it is complete (its checksum matches) and fresh.
cached_rootfs_ok() {
  [ -s "$rootfs_tar" ] && [ -s "$rootfs_tar.sha256" ] || return 1
  [ -z "$(find "$rootfs_tar" -mtime "+$max_age_days")" ] || { log "cached rootfs is older than $max_age_days days: rebuilding"; return 1; }
  (cd "$cache" && sha256sum --status -c "$(basename "$rootfs_tar").sha256") || { log "cached rootfs fails its checksum: rebuilding"; return 1; }
}

rootfs_ok=0
cached_rootfs_ok && rootfs_ok=1
base_id=
if [ "$rootfs_ok" = 1 ] && have_image vigil-local/bookworm:slim && [ "$(label vigil-local/bookworm:slim vigil.base)" = "$key" ] \
  && [ "$(label vigil-local/bookworm:slim vigil.rootfs)" = "$(cut -c1-16 "$rootfs_tar.sha256")" ]; then
  base_id=$(cut -c1-16 "$rootfs_tar.sha256")
fi
if [ -z "$base_id" ]; then
  if [ "$rootfs_ok" = 0 ]; then
    log "debootstrap $suite ($variant) from $mirror"
    dir=$(mktemp -d /var/tmp/vigil-rootfs.XXXXXX)
    debootstrap --variant="$variant" --include="$packages" \
      "$suite" "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1 || die "debootstrap failed: see $cache/debootstrap.log"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
    tar -C "$dir" --numeric-owner -cf "$rootfs_tar.tmp" .
    rm -rf "$dir"
    # Older recipes' tarballs are dead weight once this one exists.
    find "$cache" -maxdepth 1 -name '*.tar*' ! -name "$(basename "$rootfs_tar").tmp" -delete
    (cd "$cache" && sha256sum "$(basename "$rootfs_tar").tmp" | sed 's/\.tmp$//' > "$(basename "$rootfs_tar").sha256")
    mv "$rootfs_tar.tmp" "$rootfs_tar"
  fi
  base_id=$(cut -c1-16 "$rootfs_tar.sha256")
  log "importing vigil-local/bookworm:slim ($key, rootfs $base_id)"
  $docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL vigil.base=$key vigil.rootfs=$base_id vigil.packages=$packages" \
    "$rootfs_tar" vigil-local/bookworm:slim >/dev/null
fi

ctx=$(mktemp -d /var/tmp/vigil-basectx.XXXXXX)
# Each image is labelled with what it was made from (the base, the host
# binaries it copies, its Dockerfile) and rebuilt only when that changes.
derived() { # image, then the files to copy in; the Dockerfile is in $ctx/Dockerfile
  local image=$1 input f; shift
  input=$( { echo "$base_id"; cat "$ctx/Dockerfile"; for f in "$@"; do sha "$f"; done; } | sha256sum | cut -c1-16)
  if have_image "$image" && [ "$(label "$image" vigil.input)" = "$input" ]; then return 0; fi
  log "$image (input $input)"
  for f in "$@"; do cp "$f" "$ctx/"; done
  $docker build -q --label "vigil.input=$input" -t "$image" "$ctx" >/dev/null
  for f in "$@"; do rm -f "$ctx/$(basename "$f")"; done
}
node=$(readlink -f "$(command -v node)")
printf 'FROM vigil-local/bookworm:slim\nCOPY %s /usr/local/bin/node\nRUN node --version\nCMD ["node"]\n' "$(basename "$node")" > "$ctx/Dockerfile"
derived vigil-local/node:20-bookworm-slim "$node"
nats=$(readlink -f "$(command -v nats-server)")
printf 'FROM vigil-local/bookworm:slim\nCOPY %s /usr/local/bin/nats-server\nRUN ln -s /bin/busybox /usr/local/bin/wget\nEXPOSE 4222 6222 8222\nENTRYPOINT ["nats-server"]\n' "$(basename "$nats")" > "$ctx/Dockerfile"
derived vigil-local/nats:2 "$nats"
if command -v prometheus >/dev/null; then
  prom=$(readlink -f "$(command -v prometheus)") promtool=$(readlink -f "$(command -v promtool)")
  printf 'FROM vigil-local/bookworm:slim\nCOPY %s /bin/prometheus\nCOPY %s /bin/promtool\nRUN ln -s /bin/busybox /usr/local/bin/wget && mkdir -p /prometheus && chown 65534:65534 /prometheus\nUSER 65534\nWORKDIR /prometheus\nEXPOSE 9090\nENTRYPOINT ["/bin/prometheus"]\nCMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]\n' "$(basename "$prom")" "$(basename "$promtool")" > "$ctx/Dockerfile"
  derived vigil-local/prometheus:2 "$prom" "$promtool"
else
  log "prometheus is not installed here: no vigil-local/prometheus:2 (apt-get install prometheus)"
fi
# Images replaced by a rebuild (all descend from the base, whose labels they inherit).
$docker image prune -f --filter label=vigil.base >/dev/null
log "ready: $($docker images --format '{{.Repository}}:{{.Tag}}' | grep '^vigil-local/' | tr '\n' ' ')"
