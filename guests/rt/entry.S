/* SPDX-License-Identifier: MIT */
/*
 * PVH entry (Xen docs/misc/pvh.pandoc): the loader starts us at the address in the
 * XEN_ELFNOTE_PHYS32_ENTRY note in 32-bit flat protected mode, paging off, interrupts off,
 * ebx = physical address of struct hvm_start_info. No stack is promised and the loader's GDT
 * may live in memory we are about to use, so we load our own GDT first and use no stack until
 * we have one.
 *
 * Then: long mode (SDM Vol. 3A 9.8.5 "Initializing IA-32e Mode": CR4.PAE, CR3, EFER.LME,
 * CR0.PG), identity map of 0-4 GiB with 2 MiB pages, zero .bss, stack, rt_start().
 * Only plain integer instructions: a young software CPU must run this.
 *
 * SMP (guests/README.md, "SMP"): only the BSP enters here; the other vCPUs wait for INIT and
 * SIPI, as on hardware (SDM Vol. 3 9.4). The BSP learns, in registers only, the vCPU count
 * (blvm's hypervisor leaves 0x40000000/0x40000001; anything else means one vCPU), does all the
 * one-time work: it stores the start info, zeroes .bss, builds the IDT, picks the AP stacks,
 * sets rt_smp_go (in .data, so zeroing .bss cannot touch it), copies rt_trampoline below 1 MiB
 * and sends each AP INIT-SIPI-SIPI (rt.c). An AP starts there in real mode, enters 32-bit
 * protected mode on the shared GDT, learns its index (CPUID.1:EBX[31:24], the initial APIC ID),
 * then loads CR3, enters long mode on its own stack and runs rt_ap_start() (rt.c).
 */
#include "rt_asm.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)
#define CR0_PE (1 << 0)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_PS 0x80

/* ds es ss fs gs = the runtime's flat data segment (32- and 64-bit code alike). */
.macro LOAD_DATA_SEGMENTS
	movl $RT_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
.endm

/* From 32-bit protected mode: CR4.PAE, CR3 = the static identity map, EFER.LME (and NXE),
 * CR0.PG. Clobbers eax, ebx, ecx, edx; keeps esi, edi, ebp. */
.macro ENABLE_LONG_MODE
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $rt_pml4, %eax
	movl %eax, %cr3

	/* EFER.NXE only where CPUID.80000001H:EDX[20] says NX exists: setting it elsewhere is #GP. */
	movl $0x80000000, %eax
	cpuid
	xorl %ebx, %ebx
	cmpl $0x80000001, %eax
	jb 2f
	movl $0x80000001, %eax
	cpuid
	xorl %ebx, %ebx
	testl $(1 << 20), %edx
	jz 2f
	movl $EFER_NXE, %ebx
2:	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	orl %ebx, %eax
	wrmsr

	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
.endm

/* The PVH entry note (ELF gABI note: namesz, descsz, type, "Xen\0", 4-byte entry). The linker
 * script puts this section alone in the PT_NOTE segment, 4-byte aligned. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long rt_entry32

	.section .text.entry, "ax", @progbits
	.code32
	.globl rt_entry32
	.type rt_entry32, @function
rt_entry32:
	cli
	cld
	/* Registers only until we have a stack: ebp = start info, esi = count (0: not blvm's leaves;
	 * rt.c asks QEMU's fw_cfg). */
	movl %ebx, %ebp
	xorl %esi, %esi
	movl $RT_CPUID_HV_SIGNATURE, %eax
	xorl %ecx, %ecx
	cpuid
	cmpl $RT_BLVM_SIG, %ebx
	jne 1f
	cmpl $RT_BLVM_SIG, %ecx
	jne 1f
	cmpl $RT_BLVM_SIG, %edx
	jne 1f
	cmpl $RT_CPUID_HV_INFO, %eax
	jb 1f
	movl $RT_CPUID_HV_INFO, %eax
	xorl %ecx, %ecx
	cpuid
	movl %eax, %esi
	testl %esi, %esi		/* a count of 0 makes no sense: one vCPU */
	jnz 0f
	movl $1, %esi
0:	cmpl $RT_MAX_CPUS, %esi
	jbe 1f
	movl $RT_MAX_CPUS, %esi
1:	/* The BSP (the only vCPU that starts here). */
	movl %ebp, rt_start_info_paddr
	movl %esi, rt_ncpus
	lgdtl rt_gdt_desc
	ljmpl $RT_SEL_CODE32, $1f
1:	LOAD_DATA_SEGMENTS
	ENABLE_LONG_MODE
	ljmpl $RT_SEL_CODE64, $rt_entry64
	.size rt_entry32, . - rt_entry32

	.code64
	.globl rt_entry64
	.type rt_entry64, @function
rt_entry64:
	LOAD_DATA_SEGMENTS

	/* Zero .bss (the linker script aligns both ends to 8); the stack is in it, so do it
	 * before the first push. */
	movq $__bss_start, %rdi
	movq $__bss_end, %rcx
3:	cmpq %rcx, %rdi
	jae 4f
	movq $0, (%rdi)
	addq $8, %rdi
	jmp 3b
4:
	movq $(rt_stacks + RT_STACK_SIZE), %rsp
	xorl %ebp, %ebp
	call rt_start
5:	cli
	hlt
	jmp 5b
	.size rt_entry64, . - rt_entry64

/*
 * The AP start-up code. The BSP copies [rt_trampoline, rt_trampoline_end) to RT_TRAMPOLINE_PAGE
 * (below 1 MiB, page-aligned: a SIPI's vector names the page, SDM Vol. 3 9.4.4.1) and SIPIs the
 * AP there: real mode, CS = vector << 8, IP = 0, the rest in the INIT state (SDM Vol. 3 Table
 * 10-1: CR0 = 60000010H, caches disabled). The code addresses its own bytes through CS (they
 * moved) and everything else by its absolute link address (it did not).
 */
	.section .rodata.trampoline, "a", @progbits
	.code16
	.balign 16
	.globl rt_trampoline
rt_trampoline:
	cli
	cld
	lgdtl %cs:(rt_trampoline_gdt_desc - rt_trampoline)
	/* CR0 = PE alone: protected mode, and CD/NW of the INIT state cleared (SDM Vol. 3 11.5.3:
	 * caching on), so the AP's memory is write-back as the BSP's */
	movl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $RT_SEL_CODE32, $rt_ap_entry32
	.balign 8
rt_trampoline_gdt_desc:
	.word rt_gdt_end - rt_gdt - 1
	.long rt_gdt
	.globl rt_trampoline_end
rt_trampoline_end:

/*
 * An AP from the trampoline, in 32-bit protected mode on the runtime's GDT, no stack. Registers
 * only: edi = index (CPUID.1:EBX[31:24], the initial APIC ID), esi = count. The BSP set
 * rt_smp_go before the SIPI, so the flag only guards against a stray start; an index the
 * runtime has no room for, or not below the count, parks here for good.
 */
	.section .text.entry, "ax", @progbits
	.code32
	.type rt_ap_entry32, @function
rt_ap_entry32:
	LOAD_DATA_SEGMENTS
	movl $1, %eax
	xorl %ecx, %ecx
	cpuid
	shrl $24, %ebx
	movl %ebx, %edi
	movl rt_ncpus, %esi
	cmpl %esi, %edi
	jae 7f
	cmpl $RT_MAX_CPUS, %edi
	jae 7f
6:	pause
	cmpl $0, rt_smp_go	/* TSO: once we see it set we see everything the BSP wrote before */
	je 6b
	ENABLE_LONG_MODE
	ljmpl $RT_SEL_CODE64, $rt_ap_entry64
7:	cli
	hlt
	jmp 7b
	.size rt_ap_entry32, . - rt_ap_entry32

	.code64
	.type rt_ap_entry64, @function
rt_ap_entry64:
	LOAD_DATA_SEGMENTS
	/* AP k's stack is [base + (k-1) * size, base + k * size); rt_start() chose base. */
	movl %edi, %eax
	imulq $RT_AP_STACK_SIZE, %rax, %rax
	addq rt_ap_stack_base, %rax
	movq %rax, %rsp
	xorl %ebp, %ebp
	call rt_ap_start	/* edi = index: the first argument */
8:	cli
	hlt
	jmp 8b
	.size rt_ap_entry64, . - rt_ap_entry64

	.data
	.balign 16
	.globl rt_start_info_paddr
rt_start_info_paddr:
	.quad 0
	/* SMP state the APs read before the BSP has zeroed .bss, hence in .data. */
	.globl rt_ap_stack_base
rt_ap_stack_base:
	.quad 0
	.globl rt_ncpus
rt_ncpus:
	.long 1
	.globl rt_smp_go
rt_smp_go:
	.long 0

	/* Flat segments; accessed bits preset so loading a selector never writes the GDT. */
	.balign 16
	.globl rt_gdt
rt_gdt:
	.quad 0
	.quad 0x00af9b000000ffff	/* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf93000000ffff	/* 0x10: flat data, 4 GiB */
	.quad 0x00cf9b000000ffff	/* 0x18: 32-bit flat code, 4 GiB */
rt_gdt_end:
	.balign 16
	.globl rt_gdt_desc
rt_gdt_desc:
	.word rt_gdt_end - rt_gdt - 1
	.quad rt_gdt

/*
 * Identity map of 0-4 GiB: PML4[0] -> PDPT, PDPT[0..3] -> four page directories of 512
 * 2 MiB pages each (SDM Vol. 3A 4.5, Table 4-17). Built by the assembler so the entry code
 * does no loop; no 1 GiB pages, which not every CPU has.
 */
	.section .data.pagetables, "aw", @progbits
	.balign 4096
	.globl rt_pml4
rt_pml4:
	.quad rt_pdpt + (PTE_P | PTE_RW)
	.fill 511, 8, 0
	.globl rt_pdpt
rt_pdpt:
	.quad rt_pd + 0x0000 + (PTE_P | PTE_RW)
	.quad rt_pd + 0x1000 + (PTE_P | PTE_RW)
	.quad rt_pd + 0x2000 + (PTE_P | PTE_RW)
	.quad rt_pd + 0x3000 + (PTE_P | PTE_RW)
	.fill 508, 8, 0
	.globl rt_pd
rt_pd:
	.set i, 0
	.rept 2048
	.quad (i << 21) | (PTE_P | PTE_RW | PTE_PS)
	.set i, i + 1
	.endr

	.bss
	.balign 16
	.globl rt_stacks
rt_stacks:
	.skip RT_STACK_SIZE		/* the BSP's; the APs' are above the image (rt.c) */

	.section .note.GNU-stack, "", @progbits
