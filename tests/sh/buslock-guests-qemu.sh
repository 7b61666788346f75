#!/bin/bash
# The bus-lock guests under QEMU TCG: the guests' half of the census oracle. QEMU detects no bus
# locks, but it runs every locked instruction, so here each guest must pass its own value checks
# (every result exact) and print the expected counts the census test compares with blvm's
# --stats. When buslock-census fails under blvm but passes here, the bug is in blvm.
#
# Expected counts (guests/buslock-census.c, header comment): per phase
#   wb 0, split split=214, uc uc=168, pat uc=252, mmio uc=82, unlocked 0; all: split=214 uc=502.
# Skips (77) without QEMU.
. "$(dirname "$0")/../lib.sh"

command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
for g in buslock-census buslock-storm; do
	[ -f "$GUESTS/$g" ] || { fail "guest $GUESTS/$g is missing; build it with 'make guests'"; finish; }
done

# run GUEST [CMDLINE]: $out = console, $v = value written to port 0xf4 (255: none).
run() {
	local g=$1; shift
	if [ $# -gt 0 ]; then qemu_run "$GUESTS/$g" -append "$1" </dev/null >"$TMP/out" 2>"$TMP/err"
	else qemu_run "$GUESTS/$g" </dev/null >"$TMP/out" 2>"$TMP/err"; fi
	v=$?
	out=$(cat "$TMP/out")
}
has_line() { grep -Eq "^($1)\$" <<<"$out"; }

# census PHASE SPLIT UC: one phase alone (PHASE "" = all phases, the default).
census() {
	local ph=$1 s=$2 u=$3 what="census ${1:-(all)}"
	run buslock-census "$ph"
	[ "$v" -eq 0 ] && ok "$what: exit 0" || { fail "$what: exit value $v, want 0"; sed 's/^/  | /' "$TMP/out" | tail -n 20; }
	grep -q '^census: FAIL' <<<"$out" && fail "$what: $(grep -c '^census: FAIL' <<<"$out") value checks failed"
	has_line 'census: [1-9][0-9]* checks, 0 failed' && ok "$what: its value checks pass" ||
		fail "$what: no line 'census: N checks, 0 failed'"
	has_line "census-expect: split=$s uc=$u total=$((s + u))" && ok "$what: expects split=$s uc=$u" ||
		fail "$what: no line 'census-expect: split=$s uc=$u total=$((s + u))': $(grep census-expect <<<"$out")"
	# Every kind line is well formed, and the kind lines add up to the total.
	local bad sum
	bad=$(grep '^census: ' <<<"$out" | grep -Ev '^census: ([a-z0-9-]+ (1|2|4|8|16) expect [0-9]+ bus locks \([0-9]+ locked ops\)|[0-9]+ checks, [0-9]+ failed|mmio reads 0x[0-9a-f]+)$')
	[ -z "$bad" ] || fail "$what: malformed lines: $bad"
	sum=$(sed -n 's/^census: [a-z0-9-]* [0-9]* expect \([0-9]*\) bus locks.*/\1/p' <<<"$out" | awk '{t += $1} END {print t + 0}')
	[ "$sum" -eq $((s + u)) ] && ok "$what: kind lines add up to $sum" ||
		fail "$what: kind lines add up to $sum, want $((s + u))"
	if [ -n "$ph" ] && [ "${ph% *}" = "$ph" ]; then # one phase
		has_line "census-phase: $ph split=$s uc=$u total=$((s + u))" && ok "$what: phase line" ||
			fail "$what: no line 'census-phase: $ph split=$s uc=$u total=$((s + u))'"
		[ "$(grep -c '^census-phase: ' <<<"$out")" -eq 1 ] || fail "$what: ran more than its phase"
	fi
}

census wb 0 0
census split 214 0
census uc 0 168
census pat 0 252
census mmio 0 82
census unlocked 0 0
census "" 214 502
census "split mmio" 214 82

run buslock-census nosuchphase
[ "$v" -eq 2 ] && ok "census: an unknown phase is refused (2)" || fail "census nosuchphase: exit value $v, want 2"

# The storm: N iterations in each mode, the counter checked by the guest.
for mode in split aligned uc; do
	run buslock-storm "$mode 1000"
	[ "$v" -eq 0 ] && has_line 'storm: done 1000' && ok "storm $mode 1000" ||
		fail "storm $mode 1000: exit value $v, output: $out"
	has_line "storm: $mode lock addl at 0x[0-9a-f]+, 1000 iterations" || fail "storm $mode: no start line"
done
run buslock-storm 2k
[ "$v" -eq 0 ] && has_line 'storm: done 2000' && ok "storm 2k (default mode split)" || fail "storm 2k: exit value $v, output: $out"
has_line 'storm: split lock addl at 0x[0-9a-f]*(3e|7e|be|fe), 2000 iterations' ||
	fail "storm: the split operand is not at line+62"
run buslock-storm "split 5 extra"
[ "$v" -eq 2 ] && ok "storm: a malformed command line is refused (2)" || fail "storm 'split 5 extra': exit value $v, want 2"

finish
