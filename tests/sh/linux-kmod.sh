#!/bin/bash
# A kernel-mode bus lock of a Linux guest, named end to end (issue 13): the kernel function from
# the System.map under KASLR, the task, the mode, the exact count. No stock program makes the
# kernel split-lock, so scripts/linux-inputs.sh --kmod builds a module against Debian's headers of
# exactly the cached kernel (tests/linux/kmod/splitlock_kmod.c): its init calls the kernel's
# out-of-line _raw_spin_lock N times on a spinlock placed across a 64-byte line. One boot of
# Debian's bzImage (the decompressor randomises where the kernel runs) with the kernel's real
# System.map (--kernel-symbols; linux-inputs.sh --system-map) and --bus-lock=log; the init runs
# insmod and prints its pid and status.
# Oracles: the module's own line (N pairs, the lock at byte 62 of a line, and where the kernel put
# _raw_spin_lock: the guest's own view of the KASLR offset), insmod's pid as the shell saw it,
# the System.map (a global text symbol) and objdump's disassembly of the unrelocated vmlinux at
# the reported RIP (LOCK CMPXCHG on the function's first argument, %rdi in the SysV ABI).
# noreplace-smp: with one CPU Linux patches the LOCK prefixes of its own code out
# (arch/x86/kernel/alternative.c, alternatives_smp_unlock), so without it _raw_spin_lock takes no
# bus lock at all; the parameter keeps them, as a second CPU would (cheaper than booting one).
# A second boot runs the kvm engine over the fake-kernel shim's software kernel (below).
set -u
. "$TOP/tests/lib.sh"
cd "$TOP"
# Under the sanitizers: blvm's code on this path (the System.map parser, the KASLR offset, kernel-
# and user-mode attribution) runs under them in unit/symbols_map, unit/introspect_linux and
# sh/linux-buslock; this test adds the guest's kernel-mode lock, left to the plain build (~10 s
# there, ~1 min under ASan).
[ -n "${SAN:-}" ] && skip "sanitizer build: the kernel-module boot runs in the plain build only"
LX=$(scripts/linux-inputs.sh --kmod --system-map 2>"$TMP/inputs-err") ||
	skip "the kernel module or the System.map cannot be made here: $(tail -1 "$TMP/inputs-err")"
command -v objdump >/dev/null || skip "no objdump (binutils)"
N=1234
start=$SECONDS
timeout 300 "$BLVM" run --engine=emu --mem=256M --timeout=120 --bus-lock=log --stats="$TMP/s.json" \
	--kernel-symbols="$LX/System.map" --initrd="$LX/initrd-kmod.cpio" "$LX/vmlinuz" -- \
	console=ttyS0 panic=-1 noreplace-smp KMODN=$N > "$TMP/out" 2> "$TMP/err" < /dev/null
status=$?
echo "Linux boot with insmod splitlock_kmod.ko n=$N: status $status in $((SECONDS - start)) s"
if [ $status -ne 0 ] || ! grep -q "guest powered off" "$TMP/err"; then
	fail "status $status (expected 0 after the guest's poweroff)"; tail -5 "$TMP/err"; tail -5 "$TMP/out"
fi
python3 - "$TMP/s.json" "$TMP/out" "$TMP/err" "$LX" $N <<'PY' && ok "insmod's $N kernel-mode split locks are named _raw_spin_lock+OFFSET under KASLR, with its pid, exactly" || fail "kernel-mode attribution (above)"
import json, re, subprocess, sys
stats, out, err, lx, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
d = json.load(open(stats))
console = open(out, "rb").read().decode("latin-1").replace("\r", "")
stderr = open(err).read()
bad = 0
def check(cond, what):
    global bad
    if not cond:
        print("  wrong:", what)
        bad += 1
m = re.search(r"splitlock_kmod: (\d+) spin_lock/spin_unlock pairs on a 4-byte lock at byte (\d+) of a 64-byte line; "
              r"_raw_spin_lock is at ([0-9a-f]{16})$", console, re.M)
p = re.search(r"^insmod: pid (\d+), exit status (\d+)$", console, re.M)
check(m and int(m.group(1)) == n and int(m.group(2)) == 62, "the module's line: %s" % (m and m.group(0)))
check(p and int(p.group(2)) == 0, "insmod's line: %s" % (p and p.group(0)))
if not (m and p):
    sys.exit(1)
guest, pid = int(m.group(3), 16), int(p.group(1))
syms = {}
for line in open(lx + "/System.map"):
    a, t, name = line.split()
    syms.setdefault(name, (int(a, 16), t))
link, kind = syms["_raw_spin_lock"]
check(kind == "T", "_raw_spin_lock is not a global text symbol in the System.map: %s" % kind)
offset = guest - link

# Only the module's locks, all in insmod, all at one kernel RIP inside _raw_spin_lock.
check(d["bus_locks"]["total"] == n and d["bus_locks"]["split"] == n, "bus_locks: %s" % d["bus_locks"])
check(d["tasks"] == [{"comm": "insmod", "pid": pid, "tgid": pid, "bus_locks": n, "split": n, "uc": 0}],
      "tasks[] (insmod is pid %d): %s" % (pid, d["tasks"]))
check(len(d["top"]) == 1, "top[] has %d rows, want 1" % len(d["top"]))
row = d["top"][0]
rip = int(row["rip"], 16)
check(row["count"] == n and row["reason"] == "split" and row["size"] == 4 and row["mode"] == "kernel"
      and row["task"] == {"comm": "insmod", "pid": pid, "tgid": pid}, "top[0]: %s" % row)
check(0 <= rip - guest < 0x40 and row["symbol"] == "_raw_spin_lock+0x%x" % (rip - guest),
      "top[0] at 0x%x is named %s; _raw_spin_lock is at 0x%x in the guest" % (rip, row["symbol"], guest))
check(row["insn"] == "lock cmpxchg dword ptr [rdi], edx", "top[0]'s instruction: %s" % row["insn"])
# The instruction at that RIP in the unrelocated kernel, disassembled by binutils.
at = link + (rip - guest)
dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "--start-address=0x%x" % at,
                      "--stop-address=0x%x" % (at + 15), lx + "/vmlinux"], capture_output=True, text=True).stdout
check(re.search(r"^ *%x:\s+lock cmpxchg %%edx,\(%%rdi\)$" % at, dis, re.M),
      "objdump at 0x%x (the System.map's _raw_spin_lock+0x%x) is not lock cmpxchg on (%%rdi): %s" %
      (at, rip - guest, dis.strip().splitlines()[-1:]))
# blvm's KASLR offset (IA32_LSTAR - entry_SYSCALL_64) is the guest's own.
k = re.search(r"^blvm: --kernel-symbols: KASLR offset (0x[0-9a-f]+) ", stderr, re.M)
check(k and int(k.group(1), 16) == offset,
      "blvm's KASLR offset %s, the guest's 0x%x (_raw_spin_lock 0x%x - the map's 0x%x)" %
      (k and k.group(1), offset, guest, link))
check(re.search(r"^blvm: by guest process: insmod/%d: %d$" % (pid, n), stderr, re.M), "the summary's process line")
check(re.search(r"^blvm: +%d +0x%x +split +4 +lock cmpxchg .*<_raw_spin_lock\+0x%x> +\[insmod/%d kernel\]$" %
                (n, rip, rip - guest, pid), stderr, re.M), "the summary's top instruction line")
print("  insmod/%d: %d split locks at 0x%x = %s, KASLR offset 0x%x (the guest's %x - the map's %x)" %
      (pid, row["count"], rip, row["symbol"], offset, guest, link))
sys.exit(1 if bad else 0)
PY

# The same boot on the kvm engine, over the fake-kernel shim's software kernel (tests/shim: blvm's emu
# engine behind the KVM ioctls, so KVM_CAP_X86_BUS_LOCK_EXIT reports these split locks as exits 33):
# the monitor's kvm path attributes each exit through KVM_GET_SREGS/KVM_GET_MSRS and guest memory,
# learns the KASLR offset from IA32_LSTAR the same way, and counts exactly N for insmod. KVM's exit
# names no instruction and no split/UC reason: N unattributed bus locks. Its RIP is the next
# instruction's on an Intel host (api.rst; the software kernel is Intel-flavoured), so top[] has one
# row for insmod with "rip" null and "next_rip" the address after the LOCK CMPXCHG: objdump's next
# instruction in the unrelocated vmlinux plus the guest's KASLR offset, named by the System.map.
SHIM="$TOP/$BUILD/tests/kvm_buslock_shim.so"
if [ -f "$SHIM" ]; then
	start=$SECONDS
	LD_PRELOAD="$SHIM" KVM_BUSLOCK_SHIM_SOFTWARE=1 timeout 300 "$BLVM" run --engine=kvm --mem=256M --timeout=120 \
		--bus-lock=log --stats="$TMP/k.json" --kernel-symbols="$LX/System.map" --initrd="$LX/initrd-kmod.cpio" \
		"$LX/vmlinuz" -- console=ttyS0 panic=-1 noreplace-smp KMODN=$N > "$TMP/kout" 2> "$TMP/kerr" < /dev/null
	status=$?
	echo "the same on the kvm engine (shim's software kernel): status $status in $((SECONDS - start)) s"
	python3 - "$TMP/k.json" "$TMP/kout" "$TMP/kerr" "$LX" $N $status <<'PY' && ok "kvm engine: insmod's $N kernel-mode bus locks (exits 33) counted for it exactly, KASLR offset the guest's" || fail "kvm engine (above)"
import json, re, subprocess, sys
stats, out, err, lx, n, status = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
console = open(out, "rb").read().decode("latin-1").replace("\r", "")
stderr = open(err).read()
bad = 0
def check(cond, what):
    global bad
    if not cond:
        print("  wrong:", what)
        bad += 1
check(status == 0 and "guest powered off" in stderr, "status %d, want 0 after the guest's poweroff" % status)
try:
    d = json.load(open(stats))
except (OSError, ValueError) as e:
    print("  wrong: no --stats:", e)
    sys.exit(1)
m = re.search(r"_raw_spin_lock is at ([0-9a-f]{16})$", console, re.M)
p = re.search(r"^insmod: pid (\d+), exit status 0$", console, re.M)
check(m and p, "the module's or insmod's line is missing")
if not (m and p):
    sys.exit(1)
pid = int(p.group(1))
link = next(int(l.split()[0], 16) for l in open(lx + "/System.map") if l.split()[2:] == ["_raw_spin_lock"])
check(d["engine"] == "kvm", "engine %s" % d["engine"])
check(d["bus_locks"]["total"] == n and d["bus_locks"]["unattributed"] == n and d["exits"].get("x86_bus_lock") == n,
      "bus_locks %s, exits %s: want %d, all unattributed, %d exits 33" % (d["bus_locks"], d["exits"], n, n))
check(d["tasks"] == [{"comm": "insmod", "pid": pid, "tgid": pid, "bus_locks": n, "split": 0, "uc": 0}],
      "tasks[] (insmod is pid %d): %s" % (pid, d["tasks"]))
k = re.search(r"^blvm: --kernel-symbols: KASLR offset (0x[0-9a-f]+) ", stderr, re.M)
# objdump's listing of _raw_spin_lock: the instruction after its LOCK CMPXCHG on (%rdi).
dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "--start-address=0x%x" % link,
                      "--stop-address=0x%x" % (link + 0x40), lx + "/vmlinux"], capture_output=True, text=True).stdout
ins = [int(a, 16) for a, t in re.findall(r"^ *([0-9a-f]+):\s+(.*)$", dis, re.M)]
lk = [int(a, 16) for a in re.findall(r"^ *([0-9a-f]+):\s+lock cmpxchg %edx,\(%rdi\)$", dis, re.M)]
after = ins[ins.index(lk[0]) + 1] if len(lk) == 1 and ins.index(lk[0]) + 1 < len(ins) else None
check(after is not None, "objdump: one lock cmpxchg in _raw_spin_lock, followed by an instruction: %s" % dis[-300:])
off = int(m.group(1), 16) - link
row = d["top"][0] if len(d["top"]) == 1 else {}
check(after is not None and len(d["top"]) == 1 and row["rip"] is None and row["next_rip"] == "0x%x" % (after + off)
      and row["count"] == n and row["insn"] is None and row["size"] is None and row["reason"] == "unknown"
      and row["next_symbol"] == "_raw_spin_lock+0x%x" % (after - link) and row["mode"] == "kernel"
      and row["task"] == {"comm": "insmod", "pid": pid, "tgid": pid},
      "top[] on kvm: want one row, next_rip 0x%x (_raw_spin_lock+0x%x), %d, insmod: %s" %
      ((after or 0) + off, (after or link) - link, n, d["top"]))
check(k and int(k.group(1), 16) == int(m.group(1), 16) - link, "blvm's KASLR offset %s, the guest's 0x%x" %
      (k and k.group(1), int(m.group(1), 16) - link))
check(re.search(r"^blvm: by guest process: insmod/%d: %d$" % (pid, n), stderr, re.M), "the summary's process line")
print("  kvm: insmod/%d: %s" % (pid, d["tasks"]), "exits 33:", d["exits"].get("x86_bus_lock"), "top[]:", d["top"])
sys.exit(1 if bad else 0)
PY
else
	echo "note: the shim $SHIM is not built: the kvm-engine boot is skipped"
fi
finish
