#!/bin/bash
# A stock distribution kernel boots on blvm to userland and powers off (issue 12): Debian's cloud
# kernel with a busybox initramfs (scripts/linux-inputs.sh, cached), as the ELF vmlinux (PVH entry)
# and as the bzImage (64-bit boot protocol), on the emu engine. Oracle: QEMU TCG boots the same
# kernel and initramfs with the same command line; the userland lines (between the init's markers)
# must be identical, the guest's /proc/cmdline must be exactly the command line given (blvm adds
# nothing), and blvm must end with the guest's ACPI poweroff: status 0 and "guest powered off".
# Then the same with 2 vCPUs (vmlinux): the APs wait for INIT/SIPI and Linux starts them through
# its real-mode trampoline; the oracle is QEMU TCG with -smp 2, and the init's "cpus online: 2".
# And the 1-vCPU vmlinux boot on the AMD model (--cpu=amd, an EPYC Genoa: the kernel's AMD code,
# its family-19H quirks). In every boot the kernel must report no "unchecked MSR access" (an MSR
# its quirks for the part expect and the model does not answer), /proc/interrupts must name I/O APIC
# interrupts and the local APIC timer (LOC:; the init prints the names, not the counts), and a line
# typed into the console once the guest asks for it (READ_LINE=1: the init's `read` from
# /dev/console) must come back from the guest's shell: blvm's stdin, the UART's receiver and its
# interrupt, the tty. QEMU gets the same line the same way, so the comparison covers it too.
# Under the sanitizers only the 1-vCPU vmlinux boot runs (the bzImage differs only in the loader,
# which the boot-format tests cover; the SMP start in sh/smp and unit/emu_mpstate).
set -u
cd "$TOP"
LX=$(scripts/linux-inputs.sh 2>/dev/null) || { echo "skip: the Debian kernel cannot be fetched here"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
CMDLINE="console=ttyS0 panic=-1 blvm.test=linux-boot READ_LINE=1"
LINE='typed into the console: hello, guest'
# QEMU alone gets no_timer_check: TCG's guest time follows the host's, and on a loaded host Linux's
# check_timer() sees too few PIT ticks in its window ("..MP-BIOS bug: 8254 timer not connected to
# IO-APIC", IRQ 0 then off the I/O APIC, or "IO-APIC + timer doesn't work!" and a panic: seen with
# two busy loops beside four QEMUs). KVM guests skip the check the same way (kvmclock sets
# no_timer_check); blvm's boots keep it. The word is taken out of QEMU's "cmdline:" line.
QEMU_CMDLINE="$CMDLINE no_timer_check"
fail=0
# typed OUT ERR CMD...: runs CMD with stdout in OUT, stderr in ERR and its stdin a FIFO into which the line is typed once
# the guest asks (a byte sent earlier would reach the UART before Linux opens the port, whose
# startup clears the FIFO); the FIFO stays open until CMD ends (EOF would be a second event).
typed() {
	local out=$1 err=$2 vm; shift 2
	rm -f "$tmp/in"; mkfifo "$tmp/in" || return 1
	"$@" > "$out" 2> "$err" < "$tmp/in" & vm=$!
	{
		while kill -0 $vm 2>/dev/null && ! grep -q '^blvm-linux: type a line' "$out"; do sleep 0.2; done
		echo "$LINE"
		while kill -0 $vm 2>/dev/null; do sleep 0.2; done
	} > "$tmp/in"
	wait $vm
}
userland() {
	tr -d '\r' < "$1" | sed -n '/^blvm-linux: userland up/,/^blvm-linux: powering off/p' |
		grep -Ev '^\[ *[0-9]+\.[0-9]+\]'
}
# Under the sanitizers the engine's memory use is what matters: sh/linux-buslock boots the same kernel
# there (with attribution on); this test's QEMU comparisons belong to the plain pass.
[ -n "${SAN:-}" ] && { echo "skip: sanitizer build: the Linux boots against QEMU run in the plain build's pass"; exit 77; }
runs="vmlinux:1 vmlinuz:1 vmlinux:2 vmlinux:1:amd"
# On the binary translator (blvm's default; tests/run.sh's first run): the 1-vCPU vmlinux and the
# 2-vCPU boots; the whole set on the interpreter (the +interp run).
case "${BLVM_TRANSLATE:-on}" in off) ;; *) runs="vmlinux:1 vmlinux:2 vmlinux:1:amd" ;; esac
for n in $(printf '%s\n' $runs | cut -d: -f2 | sort -u); do
	typed "$tmp/qemu-$n.out" "$tmp/qemu-$n.err" timeout 300 qemu-system-x86_64 -accel tcg -m 256 -smp "$n" \
		-nographic -no-reboot -kernel "$LX/vmlinux" -initrd "$LX/initrd-boot.cpio" -append "$QEMU_CMDLINE"
	userland "$tmp/qemu-$n.out" | sed "s/^cmdline: $QEMU_CMDLINE\$/cmdline: $CMDLINE/" > "$tmp/qemu-$n.user"
	[ "$(wc -l < "$tmp/qemu-$n.user")" -ge 5 ] || { echo "QEMU -smp $n did not reach userland:"; tail -5 "$tmp/qemu-$n.out" "$tmp/qemu-$n.err"; exit 1; }
	grep -qx "cmdline: $CMDLINE" "$tmp/qemu-$n.user" || { echo "QEMU's guest saw another command line"; exit 1; }
	grep -qx "cpus online: $n" "$tmp/qemu-$n.user" || { echo "QEMU -smp $n: the guest saw another CPU count"; exit 1; }
	grep -qx "console input: \[$LINE\]" "$tmp/qemu-$n.user" || { echo "QEMU -smp $n: the typed line did not come back"; exit 1; }
done
for r in $runs; do
	IFS=: read -r fmt n cpu <<< "$r"
	cpu=${cpu:-intel} name=$fmt-$n-$cpu
	start=$SECONDS
	typed "$tmp/$name.out" "$tmp/$name.err" timeout 900 "$BLVM" run --cpu="$cpu" --mem=256M --vcpus="$n" \
		--timeout=600 --stats="$tmp/$name.json" --initrd="$LX/initrd-boot.cpio" "$LX/$fmt" -- $CMDLINE
	status=$?
	userland "$tmp/$name.out" > "$tmp/$name.user"
	echo "$fmt, $n vCPU(s), --cpu=$cpu: status $status in $((SECONDS - start)) s, $(wc -l < "$tmp/$name.user") userland lines," \
	     "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instructions"])' "$tmp/$name.json" 2>/dev/null) instructions"
	if [ $status -ne 0 ] || ! grep -q "guest powered off" "$tmp/$name.err"; then
		echo "FAIL: $fmt, $n vCPU(s): status $status (expected 0 after the guest's ACPI poweroff); stderr:"
		tail -5 "$tmp/$name.err"; tail -5 "$tmp/$name.out"; fail=1
	fi
	if grep -q "unchecked MSR access" "$tmp/$name.out"; then
		echo "FAIL: $fmt, $n vCPU(s), --cpu=$cpu: the kernel met an MSR the model does not answer:"
		grep -a "unchecked MSR access" "$tmp/$name.out" | head -3; fail=1
	fi
	# /proc/interrupts: the I/O APIC routes the ISA interrupts (the timer's on pin 2) and the local
	# APIC timer ticks; and the typed line came back through the shell
	for want in '^interrupt [0-9]+: IO-APIC 2-edge timer$' '^interrupt [0-9]+: IO-APIC 4-edge ttyS0$' \
	            '^interrupt LOC: Local timer interrupts$' "^console input: \[$LINE\]\$"; do
		grep -Eq "$want" "$tmp/$name.user" || { echo "FAIL: $fmt, $n vCPU(s), --cpu=$cpu: no line matching $want"; fail=1; }
	done
	if ! cmp -s "$tmp/$name.user" "$tmp/qemu-$n.user"; then
		echo "FAIL: $fmt, $n vCPU(s): userland output differs from QEMU -smp $n's:"
		diff "$tmp/qemu-$n.user" "$tmp/$name.user" | head -20
		fail=1
	fi
	# every vCPU ran Linux: the APs' instructions are counted from their SIPI on
	if [ "$n" -gt 1 ] && ! python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["vcpus"]; sys.exit(not all(c["instructions"] > 0 for c in v))' "$tmp/$name.json"; then
		echo "FAIL: $fmt, $n vCPUs: a vCPU retired no instruction"; fail=1
	fi
done
[ $fail -eq 0 ] && echo "ok: userland output equal to QEMU TCG's ($(wc -l < "$tmp/qemu-1.user") lines; 1 and 2 vCPUs; Intel and AMD models; I/O APIC and LOC: interrupts, the typed line echoed), poweroff status 0, no unchecked MSR access"
exit $fail
