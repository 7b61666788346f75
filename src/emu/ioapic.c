/* SPDX-License-Identifier: MIT */
/*
 * The I/O APIC (Intel 82093AA I/O Advanced Programmable Interrupt Controller datasheet, 1996), at
 * 0xfec00000 as on a PC, 24 pins, version 0x11 as KVM's arch/x86/kvm/ioapic.c (no EOI register:
 * level-triggered interrupts end with the LAPIC's EOI broadcast).
 *
 * Registers (datasheet 3.0): IOREGSEL at offset 0x00, IOWIN at 0x10; through them IOAPICID (0),
 * IOAPICVER (1), IOAPICARB (2) and the 64-bit redirection table entries at 0x10 + 2 * pin.
 * Pins (3.2.4): an edge-triggered pin delivers on a rising edge of its (polarity-corrected)
 * input; a level-triggered pin delivers while asserted, sets Remote IRR when the message is
 * accepted and sends again only after the EOI clears Remote IRR. A masked pin sends nothing; an
 * edge that arrives while masked is lost, a level still asserted is sent once unmasked.
 * Every function runs under chip->lock.
 */
#include "emu/irq.h"

void emu_ioapic_reset(struct emu_ioapic *io)
{
	io->ioregsel = 0;
	io->id = 0;
	for (unsigned k = 0; k < EMU_IOAPIC_PINS; k++)
		io->redir[k] = IOAPIC_RE_MASKED; /* datasheet 3.2.4: masked after reset */
	io->irr = 0;
	io->line = 0;
}

/* Sends pin's message if the pin is asserted and allowed to (mask, Remote IRR). */
static void service(struct emu_irqchip *chip, unsigned pin)
{
	struct emu_ioapic *io = &chip->ioapic;
	uint64_t re = io->redir[pin];
	if (!(io->irr & (1u << pin)) || (re & IOAPIC_RE_MASKED))
		return;
	bool level = re & IOAPIC_RE_LEVEL;
	if (level && (re & IOAPIC_RE_REMOTE_IRR))
		return;
	uint32_t dest = (uint32_t)(re >> 56);
	if (dest == 0xff)
		dest = 0xffffffffu; /* broadcast */
	unsigned dm = (re >> 8) & 7;
	if (dm == APIC_DM_EXTINT) {
		/* ExtINT through the I/O APIC: the PIC's vector, fetched by the CPU's INTA; the model takes
		 * the PIC through LINT0 only, so this pin's message is not sent (as it needs the 8259) */
		return;
	}
	emu_apic_deliver(chip, NULL, APIC_DEST_NOSHORT, dest, re & IOAPIC_RE_LOGICAL, dm, re & 0xff, level);
	if (level)
		io->redir[pin] |= IOAPIC_RE_REMOTE_IRR;
	else
		io->irr &= ~(1u << pin); /* an edge is sent once */
}

void emu_ioapic_set_irq(struct emu_irqchip *chip, unsigned pin, int level)
{
	struct emu_ioapic *io = &chip->ioapic;
	if (pin >= EMU_IOAPIC_PINS)
		return;
	uint32_t bit = 1u << pin;
	uint64_t re = io->redir[pin];
	bool old = io->line & bit;
	bool in = level != 0;
	if (in)
		io->line |= bit;
	else
		io->line &= ~bit;
	/* the polarity bit (active low) inverts the input before the edge/level logic */
	bool active = in != !!(re & IOAPIC_RE_POLARITY);
	bool was_active = old != !!(re & IOAPIC_RE_POLARITY);
	if (re & IOAPIC_RE_LEVEL) {
		if (active)
			io->irr |= bit;
		else
			io->irr &= ~bit;
	} else if (active && !was_active) {
		if (re & IOAPIC_RE_MASKED)
			return; /* an edge while masked is lost */
		io->irr |= bit;
	}
	service(chip, pin);
}

void emu_ioapic_eoi(struct emu_irqchip *chip, unsigned vector, bool level)
{
	struct emu_ioapic *io = &chip->ioapic;
	uint64_t pit = io->redir[2];
	if (chip->has_pit && (pit & 0xff) == vector && !(pit & IOAPIC_RE_MASKED))
		emu_pit_irq_ack(chip); /* GSI 2 is the PIT's (pit.c) */
	if (!level)
		return;
	for (unsigned pin = 0; pin < EMU_IOAPIC_PINS; pin++) {
		uint64_t re = io->redir[pin];
		if ((re & 0xff) != vector || !(re & IOAPIC_RE_LEVEL))
			continue;
		io->redir[pin] &= ~IOAPIC_RE_REMOTE_IRR;
		service(chip, pin); /* still asserted: sent again */
	}
}

uint32_t emu_ioapic_read(struct emu_irqchip *chip, unsigned off)
{
	struct emu_ioapic *io = &chip->ioapic;
	if (off == 0x00)
		return io->ioregsel;
	if (off != 0x10)
		return 0;
	unsigned r = io->ioregsel & 0xff;
	switch (r) {
	case 0: return io->id << 24;
	case 1: return ((EMU_IOAPIC_PINS - 1) << 16) | 0x11; /* maximum redirection entry, version */
	case 2: return io->id << 24;                         /* arbitration ID */
	default:
		if (r >= 0x10 && r < 0x10 + 2 * EMU_IOAPIC_PINS) {
			uint64_t re = io->redir[(r - 0x10) >> 1];
			return (r & 1) ? (uint32_t)(re >> 32) : (uint32_t)re;
		}
		return 0xffffffffu;
	}
}

void emu_ioapic_write(struct emu_irqchip *chip, unsigned off, uint32_t v)
{
	struct emu_ioapic *io = &chip->ioapic;
	if (off == 0x00) {
		io->ioregsel = v & 0xff;
		return;
	}
	if (off != 0x10)
		return;
	unsigned r = io->ioregsel & 0xff;
	if (r == 0) {
		io->id = (v >> 24) & 0xf;
		return;
	}
	if (r < 0x10 || r >= 0x10 + 2 * EMU_IOAPIC_PINS)
		return; /* version and arbitration are read-only */
	unsigned pin = (r - 0x10) >> 1;
	uint64_t re = io->redir[pin];
	if (r & 1) {
		re = (re & 0xffffffffull) | ((uint64_t)(v & 0xff000000u) << 32); /* destination field */
	} else {
		/* delivery status and Remote IRR are read-only (datasheet 3.2.4) */
		const uint64_t ro = IOAPIC_RE_PENDING | IOAPIC_RE_REMOTE_IRR;
		re = (re & ~0xffffffffull) | (re & ro) | (v & 0x1afff);
		if (!(re & IOAPIC_RE_LEVEL))
			re &= ~IOAPIC_RE_REMOTE_IRR; /* meaningful only for level-triggered pins */
	}
	io->redir[pin] = re;
	if (re & IOAPIC_RE_LEVEL) {
		bool active = !!(io->line & (1u << pin)) != !!(re & IOAPIC_RE_POLARITY);
		if (active)
			io->irr |= 1u << pin;
		else
			io->irr &= ~(1u << pin);
	}
	service(chip, pin); /* unmasking an asserted level pin sends it */
}
