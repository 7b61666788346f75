/* SPDX-License-Identifier: MIT */
/*
 * The bzImage variant of the runtime's entry: the 64-bit entry point of Linux's 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL"), at the protected-mode image's start +
 * 0x200 (the linker script puts .text.bzentry there). The loader enters it in long mode with the
 * image identity-mapped, its own GDT (__BOOT_CS 0x10), interrupts off and RSI = the zero page. It
 * notes the zero page, moves to the runtime's own GDT and page tables, and joins the PVH path in
 * long mode (rt_entry64), with no start_info; rt.c builds one from the zero page. Linked only into
 * the NAME-bz guests, which guests/rt/mkbzimage.py wraps in a setup header.
 */
#include "rt_asm.h"

	.section .text.bzentry, "ax", @progbits
	.code64
	.globl rt_bz_entry64
	.type rt_bz_entry64, @function
rt_bz_entry64:
	cli
	cld
	movq %rsi, rt_boot_params_paddr
	/* boot.rst promises no stack: borrow the BSP's (rt_entry64 zeroes it with .bss, then starts
	 * afresh on it). */
	movq $(rt_stacks + RT_STACK_SIZE), %rsp
	lgdt rt_gdt_desc
	pushq $RT_SEL_CODE64
	pushq $1f
	lretq
1:	movq $rt_pml4, %rax
	movq %rax, %cr3
	jmp rt_entry64
	.size rt_bz_entry64, . - rt_bz_entry64

	/* In .data: the entry writes it before .bss is zeroed. bootfmt.c reads both; the other
	 * variant's stays 0. */
	.data
	.balign 8
	.globl rt_boot_params_paddr, rt_mb_info_paddr
rt_boot_params_paddr:
	.quad 0
rt_mb_info_paddr:
	.quad 0

	.section .note.GNU-stack, "", @progbits
