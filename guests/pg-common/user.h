/* SPDX-License-Identifier: MIT */
/*
 * CPL 3 for the guests that need it (pg-us, sys-user): a GDT with DPL-3 segments and a 64-bit TSS,
 * a trip to CPL 3 by IRETQ (user_call) and the ways back to CPL 0.
 *
 * Include after pg.h, from exactly one file of a guest (it defines global symbols in assembly).
 *
 * GDT (the runtime's first four entries unchanged, so its selectors stay valid):
 *   0x08 64-bit code DPL 0, 0x10 data DPL 0, 0x18 32-bit code DPL 0,
 *   0x20 data DPL 3 (user SS 0x23), 0x28 64-bit code DPL 3 (user CS 0x2b), 0x30 TSS (RSP0 = kstack).
 * The order suits SYSRET: STAR[63:48] = 0x18 gives CS = 0x18+16 | 3, SS = 0x18+8 | 3 (SDM SYSRET).
 */
#ifndef BLVM_GUEST_PG_USER_H
#define BLVM_GUEST_PG_USER_H

#include "pg.h"

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x23 /* GDT index 4, RPL 3 */
#define SEL_UCODE 0x2b /* GDT index 5, RPL 3 */
#define SEL_TSS 0x30   /* GDT index 6-7 */

#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_FMASK 0xc0000084u

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};
_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS is 104 bytes");

static struct tss64 user_tss __attribute__((aligned(16)));
static uint8_t user_kstack[16384] __attribute__((aligned(16)));
static uint64_t user_gdt[8] __attribute__((aligned(16))) = {
	0,
	0x00af9b000000ffffull, /* 0x08 64-bit code, DPL 0 (as the runtime's) */
	0x00cf93000000ffffull, /* 0x10 flat data, DPL 0 */
	0x00cf9b000000ffffull, /* 0x18 32-bit code, DPL 0 */
	0x00cff3000000ffffull, /* 0x20 flat data, DPL 3 */
	0x00affb000000ffffull, /* 0x28 64-bit code, DPL 3 */
	0, 0,                  /* 0x30 TSS, filled in by user_load_tables() */
};

/* Loads the GDT above (reloading CS, DS, ES, SS) and TR. */
static __attribute__((unused)) void user_load_tables(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&user_tss, limit = sizeof user_tss - 1;
	user_tss.rsp[0] = (uint64_t)(uintptr_t)(user_kstack + sizeof user_kstack);
	user_tss.iomap_base = sizeof user_tss; /* no I/O bitmap */
	/* System-segment descriptor (SDM Vol. 3A 7.2.3, Figure 7-4): type 9 = available 64-bit TSS, P=1. */
	user_gdt[6] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 | ((limit >> 16) & 0xf) << 48 |
		      ((base >> 24) & 0xff) << 56;
	user_gdt[7] = base >> 32;
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} gdtr = { sizeof user_gdt - 1, (uint64_t)(uintptr_t)user_gdt };
	__asm__ volatile("lgdt %0\n\t"
			 "pushq $0x08\n\t"
			 "lea 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1: movl $0x10, %%eax\n\t"
			 "movl %%eax, %%ds\n\t"
			 "movl %%eax, %%es\n\t"
			 "movl %%eax, %%ss\n\t"
			 "movw $0x30, %%ax\n\t"
			 "ltr %%ax"
			 :
			 : "m"(gdtr)
			 : "rax", "memory");
}

/* Sets the DPL of gate v in the runtime's IDT (found by SIDT). */
static __attribute__((unused)) void user_set_gate_dpl(unsigned v, unsigned dpl)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr;
	__asm__ volatile("sidt %0" : "=m"(idtr));
	volatile uint8_t *attr = (volatile uint8_t *)(uintptr_t)(idtr.base + v * 16 + 5);
	*attr = (uint8_t)((*attr & ~0x60) | (dpl << 5));
}

/*
 * user_call(entry, a0, a1): IRETQ to entry at CPL 3 with RDI = a0, RSI = a1, RSP = user_stack_top,
 * RFLAGS = 0x2 (interrupts off), CS = 0x2b, SS = 0x23. It comes back at user_return with RAX = the
 * result, sent there by syscall_entry (SYSCALL, with LSTAR = syscall_entry) or by a C handler that
 * calls user_leave() (a fault, #UD, INT n). Callee-saved registers survive the trip.
 *
 * user_sysret(entry, rflags): the same trip by SYSRETQ (RCX = entry, R11 = rflags).
 */
__asm__(".text\n"
	".globl user_call, user_sysret, user_return, syscall_entry\n"
	"user_call:\n"
	"	pushq %rbx\n	pushq %rbp\n	pushq %r12\n	pushq %r13\n	pushq %r14\n	pushq %r15\n"
	"	movq %rsp, user_kernel_rsp(%rip)\n"
	"	movq %rdi, %rax\n"
	"	movq %rsi, %rdi\n"
	"	movq %rdx, %rsi\n"
	"	pushq $0x23\n"
	"	pushq user_stack_top(%rip)\n"
	"	pushq $0x2\n"
	"	pushq $0x2b\n"
	"	pushq %rax\n"
	"	xorl %eax, %eax\n	xorl %edx, %edx\n	xorl %ecx, %ecx\n	xorl %r11d, %r11d\n"
	"	iretq\n"
	"user_sysret:\n"
	"	pushq %rbx\n	pushq %rbp\n	pushq %r12\n	pushq %r13\n	pushq %r14\n	pushq %r15\n"
	"	movq %rsp, user_kernel_rsp(%rip)\n"
	"	movq %rdi, %rcx\n"
	"	movq %rsi, %r11\n"
	"	xorl %eax, %eax\n	xorl %edx, %edx\n	xorl %esi, %esi\n	xorl %edi, %edi\n"
	"	movq user_stack_top(%rip), %rsp\n"
	"	sysretq\n"
	"syscall_entry:\n" /* CPL 0, still on the user stack; RCX = user RIP, R11 = user RFLAGS */
	"	movq %rcx, user_sys_rcx(%rip)\n"
	"	movq %r11, user_sys_r11(%rip)\n"
	"	movq %rdx, user_sys_rdx(%rip)\n"
	"	movl %cs, %edx\n"
	"	movq %rdx, user_sys_kcs(%rip)\n"
	"	movl %ss, %edx\n"
	"	movq %rdx, user_sys_kss(%rip)\n"
	"	pushfq\n" /* on the user stack: CPL 0 may write user pages (no SMAP) */
	"	popq user_sys_kflags(%rip)\n"
	"	incq user_syscalls(%rip)\n"
	"user_return:\n"
	"	movq user_kernel_rsp(%rip), %rsp\n"
	/* Going to CPL 3 nulled DS/ES/FS/GS (DPL 0 < CPL 3; SDM IRET pseudo-code): reload them. */
	"	movl $0x10, %ecx\n	movl %ecx, %ds\n	movl %ecx, %es\n	movl %ecx, %fs\n	movl %ecx, %gs\n"
	"	popq %r15\n	popq %r14\n	popq %r13\n	popq %r12\n	popq %rbp\n	popq %rbx\n"
	"	ret\n");
extern char user_return[], syscall_entry[];
uint64_t user_call(uint64_t entry, uint64_t a0, uint64_t a1);
uint64_t user_sysret(uint64_t entry, uint64_t rflags);

/* Used by the assembly above (hence not static). */
uint64_t user_kernel_rsp, user_stack_top, user_syscalls;
/* What syscall_entry saw: RCX, R11 and RDX as the user left them; CS, SS and RFLAGS at CPL 0. */
uint64_t user_sys_rcx, user_sys_r11, user_sys_rdx, user_sys_kcs, user_sys_kss, user_sys_kflags;

/* Makes the frame's IRETQ land on user_return at CPL 0 (RAX as the frame has it). */
static __attribute__((unused)) void user_leave(struct rt_frame *f)
{
	f->rip = (uint64_t)(uintptr_t)user_return;
	f->cs = SEL_KCODE;
	f->ss = SEL_KDATA;
	f->rsp = user_kernel_rsp;
	f->rflags = 0x2;
}

/* What the handlers below saw. */
static volatile uint64_t user_ud_count, user_ud_cs, user_ud_rip;

/* A fault that must come from CPL 3: recorded in pg_last, back to the kernel with RAX = PG_SENTINEL. */
static __attribute__((unused)) void user_fault(struct rt_frame *f)
{
	if ((f->cs & 3) != 3) {
		rt_printf("FAIL unexpected exception %lu (#%s) at CPL 0 error=0x%lx rip=0x%lx cr2=0x%lx\n", f->vector,
			  rt_exception_mnemonic((unsigned)f->vector), f->error, f->rip, f->cr2);
		rt_exit(RT_EXIT_FAIL);
	}
	pg_last.n++;
	pg_last.vector = f->vector;
	pg_last.error = f->error;
	pg_last.cr2 = f->cr2;
	pg_last.rip = f->rip;
	pg_last.cs = f->cs;
	f->rax = PG_SENTINEL;
	user_leave(f);
}

/* #UD from CPL 3 is how a user routine says "done" (its result in RAX). */
static __attribute__((unused)) void user_ud(struct rt_frame *f)
{
	if ((f->cs & 3) != 3) {
		rt_printf("FAIL unexpected #UD at CPL 0 rip=0x%lx\n", f->rip);
		rt_exit(RT_EXIT_FAIL);
	}
	user_ud_count++;
	user_ud_cs = f->cs;
	user_ud_rip = f->rip;
	user_leave(f);
}

/* Forgets what the handlers saw. */
static __attribute__((unused)) void user_reset(void)
{
	pg_last.n = 0;
	pg_last.vector = pg_last.error = pg_last.cr2 = pg_last.rip = pg_last.cs = ~0ull;
	user_syscalls = 0;
	user_sys_rdx = user_sys_rcx = user_sys_r11 = user_sys_kcs = user_sys_kss = user_sys_kflags = ~0ull;
	user_ud_count = 0;
	user_ud_cs = user_ud_rip = ~0ull;
}

#endif
