/* SPDX-License-Identifier: MIT */
/* Constants shared by the runtime's assembly and C (preprocessor definitions only). */
#ifndef BLVM_GUEST_RT_ASM_H
#define BLVM_GUEST_RT_ASM_H

/* Selectors of the runtime's GDT (entry.S). */
#define RT_SEL_CODE64 0x08
#define RT_SEL_DATA 0x10
#define RT_SEL_CODE32 0x18

/* Per-CPU stacks: one today; SMP will raise RT_MAX_CPUS and index by APIC ID. */
#define RT_STACK_SIZE 0x10000
#define RT_MAX_CPUS 1

/* Each interrupt stub is padded to this many bytes, so stub N is at rt_isr_stubs + N * 16. */
#define RT_ISR_STUB_SIZE 16

#endif
