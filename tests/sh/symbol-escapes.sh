# A kernel's symbol table is guest-controlled text: a function named ESC ] 0 ; title BEL (which sets
# a terminal's title) or holding a C1 control (0x9b, CSI) must reach stderr escaped as \xNN in every
# report that names functions: the halt and triple-fault messages (src/vmm/vm.c), the bus-lock kill
# message and the summary's top instructions (src/policy). The --stats JSON keeps the name, escaped
# as JSON does (\u001b). objcopy renames guest_main in copies of two guests.
. "$(dirname "$0")/../lib.sh"
command -v objcopy >/dev/null || skip "objcopy (binutils) missing"
command -v python3 >/dev/null || skip "python3 is needed to check the --stats JSON"
evil=$'evil\e]0;pwned\a\x9b31mname'
objcopy --redefine-sym "guest_main=$evil" "$GUESTS/halt" "$TMP/halt"
objcopy --redefine-sym "guest_main=$evil" "$GUESTS/buslock-storm" "$TMP/storm"
no_raw() { # no_raw WHAT: stderr has no byte outside printable ASCII but newlines
	if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f-\xff]' "$TMP/err"; then
		fail "$1: raw control bytes on stderr: $(cat -v "$TMP/err" | head -3)"
	else ok "$1: no raw control byte on stderr"; fi
}
want='evil\x1b]0;pwned\x07\x9b31mname'

"$BLVM" run "$TMP/halt" >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 125 ] && ok "halt: status 125" || fail "halt: status $rc"
no_raw "halt message"
grep -qF "<$want+0x" "$TMP/err" && ok "halt message names the function, escaped" || fail "halt: $(cat -v "$TMP/err")"

"$BLVM" run --bus-lock=kill=3 --stats="$TMP/s.json" "$TMP/storm" -- 10 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 123 ] && ok "storm: status 123 (kill)" || fail "storm: status $rc"
no_raw "kill message and summary"
[ "$(grep -cF "<$want+0x" "$TMP/err")" -eq 2 ] && ok "kill message and summary name the function, escaped" ||
	fail "storm: $(cat -v "$TMP/err")"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["top"][0]["symbol"].startswith(sys.argv[2]), s["top"][0]' \
	"$TMP/s.json" $'evil\e]0;pwned\a' && ok "--stats keeps the name (JSON-escaped)" || fail "stats symbol"
finish
