#!/bin/bash
# Runs every test: the unit-test binaries built from tests/unit/*.c and the scripts tests/sh/*.sh.
# A test passes with status 0, is skipped with status 77 (it prints why), and fails otherwise.
# Environment for the scripts: BUILD (build directory), BLVM (the command), GUESTS (built guests).
# TESTS="pattern ..." runs only tests whose name contains one of the patterns.
# The emu engine runs its binary translator by default (issue 16). The emu tests in XLATE_TESTS run
# with BLVM_TRANSLATE=all (every block translated from its first run: short tests reach the
# translator) unless BLVM_TRANSLATE is set, and a second time as NAME+interp with BLVM_TRANSLATE=off,
# the interpreter, the reference; the unit tests' harness and blvm's --translate default both read it.
# BLVM_TRANSLATE=off make check runs the whole suite on the interpreter.
set -u
cd "$(dirname "$0")/.."
export BUILD="${BUILD:-build}"
export BLVM="$PWD/$BUILD/blvm" GUESTS="$PWD/$BUILD/guests" TOP="$PWD"
pass=0 fail=0 skip=0 failed=()
log_dir="$BUILD/test-logs"; mkdir -p "$log_dir"

selected() {
	[ -z "${TESTS:-}" ] && return 0
	for p in $TESTS; do case "$1" in *"$p"*) return 0;; esac; done
	return 1
}

run_one() { # name, command...
	local name=$1; shift
	selected "$name" || return 0
	local log="$log_dir/$name.log" start=$SECONDS
	mkdir -p "$(dirname "$log")"
	"$@" >"$log" 2>&1 </dev/null
	local rc=$?
	case $rc in
	0) pass=$((pass+1)); printf 'PASS  %-40s %3ds\n' "$name" $((SECONDS-start));;
	77) skip=$((skip+1)); printf 'SKIP  %-40s %s\n' "$name" "$(tail -n1 "$log")";;
	*) fail=$((fail+1)); failed+=("$name"); printf 'FAIL  %-40s (status %d)\n' "$name" $rc
	   sed 's/^/      | /' "$log" | tail -n 30;;
	esac
}

# the host-CPU oracles, random programs (also back end against back end), SMC, exits, SMP memory
# model and locked operations, the census, guests against QEMU and KVM, a Linux boot (1 and 2 vCPUs).
# The sanitizer passes run the scripts once, on the default back end: the scripts' guests add time,
# not coverage of the translator's own memory use, which the unit tests reach (the suite's ~15 min
# budget).
XLATE_TESTS="unit/emu_insn_oracle unit/emu_oracle unit/emu_randprog unit/emu_fpu_state unit/emu_smc
	unit/emu_exits unit/emu_exc_frame unit/smp_xmc unit/smp_locked unit/buslock_vm_exit
	sh/buslock-census sh/guests-engines sh/linux-boot"
xlate_too() { # name: also on the interpreter?
	[ -n "${SAN:-}" ] && [ "${1#sh/}" != "$1" ] && return 1
	for x in $XLATE_TESTS; do [ "$x" = "$1" ] && return 0; done
	return 1
}

for t in "$BUILD"/tests/*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	if xlate_too "unit/$(basename "$t")"; then
		run_one "unit/$(basename "$t")" env BLVM_TRANSLATE="${BLVM_TRANSLATE:-all}" "$t"
		run_one "unit/$(basename "$t")+interp" env BLVM_TRANSLATE=off "$t"
	else
		run_one "unit/$(basename "$t")" "$t"
	fi
done
for t in tests/sh/*.sh; do
	[ -f "$t" ] || continue
	if xlate_too "sh/$(basename "$t" .sh)"; then
		run_one "sh/$(basename "$t" .sh)" env BLVM_TRANSLATE="${BLVM_TRANSLATE:-all}" bash "$t"
		run_one "sh/$(basename "$t" .sh)+interp" env BLVM_TRANSLATE=off bash "$t"
	else
		run_one "sh/$(basename "$t" .sh)" bash "$t"
	fi
done

echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]} (logs in $log_dir/)"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
