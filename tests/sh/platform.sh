# The PC platform's other monitor devices on a guest (src/dev): poweroff through PM1a_CNT and reboot
# through the reset register and the i8042 end the VM with status 0 and their line on stderr. The
# same guests under QEMU, the peer, behave the same
# (with -kernel SeaBIOS runs first and puts PIIX4's PM registers at 0x600, as blvm has them).
. "$(dirname "$0")/../lib.sh"
engines="emu"
if kvm_usable; then engines="emu kvm"; else echo "note: /dev/kvm not usable here: kvm engine checks skipped"; fi
command -v python3 >/dev/null || skip "python3 is needed"
have_qemu=false
command -v qemu-system-x86_64 >/dev/null && have_qemu=true

json() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

for e in $engines; do
	# Power off and reboot: status 0, the line, the end reason in --stats.
	for how in "poweroff:guest powered off \(ACPI S5\):poweroff" "cf9:guest rebooted \(ACPI reset register\):reboot" \
		   "i8042:guest rebooted \(i8042 reset\):reboot"; do
		arg=${how%%:*}; rest=${how#*:}; line=${rest%:*}; end=${rest##*:}
		expect_status 0 "$e: $arg" -- "$BLVM" run --engine=$e --stats="$TMP/p.json" "$GUESTS/acpi-off" -- $arg
		expect_stderr "^blvm: $line\$" "$e: $arg"
		grep -q "pm timer runs; i8042 status input buffer empty" "$TMP/out" && ok "$e: PM timer runs, i8042 idle" ||
			fail "$e: $(cat "$TMP/out")"
		[ "$(json "$TMP/p.json" 's["end"], s["exit_code"]')" = "('$end', 0)" ] && ok "$e: --stats end $end" ||
			fail "$e: $arg stats $(json "$TMP/p.json" 's["end"], s["exit_code"]')"
	done

done

if $have_qemu; then
	for arg in poweroff cf9 i8042; do
		qemu_run "$GUESTS/acpi-off" -append $arg </dev/null >"$TMP/q" 2>"$TMP/qerr"
		# -no-reboot: poweroff and reset both end QEMU with status 0, not through isa-debug-exit
		rc=$?
		[ $rc = 255 ] && grep -q "pm timer runs; i8042 status input buffer empty" "$TMP/q" && ! grep -q "still running" "$TMP/q" &&
			ok "qemu: acpi-off $arg ends QEMU as under blvm" || fail "qemu: acpi-off $arg: $(cat "$TMP/q" "$TMP/qerr")"
	done
else
	echo "note: qemu-system-x86_64 not installed: the QEMU side skipped"
fi
finish
