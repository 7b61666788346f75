/* SPDX-License-Identifier: MIT */
/*
 * Kernel loaders: one dispatch (boot.c) recognises the kernel file by its contents in QEMU's order
 * (hw/i386/x86.c, x86_load_linux: a bzImage header, then a Multiboot v1 header, then an ELF with the
 * PVH note), one memory map (memmap.c) feeds every format's boot information, and one function
 * (blvm_boot_set_entry_state) puts each vCPU in the state the format's entry expects.
 *
 * Low-memory layout of the boot information (all in the RAM below the EBDA, which the kernel may
 * reuse once it has read it):
 *   0x0500  GDT for the 64-bit bzImage entry (__BOOT_CS 0x10, __BOOT_DS 0x18)
 *   0x6000  PVH: struct hvm_start_info, its memory map, its module list
 *   0x7000  the command line (PVH and bzImage), at most 4 KiB with the NUL
 *   0x8000  bzImage: struct boot_params (the "zero page")
 *   0x9000  bzImage: identity page tables, PML4 0x9000, PDPT 0xa000, PDs 0xb000-0xefff (0-4 GiB)
 *   0x9000  Multiboot: the memory map; 0x9500 the multiboot information (QEMU's addresses,
 *           hw/i386/multiboot.c ADDR_E820_MAP / ADDR_MBI)
 */
#ifndef BLVM_BOOT_H
#define BLVM_BOOT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "vmm/vmm.h"

#define BOOT_GDT_GPA 0x500ull
#define BOOT_CMDLINE_GPA PVH_CMDLINE_GPA
#define BOOT_CMDLINE_MAX PVH_CMDLINE_MAX /* bytes, including the NUL */
#define BZ_ZERO_PAGE_GPA 0x8000ull
#define BZ_PML4_GPA 0x9000ull
#define BZ_PDPT_GPA 0xa000ull
#define BZ_PD_GPA 0xb000ull        /* four page directories, 2 MiB pages: 0-4 GiB */
#define BZ_PT_END 0xf000ull
#define MB_MMAP_GPA 0x9000ull
#define MB_INFO_GPA 0x9500ull
#define MB_INFO_END 0xa000ull

#define KERNEL_FILE_MAX (1ull << 30) /* a kernel file larger than 1 GiB is certainly not one */

/* E820 types (ACPI 6.5, 15.1 "INT 15H, E820H"), shared by every format's memory map. */
#define E820_RAM 1
#define E820_RESERVED 2

struct blvm_e820 {
	uint64_t addr, size;
	uint32_t type;
};
#define BLVM_MEMMAP_MAX 8

/* memmap.c: the PC memory map for mem bytes of RAM, lowest address first; returns the count. */
unsigned blvm_memmap(uint64_t mem, struct blvm_e820 *map, unsigned max);
/* RAM below the 32-bit hole (QEMU pc: all of it below 0xe0000000 bytes, else 3 GiB). */
uint64_t blvm_ram_below_4g(uint64_t mem);

/* The kernel file and the initrd, opened and checked by boot.c for the format loaders. */
struct blvm_boot_files {
	const char *path;
	const uint8_t *f;       /* the whole kernel file */
	size_t len;
	const char *initrd_path;/* NULL: no --initrd */
	int initrd_fd;
	uint64_t initrd_size;
};

/* pvh.c: the ELF file's headers, checked (shared by the PVH and the Multiboot ELF loaders). */
struct blvm_elf {
	bool is64;
	uint16_t machine, phnum;
	uint64_t phoff, entry;    /* e_entry */
	uint64_t low, high;       /* extent of the PT_LOAD segments (after check_segments) */
};
int blvm_elf_parse(const struct blvm_boot_files *bf, struct blvm_elf *e, char *err, size_t errlen);
/* Every PT_LOAD lies in the file and in guest RAM, and outside [avoid_lo, avoid_hi). */
int blvm_elf_check_segments(struct blvm_vm *vm, const struct blvm_boot_files *bf, struct blvm_elf *e,
			    uint64_t avoid_lo, uint64_t avoid_hi, char *err, size_t errlen);
void blvm_elf_copy_segments(struct blvm_vm *vm, const struct blvm_boot_files *bf, const struct blvm_elf *e);
void blvm_elf_load_symbols(struct blvm_vm *vm, const struct blvm_boot_files *bf);

/* Each format's loader: fills guest RAM and vm->boot, or returns -1 with one line in err. */
int blvm_pvh_load(struct blvm_vm *vm, const struct blvm_boot_files *bf, char *err, size_t errlen);
int blvm_bzimage_load(struct blvm_vm *vm, const struct blvm_boot_files *bf, char *err, size_t errlen);
int blvm_multiboot_load(struct blvm_vm *vm, const struct blvm_boot_files *bf, char *err, size_t errlen);
/* Recognition, as x86_load_linux checks them. */
bool blvm_is_bzimage(const uint8_t *f, size_t len);
/* bzimage.c: the ELF vmlinux inside a bzImage: its compressed payload (payload_offset and
 * payload_length, boot protocol 2.08+) unpacked -- LZ4 (the kernel's legacy frame), gzip, xz, legacy
 * LZMA, zstd, bzip2 or LZO (lzop's format): every format of the kernel's own decompressors. The
 * output is exactly the size the build appended to the payload (size_append), which must lie
 * between 64 bytes and max (BLVM_VMLINUX_MAX; a fuzzer gives less): no input, however hostile, makes
 * it allocate more. A malloc'ed buffer, or -1 with one line in err (another format, a malformed
 * payload, a size out of bounds or not the one unpacked). */
#define BLVM_VMLINUX_MAX (1ull << 30)
int blvm_bzimage_vmlinux(const uint8_t *f, size_t len, size_t max, uint8_t **out, size_t *outlen, char *err,
			 size_t errlen);
/* Offset of a Multiboot v1 header with a valid checksum in the first 8 KiB, or -1. */
long blvm_multiboot_find(const uint8_t *f, size_t len);

/* boot.c: reads the initrd into guest RAM at gpa (the caller checked the range is RAM). */
int blvm_boot_read_initrd(struct blvm_vm *vm, const struct blvm_boot_files *bf, uint64_t gpa, char *err,
			  size_t errlen);
/* boot.c: printf into err; returns -1. */
/* Reads the whole regular file path (what names it in messages: "kernel", "--kernel-btf") into a
 * buffer of its own, at most KERNEL_FILE_MAX bytes, released by blvm_boot_free_file(). 0, or -1 with
 * one line in err. */
int blvm_boot_read_file(const char *what, const char *path, uint8_t **out, size_t *len, char *err, size_t errlen);
void blvm_boot_free_file(uint8_t *f, size_t len);
int blvm_boot_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
