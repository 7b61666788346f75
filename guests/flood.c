/* SPDX-License-Identifier: MIT */
/*
 * flood: floods the console with N lines (N from the command line, default 20000) of a
 * checkable pattern, then a last line without a newline, and exits 0. The monitor must
 * lose nothing: the test counts and checks every byte.
 */
#include "rt.h"

int guest_main(void)
{
	unsigned n = 0;
	for (const char *s = rt_cmdline(); *s >= '0' && *s <= '9'; s++)
		n = n * 10 + (unsigned)(*s - '0');
	if (n == 0)
		n = 20000;
	for (unsigned i = 0; i < n; i++)
		rt_printf("line %u of %u: abcdefghijklmnopqrstuvwxyz0123456789\n", i, n);
	rt_puts("end without newline");
	return 0;
}
