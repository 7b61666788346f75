/* SPDX-License-Identifier: MIT */
/* exit42: the exit status travels from port 0xf4 to the monitor's exit status. */
#include "rt.h"

int guest_main(void)
{
	rt_puts("exiting with 42\n");
	rt_exit(42);
}
