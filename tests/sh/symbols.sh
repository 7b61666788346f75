# Reports name the offending instruction's function from the kernel's own symbol table
# (src/vmm/symbols.c), checked against binutils' nm; a kernel whose symbol table is stripped or
# broken still boots (as under QEMU) with bare addresses and, when broken, one line saying why;
# and random corruption of the ELF headers and the symbol table never crashes blvm (status 0 or 2).
. "$(dirname "$0")/../lib.sh"
G="$GUESTS/buslock-storm"
[ -f "$G" ] || { fail "guest $G not built"; finish; }
command -v nm >/dev/null || skip "nm (binutils) missing"

# nm_name FILE RIP...: for each RIP, a line with the function+offset nm's table gives: the nearest code
# symbol at or below it, within its size when it has one ("" when none covers RIP). One nm and one
# Python for all RIPs (each costs ~1 s on a loaded machine).
nm_name() {
	local f=$1; shift
	nm -S --defined-only "$f" | python3 -c '
import sys
syms = []
for line in sys.stdin:
    f = line.split()
    if len(f) == 4: addr, size, t, name = int(f[0], 16), int(f[1], 16), f[2], f[3]
    elif len(f) == 3: addr, size, t, name = int(f[0], 16), 0, f[1], f[2]
    else: continue
    if t in "Tt": syms.append((addr, size, t, name))
for arg in sys.argv[1:]:
    rip = int(arg, 16); best = None
    for addr, size, t, name in syms:
        if addr > rip: continue
        # at one address prefer a global (T) name, as blvm does
        if best is None or addr > best[0] or (addr == best[0] and t == "T" and best[2] == "t"): best = (addr, size, t, name)
    if best is None or (best[1] and rip - best[0] >= best[1]): print("")
    else: print(best[3] + ("+0x%x" % (rip - best[0]) if rip != best[0] else ""))' "$@"
}

# --- the storm guest: the summary, the JSON and the kill message name guest_main+0x... --------------
"$BLVM" run --bus-lock=kill=1 --stats="$TMP/k.json" "$G" -- 10 >"$TMP/out" 2>"$TMP/err"; rc=$?
rip=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["top"][0]["rip"])' "$TMP/k.json")
want=$(nm_name "$G" "$rip")
sym=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["top"][0]["symbol"])' "$TMP/k.json")
[ $rc -eq 123 ] && [ -n "$want" ] && [ "$sym" = "$want" ] && ok "storm: top[0].symbol = $sym (nm says $want)" ||
	fail "storm: status $rc, top[0] rip $rip symbol '$sym', nm says '$want'"
grep -q "vCPU 0 rip $rip <$want> lock add" "$TMP/err" && ok "kill message: rip $rip <$want>" ||
	fail "kill message: $(head -1 "$TMP/err")"
grep -Eq "^blvm: +1 +0x0*${rip#0x} +split +4 +lock add dword ptr \[r15\], 0x01  <${want//+/\\+}>$" "$TMP/err" &&
	ok "summary line ends with <$want>" || fail "summary: $(grep -m1 ' split ' "$TMP/err")"

# --- the fatal messages name the function too (halt with interrupts off) ----------------------------
"$BLVM" run "$GUESTS/halt" >/dev/null 2>"$TMP/err"; rc=$?
hrip=$(sed -n 's/.*halted with interrupts disabled at rip \(0x[0-9a-f]*\) .*/\1/p' "$TMP/err")
hw=$(nm_name "$GUESTS/halt" "${hrip:-0}")
[ $rc -eq 125 ] && [ -n "$hw" ] && grep -qF "at rip $hrip <$hw> (nothing can wake it)" "$TMP/err" &&
	ok "halt: at rip $hrip <$hw>" || fail "halt: status $rc, nm says '$hw': $(cat "$TMP/err")"

# --- the census: every attributed instruction of 79 named as nm names it -----------------------------
C="$GUESTS/buslock-census"
"$BLVM" run --bus-lock=log --quiet --stats="$TMP/c.json" "$C" >/dev/null 2>&1
python3 -c 'import json,sys; [print(t["rip"], t["symbol"]) for t in json.load(open(sys.argv[1]))["top"]]' "$TMP/c.json" >"$TMP/c.top"
# shellcheck disable=SC2046 # one word per rip
nm_name "$C" $(awk '{print $1}' "$TMP/c.top") >"$TMP/c.nm"
n=0 bad=0
while read -r r s && read -r w <&3; do
	n=$((n + 1))
	[ "$s" = "$w" ] || { bad=$((bad + 1)); echo "  census: rip $r: blvm '$s', nm '$w'"; }
done <"$TMP/c.top" 3<"$TMP/c.nm"
[ $n -ge 5 ] && [ $bad -eq 0 ] && ok "census: the top $n instructions named as nm names them" || fail "census: $bad of $n names differ"

# --- stripped: no names, no complaint ----------------------------------------------------------------
strip -o "$TMP/stripped" "$G"
"$BLVM" run --bus-lock=log --quiet --stats="$TMP/s.json" "$TMP/stripped" -- 10 >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["top"][0]["symbol"])' "$TMP/s.json")" = None ] &&
	! grep -q "symbol table" "$TMP/err" && ok "stripped kernel: runs, symbol null, nothing said" ||
	fail "stripped: status $rc, $(cat "$TMP/err" | head -3)"

# --- broken tables: the guest still runs and prints the same; one line says why ---------------------
# corrupt WHAT: a copy of the storm guest with one field of its section headers or symbol table
# damaged (python3 edits the ELF64 structures in place).
corrupt() {
	python3 - "$G" "$TMP/$1" "$1" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read()); what = sys.argv[3]
shoff, = struct.unpack_from('<Q', d, 0x28); shentsize, shnum = struct.unpack_from('<HH', d, 0x3a)
def sh(i): return shoff + i * shentsize
symtab = next(i for i in range(shnum) if struct.unpack_from('<I', d, sh(i) + 4)[0] == 2)
if what == 'shoff-past-eof': struct.pack_into('<Q', d, 0x28, len(d) - 10)
elif what == 'shentsize': struct.pack_into('<H', d, 0x3a, 12)
elif what == 'symtab-past-eof': struct.pack_into('<Q', d, sh(symtab) + 0x18, len(d))       # sh_offset
elif what == 'symtab-huge': struct.pack_into('<Q', d, sh(symtab) + 0x20, 1 << 62)          # sh_size
elif what == 'strtab-link': struct.pack_into('<I', d, sh(symtab) + 0x28, 0xffff)           # sh_link
elif what == 'entsize': struct.pack_into('<Q', d, sh(symtab) + 0x38, 7)                    # sh_entsize
elif what == 'names':                                                                        # every st_name far out
    off, size = struct.unpack_from('<QQ', d, sh(symtab) + 0x18)
    for k in range(size // 24): struct.pack_into('<I', d, off + k * 24, 0xfffffff0 - k)
open(sys.argv[2], 'wb').write(d)
PY
}
"$BLVM" run "$G" -- 10 >"$TMP/good.out" 2>/dev/null
for what in shoff-past-eof shentsize symtab-past-eof symtab-huge strtab-link entsize names; do
	corrupt "$what"
	"$BLVM" run --bus-lock=log --quiet --stats="$TMP/b.json" "$TMP/$what" -- 10 >"$TMP/out" 2>"$TMP/err"; rc=$?
	sym=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["top"][0]["symbol"])' "$TMP/b.json" 2>/dev/null)
	said=$(grep -c "symbol table ignored" "$TMP/err")
	# Names out of the string table are skipped one by one, not reported; the rest is said once.
	want_said=1; [ "$what" = names ] && want_said=0
	if [ $rc -eq 0 ] && cmp -s "$TMP/out" "$TMP/good.out" && [ "$sym" = None ] && [ "$said" -eq "$want_said" ]; then
		ok "$what: runs, same console, no name$([ "$said" -eq 1 ] && echo ", says: $(grep -o '(.*)' "$TMP/err" | head -1)")"
	else
		fail "$what: status $rc, symbol '$sym', said $said: $(head -3 "$TMP/err")"
	fi
done

# --- random damage: never a crash, never a hang ---------------------------------------------------------
# MUTANTS (300; 30 in the sanitizer passes, where the boot_loader fuzz harness covers the same
# loaders with far more inputs) copies of hello-min with 1-8 random bytes overwritten in the ELF header, the program headers,
# the section headers or the symbol table (seeded: the same copies every run). blvm must answer 0
# (it ran) or 2 (it refused with one line), never a signal or a sanitizer report.
H="$GUESTS/hello-min"
MUTANTS=${MUTANTS:-$([ -n "${SAN:-}" ] && echo 30 || echo 300)}
python3 - "$H" "$TMP/fz" "$MUTANTS" <<'PY'
import random, struct, sys, os
d0 = open(sys.argv[1], 'rb').read(); os.makedirs(sys.argv[2], exist_ok=True)
shoff, = struct.unpack_from('<Q', d0, 0x28); shentsize, shnum = struct.unpack_from('<HH', d0, 0x3a)
phoff, = struct.unpack_from('<Q', d0, 0x20); phentsize, phnum = struct.unpack_from('<HH', d0, 0x36)
regions = [(0, 64), (phoff, phoff + phentsize * phnum), (shoff, shoff + shentsize * shnum)]
for i in range(shnum):
    t, = struct.unpack_from('<I', d0, shoff + i * shentsize + 4)
    if t in (2, 3):  # SYMTAB, STRTAB
        off, size = struct.unpack_from('<QQ', d0, shoff + i * shentsize + 0x18)
        regions.append((off, off + size))
rng = random.Random(20261129)
for n in range(int(sys.argv[3])):
    d = bytearray(d0); lo, hi = rng.choice(regions)
    for _ in range(rng.randint(1, 8)):
        p = rng.randrange(lo, hi)
        d[p] = rng.choice([0, 0xff, 0x7f, 0x80, rng.randrange(256)])
    open(os.path.join(sys.argv[2], '%03d' % n), 'wb').write(d)
PY
run_each "$TMP/fz" "$TMP/fzo" timeout 10 "$BLVM" run --bus-lock=log --quiet --timeout=5 {}
crashes=0 ran=0 refused=0
for k in "$TMP"/fz/*; do
	rc=$(cat "$TMP/fzo/${k##*/}.rc"); cp "$TMP/fzo/${k##*/}.err" "$TMP/fz.err"
	case $rc in
	0) ran=$((ran + 1));;
	2) refused=$((refused + 1)); [ "$(wc -l <"$TMP/fz.err")" -eq 1 ] || { crashes=$((crashes + 1)); echo "  $k: status 2 with $(wc -l <"$TMP/fz.err") lines"; };;
	124|125) ran=$((ran + 1));; # the damage reached the code: it ran and ended (timeout or VM failure)
	*) crashes=$((crashes + 1)); echo "  $k: status $rc: $(head -2 "$TMP/fz.err")"; cp "$k" "$TOP/$BUILD/test-logs/symbols-crash-$(basename "$k")" 2>/dev/null;;
	esac
	grep -q "Sanitizer\|runtime error" "$TMP/fz.err" && { crashes=$((crashes + 1)); echo "  $k: $(grep -m1 'Sanitizer\|runtime error' "$TMP/fz.err")"; }
done
[ $crashes -eq 0 ] && ok "$MUTANTS damaged kernels: $ran ran, $refused refused with one line, none crashed" ||
	fail "damaged kernels: $crashes crashed or misbehaved ($ran ran, $refused refused)"
finish
