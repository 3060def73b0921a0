#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot Debian 12's kernel in qemu (TCG) with a busybox initramfs, the host's
# root file system shared read-only over 9p, and run one command inside.
#
#   kmod/test/vm/run-vm.sh [options] [--] COMMAND...
#
#   --timeout S    kill the VM after S seconds (default 600); exit 124
#   --mem MB       guest memory (default 1536)
#   --smp N        guest CPUs (default 2)
#   --log FILE     where the guest kernel console goes (default: a temp file)
#   --no-build     do not (re)build vigil.ko / the tools before booting
#
# Inside the VM, COMMAND runs under /bin/sh -c in a chroot of the host root
# (read-only), with fresh /proc, /sys, /dev, and tmpfs on /tmp, /run,
# /var/tmp and /dev/shm, in the same working directory as the caller, as
# root. The module is NOT loaded: insmod "$VIGIL_KO" (exported) when needed;
# it is built for the guest kernel in $VIGIL_VM_DIR/build-$VIGIL_KVER.
# Modules of the guest kernel load with modprobe from the host's
# /lib/modules/6.1.0-*-amd64. The host is not writable from inside: write
# results to stdout, which this script prints; its exit code is COMMAND's.
#
# Environment: VIGIL_KVER (default: see kver.sh), VIGIL_VM_DIR (build
# cache, default kmod/test/vm/.cache), VIGIL_VM_LOCK (the lock file that
# lets one VM run at a time, default /tmp/vigil-vm.lock).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KMOD=$(cd "$HERE/../.." && pwd)
KVER=$("$HERE/kver.sh")
CACHE=${VIGIL_VM_DIR:-$HERE/.cache}
TIMEOUT=600
MEM=1536
SMP=2
LOG=
BUILD=1

while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) TIMEOUT=$2; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	--smp) SMP=$2; shift 2 ;;
	--log) LOG=$2; shift 2 ;;
	--no-build) BUILD=0; shift ;;
	--) shift; break ;;
	-*) echo "run-vm.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: run-vm.sh [options] [--] COMMAND..." >&2; exit 2; }

"$HERE/bootstrap.sh" "$KVER" >&2

mkdir -p "$CACHE"
# The module is built out of tree per kernel version, so that runs against
# different kernels never clobber each other's objects (or kmod/vigil.ko).
BDIR=$CACHE/build-$KVER
if [ "$BUILD" = 1 ]; then
	mkdir -p "$BDIR/include/uapi/linux"
	cp -p "$KMOD"/*.c "$KMOD"/*.h "$KMOD/Kbuild" "$BDIR/"
	cp -p "$KMOD/include/uapi/linux/vigil.h" "$BDIR/include/uapi/linux/"
	rm -f "$BDIR/vigil.ko"
	make -s -C "/lib/modules/$KVER/build" M="$BDIR" modules 2>&1 | grep -v '^Skipping BTF' >&2 || true
	[ -f "$BDIR/vigil.ko" ] || { echo "run-vm.sh: module build failed" >&2; exit 1; }
	make -s -C "$KMOD/tools" >&2
fi

# ---- base initramfs: busybox + the virtio/9p modules, rebuilt when stale.
BASE=$CACHE/base-$KVER.cpio.gz
if [ ! -s "$BASE" ] || [ "$HERE/run-vm.sh" -nt "$BASE" ]; then
	root=$(mktemp -d)
	mkdir -p "$root"/{bin,dev,proc,sys,host,orig,modules}
	cp /bin/busybox "$root/bin/busybox"
	for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev \
		 virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
		f=$(find "/lib/modules/$KVER/kernel" -name "$m.ko*" | head -n1)
		# built in, or merged into another module in this kernel
		[ -n "$f" ] || continue
		case "$f" in
		*.ko.xz) xz -dc "$f" > "$root/modules/$m.ko" ;;
		*.ko.zst) zstd -qdc "$f" > "$root/modules/$m.ko" ;;
		*) cp "$f" "$root/modules/$m.ko" ;;
		esac
	done
	cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev \
	 virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
	[ -f /modules/$m.ko ] || continue
	insmod /modules/$m.ko || echo "init: insmod $m failed" > /dev/ttyS1
done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose host /host; then
	echo "init: cannot mount the host root" > /dev/ttyS1
	echo "VIGIL-VM-EXIT 125" > /dev/ttyS1
	poweroff -f
fi
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/shm /host/dev/pts 2>/dev/null
# A view of the host root without the tmpfs mounts below, for a caller whose
# working directory lives in one of them (a checkout under /tmp, say).
mount -o bind /host /orig
for d in /host/tmp /host/run /host/var/tmp /host/dev/shm; do mount -t tmpfs tmpfs $d; done
cwd=$(cat /vm-cwd 2>/dev/null)
case "$cwd" in
/tmp/*|/run/*|/var/tmp/*|/dev/shm/*)
	mkdir -p "/host$cwd" && mount -o bind "/orig$cwd" "/host$cwd" ||
		echo "init: cannot show $cwd inside the VM" > /dev/ttyS1 ;;
esac
mount -t debugfs none /host/sys/kernel/debug 2>/dev/null
mkdir -p /host/run/netns /host/run/lock
cp /vm-cmd /host/tmp/.vm-cmd
cd /
chroot /host /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/tmp TERM=dumb LANG=C.UTF-8 /bin/sh /tmp/.vm-cmd > /dev/ttyS1 2>&1
rc=$?
echo "VIGIL-VM-EXIT $rc" > /dev/ttyS1
sync
poweroff -f
INIT
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$BASE.tmp"
	mv "$BASE.tmp" "$BASE"
	rm -rf "$root"
fi

# ---- per-run archive: the command.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
	printf 'export VIGIL_KO=%q VIGIL_KMOD=%q VIGIL_KVER=%q\n' "$BDIR/vigil.ko" "$KMOD" "$KVER"
	printf 'cd %q || exit 126\n' "$PWD"
	printf '%s\n' "$*"
} > "$work/vm-cmd"
printf '%s\n' "$PWD" > "$work/vm-cwd"
(cd "$work" && printf 'vm-cmd\nvm-cwd\n' | cpio -o -H newc --quiet) > "$work/run.cpio"
cat "$BASE" > "$work/initrd"
gzip -1 < "$work/run.cpio" >> "$work/initrd"

[ -n "$LOG" ] || LOG=$work/console.log
OUT=$work/out.log
: > "$OUT"

# One emulated guest at a time: two TCG guests on a small machine starve each
# other, and the tests inside measure timeouts and expiries in real time.
exec 9>"${VIGIL_VM_LOCK:-/tmp/vigil-vm.lock}"
flock 9

start=$(date +%s.%N)
set +e
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
	-accel tcg -machine pc -cpu max -m "$MEM" -smp "$SMP" \
	-nographic -no-reboot -nodefaults \
	-kernel "/boot/vmlinuz-$KVER" -initrd "$work/initrd" \
	-append "console=ttyS0 quiet loglevel=4 panic=-1 slab_nomerge rdinit=/init" \
	-chardev file,id=con,path="$LOG" -serial chardev:con \
	-chardev file,id=out,path="$OUT" -serial chardev:out \
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
	</dev/null >"$work/qemu.log" 2>&1
qrc=$?
set -e
end=$(date +%s.%N)

# The serial port may carry \r; strip them.
tr -d '\r' < "$OUT" | grep -v '^VIGIL-VM-EXIT ' || true
rc=$(tr -d '\r' < "$OUT" | sed -n 's/^VIGIL-VM-EXIT \([0-9]*\)$/\1/p' | tail -n1)
printf 'run-vm.sh: VM ran %.1f s\n' "$(echo "$end - $start" | bc 2>/dev/null || echo 0)" >&2
if [ -z "$rc" ]; then
	echo "run-vm.sh: the VM did not report an exit code (qemu rc=$qrc)" >&2
	[ "$qrc" = 124 ] && echo "run-vm.sh: timed out after ${TIMEOUT}s" >&2
	cat "$work/qemu.log" >&2
	echo "---- guest console (last 40 lines) ----" >&2
	tail -n 40 "$LOG" >&2
	exit $([ "$qrc" = 124 ] && echo 124 || echo 125)
fi
exit "$rc"
