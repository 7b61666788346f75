# A dead VM ends on the kvm engine as on the emu engine. With the in-kernel irqchip KVM never exits
# on HLT, so the monitor finds the dead VM itself (src/vmm/dead.c: every vCPU's "blocking"
# statistic from KVM_GET_STATS_FD, then a pause and vm_dead()'s rule over KVM_GET_MP_STATE, _REGS,
# _VCPU_EVENTS, _LAPIC, _IRQCHIP, _PIT2). The oracle is the emu engine, whose run() reports the dead
# VM itself (src/emu/irqchip.c vm_dead()): the same guests end with the same status and the same
# stderr on both. guests/halt's modes: "" (cli; hlt: dead), "park" (APs cli; hlt, vCPU 0 waits
# for its LAPIC timer with sti; hlt: not dead, exits 0), "park-halt" (then vCPU 0 cli; hlt too:
# dead), "nmi" (cli; hlt, PIT ticks as NMIs through LVT0: not dead, exits 0 at its 30th NMI),
# "nmi-ioapic" (the same through I/O APIC pin 2), "lint1" (the PIT ticks, only LVT1 in NMI mode,
# which nothing drives: dead); irq
# "idle" (sti; hlt with no source: IF = 1 is never dead on either engine, so --timeout ends it).
# For "park" and "nmi" --stats' dead_checks shows the kvm engine's check did look at the paused
# vCPUs (every one blocked) and let them run. Where /dev/kvm is not usable, the kvm engine runs on
# the test shim's software KVM (tests/shim/kvm_buslock_shim.c: the emu engine behind the KVM ioctls,
# with HLT blocking inside KVM_RUN as KVM's); there KVM_BUSLOCK_SHIM_NO_STATS=1 also plays a kernel
# without KVM_CAP_BINARY_STATS_FD: one line says so and the dead VM waits for --timeout.
. "$(dirname "$0")/../lib.sh"
SHIM="$TOP/$BUILD/tests/kvm_buslock_shim.so"
PRE=
if ! kvm_usable; then
	[ -f "$SHIM" ] || skip "no usable /dev/kvm and the shim $SHIM is not built (make all)"
	PRE=$SHIM
	export KVM_BUSLOCK_SHIM_SOFTWARE=1
	echo "note: /dev/kvm not usable here: the shim's software kernel (blvm's emu engine behind the KVM ioctls) plays the kernel"
	if [ "${SAN:-}" = 1 ] || ldd "$BLVM" 2>/dev/null | grep -q libasan; then
		export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	fi
fi
for g in halt irq; do [ -f "$GUESTS/$g" ] || skip "guest $g not built"; done
command -v python3 >/dev/null || skip "python3 is needed to read --stats"
stat() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }

# both NAME TIMEOUT GUEST ARGS...: the guest on each engine, at once (the guests mostly sleep);
# $TMP/NAME.{emu,kvm}.{out,err,json,rc}
both() {
	local name=$1 t=$2 e; shift 2
	for e in emu kvm; do
		local pre=; [ $e = kvm ] && pre=$PRE
		{ LD_PRELOAD=$pre timeout 60 "$BLVM" run --engine=$e --timeout="$t" --stats="$TMP/$name.$e.json" "$@" \
			>"$TMP/$name.$e.out" 2>"$TMP/$name.$e.err"
		  echo $? >"$TMP/$name.$e.rc"; } &
	done
	wait
}
rc() { cat "$TMP/$1.rc"; }
show() { sed 's/^/  stderr: /' "$TMP/$1.err" | head -3; }

# same NAME WANT-STATUS WHAT: both engines ended with WANT-STATUS, the same console and stderr
same() {
	local name=$1 want=$2 what=$3
	if [ "$(rc $name.emu)" = "$want" ] && [ "$(rc $name.kvm)" = "$want" ] &&
		cmp -s "$TMP/$name.emu.out" "$TMP/$name.kvm.out" && cmp -s "$TMP/$name.emu.err" "$TMP/$name.kvm.err"; then
		ok "$what: status $want on emu and kvm, the same console and stderr"
	else
		fail "$what: status emu $(rc $name.emu), kvm $(rc $name.kvm) (want $want)"; show $name.emu; show $name.kvm
		diff "$TMP/$name.emu.out" "$TMP/$name.kvm.out" | head -4
	fi
}

both halt1 30 "$GUESTS/halt"
same halt1 125 "cli; hlt, one vCPU"
grep -q '^blvm: vCPU 0 halted with interrupts disabled at rip 0x[0-9a-f]* <guest_main+0x[0-9a-f]*> (nothing can wake it); ending the VM$' \
	"$TMP/halt1.kvm.err" && ok "kvm: the dead VM's message names vCPU 0, its rip and function" ||
	{ fail "kvm: message"; show halt1.kvm; }

both halt2 30 --vcpus=2 "$GUESTS/halt"
same halt2 125 "cli; hlt on vCPU 0, vCPU 1 waiting for INIT/SIPI"

both park 30 --vcpus=2 "$GUESTS/halt" -- park
same park 0 "vCPU 1 cli; hlt, vCPU 0 sti; hlt with its LAPIC timer armed (not dead)"
n=$(stat "$TMP/park.kvm.json" dead_checks)
[ "$(cat "$TMP/park.kvm.out")" = "halt: park: took 30 ticks" ] && [ "${n:-0}" != None ] && [ "${n:-0}" -ge 1 ] &&
	ok "kvm park: ran to its end after the check looked at every vCPU blocked $n time(s)" ||
	{ fail "kvm park: console '$(cat "$TMP/park.kvm.out")', dead_checks $n"; show park.kvm; }
[ "$(stat "$TMP/park.emu.json" dead_checks)" = None ] && ok "emu: no dead-VM check thread (its run() reports a dead VM)" ||
	fail "emu: --stats has dead_checks"

both parkhalt 30 --vcpus=2 "$GUESTS/halt" -- park-halt
same parkhalt 125 "vCPU 1 cli; hlt, then vCPU 0 cli; hlt after its timer"

both nmi 30 "$GUESTS/halt" -- nmi
same nmi 0 "cli; hlt with the PIT's ticks as NMIs on LVT0 (not dead)"
n=$(stat "$TMP/nmi.kvm.json" dead_checks)
[ "${n:-0}" != None ] && [ "${n:-0}" -ge 1 ] && ok "kvm nmi: the check looked $n time(s) and let it run" ||
	fail "kvm nmi: dead_checks $n"

both nmiio 30 "$GUESTS/halt" -- nmi-ioapic
same nmiio 0 "cli; hlt with the PIT's ticks as NMIs through I/O APIC pin 2 (not dead)"
n=$(stat "$TMP/nmiio.kvm.json" dead_checks)
[ "${n:-0}" != None ] && [ "${n:-0}" -ge 1 ] && ok "kvm nmi-ioapic: the check looked $n time(s) and let it run" ||
	fail "kvm nmi-ioapic: dead_checks $n"

both lint1 30 "$GUESTS/halt" -- lint1
same lint1 125 "cli; hlt, the PIT ticking but only LVT1 (undriven) in NMI mode: dead"

both idle 1 "$GUESTS/irq" -- idle
[ "$(rc idle.emu)" = 124 ] && [ "$(rc idle.kvm)" = 124 ] && cmp -s "$TMP/idle.emu.err" "$TMP/idle.kvm.err" &&
	ok "sti; hlt with no interrupt source: never dead on either engine (IF = 1); --timeout ends both (124)" ||
	{ fail "idle: status emu $(rc idle.emu), kvm $(rc idle.kvm) (want 124)"; show idle.emu; show idle.kvm; }

if [ -n "$PRE" ]; then
	KVM_BUSLOCK_SHIM_NO_STATS=1 LD_PRELOAD=$PRE timeout 60 "$BLVM" run --engine=kvm --timeout=1 "$GUESTS/halt" \
		>"$TMP/old.out" 2>"$TMP/old.err"
	r=$?
	lines=$(grep -c '^blvm: the kvm engine cannot tell a dead VM (every vCPU halted for good) here: KVM lacks KVM_CAP_BINARY_STATS_FD (Linux 5.14), the vCPUs'"'"' "blocking" statistic; such a VM waits for --timeout$' "$TMP/old.err")
	[ $r = 124 ] && [ "$lines" = 1 ] && grep -q '^blvm: timeout: ' "$TMP/old.err" &&
		ok "kvm without KVM_CAP_BINARY_STATS_FD: said once, the dead VM waits for --timeout (124)" ||
		{ fail "kvm without the capability: status $r, $lines lines"; sed 's/^/  stderr: /' "$TMP/old.err" | head -3; }
fi
finish
