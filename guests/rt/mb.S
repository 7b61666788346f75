/* SPDX-License-Identifier: MIT */
/*
 * The Multiboot v1 variant of the runtime's entry (Multiboot Specification 0.6.96, 3.1 "OS image
 * format", 3.2 "Machine state"): a header in the image's first 8 KiB, and an entry that the boot loader
 * enters in 32-bit flat protected mode, paging off, EAX = 0x2BADB002, EBX = the multiboot information.
 * It notes the information's address and continues at the PVH entry with no start_info (EBX = 0);
 * rt.c builds one from the multiboot information. Linked only into the NAME-mb guests (guests.mk),
 * which are converted to ELF32 as QEMU requires of a Multiboot ELF kernel.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit 0: modules page-aligned; bit 1: memory information wanted */

	.section .multiboot, "a", @progbits
	.balign 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	/* header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr: read only with flag 16 (the
	 * a.out kludge); zero here, so that tests/sh/boot-formats.sh can turn this image into an a.out-
	 * kludge kernel by patching them in. */
	.long 0, 0, 0, 0, 0

	.text
	.code32
	.globl rt_mb_entry32
	.type rt_mb_entry32, @function
rt_mb_entry32:
	cmpl $0x2BADB002, %eax
	jne 1f
	movl %ebx, rt_mb_info_paddr
1:	xorl %ebx, %ebx
	jmp rt_entry32
	.size rt_mb_entry32, . - rt_mb_entry32

	/* In .data: the entry writes it before .bss is zeroed. bootfmt.c reads both; the other
	 * variant's stays 0. */
	.data
	.balign 8
	.globl rt_mb_info_paddr, rt_boot_params_paddr
rt_mb_info_paddr:
	.quad 0
rt_boot_params_paddr:
	.quad 0

	.section .note.GNU-stack, "", @progbits
