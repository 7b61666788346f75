#!/bin/bash
# The realmode guest (guests/realmode.c: long mode -> real mode -> 16-bit checks -> long mode) under
# blvm's emu engine and under QEMU TCG: both must print the same console bytes (the hashes of every
# result: QEMU is the oracle) and exit with status 0. Without QEMU only blvm's run is checked.
# Environment: BLVM, GUESTS (see tests/run.sh).
set -u
cd "$(dirname "$0")/../.."
BLVM="${BLVM:-build/blvm}"
GUESTS="${GUESTS:-build/guests}"
QEMU="${QEMU:-qemu-system-x86_64}"
g="$GUESTS/realmode"
[ -f "$g" ] || { echo "FAIL: $g is missing; build it with 'make guests'"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

timeout 120 "$BLVM" run --engine=emu "$g" >"$tmp/blvm.out" 2>"$tmp/blvm.err"
rc=$?
sed 's/^/   blvm | /' "$tmp/blvm.out"
[ -s "$tmp/blvm.err" ] && sed 's/^/   blvm stderr: /' "$tmp/blvm.err" | head -n 10
if [ $rc -ne 0 ]; then
	echo "FAIL: blvm run --engine=emu $g: status $rc, want 0"
	exit 1
fi
grep -q '^rm: op32 ' "$tmp/blvm.out" || { echo "FAIL: no result lines"; exit 1; }

if ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "skip: $QEMU is not installed (apt-get install qemu-system-x86); blvm's run passed alone"
	exit 77
fi
timeout 120 "$QEMU" -accel tcg -cpu max -m 256 -display none -no-reboot -nodefaults -serial stdio \
	-monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$g" </dev/null \
	>"$tmp/qemu.out" 2>"$tmp/qemu.err"
qrc=$?
sed 's/^/   qemu | /' "$tmp/qemu.out"
[ -s "$tmp/qemu.err" ] && sed 's/^/   qemu stderr: /' "$tmp/qemu.err" | head -n 10
# isa-debug-exit: QEMU exits with (V << 1) | 1 for the value V written to port 0xf4
if [ $qrc -ne 1 ]; then
	echo "FAIL: QEMU: status $qrc, want 1 (guest exit value 0)"
	exit 1
fi
if ! cmp -s "$tmp/blvm.out" "$tmp/qemu.out"; then
	echo "FAIL: blvm and QEMU TCG print different results:"
	diff "$tmp/qemu.out" "$tmp/blvm.out" | sed 's/^/   /'
	exit 1
fi
echo "ok: blvm (emu) and QEMU TCG print the same $(wc -l <"$tmp/blvm.out") lines"
