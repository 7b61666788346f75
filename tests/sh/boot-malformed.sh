# Malformed boot inputs (src/boot/): each class is refused with one line on stderr and status 2, nothing
# started, never a hang (files are opened without blocking); then a few hundred randomly damaged bzImage
# and Multiboot headers never crash blvm (every run ends with status 2, or the VM ran and ended).
. "$(dirname "$0")/../lib.sh"
BZ="$GUESTS/bootinfo-bz"; MB="$GUESTS/bootinfo-mb"
for g in "$BZ" "$MB"; do [ -f "$g" ] || { fail "guest $g not built"; finish; }; done
printf 'ramdisk' > "$TMP/rd"

# patch IN OUT OFFSET FORMAT VALUE: a copy of IN with one field rewritten (struct.pack format).
patch() { python3 -c '
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into(sys.argv[4], d, int(sys.argv[3], 0), int(sys.argv[5], 0))
open(sys.argv[2], "wb").write(d)' "$@"; }
# refused NAME REGEX -- ARGS...: blvm run ARGS is status 2, one line matching REGEX, within 10 s.
refused() { local n=$1 re=$2; shift 3; expect_status 2 "$n" -- timeout 10 "$BLVM" run "$@"; expect_stderr "$re" "$n"; }

# --- bzImage ----------------------------------------------------------------------------------------
head -c $((0x250)) "$BZ" > "$TMP/bz-trunc"
refused "bzImage: truncated header" "bzImage .* is truncated: .* shorter than the setup header" -- "$TMP/bz-trunc"
patch "$BZ" "$TMP/bz-flag" 0x1fe '<H' 0x1234
refused "bzImage: bad boot_flag" "bad boot_flag 0x1234 at 0x1fe \\(0xaa55 expected\\)" -- "$TMP/bz-flag"
patch "$BZ" "$TMP/bz-magic" 0x202 '<I' 0x53726449
refused "bzImage: bad HdrS magic" "not a bzImage .*not an ELF file" -- "$TMP/bz-magic"
patch "$BZ" "$TMP/bz-old" 0x206 '<H' 0x020b
refused "bzImage: protocol 2.11" "boot protocol 2.11 is older than 2.12" -- "$TMP/bz-old"
patch "$BZ" "$TMP/bz-no64" 0x236 '<H' 0x2
refused "bzImage: no XLF_KERNEL_64" "no 64-bit entry point \\(xloadflags 0x2, XLF_KERNEL_64 clear\\)" -- "$TMP/bz-no64"
patch "$BZ" "$TMP/bz-low" 0x211 '<B' 0
refused "bzImage: not LOADED_HIGH" "lack LOADED_HIGH" -- "$TMP/bz-low"
patch "$BZ" "$TMP/bz-setup" 0x1f1 '<B' 255
refused "bzImage: setup_sects past EOF" "is truncated: setup_sects 255 .* past the end of the file" -- "$TMP/bz-setup"
patch "$BZ" "$TMP/bz-sys" 0x1f4 '<I' 0x10000000
refused "bzImage: syssize past EOF" "syssize 0x10000000 .* runs past the end of the file" -- "$TMP/bz-sys"
patch "$BZ" "$TMP/bz-sys0" 0x1f4 '<I' 0
refused "bzImage: syssize 0" "syssize 0x0 " -- "$TMP/bz-sys0"
patch "$BZ" "$TMP/bz-big" 0x260 '<I' 0xfff00000
refused "bzImage: init_size larger than RAM" "needs 0xfff00000 bytes \\(init_size\\) at 0x100000, beyond the 128 MiB .* raise --mem" -- "$TMP/bz-big"
refused "bzImage: kernel larger than --mem=2M" "beyond the 2 MiB of guest RAM" -- --mem=2M "$TMP/bz-big"
patch "$BZ" "$TMP/bz-pref" 0x258 '<Q' 0xfffffffffff00000
patch "$TMP/bz-pref" "$TMP/bz-pref" 0x234 '<B' 1
refused "bzImage: pref_address at the top of the address space" "beyond the 128 MiB of guest RAM" -- "$TMP/bz-pref"
patch "$BZ" "$TMP/bz-cmd" 0x238 '<I' 4
refused "bzImage: command line longer than cmdline_size" "command line is 11 bytes; bzImage .* accepts at most 4 \\(cmdline_size\\)" -- "$TMP/bz-cmd" -- hello world
patch "$BZ" "$TMP/bz-imax" 0x22c "<I" 0x80000
head -c 600000 /dev/zero > "$TMP/rd600k"
refused "bzImage: initrd above initrd_addr_max" "initrd .*rd600k is 600000 bytes; bzImage .* takes one below 0x80000 \\(initrd_addr_max 0x80000" -- --initrd="$TMP/rd600k" "$TMP/bz-imax"
head -c $((3 << 20)) /dev/zero > "$TMP/rd3m"
refused "bzImage: initrd larger than RAM" "initrd .*rd3m is 3145728 bytes; bzImage .* takes one below 0x1fffff" -- --mem=2M --initrd="$TMP/rd3m" "$BZ"
head -c $((120 << 20)) /dev/zero > "$TMP/rd120m" 2>/dev/null
refused "bzImage: initrd overlapping the kernel" "initrd .* would overlap the kernel .* raise --mem" -- --initrd="$TMP/rd120m" --mem=121M "$BZ"
rm -f "$TMP/rd120m"

# --- Multiboot --------------------------------------------------------------------------------------
# An a.out-kludge image (flag 16) from the ELF32 variant, as tests/sh/boot-formats.sh makes it; AOUT_H
# is its header's offset. aout OUT FIELD VALUE [FIXSUM]: a copy with one header field (0-7) rewritten,
# the checksum recomputed unless FIXSUM is 0.
python3 - "$MB" "$TMP/aout" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
entry, phoff = struct.unpack_from('<II', d, 0x18); phentsize, phnum = struct.unpack_from('<HH', d, 0x2a)
loads = [struct.unpack_from('<IIIIII', d, phoff + i * phentsize) for i in range(phnum)]
loads = [(p, off, f, m) for t, off, v, p, f, m in loads if t == 1 and m]
start = min(l[0] for l in loads); fend = max(p + f for p, _, f, _ in loads); mend = max(p + m for p, _, _, m in loads)
img = bytearray(fend - start)
for p, off, f, _ in loads: img[p - start:p - start + f] = d[off:off + f]
h = img.find(struct.pack('<I', 0x1badb002)); flags = struct.unpack_from('<I', img, h + 4)[0] | 0x10000
struct.pack_into('<IIIIIIII', img, h, 0x1badb002, flags, (-(0x1badb002 + flags)) & 0xffffffff, start + h, start,
                 start + len(img), mend, entry)
open(sys.argv[2], 'wb').write(img); open(sys.argv[2] + '.h', 'w').write(str(h))
PY
AOUT_H=$(cat "$TMP/aout.h")
aout() { python3 -c '
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read()); h = int(sys.argv[3])
struct.pack_into("<I", d, h + 4 * int(sys.argv[4]), int(sys.argv[5], 0) & 0xffffffff)
if sys.argv[6] != "0":
    m, f = struct.unpack_from("<II", d, h); struct.pack_into("<I", d, h + 8, (-(m + f)) & 0xffffffff)
open(sys.argv[2], "wb").write(d)' "$TMP/aout" "$1" "$AOUT_H" "$2" "$3" "${4:-1}"; }
expect_status 0 "a.out-kludge Multiboot image boots" -- "$BLVM" run --initrd="$TMP/rd" "$TMP/aout"
aout "$TMP/mb-sum" 2 0x12345678 0
refused "Multiboot: checksum wrong (not recognised, nothing else either)" "not a bzImage .*no Multiboot header .*not an ELF file" -- "$TMP/mb-sum"
aout "$TMP/mb-hdr" 3 0x1000
refused "Multiboot: header_addr below load_addr" "header_addr 0x1000 and load_addr 0x100000 put the image before the start of the file" -- "$TMP/mb-hdr"
aout "$TMP/mb-hdr2" 4 0x0ff000
refused "Multiboot: header_addr - load_addr past the header" "put the image before the start of the file" -- "$TMP/mb-hdr2"
aout "$TMP/mb-end" 5 0x200000
refused "Multiboot: load_end_addr past the end of the file" "is truncated: load_addr..load_end_addr .* runs past the end of the file" -- "$TMP/mb-end"
aout "$TMP/mb-end2" 5 0x1000
refused "Multiboot: load_end_addr below load_addr" "load_end_addr 0x1000 is below load_addr" -- "$TMP/mb-end2"
aout "$TMP/mb-bss" 6 0x100010
refused "Multiboot: bss_end_addr inside the image" "bss_end_addr 0x100010 is below the end of the loaded image" -- "$TMP/mb-bss"
aout "$TMP/mb-bssram" 6 0xfff00000
refused "Multiboot: bss_end_addr beyond RAM" "image 0x100000-0xfff00000 lies outside guest RAM" -- "$TMP/mb-bssram"
aout "$TMP/mb-entry" 7 0xf0000000
refused "Multiboot: entry outside RAM" "entry 0xf0000000 lies outside guest RAM" -- "$TMP/mb-entry"
head -c $((AOUT_H + 20)) "$TMP/aout" > "$TMP/mb-trunc"
refused "Multiboot: header truncated before its address fields" "truncated: its header at 0x[0-9a-f]+ has no room" -- "$TMP/mb-trunc"
refused "Multiboot: initrd that does not fit" "do not fit in guest RAM below 4 GiB; raise --mem" -- --mem=3M --initrd="$TMP/rd3m" "$TMP/aout"
# An x86-64 ELF with a Multiboot header (QEMU: "Cannot load x86-64 image, give a 32bit one.").
python3 - "$GUESTS/bootinfo" "$TMP/mb64" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
assert d[0x200:0x20c] == bytes(12)  # padding before the first segment
struct.pack_into('<III', d, 0x200, 0x1badb002, 0, (-0x1badb002) & 0xffffffff)
open(sys.argv[2], 'wb').write(d)
PY
refused "Multiboot: an x86-64 ELF" "is an x86-64 ELF file; Multiboot kernels are 32-bit ELF" -- "$TMP/mb64"
patch "$MB" "$TMP/mb-elf" 0 '<I' 0x464c457e
refused "Multiboot ELF path, not an ELF file" "is not an ELF file and its header gives no load addresses" -- "$TMP/mb-elf"

# --- files: never block, never a crash ----------------------------------------------------------------
mkfifo "$TMP/fifo"
refused "FIFO as kernel" "kernel .*fifo is a FIFO, not a regular file" -- "$TMP/fifo"
refused "FIFO as initrd" "initrd .*fifo is a FIFO, not a regular file" -- --initrd="$TMP/fifo" "$BZ"
refused "directory as initrd" "initrd .* is a directory, not a regular file" -- --initrd="$TMP" "$BZ"
refused "device as initrd" "initrd /dev/null is a device, not a regular file" -- --initrd=/dev/null "$BZ"
refused "missing initrd" "cannot open initrd .*nonexistent: No such file" -- --initrd="$TMP/nonexistent" "$BZ"
refused "empty --initrd=" "--initrd=: give a file name" -- --initrd= "$BZ"

# --- random damage: never a crash, never a hang -------------------------------------------------------
# MUTANTS/2 (150; 15 in the sanitizer passes, where the boot_loader fuzz harness covers the same
# loaders with far more inputs) bzImages with 1-8 bytes of the setup header overwritten and as many a.out-kludge images with 1-6 bytes
# of the Multiboot header overwritten (checksum fixed in two of three, so most are recognised), seeded.
# Allowed: 2 with one line, or a VM that ran (the guest's 0/1/3, 124 timeout, 125 VM failure).
MUTANTS=${MUTANTS:-$([ -n "${SAN:-}" ] && echo 30 || echo 300)}
python3 - "$BZ" "$TMP/aout" "$AOUT_H" "$TMP/fz" "$MUTANTS" <<'PY'
import random, struct, sys, os
bz = open(sys.argv[1], 'rb').read(); ao = open(sys.argv[2], 'rb').read(); h = int(sys.argv[3]); out = sys.argv[4]
os.makedirs(out, exist_ok=True); rng = random.Random(20261205)
def val(): return rng.choice([0, 0xff, 0x7f, 0x80, 0x10, rng.randrange(256)])
for n in range(int(sys.argv[5]) // 2):
    d = bytearray(bz)
    for _ in range(rng.randint(1, 8)): d[rng.randrange(0x1f0, 0x270)] = val()
    open(os.path.join(out, 'bz%03d' % n), 'wb').write(d)
for n in range(int(sys.argv[5]) // 2):
    d = bytearray(ao)
    for _ in range(rng.randint(1, 6)): d[rng.randrange(h + 4, h + 32)] = val()
    if n % 3:
        m, f = struct.unpack_from('<II', d, h); struct.pack_into('<I', d, h + 8, (-(m + f)) & 0xffffffff)
    open(os.path.join(out, 'mb%03d' % n), 'wb').write(d)
PY
run_each "$TMP/fz" "$TMP/fzo" timeout 20 "$BLVM" run --timeout=2 --initrd="$TMP/rd" {} -- a b
crashes=0 ran=0 refused=0
for k in "$TMP"/fz/*; do
	rc=$(cat "$TMP/fzo/${k##*/}.rc"); cp "$TMP/fzo/${k##*/}.err" "$TMP/fz.err"
	case $rc in
	2) refused=$((refused + 1)); [ "$(wc -l <"$TMP/fz.err")" -eq 1 ] || { crashes=$((crashes + 1)); echo "  $k: status 2 with $(wc -l <"$TMP/fz.err") lines"; };;
	0|1|3|124|125) ran=$((ran + 1));;
	*) crashes=$((crashes + 1)); echo "  $(basename "$k"): status $rc: $(head -2 "$TMP/fz.err")"; cp "$k" "$TOP/$BUILD/test-logs/boot-crash-$(basename "$k")" 2>/dev/null;;
	esac
	grep -q "Sanitizer\|runtime error" "$TMP/fz.err" && { crashes=$((crashes + 1)); echo "  $(basename "$k"): $(grep -m1 'Sanitizer\|runtime error' "$TMP/fz.err")"; }
done
[ $crashes -eq 0 ] && ok "$MUTANTS damaged bzImage/Multiboot headers: $ran ran, $refused refused with one line, none crashed" ||
	fail "damaged headers: $crashes crashed or misbehaved ($ran ran, $refused refused)"
finish
