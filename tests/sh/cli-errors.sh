# Bad input gets one clear line on stderr and exit status 2, and nothing starts:
# malformed kernels (each checked field of the PVH loader) and bad option values.
. "$(dirname "$0")/../lib.sh"
G="$GUESTS/hello-min"
[ -f "$G" ] || { fail "guest $G not built"; finish; }

expect_status 2 "missing kernel file" -- "$BLVM" run "$TMP/nonexistent"
expect_stderr "cannot open kernel .*nonexistent: No such file" "missing kernel file"
expect_status 2 "directory as kernel" -- "$BLVM" run "$TMP"
expect_stderr "is a directory" "directory as kernel"
: > "$TMP/empty"
expect_status 2 "empty file" -- "$BLVM" run "$TMP/empty"
expect_stderr "not an ELF file" "empty file"
head -c 40 "$G" > "$TMP/trunc"
expect_status 2 "truncated ELF header" -- "$BLVM" run "$TMP/trunc"
expect_stderr "truncated" "truncated ELF header"

# Program headers past the end of the file: e_phoff (offset 32, 8 bytes) = file size.
python3 - "$G" "$TMP/phoff" <<'PY'
import struct, sys, os
d = bytearray(open(sys.argv[1], 'rb').read())
struct.pack_into('<Q', d, 32, len(d))
open(sys.argv[2], 'wb').write(d)
PY
expect_status 2 "program headers past the end" -- "$BLVM" run "$TMP/phoff"
expect_stderr "program headers .* past the end of the file" "program headers past the end"

# A PT_LOAD segment whose file bytes lie past the end of the file.
python3 - "$G" "$TMP/segtrunc" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
phoff, = struct.unpack_from('<Q', d, 32); phentsize, phnum = struct.unpack_from('<HH', d, 54)
for i in range(phnum):
    o = phoff + i * phentsize
    if struct.unpack_from('<I', d, o)[0] == 1:   # PT_LOAD
        struct.pack_into('<Q', d, o + 32, len(d) * 2)   # p_filesz
        struct.pack_into('<Q', d, o + 40, len(d) * 2)   # p_memsz
        break
open(sys.argv[2], 'wb').write(d)
PY
expect_status 2 "segment past the end of the file" -- "$BLVM" run "$TMP/segtrunc"
expect_stderr "segment [0-9]+ .* past the end of the file" "segment past the end of the file"

# A segment outside guest RAM: p_paddr = 1 GiB with --mem=16M.
python3 - "$G" "$TMP/highseg" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
phoff, = struct.unpack_from('<Q', d, 32); phentsize, phnum = struct.unpack_from('<HH', d, 54)
for i in range(phnum):
    o = phoff + i * phentsize
    if struct.unpack_from('<I', d, o)[0] == 1:
        struct.pack_into('<Q', d, o + 24, 1 << 30)   # p_paddr
        break
open(sys.argv[2], 'wb').write(d)
PY
expect_status 2 "segment outside guest RAM" -- "$BLVM" run --mem=16M "$TMP/highseg"
expect_stderr "outside guest RAM .*--mem" "segment outside guest RAM"

# No PVH note: rename the note's type 18 to 17.
python3 - "$G" "$TMP/nonote" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = d.find(b'Xen\0')
assert i >= 12 and struct.unpack_from('<I', d, i - 4)[0] == 18, "PVH note not found in guest"
struct.pack_into('<I', d, i - 4, 17)
open(sys.argv[2], 'wb').write(d)
PY
expect_status 2 "kernel without the PVH note" -- "$BLVM" run "$TMP/nonote"
expect_stderr "no PVH entry note" "kernel without the PVH note"
expect_status 2 "a program, not a kernel" -- "$BLVM" run /bin/true
expect_stderr "no PVH entry note" "a program, not a kernel"

# Bad option values.
expect_status 2 "--mem=0" -- "$BLVM" run --mem=0 "$G"
expect_stderr "^blvm: --mem=0" "--mem=0"
expect_status 2 "--mem=banana" -- "$BLVM" run --mem=banana "$G"
expect_stderr "^blvm: --mem=banana is not a size" "--mem=banana"
expect_status 2 "--mem too small" -- "$BLVM" run --mem=1M "$G"
expect_stderr "--mem must be between" "--mem too small"
expect_status 2 "unknown engine" -- "$BLVM" run --engine=warp "$G"
expect_stderr "unknown engine 'warp'" "unknown engine"
expect_status 2 "--vcpus=0" -- "$BLVM" run --vcpus=0 "$G"
expect_status 2 "--cpu=via" -- "$BLVM" run --cpu=via "$G"
expect_status 2 "--translate=maybe" -- "$BLVM" run --translate=maybe "$G"
expect_stderr "choose on, off or all" "--translate=maybe"
expect_status 2 "BLVM_TRANSLATE=maybe" -- env BLVM_TRANSLATE=maybe "$BLVM" run "$G"
expect_stderr "BLVM_TRANSLATE=maybe" "BLVM_TRANSLATE=maybe"
expect_status 2 "--timeout=-1" -- "$BLVM" run --timeout=-1 "$G"
expect_status 2 "unknown option" -- "$BLVM" run --frobnicate "$G"
expect_stderr "unknown or incomplete option '--frobnicate'" "unknown option"
expect_status 2 "no kernel" -- "$BLVM" run
expect_status 2 "unknown command" -- "$BLVM" walk
expect_status 2 "unwritable --stats" -- "$BLVM" run --stats=/nonexistent/dir/s.json "$G"
expect_stderr "cannot write --stats" "unwritable --stats"

# An argument holding a newline or ESC is quoted escaped: still one line, no terminal control
# (found by tests/fuzz/cli_options.c).
expect_status 2 "--mem with a newline" -- "$BLVM" run --mem="$(printf '1\n5G')" "$G"
expect_stderr '^blvm: --mem=1\\x0a5G is not a size' "--mem with a newline"
expect_status 2 "a kernel name with a newline and ESC" -- "$BLVM" run "$TMP/$(printf 'no\nsuch\033]0;x')"
expect_stderr 'no\\x0asuch\\x1b\]0;x' "a kernel name with a newline and ESC"
expect_status 2 "--bus-lock=bogus" -- "$BLVM" run --bus-lock=bogus "$G"
expect_stderr "^blvm: --bus-lock=bogus" "--bus-lock=bogus"
expect_status 2 "--bus-lock=ratelimit=0" -- "$BLVM" run --bus-lock=ratelimit=0 "$G"
expect_stderr "at least 1" "--bus-lock=ratelimit=0"
# QEMU's limiter keeps a whole quota per slice, at least 1: a rate it cannot keep is said, not hidden.
expect_status 0 "--bus-lock=ratelimit=15/100ms runs" -- "$BLVM" run --quiet --bus-lock=ratelimit=15/100ms "$G"
expect_stderr "^blvm: note: --bus-lock=ratelimit=15/100ms: .*whole number of bus locks per slice \\(1\\), that is 10 per second, not 15" \
	"ratelimit=15/100ms says it enforces 10 per second"
# ... but only for a run that starts: a usage error or a bad kernel stays one line (found by
# tests/fuzz/cli_options.c).
expect_status 2 "ratelimit=15/100ms with a bad option" -- "$BLVM" run --bus-lock=ratelimit=15/100ms --vcpus=0 "$G"
expect_status 2 "ratelimit=15/100ms with a missing kernel" -- "$BLVM" run --bus-lock=ratelimit=15/100ms "$TMP/nonexistent"
expect_status 0 "--bus-lock=ratelimit=100/100ms runs" -- "$BLVM" run --quiet --bus-lock=ratelimit=100/100ms "$G"
! grep -q "note:" "$TMP/err" && ok "ratelimit=100/100ms: no rounding note" || fail "ratelimit=100/100ms: $(cat "$TMP/err")"
# A policy the engine cannot enforce: refuse to start, as QEMU does where the host lacks
# KVM_CAP_X86_BUS_LOCK_EXIT (this project's machines report 0).
if kvm_usable; then
	"$BLVM" run --engine=kvm --bus-lock=log "$G" >/dev/null 2>"$TMP/err"; rc=$?
	if grep -q "KVM_CAP_X86_BUS_LOCK_EXIT reports 0" "$TMP/err"; then
		[ $rc -eq 2 ] && [ "$(wc -l < "$TMP/err")" -eq 1 ] && ok "kvm without the capability refuses --bus-lock=log" ||
			fail "kvm --bus-lock=log: status $rc: $(cat "$TMP/err")"
		expect_status 0 "--engine=auto --bus-lock=log falls back to emu" -- "$BLVM" run --engine=auto --bus-lock=log "$G"
		expect_stderr "^blvm: --engine=auto: using emu \\(--bus-lock=log: the kvm engine cannot detect" "auto says why it chose emu"
	else
		echo "note: this host's kvm reports the bus-lock capability; refusal checks skipped"
	fi
	expect_status 2 "kvm refuses --bus-lock=contain" -- "$BLVM" run --engine=kvm --bus-lock=contain "$G"
fi
expect_status 0 "--help" -- "$BLVM" run --help
grep -q -- "--engine=emu|kvm|auto" "$TMP/out" && ok "--help lists the engines" || fail "--help text"
finish
