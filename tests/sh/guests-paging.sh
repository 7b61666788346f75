# Paging, exception and system-instruction guests (issue 3, "Paging and exception tests as guests"):
# pg-nx (NX), pg-wp (WP), pg-us (U/S from CPL 3), pg-np (not-present, demand mapping, A/D bits),
# pg-1g (a 1 GiB page), smc (self-modifying code), sys-misc (system instructions), sys-int (INT3,
# INT n, SYSCALL/SYSRET, gate DPL). Each guest checks itself (prints "ok: ..." or "FAIL ...", ends
# with "NAME: N checks, M failed", exits 0 only if M = 0).
#
# Every guest runs under QEMU TCG (the oracle for the guests' own expectations), under
# `blvm run --engine=emu` and, where /dev/kvm is usable, under `--engine=kvm`. Each run must exit 0
# and print exactly the bytes QEMU printed (without QEMU: the same bytes under emu and kvm).
#
# Host limitations of the kvm engine that are not blvm's (noted, not failed):
#   - a guest that prints "NAME: skipped (no ...)" under kvm only: the host kernel's
#     KVM_GET_SUPPORTED_CPUID lacks the feature (e.g. no Page1GB under a shadow-paging KVM). Under
#     emu the same skip is a failure: issue 3 requires the emu engine to have NX and 1 GiB pages.
#   - kvm_pvm (a PVM host, /sys/module/kvm_pvm): it runs guests deprivileged and does not
#     virtualise INT n at CPL 0 (KVM internal error, emulation), nor SYSCALL/SYSRET from non-PVM
#     guests (SYSCALL lands at LSTAR still at CPL 3; SYSRET loads CS 0x33/SS 0x2b and sets IF), so
#     sys-int is not run under kvm there.
. "$(dirname "$0")/../lib.sh"
guests="pg-nx pg-wp pg-us pg-np pg-1g smc sys-misc sys-int"
pvm_unsupported="sys-int"

have_qemu=1; command -v qemu-system-x86_64 >/dev/null || { have_qemu=0; echo "note: qemu-system-x86_64 missing, QEMU comparisons skipped"; }
have_kvm=1; kvm_usable || { have_kvm=0; echo "note: /dev/kvm not usable here, kvm engine runs skipped"; }
pvm=0; [ -d /sys/module/kvm_pvm ] && pvm=1

# verdict G ENGINE FILE RC: status 0, no FAIL line, the guest's "0 failed" summary.
verdict() {
	local g=$1 e=$2 out=$3 rc=$4
	if [ "$rc" -eq 0 ]; then ok "$g under $e: status 0"; else
		fail "$g under $e: status $rc, want 0"
		grep -E '^FAIL|^blvm-rt' "$out" | head -5 | sed 's/^/  /'
		[ -s "$out.err" ] && sed 's/^/  stderr: /' "$out.err" | head -3
	fi
	if grep -q '^FAIL' "$out"; then fail "$g under $e: the guest reports failed checks"; fi
	if grep -q "^$g: skipped" "$out" || grep -Eq "^$g: [1-9][0-9]* checks, 0 failed\$" "$out"; then
		ok "$g under $e: the guest's own verdict"
	else
		fail "$g under $e: no \"$g: N checks, 0 failed\" line (last line: $(tail -n1 "$out"))"
	fi
}

# same G A B FILE_A FILE_B: the two outputs are the same bytes.
same() {
	if cmp -s "$4" "$5"; then ok "$1: $2 and $3 print the same bytes"; else
		fail "$1: $2 and $3 differ (< $2, > $3)"; diff "$4" "$5" | head -10 | sed 's/^/  /'; fi
}

for g in $guests; do
	G="$GUESTS/$g"
	[ -f "$G" ] || { fail "guest $g not built"; continue; }
	ref=""

	if [ $have_qemu = 1 ]; then
		qemu_run "$G" </dev/null >"$TMP/$g.qemu" 2>"$TMP/$g.qemu.err"
		rc=$?
		verdict "$g" QEMU "$TMP/$g.qemu" $rc
		ref="$TMP/$g.qemu"
	fi

	timeout 120 "$BLVM" run --engine=emu "$G" </dev/null >"$TMP/$g.emu" 2>"$TMP/$g.emu.err"
	rc=$?
	verdict "$g" emu "$TMP/$g.emu" $rc
	if grep -q "^$g: skipped" "$TMP/$g.emu"; then
		fail "$g under emu: skipped, but the emu engine must model this feature (issue 3)"; fi
	if [ -n "$ref" ]; then same "$g" emu QEMU "$TMP/$g.emu" "$ref"; else ref="$TMP/$g.emu"; fi

	if [ $have_kvm = 1 ]; then
		if [ $pvm = 1 ] && [[ " $pvm_unsupported " == *" $g "* ]]; then
			echo "note: $g not run under kvm: this host's kvm_pvm does not virtualise INT n / SYSCALL / SYSRET for it"
			continue
		fi
		# kvm runs stay small: every guest here is a few thousand instructions plus its console.
		timeout 300 "$BLVM" run --engine=kvm "$G" </dev/null >"$TMP/$g.kvm" 2>"$TMP/$g.kvm.err"
		rc=$?
		if grep -q "^$g: skipped" "$TMP/$g.kvm" && ! grep -q "^$g: skipped" "$ref"; then
			echo "note: $g skipped itself under kvm: $(grep "^$g: skipped" "$TMP/$g.kvm") (the host KVM's CPUID)"
			[ "$rc" -eq 0 ] && ok "$g under kvm: status 0" || fail "$g under kvm: status $rc, want 0"
			continue
		fi
		verdict "$g" kvm "$TMP/$g.kvm" $rc
		same "$g" kvm "$( [ "$ref" = "$TMP/$g.qemu" ] && echo QEMU || echo emu)" "$TMP/$g.kvm" "$ref"
	fi
done
finish
