# The PC platform's other monitor devices on a guest (src/dev): poweroff through PM1a_CNT and reboot
# through the reset register and the i8042 end the VM with status 0 and their line on stderr; a guest
# reads the ACPI tables, fw_cfg and the RTC. The same guests under QEMU, the peer, behave the same
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

	# ACPI tables, fw_cfg and the RTC as the guest reads them.
	expect_status 0 "$e: platform with 3 vCPUs" -- "$BLVM" run --engine=$e --vcpus=3 "$GUESTS/platform"
	for l in "acpi: RSDP at 0xe0000 rev 2 checksum ok extended ok" "madt: 3 processors, 1 I/O APIC at 0xfec00000" \
		 "fadt: sci 9 pm1a_evt 0x600 pm1a_cnt 0x604 pm_tmr 0x608 flags 0x435 boot_arch 0x7" \
		 "fadt: reset_reg space 1 0xcf9 value 0x6" "dsdt: _S5 SLP_TYPa 0" "madt: override irq 9 -> gsi 9 flags 0xd" \
		 "fw_cfg: signature QEMU, 3 cpus, ram 128 MiB" "rtc: register d 0x80, above 16M 1792 x 64K" "platform: ok"; do
		grep -qxF "$l" "$TMP/out" && ok "$e: $l" || fail "$e: no line '$l' in: $(cat "$TMP/out")"
	done
	d1=$(date -u +%Y-%m-%d)
	grep -q "^rtc: binary $d1 " "$TMP/out" && grep -qx "rtc: bcd $d1" "$TMP/out" && ok "$e: the RTC says today, $d1 (UTC)" ||
		{ [ "$(date -u +%Y-%m-%d)" != "$d1" ] || fail "$e: rtc: $(grep rtc "$TMP/out")"; }
done

if $have_qemu; then
	for arg in poweroff cf9 i8042; do
		qemu_run "$GUESTS/acpi-off" -append $arg </dev/null >"$TMP/q" 2>"$TMP/qerr"
		# -no-reboot: poweroff and reset both end QEMU with status 0, not through isa-debug-exit
		rc=$?
		[ $rc = 255 ] && grep -q "pm timer runs; i8042 status input buffer empty" "$TMP/q" && ! grep -q "still running" "$TMP/q" &&
			ok "qemu: acpi-off $arg ends QEMU as under blvm" || fail "qemu: acpi-off $arg: $(cat "$TMP/q" "$TMP/qerr")"
	done
	qemu_run "$GUESTS/platform" </dev/null >"$TMP/q" 2>/dev/null
	rc=$?
	[ $rc = 0 ] && grep -qx "platform: ok" "$TMP/q" && grep -qx "dsdt: _S5 SLP_TYPa 0" "$TMP/q" &&
		grep -q "^fadt: sci 9 pm1a_evt 0x600 pm1a_cnt 0x604 pm_tmr 0x608 " "$TMP/q" &&
		ok "qemu: platform reads the same PM registers, _S5 type and fw_cfg" || fail "qemu: platform: $(cat "$TMP/q")"
else
	echo "note: qemu-system-x86_64 not installed: the QEMU side skipped"
fi
finish
