/* SPDX-License-Identifier: MIT */
/*
 * PVH boot, as QEMU's `-kernel` does it for an ELF kernel carrying XEN_ELFNOTE_PHYS32_ENTRY
 * (Xen's docs/misc/pvh.pandoc; QEMU hw/i386/x86.c, read_pvh_start_addr): load the PT_LOAD
 * segments at their physical addresses, find the 32-bit entry in the note, and hand the
 * kernel an hvm_start_info (Xen public/arch-x86/hvm/start_info.h) in ebx.
 *
 * The file is untrusted input: every header field is checked against the file size and guest
 * RAM, with overflow-safe arithmetic, before it is used.
 */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;   /* version >= 1 */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

/* A uniform view of ELF32 and ELF64 program headers. */
struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

#define fail blvm_boot_fail

/* Reads program header i into a uniform struct; the caller has bounds-checked the table. */
static void get_phdr(const uint8_t *f, bool is64, uint64_t phoff, unsigned i, struct phdr *p)
{
	if (is64) {
		Elf64_Phdr h;
		memcpy(&h, f + phoff + (uint64_t)i * sizeof h, sizeof h);
		*p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
	} else {
		Elf32_Phdr h;
		memcpy(&h, f + phoff + (uint64_t)i * sizeof h, sizeof h);
		*p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
	}
}

/*
 * Looks for the Xen PHYS32_ENTRY note in a PT_NOTE segment. Notes are 4-byte aligned
 * (ELF gABI "Note Section"). Linux emits an 8-byte descriptor in ELF64 kernels (_ASM_PTR),
 * others a 4-byte one; both are accepted, and the entry must be a 32-bit address.
 * Returns 1 found, 0 not found, -1 malformed.
 */
static int find_pvh_note(const uint8_t *f, size_t len, const struct phdr *p, uint64_t *entry,
			 char *err, size_t errlen)
{
	uint64_t off = p->offset, end;
	if (!fits(p->offset, p->filesz, len))
		return fail(err, errlen, "PT_NOTE segment (offset 0x%" PRIx64 ", size 0x%" PRIx64
			    ") lies past the end of the file (%zu bytes)", p->offset, p->filesz, len);
	end = p->offset + p->filesz;
	while (end - off >= 12) {
		uint32_t namesz, descsz, type;
		memcpy(&namesz, f + off, 4);
		memcpy(&descsz, f + off + 4, 4);
		memcpy(&type, f + off + 8, 4);
		uint64_t name = off + 12;
		uint64_t desc = name + (((uint64_t)namesz + 3) & ~3ull);
		uint64_t next = desc + (((uint64_t)descsz + 3) & ~3ull);
		if (next > end)
			return fail(err, errlen, "ELF note at offset 0x%" PRIx64 " runs past its segment", off);
		if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && memcmp(f + name, "Xen", 4) == 0) {
			if (descsz == 4) {
				uint32_t e;
				memcpy(&e, f + desc, 4);
				*entry = e;
			} else if (descsz == 8) {
				memcpy(entry, f + desc, 8);
				if (*entry > UINT32_MAX)
					return fail(err, errlen, "PVH entry 0x%" PRIx64 " is not a 32-bit address", *entry);
			} else {
				return fail(err, errlen, "PVH entry note has a %u-byte descriptor (4 or 8 expected)", descsz);
			}
			return 1;
		}
		off = next;
	}
	return 0;
}

/* hvm_start_info with the memory map, then the module list, in the page at PVH_START_INFO_GPA. */
static void write_start_info(struct blvm_vm *vm, uint64_t initrd_gpa, uint64_t initrd_size, bool initrd)
{
	struct blvm_e820 m[BLVM_MEMMAP_MAX];
	unsigned n = blvm_memmap(vm->cfg.mem_size, m, BLVM_MEMMAP_MAX);
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = BOOT_CMDLINE_GPA,
		.rsdp_paddr = vm->acpi_rsdp,
		.memmap_paddr = PVH_START_INFO_GPA + sizeof si,
		.memmap_entries = n,
	};
	uint64_t modlist = si.memmap_paddr + n * sizeof(struct hvm_memmap_table_entry);
	if (initrd) {
		/* Xen public/arch-x86/hvm/start_info.h: one module, no command line of its own (QEMU's
		 * pc-bios/optionrom/pvh_main.c passes the initrd the same way). */
		struct hvm_modlist_entry mod = { .paddr = initrd_gpa, .size = initrd_size };
		memcpy(blvm_gpa(vm, modlist, sizeof mod), &mod, sizeof mod);
		si.nr_modules = 1;
		si.modlist_paddr = modlist;
	}
	uint8_t *info = blvm_gpa(vm, PVH_START_INFO_GPA, PVH_INFO_END - PVH_START_INFO_GPA);
	memcpy(info, &si, sizeof si);
	for (unsigned i = 0; i < n; i++) {
		struct hvm_memmap_table_entry e = { m[i].addr, m[i].size, m[i].type, 0 };
		memcpy(info + sizeof si + i * sizeof e, &e, sizeof e);
	}
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	memcpy(blvm_gpa(vm, BOOT_CMDLINE_GPA, BOOT_CMDLINE_MAX), cmdline, strlen(cmdline) + 1);
}

int blvm_elf_parse(const struct blvm_boot_files *bf, struct blvm_elf *e, char *err, size_t errlen)
{
	const char *path = bf->path;
	const uint8_t *f = bf->f;
	size_t len = bf->len;
	memset(e, 0, sizeof *e);
	if (len < EI_NIDENT || memcmp(f, ELFMAG, SELFMAG) != 0)
		return fail(err, errlen, "kernel %s is not a bzImage (no \"HdrS\" at 0x202), has no Multiboot header "
			    "in its first 8 KiB, and is not an ELF file (bad magic); blvm boots these three formats",
			    path);
	e->is64 = f[EI_CLASS] == ELFCLASS64;
	if (f[EI_CLASS] != ELFCLASS32 && !e->is64)
		return fail(err, errlen, "kernel %s: unknown ELF class %u", path, f[EI_CLASS]);
	if (f[EI_DATA] != ELFDATA2LSB)
		return fail(err, errlen, "kernel %s: not a little-endian ELF file", path);
	size_t ehsize = e->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (len < ehsize)
		return fail(err, errlen, "kernel %s is truncated: %zu bytes, shorter than its ELF header (%zu)",
			    path, len, ehsize);
	uint16_t phentsize;
	if (e->is64) {
		Elf64_Ehdr eh;
		memcpy(&eh, f, sizeof eh);
		e->machine = eh.e_machine, phentsize = eh.e_phentsize, e->phnum = eh.e_phnum, e->phoff = eh.e_phoff;
		e->entry = eh.e_entry;
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, f, sizeof eh);
		e->machine = eh.e_machine, phentsize = eh.e_phentsize, e->phnum = eh.e_phnum, e->phoff = eh.e_phoff;
		e->entry = eh.e_entry;
	}
	if (e->machine != EM_X86_64 && e->machine != EM_386)
		return fail(err, errlen, "kernel %s: ELF machine %u is not x86 (EM_386 or EM_X86_64)", path, e->machine);
	size_t want_phent = e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (e->phnum == 0 || phentsize != want_phent)
		return fail(err, errlen, "kernel %s: bad program header table (%u entries of %u bytes)", path, e->phnum,
			    phentsize);
	if (!fits(e->phoff, (uint64_t)e->phnum * phentsize, len))
		return fail(err, errlen, "kernel %s is truncated: program headers at 0x%" PRIx64
			    " (%u x %u bytes) lie past the end of the file (%zu bytes)", path, e->phoff, e->phnum,
			    phentsize, len);
	return 0;
}

int blvm_elf_check_segments(struct blvm_vm *vm, const struct blvm_boot_files *bf, struct blvm_elf *e,
			    uint64_t avoid_lo, uint64_t avoid_hi, char *err, size_t errlen)
{
	const char *path = bf->path;
	unsigned loads = 0;
	e->low = UINT64_MAX;
	e->high = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		struct phdr p;
		get_phdr(bf->f, e->is64, e->phoff, i, &p);
		if (p.type != PT_LOAD)
			continue;
		loads++;
		if (!fits(p.offset, p.filesz, bf->len))
			return fail(err, errlen, "kernel %s is truncated: segment %u (file offset 0x%" PRIx64 ", 0x%" PRIx64
				    " bytes) lies past the end of the file (%zu bytes)", path, i, p.offset, p.filesz,
				    bf->len);
		if (p.filesz > p.memsz)
			return fail(err, errlen, "kernel %s: segment %u has more file bytes (0x%" PRIx64
				    ") than memory bytes (0x%" PRIx64 ")", path, i, p.filesz, p.memsz);
		if (!fits(p.paddr, p.memsz, UINT64_MAX) || !blvm_gpa(vm, p.paddr, p.memsz))
			return fail(err, errlen, "kernel %s: segment %u (physical 0x%" PRIx64 "-0x%" PRIx64
				    ") lies outside guest RAM (%" PRIu64 " MiB); raise --mem or relink the kernel", path, i,
				    p.paddr, p.paddr + p.memsz, vm->cfg.mem_size >> 20);
		if (p.memsz && p.paddr < avoid_hi && p.paddr + p.memsz > avoid_lo)
			return fail(err, errlen, "kernel %s: segment %u (physical 0x%" PRIx64 "-0x%" PRIx64
				    ") overlaps the boot information blvm places at 0x%" PRIx64 "-0x%" PRIx64, path, i,
				    p.paddr, p.paddr + p.memsz, avoid_lo, avoid_hi);
		if (p.memsz && p.paddr < e->low)
			e->low = p.paddr;
		if (p.memsz && p.paddr + p.memsz > e->high)
			e->high = p.paddr + p.memsz;
	}
	if (loads == 0 || e->high == 0)
		return fail(err, errlen, "kernel %s has no loadable segment", path);
	return 0;
}

void blvm_elf_copy_segments(struct blvm_vm *vm, const struct blvm_boot_files *bf, const struct blvm_elf *e)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		struct phdr p;
		get_phdr(bf->f, e->is64, e->phoff, i, &p);
		if (p.type != PT_LOAD)
			continue;
		uint8_t *dst = blvm_gpa(vm, p.paddr, p.memsz); /* checked by blvm_elf_check_segments */
		memcpy(dst, bf->f + p.offset, p.filesz);
		memset(dst + p.filesz, 0, p.memsz - p.filesz);
	}
}

void blvm_elf_load_symbols(struct blvm_vm *vm, const struct blvm_boot_files *bf)
{
	/* The symbol table is optional: a kernel whose table is broken still boots, as under QEMU, and
	 * reports show bare addresses; say so once rather than drop the names silently. */
	char why[128];
	if (blvm_symtab_load(&vm->syms, bf->f, bf->len, why, sizeof why) != 0)
		snprintf(vm->syms_warning, sizeof vm->syms_warning,
			 "kernel %s: symbol table ignored (%s); reports will show addresses only", bf->path, why);
}

int blvm_pvh_load(struct blvm_vm *vm, const struct blvm_boot_files *bf, char *err, size_t errlen)
{
	const char *path = bf->path;
	struct blvm_elf e;
	if (blvm_elf_parse(bf, &e, err, errlen) != 0)
		return -1;

	/* Check every header and find the entry before touching guest RAM; the missing note
	 * first, since it is what a non-PVH ELF file (a Linux bzImage's vmlinux, a program) lacks. */
	uint64_t entry = 0;
	int found = 0;
	for (unsigned i = 0; i < e.phnum && !found; i++) {
		struct phdr p;
		get_phdr(bf->f, e.is64, e.phoff, i, &p);
		if (p.type == PT_NOTE) {
			found = find_pvh_note(bf->f, bf->len, &p, &entry, err, errlen);
			if (found < 0)
				return -1;
		}
	}
	if (!found)
		return fail(err, errlen, "kernel %s has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); blvm boots PVH "
			    "ELF kernels, bzImages and Multiboot kernels, as qemu-system-x86_64 -kernel does", path);
	if (blvm_elf_check_segments(vm, bf, &e, PVH_START_INFO_GPA, PVH_INFO_END, err, errlen) != 0)
		return -1;
	if (!blvm_gpa(vm, entry, 1))
		return fail(err, errlen, "kernel %s: PVH entry 0x%" PRIx64 " lies outside guest RAM", path, entry);

	/* The initrd as QEMU places it for a PVH kernel (hw/i386/x86.c, x86_load_linux): the highest
	 * page-aligned address below the top of the RAM under 4 GiB (QEMU also keeps SeaBIOS's ACPI
	 * area there free; blvm's tables live in the BIOS area instead). */
	uint64_t initrd_gpa = 0;
	if (bf->initrd_path) {
		uint64_t initrd_max = vm->ram_below_4g - 1;
		if (bf->initrd_size >= initrd_max)
			return fail(err, errlen, "initrd %s is %" PRIu64 " bytes, more than the %" PRIu64
				    " MiB of guest RAM below 4 GiB; raise --mem", bf->initrd_path, bf->initrd_size,
				    vm->ram_below_4g >> 20);
		initrd_gpa = (initrd_max - bf->initrd_size) & ~0xfffull;
		if (initrd_gpa < e.high && initrd_gpa + bf->initrd_size > e.low)
			return fail(err, errlen, "initrd %s (%" PRIu64 " bytes at 0x%" PRIx64 ") would overlap the kernel "
				    "(0x%" PRIx64 "-0x%" PRIx64 "); raise --mem", bf->initrd_path, bf->initrd_size,
				    initrd_gpa, e.low, e.high);
		if (initrd_gpa < PVH_INFO_END)
			return fail(err, errlen, "initrd %s (%" PRIu64 " bytes) does not fit in guest RAM; raise --mem",
				    bf->initrd_path, bf->initrd_size);
		if (blvm_boot_read_initrd(vm, bf, initrd_gpa, err, errlen) != 0)
			return -1;
	}
	blvm_elf_copy_segments(vm, bf, &e);
	vm->boot = (struct blvm_boot_entry){ .mode = BLVM_ENTRY_PROTECTED32, .format = "PVH", .rip = entry,
					     .rbx = PVH_START_INFO_GPA };
	/* An empty initrd is no module: QEMU's PVH option ROM (pc-bios/optionrom/pvh_main.c) lists the
	 * initrd only when its size is nonzero. */
	write_start_info(vm, initrd_gpa, bf->initrd_size, bf->initrd_path != NULL && bf->initrd_size != 0);
	blvm_elf_load_symbols(vm, bf);
	return 0;
}
