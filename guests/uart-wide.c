/* SPDX-License-Identifier: MIT */
/*
 * uart-wide: wide port writes that run past COM1's last register (0x3ff). The bytes beyond it go
 * where port 0x400 goes (nothing: unclaimed), never round into THR: `outl(0x3fd, ...)` must not
 * print, nor `outw(0x3ff, ...)`. The bytes that land on COM1 registers do land: SCR (0x3ff) takes
 * them. Prints "uart-wide: ok" and exits 0, or says what printed or read wrong and exits 1.
 */
#include "rt.h"

int guest_main(void)
{
	rt_puts("uart-wide: start\n");
	outl(RT_COM1 + 5, 0x41424344u); /* LSR (ignored), MSR (ignored), SCR = 0x42, then 0x400: 'A' */
	uint8_t scr1 = inb(RT_COM1 + 7);
	outw(RT_COM1 + 7, 0x4546);      /* SCR = 0x46, then 0x400: 'E' */
	uint8_t scr2 = inb(RT_COM1 + 7);
	uint32_t l = inl(RT_COM1 + 6);  /* MSR, SCR, then 0x400 and 0x401: all ones */
	rt_printf("\nscr 0x%x 0x%x, inl(0x3fe) 0x%x\n", scr1, scr2, l);
	bool ok = scr1 == 0x42 && scr2 == 0x46 && (l & 0xffff0000u) == 0xffff0000u && ((l >> 8) & 0xff) == 0x46;
	rt_puts(ok ? "uart-wide: ok\n" : "uart-wide: FAIL\n");
	return ok ? 0 : 1;
}
