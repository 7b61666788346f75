/* SPDX-License-Identifier: MIT */
/*
 * exc-pf: an unhandled #PF. 0x5000000000 (320 GiB) is above the runtime's 4 GiB identity map:
 * its PDPT entry is not present, so the read faults with error code 0 (not present, read,
 * supervisor; SDM Vol. 3A 4.7) and CR2 = the address. The runtime prints
 *   blvm-rt: exception 14 (#PF) error=0x0 rip=0x... cr2=0x5000000000
 * and exits with status 3.
 */
#include "rt.h"

#define UNMAPPED 0x5000000000ull

int guest_main(void)
{
	rt_printf("reading 0x%llx\n", UNMAPPED);
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)UNMAPPED;
	uint64_t v = *p;
	rt_printf("read 0x%lx without a fault\n", v);
	return RT_EXIT_FAIL;
}
