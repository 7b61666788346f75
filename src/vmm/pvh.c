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
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blvm/file.h"
#include "vmm/vmm.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u
#define KERNEL_FILE_MAX (1ull << 30) /* a PVH kernel larger than 1 GiB is certainly not one */

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

#define E820_RAM 1
#define E820_RESERVED 2

/* A uniform view of ELF32 and ELF64 program headers. */
struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* a + b <= limit, without overflow. */
static int read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	int fd = blvm_open_input(path, "kernel", err, errlen); /* never blocks; regular files only */
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, "cannot stat kernel %s: %s", path, strerror(e));
	}
	if ((uint64_t)st.st_size > KERNEL_FILE_MAX) {
		close(fd);
		return fail(err, errlen, "kernel %s is %lld bytes; blvm loads kernels up to 1 GiB", path,
			    (long long)st.st_size);
	}
	*len = (size_t)st.st_size;
	*buf = malloc(*len ? *len : 1);
	if (!*buf) {
		close(fd);
		return fail(err, errlen, "out of memory reading kernel %s", path);
	}
	size_t got = 0;
	while (got < *len) {
		ssize_t n = read(fd, *buf + got, *len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			free(*buf);
			return fail(err, errlen, "cannot read kernel %s: %s", path, strerror(e));
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
}

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

static void write_start_info(struct blvm_vm *vm)
{
	uint8_t *ram = vm->ram;
	uint64_t mem = vm->cfg.mem_size;
	/* The memory map a PC guest expects (as QEMU's): conventional memory below the EBDA at
	 * 0x9fc00, the legacy hole reserved, RAM from 1 MiB to the end. */
	struct hvm_memmap_table_entry map[] = {
		{ 0, 0x9fc00, E820_RAM, 0 },
		{ 0x9fc00, 0x400, E820_RESERVED, 0 },
		{ 0xf0000, 0x10000, E820_RESERVED, 0 },
		{ 0x100000, mem - 0x100000, E820_RAM, 0 },
	};
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = PVH_CMDLINE_GPA,
		.memmap_paddr = PVH_START_INFO_GPA + sizeof si,
		.memmap_entries = sizeof map / sizeof map[0],
	};
	memcpy(ram + PVH_START_INFO_GPA, &si, sizeof si);
	memcpy(ram + si.memmap_paddr, map, sizeof map);
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	memcpy(ram + PVH_CMDLINE_GPA, cmdline, strlen(cmdline) + 1);
}

int blvm_pvh_load(struct blvm_vm *vm, char *err, size_t errlen)
{
	const char *path = vm->cfg.kernel_path;
	uint8_t *f = NULL;
	size_t len = 0;
	if (vm->cfg.cmdline && strlen(vm->cfg.cmdline) >= PVH_CMDLINE_MAX)
		return fail(err, errlen, "guest command line is %zu bytes; the limit is %llu",
			    strlen(vm->cfg.cmdline), PVH_CMDLINE_MAX - 1);
	if (read_file(path, &f, &len, err, errlen) != 0)
		return -1;

	int rc = -1;
	if (len < EI_NIDENT || memcmp(f, ELFMAG, SELFMAG) != 0) {
		fail(err, errlen, "kernel %s is not an ELF file (bad magic); blvm boots PVH ELF kernels", path);
		goto out;
	}
	bool is64 = f[EI_CLASS] == ELFCLASS64;
	if (f[EI_CLASS] != ELFCLASS32 && !is64) {
		fail(err, errlen, "kernel %s: unknown ELF class %u", path, f[EI_CLASS]);
		goto out;
	}
	if (f[EI_DATA] != ELFDATA2LSB) {
		fail(err, errlen, "kernel %s: not a little-endian ELF file", path);
		goto out;
	}
	size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (len < ehsize) {
		fail(err, errlen, "kernel %s is truncated: %zu bytes, shorter than its ELF header (%zu)",
		     path, len, ehsize);
		goto out;
	}
	uint16_t machine, phentsize, phnum;
	uint64_t phoff;
	if (is64) {
		Elf64_Ehdr eh;
		memcpy(&eh, f, sizeof eh);
		machine = eh.e_machine, phentsize = eh.e_phentsize, phnum = eh.e_phnum, phoff = eh.e_phoff;
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, f, sizeof eh);
		machine = eh.e_machine, phentsize = eh.e_phentsize, phnum = eh.e_phnum, phoff = eh.e_phoff;
	}
	if (machine != EM_X86_64 && machine != EM_386) {
		fail(err, errlen, "kernel %s: ELF machine %u is not x86 (EM_386 or EM_X86_64)", path, machine);
		goto out;
	}
	size_t want_phent = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (phnum == 0 || phentsize != want_phent) {
		fail(err, errlen, "kernel %s: bad program header table (%u entries of %u bytes)", path, phnum,
		     phentsize);
		goto out;
	}
	if (!fits(phoff, (uint64_t)phnum * phentsize, len)) {
		fail(err, errlen, "kernel %s is truncated: program headers at 0x%" PRIx64
		     " (%u x %u bytes) lie past the end of the file (%zu bytes)", path, phoff, phnum, phentsize, len);
		goto out;
	}

	/* Check every header and find the entry before touching guest RAM; the missing note
	 * first, since it is what a non-PVH ELF file (a Linux bzImage's vmlinux, a program) lacks. */
	uint64_t entry = 0;
	int found = 0;
	unsigned loads = 0;
	for (unsigned i = 0; i < phnum && !found; i++) {
		struct phdr p;
		get_phdr(f, is64, phoff, i, &p);
		if (p.type == PT_NOTE) {
			found = find_pvh_note(f, len, &p, &entry, err, errlen);
			if (found < 0)
				goto out;
		}
	}
	if (!found) {
		fail(err, errlen, "kernel %s has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
		     "blvm boots PVH kernels, as qemu-system-x86_64 -kernel does", path);
		goto out;
	}
	for (unsigned i = 0; i < phnum; i++) {
		struct phdr p;
		get_phdr(f, is64, phoff, i, &p);
		if (p.type != PT_LOAD)
			continue;
		loads++;
		if (!fits(p.offset, p.filesz, len)) {
			fail(err, errlen, "kernel %s is truncated: segment %u (file offset 0x%" PRIx64 ", 0x%" PRIx64
			     " bytes) lies past the end of the file (%zu bytes)", path, i, p.offset, p.filesz, len);
			goto out;
		}
		if (p.filesz > p.memsz) {
			fail(err, errlen, "kernel %s: segment %u has more file bytes (0x%" PRIx64
			     ") than memory bytes (0x%" PRIx64 ")", path, i, p.filesz, p.memsz);
			goto out;
		}
		if (!fits(p.paddr, p.memsz, vm->cfg.mem_size)) {
			fail(err, errlen, "kernel %s: segment %u (physical 0x%" PRIx64 "-0x%" PRIx64
			     ") lies outside guest RAM (%" PRIu64 " MiB); raise --mem or relink the kernel", path, i,
			     p.paddr, p.paddr + p.memsz, vm->cfg.mem_size >> 20);
			goto out;
		}
		if (p.memsz && p.paddr < PVH_INFO_END && p.paddr + p.memsz > PVH_START_INFO_GPA) {
			fail(err, errlen, "kernel %s: segment %u (physical 0x%" PRIx64 "-0x%" PRIx64
			     ") overlaps the boot information blvm places at 0x%llx-0x%llx", path, i, p.paddr,
			     p.paddr + p.memsz, PVH_START_INFO_GPA, PVH_INFO_END);
			goto out;
		}
	}
	if (loads == 0) {
		fail(err, errlen, "kernel %s has no loadable segment", path);
		goto out;
	}
	if (entry >= vm->cfg.mem_size) {
		fail(err, errlen, "kernel %s: PVH entry 0x%" PRIx64 " lies outside guest RAM", path, entry);
		goto out;
	}

	for (unsigned i = 0; i < phnum; i++) {
		struct phdr p;
		get_phdr(f, is64, phoff, i, &p);
		if (p.type != PT_LOAD)
			continue;
		memcpy(vm->ram + p.paddr, f + p.offset, p.filesz);
		memset(vm->ram + p.paddr + p.filesz, 0, p.memsz - p.filesz);
	}
	vm->entry = entry;
	write_start_info(vm);
	/* The symbol table is optional: a kernel whose table is broken still boots, as under QEMU, and
	 * reports show bare addresses; say so once rather than drop the names silently. */
	char why[128];
	if (blvm_symtab_load(&vm->syms, f, len, why, sizeof why) != 0)
		snprintf(vm->syms_warning, sizeof vm->syms_warning,
			 "kernel %s: symbol table ignored (%s); reports will show addresses only", path, why);
	rc = 0;
out:
	free(f);
	return rc;
}
