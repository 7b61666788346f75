/* SPDX-License-Identifier: MIT */
/* The I/O APIC model (src/emu/ioapic.c) against the 82093AA datasheet, sending to model LAPICs. */
#include "irq_harness.h"

static void redir(struct emu_irqchip *chip, unsigned pin, uint64_t re)
{
	emu_ioapic_write(chip, 0x00, 0x10 + 2 * pin + 1);
	emu_ioapic_write(chip, 0x10, (uint32_t)(re >> 32));
	emu_ioapic_write(chip, 0x00, 0x10 + 2 * pin);
	emu_ioapic_write(chip, 0x10, (uint32_t)re);
}

static uint64_t redir_read(struct emu_irqchip *chip, unsigned pin)
{
	emu_ioapic_write(chip, 0x00, 0x10 + 2 * pin + 1);
	uint64_t hi = emu_ioapic_read(chip, 0x10);
	emu_ioapic_write(chip, 0x00, 0x10 + 2 * pin);
	return (hi << 32) | emu_ioapic_read(chip, 0x10);
}

/* takes and EOIs one interrupt on the LAPIC: its vector, or -1 */
static int take(struct emu_irqchip *chip, unsigned cpu)
{
	int v = emu_lapic_ack(chip->lapic[cpu]);
	if (v >= 0)
		emu_lapic_write(chip, chip->lapic[cpu], APIC_EOI, 0, 0);
	return v;
}

int main(void)
{
	struct emu_irqchip *chip = t_chip(2);
	t_lapic_on(chip, 0);
	t_lapic_on(chip, 1);
	/* 3.2.2 IOAPICVER: maximum redirection entry 23 (bits 23:16), version 0x11 */
	emu_ioapic_write(chip, 0x00, 1);
	CHECK_EQ(emu_ioapic_read(chip, 0x10), 0x170011);
	CHECK_EQ(emu_ioapic_read(chip, 0x00), 1); /* IOREGSEL reads back */
	emu_ioapic_write(chip, 0x00, 0);
	emu_ioapic_write(chip, 0x10, 0x0a000000);
	CHECK_EQ(emu_ioapic_read(chip, 0x10), 0x0a000000); /* IOAPICID bits 27:24 */
	/* 3.2.4: every pin masked after reset */
	for (unsigned p = 0; p < 24; p++)
		CHECK_EQ(redir_read(chip, p), IOAPIC_RE_MASKED);
	emu_ioapic_set_irq(chip, 4, 1);
	emu_ioapic_set_irq(chip, 4, 0);
	CHECK_EQ(emu_lapic_highest_irr(chip->lapic[0]), -1);

	/* edge, fixed, physical destination 1 */
	redir(chip, 5, (1ull << 56) | 0x35);
	CHECK_EQ(redir_read(chip, 5), (1ull << 56) | 0x35);
	emu_ioapic_set_irq(chip, 5, 1);
	CHECK_EQ(take(chip, 1), 0x35);
	emu_ioapic_set_irq(chip, 5, 1); /* still high: no new edge */
	CHECK_EQ(take(chip, 1), -1);
	emu_ioapic_set_irq(chip, 5, 0);
	emu_ioapic_set_irq(chip, 5, 1);
	CHECK_EQ(take(chip, 1), 0x35);
	CHECK_EQ(take(chip, 0), -1);
	/* an edge while masked is lost */
	emu_ioapic_set_irq(chip, 5, 0);
	redir(chip, 5, (1ull << 56) | IOAPIC_RE_MASKED | 0x35);
	emu_ioapic_set_irq(chip, 5, 1);
	redir(chip, 5, (1ull << 56) | 0x35);
	CHECK_EQ(take(chip, 1), -1);

	/* level: Remote IRR set on delivery, cleared by the LAPIC's EOI broadcast (TMR), sent again
	 * while the line stays asserted */
	redir(chip, 9, IOAPIC_RE_LEVEL | 0x39);
	emu_ioapic_set_irq(chip, 9, 1);
	CHECK(redir_read(chip, 9) & IOAPIC_RE_REMOTE_IRR, "remote IRR after delivery");
	CHECK_EQ(emu_lapic_read(chip, chip->lapic[0], APIC_TMR + 0x10, 0), 1u << (0x39 - 32)); /* level */
	CHECK_EQ(emu_lapic_ack(chip->lapic[0]), 0x39);
	emu_ioapic_set_irq(chip, 9, 1); /* asserted again: Remote IRR holds it back */
	CHECK_EQ(emu_lapic_highest_irr(chip->lapic[0]), -1);
	emu_lapic_write(chip, chip->lapic[0], APIC_EOI, 0, 0);  /* EOI -> I/O APIC */
	CHECK_EQ(emu_lapic_highest_irr(chip->lapic[0]), 0x39);   /* still asserted: sent again */
	emu_ioapic_set_irq(chip, 9, 0);
	CHECK_EQ(take(chip, 0), 0x39);
	CHECK(!(redir_read(chip, 9) & IOAPIC_RE_REMOTE_IRR), "remote IRR cleared by EOI");
	CHECK_EQ(take(chip, 0), -1);                             /* deasserted: nothing more */
	/* Remote IRR is read-only */
	emu_ioapic_set_irq(chip, 9, 1);
	redir(chip, 9, IOAPIC_RE_LEVEL | 0x39); /* the write does not clear it */
	CHECK(redir_read(chip, 9) & IOAPIC_RE_REMOTE_IRR, "remote IRR read-only");
	emu_ioapic_set_irq(chip, 9, 0);
	CHECK_EQ(take(chip, 0), 0x39);
	/* a level asserted while masked is sent when unmasked */
	redir(chip, 10, IOAPIC_RE_LEVEL | IOAPIC_RE_MASKED | 0x3a);
	emu_ioapic_set_irq(chip, 10, 1);
	CHECK_EQ(emu_lapic_highest_irr(chip->lapic[0]), -1);
	redir(chip, 10, IOAPIC_RE_LEVEL | 0x3a);
	CHECK_EQ(emu_lapic_highest_irr(chip->lapic[0]), 0x3a);
	emu_ioapic_set_irq(chip, 10, 0); /* deasserted before the EOI: not sent again */
	CHECK_EQ(take(chip, 0), 0x3a);
	CHECK_EQ(take(chip, 0), -1);
	/* active low (polarity 1), edge: the falling edge of the line is the event */
	redir(chip, 11, IOAPIC_RE_POLARITY | 0x3b);
	emu_ioapic_set_irq(chip, 11, 1);
	CHECK_EQ(take(chip, 0), -1);
	emu_ioapic_set_irq(chip, 11, 0);
	CHECK_EQ(take(chip, 0), 0x3b);
	/* logical destination (flat): LAPIC 1 has logical ID 0x02 */
	emu_lapic_write(chip, chip->lapic[1], APIC_LDR, 0x02000000, 0);
	redir(chip, 12, (0x02ull << 56) | IOAPIC_RE_LOGICAL | 0x3c);
	emu_ioapic_set_irq(chip, 12, 1);
	CHECK_EQ(take(chip, 1), 0x3c);
	CHECK_EQ(take(chip, 0), -1);
	/* broadcast 0xff, NMI delivery mode */
	redir(chip, 13, (0xffull << 56) | (APIC_DM_NMI << 8));
	emu_ioapic_set_irq(chip, 13, 1);
	CHECK_EQ(chip->lapic[0]->nmi_pending, 1);
	CHECK_EQ(chip->lapic[1]->nmi_pending, 1);
	emu_irqchip_free(chip);
	return t_done("emu_ioapic");
}
