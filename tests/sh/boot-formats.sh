# The boot inputs (src/boot/): one guest, bootinfo, built as a PVH ELF, a Multiboot ELF32 (bootinfo-mb),
# an a.out-kludge Multiboot image made from it here, and a bzImage (bootinfo-bz), each booted with an
# initrd and a command line. Oracles: QEMU 7.2 (`-kernel -initrd -append`) for PVH and Multiboot (the
# guest sees the same command line, the same initrd bytes, the same RAM above 4 GiB); the file and the
# options for the bzImage's zero page (QEMU runs a bzImage's 16-bit setup code, which this test kernel
# does not have); the memory-map rule of QEMU's pc machine for the map itself.
. "$(dirname "$0")/../lib.sh"
B="$GUESTS/bootinfo"
for g in bootinfo bootinfo-mb bootinfo-bz; do [ -f "$GUESTS/$g" ] || { fail "guest $GUESTS/$g not built"; finish; }; done
head -c 100000 /dev/urandom > "$TMP/initrd"
printf 'x' > "$TMP/initrd1"
: > "$TMP/empty"
CMD='console=ttyS0 answer=42 "quoted words"'
fnv() { python3 -c '
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read(): h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
print("0x%016x" % h)' "$1"; }

# The a.out-kludge variant (Multiboot flag 16): the ELF32 image's loadable bytes as a flat file, the
# header's address fields filled in (Multiboot 0.6.96, 3.1.3), the checksum recomputed.
python3 - "$GUESTS/bootinfo-mb" "$TMP/bootinfo-aout" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
assert d[:4] == b'\x7fELF' and d[4] == 1
entry, phoff = struct.unpack_from('<II', d, 0x18); phentsize, phnum = struct.unpack_from('<HH', d, 0x2a)
loads = []
for i in range(phnum):
    t, off, vaddr, paddr, filesz, memsz = struct.unpack_from('<IIIIII', d, phoff + i * phentsize)
    if t == 1 and memsz: loads.append((paddr, off, filesz, memsz))
start = min(l[0] for l in loads); fend = max(p + f for p, _, f, _ in loads); mend = max(p + m for p, _, _, m in loads)
img = bytearray(fend - start)
for p, off, f, _ in loads: img[p - start:p - start + f] = d[off:off + f]
h = img.find(struct.pack('<I', 0x1badb002)); assert 0 <= h < 8192 and h % 4 == 0
flags = struct.unpack_from('<I', img, h + 4)[0] | 0x10000
struct.pack_into('<IIIIIIII', img, h, 0x1badb002, flags, (-(0x1badb002 + flags)) & 0xffffffff,
                 start + h, start, start + len(img), mend, entry)
open(sys.argv[2], 'wb').write(img)
PY
AOUT="$TMP/bootinfo-aout"

# blvm NAME KERNEL [ARGS]: runs blvm; $TMP/NAME.out is the console.
blvm() { local n=$1 k=$2; shift 2; "$BLVM" run --timeout=60 "$@" "$k" -- $CMD >"$TMP/$n.out" 2>"$TMP/$n.err"; echo $? >"$TMP/$n.rc"; }
line() { grep -E "^$2" "$TMP/$1.out"; }

# --- blvm: each format, with an initrd -----------------------------------------------------------
want_map='memmap: 4 entries
  0x0 0x9fc00 type 1
  0x9fc00 0x400 type 2
  0xe0000 0x20000 type 2
  0x100000 0x7f00000 type 1'
h=$(fnv "$TMP/initrd")
for v in "pvh $B" "multiboot $GUESTS/bootinfo-mb" "multiboot $AOUT" "bzimage $GUESTS/bootinfo-bz"; do
	set -- $v; fmt=$1 k=$2 n=$(basename "$2")
	blvm "$n" "$k" --mem=128M --initrd="$TMP/initrd"
	want_cmd="$CMD"; want_modcmd=""
	[ "$fmt" = multiboot ] && want_cmd="$k $CMD" && want_modcmd="$TMP/initrd"
	if [ "$(cat "$TMP/$n.rc")" = 0 ] && [ "$(line "$n" boot:)" = "boot: $fmt" ] &&
	   [ "$(line "$n" cmdline:)" = "cmdline: \"$want_cmd\"" ] &&
	   [ "$(line "$n" 'module 0:')" = "module 0: 100000 bytes, fnv1a $h, cmdline \"$want_modcmd\"" ] &&
	   grep -Fxq -- "$want_map" <(grep -A4 '^memmap:' "$TMP/$n.out" | head -5 | paste -sd '\n'); then
		ok "$n: boots as $fmt; command line, initrd bytes (FNV-1a $h) and memory map as expected"
	else
		fail "$n ($fmt): status $(cat "$TMP/$n.rc")"; sed 's/^/  | /' "$TMP/$n.out" "$TMP/$n.err" | head -20
	fi
done
# The memory map exactly (QEMU's pc rule; blvm adds no entry of its own).
diff <(grep -A4 '^memmap:' "$TMP/bootinfo.out") <(echo "$want_map") >/dev/null && ok "PVH memmap is the pc map for 128M" ||
	fail "PVH memmap: $(grep -A5 '^memmap:' "$TMP/bootinfo.out")"

# --- the bzImage's zero page against the file and the options -------------------------------------
python3 - "$GUESTS/bootinfo-bz" "$TMP/bootinfo-bz.out" 100000 $((128 << 20)) <<'PY' && ok "bzImage zero page: setup header copied from the file; type_of_loader, cmd_line_ptr, ramdisk as boot.rst says" || fail "bzImage zero page"
import struct, sys
f = open(sys.argv[1], 'rb').read(); out = open(sys.argv[2]).read().splitlines()
size, mem = int(sys.argv[3]), int(sys.argv[4])
hdr = bytes(int(x, 16) for x in next(l for l in out if l.startswith('zeropage hdr:')).split()[2:])
want = bytearray(f[0x1f1:0x26c])
def put(off, fmt, v): struct.pack_into(fmt, want, off - 0x1f1, v)
put(0x210, '<B', 0xff)                                    # type_of_loader: undefined
put(0x228, '<I', 0x7000)                                  # cmd_line_ptr
imax = min(struct.unpack_from('<I', f, 0x22c)[0], mem - 1)
put(0x218, '<I', (imax - size) & ~0xfff)                  # ramdisk_image, QEMU's arithmetic
put(0x21c, '<I', size)                                    # ramdisk_size
ok = hdr == bytes(want)
if not ok:
    for i, (a, b) in enumerate(zip(hdr, want)):
        if a != b: print("  zero page 0x%x: 0x%02x, want 0x%02x" % (0x1f1 + i, a, b))
rest = next(l for l in out if l.startswith('zeropage:'))
# the RSDP of the monitor's ACPI tables (src/dev/acpi.c, at the start of the BIOS area: vmm.h)
want_rest = 'zeropage: acpi_rsdp_addr 0xe0000 ext_ramdisk 0x0 0x0 ext_cmd_line_ptr 0x0 e820_entries 4 sentinel 0'
if rest != want_rest: print("  " + rest + "\n  want " + want_rest); ok = False
sys.exit(0 if ok else 1)
PY

# --- empty initrd: as QEMU does, no module for PVH, size 0 for the others ------------------------------
blvm empty "$B" --initrd="$TMP/empty"
[ "$(cat "$TMP/empty.rc")" = 0 ] && [ "$(line empty modules:)" = "modules: 0" ] && ok "bootinfo: empty initrd: no PVH module" ||
	fail "bootinfo empty initrd: $(cat "$TMP/empty.out" "$TMP/empty.err")"
e=$(fnv "$TMP/empty")
for k in "$GUESTS/bootinfo-bz" "$GUESTS/bootinfo-mb"; do
	blvm empty "$k" --initrd="$TMP/empty"
	[ "$(cat "$TMP/empty.rc")" = 0 ] && line empty 'module 0:' | grep -q "^module 0: 0 bytes, fnv1a $e" &&
		ok "$(basename "$k"): empty initrd passed on, 0 bytes" || fail "$(basename "$k") empty initrd: $(cat "$TMP/empty.out" "$TMP/empty.err")"
done

# --- RAM above 4 GiB (--mem=4G: 3 GiB below the hole, 1 GiB at 4 GiB), in every format -----------------
for k in "$B" "$GUESTS/bootinfo-mb" "$GUESTS/bootinfo-bz"; do
	blvm high "$k" --mem=4G --initrd="$TMP/initrd1"
	if [ "$(cat "$TMP/high.rc")" = 0 ] && grep -Fxq '  0x100000 0xbff00000 type 1' "$TMP/high.out" &&
	   grep -Fxq '  0x100000000 0x40000000 type 1' "$TMP/high.out" &&
	   grep -Fxq 'high ram: wrote and read 0x100000000 and 0x13ffffff8: ok' "$TMP/high.out"; then
		ok "$(basename "$k") --mem=4G: RAM 3 GiB below the hole and 1 GiB at 4 GiB, written and read back"
	else
		fail "$(basename "$k") --mem=4G: $(cat "$TMP/high.out" "$TMP/high.err" | head -20)"
	fi
done
blvm split "$B" --mem=3584M
grep -Fxq '  0x100000000 0x20000000 type 1' "$TMP/split.out" && ok "--mem=3584M: split at 3 GiB as QEMU's gigabyte_align" ||
	fail "--mem=3584M: $(grep -A6 memmap "$TMP/split.out")"
blvm nosplit "$B" --mem=3583M
! grep -q '0x100000000' "$TMP/nosplit.out" && grep -Fxq '  0x100000 0xdfe00000 type 1' "$TMP/nosplit.out" &&
	ok "--mem=3583M: all of it below 4 GiB, as QEMU's pc" || fail "--mem=3583M: $(grep -A6 memmap "$TMP/nosplit.out")"

# --- QEMU: the same kernels, the same lines -----------------------------------------------------------
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	echo "note: qemu-system-x86_64 missing; the QEMU comparison is skipped"
	finish
fi
# the lines both must print alike: format, command line, modules, RAM above 4 GiB
common() { grep -E '^(boot|cmdline|modules|module [0-9]+|high ram):|^  0x1[0-9a-f]{8} ' "$1"; }
qemu() { # NAME KERNEL MEM INITRD
	timeout 120 qemu-system-x86_64 -accel tcg -cpu max -m "$3" -display none -no-reboot -nodefaults -serial stdio \
		-monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$2" -initrd "$4" -append "$CMD" \
		</dev/null >"$TMP/$1.qout" 2>"$TMP/$1.qerr"
	echo $? >"$TMP/$1.qrc"
}
for v in "bootinfo $B" "bootinfo-mb $GUESTS/bootinfo-mb" "bootinfo-aout $AOUT"; do
	set -- $v
	for m in "128 128M $TMP/initrd" "4096 4G $TMP/initrd1" "128 128M $TMP/empty"; do
		set -- $v $m
		qemu q "$2" "$3" "$5"
		blvm b "$2" --mem="$4" --initrd="$5"
		if [ "$(cat "$TMP/q.qrc")" = 1 ] && [ "$(cat "$TMP/b.rc")" = 0 ] && diff <(common "$TMP/q.qout") <(common "$TMP/b.out") >"$TMP/d"; then
			ok "$1 -m $3 -initrd $(basename "$5"): QEMU and blvm print the same ($(common "$TMP/b.out" | wc -l) lines)"
		else
			fail "$1 -m $3 -initrd $(basename "$5"): QEMU status $(cat "$TMP/q.qrc"), blvm $(cat "$TMP/b.rc")"; sed 's/^/  | /' "$TMP/d" "$TMP/b.err" "$TMP/q.qerr" | head -20
		fi
	done
done
finish
