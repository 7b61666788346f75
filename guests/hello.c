/* SPDX-License-Identifier: MIT */
/* hello: the first guest. Prints a greeting, the command line and the memory map; exits 0. */
#include "rt.h"

int guest_main(void)
{
	rt_puts("Hello from a blvm guest!\n");
	rt_printf("cmdline: \"%s\"\n", rt_cmdline());
	unsigned n = rt_memmap_count();
	rt_printf("memmap: %u entries\n", n);
	for (unsigned i = 0; i < n; i++) {
		const struct hvm_memmap_table_entry *e = rt_memmap_entry(i);
		rt_printf("  0x%lx 0x%lx type %u\n", e->addr, e->size, e->type);
	}
	return RT_EXIT_OK;
}
