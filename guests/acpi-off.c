/* SPDX-License-Identifier: MIT */
/*
 * acpi-off: ends the machine the ways Linux does, chosen by the command line:
 *   poweroff  SLP_TYPa = 0 (the _S5 value of blvm's and QEMU's PIIX4 DSDT) with SLP_EN (bit 13)
 *             written to PM1a_CNT at 0x604 (ACPI 6.5, 4.8.3.2.1; 7.4.2)
 *   cf9       the FADT's RESET_REG: 0x06 to the reset control register at 0xcf9
 *   i8042     command 0xfe (pulse the CPU reset line) to the keyboard controller's port 0x64
 * Before that it reads the PM timer twice (it must run: 3.579545 MHz, 24 bits), and port 0x64 (the
 * i8042 must look idle: input buffer empty). Nothing should come after the write: if the machine
 * is still running 2 s later (by the PM timer) it prints "acpi-off: still running" and exits 1.
 * Under QEMU the PM registers are where SeaBIOS puts PIIX4's (0x600) when it runs before a -kernel
 * guest, so the guest runs there unchanged.
 */
#include "rt.h"

static bool streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

int guest_main(void)
{
	const char *how = rt_cmdline();
	uint32_t t0 = inl(0x608) & 0xffffff;
	for (volatile int i = 0; i < 200000; i++)
		;
	uint32_t t1 = inl(0x608) & 0xffffff;
	uint8_t kbc = inb(0x64);
	rt_printf("acpi-off: %s; pm timer %s; i8042 status input buffer %s\n", how,
		  t1 != t0 ? "runs" : "STOPPED", (kbc & 2) ? "FULL" : "empty");
	if (streq(how, "poweroff"))
		outw(0x604, (0 << 10) | (1 << 13));
	else if (streq(how, "cf9"))
		outb(0xcf9, 0x06);
	else if (streq(how, "i8042"))
		outb(0x64, 0xfe);
	else
		rt_puts("acpi-off: say poweroff, cf9 or i8042\n");
	/* Under QEMU the power-off or reset request is carried out by its main loop, a moment after
	 * the write: give it 2 s by the PM timer (24 bits, wrapping every 4.7 s) before saying so. */
	uint32_t prev = inl(0x608) & 0xffffff, waited = 0;
	while (waited < 2 * 3579545u) {
		uint32_t now = inl(0x608) & 0xffffff;
		waited += (now - prev) & 0xffffff;
		prev = now;
	}
	rt_puts("acpi-off: still running\n");
	return 1;
}
