# SMP guests (issue 6) on several vCPUs: exact results of every locked instruction family, x86-TSO
# litmus tests, a CMPXCHG16B lock-free stack, `contain` atomic across vCPUs, the rate limit per VM,
# and a clean stop of every vCPU. Oracles: exact counts, the forbidden outcomes of x86-TSO, the
# same bytes as one vCPU and as QEMU TCG (1 and 2 vCPUs there). APs start by INIT-SIPI-SIPI.
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 is needed to check the --stats JSON"
json() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
for g in smp-count smp-litmus smp-stack smp-storm spin exit42 hello-min; do
	[ -f "$GUESTS/$g" ] || skip "guest $g not built"
done
have_qemu=1; command -v qemu-system-x86_64 >/dev/null || { have_qemu=0; echo "note: qemu-system-x86_64 missing, QEMU runs skipped"; }
# QEMU's side is the same whatever blvm's build: the sanitizer passes leave it to the plain one.
[ -n "${SAN:-}" ] && [ $have_qemu = 1 ] && { have_qemu=0; echo "note: sanitizer build: the QEMU runs are in the plain build's pass"; }

# run NAME TIMEOUT BLVM-ARGS... -- GUEST-ARGS: stdout to $TMP/NAME.out, stderr to $TMP/NAME.err;
# returns blvm's status. The outer timeout only guards the script; --timeout is blvm's own.
run() {
	local name=$1 t=$2; shift 2
	timeout 180 "$BLVM" run --quiet --timeout="$t" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
}
# N-independent form of smp-count's output: "(N x M)" becomes "(n x M)".
norm() { sed -E 's/\(([0-9]+) x /(n x /' "$1"; }

# kvm_cx16_limit NAME GUEST: the run ended in a KVM emulation failure on `lock cmpxchg16b`. Some
# hosts' KVM (nested or software, e.g. kvm_pvm with shadow paging) emulates that instruction and
# cannot: KVM_EXIT_INTERNAL_ERROR, suberror 1, already with one vCPU. That is the host's limit,
# not blvm's; the test says so and checks what ran before it.
kvm_cx16_limit() {
	local rip
	rip=$(sed -nE 's/.*internal error \(suberror 1\) on vCPU [0-9]+ at rip 0x([0-9a-f]+).*/\1/p' "$TMP/$1.err" | head -1)
	[ -n "$rip" ] || return 1
	objdump -d "$GUESTS/$2" | grep -E "^ +$rip:" | grep -q cmpxchg16b
}

# kvm_count_verdict N NOTE: smp-count's failed families on kvm. Known defect of the software KVM
# of this project's machines (kvm_pvm, shadow paging), not of blvm (which never writes registers of
# a running vCPU): with 2 or more vCPUs, `stc; lock adc $0` / `stc; lock sbb $0` sometimes run with
# CF = 0, so adc and sbb miss a few operations while every other family is exact. There it is
# reported as a note; anywhere else, or any other family, fails.
kvm_count_verdict() {
	local n=$1 note=$2 bad
	bad=$(grep " FAIL " "$TMP/count-kvm-$n.out" | grep -c . )
	if [ "$bad" -eq 0 ]; then echo "note: kvm $n vCPUs: smp-count: $note"; return; fi
	if [ -d /sys/module/kvm_pvm ] && ! grep " FAIL " "$TMP/count-kvm-$n.out" | grep -qvE "^smp-count: lock-(adc|sbb)-"; then
		echo "note: kvm $n vCPUs: smp-count: KNOWN HOST DEFECT (kvm_pvm): $bad adc/sbb families lost CF: $(grep " FAIL " "$TMP/count-kvm-$n.out" | sed -E 's/smp-count: ([^ ]+) FAIL.*/\1/' | tr '\n' ' ')"
		echo "note: kvm $n vCPUs: smp-count: $note"
	else
		fail "kvm $n vCPUs: smp-count: $bad families failed"; grep " FAIL " "$TMP/count-kvm-$n.out" | head -5
	fi
}

M=1000 # smp-count operations per vCPU and family (default 2000: ~1 s with 2 vCPUs on emu)

# ---- emu: 1, 2 and 4 vCPUs ----------------------------------------------------------------------
run count-emu-1 120 --engine=emu --vcpus=1 "$GUESTS/smp-count" -- $M
rc=$?
[ $rc -eq 0 ] && ok "emu 1 vCPU: smp-count exact (status 0)" || { fail "emu 1 vCPU: smp-count status $rc"; grep -v " ok " "$TMP/count-emu-1.out" | head -5; }
for n in 2 4; do
	run count-emu-$n 120 --engine=emu --vcpus=$n "$GUESTS/smp-count" -- $M
	rc=$?
	if [ $rc -eq 0 ] && grep -q "^smp-count: lock-add-split4 ok ($n x $M)$" "$TMP/count-emu-$n.out"; then
		ok "emu $n vCPUs: smp-count exact in every family"; else
		fail "emu $n vCPUs: smp-count status $rc"; grep -v " ok " "$TMP/count-emu-$n.out" | head -5; sed 's/^/  stderr: /' "$TMP/count-emu-$n.err" | head -3; fi
	cmp -s <(norm "$TMP/count-emu-1.out") <(norm "$TMP/count-emu-$n.out") &&
		ok "emu $n vCPUs: smp-count prints what 1 vCPU prints" || fail "emu $n vCPUs: smp-count output differs from 1 vCPU"
done
# Litmus runs per test: the guest's 100 000, or 10 000 under ThreadSanitizer, which serialises every
# guest access through its atomic interceptors (no outcome can show there; what it finds is races in
# the engine, and those show in fewer runs: the litmus part was 35 of sh/smp's 85 s under TSan).
LITMUS_K=100000; [ "${SAN:-}" = thread ] && LITMUS_K=10000
for n in 1 2 4; do
	run stack-emu-$n 120 --engine=emu --vcpus=$n "$GUESTS/smp-stack"
	rc=$?
	[ $rc -eq 0 ] && grep -q "^smp-stack: 1024 nodes, $n x 20000 rounds of 8: ok$" "$TMP/stack-emu-$n.out" &&
		ok "emu $n vCPUs: smp-stack lost and duplicated nothing" || { fail "emu $n vCPUs: smp-stack status $rc"; cat "$TMP/stack-emu-$n.out" | head -3; }
	run litmus-emu-$n 120 --engine=emu --vcpus=$n "$GUESTS/smp-litmus" -- $LITMUS_K
	rc=$?
	if [ $rc -eq 0 ] && grep -q "^smp-litmus: mp ok" "$TMP/litmus-emu-$n.out" && grep -q "^smp-litmus: lb ok" "$TMP/litmus-emu-$n.out"; then
		ok "emu $n vCPUs: litmus MP and LB never showed a forbidden outcome$([ $n -ge 4 ] && echo ', nor IRIW')"; else
		fail "emu $n vCPUs: smp-litmus status $rc"; grep -v info "$TMP/litmus-emu-$n.out" | head -5; fi
done
# SB's both-zero outcome is allowed by x86-TSO and, with host threads doing host stores and loads,
# the host's store buffer should show it. It does in nearly every run of 100000 on this project's
# machines; up to 5 runs make a miss all but impossible unless the engine serialises the vCPUs.
# Under ThreadSanitizer every guest access goes through TSan's atomic interceptors, which serialise
# them: the outcome cannot show there, so the check is skipped (noted) in that build only.
if [ "${SAN:-}" = thread ]; then
	echo "note: ThreadSanitizer build: SB both-zero observation skipped (TSan serialises atomics)"
else
sb=no
for try in 1 2 3 4 5; do
	run sb-emu 120 --engine=emu --vcpus=2 "$GUESTS/smp-litmus"
	grep -q "^smp-litmus: sb: allowed outcome observed: yes$" "$TMP/sb-emu.out" && { sb=yes; break; }
done
if [ $sb = yes ]; then
	ok "emu 2 vCPUs: SB both-zero outcome observed (run $try; $(grep 'info: sb' "$TMP/sb-emu.out" | sed 's/.*info: //'))"
else
	# The outcome needs both vCPU threads on a core at the same moment. On a host loaded by other
	# work they are time-sliced and it may not show; the host itself is the oracle: the same test
	# with two plain host threads, now. If the host cannot show it either, say so and do not fail.
	cat > "$TMP/sb-native.c" <<'C'
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
static volatile int x, y, r1, r2;
static atomic_int go, done;
static int rounds;
static void *b(void *a)
{
	(void)a;
	for (int k = 1; k <= rounds; k++) {
		while (atomic_load_explicit(&go, memory_order_acquire) != k)
			;
		y = 1;
		__asm__ volatile("" ::: "memory");
		r2 = x;
		atomic_store_explicit(&done, k, memory_order_release);
	}
	return NULL;
}
int main(int argc, char **argv)
{
	rounds = argc > 1 ? atoi(argv[1]) : 100000;
	pthread_t t;
	pthread_create(&t, NULL, b, NULL);
	long both = 0;
	for (int k = 1; k <= rounds; k++) {
		x = y = 0;
		atomic_store_explicit(&go, k, memory_order_release);
		x = 1;
		__asm__ volatile("" ::: "memory");
		r1 = y;
		while (atomic_load_explicit(&done, memory_order_acquire) != k)
			;
		both += !r1 && !r2;
	}
	pthread_join(t, NULL);
	printf("%ld\n", both);
	return 0;
}
C
	# The host's own rate decides: on a quiet machine two host threads show it in thousands of
	# 100000 rounds, on a loaded one in 1 to 300 (measured 2026-12-06 at load 2-10), where an
	# interpreter, ~30 host instructions per guest instruction between the store and the load,
	# may well miss it. A miss counts only when the host shows it in at least 1% of rounds.
	native=-1
	if gcc -O2 -pthread -o "$TMP/sb-native" "$TMP/sb-native.c"; then
		native=0
		for k in 1 2 3; do v=$("$TMP/sb-native" 100000); [ "$v" -gt "$native" ] && native=$v; done
	fi
	if [ "$native" -ge 0 ] && [ "$native" -lt 1000 ]; then
		echo "note: SB both-zero not observed on emu in 5 runs; two host threads show it in only $native of 100000 now (best of 3): the host is too loaded to show it reliably; not counted"
	else
		fail "emu 2 vCPUs: SB both-zero outcome never observed in 5 runs of 100000, while two host threads show it ($native of 100000, best of 3): does the engine serialise the vCPUs?"
	fi
fi
fi

# ---- contain: split locked operations without a host bus lock, still atomic across vCPUs --------
if ! "$BLVM" run --quiet --bus-lock=contain "$GUESTS/hello-min" >/dev/null 2>"$TMP/contain.err"; then
	echo "note: --bus-lock=contain not available ($(head -1 "$TMP/contain.err")); contain part skipped"
else
	for n in 2 4; do
		# M = 3000: enough for a non-atomic contained operation to lose an update to the other
		# vCPUs' plain stores or aligned host atomics in nearly every run.
		run contain-$n 60 --engine=emu --vcpus=$n --bus-lock=contain "$GUESTS/smp-count" -- 3000
		rc=$?
		if [ $rc -eq 0 ] && [ "$(tail -1 "$TMP/contain-$n.out")" = "smp-count: 92 families ok" ]; then
			ok "contain, emu $n vCPUs: smp-count exact in every family"; else
			fail "contain, emu $n vCPUs: smp-count status $rc$([ $rc -eq 124 ] && echo " (timed out after: $(tail -1 "$TMP/contain-$n.out"))")"
			grep -v " ok " "$TMP/contain-$n.out" | head -5; fi
	done
fi

# ---- ratelimit=N holds the VM, not each vCPU, to N bus locks per second ------------------------------
run storm-rl 60 --engine=emu --vcpus=2 --bus-lock=ratelimit=200 --stats="$TMP/rl.json" "$GUESTS/smp-storm" -- 300
rc=$?
if [ $rc -eq 0 ] && grep -q "^smp-storm: done 2 x 300$" "$TMP/storm-rl.out"; then
	total=$(json "$TMP/rl.json" 's["bus_locks"]["total"]'); wall=$(json "$TMP/rl.json" 's["wall_seconds"]')
	# QEMU's limiter grants N per slice, then sleeps to the slice's end: allow the rounding.
	if python3 -c "import sys; t,w,n=600,float(sys.argv[2]),200; sys.exit(0 if int(sys.argv[1])==t and t/w <= n*1.1 + n/w else 1)" "$total" "$wall"; then
		ok "ratelimit=200 with 2 vCPUs: $total bus locks in $wall s, within the per-VM limit"; else
		fail "ratelimit=200 with 2 vCPUs: $total bus locks (want 600) in $wall s exceeds the per-VM limit"; fi
	per='[(v["bus_locks"], v["split"], v["uc"], v["unattributed"]) for v in s["vcpus"]]'
	[ "$(json "$TMP/rl.json" "$per")" = "[(300, 300, 0, 0), (300, 300, 0, 0)]" ] &&
		ok "ratelimit: each vCPU's 300 bus locks attributed to it, all split" || fail "ratelimit: per-vCPU bus_locks split uc unattributed $(json "$TMP/rl.json" "$per")"
	thr='s["bus_locks"]["throttled_ns"] == sum(v["throttled_ns"] for v in s["vcpus"]) and all(v["throttled_ns"] > 0 for v in s["vcpus"])'
	[ "$(json "$TMP/rl.json" "$thr")" = True ] &&
		ok "ratelimit: both vCPU threads slept; their throttled_ns add up to the VM's" ||
		fail "ratelimit: throttled_ns $(json "$TMP/rl.json" '(s["bus_locks"]["throttled_ns"], [v["throttled_ns"] for v in s["vcpus"]])')"
else
	fail "smp-storm under ratelimit=200: status $rc"; sed 's/^/  stderr: /' "$TMP/storm-rl.err" | head -3
fi

# ---- stopping: every vCPU stops, whoever ends the VM ---------------------------------------------------
run spin4 0.5 --vcpus=4 "$GUESTS/spin"
rc=$?
[ $rc -eq 124 ] && ok "--vcpus=4 spin --timeout=0.5: status 124, every vCPU thread stopped" || fail "--vcpus=4 spin --timeout=0.5: status $rc"
run exit42-4 30 --vcpus=4 "$GUESTS/exit42"
rc=$?
[ $rc -eq 42 ] && [ "$(cat "$TMP/exit42-4.out")" = "exiting with 42" ] &&
	ok "--vcpus=4 exit42: status 42, console complete" || fail "--vcpus=4 exit42: status $rc, console '$(cat "$TMP/exit42-4.out")'"
# The dead VM with APs (src/emu/irqchip.c): `halt` never asks for its APs, so they stay in
# wait-for-SIPI, retire nothing and do not keep the VM alive when the BSP halts with IF = 0 (125
# at once, not the --timeout's 124); as the APs never ran, their threads took no host CPU.
[ -f "$GUESTS/halt" ] || skip "guest halt not built"
run halt4 60 --vcpus=4 --stats="$TMP/halt4.json" "$GUESTS/halt"
rc=$?
if [ $rc -eq 125 ] && [ "$(json "$TMP/halt4.json" '[v["instructions"] for v in s["vcpus"]][1:]')" = "[0, 0, 0]" ] &&
	grep -q "^blvm: vCPU 0 halted with interrupts disabled .*every other vCPU is halted or waits for INIT/SIPI" "$TMP/halt4.err"; then
	ok "--vcpus=4 halt: status 125 at the BSP's cli;hlt, the APs still waiting for SIPI (0 instructions)"
else
	fail "--vcpus=4 halt: status $rc"; cat "$TMP/halt4.err" | head -3
fi
# One vCPU triple-faults while the others spin: status 125 (shutdown), every console line out.
for e in emu kvm; do
	[ $e = kvm ] && ! kvm_usable && { echo "note: /dev/kvm not usable: kvm triple-fault stop skipped"; continue; }
	"$BLVM" run --quiet --engine=$e --vcpus=4 --timeout=60 --stats="$TMP/tf-$e.json" "$GUESTS/smp-stop" -- triple \
		>"$TMP/tf-$e.out" 2>"$TMP/tf-$e.err"
	rc=$?
	ready=$(grep -cE '^smp-stop: vCPU [0-3] of 4 ready$' "$TMP/tf-$e.out")
	if [ $rc -eq 125 ] && [ "$ready" -eq 4 ] && [ "$(tail -1 "$TMP/tf-$e.out")" = "smp-stop: vCPU 3 triple-faults now" ] &&
		[ "$(json "$TMP/tf-$e.json" 's["end"]')" = shutdown ] && grep -q "vCPU 3 triple-faulted" "$TMP/tf-$e.err"; then
		ok "$e --vcpus=4: vCPU 3 triple-faults: status 125, end shutdown, all 5 console lines out"
	else
		fail "$e --vcpus=4 smp-stop triple: status $rc, $ready ready lines"; tail -3 "$TMP/tf-$e.out" "$TMP/tf-$e.err"
	fi
done
# kill=N with 4 vCPUs storming: status 123 at the N-th bus lock. The exits are trap-like, so
# the others may each complete one more locked instruction before they see the end: N..N+3.
"$BLVM" run --quiet --vcpus=4 --bus-lock=kill=100 --timeout=60 --stats="$TMP/kill4.json" "$GUESTS/smp-stop" -- storm \
	>"$TMP/kill4.out" 2>"$TMP/kill4.err"
rc=$?
ready=$(grep -cE '^smp-stop: vCPU [0-3] of 4 ready$' "$TMP/kill4.out")
total=$(json "$TMP/kill4.json" 's["bus_locks"]["total"]')
pervcpu=$(json "$TMP/kill4.json" 'sum(v["bus_locks"] for v in s["vcpus"])')
if [ $rc -eq 123 ] && [ "$ready" -eq 4 ] && [ "$(wc -l < "$TMP/kill4.out")" -eq 4 ] && [ "$total" -ge 100 ] && [ "$total" -le 103 ] &&
	[ "$pervcpu" = "$total" ] && grep -q "bus lock 100 of 100 allowed, ending the VM: vCPU [0-3] rip 0x[0-9a-f]* <worker+0x[0-9a-f]*> lock add dword ptr" "$TMP/kill4.err"; then
	ok "emu --vcpus=4 --bus-lock=kill=100: status 123, $total bus locks (100..103, vcpus[] sum the same), the instruction named, console complete"
else
	fail "emu --vcpus=4 kill=100: status $rc, $ready ready lines, total $total, per-vCPU sum $pervcpu"; head -3 "$TMP/kill4.err"
fi
run storm8 60 --vcpus=8 "$GUESTS/smp-storm" -- 10
rc=$?
lines=$(grep -cE '^smp-storm: vCPU [0-7] of 8 storming$' "$TMP/storm8.out")
distinct=$(grep -E '^smp-storm: vCPU [0-7] of 8 storming$' "$TMP/storm8.out" | sort -u | wc -l)
[ $rc -eq 0 ] && [ "$lines" -eq 8 ] && [ "$distinct" -eq 8 ] && [ "$(wc -l < "$TMP/storm8.out")" -eq 9 ] &&
	ok "--vcpus=8: one whole console line from each vCPU (console lock), then done" ||
	{ fail "--vcpus=8 smp-storm: status $rc, $lines/$distinct lines"; head -12 "$TMP/storm8.out"; }

# ---- bench-cpu's `smp` mode (bench/cpu.sh's SMP speed): every vCPU does the whole work on its own
# state; the output is the 1-vCPU output but for its first line, and equals QEMU's (one vCPU).
run bcpu-1 120 --engine=emu "$GUESTS/bench-cpu" -- 1
run bcpu-smp 120 --engine=emu --vcpus=3 "$GUESTS/bench-cpu" -- 1 smp
rc=$?
if [ $rc -eq 0 ] && [ "$(head -1 "$TMP/bcpu-smp.out")" = "bench-cpu: scale 1, smp 3 vCPUs" ] &&
	cmp -s <(tail -n +2 "$TMP/bcpu-1.out") <(tail -n +2 "$TMP/bcpu-smp.out"); then
	ok "emu 3 vCPUs: bench-cpu smp: every vCPU's results agree, output = the 1-vCPU output"
else
	fail "emu 3 vCPUs: bench-cpu smp: status $rc"; diff "$TMP/bcpu-1.out" "$TMP/bcpu-smp.out" | head -5
fi
if kvm_usable; then # bench-cpu on the kvm engine too (scale 1, ~3.8 M instructions: under a second here)
	run bcpu-kvm 120 --engine=kvm --vcpus=2 "$GUESTS/bench-cpu" -- 1 smp
	rc=$?
	[ $rc -eq 0 ] && cmp -s <(tail -n +2 "$TMP/bcpu-1.out") <(tail -n +2 "$TMP/bcpu-kvm.out") &&
		ok "kvm 2 vCPUs: bench-cpu smp, the same results as emu" ||
		{ fail "kvm 2 vCPUs: bench-cpu smp: status $rc"; diff "$TMP/bcpu-1.out" "$TMP/bcpu-kvm.out" | head -5; }
fi
if [ $have_qemu = 1 ]; then
	qemu_run "$GUESTS/bench-cpu" -append "1 smp" >"$TMP/q-bcpu.out" 2>&1
	rc=$?
	[ $rc -eq 0 ] && [ "$(head -1 "$TMP/q-bcpu.out")" = "bench-cpu: scale 1, smp 1 vCPU" ] &&
		cmp -s <(tail -n +2 "$TMP/bcpu-1.out") <(tail -n +2 "$TMP/q-bcpu.out") &&
		ok "QEMU: bench-cpu smp on one vCPU, the same results" || fail "QEMU: bench-cpu smp: status $rc"
fi

# ---- QEMU TCG: the same guests unchanged, on one vCPU and with -smp 2 --------------------------------
if [ $have_qemu = 1 ]; then
	for g in smp-count smp-litmus smp-stack smp-storm; do
		args=(); [ $g = smp-count ] && args=(-append $M)
		qemu_run "$GUESTS/$g" "${args[@]}" >"$TMP/q-$g.out" 2>"$TMP/q-$g.err"
		rc=$?
		[ $rc -eq 0 ] && ok "QEMU: $g on one vCPU, status 0" || { fail "QEMU: $g status $rc"; tail -3 "$TMP/q-$g.out"; }
	done
	cmp -s "$TMP/count-emu-1.out" "$TMP/q-smp-count.out" && ok "QEMU and emu (1 vCPU): smp-count prints the same bytes" ||
		fail "QEMU and emu (1 vCPU): smp-count output differs"
	# -smp 2: the runtime reads the count from QEMU's fw_cfg and starts the AP with INIT-SIPI-SIPI, as
	# on blvm (QEMU's APs wait for SIPI too): the same bytes as emu with 2 vCPUs
	qemu_run "$GUESTS/smp-count" -smp 2 -append $M >"$TMP/q2-smp-count.out" 2>"$TMP/q2-smp-count.err"
	rc=$?
	[ $rc -eq 0 ] && cmp -s "$TMP/count-emu-2.out" "$TMP/q2-smp-count.out" &&
		ok "QEMU -smp 2 and emu --vcpus=2: smp-count exact, the same bytes" ||
		{ fail "QEMU -smp 2: smp-count status $rc or output differs from emu's"; diff "$TMP/count-emu-2.out" "$TMP/q2-smp-count.out" | head -5; }
	qemu_run "$GUESTS/smp-stack" -smp 2 >"$TMP/q2-smp-stack.out" 2>"$TMP/q2-smp-stack.err"
	rc=$?
	[ $rc -eq 0 ] && grep -q "^smp-stack: 1024 nodes, 2 x 20000 rounds of 8: ok$" "$TMP/q2-smp-stack.out" &&
		ok "QEMU -smp 2: smp-stack on 2 vCPUs lost and duplicated nothing" || fail "QEMU -smp 2: smp-stack status $rc"
fi

# ---- kvm: tiny counts (the kvm engine here runs ~2 M instructions/s per vCPU) --------------------------
if kvm_usable; then
	for n in 1 2 4; do
		run count-kvm-$n 120 --engine=kvm --vcpus=$n "$GUESTS/smp-count" -- 100
		rc=$?
		if [ $rc -eq 0 ] && grep -q "^smp-count: 92 families ok$" "$TMP/count-kvm-$n.out"; then
			ok "kvm $n vCPUs: smp-count exact"
		elif [ $rc -eq 1 ] && grep -q "families FAILED$" "$TMP/count-kvm-$n.out"; then
			kvm_count_verdict $n "every other family exact"
		elif [ $rc -eq 125 ] && kvm_cx16_limit count-kvm-$n smp-count; then
			kvm_count_verdict $n "$(grep -c ' ok ' "$TMP/count-kvm-$n.out") families checked, then host KVM failed to emulate lock cmpxchg16b (host limitation)"
		else
			fail "kvm $n vCPUs: smp-count status $rc"; sed 's/^/  stderr: /' "$TMP/count-kvm-$n.err" | head -3
		fi
		run stack-kvm-$n 120 --engine=kvm --vcpus=$n "$GUESTS/smp-stack" -- 50
		rc=$?
		if [ $rc -eq 0 ]; then ok "kvm $n vCPUs: smp-stack lost nothing"
		elif [ $rc -eq 125 ] && kvm_cx16_limit stack-kvm-$n smp-stack; then
			echo "note: kvm $n vCPUs: smp-stack not run: host KVM failed to emulate lock cmpxchg16b (host limitation)"
		else fail "kvm $n vCPUs: smp-stack status $rc"; sed 's/^/  stderr: /' "$TMP/stack-kvm-$n.err" | head -3; fi
		run litmus-kvm-$n 120 --engine=kvm --vcpus=$n "$GUESTS/smp-litmus" -- 500
		rc=$?
		[ $rc -eq 0 ] && grep -q "^smp-litmus: mp ok" "$TMP/litmus-kvm-$n.out" && ok "kvm $n vCPUs: litmus MP/LB never forbidden" ||
			{ fail "kvm $n vCPUs: smp-litmus status $rc"; grep -v info "$TMP/litmus-kvm-$n.out" | head -3; }
		run storm-kvm-$n 120 --engine=kvm --vcpus=$n "$GUESTS/smp-storm" -- 100
		rc=$?
		[ $rc -eq 0 ] && grep -q "^smp-storm: done $n x 100$" "$TMP/storm-kvm-$n.out" && ok "kvm $n vCPUs: smp-storm exact" ||
			fail "kvm $n vCPUs: smp-storm status $rc"
	done
	run exit42-kvm 60 --engine=kvm --vcpus=4 "$GUESTS/exit42"
	rc=$?
	[ $rc -eq 42 ] && [ "$(cat "$TMP/exit42-kvm.out")" = "exiting with 42" ] && ok "kvm --vcpus=4 exit42: status 42" || fail "kvm --vcpus=4 exit42: status $rc"
	run spin-kvm 0.5 --engine=kvm --vcpus=4 "$GUESTS/spin"
	rc=$?
	[ $rc -eq 124 ] && ok "kvm --vcpus=4 spin --timeout=0.5: status 124" || fail "kvm --vcpus=4 spin --timeout=0.5: status $rc"
else
	echo "note: /dev/kvm not usable here, kvm engine part skipped"
fi
finish
