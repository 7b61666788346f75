#!/bin/bash
# The test guests under QEMU TCG, the peer blvm is measured against (docs/DESIGN.md "Booting"): each
# guest must boot with `qemu-system-x86_64 -kernel`, print what it promises on COM1 and exit
# through isa-debug-exit with the status it promises. QEMU exits with (V << 1) | 1 for a value V
# written to port 0xf4. This checks the guests and the runtime, not blvm: when a guest fails under
# blvm but passes here, the bug is in blvm.
# Environment: GUESTS (the built guests; default build/guests). Skips (77) without QEMU.
set -u
cd "$(dirname "$0")/../.."
GUESTS="${GUESTS:-build/guests}"
QEMU="${QEMU:-qemu-system-x86_64}"

if ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "skip: $QEMU is not installed (apt-get install qemu-system-x86)"
	exit 77
fi
for g in hello hello-min arith exit42 exc-ud exc-pf exc-handled; do
	if [ ! -f "$GUESTS/$g" ]; then
		echo "FAIL: guest $GUESTS/$g is missing; build it with 'make guests'"
		exit 1
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# run NAME [CMDLINE]: boots the guest; sets $out (its console) and $v (the value it wrote to port
# 0xf4, or "none (status S)" when QEMU ended another way).
run() {
	local name=$1
	shift
	local args=(-accel tcg -cpu max -m 256 -display none -no-reboot -nodefaults -serial stdio
		-monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$GUESTS/$name")
	[ $# -gt 0 ] && args+=(-append "$1")
	timeout 30 "$QEMU" "${args[@]}" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err"
	local rc=$?
	out=$(cat "$tmp/$name.out")
	if [ $rc -eq 124 ]; then
		v="none (timed out after 30 s)"
	elif [ $((rc & 1)) -eq 1 ]; then
		v=$((rc >> 1))
	else
		v="none (status $rc)"
	fi
	echo "== $name: exit value $v"
	sed 's/^/   | /' "$tmp/$name.out" | head -n 40
	[ -s "$tmp/$name.err" ] && sed 's/^/   qemu: /' "$tmp/$name.err" | head -n 10
	return 0
}

expect_value() { # name want
	[ "$v" = "$2" ] || fail "$1: exit value $v, want $2"
}

expect_line() { # name extended-regex (whole line)
	grep -Eq "^($2)\$" <<<"$out" || fail "$1: no line matching /^$2\$/"
}

# hello: greeting, the command line exactly as given, a memory map with at least one RAM range
cmdline='console=ttyS0 answer=42 "quoted words"'
run hello "$cmdline"
expect_value hello 0
expect_line hello 'Hello from a blvm guest!'
grep -Fxq "cmdline: \"$cmdline\"" <<<"$out" || fail "hello: no line 'cmdline: \"$cmdline\"'"
expect_line hello 'memmap: [1-9][0-9]* entries'
expect_line hello '  0x[0-9a-f]+ 0x[0-9a-f]+ type 1'
n=$(sed -n 's/^memmap: \([0-9]*\) entries$/\1/p' <<<"$out")
lines=$(grep -Ec '^  0x[0-9a-f]+ 0x[0-9a-f]+ type [0-9]+$' <<<"$out")
[ "${n:-x}" = "$lines" ] || fail "hello: memmap says ${n:-?} entries but prints $lines"

# hello without a command line prints an empty one
run hello
expect_value hello 0
grep -Fxq 'cmdline: ""' <<<"$out" || fail "hello (no -append): no line 'cmdline: \"\"'"

# hello-min: exactly one line
run hello-min
expect_value hello-min 0
[ "$out" = 'Hello from a blvm guest!' ] || fail "hello-min: output is not exactly the greeting"

# arith: every check passes (the host CPU computed the expected values at build time)
run arith
expect_value arith 0
expect_line arith 'arith: [1-9][0-9]* checks, 0 failed'
grep -q '^FAIL' <<<"$out" && fail "arith: FAIL lines printed"

# exit42: the value written to 0xf4 comes out
run exit42
expect_value exit42 42
expect_line exit42 'exiting with 42'

# exc-ud: the runtime's report of an unhandled #UD, RIP at a ud2 inside the image, then status 3
run exc-ud
expect_value exc-ud 3
expect_line exc-ud 'blvm-rt: exception 6 \(#UD\) error=0x0 rip=0x[0-9a-f]+ cr2=0x[0-9a-f]+'
rip=$(sed -n 's/^blvm-rt: exception 6 (#UD) error=0x0 rip=0x\([0-9a-f]*\) .*/\1/p' <<<"$out")
if [ -n "$rip" ] && command -v objdump >/dev/null 2>&1; then
	objdump -d "$GUESTS/exc-ud" | grep -Eq "^ *${rip}:[[:space:]]+0f 0b[[:space:]]+ud2" ||
		fail "exc-ud: reported rip=0x$rip is not the address of a ud2"
fi

# exc-pf: a read above the 4 GiB identity map: not-present read fault, CR2 = the address
run exc-pf
expect_value exc-pf 3
expect_line exc-pf 'blvm-rt: exception 14 \(#PF\) error=0x0 rip=0x[0-9a-f]+ cr2=0x5000000000'

# exc-handled: the guest's own handler resumed it three times
run exc-handled
expect_value exc-handled 0
expect_line exc-handled 'handled 3 exceptions'
grep -q '^blvm-rt: exception' <<<"$out" && fail "exc-handled: the default handler ran"

echo
if [ $failures -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all guests behave under QEMU"
