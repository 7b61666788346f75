/* SPDX-License-Identifier: MIT */
/*
 * Multiboot v1 (Multiboot Specification 0.6.96), loaded as QEMU's -kernel loads it (hw/i386/multiboot.c,
 * load_multiboot, and its option ROM pc-bios/optionrom/multiboot.S), so that the kvm-unit-tests and other
 * Multiboot kernels see what they see under QEMU:
 *   - the header: magic 0x1BADB002 at a 4-aligned offset in the first 8192 - 48 bytes, flags + magic +
 *     checksum == 0 (the first such header wins);
 *   - flag 16 clear: a 32-bit ELF file, its PT_LOAD segments at their physical addresses and its entry
 *     e_entry (QEMU refuses an x86-64 ELF: "Cannot load x86-64 image, give a 32bit one."); flag 16 set:
 *     the a.out kludge, header_addr/load_addr/load_end_addr/bss_end_addr/entry_addr, the bytes read
 *     from the file offset the header's own position gives;
 *   - after the kernel image (page-aligned): the module list, the command lines (the module's is the
 *     --initrd path, the kernel's is "KERNEL CMDLINE": QEMU passes the kernel file name first, and
 *     kvm-unit-tests take it as argv[0]), the boot loader name ("blvm"); then the module, page-aligned;
 *   - the memory map at 0x9000 and the multiboot information at 0x9500 (QEMU's ADDR_E820_MAP, ADDR_MBI),
 *     with QEMU's flags: memory, boot device (0x8000ffff), command line, modules, memory map, boot loader
 *     name; mem_lower/mem_upper from the memory map (spec 3.3: KiB from 0 and from 1 MiB);
 *   - entry in 32-bit protected mode, paging off, EAX = 0x2BADB002, EBX = the information.
 * QEMU splits -initrd at commas into several modules; blvm's --initrd is one file, one module.
 */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "boot/boot.h"

#define MB_HEADER_MAGIC 0x1badb002u
#define MB_BOOT_MAGIC 0x2badb002u
#define MB_SEARCH 8192
#define MB_HEADER_MAX 48           /* the header with the a.out and video fields */
#define MB_FLAG_AOUT_KLUDGE 0x00010000u
#define MBI_SIZE 88
#define MB_MOD_SIZE 16
#define PAGE_ALIGN(x) (((x) + 0xfffull) & ~0xfffull)
#define BOOT_LOADER_NAME "blvm"

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

long blvm_multiboot_find(const uint8_t *f, size_t len)
{
	/* QEMU: for (i = 0; i < 8192 - 48; i += 4), on the first 8 KiB of the file (zeros past its end). */
	for (size_t i = 0; i < MB_SEARCH - MB_HEADER_MAX && i + 12 <= len; i += 4)
		if (le32(f + i) == MB_HEADER_MAGIC && (uint32_t)(le32(f + i) + le32(f + i + 4) + le32(f + i + 8)) == 0)
			return (long)i;
	return -1;
}

int blvm_multiboot_load(struct blvm_vm *vm, const struct blvm_boot_files *bf, char *err, size_t errlen)
{
	const char *path = bf->path;
	const uint8_t *f = bf->f;
	size_t len = bf->len;
	long hdr = blvm_multiboot_find(f, len);
	if (hdr < 0)
		return blvm_boot_fail(err, errlen, "kernel %s has no Multiboot header", path);
	uint32_t flags = le32(f + hdr + 4);
	uint64_t load, kernel_size, entry;
	uint64_t load_size = 0, text_offset = 0;
	struct blvm_elf e;
	bool is_elf = !(flags & MB_FLAG_AOUT_KLUDGE);
	if (is_elf) {
		if (len < 4 || memcmp(f, ELFMAG, SELFMAG) != 0)
			return blvm_boot_fail(err, errlen, "Multiboot kernel %s is not an ELF file and its header gives no "
					      "load addresses (flag 16 clear)", path);
		if (blvm_elf_parse(bf, &e, err, errlen) != 0)
			return -1;
		if (e.machine == EM_X86_64)
			return blvm_boot_fail(err, errlen, "Multiboot kernel %s is an x86-64 ELF file; Multiboot kernels are "
					      "32-bit ELF (QEMU: \"Cannot load x86-64 image, give a 32bit one.\")", path);
		/* No range is refused for the boot information: an image over it overwrites it, as under
		 * QEMU (below). */
		if (blvm_elf_check_segments(vm, bf, &e, 0, 0, err, errlen) != 0)
			return -1;
		load = e.low;
		kernel_size = e.high - e.low;
		entry = e.entry;
	} else {
		if (!fits((uint64_t)hdr, 32, len))
			return blvm_boot_fail(err, errlen, "Multiboot kernel %s is truncated: its header at 0x%lx has no room "
					      "for the address fields (flag 16)", path, hdr);
		uint32_t header_addr = le32(f + hdr + 12), load_addr = le32(f + hdr + 16);
		uint32_t load_end_addr = le32(f + hdr + 20), bss_end_addr = le32(f + hdr + 24);
		entry = le32(f + hdr + 28);
		load = load_addr;
		/* QEMU's checks, in its order. */
		if (header_addr < load_addr || header_addr - load_addr > (uint64_t)hdr)
			return blvm_boot_fail(err, errlen, "Multiboot kernel %s: header_addr 0x%x and load_addr 0x%x put the "
					      "image before the start of the file", path, header_addr, load_addr);
		text_offset = (uint64_t)hdr - (header_addr - load_addr);
		if (load_end_addr) {
			if (load_end_addr < load_addr)
				return blvm_boot_fail(err, errlen, "Multiboot kernel %s: load_end_addr 0x%x is below load_addr "
						      "0x%x", path, load_end_addr, load_addr);
			load_size = load_end_addr - load_addr;
		} else {
			load_size = len - text_offset;
		}
		if (!fits(text_offset, load_size, len))
			return blvm_boot_fail(err, errlen, "Multiboot kernel %s is truncated: load_addr..load_end_addr (0x%"
					      PRIx64 " bytes from file offset 0x%" PRIx64 ") runs past the end of the file "
					      "(%zu bytes)", path, load_size, text_offset, len);
		if (bss_end_addr) {
			if (bss_end_addr < load_addr + load_size)
				return blvm_boot_fail(err, errlen, "Multiboot kernel %s: bss_end_addr 0x%x is below the end of "
						      "the loaded image 0x%" PRIx64, path, bss_end_addr, load_addr + load_size);
			kernel_size = bss_end_addr - load_addr;
		} else {
			kernel_size = load_size;
		}
		if (!blvm_gpa(vm, load, kernel_size ? kernel_size : 1))
			return blvm_boot_fail(err, errlen, "Multiboot kernel %s: image 0x%" PRIx64 "-0x%" PRIx64 " lies "
					      "outside guest RAM (%" PRIu64 " MiB); raise --mem", path, load, load + kernel_size,
					      vm->cfg.mem_size >> 20);
	}
	if (!blvm_gpa(vm, entry, 1))
		return blvm_boot_fail(err, errlen, "Multiboot kernel %s: entry 0x%" PRIx64 " lies outside guest RAM", path,
				      entry);

	/* QEMU's buffer after the image: module list, command lines, boot loader name, then modules. */
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t kcmd_len = strlen(path) + 1 + strlen(cmdline) + 1;
	unsigned nmods = bf->initrd_path ? 1 : 0;
	uint64_t info_off = PAGE_ALIGN(kernel_size);
	uint64_t cmdlines_off = info_off + (uint64_t)MB_MOD_SIZE * nmods;
	uint64_t cmdlines_len = kcmd_len + (nmods ? strlen(bf->initrd_path) + 1 : 0);
	uint64_t name_off = cmdlines_off + cmdlines_len;
	/* Modules on a page boundary of guest memory (spec 3.1.2: required when the header's flags bit
	 * 0 is set): QEMU aligns the offset from the load address, which differs only for an image
	 * whose load address is not page aligned. */
	uint64_t mods_off = PAGE_ALIGN(load + name_off + sizeof BOOT_LOADER_NAME) - load;
	uint64_t total = mods_off + (nmods ? PAGE_ALIGN(bf->initrd_size) : 0);
	if (load + total > (1ull << 32) || !blvm_gpa(vm, load, total))
		return blvm_boot_fail(err, errlen, "Multiboot kernel %s: the image, its boot information and the initrd "
				      "(0x%" PRIx64 "-0x%" PRIx64 ") do not fit in guest RAM below 4 GiB; raise --mem",
				      path, load, load + total);

	/* Guest RAM from here on; everything is checked. */
	uint32_t kcmdline_gpa = (uint32_t)(load + cmdlines_off + (nmods ? strlen(bf->initrd_path) + 1 : 0));
	/* The memory map as the option ROM writes it from INT 15h E820: {u32 size = 20, u64 base, u64
	 * length, u32 type} per entry. */
	struct blvm_e820 m[BLVM_MEMMAP_MAX];
	unsigned n = blvm_memmap(vm->cfg.mem_size, m, BLVM_MEMMAP_MAX);
	uint8_t *mmap = blvm_gpa(vm, MB_MMAP_GPA, MB_INFO_GPA - MB_MMAP_GPA);
	uint64_t mem_lower = 0, mem_upper = 0;
	for (unsigned i = 0; i < n; i++) {
		put32(mmap + 24 * i, 20);
		put64(mmap + 24 * i + 4, m[i].addr);
		put64(mmap + 24 * i + 12, m[i].size);
		put32(mmap + 24 * i + 20, m[i].type);
		if (m[i].type == E820_RAM && m[i].addr == 0)
			mem_lower = m[i].size >> 10;
		if (m[i].type == E820_RAM && m[i].addr == 0x100000)
			mem_upper = m[i].size >> 10;
	}
	uint8_t *mbi = blvm_gpa(vm, MB_INFO_GPA, MBI_SIZE);
	memset(mbi, 0, MBI_SIZE);
	put32(mbi + 0, 1u << 0 | 1u << 1 | 1u << 2 | 1u << 3 | 1u << 6 | 1u << 9); /* QEMU's flags */
	put32(mbi + 4, (uint32_t)mem_lower);
	put32(mbi + 8, (uint32_t)mem_upper);
	put32(mbi + 12, 0x8000ffff);   /* boot_device: QEMU's "XXX: use the -boot switch?" value */
	put32(mbi + 16, kcmdline_gpa);
	put32(mbi + 20, nmods);
	put32(mbi + 24, (uint32_t)(load + info_off));
	put32(mbi + 44, 24 * n);       /* mmap_length */
	put32(mbi + 48, (uint32_t)MB_MMAP_GPA);
	put32(mbi + 64, (uint32_t)(load + name_off));
	/* Then the image and what follows it. QEMU's option ROM (multiboot.S) writes the memory map and
	 * the information first and copies the kernel's buffer after them, so where a kernel lies over
	 * 0x9000-0x9600 (kvm-unit-tests' realmode.flat, at 0x8000) its bytes win; the same here. */
	if (nmods && blvm_boot_read_initrd(vm, bf, load + mods_off, err, errlen) != 0)
		return -1;
	if (is_elf) {
		blvm_elf_copy_segments(vm, bf, &e);
	} else {
		uint8_t *dst = blvm_gpa(vm, load, kernel_size);
		memcpy(dst, f + text_offset, load_size);
		memset(dst + load_size, 0, kernel_size - load_size);
	}
	uint8_t *buf = blvm_gpa(vm, load, total);
	uint32_t mod_cmdline = 0;
	uint64_t p = cmdlines_off;
	if (nmods) {
		mod_cmdline = (uint32_t)(load + p);
		memcpy(buf + p, bf->initrd_path, strlen(bf->initrd_path) + 1);
		p += strlen(bf->initrd_path) + 1;
		put32(buf + info_off, (uint32_t)(load + mods_off));                    /* mod_start */
		put32(buf + info_off + 4, (uint32_t)(load + mods_off + bf->initrd_size)); /* mod_end */
		put32(buf + info_off + 8, mod_cmdline);
		put32(buf + info_off + 12, 0);
	}
	snprintf((char *)buf + p, kcmd_len, "%s %s", path, cmdline);
	memcpy(buf + name_off, BOOT_LOADER_NAME, sizeof BOOT_LOADER_NAME);

	vm->boot = (struct blvm_boot_entry){ .mode = BLVM_ENTRY_PROTECTED32, .format = "Multiboot", .rip = entry,
					     .rax = MB_BOOT_MAGIC, .rbx = MB_INFO_GPA };
	if (is_elf)
		blvm_elf_load_symbols(vm, bf);
	return 0;
}
