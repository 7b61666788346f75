#!/bin/bash
# A stock distribution kernel boots on blvm to userland and powers off (issue 12): Debian's cloud
# kernel with a busybox initramfs (scripts/linux-inputs.sh, cached), as the ELF vmlinux (PVH entry)
# and as the bzImage (64-bit boot protocol), on the emu engine. Oracle: QEMU TCG boots the same
# kernel and initramfs with the same command line; the userland lines (between the init's markers)
# must be identical, the guest's /proc/cmdline must be exactly the command line given (blvm adds
# nothing), and blvm must end with the guest's ACPI poweroff: status 0 and "guest powered off".
# Under the sanitizers only the vmlinux boot runs (the bzImage differs only in the loader, which
# the boot-format tests cover).
set -u
cd "$TOP"
LX=$(scripts/linux-inputs.sh 2>/dev/null) || { echo "skip: the Debian kernel cannot be fetched here"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
CMDLINE="console=ttyS0 panic=-1 blvm.test=linux-boot"
fail=0
userland() {
	tr -d '\r' < "$1" | sed -n '/^blvm-linux: userland up/,/^blvm-linux: powering off/p' |
		grep -Ev '^\[ *[0-9]+\.[0-9]+\]'
}
timeout 300 qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot -kernel "$LX/vmlinux" \
	-initrd "$LX/initrd.cpio" -append "$CMDLINE" > "$tmp/qemu.out" 2>&1 < /dev/null
userland "$tmp/qemu.out" > "$tmp/qemu.user"
[ "$(wc -l < "$tmp/qemu.user")" -ge 5 ] || { echo "QEMU did not reach userland:"; tail -5 "$tmp/qemu.out"; exit 1; }
grep -qx "cmdline: $CMDLINE" "$tmp/qemu.user" || { echo "QEMU's guest saw another command line"; exit 1; }
formats="vmlinux vmlinuz"
[ -n "${SAN:-}" ] && formats=vmlinux
for fmt in $formats; do
	start=$SECONDS
	timeout 900 "$BLVM" run --mem=256M --timeout=600 --stats="$tmp/$fmt.json" --initrd="$LX/initrd.cpio" \
		"$LX/$fmt" -- $CMDLINE > "$tmp/$fmt.out" 2> "$tmp/$fmt.err" < /dev/null
	status=$?
	userland "$tmp/$fmt.out" > "$tmp/$fmt.user"
	echo "$fmt: status $status in $((SECONDS - start)) s, $(wc -l < "$tmp/$fmt.user") userland lines," \
	     "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instructions"])' "$tmp/$fmt.json" 2>/dev/null) instructions"
	if [ $status -ne 0 ] || ! grep -q "guest powered off" "$tmp/$fmt.err"; then
		echo "FAIL: $fmt: status $status (expected 0 after the guest's ACPI poweroff); stderr:"
		tail -5 "$tmp/$fmt.err"; tail -5 "$tmp/$fmt.out"; fail=1
	fi
	if ! cmp -s "$tmp/$fmt.user" "$tmp/qemu.user"; then
		echo "FAIL: $fmt: userland output differs from QEMU's:"; diff "$tmp/qemu.user" "$tmp/$fmt.user" | head -20
		fail=1
	fi
done
[ $fail -eq 0 ] && echo "ok: userland output equal to QEMU TCG's ($(wc -l < "$tmp/qemu.user") lines), poweroff status 0"
exit $fail
