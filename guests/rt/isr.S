/* SPDX-License-Identifier: MIT */
/*
 * 256 interrupt stubs and the common path into rt_trap() (rt.c).
 *
 * The CPU pushes SS, RSP, RFLAGS, CS, RIP and, for some exceptions, an error code (SDM Vol. 3A
 * 6.14.2, Table 6-1: vectors 8, 10-14, 17, 21, 29, 30). Stubs of the other vectors push a zero
 * in its place so every frame has the same shape (struct rt_frame in rt.h). Each stub is padded
 * to RT_ISR_STUB_SIZE bytes so the IDT can be filled by arithmetic.
 */
#include "rt_asm.h"

	.text
	.balign RT_ISR_STUB_SIZE
	.globl rt_isr_stubs
rt_isr_stubs:
	.set vec, 0
	.rept 256
	.balign RT_ISR_STUB_SIZE
	.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp rt_isr_common
	.set vec, vec + 1
	.endr

	.type rt_isr_common, @function
rt_isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %cr2, %rax
	pushq %rax
	movq %rsp, %rdi		/* struct rt_frame * */
	movq %rsp, %rbx		/* callee-saved: the frame, to come back to */
	andq $-16, %rsp		/* the SysV ABI wants a 16-byte aligned stack at the call */
	cld			/* ... and DF clear */
	call rt_trap
	movq %rbx, %rsp
	addq $8, %rsp		/* cr2 */
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp		/* vector, error code */
	iretq
	.size rt_isr_common, . - rt_isr_common

	.section .note.GNU-stack, "", @progbits
