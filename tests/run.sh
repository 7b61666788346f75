#!/bin/bash
# Runs every test: the unit-test binaries built from tests/unit/*.c and the scripts tests/sh/*.sh.
# A test passes with status 0, is skipped with status 77 (it prints why), and fails otherwise.
# Environment for the scripts: BUILD (build directory), BLVM (the command), GUESTS (built guests).
# TESTS="pattern ..." runs only tests whose name contains one of the patterns.
# The emu engine runs its binary translator by default (issue 16). The emu tests in XLATE_TESTS run
# with BLVM_TRANSLATE=all (every block translated from its first run: short tests reach the
# translator) unless BLVM_TRANSLATE is set, and a second time as NAME+interp with BLVM_TRANSLATE=off,
# the interpreter, the reference; the unit tests' harness and blvm's --translate default both read it.
# BLVM_TRANSLATE=off make check runs the whole suite on the interpreter. BLVM_XLATE_CHECK=1 (the
# default here) makes the translator check every encoding it takes from a memo template against
# Zydis's own for the same request (xlate.c, emit_req): a difference aborts the test.
# Tests run JOBS at a time (default: one per host CPU; JOBS=1 runs them one by one), except those in
# ALONE, which measure what other work on the host would change (two host threads racing, signals at
# random moments of a run): they start when nothing else runs, and nothing starts beside them.
# A test still running after TEST_TIMEOUT seconds (default 900) is stopped and fails with its log.
set -u
cd "$(dirname "$0")/.."
export BUILD="${BUILD:-build}"
export BLVM="$PWD/$BUILD/blvm" GUESTS="$PWD/$BUILD/guests" TOP="$PWD"
export BLVM_XLATE_CHECK="${BLVM_XLATE_CHECK:-1}"
log_dir="$BUILD/test-logs"; mkdir -p "$log_dir"
results="$log_dir/results"; : >"$results"
JOBS="${JOBS:-$(nproc)}"
ALONE="sh/smp unit/smp_litmus sh/signals"

selected() {
	[ -z "${TESTS:-}" ] && return 0
	for p in $TESTS; do case "$1" in *"$p"*) return 0;; esac; done
	return 1
}

run_one() { # name, command...: one line (and a failure's log) written at once, a line in $results
	local name=$1; shift
	local log="$log_dir/$name.log" start=$SECONDS
	mkdir -p "$(dirname "$log")"
	# a test that hangs fails with its log after TEST_TIMEOUT seconds, rather than holding the whole
	# run (CI stops at 90 minutes and shows nothing of it)
	timeout --kill-after=10 "${TEST_TIMEOUT:-900}" "$@" >"$log" 2>&1 </dev/null
	local rc=$? out
	[ $rc -eq 124 ] && echo "run.sh: $name did not end within ${TEST_TIMEOUT:-900} s (TEST_TIMEOUT)" >>"$log"
	case $rc in
	0) echo "pass $name" >>"$results"; out=$(printf 'PASS  %-40s %3ds' "$name" $((SECONDS-start)));;
	77) echo "skip $name" >>"$results"; out=$(printf 'SKIP  %-40s %s' "$name" "$(tail -n1 "$log")");;
	*) echo "fail $name" >>"$results"
	   # the failed checks first (CI shows the end of this output), then the log's last lines
	   out=$(printf 'FAIL  %-40s (status %d)\n' "$name" $rc
		 grep -E -m 10 '^FAIL|FAILED|ERROR|runtime error' "$log" | sed 's/^/      ! /'
		 sed 's/^/      | /' "$log" | tail -n 30);;
	esac
	printf '%s\n' "$out"
}

start() { # name, command...: run it in the pool (or alone)
	selected "$1" || return 0
	case " $ALONE " in
	*" $1 "*) wait; run_one "$@"; return;;
	esac
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
	run_one "$@" &
}

# the host-CPU oracles, random programs (also back end against back end), SMC, exits, SMP memory
# model and locked operations, the census, guests against QEMU and KVM, a Linux boot (1 and 2 vCPUs).
# The sanitizer passes run the scripts once, on the default back end: the scripts' guests add time,
# not coverage of the translator's own memory use, which the unit tests reach (the suite's ~15 min
# budget).
XLATE_TESTS="unit/emu_insn_oracle unit/emu_oracle unit/emu_randprog unit/emu_fpu_state unit/emu_smc
	unit/emu_exits unit/emu_exc_frame unit/emu_seglim unit/smp_xmc unit/smp_locked unit/buslock_vm_exit
	sh/buslock-census sh/guests-engines sh/linux-boot"
xlate_too() { # name: also on the interpreter?
	[ -n "${SAN:-}" ] && [ "${1#sh/}" != "$1" ] && return 1
	for x in $XLATE_TESTS; do [ "$x" = "$1" ] && return 0; done
	return 1
}

for t in "$BUILD"/tests/*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	if xlate_too "unit/$(basename "$t")"; then
		start "unit/$(basename "$t")" env BLVM_TRANSLATE="${BLVM_TRANSLATE:-all}" "$t"
		start "unit/$(basename "$t")+interp" env BLVM_TRANSLATE=off "$t"
	else
		start "unit/$(basename "$t")" "$t"
	fi
done
# The kvm engine's contract tests (unit/kvm_engine) over the test shim's software kernel
# (tests/shim: the emu engine behind KVM's ioctls), wherever /dev/kvm is: the emu engine keeps
# KVM's semantics, e.g. a program the host writes between two KVM_RUNs runs. ASan accepts the
# (uninstrumented) shim ahead of its runtime with verify_asan_link_order=0 (sh/kvm-buslock-shim).
shim="$PWD/$BUILD/tests/kvm_buslock_shim.so"
if [ -x "$BUILD/tests/kvm_engine" ] && [ -f "$shim" ]; then
	start "unit/kvm_engine+shim" env LD_PRELOAD="$shim" KVM_BUSLOCK_SHIM_SOFTWARE=1 \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$BUILD/tests/kvm_engine"
fi
for t in tests/sh/*.sh; do
	[ -f "$t" ] || continue
	if xlate_too "sh/$(basename "$t" .sh)"; then
		start "sh/$(basename "$t" .sh)" env BLVM_TRANSLATE="${BLVM_TRANSLATE:-all}" bash "$t"
		start "sh/$(basename "$t" .sh)+interp" env BLVM_TRANSLATE=off bash "$t"
	else
		start "sh/$(basename "$t" .sh)" bash "$t"
	fi
done

wait

pass=$(grep -c '^pass ' "$results") fail=$(grep -c '^fail ' "$results") skip=$(grep -c '^skip ' "$results")
echo
[ "$fail" -gt 0 ] && echo "failed: $(sed -n 's/^fail //p' "$results" | tr '\n' ' ')(logs in $log_dir/)"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
