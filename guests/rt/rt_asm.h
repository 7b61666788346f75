/* SPDX-License-Identifier: MIT */
/* Constants shared by the runtime's assembly and C (preprocessor definitions only). */
#ifndef BLVM_GUEST_RT_ASM_H
#define BLVM_GUEST_RT_ASM_H

/* Selectors of the runtime's GDT (entry.S). */
#define RT_SEL_CODE64 0x08
#define RT_SEL_DATA 0x10
#define RT_SEL_CODE32 0x18

/* Stacks: the BSP's (RT_STACK_SIZE) is in .bss; with more than one vCPU, each AP k (1..N-1)
 * takes RT_AP_STACK_SIZE bytes of RAM above the image (guests/README.md, "SMP"). */
#define RT_STACK_SIZE 0x10000
#define RT_AP_STACK_SIZE 0x10000
#define RT_MAX_CPUS 64
/* Where the BSP copies the APs' real-mode start-up code (entry.S rt_trampoline): the page after
 * the loaders' boot information and page tables (src/boot/boot.h: 0x500-0xefff), below 1 MiB as
 * a SIPI needs; SIPI vector = page >> 12. */
#define RT_TRAMPOLINE_PAGE 0xf000

/* blvm's hypervisor CPUID leaves: 0x40000000 EAX = max leaf, EBX ECX EDX = "blvmblvmblvm";
 * 0x40000001 EAX = number of vCPUs, EBX = ABI version. */
#define RT_CPUID_HV_SIGNATURE 0x40000000
#define RT_CPUID_HV_INFO 0x40000001
#define RT_BLVM_SIG 0x6d766c62 /* "blvm", little-endian */

/* Each interrupt stub is padded to this many bytes, so stub N is at rt_isr_stubs + N * 16. */
#define RT_ISR_STUB_SIZE 16

#endif
