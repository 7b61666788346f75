/* SPDX-License-Identifier: MIT */
/*
 * exc-ud: an unhandled #UD. The runtime's default handler prints
 *   blvm-rt: exception 6 (#UD) error=0x0 rip=0x<address of the ud2> cr2=0x...
 * and exits with status 3.
 */
#include "rt.h"

int guest_main(void)
{
	rt_puts("executing ud2\n");
	__asm__ volatile("ud2");
	rt_puts("ud2 did not fault\n");
	return RT_EXIT_FAIL;
}
