#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/linux.sh [BUILD]: a stock distribution kernel booted to userland and powered off, under blvm
# and under QEMU TCG side by side (issue 12, "How it is shown"; benchmarks measure, never assert).
#
# Inputs (scripts/linux-inputs.sh, cached): Debian's cloud kernel (linux-image-cloud-amd64) as
# vmlinuz (bzImage) and as the ELF vmlinux inside it (PVH entry), and a busybox initramfs whose
# /init prints a few deterministic lines between "blvm-linux: userland up" and "blvm-linux:
# powering off", then powers off.
#
# Rows: QEMU TCG with each kernel format, on 1 and SMP_VCPUS vCPUs (-smp), then blvm's emu engine
# (and kvm where /dev/kvm exists) likewise. Each row: status, wall time to poweroff, peak RSS, the
# ratio to QEMU TCG on the same format and vCPU count, and whether the userland output equals
# that QEMU's (the init prints the CPU count; a row that did not reach userland says where it
# ended, from --stats).
#
# Environment: MEM (default 256M), SMP_VCPUS (default 2), TIMEOUT (seconds per boot, default 300),
# QEMU (default qemu-system-x86_64), ENGINES (default "emu" plus "kvm" where /dev/kvm opens),
# CMDLINE (default "console=ttyS0 panic=-1").
# Exit status: 0 when the script ran (whatever the rows say); 1 when something is broken (inputs
# cannot be made, a binary is missing).
set -u
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
BLVM="$BUILD/blvm"
QEMU="${QEMU:-qemu-system-x86_64}"
MEM="${MEM:-256M}"
SMP_VCPUS="${SMP_VCPUS:-2}"
TIMEOUT="${TIMEOUT:-300}"
CMDLINE="${CMDLINE:-console=ttyS0 panic=-1}"
RUN1="bench/run1.py"
if [ -z "${ENGINES:-}" ]; then
	ENGINES=emu
	[ -r /dev/kvm ] && [ -w /dev/kvm ] && ENGINES="emu kvm"
fi

die() { echo "bench/linux.sh: $*" >&2; exit 1; }
[ -x "$BLVM" ] || die "$BLVM is missing: run make first"
command -v "$QEMU" >/dev/null || die "$QEMU is missing (scripts/deps.sh installs it)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package: time)"
LX=$(scripts/linux-inputs.sh) || die "cannot make the Linux inputs (see above)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The init's lines; kernel messages that land between them (printk's "[    1.234567] ...") are not.
userland() {
	tr -d '\r' < "$1" | sed -n '/^blvm-linux: userland up/,/^blvm-linux: powering off/p' |
		grep -Ev '^\[ *[0-9]+\.[0-9]+\]'
}

# run NAME CMD...: wall time and status (run1.py), peak RSS (GNU time), the userland lines.
run() {
	local name=$1; shift
	local res
	res=$(python3 "$RUN1" "$tmp/$name.out" "$tmp/$name.err" "$TIMEOUT" -- /usr/bin/time -f '%M' -o "$tmp/$name.rss" "$@")
	echo "$res" > "$tmp/$name.res"
	userland "$tmp/$name.out" > "$tmp/$name.user"
}

echo "== inputs: $(cat "$LX/VERSION"), initramfs $(stat -c %s "$LX/initrd-boot.cpio") bytes; -m $MEM; -append \"$CMDLINE\""
echo "== host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u '+%Y-%m-%d %H:%M UTC')"
qmem=${MEM%M}
for fmt in vmlinuz vmlinux; do
	for n in 1 "$SMP_VCPUS"; do
		run "qemu-$fmt-$n" "$QEMU" -accel tcg -m "$qmem" -smp "$n" -nographic -no-reboot -kernel "$LX/$fmt" \
			-initrd "$LX/initrd-boot.cpio" -append "$CMDLINE"
	done
done
for eng in $ENGINES; do
	for fmt in vmlinuz vmlinux; do
		for n in 1 "$SMP_VCPUS"; do
			run "blvm-$eng-$fmt-$n" "$BLVM" run --engine="$eng" --mem="$MEM" --vcpus="$n" \
				--timeout="$TIMEOUT" --stats="$tmp/blvm-$eng-$fmt-$n.json" \
				--initrd="$LX/initrd-boot.cpio" "$LX/$fmt" -- $CMDLINE
		done
	done
done

printf '\n%-26s %6s %9s %9s %7s  %s\n' "run" "status" "wall s" "RSS MiB" "ratio" "userland output"
for f in "$tmp"/*.res; do
	name=$(basename "$f" .res)
	read -r wall status < "$f"
	rss=$(tail -n1 "$tmp/$name.rss" 2>/dev/null)
	case "$rss" in '' | *[!0-9]*) rss_mib="-" ;; *) rss_mib=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') ;; esac
	fmt=vmlinux; case "$name" in *vmlinuz*) fmt=vmlinuz ;; esac
	ref="qemu-$fmt-${name##*-}" # the QEMU row with the same format and vCPU count
	ratio="-"; verdict=""
	if [ "${name#qemu}" = "$name" ]; then
		read -r qwall _ < "$tmp/$ref.res"
		ratio=$(awk -v a="$wall" -v b="$qwall" 'BEGIN { printf "%.2f", a / b }')
		if [ -s "$tmp/$name.user" ] && cmp -s "$tmp/$name.user" "$tmp/$ref.user"; then
			verdict="equal to QEMU's"
		elif [ -s "$tmp/$name.user" ]; then
			verdict="DIFFERS from QEMU's"
		else
			end=$(python3 -c 'import json,sys
try:
    s = json.load(open(sys.argv[1])); print("ended:", s.get("end"), "-", s.get("message"), "after", s.get("instructions"), "instructions")
except Exception:
    print("no stats")' "$tmp/$name.json" 2>/dev/null)
			verdict="no userland; $end; stderr: $(grep -v '^$' "$tmp/$name.err" | grep -v '^[0-9]*$' | tail -n1 | cut -c1-120)"
		fi
	else
		[ -s "$tmp/$name.user" ] && verdict="$(wc -l < "$tmp/$name.user") lines (the reference)" || verdict="no userland (QEMU failed?)"
	fi
	printf '%-26s %6s %9.2f %9s %7s  %s\n' "$name" "$status" "$wall" "$rss_mib" "$ratio" "$verdict"
done
echo
echo "QEMU's userland output with 1 vCPU (the reference):"
sed 's/^/  /' "$tmp/qemu-vmlinux-1.user"
