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
		ifd = memfd_with("initrd", NULL, 0, initrd_size);
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
