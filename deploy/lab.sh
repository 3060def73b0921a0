#!/usr/bin/env bash
# The compose lab with the right files: adds deploy/compose.kernel.yaml when the
# vigil module's ring (/dev/vigil) exists, otherwise capture uses AF_PACKET on
# VIGIL_CAPTURE_INTERFACE (default: the interface of the default route). Rules
# enforce in the lab's own network namespace; VIGIL_HOST_ENFORCEMENT=1 adds
# deploy/compose.host-enforcement.yaml (rules block in the host's firewall).
#
#   deploy/lab.sh up [--scale pst=3]     build missing images, start, print the console's login link and Grafana's login
#   deploy/lab.sh <any docker compose command and options>
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
files=(-f "$repo/compose.yaml")
[ -e /dev/vigil ] && files+=(-f "$repo/deploy/compose.kernel.yaml")
[ "${VIGIL_HOST_ENFORCEMENT:-0}" = 1 ] && files+=(-f "$repo/deploy/compose.host-enforcement.yaml")
if [ -z "${VIGIL_CAPTURE_INTERFACE:-}" ]; then
  VIGIL_CAPTURE_INTERFACE=$(ip -4 route show default 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -1)
  export VIGIL_CAPTURE_INTERFACE=${VIGIL_CAPTURE_INTERFACE:-eth0}
fi
# The Dockerfile relies on BuildKit (it skips the stages a target does not use);
# compose v1 only uses it when it delegates builds to the docker CLI.
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
# Compose v2 (docker compose) when present, else the v1 docker-compose.
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
cmd=${1:-up}
if [ "$cmd" = up ]; then
  shift || true
  prefix=${VIGIL_IMAGE_PREFIX:-vigil} tag=${VIGIL_TAG:-dev}
  if ! docker image inspect "$prefix/rules:$tag" >/dev/null 2>&1; then
    "$repo/deploy/docker/build-images.sh" --tag "$tag"
  fi
  dc=("${compose[@]}" -p "${VIGIL_LAB_PROJECT:-vigil}" "${files[@]}")
  "${dc[@]}" up -d "$@"
  # The console asks for its login (VIGIL_CONSOLE_AUTH=none opens it): the link, as `vigil up` prints it.
  if [ "${VIGIL_CONSOLE_AUTH:-token}" != none ] && token=$("${dc[@]}" run --rm --no-deps -T -u 10001:10001 --entrypoint cat credentials /secrets/console.token 2>/dev/null); then
    echo "web console: http://127.0.0.1:${VIGIL_CONSOLE_PORT:-9480}/?token=$token (login link; the token is on the vigil-secrets volume)"
  fi
  # Grafana has no anonymous viewers unless VIGIL_GRAFANA_ANONYMOUS=true: its admin's password, made by the credentials service.
  if password=$("${dc[@]}" run --rm --no-deps -T -u 472:0 --entrypoint cat credentials /secrets/grafana-admin.password 2>/dev/null); then
    echo "grafana: http://127.0.0.1:${VIGIL_GRAFANA_PORT:-3000}/ (user admin, password $password; set at Grafana's first start)"
  fi
  exit 0
fi
exec "${compose[@]}" -p "${VIGIL_LAB_PROJECT:-vigil}" "${files[@]}" "$@"
