#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install what the VM tests need, only when missing (idempotent).
set -euo pipefail
KVER=${1:-$("$(dirname "$0")"/kver.sh)}
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
[ -f "/boot/vmlinuz-$KVER" ] || need+=("linux-image-$KVER")
[ -d "/lib/modules/$KVER/build" ] || need+=("linux-headers-$KVER")
[ -f /usr/include/libmnl/libmnl.h ] || need+=(libmnl-dev)
command -v cpio >/dev/null || need+=(cpio)
command -v ip >/dev/null || need+=(iproute2)
command -v make >/dev/null || need+=(make)
command -v gcc >/dev/null || need+=(gcc)
command -v bc >/dev/null || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
	echo "bootstrap: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
