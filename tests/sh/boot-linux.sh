# A stock distribution kernel's bzImage (Debian's linux-image-6.1.0-*-cloud-amd64, /boot/vmlinuz-*) is
# accepted by the bzImage loader and entered at its 64-bit entry point: the decompressor runs (hundreds
# of thousands of instructions) before the kernel stops on what the engine lacks. Oracle: the kernel's
# own header (tests/sh/boot-formats.sh checks the zero page itself); how far it gets is printed.
# The kernel comes from the cache ($BLVM_CACHE, default ~/.cache/blvm): scripts/linux-inputs.sh's
# linux/vmlinuz where that script exists (it makes the cache once), else linux/vmlinuz if present or
# linux-bzimage/vmlinuz fetched here once with apt-get download; never downloaded twice; skipped (77)
# when neither the cache nor the network has it.
. "$(dirname "$0")/../lib.sh"
CACHE="${BLVM_CACHE:-$HOME/.cache/blvm}"
K=""
if [ -x "$TOP/scripts/linux-inputs.sh" ]; then
	d=$("$TOP/scripts/linux-inputs.sh" 2>"$TMP/inputs.err") && [ -s "$d/vmlinuz" ] && K="$d/vmlinuz"
	[ -n "$K" ] || skip "scripts/linux-inputs.sh could not make the kernel: $(tail -1 "$TMP/inputs.err")"
fi
for c in "$CACHE/linux/vmlinuz" "$CACHE/linux-bzimage/vmlinuz"; do [ -z "$K" ] && [ -s "$c" ] && K=$c; done
if [ -z "$K" ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
	pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' 2>/dev/null | cut -d' ' -f1 | sort -V | tail -1)
	if [ -n "$pkg" ] && (cd "$TMP" && timeout 300 apt-get download "$pkg" >/dev/null 2>&1); then
		dpkg-deb -x "$TMP"/"$pkg"_*.deb "$TMP/x" && mkdir -p "$CACHE/linux-bzimage" &&
			cp "$TMP"/x/boot/vmlinuz-* "$CACHE/linux-bzimage/vmlinuz.tmp" &&
			mv "$CACHE/linux-bzimage/vmlinuz.tmp" "$CACHE/linux-bzimage/vmlinuz" && K="$CACHE/linux-bzimage/vmlinuz"
	fi
fi
[ -n "$K" ] || skip "no Debian cloud kernel in $CACHE and none could be downloaded (apt-get download linux-image-6.1.0-*-cloud-amd64)"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(1024); sys.exit(0 if d[0x202:0x206] == b"HdrS" else 1)' "$K" ||
	{ fail "$K is not a bzImage"; finish; }
echo "kernel: $K ($(stat -c %s "$K") bytes)"
INITRD=""; [ -s "$(dirname "$K")/initrd.cpio" ] && INITRD="--initrd=$(dirname "$K")/initrd.cpio"
"$BLVM" run --timeout=20 --stats="$TMP/s.json" $INITRD "$K" -- console=ttyS0 >"$TMP/out" 2>"$TMP/err"; rc=$?
insns=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instructions"])' "$TMP/s.json" 2>/dev/null)
echo "status $rc, ${insns:-?} instructions, $(wc -c <"$TMP/out") console bytes; stderr:"; sed 's/^/  | /' "$TMP/err" | head -5
if [ $rc -ne 2 ] && [ "${insns:-0}" -gt 100000 ]; then
	ok "bzImage accepted and entered at its 64-bit entry: $insns instructions before the VM ended (status $rc)"
else
	fail "bzImage: status $rc, ${insns:-no} instructions"
fi
finish
