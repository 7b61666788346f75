# The same guest prints the same bytes and ends with the same status under blvm's emu engine,
# its kvm engine and QEMU TCG (the peer). QEMU's status is (V << 1) | 1 for V written to 0xf4.
# sse: x87, MMX and SSE..SSE4.2 code built with default compiler flags (issue 11).
. "$(dirname "$0")/../lib.sh"
guests="hello-min arith exit42 exc-ud exc-pf exc-handled sse"
have_qemu=1; command -v qemu-system-x86_64 >/dev/null || { have_qemu=0; echo "note: qemu-system-x86_64 missing, QEMU comparisons skipped"; }
have_kvm=1; kvm_usable || { have_kvm=0; echo "note: /dev/kvm not usable here, kvm engine comparisons skipped"; }

for g in $guests; do
	G="$GUESTS/$g"
	[ -f "$G" ] || { fail "guest $g not built"; continue; }
	timeout 120 "$BLVM" run --engine=emu "$G" -- hello world >"$TMP/$g.emu" 2>"$TMP/$g.emu.err"
	emu_rc=$?
	[ -s "$TMP/$g.emu" ] || fail "$g printed nothing under emu"
	if [ $have_qemu = 1 ]; then
		qemu_run "$G" -append "hello world" >"$TMP/$g.qemu" 2>"$TMP/$g.qemu.err"
		q_rc=$?
		# QEMU's serial output can carry CRs on some hosts; compare bytes as printed.
		if cmp -s "$TMP/$g.emu" "$TMP/$g.qemu"; then ok "$g: emu and QEMU print the same bytes"; else
			fail "$g: emu and QEMU differ"; diff "$TMP/$g.emu" "$TMP/$g.qemu" | head -10; fi
		[ "$emu_rc" -eq "$q_rc" ] && ok "$g: emu and QEMU end with status $emu_rc" ||
			fail "$g: emu status $emu_rc, QEMU $q_rc"
	fi
	if [ $have_kvm = 1 ]; then
		timeout 300 "$BLVM" run --engine=kvm "$G" -- hello world >"$TMP/$g.kvm" 2>"$TMP/$g.kvm.err"
		kvm_rc=$?
		if cmp -s "$TMP/$g.emu" "$TMP/$g.kvm"; then ok "$g: emu and kvm print the same bytes"; else
			fail "$g: emu and kvm differ"; diff "$TMP/$g.emu" "$TMP/$g.kvm" | head -10; sed 's/^/  kvm stderr: /' "$TMP/$g.kvm.err" | head -3; fi
		[ "$emu_rc" -eq "$kvm_rc" ] && ok "$g: emu and kvm end with status $emu_rc" ||
			fail "$g: emu status $emu_rc, kvm $kvm_rc"
	fi
done
# The guests' own verdicts: arith checks itself, exit42 propagates its status.
grep -q " 0 failed" "$TMP/arith.emu" && ok "arith: no failed check under emu" || fail "arith under emu: $(tail -n1 "$TMP/arith.emu")"
[ -f "$TMP/exit42.emu" ] && grep -q "exiting with 42" "$TMP/exit42.emu" && ok "exit42 printed" || fail "exit42 output"
grep -q "exception 6 (#UD)" "$TMP/exc-ud.emu" && ok "exc-ud reported #UD" || fail "exc-ud output"
grep -q "exception 14 (#PF) .*cr2=0x5000000000" "$TMP/exc-pf.emu" && ok "exc-pf reported #PF with CR2" || fail "exc-pf output"
grep -q "^sse: checksum" "$TMP/sse.emu" && ok "sse (x87/MMX/SSE..SSE4.2 code built with default flags) ran to its end" || fail "sse output: $(tail -n1 "$TMP/sse.emu")"
finish
