/* SPDX-License-Identifier: MIT */
/*
 * unclaimed: touches ports and physical addresses no device claims. Reads must return all ones
 * (an unterminated ISA bus, unbacked physical memory); writes must not stop the VM. Expects
 * guest RAM to end below 3 GiB (the default 128M) so that 0xc0000000 is not RAM.
 * Exits 0 when every read is all ones, 1 otherwise. The ports are ones no blvm device claims
 * (0x80: POST codes; 0x2f8: COM2, absent; 0xcfc: PCI configuration data, no PCI host). `inw`
 * and `outw` at 0x60 are not unclaimed: 0x60 is the i8042's, 0x61 the engine's (its PIT).
 */
#include "rt.h"

#define MMIO_ADDR 0xc0000000ull

int guest_main(void)
{
	int bad = 0;
	uint8_t b = inb(0x80);
	uint16_t w = inw(0x2f8);
	uint32_t l = inl(0xcfc);
	rt_printf("port reads: 0x%x 0x%x 0x%x\n", b, w, l);
	bad |= b != 0xff || w != 0xffff || l != 0xffffffffu;
	/* the i8042's 0x60 and the engine's 0x61 (its PIT): every byte has an owner, none is
	 * unclaimed (src/dev/engine_ports.c) */
	(void)inw(0x60);
	outw(0x60, 0x00ff);
	outb(0x80, 0x12);   /* POST code port */
	outw(0x2f8, 0x3456);
	outl(0xcfc, 0x80000000u);

	volatile uint8_t *p8 = (volatile uint8_t *)MMIO_ADDR;
	volatile uint32_t *p32 = (volatile uint32_t *)(MMIO_ADDR + 0x100);
	volatile uint64_t *p64 = (volatile uint64_t *)(MMIO_ADDR + 0x200);
	uint8_t m8 = *p8;
	uint32_t m32 = *p32;
	uint64_t m64 = *p64;
	rt_printf("mmio reads: 0x%x 0x%x 0x%lx\n", m8, m32, m64);
	bad |= m8 != 0xff || m32 != 0xffffffffu || m64 != ~0ull;
	*p8 = 1;
	*p32 = 2;
	rt_puts(bad ? "unclaimed: FAIL\n" : "unclaimed: ok\n");
	return bad;
}
