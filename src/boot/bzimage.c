/* SPDX-License-Identifier: MIT */
/*
 * bzImage through the Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst, "64-bit BOOT
 * PROTOCOL"), as cloud-hypervisor and Firecracker load it: the protected-mode kernel (the file after its
 * (setup_sects + 1) * 512 bytes of real-mode setup) is copied to its load address, a zero page (struct
 * boot_params) is built from the file's setup header plus what the loader fills in, and the vCPU starts
 * in long mode at the 64-bit entry point, load address + 0x200, with RSI = the zero page. The 16-bit
 * setup code does not run (blvm has no real mode); a kernel without the 64-bit entry is refused.
 *
 * The file is untrusted: every header field is checked (fits()) before it is used.
 */
#include <bzlib.h>
#include <inttypes.h>
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "boot/boot.h"

/* Setup header offsets in the file and in struct boot_params (boot.rst, "THE REAL-MODE KERNEL HEADER"). */
#define HDR_START 0x1f1          /* setup_sects: the header's first byte */
#define HDR_SETUP_SECTS 0x1f1    /* u8 */
#define HDR_SYSSIZE 0x1f4        /* u32, 16-byte units (2.04+) */
#define HDR_BOOT_FLAG 0x1fe      /* u16 0xAA55 */
#define HDR_JUMP 0x200           /* u16: jmp rel8; 0x202 + its second byte is the header's end */
#define HDR_MAGIC 0x202          /* "HdrS" */
#define HDR_VERSION 0x206        /* u16 */
#define HDR_TYPE_OF_LOADER 0x210 /* u8 */
#define HDR_LOADFLAGS 0x211      /* u8 */
#define HDR_RAMDISK_IMAGE 0x218  /* u32 */
#define HDR_RAMDISK_SIZE 0x21c   /* u32 */
#define HDR_CMD_LINE_PTR 0x228   /* u32 (2.02+) */
#define HDR_INITRD_ADDR_MAX 0x22c/* u32 (2.03+) */
#define HDR_KERNEL_ALIGNMENT 0x230 /* u32 (2.05+) */
#define HDR_RELOCATABLE 0x234    /* u8 (2.05+) */
#define HDR_XLOADFLAGS 0x236     /* u16 (2.12+) */
#define HDR_CMDLINE_SIZE 0x238   /* u32 (2.06+) */
#define HDR_HARDWARE_SUBARCH 0x23c /* u32 (2.07+) */
#define HDR_PAYLOAD_OFFSET 0x248 /* u32 (2.08+): from the protected-mode code's start */
#define HDR_PAYLOAD_LENGTH 0x24c /* u32 (2.08+) */
#define HDR_PREF_ADDRESS 0x258   /* u64 (2.10+) */
#define HDR_INIT_SIZE 0x260      /* u32 (2.10+) */
#define HDR_MIN_END 0x264        /* every field above lies before this (protocol 2.12) */

/* struct boot_params (arch/x86/include/uapi/asm/bootparam.h) outside the setup header. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_MAX_END 0x290     /* the setup header's room in the zero page */
#define BP_E820_TABLE 0x2d0      /* 128 entries of {u64 addr, u64 size, u32 type} */
#define BP_SIZE 0x1000

#define HDRS_MAGIC 0x53726448u   /* "HdrS" */
#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01
#define TYPE_OF_LOADER_UNDEFINED 0xff /* boot.rst: "0xFF  undefined" — blvm has no assigned ID */
#define HIGH_LOAD 0x100000ull     /* where a bzImage's protected-mode kernel goes by default */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* QEMU's test (hw/i386/x86.c): the "HdrS" signature alone makes a file a Linux kernel. */
bool blvm_is_bzimage(const uint8_t *f, size_t len)
{
	return len >= HDR_MAGIC + 4 && le32(f + HDR_MAGIC) == HDRS_MAGIC;
}

/* LZ4's legacy frame, as lib/decompress_unlz4.c reads it: the magic 0x184c2102, then blocks of a
 * 32-bit compressed size and the block, each unpacking to at most 8 MiB; a size equal to the magic
 * starts another frame; the build appends the unpacked size (size_append), which ends the walk. */
static int unlz4(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got)
{
	size_t at = 4, done = 0;
	while (n - at >= 4) {
		uint32_t c = le32(p + at);
		at += 4;
		if (c == 0x184c2102u)
			continue;
		if (c > n - at || c > (uint32_t)LZ4_compressBound(8 << 20))
			break; /* the appended size, or the end */
		int r = LZ4_decompress_safe((const char *)p + at, (char *)out + done, (int)c,
					    (int)(cap - done < (8u << 20) ? cap - done : (8u << 20)));
		if (r < 0)
			return -1;
		done += (size_t)r;
		at += c;
	}
	*got = done;
	return done ? 0 : -1;
}

static int ungzip(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got)
{
	z_stream z = { .next_in = (Bytef *)p, .avail_in = (uInt)n, .next_out = out, .avail_out = (uInt)cap };
	if (n > UINT32_MAX || cap > UINT32_MAX || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) /* gzip header */
		return -1;
	int r = inflate(&z, Z_FINISH);
	*got = z.total_out;
	inflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -1;
}

static int unxz(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got)
{
	uint64_t memlimit = 256u << 20;
	size_t in_pos = 0, out_pos = 0;
	lzma_ret r = lzma_stream_buffer_decode(&memlimit, 0, NULL, p, &in_pos, n, out, &out_pos, cap);
	*got = out_pos;
	return r == LZMA_OK ? 0 : -1;
}

/* The legacy .lzma format of `lzma -9` (lib/decompress_unlzma.c): a 13-byte header (properties,
 * dictionary size, an unpacked size that is all ones when unknown, as from a pipe), then the LZMA
 * stream up to its end marker; the appended size after it is not read. */
static int unlzma(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got)
{
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_alone_decoder(&s, 256u << 20) != LZMA_OK)
		return -1;
	s.next_in = p, s.avail_in = n, s.next_out = out, s.avail_out = cap;
	lzma_ret r = lzma_code(&s, LZMA_FINISH);
	*got = (size_t)s.total_out;
	lzma_end(&s);
	return r == LZMA_STREAM_END ? 0 : -1;
}

/* bzip2 (the kernel's `bzip2 -9`, lib/decompress_bunzip2.c): one stream; what follows its end (the
 * appended size) is not read. libbz2 counts in unsigned int. */
static int unbzip2(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got)
{
	if (n > UINT_MAX || cap > UINT_MAX)
		return -1;
	unsigned int len = (unsigned int)cap;
	int r = BZ2_bzBuffToBuffDecompress((char *)out, &len, (char *)(uintptr_t)p, (unsigned int)n, 0, 0);
	*got = len;
	return r == BZ_OK ? 0 : -1;
}

/* zstd frames (RFC 8878; the kernel's `zstd -22 --ultra`, lib/decompress_unzstd.c), the appended size
 * cut off by the caller, as it would read as another frame. One call into the flat output buffer
 * needs no window buffer; libzstd still refuses a frame whose window exceeds its default limit
 * (2^27 bytes, the window of level 22). */
static int unzstd(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got)
{
	size_t r = ZSTD_decompress(out, cap, p, n);
	if (ZSTD_isError(r))
		return -1;
	*got = r;
	return 0;
}

/* LZO in lzop's file format (the kernel's `lzop -9`, lib/decompress_unlzo.c; lzop's own lzop.c for
 * the header fields the kernel skips by count): the magic, a header (version, method, flags, ...,
 * the file name, a checksum), then blocks of a big-endian unpacked and packed size (the kernel takes
 * at most 256 KiB unpacked), the checksums the flags ask for, and the data (stored when the sizes
 * are equal); an unpacked size of 0 ends the stream, so the appended size is not read. */
#define LZOP_BLOCK_MAX (256u * 1024)
#define LZOP_F_ADLER32_D 0x1u
#define LZOP_F_ADLER32_C 0x2u
#define LZOP_F_H_EXTRA_FIELD 0x40u
#define LZOP_F_CRC32_D 0x100u
#define LZOP_F_CRC32_C 0x200u
#define LZOP_F_H_FILTER 0x800u
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static int unlzo(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got)
{
	size_t at = 9, done = 0;
	*got = 0;
	if (lzo_init() != LZO_E_OK || n < at + 2)
		return -1;
	unsigned version = (unsigned)p[at] << 8 | p[at + 1];
	/* version, library version, [version needed], method, [level] */
	size_t fixed = version >= 0x0940 ? 8 : 5;
	if (n - at < fixed + 4)
		return -1;
	uint8_t method = p[at + (version >= 0x0940 ? 6 : 4)];
	at += fixed;
	uint32_t flags = be32(p + at);
	at += 4;
	if (method < 1 || method > 3) /* M_LZO1X_1, M_LZO1X_1_15, M_LZO1X_999: all LZO1X */
		return -1;
	/* [filter], mode, mtime low, [mtime high], then the name's length */
	size_t more = (flags & LZOP_F_H_FILTER ? 4 : 0) + 8 + (version >= 0x0940 ? 4 : 0);
	if (n - at < more + 1)
		return -1;
	at += more;
	size_t name = p[at++];
	if (n - at < name + 4)
		return -1;
	at += name + 4; /* the name and the header's checksum */
	if (flags & LZOP_F_H_EXTRA_FIELD) {
		if (n - at < 4 || be32(p + at) > n - at - 4 || n - at - 4 - be32(p + at) < 4)
			return -1;
		at += 4 + be32(p + at) + 4;
	}
	for (;;) {
		if (n - at < 4)
			return -1;
		uint32_t dst = be32(p + at);
		at += 4;
		if (dst == 0)
			break;
		if (dst > LZOP_BLOCK_MAX || n - at < 4)
			return -1;
		uint32_t src = be32(p + at);
		at += 4;
		size_t sums = (flags & (LZOP_F_ADLER32_D | LZOP_F_CRC32_D) ? 4 : 0) +
			      (src < dst && (flags & (LZOP_F_ADLER32_C | LZOP_F_CRC32_C)) ? 4 : 0);
		if (src == 0 || src > dst || n - at < sums || n - at - sums < src || cap - done < dst)
			return -1;
		at += sums;
		if (src == dst) {
			memcpy(out + done, p + at, dst);
		} else {
			lzo_uint len = dst;
			if (lzo1x_decompress_safe(p + at, src, out + done, &len, NULL) != LZO_E_OK || len != dst)
				return -1;
		}
		done += dst;
		at += src;
	}
	*got = done;
	return 0;
}

int blvm_bzimage_vmlinux(const uint8_t *f, size_t len, size_t max, uint8_t **out, size_t *outlen, char *err,
			 size_t errlen)
{
	*out = NULL;
	if (len < HDR_MIN_END || le16(f + HDR_VERSION) < 0x208)
		return blvm_boot_fail(err, errlen, "no payload_offset in the setup header (boot protocol before 2.08)");
	unsigned setup_sects = f[HDR_SETUP_SECTS] ? f[HDR_SETUP_SECTS] : 4;
	uint64_t off = (uint64_t)(setup_sects + 1) * 512 + le32(f + HDR_PAYLOAD_OFFSET);
	uint64_t n = le32(f + HDR_PAYLOAD_LENGTH);
	if (n < 8 || !fits(off, n, len))
		return blvm_boot_fail(err, errlen, "the compressed payload (0x%" PRIx64 ", %" PRIu64 " bytes) lies outside "
				      "the file", off, n);
	const uint8_t *p = f + off;
	/* The unpacked size the build appends to every format (scripts/Makefile.lib, size_append; the
	 * decompressor's mkpiggy reads it as the output's length): the output buffer, exactly. */
	uint64_t size = le32(p + n - 4);
	if (size < 64 || size > max)
		return blvm_boot_fail(err, errlen, "the payload's unpacked size (its last 4 bytes) is %" PRIu64 " bytes, "
				      "not a vmlinux's (64 to %zu)", size, max);
	/* The kernel's formats (arch/x86/boot/compressed/Makefile, CONFIG_KERNEL_*), told apart by their
	 * magic as lib/decompress.c does. LZ4's and zstd's unpackers would read the appended size as more
	 * input, so it is cut off for them (sized). */
	int (*unpack)(const uint8_t *, size_t, uint8_t *, size_t, size_t *) = NULL;
	const char *fmt = "an unknown format";
	bool sized = false;
	if (le32(p) == 0x184c2102u)
		unpack = unlz4, fmt = "LZ4", sized = true;
	else if (p[0] == 0x1f && p[1] == 0x8b)
		unpack = ungzip, fmt = "gzip";
	else if (memcmp(p, "\xfd" "7zXZ", 6) == 0)
		unpack = unxz, fmt = "xz";
	else if (le32(p) == 0xfd2fb528u)
		unpack = unzstd, fmt = "zstd", sized = true;
	else if (p[0] == 'B' && p[1] == 'Z' && p[2] == 'h')
		unpack = unbzip2, fmt = "bzip2";
	else if (p[0] == 0x5d && p[1] == 0x00)
		unpack = unlzma, fmt = "LZMA";
	else if (n >= 9 && memcmp(p, "\x89LZO\0\r\n\x1a\n", 9) == 0)
		unpack = unlzo, fmt = "LZO";
	if (!unpack)
		return blvm_boot_fail(err, errlen, "the payload is compressed with %s, which blvm does not unpack", fmt);
	uint8_t *buf = malloc(size);
	size_t got = 0;
	if (!buf)
		return blvm_boot_fail(err, errlen, "out of memory unpacking %" PRIu64 " bytes", size);
	if (unpack(p, sized ? n - 4 : n, buf, size, &got) != 0 || got < 4 || memcmp(buf, "\177ELF", 4) != 0) {
		free(buf);
		return blvm_boot_fail(err, errlen, "the %s payload does not unpack to an ELF vmlinux", fmt);
	}
	if (got != size) {
		free(buf);
		return blvm_boot_fail(err, errlen, "the %s payload unpacks to %zu bytes, not the %" PRIu64 " its last 4 "
				      "bytes say", fmt, got, size);
	}
	*out = buf;
	*outlen = got;
	return 0;
}

/* Identity map of 0-4 GiB with 2 MiB pages (SDM Vol. 3A 4.5): covers the kernel, the zero page, the
 * command line and the initrd, all of which blvm places below 4 GiB. */
static void write_page_tables(struct blvm_vm *vm)
{
	uint8_t *pt = blvm_gpa(vm, BZ_PML4_GPA, BZ_PT_END - BZ_PML4_GPA);
	memset(pt, 0, BZ_PT_END - BZ_PML4_GPA);
	put64(pt, BZ_PDPT_GPA | 0x3); /* P | RW */
	for (unsigned i = 0; i < 4; i++)
		put64(pt + (BZ_PDPT_GPA - BZ_PML4_GPA) + 8 * i, (BZ_PD_GPA + 0x1000 * i) | 0x3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		put64(pt + (BZ_PD_GPA - BZ_PML4_GPA) + 8 * i, (i << 21) | 0x83); /* P | RW | PS */
	/* boot.rst: __BOOT_CS (0x10) flat execute/read, __BOOT_DS (0x18) flat read/write; accessed set. */
	const uint64_t gdt[4] = { 0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull };
	memcpy(blvm_gpa(vm, BOOT_GDT_GPA, sizeof gdt), gdt, sizeof gdt);
}

int blvm_bzimage_load(struct blvm_vm *vm, const struct blvm_boot_files *bf, char *err, size_t errlen)
{
	const char *path = bf->path;
	const uint8_t *f = bf->f;
	size_t len = bf->len;
	if (len < HDR_MIN_END)
		return blvm_boot_fail(err, errlen, "bzImage %s is truncated: %zu bytes, shorter than the setup header "
				      "(0x%x)", path, len, HDR_MIN_END);
	if (le16(f + HDR_BOOT_FLAG) != 0xaa55)
		return blvm_boot_fail(err, errlen, "bzImage %s: bad boot_flag 0x%04x at 0x1fe (0xaa55 expected)", path,
				      le16(f + HDR_BOOT_FLAG));
	uint16_t version = le16(f + HDR_VERSION);
	if (version < 0x20c)
		return blvm_boot_fail(err, errlen, "bzImage %s: boot protocol %u.%02u is older than 2.12, which "
				      "blvm's 64-bit boot needs (xloadflags)", path, version >> 8, version & 0xff);
	uint16_t xloadflags = le16(f + HDR_XLOADFLAGS);
	if (!(xloadflags & XLF_KERNEL_64))
		return blvm_boot_fail(err, errlen, "bzImage %s has no 64-bit entry point (xloadflags 0x%x, "
				      "XLF_KERNEL_64 clear); blvm boots through the 64-bit boot protocol", path, xloadflags);
	if (!(f[HDR_LOADFLAGS] & LOADED_HIGH))
		return blvm_boot_fail(err, errlen, "bzImage %s: loadflags 0x%02x lack LOADED_HIGH (a zImage loaded at "
				      "0x10000 is not supported)", path, f[HDR_LOADFLAGS]);
	unsigned setup_sects = f[HDR_SETUP_SECTS] ? f[HDR_SETUP_SECTS] : 4; /* boot.rst: 0 means 4 */
	uint64_t setup_size = (uint64_t)(setup_sects + 1) * 512;
	if (setup_size > len)
		return blvm_boot_fail(err, errlen, "bzImage %s is truncated: setup_sects %u (0x%" PRIx64 " bytes) runs "
				      "past the end of the file (%zu bytes)", path, setup_sects, setup_size, len);
	uint64_t kernel_size = (uint64_t)le32(f + HDR_SYSSIZE) * 16;
	if (kernel_size == 0 || !fits(setup_size, kernel_size, len))
		return blvm_boot_fail(err, errlen, "bzImage %s: syssize 0x%x (0x%" PRIx64 " bytes after the setup at 0x%"
				      PRIx64 ") runs past the end of the file (%zu bytes)", path, le32(f + HDR_SYSSIZE),
				      kernel_size, setup_size, len);
	uint64_t init_size = le32(f + HDR_INIT_SIZE);
	uint64_t need = init_size > kernel_size ? init_size : kernel_size;
	uint64_t pref = le64(f + HDR_PREF_ADDRESS);
	bool relocatable = f[HDR_RELOCATABLE] != 0;
	uint64_t align = le32(f + HDR_KERNEL_ALIGNMENT);
	/* boot.rst: a relocatable kernel may go anywhere aligned to kernel_alignment, preferably at
	 * pref_address; a non-relocatable one is loaded at 0x100000 and moves itself to pref_address,
	 * which must then be RAM as well. */
	uint64_t load = HIGH_LOAD;
	if (relocatable && pref >= HIGH_LOAD) {
		load = pref;
		if (align && !(align & (align - 1)) && load <= UINT64_MAX - align)
			load = (load + align - 1) & ~(align - 1);
	}
	uint64_t low = vm->ram_below_4g;
	if (!fits(load, need, low) || (!relocatable && pref && !fits(pref, init_size, low)))
		return blvm_boot_fail(err, errlen, "bzImage %s needs 0x%" PRIx64 " bytes (init_size) at 0x%" PRIx64
				      ", beyond the %" PRIu64 " MiB of guest RAM below 4 GiB; raise --mem", path, need,
				      relocatable ? load : pref, low >> 20);

	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	uint64_t cmdline_size = le32(f + HDR_CMDLINE_SIZE);
	if (strlen(cmdline) > cmdline_size)
		return blvm_boot_fail(err, errlen, "guest command line is %zu bytes; bzImage %s accepts at most %" PRIu64
				      " (cmdline_size)", strlen(cmdline), path, cmdline_size);

	/* The initrd as QEMU places it (hw/i386/x86.c, x86_load_linux): at the highest page-aligned address
	 * below min(initrd_addr_max, top of RAM below 4 GiB), with QEMU's arithmetic. */
	uint64_t initrd_gpa = 0;
	if (bf->initrd_path) {
		uint64_t initrd_max = le32(f + HDR_INITRD_ADDR_MAX);
		if (initrd_max > low - 1)
			initrd_max = low - 1;
		if (bf->initrd_size >= initrd_max)
			return blvm_boot_fail(err, errlen, "initrd %s is %" PRIu64 " bytes; bzImage %s takes one below 0x%"
					      PRIx64 " (initrd_addr_max 0x%x, guest RAM below 4 GiB %" PRIu64 " MiB)",
					      bf->initrd_path, bf->initrd_size, path, initrd_max,
					      le32(f + HDR_INITRD_ADDR_MAX), low >> 20);
		initrd_gpa = (initrd_max - bf->initrd_size) & ~0xfffull;
		if (initrd_gpa < load + need)
			return blvm_boot_fail(err, errlen, "initrd %s (%" PRIu64 " bytes, below 0x%" PRIx64 ") would overlap "
					      "the kernel (0x%" PRIx64 "-0x%" PRIx64 "); raise --mem", bf->initrd_path,
					      bf->initrd_size, initrd_max, load, load + need);
		if (blvm_boot_read_initrd(vm, bf, initrd_gpa, err, errlen) != 0)
			return -1;
	}

	memcpy(blvm_gpa(vm, load, kernel_size), f + setup_size, kernel_size);

	/* The zero page: zeroed, the file's setup header (0x1f1 to 0x202 + the jump's offset, within
	 * the room boot_params has for it), then the fields a boot loader writes. */
	uint8_t *bp = blvm_gpa(vm, BZ_ZERO_PAGE_GPA, BP_SIZE);
	memset(bp, 0, BP_SIZE);
	uint64_t hdr_end = HDR_MAGIC + (uint64_t)f[HDR_JUMP + 1];
	if (hdr_end > BP_HDR_MAX_END)
		hdr_end = BP_HDR_MAX_END;
	if (hdr_end > len)
		hdr_end = len;
	memcpy(bp + HDR_START, f + HDR_START, hdr_end - HDR_START);
	bp[HDR_TYPE_OF_LOADER] = TYPE_OF_LOADER_UNDEFINED;
	/* loadflags stay the file's (LOADED_HIGH, checked above): CAN_USE_HEAP and heap_end_ptr, which
	 * QEMU sets, are for the 16-bit setup code's heap, and that code does not run here. */
	put32(bp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_GPA);
	put32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(BOOT_CMDLINE_GPA >> 32));
	put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put32(bp + HDR_RAMDISK_SIZE, (uint32_t)bf->initrd_size);
	put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_gpa >> 32));
	put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(bf->initrd_size >> 32));
	put32(bp + HDR_HARDWARE_SUBARCH, 0); /* X86_SUBARCH_PC */
	put64(bp + HDR_HARDWARE_SUBARCH + 4, 0);
	put64(bp + BP_ACPI_RSDP_ADDR, vm->acpi_rsdp); /* read by kernels of protocol 2.14 and later */
	struct blvm_e820 m[BLVM_MEMMAP_MAX];
	unsigned n = blvm_memmap(vm->cfg.mem_size, m, BLVM_MEMMAP_MAX);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		put64(bp + BP_E820_TABLE + 20 * i, m[i].addr);
		put64(bp + BP_E820_TABLE + 20 * i + 8, m[i].size);
		put32(bp + BP_E820_TABLE + 20 * i + 16, m[i].type);
	}
	memcpy(blvm_gpa(vm, BOOT_CMDLINE_GPA, BOOT_CMDLINE_MAX), cmdline, strlen(cmdline) + 1);
	write_page_tables(vm);
	vm->boot = (struct blvm_boot_entry){ .mode = BLVM_ENTRY_LONG64, .format = "bzImage", .rip = load + 0x200,
					     .rsi = BZ_ZERO_PAGE_GPA, .cr3 = BZ_PML4_GPA };
	return 0;
}
