/* SPDX-License-Identifier: MIT */
/* spin: prints one line, then loops forever — for --timeout and for stopping a busy VM. */
#include "rt.h"

int guest_main(void)
{
	rt_puts("spinning\n");
	for (;;)
		__asm__ volatile("" ::: "memory");
}
