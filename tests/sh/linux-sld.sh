#!/bin/bash
# The guest kernel's own split_lock_detect= (issue 13), acting on its own process through blvm's
# bus-lock #DB (--cpu=intel: CPUID.(7,0):ECX[24], IA32_DEBUGCTL.BLD, DR6.BLD; the emu engine,
# tests/unit/buslock_guest_db.c) while blvm counts the same bus locks (--bus-lock=log): two boots
# of Debian's stock 6.1 kernel with scripts/linux-inputs.sh's initrd-sld.cpio, whose init runs one
# static program (tests/linux/splitlock.c as splitlock-a, "timed") and prints its exit status.
# What Linux 6.1 does (arch/x86/kernel/cpu/intel.c, handle_bus_lock, called from exc_debug_user
# when DR6.BLD says so):
#   fatal         force_sig_fault(SIGBUS, BUS_ADRALN): the program dies at its first split lock, a
#                 trap after the instruction, so blvm has counted exactly 1 for it; sh says 128+7.
#   ratelimit:10  while (!__ratelimit(&bld_ratelimit)) msleep(20), bld_ratelimit being 10 per HZ:
#                 the program's rate in guest time (CLOCK_MONOTONIC, its own measure) is about
#                 10/s (checked as 5..15/s: a guest-time rate, not blvm's wall time), and blvm
#                 counts every one of its locks, as the program does.
# split_lock_detect=warn (the default) is checked by tests/sh/linux-buslock.sh (the guest's
# "#DB: comm/pid took a bus_lock trap" lines against the pids the programs print).
# --kernel-symbols (the kernel's real System.map, from Debian's -dbg package: linux-inputs.sh
# --system-map) on the ratelimit boot: the bzImage's decompressor randomises the kernel's address
# (KASLR), and the offset blvm learns from IA32_LSTAR at the first bus lock must equal the guest's
# own view (the init prints entry_SYSCALL_64's line of /proc/kallsyms, as root) minus the map's.
# No stock program takes a kernel-mode split lock: the naming of kernel RIPs under that offset is
# unit/symbols_map's (a synthetic map and LSTAR). Then the map's errors: one line, status 2.
set -u
. "$TOP/tests/lib.sh"
cd "$TOP"
# Under the sanitizers: what this test adds is the guest kernel's own behaviour; blvm's code on its
# path (the System.map parser and KASLR offset, the attribution) runs under them in unit/symbols_map
# and sh/linux-buslock, so the two ~15 s boots (~1 min each there) are left to the plain build.
[ -n "${SAN:-}" ] && skip "sanitizer build: the guest's split_lock_detect boots run in the plain build only"
LX=$(scripts/linux-inputs.sh 2>/dev/null) || skip "the Debian kernel or the split_lock_detect initramfs cannot be made here"
MAP=()
if scripts/linux-inputs.sh --system-map >/dev/null 2>"$TMP/map-err"; then MAP=(--kernel-symbols="$LX/System.map"); else
	echo "SKIP (part): no System.map: $(cat "$TMP/map-err")"; fi
N=21 # locks of the ratelimit run: 10 at once, 10 a second later, the last one a second after that
# sld MODE: one boot with split_lock_detect=MODE; the console in $TMP/MODE.out, --stats in $TMP/MODE.json.
sld() {
	local start=$SECONDS
	timeout 300 "$BLVM" run --engine=emu --cpu=intel --mem=256M --timeout=120 --bus-lock=log --stats="$TMP/$1.json" \
		${3:+"$3"} --initrd="$LX/initrd-sld.cpio" "$LX/vmlinuz" -- console=ttyS0 panic=-1 split_lock_detect=$1 SPLITA=$2 \
		> "$TMP/$1.out" 2> "$TMP/$1.err" < /dev/null
	local status=$?
	echo "split_lock_detect=$1: status $status in $((SECONDS - start)) s"
	if [ $status -ne 0 ] || ! grep -q "guest powered off" "$TMP/$1.err"; then
		fail "split_lock_detect=$1: status $status (expected 0 after the guest's poweroff)"
		tail -5 "$TMP/$1.err"; tail -5 "$TMP/$1.out"
	fi
}
sld fatal 1000
sld ratelimit:10 $N "${MAP[@]}"
python3 - "$TMP" $N <<'PY' && ok "fatal: SIGBUS at the first split lock, blvm counted 1; ratelimit:10: about 10/s in guest time, blvm counted all" || fail "split_lock_detect (above)"
import json, re, sys
tmp, n = sys.argv[1], int(sys.argv[2])
bad = 0
def check(cond, what):
    global bad
    if not cond:
        print("  wrong:", what)
        bad += 1
def load(mode):
    console = open("%s/%s.out" % (tmp, mode), "rb").read().decode("latin-1").replace("\r", "")
    try:
        d = json.load(open("%s/%s.json" % (tmp, mode)))
    except (OSError, ValueError) as e:
        d = {"tasks": []}
        check(False, "%s: no --stats: %s" % (mode, e))
    return console, [t for t in d["tasks"] if t["comm"] == "splitlock-a"]

# fatal: intel.c's sld_state_show() line, then the program killed by SIGBUS (signal 7: sh's 128+7).
console, t = load("fatal")
check("x86/split lock detection: #DB: sending SIGBUS on user-space bus_locks" in console,
      "fatal: the kernel did not say it sends SIGBUS on user-space bus_locks")
check(re.search(r"^splitlock-a: exit status 135$", console, re.M),
      "fatal: the program's exit status is not 135 (SIGBUS): %s" % re.findall(r"exit status \d+", console))
check("split locks, counter" not in console, "fatal: the program lived to print its count")
check(len(t) == 1 and t[0]["bus_locks"] == 1 and t[0]["split"] == 1,
      "fatal: blvm's tasks[] for splitlock-a is not exactly 1 split lock: %s" % t)
print("  fatal: %s; blvm: %s" % (re.findall(r"splitlock-a: exit status \d+", console), t))

# ratelimit:10: sld_state_show()'s line, the program's own count and rate, blvm's count.
console, t = load("ratelimit:10")
check("#DB: setting system wide bus lock rate limit to 10/sec" in console,
      "ratelimit:10: the kernel did not set the rate limit to 10/sec")
m = re.search(r"^splitlock-a: pid (\d+) tgid \d+: (\d+) split locks, counter (\d+)$", console, re.M)
check(m and int(m.group(2)) == n and int(m.group(3)) == n, "ratelimit:10: the program's count line: %s" % (m and m.group(0)))
r = re.search(r"^splitlock-a: (\d+) split locks in ([0-9.]+) s of guest time: ([0-9.]+)/s$", console, re.M)
check(r and int(r.group(1)) == n - 1 and 5 <= float(r.group(3)) <= 15,
      "ratelimit:10: the program's rate is not 5..15/s: %s" % (r and r.group(0)))
check(re.search(r"^splitlock-a: exit status 0$", console, re.M), "ratelimit:10: the program did not exit 0")
check(len(t) == 1 and t[0]["bus_locks"] == n and t[0]["split"] == n and (not m or t[0]["pid"] == int(m.group(1))),
      "ratelimit:10: blvm's tasks[] for splitlock-a is not %d split locks: %s" % (n, t))
# handle_bus_lock warns after the wait (pr_warn_ratelimited): the kernel names the same task.
for pid in re.findall(r"#DB: splitlock-a/(\d+) took a bus_lock trap", console):
    check(m and int(pid) == int(m.group(1)), "ratelimit:10: the kernel's #DB line names pid %s" % pid)
print("  ratelimit:10: %s; blvm: %s" % (r and r.group(0), t))
sys.exit(1 if bad else 0)
PY

if [ ${#MAP[@]} -gt 0 ]; then
	guest=$(grep -a -o "^kallsyms: [0-9a-f]* T entry_SYSCALL_64" "$TMP/ratelimit:10.out" | cut -d' ' -f2)
	link=$(grep " T entry_SYSCALL_64$" "$LX/System.map" | cut -d' ' -f1)
	line=$(grep -E "^blvm: --kernel-symbols: KASLR offset 0x[0-9a-f]+ " "$TMP/ratelimit:10.err")
	blvm=$(echo "$line" | sed -E 's/.*KASLR offset (0x[0-9a-f]+) .*/\1/')
	if [ -n "$guest" ] && [ -n "$link" ] && [ -n "$blvm" ] && [ $((0x$guest - 0x$link)) -eq $((blvm)) ]; then
		ok "KASLR: blvm's offset $blvm = the guest's entry_SYSCALL_64 0x$guest - the System.map's 0x$link"
	else
		fail "KASLR: blvm says '$line'; the guest's /proc/kallsyms 0x$guest, the System.map's 0x$link"
	fi
	# The program's user-mode RIPs lie below the relocated kernel: the map names none of them.
	python3 -c 'import json,sys; t=[e for e in json.load(open(sys.argv[1]))["top"] if e["mode"] == "user"]
assert t and all(e["symbol"] is None for e in t), t' "$TMP/ratelimit:10.json" &&
		ok "KASLR: user-mode rows are not named after kernel functions" || fail "user-mode rows got a kernel name"
fi
printf 'ffffffff81000000 T _stext\nthis is not a System.map line\n' > "$TMP/bad.map"
expect_status 2 "a malformed --kernel-symbols" -- "$BLVM" run --bus-lock=log --kernel-symbols="$TMP/bad.map" "$GUESTS/buslock-storm"
expect_stderr "^blvm: --kernel-symbols=.*bad.map: line 2 is not \"ADDRESS TYPE NAME\"" "a malformed --kernel-symbols"
printf 'ffffffff81000000 T _stext\n' > "$TMP/other.map"
expect_status 2 "a --kernel-symbols without entry_SYSCALL_64" -- "$BLVM" run --kernel-symbols="$TMP/other.map" "$GUESTS/buslock-storm"
expect_stderr "no entry_SYSCALL_64" "a --kernel-symbols without entry_SYSCALL_64"
expect_status 2 "an unreadable --kernel-symbols" -- "$BLVM" run --kernel-symbols="$TMP/none" "$GUESTS/buslock-storm"
expect_stderr "cannot open --kernel-symbols" "an unreadable --kernel-symbols"
finish
