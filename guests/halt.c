/* SPDX-License-Identifier: MIT */
/* halt: halts with interrupts disabled; nothing can wake it, so the monitor must end the VM. */
#include "rt.h"

int guest_main(void)
{
	rt_puts("halting with interrupts off\n");
	cli();
	hlt();
	rt_puts("woke up?!\n");
	return 1;
}
