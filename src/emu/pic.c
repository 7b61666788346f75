/* SPDX-License-Identifier: MIT */
/*
 * The 8259A pair of a PC (Intel 8259A Programmable Interrupt Controller datasheet): master at
 * ports 0x20/0x21, slave at 0xa0/0xa1 cascaded on the master's IR2, and the edge/level control
 * registers ELCR1/ELCR2 at 0x4d0/0x4d1 (as the PIIX/ICH south bridges; IRQ 0, 1, 2, 8 and 13 are
 * always edge). The priority logic follows the datasheet (fully nested mode with rotation:
 * `priority_add` is the IR level with the highest priority, 0 after ICW1); KVM's i8259.c (from
 * QEMU) was the reference for what a PC guest expects of the details.
 *
 * Model: IRR holds requests (an edge input sets it on a rising edge, a level input follows the
 * line); the INTA cycle sets the ISR bit of the highest unmasked request above the highest ISR
 * bit (unless auto-EOI), clears the IRR bit of an edge input, and returns ICW2's base + IR; a
 * request that vanished before INTA gives IR7 (the spurious interrupt). The master's INTR goes
 * to the BSP's LINT0 (irqchip.c). Every function runs under chip->lock.
 */
#include <string.h>

#include "emu/irq.h"

static void pic1_reset(struct emu_pic1 *s, uint8_t elcr_mask)
{
	uint8_t elcr = s->elcr;
	memset(s, 0, sizeof *s);
	s->elcr = elcr & elcr_mask;
	s->elcr_mask = elcr_mask;
}

void emu_pic_reset(struct emu_pic *pic)
{
	memset(pic, 0, sizeof *pic);
	pic1_reset(&pic->p[0], 0xf8); /* IRQ 0, 1, 2 edge only */
	pic1_reset(&pic->p[1], 0xde); /* IRQ 8, 13 edge only */
}

/* Highest-priority bit of mask (rotation applied), as an IR level; 8 = none. */
static int priority(const struct emu_pic1 *s, uint8_t mask)
{
	if (!mask)
		return 8;
	int p = 0;
	while (!(mask & (1 << ((p + s->priority_add) & 7))))
		p++;
	return p;
}

/* The IR level this 8259 asks the CPU (or its master) for, or -1. */
static int get_irq(const struct emu_pic1 *s, bool master)
{
	int p = priority(s, s->irr & ~s->imr);
	if (p == 8)
		return -1;
	/* In special mask mode, in-service levels do not block lower ones; in special fully nested
	 * mode the master lets the slave's IR2 interrupt again while it is in service. */
	uint8_t isr = s->isr;
	if (s->special_mask)
		isr &= ~s->imr;
	if (master && s->special_fully_nested)
		isr &= ~(1 << 2);
	int cur = priority(s, isr);
	return p < cur ? (p + s->priority_add) & 7 : -1;
}

static void set_irq1(struct emu_pic1 *s, unsigned irq, int level)
{
	uint8_t m = (uint8_t)(1u << irq);
	if (s->elcr & m) {
		if (level) { /* level-sensitive: IRR follows the line */
			s->irr |= m;
			s->last_irr |= m;
		} else {
			s->irr &= ~m;
			s->last_irr &= ~m;
		}
	} else if (level) {
		if (!(s->last_irr & m))
			s->irr |= m; /* rising edge */
		s->last_irr |= m;
	} else {
		s->last_irr &= ~m;
	}
}

bool emu_pic_intr(const struct emu_pic *pic)
{
	return pic->output;
}

void emu_pic_update(struct emu_irqchip *chip)
{
	struct emu_pic *pic = &chip->pic;
	/* the slave's INT drives the master's IR2: a request of the slave is a new edge there each
	 * time the pair is evaluated, so a second slave request after the first INTA is not lost */
	if (get_irq(&pic->p[1], false) >= 0) {
		set_irq1(&pic->p[0], 2, 1);
		set_irq1(&pic->p[0], 2, 0);
	}
	bool out = get_irq(&pic->p[0], true) >= 0;
	bool rise = out && !pic->output;
	pic->output = out;
	if (rise && chip->kick && chip->ncpus && chip->lapic[0] && emu_lapic_accepts_pic(chip->lapic[0]))
		chip->kick(chip->kick_arg, 0);
}

void emu_pic_set_irq(struct emu_irqchip *chip, unsigned irq, int level)
{
	if (irq >= 16)
		return;
	set_irq1(&chip->pic.p[irq >> 3], irq & 7, level);
	emu_pic_update(chip);
}

/* INTA on one 8259: ISR/IRR bookkeeping for IR `irq`. */
static void intack(struct emu_pic1 *s, int irq)
{
	uint8_t m = (uint8_t)(1u << irq);
	if (s->auto_eoi) {
		if (s->rotate_on_aeoi)
			s->priority_add = (uint8_t)((irq + 1) & 7);
	} else {
		s->isr |= m;
	}
	if (!(s->elcr & m))
		s->irr &= ~m; /* an edge request is consumed; a level one stays while the line is high */
}

int emu_pic_ack(struct emu_irqchip *chip)
{
	struct emu_pic *pic = &chip->pic;
	int vec;
	int irq = get_irq(&pic->p[0], true);
	if (irq < 0) {
		vec = pic->p[0].vector_base + 7; /* spurious IR7 (datasheet: "Interrupt sequence") */
	} else {
		intack(&pic->p[0], irq);
		if (irq == 0 && chip->has_pit)
			emu_pit_irq_ack(chip); /* the PIT's reinjection (pit.c) */
		if (irq == 2) {
			int irq2 = get_irq(&pic->p[1], false);
			if (irq2 >= 0)
				intack(&pic->p[1], irq2);
			else
				irq2 = 7;
			vec = pic->p[1].vector_base + irq2;
		} else {
			vec = pic->p[0].vector_base + irq;
		}
	}
	emu_pic_update(chip);
	return vec;
}

static void write_cmd(struct emu_irqchip *chip, struct emu_pic1 *s, uint8_t v)
{
	if (v & 0x10) {
		/* ICW1: start initialisation; IMR, ISR, IRR edge memory, rotation and modes cleared,
		 * IR7 lowest priority, special mask off, status read = IRR */
		uint8_t elcr = s->elcr, elcr_mask = s->elcr_mask;
		memset(s, 0, sizeof *s);
		s->elcr = elcr;
		s->elcr_mask = elcr_mask;
		s->init_state = 1;
		s->init4 = v & 1;
		s->single = v & 2;
		return;
	}
	if (v & 0x08) {
		/* OCW3 */
		if (v & 0x04)
			s->poll = true;
		if (v & 0x02)
			s->read_isr = v & 1;
		if (v & 0x40)
			s->special_mask = (v >> 5) & 1;
		return;
	}
	/* OCW2: bits 7:5 = R SL EOI */
	unsigned cmd = v >> 5;
	switch (cmd) {
	case 0: /* rotate in auto-EOI mode, clear */
	case 4: /* set */
		s->rotate_on_aeoi = cmd == 4;
		break;
	case 1: /* non-specific EOI */
	case 5: { /* rotate on non-specific EOI */
		int p = priority(s, s->isr);
		if (p != 8) {
			int irq = (p + s->priority_add) & 7;
			s->isr &= (uint8_t)~(1 << irq);
			if (cmd == 5)
				s->priority_add = (uint8_t)((irq + 1) & 7);
		}
		break;
	}
	case 3: /* specific EOI */
		s->isr &= (uint8_t)~(1 << (v & 7));
		break;
	case 6: /* set priority: IR (v & 7) becomes the lowest */
		s->priority_add = (uint8_t)((v + 1) & 7);
		break;
	case 7: /* rotate on specific EOI */
		s->isr &= (uint8_t)~(1 << (v & 7));
		s->priority_add = (uint8_t)((v + 1) & 7);
		break;
	default: /* 2: no operation */
		break;
	}
	emu_pic_update(chip);
}

static void write_data(struct emu_irqchip *chip, struct emu_pic1 *s, bool master, uint8_t v)
{
	switch (s->init_state) {
	case 0: /* OCW1: the mask */
		s->imr = v;
		emu_pic_update(chip);
		return;
	case 1: /* ICW2: vector base (T7-T3 in x86 mode) */
		s->vector_base = v & 0xf8;
		s->init_state = s->single ? (s->init4 ? 3 : 0) : 2;
		return;
	case 2: /* ICW3: cascade (IR2 on a PC; the value is not needed by the model) */
		s->init_state = s->init4 ? 3 : 0;
		return;
	default: /* ICW4: AEOI, SFNM; microprocessor mode bit 0 must be 1 (8086) */
		s->auto_eoi = v & 2;
		s->special_fully_nested = master && (v & 0x10);
		s->init_state = 0;
		emu_pic_update(chip);
		return;
	}
}

/* The poll command (OCW3 P): the next read is the "interrupt word" and acknowledges it. */
static uint8_t poll_read(struct emu_irqchip *chip, struct emu_pic1 *s, bool master)
{
	int irq = get_irq(s, master);
	s->poll = false;
	if (irq < 0)
		return 0;
	s->isr |= (uint8_t)(1u << irq);
	if (!(s->elcr & (1u << irq)))
		s->irr &= (uint8_t)~(1u << irq);
	emu_pic_update(chip);
	return (uint8_t)(0x80 | irq);
}

uint8_t emu_pic_ioport_read(struct emu_irqchip *chip, uint16_t port)
{
	struct emu_pic *pic = &chip->pic;
	if (port == 0x4d0 || port == 0x4d1)
		return pic->p[port & 1].elcr;
	bool master = port < 0xa0;
	struct emu_pic1 *s = &pic->p[master ? 0 : 1];
	if (s->poll)
		return poll_read(chip, s, master);
	if (port & 1)
		return s->imr;
	return s->read_isr ? s->isr : s->irr;
}

void emu_pic_ioport_write(struct emu_irqchip *chip, uint16_t port, uint8_t v)
{
	struct emu_pic *pic = &chip->pic;
	if (port == 0x4d0 || port == 0x4d1) {
		struct emu_pic1 *s = &pic->p[port & 1];
		s->elcr = v & s->elcr_mask;
		return;
	}
	bool master = port < 0xa0;
	struct emu_pic1 *s = &pic->p[master ? 0 : 1];
	if (port & 1)
		write_data(chip, s, master, v);
	else
		write_cmd(chip, s, v);
}
