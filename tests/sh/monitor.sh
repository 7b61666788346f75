# The monitor's contracts (docs/DESIGN.md "Booting", "Command line") on every engine available:
# exit-status propagation, stdout carrying the console and nothing else, the guest command line,
# unclaimed ports and MMIO (all ones, counted), --stats JSON, --timeout, halt with interrupts off,
# and a console flood that loses nothing.
. "$(dirname "$0")/../lib.sh"
engines="emu"
if kvm_usable; then engines="emu kvm"; else echo "note: /dev/kvm not usable here: kvm engine checks skipped"; fi
command -v python3 >/dev/null || skip "python3 is needed to check the --stats JSON"

json() { # json FILE EXPR: evaluates a Python expression over the parsed file as `s`
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

for e in $engines; do
	expect_status 42 "$e: exit42 propagates status 42" -- "$BLVM" run --engine=$e "$GUESTS/exit42"
	[ "$(cat "$TMP/out")" = "exiting with 42" ] && ok "$e: stdout is exactly the console" || fail "$e: stdout: $(cat "$TMP/out")"
	[ -s "$TMP/err" ] && fail "$e: a normal exit printed on stderr: $(head -1 "$TMP/err")" || ok "$e: stderr empty on a normal exit"

	expect_status 0 "$e: hello with a command line" -- "$BLVM" run --engine=$e "$GUESTS/hello" -- one "two three"
	grep -qx 'cmdline: "one two three"' "$TMP/out" && ok "$e: command line reaches the guest" || fail "$e: cmdline: $(grep cmdline "$TMP/out")"
	grep -qx '  0x100000 0x7f00000 type 1' "$TMP/out" && ok "$e: memory map ends at --mem (128M)" || fail "$e: memory map"
	expect_status 0 "$e: hello with --mem=64M" -- "$BLVM" run --engine=$e --mem=64M "$GUESTS/hello"
	grep -qx '  0x100000 0x3f00000 type 1' "$TMP/out" && ok "$e: memory map follows --mem=64M" || fail "$e: memory map with 64M"

	expect_status 0 "$e: unclaimed ports and MMIO" -- "$BLVM" run --engine=$e --stats="$TMP/u.json" "$GUESTS/unclaimed"
	grep -qx "unclaimed: ok" "$TMP/out" && ok "$e: unclaimed reads return all ones" || fail "$e: $(cat "$TMP/out")"
	[ "$(json "$TMP/u.json" 's["unclaimed"]')" = "{'port_reads': 3, 'port_writes': 3, 'mmio_reads': 3, 'mmio_writes': 2}" ] &&
		ok "$e: unclaimed accesses counted exactly" || fail "$e: unclaimed counts $(json "$TMP/u.json" 's["unclaimed"]')"
	[ "$(json "$TMP/u.json" 's["engine"], s["exit_code"], s["end"], len(s["vcpus"]), s["vcpus"][0]["id"]')" = "('$e', 0, 'guest_exit', 1, 0)" ] &&
		ok "$e: --stats engine, exit_code, end, vcpus" || fail "$e: --stats fields: $(cat "$TMP/u.json")"
	[ "$(json "$TMP/u.json" 's["exits"]["io"] == s["vcpus"][0]["exits"] - s["exits"].get("mmio", 0) and s["exits"]["mmio"] == 5')" = True ] &&
		ok "$e: --stats exits by reason add up" || fail "$e: exits: $(json "$TMP/u.json" 's["exits"], s["vcpus"]')"
	if [ $e = emu ]; then
		[ "$(json "$TMP/u.json" 'type(s["instructions"]) is int and s["instructions"] > 1000')" = True ] &&
			ok "emu: --stats counts instructions" || fail "emu: instructions: $(json "$TMP/u.json" 's["instructions"]')"
	fi

	expect_status 124 "$e: --timeout ends a spinning guest" -- "$BLVM" run --engine=$e --timeout=0.5 --stats="$TMP/t.json" "$GUESTS/spin"
	expect_stderr "^blvm: timeout: the guest ran for 0.5 s" "$e: --timeout"
	[ "$(cat "$TMP/out")" = "spinning" ] && ok "$e: output before the timeout kept" || fail "$e: spin output"
	[ "$(json "$TMP/t.json" 's["end"], s["exit_code"]')" = "('timeout', 124)" ] && ok "$e: --stats after a timeout" || fail "$e: timeout stats"

	expect_status 125 "$e: halt with interrupts off ends the VM" -- "$BLVM" run --engine=$e "$GUESTS/halt"
	expect_stderr "^blvm: vCPU 0 halted with interrupts disabled at rip 0x[0-9a-f]+" "$e: halt"

	n=20000; [ $e = kvm ] && n=100   # kvm here runs ~3000 port exits/s: keep it small
	"$BLVM" run --engine=$e "$GUESTS/flood" -- $n >"$TMP/flood" 2>"$TMP/err"
	rc=$?
	lines=$(grep -c '^line [0-9]* of [0-9]*: abcdefghijklmnopqrstuvwxyz0123456789$' "$TMP/flood")
	[ $rc -eq 0 ] && [ "$lines" -eq $n ] && [ "$(tail -c 19 "$TMP/flood")" = "end without newline" ] &&
		ok "$e: console flood of $n lines, nothing lost" || fail "$e: flood: status $rc, $lines of $n lines, tail '$(tail -c 19 "$TMP/flood")'"
	python3 - "$TMP/flood" $n <<'PY' && ok "$e: flood lines in order" || fail "$e: flood lines out of order"
import sys
n = int(sys.argv[2])
lines = open(sys.argv[1]).read().split('\n')
assert all(lines[i] == f"line {i} of {n}: abcdefghijklmnopqrstuvwxyz0123456789" for i in range(n))
PY
done
finish
