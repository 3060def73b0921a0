#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Prints the Debian 12 kernel release the VM tests boot: $VIGIL_KVER when set,
# else the newest installed 6.1.0-*-amd64 with its headers, else whatever
# Debian's linux-image-amd64 / linux-headers-amd64 currently point to
# (installed here), so that a fresh machine follows Debian's kernel updates.
set -euo pipefail
if [ -n "${VIGIL_KVER:-}" ]; then echo "$VIGIL_KVER"; exit 0; fi
newest() {
	local v best=
	for v in $(ls /boot 2>/dev/null | sed -n 's/^vmlinuz-\(6\.1\.0-[0-9]*-amd64\)$/\1/p' | sort -t- -k2,2n); do
		[ -d "/lib/modules/$v/build" ] && best=$v
	done
	echo "$best"
}
v=$(newest)
if [ -z "$v" ]; then
	echo "kver: installing Debian's current 6.1 kernel and headers" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends linux-image-amd64 linux-headers-amd64 >&2
	v=$(newest)
fi
[ -n "$v" ] || { echo "kver: no Debian 6.1 kernel with headers could be installed" >&2; exit 1; }
echo "$v"
