#!/bin/bash
# The Linux layout blvm reads from a stock kernel's BTF (src/introspect/linux.c) equals what bpftool
# (Debian's, an independent BTF reader) dumps from the same kernel: task_struct's size and the
# offsets of comm, pid and tgid, and the per-CPU offset of current_task. The kernel is the Debian
# cloud kernel of scripts/linux-inputs.sh (cached; skipped when it cannot be had). The same layout
# comes from the bzImage (its LZ4 payload unpacked by blvm), and from the same vmlinux repacked
# into bzImages with a zstd, a bzip2 and an LZO payload (the real one's setup header; the payload
# made by the zstd, bzip2 and lzop tools as the kernel's build makes it,
# arch/x86/boot/compressed/Makefile, from a pipe, with the unpacked size appended; zstd with level
# 22's 2^27-byte window at a fast level; bzip2 -9 of the vmlinux reduced to its .BTF section, to
# save time; lzop at -1, the same LZO1X stream format as the kernel's -9 in 0.1 s instead of 40).
# bzImages whose payload is gzip, xz or legacy LZMA (a small ELF, compressed by Python's gzip and
# lzma modules) or LZO (lzop -9 as the kernel, and with CRC32 checksums) unpack to that ELF byte for
# byte; an appended size that is not the ELF's, or no vmlinux's, and a payload in no kernel format
# are refused with one line each.
set -u
cd "$TOP"
for tool in bpftool zstd bzip2 lzop objcopy; do
	command -v $tool >/dev/null || { echo "$tool is missing (scripts/deps.sh installs it)"; exit 1; }
done
LX=$(scripts/linux-inputs.sh 2>/dev/null) || { echo "skip: the Debian kernel cannot be fetched here"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$BUILD/tests/introspect_linux" --layout "$LX/vmlinux" > "$tmp/blvm" || { cat "$tmp/blvm"; exit 1; }
bpftool btf dump file "$LX/vmlinux" format raw > "$tmp/raw" || exit 1
python3 - "$tmp/raw" > "$tmp/bpftool" <<'PY' || exit 1
import re, sys
lines = open(sys.argv[1]).read().splitlines()
out = {}
for i, l in enumerate(lines):
    m = re.match(r"\[\d+\] STRUCT 'task_struct' size=(\d+) vlen=(\d+)", l)
    if m and "size" not in out:
        out["size"] = int(m.group(1))
        for ml in lines[i + 1:i + 1 + int(m.group(2))]:
            mm = re.match(r"\s+'(\w+)' type_id=\d+ bits_offset=(\d+)", ml)
            if mm and mm.group(1) in ("comm", "pid", "tgid"):
                out[mm.group(1)] = int(mm.group(2)) // 8
    m = re.search(r"offset=(\d+) size=8 \(VAR 'current_task'\)", l)
    if m:
        out["cur"] = int(m.group(1))
print("task_struct size %d comm %d comm_len 16 pid %d tgid %d" % (out["size"], out["comm"], out["pid"], out["tgid"]))
print("current_task %d" % out["cur"])
PY
echo "kernel: $(cat "$LX/VERSION")"
echo "blvm:    $(tr '\n' ' ' < "$tmp/blvm")"
echo "bpftool: $(tr '\n' ' ' < "$tmp/bpftool")"
cmp -s "$tmp/blvm" "$tmp/bpftool" || { echo "FAIL: the layouts differ"; exit 1; }
"$BUILD/tests/introspect_linux" --layout "$LX/vmlinuz" > "$tmp/bz" || { cat "$tmp/bz"; exit 1; }
cmp -s "$tmp/blvm" "$tmp/bz" || { echo "FAIL: the bzImage's layout differs: $(cat "$tmp/bz")"; exit 1; }
echo "bzImage: the same layout from its LZ4 payload"
# repack BZIMAGE ELF PAYLOAD OUT: the bzImage's setup header with PAYLOAD (ELF compressed) as its
# protected-mode part, the unpacked size appended (size_append, as the kernel's build).
repack() {
	python3 - "$@" <<'PY'
import os, struct, sys
bz, elf, payload, out = sys.argv[1:5]
d = bytearray(open(bz, "rb").read())
setup = ((d[0x1f1] or 4) + 1) * 512
p = open(payload, "rb").read() + struct.pack("<I", os.path.getsize(elf))
struct.pack_into("<II", d, 0x248, 0, len(p))            # payload_offset, payload_length
open(out, "wb").write(bytes(d[:setup]) + p)
PY
}
for fmt in zstd bzip2 LZO; do
	case $fmt in
	zstd) zstd -q -1 --long=27 -c "$LX/vmlinux" > "$tmp/payload" || exit 1;;
	# bzip2 packs 53 MB in ~4 s of CPU: the vmlinux reduced to its .BTF section (4 MB, still
	# five 900 kB blocks) carries the same layout for a tenth of it.
	bzip2) objcopy -j .BTF "$LX/vmlinux" "$tmp/elf" 2>/dev/null && bzip2 -9 -c "$tmp/elf" > "$tmp/payload" || exit 1;;
	LZO) lzop -1 < "$LX/vmlinux" > "$tmp/payload" || exit 1;;
	esac
	repack "$LX/vmlinuz" "$([ $fmt = bzip2 ] && echo "$tmp/elf" || echo "$LX/vmlinux")" "$tmp/payload" "$tmp/bz-$fmt" || exit 1
	"$BUILD/tests/introspect_linux" --layout "$tmp/bz-$fmt" > "$tmp/bz" || { cat "$tmp/bz"; exit 1; }
	cmp -s "$tmp/bpftool" "$tmp/bz" || { echo "FAIL: the $fmt bzImage's layout differs: $(cat "$tmp/bz")"; exit 1; }
	echo "bzImage with a $fmt payload of the vmlinux: the same layout as bpftool's"
	# The same payload cut short, its appended size kept (payload_length and the file): one line,
	# no crash.
	python3 -c 'import struct,sys; d=bytearray(open(sys.argv[1],"rb").read()); s=((d[0x1f1] or 4)+1)*512
n=struct.unpack_from("<I",d,0x24c)[0]; struct.pack_into("<I",d,0x24c,n//2+4); open(sys.argv[1],"wb").write(d[:s+n//2]+d[s+n-4:s+n])' "$tmp/bz-$fmt"
	out=$("$BUILD/tests/introspect_linux" --layout "$tmp/bz-$fmt")
	[ "$out" = "error: the $fmt payload does not unpack to an ELF vmlinux" ] || { echo "FAIL: a truncated $fmt payload: $out"; exit 1; }
	echo "bzImage with half a $fmt payload: $out"
	rm -f "$tmp/payload" "$tmp/bz-$fmt"
done
for fmt in gzip xz lzma lzo lzo-crc32; do
	python3 - "$LX/vmlinuz" "$GUESTS/hello" "$fmt" "$tmp/bz-$fmt" <<'PY' || exit 1
import gzip, lzma, struct, subprocess, sys
bz, elf, fmt, out = sys.argv[1:5]
d = bytearray(open(bz, "rb").read())
setup = ((d[0x1f1] or 4) + 1) * 512
e = open(elf, "rb").read()
if fmt == "gzip":
    p = gzip.compress(e, 1)
elif fmt == "xz":
    p = lzma.compress(e, lzma.FORMAT_XZ, lzma.CHECK_CRC32, preset=0)
elif fmt == "lzo":  # `lzop -9` from a pipe, as the kernel's build: Adler-32 of each block's data
    p = subprocess.run(["lzop", "-9"], input=e, stdout=subprocess.PIPE, check=True).stdout
elif fmt == "lzo-crc32":  # CRC-32 of each block's data and of the packed data
    p = subprocess.run(["lzop", "-1", "--crc32"], input=e, stdout=subprocess.PIPE, check=True).stdout
else: # `lzma -9` from a pipe: the .lzma header with an unknown size, then an end marker
    p = lzma.compress(e, lzma.FORMAT_ALONE, preset=0)
    assert p[0] == 0x5d and p[5:13] == b"\xff" * 8, p[:13]
p += struct.pack("<I", len(e))                          # size_append, as the kernel's build
struct.pack_into("<II", d, 0x248, 0, len(p))            # payload_offset, payload_length
open(out, "wb").write(bytes(d[:setup]) + p)
PY
	"$BUILD/tests/introspect_linux" --vmlinux "$tmp/bz-$fmt" "$tmp/elf-$fmt" && cmp -s "$tmp/elf-$fmt" "$GUESTS/hello" ||
		{ echo "FAIL: the $fmt payload did not unpack to the ELF"; exit 1; }
	echo "bzImage with a $fmt payload: unpacked byte for byte"
done
# The appended size is the output's size (and its bound): one more than the ELF is refused, as is
# a size no vmlinux has (a hostile image must not make blvm allocate 4 GiB).
hello=$(stat -c %s "$GUESTS/hello")
for n in $((hello + 1)) 2147483648 63; do
	cp "$tmp/bz-gzip" "$tmp/bz-size"
	python3 -c 'import struct,sys; f=open(sys.argv[1],"r+b"); f.seek(-4,2); f.write(struct.pack("<I",int(sys.argv[2])))' "$tmp/bz-size" $n
	out=$("$BUILD/tests/introspect_linux" --vmlinux "$tmp/bz-size" "$tmp/x")
	case $n in
	$((hello + 1))) want="error: the gzip payload unpacks to $hello bytes, not the $n its last 4 bytes say";;
	*) want="error: the payload's unpacked size (its last 4 bytes) is $n bytes, not a vmlinux's (64 to 1073741824)";;
	esac
	[ "$out" = "$want" ] || { echo "FAIL: appended size $n: $out"; exit 1; }
	echo "appended size $n: $out"
done
printf 'NOTAFORMAT' | dd of="$tmp/bz-gzip" bs=1 seek=$(( ($(od -An -tu1 -j $((0x1f1)) -N1 "$tmp/bz-gzip") + 1) * 512 )) conv=notrunc 2>/dev/null
out=$("$BUILD/tests/introspect_linux" --vmlinux "$tmp/bz-gzip" "$tmp/x")
[ "$out" = "error: the payload is compressed with an unknown format, which blvm does not unpack" ] ||
	{ echo "FAIL: a payload in no kernel format: $out"; exit 1; }
echo "ok"
