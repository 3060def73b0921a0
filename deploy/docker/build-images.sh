#!/usr/bin/env bash
# Builds the Vigil images from this (already built) checkout without compiling
# in the image: stages the runtime tree (deploy/scripts/stage-runtime.mjs) and
# packs it into an app image (${prefix}/app:<tag>, /opt/vigil only) and builds
# every target of deploy/docker/Dockerfile with APP_SOURCE set to that image.
#
#   deploy/docker/build-images.sh [--tag TAG] [--node-image IMAGE] [TARGET...]
#
# TARGETs default to capture pst som rules console notify cli; images are named
# ${VIGIL_IMAGE_PREFIX:-vigil}/<target>:<tag> (tag default "dev"), the names
# compose.yaml uses. For a from-source build (no built checkout needed) run
#   docker build -f deploy/docker/Dockerfile --target <t> .
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
tag=${VIGIL_TAG:-dev}
prefix=${VIGIL_IMAGE_PREFIX:-vigil}
node_image=${VIGIL_NODE_IMAGE:-node:20-bookworm-slim}
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=${2:?}; shift ;;
    --node-image) node_image=${2:?}; shift ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build-images.sh: unknown option $1" >&2; exit 64 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(capture pst som rules console notify cli)
log() { printf 'build-images: %s\n' "$*" >&2; }

# An image as APP_SOURCE relies on BuildKit skipping the unused "source" stage
# (the classic builder would compile too). Docker >= 23 builds with BuildKit
# through buildx; older clients with DOCKER_BUILDKIT=1.
docker=${DOCKER:-docker}
if ! $docker buildx version >/dev/null 2>&1; then
  if [ -x /usr/bin/docker ] && [ "$docker" = docker ]; then docker=/usr/bin/docker; fi
  export DOCKER_BUILDKIT=1
fi

ctx=$(mktemp -d /var/tmp/vigil-imgctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
node "$repo/deploy/scripts/stage-runtime.mjs" "$ctx/app" --root "$repo"
revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
labels=(--label org.opencontainers.image.source=vigil --label org.opencontainers.image.revision="$revision")
# The staged tree as an image of its own; its Dockerfile lives outside the
# context, so the repository's Dockerfile.dockerignore does not apply to it.
mkdir "$ctx/df"
printf 'FROM scratch\nCOPY app/ /opt/vigil/\n' > "$ctx/df/Dockerfile"
app_image="$prefix/app:$tag"
log "$app_image (the runtime tree)"
$docker build -q -f "$ctx/df/Dockerfile" "${labels[@]}" -t "$app_image" "$ctx" >/dev/null
for t in "${targets[@]}"; do
  log "$prefix/$t:$tag"
  $docker build -q -f "$repo/deploy/docker/Dockerfile" --target "$t" \
    --build-arg APP_SOURCE="$app_image" --build-arg NODE_IMAGE="$node_image" \
    "${labels[@]}" -t "$prefix/$t:$tag" "$ctx" >/dev/null
done
log "built: $(printf '%s ' "${targets[@]/#/$prefix/}")(tag $tag)"
