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
# debootstrap. The rootfs tarball is cached in $VIGIL_IMAGE_CACHE
# (default /var/cache/vigil-images) so a rebuild costs seconds.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cache=${VIGIL_IMAGE_CACHE:-/var/cache/vigil-images}
docker=${DOCKER:-docker}
log() { printf 'local-base-images: %s\n' "$*" >&2; }
die() { printf 'local-base-images: error: %s\n' "$*" >&2; exit 1; }
have_image() { $docker image inspect "$1" >/dev/null 2>&1; }

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
mirror=${DEBIAN_MIRROR:-$(sed -n 's#^URIs: *\(http[^ ]*/debian\)/*$#\1#p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}

# What the services load at run time: libpcap (capture's native addon),
# nftables (rules' nftables backend), iproute2 (rules reads routes and
# addresses for its allowlist), busybox (wget for health checks).
packages=libpcap0.8,libmnl0,nftables,iproute2,busybox,ca-certificates
mkdir -p "$cache"
rootfs_tar="$cache/bookworm-minbase-$(printf '%s' "$packages" | sha256sum | cut -c1-8).tar"
label() { $docker image inspect --format '{{ index .Config.Labels "vigil.packages" }}' "$1" 2>/dev/null || true; }
if [ "$(label vigil-local/bookworm:slim)" != "$packages" ]; then
  # Images built on an older base must be rebuilt too.
  $docker image rm -f vigil-local/node:20-bookworm-slim vigil-local/nats:2 vigil-local/prometheus:2 >/dev/null 2>&1 || true
  if [ ! -s "$rootfs_tar" ]; then
    log "debootstrap bookworm (minbase) from $mirror"
    dir=$(mktemp -d /var/tmp/vigil-rootfs.XXXXXX)
    trap 'rm -rf "$dir"' EXIT
    debootstrap --variant=minbase --include="$packages" \
      bookworm "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1 || die "debootstrap failed: see $cache/debootstrap.log"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
    tar -C "$dir" --numeric-owner -cf "$rootfs_tar.tmp" .
    mv "$rootfs_tar.tmp" "$rootfs_tar"
  fi
  log "importing vigil-local/bookworm:slim"
  $docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL vigil.packages=$packages" \
    "$rootfs_tar" vigil-local/bookworm:slim >/dev/null
fi

ctx=$(mktemp -d /var/tmp/vigil-basectx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
node=$(readlink -f "$(command -v node)")
node_version=$("$node" --version)
if ! have_image vigil-local/node:20-bookworm-slim || [ "$($docker run --rm vigil-local/node:20-bookworm-slim node --version 2>/dev/null)" != "$node_version" ]; then
  log "vigil-local/node:20-bookworm-slim with Node $node_version"
  cp "$node" "$ctx/node"
  printf 'FROM vigil-local/bookworm:slim\nCOPY node /usr/local/bin/node\nRUN node --version\nCMD ["node"]\n' > "$ctx/Dockerfile"
  $docker build -q -t vigil-local/node:20-bookworm-slim "$ctx" >/dev/null
  rm -f "$ctx/node"
fi
if ! have_image vigil-local/nats:2; then
  log "vigil-local/nats:2 with $(nats-server --version)"
  cp "$(command -v nats-server)" "$ctx/nats-server"
  printf 'FROM vigil-local/bookworm:slim\nCOPY nats-server /usr/local/bin/nats-server\nRUN ln -s /bin/busybox /usr/local/bin/wget\nEXPOSE 4222 6222 8222\nENTRYPOINT ["nats-server"]\n' > "$ctx/Dockerfile"
  $docker build -q -t vigil-local/nats:2 "$ctx" >/dev/null
  rm -f "$ctx/nats-server"
fi
if ! have_image vigil-local/prometheus:2 && command -v prometheus >/dev/null; then
  log "vigil-local/prometheus:2 with $(prometheus --version 2>&1 | head -1)"
  cp "$(command -v prometheus)" "$(command -v promtool)" "$ctx/"
  printf 'FROM vigil-local/bookworm:slim\nCOPY prometheus promtool /bin/\nRUN ln -s /bin/busybox /usr/local/bin/wget && mkdir -p /prometheus && chown 65534:65534 /prometheus\nUSER 65534\nWORKDIR /prometheus\nEXPOSE 9090\nENTRYPOINT ["/bin/prometheus"]\nCMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]\n' > "$ctx/Dockerfile"
  $docker build -q -t vigil-local/prometheus:2 "$ctx" >/dev/null
fi
log "ready: $($docker images --format '{{.Repository}}:{{.Tag}}' | grep '^vigil-local/' | tr '\n' ' ')"
