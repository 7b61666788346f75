#!/bin/bash
# The in-engine interrupt platform on whole guests (guests/irq.c): LAPIC timer (periodic and
# TSC-deadline), the PIT through the 8259 and through the I/O APIC, self IPIs, IPIs between vCPUs,
# each taken with `sti; hlt` and counted exactly. Oracles: the counts the guest checks itself, and
# QEMU TCG printing the same lines (without the TSC-deadline part, which QEMU 7.2 TCG lacks).
# The RTC's alarm (irq -- rtc-alarm, ~3 s of RTC seconds each): AF latched until register C is read,
# and IRQ 8 with AIE, the same lines as QEMU TCG's hw/rtc/mc146818rtc.c.
# Also HLT: with IF=1 and nothing to wake it the vCPU sleeps until --timeout (status 124, not 125)
# taking no host CPU (user + sys < 0.3 s, and well under a spinning guest's beside it); with
# IF=0 the VM ends with 125 (sh/monitor).
set -u
cd "$(dirname "$0")/../.."
BLVM="${BLVM:-build/blvm}"
GUESTS="${GUESTS:-build/guests}"
QEMU="${QEMU:-qemu-system-x86_64}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

want='lapic-periodic: took 50 timer interrupts
tsc-deadline: took 10 timer interrupts
pit-pic: took 20 interrupts, vector 0x20
pit-ioapic: took 20 interrupts, vector 0x51
rtc-pic: took 20 interrupts, register C had IRQF and PF in each
rtc-ioapic: took 20 interrupts, register C had IRQF and PF in each
self-ipi: took 10 interrupts'

for flavour in intel amd; do
	out=$(timeout 60 "$BLVM" run --cpu=$flavour "$GUESTS/irq" 2>&1); rc=$?
	[ $rc -eq 0 ] && [ "$out" = "$want"$'\nirq: ok' ] && ok "irq, 1 vCPU, $flavour" ||
		fail "irq, 1 vCPU, $flavour: status $rc: $out"
	out=$(timeout 60 "$BLVM" run --cpu=$flavour --vcpus=2 "$GUESTS/irq" 2>&1); rc=$?
	[ $rc -eq 0 ] && [ "$out" = "$want"$'\nipi: vCPU 1 took 10 interrupts\nirq: ok' ] &&
		ok "irq, 2 vCPUs, $flavour" || fail "irq, 2 vCPUs, $flavour: status $rc: $out"
done
out=$(timeout 60 "$BLVM" run --vcpus=4 "$GUESTS/irq" -- skip=lapic-periodic 2>&1); rc=$?
[ $rc -eq 0 ] && grep -qx 'ipi: vCPU 3 took 10 interrupts' <<<"$out" && ok "irq, 4 vCPUs" ||
	fail "irq, 4 vCPUs: status $rc: $out"

# HLT with IF=1 and no interrupt source: sleeps (no end as "dead"), taking no host CPU. Measured as
# the process's CPU time (user + sys from /usr/bin/time), never wall time: over its 1 s the idle
# guest must take under 0.3 s (about 0.02 s here, 0.15 s under ASan: start-up). Beside it, over the
# same second and so under the same host load, guests/spin shows what a busy vCPU takes (on this
# 2-core machine at load 10 only 0.14 s, so 0.3 s alone would not catch a HLT that spins): when the
# spinner got at least 0.1 s, the idle guest must take under 3/4 of it (a spinning HLT takes about
# as much). Not under the sanitizers, whose start-up alone is near that.
tmpd=$(mktemp -d); trap 'rm -rf "$tmpd"' EXIT
cpu_s() { tail -n 1 "$1" | awk '{ printf "%.2f", $1 + $2 }'; } # the last line: -o also gets "Command exited with ..."
/usr/bin/time -o "$tmpd/spin.time" -f '%U %S' "$BLVM" run --timeout=1 "$GUESTS/spin" > /dev/null 2>&1 &
spin_pid=$!
out=$(/usr/bin/time -o "$tmpd/idle.time" -f '%U %S' "$BLVM" run --timeout=1 "$GUESTS/irq" -- idle 2>&1); rc=$?
wait $spin_pid; spin_rc=$?
idle=$(cpu_s "$tmpd/idle.time") spin=$(cpu_s "$tmpd/spin.time")
if [ $rc -ne 124 ] || ! grep -q '^idle: halting with interrupts on' <<<"$out"; then
	fail "idle: status $rc: $out"
elif [ $spin_rc -ne 124 ]; then
	fail "spin beside idle: status $spin_rc (expected 124 at --timeout)"
elif awk -v i="$idle" -v s="$spin" -v san="${SAN:-}" 'BEGIN { exit !(i >= 0.3 || (san == "" && s >= 0.1 && i >= 0.75 * s)) }'; then
	fail "idle guest halted with IF=1 took $idle s of host CPU in 1 s (a spinning guest beside it: $spin s)"
else
	ok "idle guest halted with IF=1 until --timeout: $idle s of host CPU (user + sys) in 1 s; a spinning guest beside it: $spin s"
fi

if command -v "$QEMU" >/dev/null 2>&1; then
	qout=$(timeout 60 "$QEMU" -accel tcg -cpu max -m 256 -display none -no-reboot -nodefaults -serial stdio \
		-monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$GUESTS/irq" \
		-append skip=tsc-deadline </dev/null 2>&1); qrc=$?
	bout=$(timeout 60 "$BLVM" run "$GUESTS/irq" -- skip=tsc-deadline 2>&1); brc=$?
	if [ "$qout" = "$bout" ] && [ $qrc -eq 1 ] && [ $brc -eq 0 ]; then
		ok "irq: QEMU TCG and blvm print the same $(wc -l <<<"$bout") lines"
	else
		fail "irq: QEMU (status $qrc) and blvm (status $brc) differ:"$'\n'"$qout"$'\n'"---"$'\n'"$bout"
	fi
	want_alarm=$'rtc-alarm: register C after the alarm\'s second: 0x20, read again: 0x0\nrtc-alarm: AIE: took 1 interrupt, register C had 0xa0'
	qout=$(timeout 60 "$QEMU" -accel tcg -cpu max -m 256 -display none -no-reboot -nodefaults -serial stdio \
		-monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$GUESTS/irq" \
		-append rtc-alarm </dev/null 2>&1); qrc=$?
	bout=$(timeout 60 "$BLVM" run "$GUESTS/irq" -- rtc-alarm 2>&1); brc=$?
	if [ "$qout" = "$want_alarm" ] && [ "$bout" = "$want_alarm" ] && [ $qrc -eq 1 ] && [ $brc -eq 0 ]; then
		ok "rtc-alarm: QEMU TCG and blvm print the same $(wc -l <<<"$bout") lines"
	else
		fail "rtc-alarm: QEMU (status $qrc) and blvm (status $brc):"$'\n'"$qout"$'\n'"---"$'\n'"$bout"
	fi
else
	echo "note: $QEMU not installed: no QEMU comparison"
fi
[ $failures -eq 0 ]
