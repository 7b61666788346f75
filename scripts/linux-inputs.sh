#!/bin/bash
# Makes the inputs of a stock Linux boot, once, in a cache directory (default ~/.cache/blvm/linux,
# or $BLVM_CACHE/linux): a Debian cloud kernel, as the distribution ships it, and a busybox initramfs
# whose init runs a few userland jobs and powers off.
#
#   scripts/linux-inputs.sh            prints the cache directory on stdout when everything is there
#   scripts/linux-inputs.sh --system-map   the same, and makes System.map too (below)
#   scripts/linux-inputs.sh --kmod         the same, and makes initrd-kmod.cpio too (below)
#   (both options may be given)
#
# The cache holds:
#   vmlinuz      the kernel package's /boot/vmlinuz-* (a bzImage, LZ4-compressed payload)
#   vmlinux      the ELF kernel inside it (carries the PVH note: XEN_ELFNOTE_PHYS32_ENTRY)
#   config       the kernel's .config
#   initrd-boot.cpio  a newc cpio archive: /init (below), /bin/busybox and its applet links, /dev/console
#                (named initrd.cpio until its init changed in BOOT_VERSION 1: worktrees and branches
#                that still build the older init keep their own file, and the two never rebuild each
#                other's; INIT_VERSION and initrd.cpio belong to those)
#   VERSION      the package name and version
#   initrd-splitlock.cpio  the same busybox, plus tests/linux/splitlock.c built static (gcc -static)
#                as /bin/splitlock with the links splitlock-a and splitlock-b; its /init runs both
#                at once ($SPLITA and $SPLITB split locks: an unknown NAME=VALUE on the kernel
#                command line reaches init's environment) and powers off (issue 13's tests)
#   initrd-sld.cpio  the same busybox and program; its /init runs one instance, splitlock-a
#                $SPLITA "timed" (it prints its rate in guest time), prints its exit status and
#                powers off: the guest kernel's own split_lock_detect=fatal|ratelimit:N acts on it
#                (tests/sh/linux-sld.sh)
#   System.map   only with --system-map: the kernel's real System.map. Debian's linux-image package
#                ships a placeholder in /boot ("The real System.map is in the linux-image-<version>-dbg
#                package"), so it comes from that package's /usr/lib/debug/boot/System.map-* (a 280 MB
#                download, once; tar stops at the file, which comes first)
#   initrd-kmod.cpio  only with --kmod: the busybox initramfs plus tests/linux/kmod/splitlock_kmod.ko,
#                an out-of-tree module built against Debian's headers of exactly the cached kernel
#                (linux-headers-<release> + its -common and linux-kbuild packages at the kernel's
#                version: 15 MB, downloaded and unpacked in a temporary directory, not installed);
#                its /init runs `insmod splitlock_kmod.ko n=$KMODN` (the module's init takes n split
#                locks in the kernel's _raw_spin_lock and prints where the kernel put that function),
#                prints insmod's pid and status and powers off (tests/sh/linux-kmod.sh). Debian's
#                kernel loads the unsigned module (CONFIG_MODULE_SIG without MODULE_SIG_FORCE: a taint;
#                lockdown is only forced under EFI Secure Boot, which a bzImage boot does not have).
# Everything comes from Debian's packages by name (linux-image-cloud-amd64, the meta-package, names
# the current kernel; busybox-static). Status 0: ready; 3: could not be made (the reason on stderr:
# no network on first use, say) -- tests skip on 3.
set -u
cache="${BLVM_CACHE:-$HOME/.cache/blvm}/linux"
boot_version=2 # bump when the init script below changes: initrd-boot.cpio is rebuilt
splitlock_version=3 # the same for initrd-splitlock.cpio (its init or tests/linux/splitlock.c)
# (a change of splitlock.c changes both: gcc's code for the program moves with any change of it;
# version 2's "timed" mode made gcc copy the lock to two RIPs, and a cache kept from version 1 hid it)
sld_version=3 # the same for initrd-sld.cpio (its init or tests/linux/splitlock.c)
kmod_version=1 # the same for initrd-kmod.cpio (its init or tests/linux/kmod/)
want_map=false want_kmod=false
for arg in "$@"; do
	case $arg in
	--system-map) want_map=true;;
	--kmod) want_kmod=true;;
	*) echo "linux-inputs: unknown option '$arg' (--system-map, --kmod)" >&2; exit 2;;
	esac
done
top=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "linux-inputs: $*" >&2; exit 3; }

ready() {
	[ -s "$cache/vmlinuz" ] && [ -s "$cache/vmlinux" ] && [ -s "$cache/initrd-boot.cpio" ] &&
	[ "$(cat "$cache/BOOT_VERSION" 2>/dev/null)" = "$boot_version" ] && [ -s "$cache/initrd-splitlock.cpio" ] &&
	[ "$(cat "$cache/SPLITLOCK_VERSION" 2>/dev/null)" = "$splitlock_version" ] && [ -s "$cache/initrd-sld.cpio" ] &&
	[ "$(cat "$cache/SLD_VERSION" 2>/dev/null)" = "$sld_version" ] && { ! $want_map || [ -s "$cache/System.map" ]; } &&
	{ ! $want_kmod || { [ -s "$cache/initrd-kmod.cpio" ] && [ "$(cat "$cache/KMOD_VERSION" 2>/dev/null)" = "$kmod_version" ]; }; }
}
ready && { echo "$cache"; exit 0; }
mkdir -p "$cache" || fail "cannot create $cache"
# The suite runs tests in parallel (tests/run.sh): one maker at a time; who waited finds it made.
exec 9>"$cache/.lock" && flock 9 || fail "cannot lock $cache/.lock"
ready && { echo "$cache"; exit 0; }
work=$(mktemp -d) || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT

for tool in lz4 dpkg-deb apt-get python3; do
	command -v $tool >/dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done

if [ ! -s "$cache/vmlinuz" ] || [ ! -s "$cache/vmlinux" ]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$pkg" ]; then
		apt-get update -qq >/dev/null 2>&1
		pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		      awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	[ -n "$pkg" ] || fail "apt-cache does not know linux-image-cloud-amd64"
	(cd "$work" && apt-get download "$pkg" >/dev/null 2>&1) || fail "apt-get download $pkg failed"
	dpkg-deb -x "$work"/linux-image-*.deb "$work/k" || fail "cannot unpack $pkg"
	cp "$work"/k/boot/vmlinuz-* "$work/vmlinuz" && cp "$work"/k/boot/config-* "$cache/config" ||
		fail "$pkg has no /boot/vmlinuz-*"
	# The ELF kernel inside the bzImage, as the kernel's scripts/extract-vmlinux finds it: the
	# payload's compression magic (Debian's cloud kernel: CONFIG_KERNEL_LZ4, legacy frame 02 21 4c 18).
	off=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(d.find(b"\x02\x21\x4c\x18"))' \
	      "$work/vmlinuz")
	[ "$off" -ge 0 ] || fail "no LZ4 payload in $pkg's vmlinuz (not CONFIG_KERNEL_LZ4?)"
	tail -c +$((off + 1)) "$work/vmlinuz" | lz4 -d -c 2>/dev/null > "$work/vmlinux"
	[ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
		fail "the payload of $pkg's vmlinuz did not decompress to an ELF file"
	mv "$work/vmlinux" "$cache/vmlinux" && mv "$work/vmlinuz" "$cache/vmlinuz" || fail "cannot write $cache"
	echo "$pkg $(dpkg-deb -f "$work"/linux-image-*.deb Version)" > "$cache/VERSION"
fi

if [ ! -s "$cache/busybox" ]; then
	(cd "$work" && apt-get download busybox-static >/dev/null 2>&1) || fail "apt-get download busybox-static failed"
	dpkg-deb -x "$work"/busybox-static_*.deb "$work/b" || fail "cannot unpack busybox-static"
	cp "$work/b/bin/busybox" "$cache/busybox" || fail "busybox-static has no /bin/busybox"
fi

# The init: every line it prints between the two markers is the userland output that the boot
# tests and bench/linux.sh compare across engines and with QEMU (so: deterministic). Of
# /proc/interrupts it prints the names only (the counts depend on timing): the I/O APIC's lines
# (IRQ, "IO-APIC", pin-trigger, device) and the local APIC timer's "LOC:". With READ_LINE=1 on the
# kernel command line (a NAME=VALUE the kernel does not know reaches init's environment) it asks for
# a line on the console, reads it from its stdin (/dev/console: the serial port) and echoes it: the
# typed line goes through the UART's receiver, its interrupt and the tty to the shell
# (tests/sh/linux-boot.sh types it); without it nothing waits for input. The read gives up after
# 120 s (the echo is then empty): a broken input path fails the test then, not at its --timeout.
cat > "$work/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "blvm-linux: userland up"
echo "cmdline: $(cat /proc/cmdline)"
echo "cpus online: $(grep -c ^processor /proc/cpuinfo)"
grep -E 'IO-APIC|^ *LOC:' /proc/interrupts | awk '{ irq = $1; sub(/^ *[^ ]+ +([0-9]+ +)*/, ""); $1 = $1; print "interrupt " irq " " $0 }'
if [ "${READ_LINE:-0}" = 1 ]; then
	echo "blvm-linux: type a line"
	read -r -t 120 line
	echo "console input: [$line]"
fi
echo "sum of squares: $(seq 1 3000 | awk '{ s += $1 * $1 } END { print s }')"
echo "sha256 of 256 KiB of zeros: $(dd if=/dev/zero bs=1024 count=256 2>/dev/null | sha256sum | cut -c1-16)"
i=0; while [ $i -lt 2000 ]; do i=$((i + 1)); done; echo "shell loop: $i"
for n in 1 2 3 4; do (echo "job $n: $(seq 1 $((n * 500)) | sha1sum | cut -c1-12)" > /tmp/job$n) & done; wait
cat /tmp/job1 /tmp/job2 /tmp/job3 /tmp/job4
echo "blvm-linux: powering off"
poweroff -f
INIT
# newc_cpio OUT INIT [NAME=FILE | NAME->TARGET]...: the archive of the busybox initramfs, with more
# files (NAME=FILE, mode 755) and symbolic links (NAME->TARGET) under bin/.
newc_cpio() {
	python3 - "$@" <<'PY'
# A newc cpio archive (the kernel's Documentation/driver-api/early-userspace/buffer-format.rst),
# written here so that no cpio tool is needed and the bytes are reproducible (mtime 0).
import sys
out, init, busybox = sys.argv[1:4]
ino = [1]
def entry(name, mode, data=b"", nlink=1, rdev=(0, 0)):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino[0], mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
    ino[0] += 1
    b = hdr.encode() + name_b
    b += b"\0" * (-len(b) % 4)
    b += data + b"\0" * (-len(data) % 4)
    return b
arc = b""
for d in ("bin", "dev", "proc", "sys", "tmp"):
    arc += entry(d, 0o040755, nlink=2)
arc += entry("dev/console", 0o020600, rdev=(5, 1))
arc += entry("init", 0o100755, open(init, "rb").read())
arc += entry("bin/busybox", 0o100755, open(busybox, "rb").read())
arc += entry("bin/sh", 0o120777, b"busybox")
for extra in sys.argv[4:]:
    if "->" in extra:
        name, target = extra.split("->", 1)
        arc += entry("bin/" + name, 0o120777, target.encode())
    else:
        name, path = extra.split("=", 1)
        arc += entry("bin/" + name, 0o100755, open(path, "rb").read())
arc += entry("TRAILER!!!", 0)
arc += b"\0" * (-len(arc) % 512)
open(out, "wb").write(arc)
PY
}
if [ ! -s "$cache/initrd-boot.cpio" ] || [ "$(cat "$cache/BOOT_VERSION" 2>/dev/null)" != "$boot_version" ]; then
	newc_cpio "$work/initrd-boot.cpio" "$work/init" "$cache/busybox" || fail "cannot build the initramfs"
	mv "$work/initrd-boot.cpio" "$cache/initrd-boot.cpio" || fail "cannot write $cache"
	echo $boot_version > "$cache/BOOT_VERSION"
fi

# The split-lock initramfs: two instances of one static program at once, each with its own comm.
if [ ! -s "$cache/initrd-splitlock.cpio" ] ||
   [ "$(cat "$cache/SPLITLOCK_VERSION" 2>/dev/null)" != "$splitlock_version" ]; then
	gcc -static -O2 -Wall -Wextra -Werror -o "$work/splitlock" "$top/tests/linux/splitlock.c" ||
		fail "cannot build tests/linux/splitlock.c static (libc6-dev's libc.a)"
	cat > "$work/init-splitlock" <<'INIT'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
echo "blvm-linux: userland up"
splitlock-a ${SPLITA:-5000} > /tmp/a & splitlock-b ${SPLITB:-3000} > /tmp/b & wait
cat /tmp/a /tmp/b
echo "blvm-linux: powering off"
poweroff -f
INIT
	newc_cpio "$work/initrd-splitlock.cpio" "$work/init-splitlock" "$cache/busybox" \
		"splitlock=$work/splitlock" "splitlock-a->splitlock" "splitlock-b->splitlock" ||
		fail "cannot build the split-lock initramfs"
	mv "$work/initrd-splitlock.cpio" "$cache/initrd-splitlock.cpio" || fail "cannot write $cache"
	echo $splitlock_version > "$cache/SPLITLOCK_VERSION"
fi

# The guest kernel's own split_lock_detect: one instance, its exit status (128 + SIGBUS = 135 when
# split_lock_detect=fatal kills it) and, when it lives, the rate the kernel let it go at.
if [ ! -s "$cache/initrd-sld.cpio" ] || [ "$(cat "$cache/SLD_VERSION" 2>/dev/null)" != "$sld_version" ]; then
	gcc -static -O2 -Wall -Wextra -Werror -o "$work/splitlock" "$top/tests/linux/splitlock.c" ||
		fail "cannot build tests/linux/splitlock.c static (libc6-dev's libc.a)"
	cat > "$work/init-sld" <<'INIT'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
echo "blvm-linux: userland up"
echo "kallsyms: $(grep ' entry_SYSCALL_64$' /proc/kallsyms)"
splitlock-a ${SPLITA:-21} timed
echo "splitlock-a: exit status $?"
echo "blvm-linux: powering off"
poweroff -f
INIT
	newc_cpio "$work/initrd-sld.cpio" "$work/init-sld" "$cache/busybox" \
		"splitlock=$work/splitlock" "splitlock-a->splitlock" || fail "cannot build the split_lock_detect initramfs"
	mv "$work/initrd-sld.cpio" "$cache/initrd-sld.cpio" || fail "cannot write $cache"
	echo $sld_version > "$cache/SLD_VERSION"
fi

if $want_map && [ ! -s "$cache/System.map" ]; then
	pkg=$(cut -d' ' -f1 "$cache/VERSION" 2>/dev/null)
	[ -n "$pkg" ] || fail "$cache/VERSION names no kernel package"
	(cd "$work" && apt-get download "$pkg-dbg" >/dev/null 2>&1) || fail "apt-get download $pkg-dbg failed"
	dpkg-deb --fsys-tarfile "$work/$pkg-dbg"_*.deb 2>/dev/null |
		tar -xO --occurrence=1 "./usr/lib/debug/boot/System.map-${pkg#linux-image-}" > "$work/System.map" 2>/dev/null
	grep -q ' T entry_SYSCALL_64$' "$work/System.map" || fail "$pkg-dbg has no System.map naming entry_SYSCALL_64"
	mv "$work/System.map" "$cache/System.map" || fail "cannot write $cache"
fi

# The kernel-mode split lock: a module built with the kernel's own kbuild, as a distribution's
# DKMS would, against the headers packages of exactly the cached kernel (the vermagic
# "<release> SMP preempt mod_unload modversions" and every symbol's CRC must match, or the kernel
# refuses it). The packages are unpacked, not installed: the flavour's Makefile includes the
# -common one by absolute path, so that line is pointed at the unpacked copy; scripts/ and tools/
# are relative links into linux-kbuild (fixdep, modpost, objtool: built for the host).
if $want_kmod && { [ ! -s "$cache/initrd-kmod.cpio" ] || [ "$(cat "$cache/KMOD_VERSION" 2>/dev/null)" != "$kmod_version" ]; }; then
	read -r pkg version < "$cache/VERSION" && [ -n "$version" ] || fail "$cache/VERSION names no kernel package"
	release=${pkg#linux-image-}
	(cd "$work" && apt-get download "linux-headers-$release=$version" >/dev/null 2>&1) ||
		fail "apt-get download linux-headers-$release=$version failed"
	# Its Depends names the -common and linux-kbuild packages, each at the kernel's version.
	deps=$(dpkg-deb -f "$work/linux-headers-${release}_"*.deb Depends | tr ',' '\n' |
	       sed -nE 's/^ *(linux-headers-[^ ]*-common|linux-kbuild-[^ ]*) .*/\1/p')
	[ "$(echo "$deps" | wc -l)" = 2 ] || fail "linux-headers-$release's Depends names no -common and kbuild packages"
	(cd "$work" && apt-get download $(for d in $deps; do echo "$d=$version"; done) >/dev/null 2>&1) ||
		fail "apt-get download $(echo $deps)=$version failed"
	for deb in "$work"/linux-headers-*.deb "$work"/linux-kbuild-*.deb; do
		dpkg-deb -x "$deb" "$work/h" || fail "cannot unpack $deb"
	done
	kdir="$work/h/usr/src/linux-headers-$release"
	sed -i "s|^include /usr/src/|include $work/h/usr/src/|" "$kdir/Makefile"
	mkdir "$work/m" && cp "$top/tests/linux/kmod/splitlock_kmod.c" "$top/tests/linux/kmod/Kbuild" "$work/m/" ||
		fail "cannot copy tests/linux/kmod"
	make -s -C "$kdir" M="$work/m" modules > "$work/kbuild.log" 2>&1 ||
		{ tail -5 "$work/kbuild.log" >&2; fail "the module does not build against linux-headers-$release"; }
	grep -aq "vermagic=$release SMP" "$work/m/splitlock_kmod.ko" ||
		fail "splitlock_kmod.ko's vermagic is not $release's"
	cat > "$work/init-kmod" <<'INIT'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
echo "blvm-linux: userland up"
insmod /bin/splitlock_kmod.ko n=${KMODN:-1000} & pid=$!
wait $pid
echo "insmod: pid $pid, exit status $?"
echo "blvm-linux: powering off"
poweroff -f
INIT
	newc_cpio "$work/initrd-kmod.cpio" "$work/init-kmod" "$cache/busybox" "splitlock_kmod.ko=$work/m/splitlock_kmod.ko" ||
		fail "cannot build the kernel-module initramfs"
	mv "$work/initrd-kmod.cpio" "$cache/initrd-kmod.cpio" || fail "cannot write $cache"
	echo $kmod_version > "$cache/KMOD_VERSION"
fi
echo "$cache"
