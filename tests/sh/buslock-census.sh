# The census: the buslock-census guest performs known numbers of every kind of locked access and
# prints how many bus locks a monitor must see; blvm must count exactly those, per phase and per
# reason (split, uc), in both flavours (--cpu=intel trap-like, --cpu=amd fault-like), and see none
# with detection off (docs/DESIGN.md "Bus-lock semantics"; the seed: "Bus lock can be caused by split
# locked access to writeback(WB) memory or by using locks on uncacheable(UC) memory").
. "$(dirname "$0")/../lib.sh"
G="$GUESTS/buslock-census"
[ -f "$G" ] || { fail "guest $G not built"; finish; }
command -v python3 >/dev/null || skip "python3 is needed to read the --stats JSON"

check_run() { # check_run CPU POLICY PHASE...
	local cpu=$1 pol=$2; shift 2
	local what="census --cpu=$cpu --bus-lock=$pol ${*:-all}"
	"$BLVM" run --cpu=$cpu --bus-lock=$pol --quiet --stats="$TMP/s.json" "$G" -- "$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$?
	[ $rc -eq 0 ] || { fail "$what: status $rc: $(grep -m3 FAIL "$TMP/out") $(head -2 "$TMP/err")"; return; }
	grep -q "census: [0-9]* checks, 0 failed" "$TMP/out" || { fail "$what: the guest's own checks failed"; return; }
	local want got
	want=$(sed -n 's/^census-expect: split=\([0-9]*\) uc=\([0-9]*\) total=\([0-9]*\)$/\1 \2 \3/p' "$TMP/out")
	[ -n "$want" ] || { fail "$what: no census-expect line"; return; }
	got=$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["bus_locks"]; print(b["split"], b["uc"], b["total"], b["unattributed"])' "$TMP/s.json")
	if [ "$got" = "$want 0" ]; then ok "$what: split uc total = $want, all attributed"; else
		fail "$what: blvm counted split/uc/total/unattributed = $got, the guest did $want"; fi
	# The one vCPU's row says the same (vcpus[]: per vCPU and per reason).
	got=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["vcpus"][0]; print(v["split"], v["uc"], v["bus_locks"], v["unattributed"])' "$TMP/s.json")
	[ "$got" = "$want 0" ] || fail "$what: vcpus[0] split/uc/bus_locks/unattributed = $got, the guest did $want"
}

phases="wb split uc pat mmio unlocked"
# On the binary translator (blvm's default; tests/run.sh's first run) the whole census per flavour:
# the same counts through the same locked path, in a third of the time; the phases on the interpreter
# (the +interp run).
case "${BLVM_TRANSLATE:-on}" in off) ;; *) phases="" ;; esac
for cpu in intel amd; do
	for phase in $phases; do
		check_run $cpu log $phase
	done
	check_run $cpu log
done

# contain: the same guest-visible results for every locked instruction kind (the guest checks every
# value), and the same counts, with no host bus lock taken (issue 5).
if "$BLVM" run --bus-lock=contain --quiet "$GUESTS/hello-min" >/dev/null 2>&1; then
	check_run intel contain
	check_run amd contain
else
	fail "--bus-lock=contain does not start: $("$BLVM" run --bus-lock=contain "$GUESTS/hello-min" 2>&1 >/dev/null)"
fi

# Detection off (the default, as in KVM): no bus-lock exit at all, nothing counted.
"$BLVM" run --stats="$TMP/off.json" "$G" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] && ok "census with detection off runs (status 0)" || fail "census off: status $rc"
[ "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["exits"].get("x86_bus_lock", 0), s["bus_locks"]["total"])' "$TMP/off.json")" = "0 0" ] &&
	ok "detection off: zero bus-lock exits" || fail "detection off: $(cat "$TMP/off.json")"

# The top[] report names the instructions: every entry disassembles to a locked or XCHG instruction.
"$BLVM" run --bus-lock=log --quiet --stats="$TMP/s.json" "$G" -- split >/dev/null 2>&1
python3 - "$TMP/s.json" <<'PY' && ok "top[] names locked instructions, most frequent first" || fail "top[] contents"
import json, sys
s = json.load(open(sys.argv[1]))
top = s["top"]
assert top, "empty top"
assert all(t["insn"].startswith("lock ") or t["insn"].startswith("xchg ") for t in top), top
assert [t["count"] for t in top] == sorted((t["count"] for t in top), reverse=True)
assert all(t["reason"] == "split" for t in top)
PY
finish
