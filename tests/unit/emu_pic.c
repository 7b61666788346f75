/* SPDX-License-Identifier: MIT */
/* The 8259A pair (src/emu/pic.c) against the Intel 8259A datasheet: ICWs, OCWs, priorities,
 * EOIs, cascade, ELCR, auto-EOI, poll; INTR through the BSP's LINT0 (virtual wire). */
#include "irq_harness.h"

static void out(struct emu_irqchip *chip, uint16_t port, uint8_t v) { emu_pic_ioport_write(chip, port, v); }
static uint8_t in(struct emu_irqchip *chip, uint16_t port) { return emu_pic_ioport_read(chip, port); }

static void init(struct emu_irqchip *chip, uint8_t icw4)
{
	out(chip, 0x20, 0x11); out(chip, 0x21, 0x20); out(chip, 0x21, 0x04); out(chip, 0x21, icw4);
	out(chip, 0xa0, 0x11); out(chip, 0xa1, 0x28); out(chip, 0xa1, 0x02); out(chip, 0xa1, icw4);
	out(chip, 0x21, 0x00); out(chip, 0xa1, 0x00);
}

static void pulse(struct emu_irqchip *chip, unsigned irq)
{
	emu_pic_set_irq(chip, irq, 1);
	emu_pic_set_irq(chip, irq, 0);
}

int main(void)
{
	struct emu_irqchip *chip = t_chip(1);
	init(chip, 0x01);
	CHECK(!emu_pic_intr(&chip->pic), "idle");
	/* an edge on IR0: INTR, and the BSP is told (LINT0 is ExtINT) */
	unsigned k0 = t_kicks[0];
	pulse(chip, 0);
	CHECK(emu_pic_intr(&chip->pic), "INTR after IR0");
	CHECK_EQ(t_kicks[0], k0 + 1);
	CHECK_EQ(emu_irqchip_peek(chip, 0), 0);
	CHECK_EQ(in(chip, 0x20), 0x01);            /* IRR (the read register after ICW1) */
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x20);  /* INTA: ICW2 base + 0 */
	out(chip, 0x20, 0x0b);                     /* OCW3: read ISR */
	CHECK_EQ(in(chip, 0x20), 0x01);
	out(chip, 0x20, 0x0a);                     /* OCW3: read IRR */
	CHECK_EQ(in(chip, 0x20), 0x00);            /* edge request consumed */
	/* IR1 has lower priority than IR0 in service: held until the EOI */
	pulse(chip, 1);
	CHECK(!emu_pic_intr(&chip->pic), "IR1 below IR0 in service");
	pulse(chip, 0);                            /* the same level again: not nested either */
	CHECK(!emu_pic_intr(&chip->pic), "IR0 in service blocks IR0");
	out(chip, 0x20, 0x20);                     /* non-specific EOI */
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x20);  /* IR0 first (highest priority) */
	out(chip, 0x20, 0x60);                     /* specific EOI, IR0 */
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x21);
	out(chip, 0x20, 0x20);
	CHECK(!emu_pic_intr(&chip->pic), "all served");
	/* mask (OCW1): the request is latched, INTR follows the unmask */
	out(chip, 0x21, 0x08);
	CHECK_EQ(in(chip, 0x21), 0x08);
	pulse(chip, 3);
	CHECK(!emu_pic_intr(&chip->pic), "masked");
	out(chip, 0x21, 0x00);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x23);
	out(chip, 0x20, 0x20);
	/* cascade: slave IR2 (IRQ 10) through the master's IR2 */
	pulse(chip, 10);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x2a);
	out(chip, 0xa0, 0x0b);
	CHECK_EQ(in(chip, 0xa0), 0x04);
	out(chip, 0x20, 0x0b);
	CHECK_EQ(in(chip, 0x20), 0x04);
	pulse(chip, 11);                           /* lower than 10 on the slave: waits */
	CHECK(!emu_pic_intr(&chip->pic), "slave IR3 below IR2 in service");
	out(chip, 0xa0, 0x20);
	out(chip, 0x20, 0x20);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x2b);
	out(chip, 0xa0, 0x20);
	out(chip, 0x20, 0x20);
	/* spurious: INTA with no request gives IR7 */
	CHECK_EQ(emu_pic_ack(chip), 0x27);
	/* level-triggered through ELCR1 bit 5 (IRQ 0-2 cannot be level) */
	out(chip, 0x4d0, 0xff);
	CHECK_EQ(in(chip, 0x4d0), 0xf8);
	emu_pic_set_irq(chip, 5, 1);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x25);
	out(chip, 0x20, 0x20);
	CHECK(emu_pic_intr(&chip->pic), "level still high: requests again");
	emu_pic_set_irq(chip, 5, 0);
	CHECK(!emu_pic_intr(&chip->pic), "level low: IRR cleared");
	out(chip, 0x4d0, 0x00);
	/* rotate on non-specific EOI (OCW2 R=1 EOI=1): IR0 becomes the lowest */
	pulse(chip, 0);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x20);
	out(chip, 0x20, 0xa0);
	pulse(chip, 0);
	pulse(chip, 6);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x26);  /* 6 now above 0 */
	out(chip, 0x20, 0xc7);                     /* set priority: IR7 lowest (the default) */
	out(chip, 0x20, 0x20);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x20);
	out(chip, 0x20, 0x20);
	/* poll command (OCW3 P): the next read is 0x80 | level, and acknowledges */
	pulse(chip, 4);
	out(chip, 0x20, 0x0c);
	CHECK_EQ(in(chip, 0x20), 0x84);
	out(chip, 0x20, 0x0b);
	CHECK_EQ(in(chip, 0x20), 0x10);
	out(chip, 0x20, 0x20);
	/* auto-EOI (ICW4 bit 1): no ISR bit is set at INTA */
	init(chip, 0x03);
	pulse(chip, 2 + 1);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x23);
	out(chip, 0x20, 0x0b);
	CHECK_EQ(in(chip, 0x20), 0x00);
	/* LINT0 masked: the PIC no longer reaches the CPU */
	emu_lapic_write(chip, chip->lapic[0], APIC_SVR, 0x1ff, 0);
	emu_lapic_write(chip, chip->lapic[0], APIC_LVT0, APIC_LVT_MASKED | 0x700, 0);
	pulse(chip, 4);
	CHECK(emu_pic_intr(&chip->pic), "INTR up");
	CHECK_EQ(emu_irqchip_peek(chip, 0), -1);
	/* the LAPIC hardware-disabled: INTR goes straight to the CPU (SDM Vol. 3 11.4.3) */
	emu_lapic_wrmsr(chip, chip->lapic[0], 0x1b, 0xfee00000ull | APIC_BASE_BSP, 0, 0);
	CHECK_EQ(emu_irqchip_ack(chip, 0), 0x24);
	emu_irqchip_free(chip);
	return t_done("emu_pic");
}
