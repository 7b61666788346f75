/* SPDX-License-Identifier: MIT */
/*
 * The one loader dispatch and the one entry-state decision.
 *
 * `blvm run [--initrd=FILE] KERNEL [-- CMDLINE]` loads what `qemu-system-x86_64 -kernel KERNEL -initrd
 * FILE -append CMDLINE` loads. The kernel is recognised by its contents in QEMU's order
 * (hw/i386/x86.c, x86_load_linux): the bzImage setup header ("HdrS" at 0x202), then a Multiboot v1
 * header in the first 8 KiB, then an ELF file with the PVH note. Anything else is refused.
 *
 * Files are opened with O_NONBLOCK and checked with fstat before anything is read, so a FIFO, a
 * device or a directory given as the kernel or the initrd is refused at once instead of blocking
 * (issue 15, item 6).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blvm/file.h"
#include "boot/boot.h"

int blvm_boot_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Opens path through the one open helper (blvm/file.h: never blocks, regular files only); fd and size. */
static int open_regular(const char *what, const char *path, int *fd, uint64_t *size, char *err, size_t errlen)
{
	*fd = blvm_open_input(path, what, err, errlen);
	if (*fd < 0)
		return -1;
	struct stat st;
	if (fstat(*fd, &st) != 0) {
		int e = errno;
		close(*fd);
		return blvm_boot_fail(err, errlen, "cannot stat %s %s: %s", what, path, strerror(e));
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Reads exactly len bytes from fd into buf. */
static int read_all(int fd, uint8_t *buf, uint64_t len)
{
	uint64_t got = 0;
	while (got < len) {
		size_t chunk = len - got > (1u << 30) ? (1u << 30) : (size_t)(len - got);
		ssize_t n = read(fd, buf + got, chunk);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file shrank under us */
		got += (uint64_t)n;
	}
	return 0;
}

int blvm_boot_read_initrd(struct blvm_vm *vm, const struct blvm_boot_files *bf, uint64_t gpa, char *err,
			  size_t errlen)
{
	uint8_t *dst = blvm_gpa(vm, gpa, bf->initrd_size);
	if (!dst)
		return blvm_boot_fail(err, errlen, "initrd %s (%" PRIu64 " bytes) does not fit at 0x%" PRIx64
				      " in guest RAM", bf->initrd_path, bf->initrd_size, gpa);
	int r = read_all(bf->initrd_fd, dst, bf->initrd_size);
	if (r < 0)
		return blvm_boot_fail(err, errlen, "cannot read initrd %s: %s", bf->initrd_path, strerror(-r));
	return 0;
}

int blvm_boot_read_file(const char *what, const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	int fd;
	uint64_t size;
	*out = NULL;
	if (open_regular(what, path, &fd, &size, err, errlen) != 0)
		return -1;
	if (size > KERNEL_FILE_MAX) {
		close(fd);
		return blvm_boot_fail(err, errlen, "%s %s is %" PRIu64 " bytes; blvm loads kernels up to 1 GiB",
				      what, path, size);
	}
	/* A buffer of its own (not the file mapped: a file truncated while it is read would raise
	 * SIGBUS), its pages allocated in one go by MAP_POPULATE: read() of a 53 MB vmlinux into
	 * malloc'ed memory, a page fault per 4 KiB, took 192 ms on this host (a test program); here
	 * the populated mapping took 12 ms and the read into it 107 ms (strace -T, a loaded host). */
	void *f = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (f == MAP_FAILED) {
		int e = errno;
		close(fd);
		return blvm_boot_fail(err, errlen, "cannot allocate %" PRIu64 " bytes to read %s %s: %s", size, what,
				      path, strerror(e));
	}
	int r = read_all(fd, f, size);
	close(fd);
	if (r < 0) {
		munmap(f, size ? size : 1);
		return blvm_boot_fail(err, errlen, "cannot read %s %s: %s", what, path, strerror(-r));
	}
	*out = f;
	*len = (size_t)size;
	return 0;
}

void blvm_boot_free_file(uint8_t *f, size_t len)
{
	if (f)
		munmap(f, len ? len : 1);
}

/* --kernel-symbols: a System.map replaces the kernel file's symbols. Its addresses are the link-time
 * ones; the KASLR offset follows at run time from IA32_LSTAR, which Linux sets to entry_SYSCALL_64
 * (arch/x86/kernel/cpu/common.c, syscall_init), so the map must name that symbol. */
static int load_system_map(struct blvm_vm *vm, char *err, size_t errlen)
{
	const char *path = vm->cfg.kernel_symbols_path;
	uint8_t *f;
	size_t len;
	char why[160];
	if (blvm_boot_read_file("--kernel-symbols", path, &f, &len, err, errlen) != 0)
		return -1;
	struct blvm_symtab t;
	int r = blvm_symtab_load_map(&t, f, len, why, sizeof why);
	blvm_boot_free_file(f, len);
	if (r != 0)
		return blvm_boot_fail(err, errlen, "--kernel-symbols=%s: %s", path, why);
	uint64_t anchor;
	if (blvm_symtab_find(&t, "entry_SYSCALL_64", &anchor) != 0) {
		blvm_symtab_free(&t);
		return blvm_boot_fail(err, errlen, "--kernel-symbols=%s: no entry_SYSCALL_64 (not the System.map of "
				      "an x86-64 Linux kernel?)", path);
	}
	blvm_symtab_free(&vm->syms);
	vm->syms = t;
	vm->syms_warning[0] = '\0'; /* the kernel file's table, broken or not, is not used */
	vm->syms_map = true;
	vm->syms_anchor = anchor;
	return 0;
}

int blvm_boot_load(struct blvm_vm *vm, char *err, size_t errlen)
{
	struct blvm_boot_files bf = { .path = vm->cfg.kernel_path, .initrd_path = vm->cfg.initrd_path,
				      .initrd_fd = -1 };
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	if (strlen(cmdline) >= BOOT_CMDLINE_MAX)
		return blvm_boot_fail(err, errlen, "guest command line is %zu bytes; the limit is %llu",
				      strlen(cmdline), BOOT_CMDLINE_MAX - 1);
	uint8_t *f;
	size_t flen;
	if (blvm_boot_read_file("kernel", bf.path, &f, &flen, err, errlen) != 0)
		return -1;
	bf.f = f;
	bf.len = flen;
	int rc = -1;
	if (bf.initrd_path && open_regular("initrd", bf.initrd_path, &bf.initrd_fd, &bf.initrd_size, err, errlen) != 0) {
		bf.initrd_fd = -1;
		goto out;
	}
	/* The guest kernel's type information, for naming the guest's processes in bus-lock reports. */
	if (blvm_tasks_setup(vm, f, bf.len, blvm_is_bzimage(f, bf.len), err, errlen) != 0)
		goto out;
	/* An empty initrd is accepted as QEMU accepts it: a size-0 ramdisk or module (no PVH module). */
	if (blvm_is_bzimage(f, bf.len))
		rc = blvm_bzimage_load(vm, &bf, err, errlen);
	else if (blvm_multiboot_find(f, bf.len) >= 0)
		rc = blvm_multiboot_load(vm, &bf, err, errlen);
	else
		rc = blvm_pvh_load(vm, &bf, err, errlen);
	if (rc == 0 && vm->cfg.kernel_symbols_path)
		rc = load_system_map(vm, err, errlen);
out:
	if (bf.initrd_fd >= 0)
		close(bf.initrd_fd);
	blvm_boot_free_file(f, flen);
	return rc;
}

/*
 * The one place that decides a vCPU's entry state, from what the loader chose.
 *   32-bit (PVH: Xen docs/misc/pvh.pandoc, "x86/HVM direct boot ABI"; Multiboot 0.6.96, 3.2 "Machine
 *   state"): protected mode, paging off, flat 4 GiB read/execute CS and read/write DS/ES/FS/GS/SS, a
 *   32-bit TSS in TR, CR0.PE (and ET) set and every other writable CR0/CR4 bit clear, EFLAGS with IF
 *   clear; PVH: EBX = hvm_start_info; Multiboot: EAX = 0x2BADB002, EBX = the multiboot information.
 *   64-bit (Linux Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL"): long mode with paging on
 *   and the kernel, zero page and command line identity-mapped (the loader's tables at BZ_PML4_GPA
 *   map 0-4 GiB), a GDT with flat __BOOT_CS (0x10, execute/read) and __BOOT_DS (0x18, read/write),
 *   CS = __BOOT_CS, DS/ES/SS = __BOOT_DS, interrupts off, RSI = the zero page.
 */
int blvm_boot_set_entry_state(struct blvm_vm *vm, struct blvm_vcpu *c, char *err, size_t errlen)
{
	const struct blvm_boot_entry *e = &vm->boot;
	struct kvm_sregs s;
	int r = vm->ops->get_sregs(c->ev, &s);
	if (r < 0)
		goto fail;
	bool lm = e->mode == BLVM_ENTRY_LONG64;
	struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = lm ? 0x10 : 0x8, .type = 0xb,
				    .present = 1, .dpl = 0, .db = lm ? 0 : 1, .s = 1, .l = lm, .g = 1 };
	struct kvm_segment data = { .base = 0, .limit = 0xffffffff, .selector = lm ? 0x18 : 0x10, .type = 0x3,
				    .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1 };
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	/* Type 11: a busy TSS, 32-bit in protected mode, 64-bit in long mode (VM entry requires it). */
	s.tr = (struct kvm_segment){ .base = 0, .limit = 0x67, .selector = lm ? 0 : 0x18, .type = 0xb,
				     .present = 1, .s = 0 };
	if (lm) {
		s.gdt.base = BOOT_GDT_GPA;
		s.gdt.limit = 4 * 8 - 1;
		s.cr0 = 0x80000011; /* PG | ET | PE */
		s.cr3 = e->cr3;
		s.cr4 = 0x20;       /* PAE */
		s.efer = 0x500;     /* LMA | LME */
	} else {
		s.cr0 = 0x11;       /* PE | ET */
		s.cr3 = 0;
		s.cr4 = 0;
		s.efer = 0;
	}
	r = vm->ops->set_sregs(c->ev, &s);
	if (r < 0)
		goto fail;
	struct kvm_regs regs = { .rip = e->rip, .rflags = 0x2, .rax = e->rax, .rbx = e->rbx, .rsi = e->rsi };
	r = vm->ops->set_regs(c->ev, &regs);
	if (r < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s engine: cannot set the %s entry state of vCPU %u: %s", vm->ops->name,
		 e->format ? e->format : "boot", c->id, strerror(-r));
	return -1;
}
