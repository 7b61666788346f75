/* SPDX-License-Identifier: MIT */
/*
 * sse: code built with the compiler's default floating-point and vector instructions (SSE2, and
 * -msse4.2 -mpclmul for the rest: guests/sse/kern.c) plus x87 long double and MMX, printing the bit
 * patterns of every result. Its console must be the same under blvm's emu engine and under QEMU
 * TCG (tests/sh/guest-sse.sh): a float kernel, rounding modes, DAZ/FTZ, conversions, SSE2 string
 * routines as glibc writes them, SSSE3/SSE4.1/SSE4.2 (PSHUFB, PTEST, DPPS, ROUNDPD, PCMPISTRI,
 * CRC32, POPCNT), PCLMULQDQ, x87 extended precision, MMX.
 *
 * This file is built like every guest (-mgeneral-regs-only): it enables SSE for the OS (CR4.OSFXSR,
 * OSXMMEXCPT; SDM Vol. 3 13.1.3) before any SSE instruction can run, then calls the kernels.
 * Command line: an optional decimal repeat count (default 1): the kernels run that many times (for
 * timing against QEMU); the lines are printed by the first round, the checksum covers all.
 */
#include "rt.h"

void sse_kernels(int print);
uint64_t sse_sum(void);

int guest_main(void)
{
	uint64_t cr0, cr4;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr0 = (cr0 & ~(1ull << 2)) | (1ull << 1) | (1ull << 5); /* EM=0, MP=1, NE=1 */
	cr4 |= (1ull << 9) | (1ull << 10);                       /* OSFXSR, OSXMMEXCPT */
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
	__asm__ volatile("fninit");
	unsigned rounds = 0;
	for (const char *p = rt_cmdline(); p && *p >= '0' && *p <= '9'; p++)
		rounds = rounds * 10 + (unsigned)(*p - '0');
	if (!rounds)
		rounds = 1;
	for (unsigned k = 0; k < rounds; k++)
		sse_kernels(k == 0);
	rt_printf("sse: %u rounds, checksum %016lx\n", rounds, sse_sum());
	return 0;
}
