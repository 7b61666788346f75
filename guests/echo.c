/* SPDX-License-Identifier: MIT */
/*
 * echo: prints "echo: ready", then copies every byte COM1 receives back to COM1, polling LSR.DR
 * (bit 0) as a driver without interrupts does, until it receives EOT (0x04, Ctrl-D); then prints
 * "echo: N bytes" on a line of its own and exits 0. Under blvm the bytes are blvm's stdin.
 */
#include "rt.h"

#define LSR_DR 0x01

int guest_main(void)
{
	rt_puts("echo: ready\n");
	unsigned long n = 0;
	for (;;) {
		while (!(inb(RT_COM1 + 5) & LSR_DR))
			__asm__ volatile("pause");
		uint8_t b = inb(RT_COM1 + 0);
		if (b == 0x04)
			break;
		rt_putc((char)b);
		n++;
	}
	rt_printf("\necho: %lu bytes\n", n);
	return 0;
}
