# An exception whose IDT gate is not in RAM is not dropped: with IDTR in the MMIO hole (guests/idt-mmio.c)
# every gate reads as all ones (no gate), so int3 and ud2 each end in #GP -> #DF -> triple fault, as on
# hardware: status 125, end "shutdown", exactly three gate reads of two 8-byte MMIO pieces each, within
# --timeout. Oracles: QEMU TCG shuts down the same way (no "survived" line, no exit-port status), and
# the kvm engine (real hardware) where /dev/kvm works. The error names the instruction and the chain of
# exceptions (the issue): on the emu engine "int3; #BP -> #GP -> #DF -> #GP -> shutdown", the chain
# being the one QEMU TCG's -d int log shows (each delivered vector, then the one raised delivering #DF).
. "$(dirname "$0")/../lib.sh"
G="$GUESTS/idt-mmio"
[ -f "$G" ] || { fail "guest $G not built"; finish; }
command -v python3 >/dev/null || skip "python3 is needed to check the --stats JSON"
engines="emu"; kvm_usable && engines="emu kvm"
for e in $engines; do
	for insn in int3 ud2; do
		expect_status 125 "$e: $insn with the IDT in MMIO" -- timeout 30 "$BLVM" run --engine=$e --timeout=10 --stats="$TMP/s.json" "$G" -- $insn
		expect_stderr "triple-faulted" "$e: $insn"
		if [ $e = emu ]; then
			chain=$(sed -n "s/^blvm: vCPU 0 triple-faulted (shutdown) at rip 0x[0-9a-f]* <guest_main+0x[0-9a-f]*>: $insn; \(.*\) -> shutdown; ending the VM$/\1/p" "$TMP/err")
			[ -n "$chain" ] && ok "emu: $insn: the error names the instruction and the chain: $chain" ||
				fail "emu: $insn: no instruction or chain in: $(cat "$TMP/err")"
			eval "blvm_chain_$insn=\$chain"
		fi
		grep -q survived "$TMP/out" && fail "$e: $insn was skipped: $(cat "$TMP/out")"
		r=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["end"], s["unclaimed"]["mmio_reads"])' "$TMP/s.json")
		if [ $e = emu ]; then
			[ "$r" = "shutdown 6" ] && ok "emu: $insn: shutdown after 3 gate reads (6 MMIO reads)" || fail "emu: $insn: end, mmio_reads = $r"
		else
			[ "${r%% *}" = shutdown ] && ok "kvm: $insn: shutdown" || fail "kvm: $insn: $r"
		fi
	done
done
# The kvm engine's message (here over the fake-kernel shim's software kernel): KVM_EXIT_SHUTDOWN
# carries no instruction and no chain, and the message says so instead of guessing.
SHIM="$TOP/$BUILD/tests/kvm_buslock_shim.so"
if [ -f "$SHIM" ]; then
	# Under ASan its runtime must come first in the library list, which LD_PRELOAD changes
	# (sh/kvm-buslock-shim does the same).
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	LD_PRELOAD="$SHIM" KVM_BUSLOCK_SHIM_SOFTWARE=1 "$BLVM" run --engine=kvm --timeout=10 "$G" -- ud2 >"$TMP/out" 2>"$TMP/err"
	grep -q "^blvm: vCPU 0 triple-faulted (shutdown) at rip 0x[0-9a-f]* <guest_main+0x[0-9a-f]*> (the kvm engine does not report the instruction or the exception chain); ending the VM$" "$TMP/err" &&
		ok "kvm (shim): ud2: the error names rip and symbol, and says what KVM does not give" || fail "kvm (shim): $(cat "$TMP/err")"
fi
if command -v qemu-system-x86_64 >/dev/null; then
	for insn in int3 ud2; do
		qemu_run "$G" -append "$insn" -d int -D "$TMP/q.int" >"$TMP/q.out" 2>"$TMP/q.err"; rc=$?
		# -no-reboot: a triple fault shuts QEMU down with status 0, which is not an exit-port value (255).
		[ $rc -eq 255 ] && grep -q "executing $insn" "$TMP/q.out" && ! grep -q survived "$TMP/q.out" &&
			ok "qemu tcg: $insn: shut down (triple fault), as blvm" || fail "qemu tcg: $insn: status $rc: $(cat "$TMP/q.out" "$TMP/q.err" | head -3)"
		# QEMU's chain: the vectors it delivered ("N: v=XX") and the last check_exception's new one.
		q=$(awk '/^ *[0-9]+: v=/ { sub(/.*v=/, ""); printf "%s ", substr($0, 1, 2) }
			/^check_exception old: 0x8 new/ { v = $NF; sub(/^0x/, "", v); printf "%s", (length(v) < 2 ? "0" : "") v }' "$TMP/q.int")
		want=$(for v in $q; do case $v in 03) printf '#BP';; 06) printf '#UD';; 08) printf '#DF';; 0d) printf '#GP';;
			0b) printf '#NP';; 0e) printf '#PF';; *) printf 'vector 0x%s' $v;; esac; printf ' -> '; done | sed 's/ -> $//')
		got=$(eval "echo \"\${blvm_chain_$insn:-}\"")
		[ -n "$want" ] && [ "$got" = "$want" ] && ok "qemu tcg: $insn: the same chain as blvm's ($want)" ||
			fail "qemu tcg: $insn: chain '$want' (from -d int), blvm's '$got'"
	done
else
	echo "note: qemu-system-x86_64 missing: the QEMU comparison skipped"
fi
finish
