/* SPDX-License-Identifier: MIT */
/*
 * Fuzz: the kernel loaders (src/boot/: the dispatch, bzImage, Multiboot, PVH ELF, the initrd's
 * placement, the memory map), through blvm_boot_load() as `blvm run` calls it, on any bytes as the
 * kernel file. Input: byte 0 picks the guest RAM (2-65 MiB: a split RAM, from 3.5 GiB, would let a
 * legitimate segment's memset touch gigabytes per run; tests/sh/boot-formats.sh covers it);
 * byte 1 whether there is an initrd (bit 0), the command line
 * (bits 1-2: none, short, the longest accepted, one byte too long) and the initrd's size shift
 * (bits 4-7); bytes 2-3 the initrd's size (<< shift, at most 64 MiB of zeros); the rest is the
 * kernel file. Kernel and initrd are memfds opened by name (/proc/self/fd/N), as any file is.
 *
 * The contract (issue 15): either a clear refusal (-1 and one line in err, the status-2 path of
 * `blvm run`) or a loaded image whose entry lies inside guest RAM, in the entry mode the format
 * gives; never an access outside the input or guest RAM: guest RAM lies between two inaccessible
 * guard pages, so a stray write past it faults, and ASan watches the file's buffer.
 *
 * And the boot information round-trips: read back as the kernel reads it, with this file's own
 * offsets from the specifications (the boot protocol's boot_params, Xen's hvm_start_info, Multiboot
 * 0.6.96's information structure), it gives the command line, the initrd (where it is, its size, its
 * first bytes: the harness tags them) and the memory map blvm_memmap() gives, and that map is a PC's:
 * sorted, disjoint, RAM adding up to --mem, none in the legacy hole or the 32-bit PCI hole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/boot.h"

#define PAGE 4096ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd_with(const char *name, const uint8_t *bytes, size_t len, uint64_t total)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (len && write(fd, bytes, len) != (ssize_t)len)
		abort();
	if (total > len && ftruncate(fd, (off_t)total) != 0)
		abort();
	return fd;
}

static const char initrd_tag[16] = "blvm-fuzz-initrd";

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Guest RAM at gpa, len bytes, or abort: the boot information must only point into RAM. */
static const uint8_t *ram_at(struct blvm_vm *vm, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = blvm_gpa(vm, gpa, len ? len : 1);
	if (!p)
		abort();
	return p;
}

/* The NUL-terminated string at gpa equals want. */
static void string_at(struct blvm_vm *vm, uint64_t gpa, const char *want)
{
	size_t n = strlen(want) + 1;
	if (memcmp(ram_at(vm, gpa, n), want, n) != 0)
		abort();
}

/* A memory map entry as read back, against blvm_memmap()'s entry k; and the map's PC shape. */
struct e820_check { uint64_t mem, ram, last_end; unsigned k, n; struct blvm_e820 m[BLVM_MEMMAP_MAX]; };

static void e820_begin(struct e820_check *c, uint64_t mem)
{
	*c = (struct e820_check){ .mem = mem };
	c->n = blvm_memmap(mem, c->m, BLVM_MEMMAP_MAX);
}

static void e820_entry(struct e820_check *c, uint64_t addr, uint64_t size, uint32_t type)
{
	if (c->k >= c->n || addr != c->m[c->k].addr || size != c->m[c->k].size || type != c->m[c->k].type)
		abort();
	c->k++;
	if (addr < c->last_end || size == 0)
		abort(); /* unsorted, overlapping or empty */
	c->last_end = addr + size;
	if (type == E820_RAM) {
		c->ram += size;
		uint64_t end = addr + size, below = blvm_ram_below_4g(c->mem);
		if ((addr < 0x100000 && end > 0xa0000) || (addr < (1ull << 32) && end > below))
			abort(); /* RAM in the legacy VGA/BIOS hole or the 32-bit PCI hole */
	}
}

static void e820_end(const struct e820_check *c)
{
	if (c->k != c->n || c->ram + (0xa0000 - 0x9fc00) + 0x60000 != c->mem)
		abort(); /* every entry given; RAM = --mem less the EBDA and 0xa0000-0xfffff */
}

/* The initrd as the boot information gives it: size, in RAM below 4 GiB, page aligned where the
 * format asks it, tagged. */
static void initrd_at(struct blvm_vm *vm, uint64_t gpa, uint64_t size, uint64_t want, bool aligned)
{
	if (size != want || (aligned && (gpa & 0xfff)) || gpa + size > vm->ram_below_4g)
		abort();
	if (want >= sizeof initrd_tag && memcmp(ram_at(vm, gpa, size), initrd_tag, sizeof initrd_tag) != 0)
		abort();
}

static void roundtrip(struct blvm_vm *vm, const uint8_t *kernel, size_t klen, const char *cmdline, bool initrd,
		      uint64_t initrd_size)
{
	const struct blvm_boot_entry *e = &vm->boot;
	struct e820_check c;
	e820_begin(&c, vm->cfg.mem_size);
	if (strcmp(e->format, "bzImage") == 0) {
		/* Documentation/arch/x86/zero-page.rst and boot.rst */
		const uint8_t *bp = ram_at(vm, e->rsi, 4096);
		for (unsigned i = 0; i < bp[0x1e8]; i++)
			e820_entry(&c, rd64(bp + 0x2d0 + 20 * i), rd64(bp + 0x2d8 + 20 * i), rd32(bp + 0x2e0 + 20 * i));
		e820_end(&c);
		string_at(vm, rd32(bp + 0x228) | (uint64_t)rd32(bp + 0x0c8) << 32, cmdline);
		uint64_t img = rd32(bp + 0x218) | (uint64_t)rd32(bp + 0x0c0) << 32;
		uint64_t sz = rd32(bp + 0x21c) | (uint64_t)rd32(bp + 0x0c4) << 32;
		if (initrd)
			initrd_at(vm, img, sz, initrd_size, true);
		else if (img || sz)
			abort();
		if (rd64(bp + 0x070) != vm->acpi_rsdp)
			abort();
	} else if (strcmp(e->format, "PVH") == 0) {
		/* xen/include/public/arch-x86/hvm/start_info.h */
		const uint8_t *si = ram_at(vm, e->rbx, 56);
		if (rd32(si) != 0x336ec578u || rd32(si + 4) < 1 || rd64(si + 32) != vm->acpi_rsdp)
			abort();
		uint64_t mm = rd64(si + 40);
		unsigned n = rd32(si + 48);
		if (n > BLVM_MEMMAP_MAX)
			abort();
		const uint8_t *t = ram_at(vm, mm, 24ull * n);
		for (unsigned i = 0; i < n; i++)
			e820_entry(&c, rd64(t + 24 * i), rd64(t + 24 * i + 8), rd32(t + 24 * i + 16));
		e820_end(&c);
		string_at(vm, rd64(si + 24), cmdline);
		/* an empty initrd is no module (boot.c, as QEMU's pvh_main.c: nothing to load) */
		bool module = initrd && initrd_size;
		if (rd32(si + 12) != (module ? 1u : 0u))
			abort();
		if (module) {
			const uint8_t *mod = ram_at(vm, rd64(si + 16), 32);
			initrd_at(vm, rd64(mod), rd64(mod + 8), initrd_size, true);
		}
	} else if (strcmp(e->format, "Multiboot") == 0) {
		/* Multiboot 0.6.96, 3.3 "Boot information format". The kernel's own bytes win over the
		 * information where the image lies on it (as QEMU's option ROM copies the image last):
		 * checked where the flags QEMU writes are still there. */
		const uint8_t *mbi = ram_at(vm, e->rbx, 72);
		if (rd32(mbi) != 0x24f)
			return;
		if (rd32(mbi + 20) != (initrd ? 1u : 0u))
			abort();
		if (initrd) {
			/* page-aligned modules only when the header's flags bit 0 asks (spec 3.1.2) */
			long h = blvm_multiboot_find(kernel, klen);
			bool align = h >= 0 && (rd32(kernel + h + 4) & 1);
			const uint8_t *mod = ram_at(vm, rd32(mbi + 24), 16);
			initrd_at(vm, rd32(mod), rd32(mod + 4) - rd32(mod), initrd_size, align);
		}
		/* the command line is "KERNEL-PATH ARGS", as QEMU passes it */
		char want[64 + BOOT_CMDLINE_MAX + 2];
		snprintf(want, sizeof want, "%s %s", vm->cfg.kernel_path, cmdline);
		string_at(vm, rd32(mbi + 16), want);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint64_t mem = (2ull + (data[0] & 0x3f)) << 20;
	bool initrd = data[1] & 1;
	unsigned cmd = (data[1] >> 1) & 3;
	uint64_t initrd_size = (uint64_t)(data[2] | data[3] << 8) << ((data[1] >> 4) % 11);
	const uint8_t *kernel = data + 4;
	size_t klen = size - 4;

	static char cmdline[BOOT_CMDLINE_MAX + 1];
	size_t cmdlen = cmd == 0 ? 0 : cmd == 1 ? 24 : cmd == 2 ? BOOT_CMDLINE_MAX - 1 : BOOT_CMDLINE_MAX;
	memset(cmdline, 'c', cmdlen);
	cmdline[cmdlen] = '\0';

	struct blvm_vm *vm = calloc(1, sizeof *vm);
	if (!vm)
		abort();
	uint8_t *m = mmap(NULL, mem + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED || mprotect(m + PAGE, mem, PROT_READ | PROT_WRITE) != 0)
		abort();
	vm->ram = m + PAGE;
	vm->cfg = (struct blvm_vm_config)BLVM_VM_CONFIG_DEFAULT;
	vm->cfg.mem_size = mem;
	vm->cfg.cmdline = cmd ? cmdline : NULL;
	vm->ram_below_4g = blvm_ram_below_4g(mem);
	vm->acpi_rsdp = BLVM_ACPI_RSDP_GPA;

	char kpath[64], ipath[64];
	int kfd = memfd_with("kernel", kernel, klen, klen);
	snprintf(kpath, sizeof kpath, "/proc/self/fd/%d", kfd);
	vm->cfg.kernel_path = kpath;
	int ifd = -1;
	if (initrd) {
		ifd = memfd_with("initrd", (const uint8_t *)initrd_tag,
				 initrd_size < sizeof initrd_tag ? 0 : sizeof initrd_tag, initrd_size);
		snprintf(ipath, sizeof ipath, "/proc/self/fd/%d", ifd);
		vm->cfg.initrd_path = ipath;
	}

	char err[512] = "";
	int rc = blvm_boot_load(vm, err, sizeof err);
	if (rc == 0) {
		const struct blvm_boot_entry *e = &vm->boot;
		if (!e->format || !blvm_gpa(vm, e->rip, 1))
			abort(); /* loaded, but the entry is not in guest RAM */
		if (e->mode == BLVM_ENTRY_LONG64) {
			/* the bzImage's page tables, zero page and GDT in RAM */
			if (e->cr3 != BZ_PML4_GPA || e->rsi != BZ_ZERO_PAGE_GPA || strcmp(e->format, "bzImage") != 0)
				abort();
		} else if (e->mode == BLVM_ENTRY_PROTECTED32) {
			if (e->rip > UINT32_MAX || !blvm_gpa(vm, e->rbx, 1))
				abort(); /* a 32-bit entry, and the boot information it is given */
		} else {
			abort();
		}
		if (cmd == 3)
			abort(); /* a command line over the limit was accepted */
		if (strchr(vm->syms_warning, '\n'))
			abort();
		roundtrip(vm, kernel, klen, cmd ? cmdline : "", initrd, initrd_size);
	} else {
		/* one line naming the problem */
		if (rc != -1 || !err[0] || strchr(err, '\n') || strlen(err) + 1 >= sizeof err)
			abort();
	}
	blvm_symtab_free(&vm->syms);
	if (ifd >= 0)
		close(ifd);
	close(kfd);
	munmap(m, mem + 2 * PAGE);
	free(vm);
	return 0;
}
