/* SPDX-License-Identifier: MIT */
/* hello-min: one line and exit 0; its output is the same under every engine and QEMU. */
#include "rt.h"

int guest_main(void)
{
	rt_puts("Hello from a blvm guest!\n");
	return RT_EXIT_OK;
}
