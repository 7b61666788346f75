/* SPDX-License-Identifier: MIT */
/*
 * The 8254 programmable interval timer of a PC (Intel 8254 datasheet): three 16-bit counters at
 * EMU_PIT_HZ (1.193182 MHz) on ports 0x40-0x42, the control word register at 0x43, and the PC's
 * port 0x61 (bit 0 gate of counter 2, bit 1 speaker data, bit 4 refresh toggle, bit 5 OUT of
 * counter 2 — the bit Linux's pit_calibrate_tsc() and pit_hpet_ptimer_calibrate_cpu() poll).
 * Counter 0's OUT is IRQ 0: the 8259's IR0 and, through the ISA override a PC's MADT declares
 * (as QEMU routes it for KVM), the I/O APIC's pin 2. KVM's i8254.c was the reference for the
 * PC details.
 *
 * Model: a counter does not tick; its count and OUT are functions of the time since its count was
 * loaded (d = elapsed input clocks), per the datasheet's mode descriptions:
 *   mode 0 (interrupt on terminal count): count = N - d, OUT low until d >= N;
 *   mode 1 (hardware one-shot): count = N - d, OUT low while d < N;
 *   mode 2 (rate generator): count = N - d mod N, OUT low for the clock when the count is 1;
 *   mode 3 (square wave): count steps by 2, OUT high for the first ceil(N/2) clocks of a period;
 *   mode 4/5 (strobes): count = N - d, OUT low for the one clock at d == N.
 * Simplifications (documented): counting starts when the count is written (modes 1/5 do not wait
 * for a gate edge; a rising gate restarts modes 1/2/3/5), a low gate does not stop modes 0/4,
 * BCD counting is treated as binary. Every function runs under chip->lock.
 */
#include <string.h>

#include "emu/irq.h"

enum { RW_LATCH = 0, RW_LSB = 1, RW_MSB = 2, RW_WORD = 3 };

static uint64_t ticks(uint64_t from, uint64_t now)
{
	if (now <= from)
		return 0;
	return (uint64_t)((unsigned __int128)(now - from) * EMU_PIT_HZ / 1000000000ull);
}

/* ns after the load when `t` clocks have elapsed (rounded up: the clock edge itself) */
static uint64_t ticks_ns(uint64_t t)
{
	return (uint64_t)(((unsigned __int128)t * 1000000000ull + EMU_PIT_HZ - 1) / EMU_PIT_HZ);
}

void emu_pit_reset(struct emu_pit *pit, uint64_t now)
{
	memset(pit, 0, sizeof *pit);
	for (int k = 0; k < 3; k++) {
		struct emu_pit_channel *c = &pit->ch[k];
		c->count = 0x10000;
		c->load_time = now;
		c->rw_mode = c->read_state = c->write_state = RW_WORD;
		c->gate = k != 2; /* counters 0 and 1 have their gate tied high; 2's is port 0x61 bit 0 */
		c->null_count = true;
	}
}

uint32_t emu_pit_get_count(const struct emu_pit *pit, unsigned ch, uint64_t now)
{
	const struct emu_pit_channel *c = &pit->ch[ch];
	uint64_t d = ticks(c->load_time, now), n = c->count;
	switch (c->mode) {
	case 2: return (uint32_t)((n - d % n) & 0xffff);
	case 3: return (uint32_t)((n - (2 * d) % n) & 0xffff);
	default: return (uint32_t)((n - d) & 0xffff);
	}
}

int emu_pit_get_out(const struct emu_pit *pit, unsigned ch, uint64_t now)
{
	const struct emu_pit_channel *c = &pit->ch[ch];
	uint64_t d = ticks(c->load_time, now), n = c->count;
	switch (c->mode) {
	case 0: return d >= n;
	case 1: return d >= n;
	case 2: return d % n != n - 1 || n == 1;
	case 3: return d % n < (n + 1) / 2;
	default: return d != n; /* 4, 5 */
	}
}

/* Counter 0's OUT edges raise IRQ 0: the next one after `now`, or 0. */
static void ch0_schedule(struct emu_irqchip *chip, uint64_t now)
{
	struct emu_pit *pit = &chip->pit;
	const struct emu_pit_channel *c = &pit->ch[0];
	uint64_t n = c->count;
	if (c->null_count) {
		pit->irq_deadline = 0;
	} else if (c->mode == 2 || c->mode == 3) {
		/* periodic: one interrupt per period, at the period's end (the first end after now) */
		pit->irq_next_k = ticks(c->load_time, now) / n + 1;
		pit->irq_deadline = c->load_time + ticks_ns(pit->irq_next_k * n);
	} else {
		uint64_t t = c->load_time + ticks_ns(n);
		pit->irq_deadline = t > now ? t : 0; /* one shot, if still ahead */
	}
	emu_irqchip_timer_changed(chip);
}

bool emu_pit_lvt0_nmi(const struct emu_irqchip *chip)
{
	for (unsigned k = 0; k < chip->ncpus; k++) {
		const struct emu_lapic *l = chip->lapic[k];
		if (l && emu_lapic_hw_enabled(l) && !(l->lvt[LVT_LINT0] & APIC_LVT_MASKED) &&
		    ((l->lvt[LVT_LINT0] >> 8) & 7) == APIC_DM_NMI)
			return true;
	}
	return false;
}

static void irq0_pulse(struct emu_irqchip *chip)
{
	/* GSI 0: the 8259's IR0 and the I/O APIC's pin 2 (the ISA override), an edge on both */
	emu_irqchip_set_irq(chip, 0, 1);
	emu_irqchip_set_irq(chip, 0, 0);
	chip->pit.irqs++;
	/* KVM's virtual wire for the NMI watchdog (i8254.c pit_do_work, "PIT -> LVT0 in NMI mode"):
	 * while some LAPIC's LVT0 is unmasked in NMI mode, each tick also goes to every LAPIC's LVT0
	 * in its own mode (kvm_apic_local_deliver: NMI, or a fixed vector; ExtINT is ignored there) */
	if (!emu_pit_lvt0_nmi(chip))
		return;
	for (unsigned k = 0; k < chip->ncpus; k++) {
		struct emu_lapic *l = chip->lapic[k];
		if (!l || !emu_lapic_hw_enabled(l) || (l->lvt[LVT_LINT0] & APIC_LVT_MASKED))
			continue;
		unsigned dm = (l->lvt[LVT_LINT0] >> 8) & 7;
		if (dm == APIC_DM_NMI || dm == APIC_DM_FIXED)
			emu_lapic_accept(chip, l, dm, l->lvt[LVT_LINT0] & 0xff, false);
	}
}

static bool pic_route(struct emu_irqchip *chip)
{
	return !(chip->pic.p[0].imr & 1) && chip->lapic[0] && emu_lapic_accepts_pic(chip->lapic[0]);
}

static bool ioapic_route(struct emu_irqchip *chip)
{
	return !(chip->ioapic.redir[2] & IOAPIC_RE_MASKED);
}

/* The last IRQ 0 still waits to be taken on a route that is open: the 8259's IRR bit 0, or the
 * vector of pin 2 in a LAPIC's IRR. Read from the controllers' state rather than remembered, so a
 * route masked or changed meanwhile cannot leave the PIT waiting for an acknowledge forever. */
static bool irq0_undelivered(struct emu_irqchip *chip)
{
	if (pic_route(chip) && (chip->pic.p[0].irr & 1))
		return true;
	if (ioapic_route(chip)) {
		unsigned v = chip->ioapic.redir[2] & 0xff;
		for (unsigned k = 0; k < chip->ncpus; k++)
			if (chip->lapic[k] && ((chip->lapic[k]->irr[v >> 5] >> (v & 31)) & 1))
				return true;
	}
	return false;
}

void emu_pit_irq_ack(struct emu_irqchip *chip)
{
	struct emu_pit *pit = &chip->pit;
	if (pit->pending && !irq0_undelivered(chip)) {
		pit->pending--;
		irq0_pulse(chip);
	}
}

void emu_pit_timer_expired(struct emu_irqchip *chip, uint64_t now)
{
	struct emu_pit *pit = &chip->pit;
	if (!pit->irq_deadline || now < pit->irq_deadline)
		return;
	const struct emu_pit_channel *c = &pit->ch[0];
	bool periodic = c->mode == 2 || c->mode == 3;
	/* period ends since the last expiry: more than one when the timer thread ran late */
	uint64_t ends = periodic ? ticks(c->load_time, now) / c->count : 0;
	uint64_t periods = periodic ? ends + 1 - pit->irq_next_k : 1;
	if (!pic_route(chip) && !ioapic_route(chip)) {
		pit->pending = 0; /* nobody can take it: no backlog (KVM resets reinjection while masked) */
		irq0_pulse(chip);
	} else {
		if (irq0_undelivered(chip))
			pit->pending++; /* delivered at the acknowledge of the one before */
		else
			irq0_pulse(chip);
		pit->pending += (uint32_t)(periods - 1);
	}
	if (periodic) {
		pit->irq_next_k = ends + 1;
		pit->irq_deadline = c->load_time + ticks_ns(pit->irq_next_k * c->count);
	} else {
		pit->irq_deadline = 0;
	}
	emu_irqchip_timer_changed(chip);
}

static void load_count(struct emu_irqchip *chip, unsigned ch, uint32_t v, uint64_t now)
{
	struct emu_pit_channel *c = &chip->pit.ch[ch];
	c->count = v ? v : 0x10000; /* 0 is the maximum count, 2^16 (datasheet) */
	c->load_time = now;
	c->null_count = false;
	if (ch == 0)
		ch0_schedule(chip, now);
}

static void latch_count(struct emu_pit *pit, unsigned ch, uint64_t now)
{
	struct emu_pit_channel *c = &pit->ch[ch];
	if (c->count_latched)
		return; /* a second latch before the read is ignored (datasheet) */
	c->latched_count = (uint16_t)emu_pit_get_count(pit, ch, now);
	c->count_latched = c->rw_mode;
}

static void latch_status(struct emu_pit *pit, unsigned ch, uint64_t now)
{
	struct emu_pit_channel *c = &pit->ch[ch];
	if (c->status_latched)
		return;
	c->status = (uint8_t)((emu_pit_get_out(pit, ch, now) << 7) | (c->null_count << 6) | (c->rw_mode << 4) |
			      (c->mode << 1) | c->bcd);
	c->status_latched = 1;
}

void emu_pit_ioport_write(struct emu_irqchip *chip, uint16_t port, uint8_t v, uint64_t now)
{
	struct emu_pit *pit = &chip->pit;
	if (port == 0x61) {
		struct emu_pit_channel *c = &pit->ch[2];
		uint8_t gate = v & 1;
		if (gate && !c->gate && (c->mode == 1 || c->mode == 2 || c->mode == 3 || c->mode == 5))
			c->load_time = now; /* a rising gate (re)triggers these modes */
		c->gate = gate;
		pit->speaker_data_on = v & 2;
		return;
	}
	if (port == 0x43) {
		unsigned ch = v >> 6;
		if (ch == 3) {
			/* read-back (datasheet "Read-Back Command"): bit 5 = 0 latches counts, bit 4 = 0
			 * latches status, bits 3:1 select counters 2:0 */
			for (unsigned k = 0; k < 3; k++) {
				if (!(v & (2u << k)))
					continue;
				if (!(v & 0x20))
					latch_count(pit, k, now);
				if (!(v & 0x10))
					latch_status(pit, k, now);
			}
			return;
		}
		struct emu_pit_channel *c = &pit->ch[ch];
		unsigned rw = (v >> 4) & 3;
		if (rw == RW_LATCH) {
			latch_count(pit, ch, now); /* counter latch command */
			return;
		}
		c->rw_mode = (uint8_t)rw;
		c->read_state = c->write_state = (uint8_t)rw;
		c->mode = (v >> 1) & 7;
		if (c->mode > 5)
			c->mode -= 4; /* 6 and 7 are modes 2 and 3 (X10, X11) */
		c->bcd = v & 1;
		c->null_count = true; /* a control word clears the count until one is written */
		if (ch == 0)
			ch0_schedule(chip, now);
		return;
	}
	unsigned ch = port - 0x40;
	struct emu_pit_channel *c = &pit->ch[ch];
	switch (c->write_state) {
	case RW_LSB:
		load_count(chip, ch, v, now);
		break;
	case RW_MSB:
		load_count(chip, ch, (uint32_t)v << 8, now);
		break;
	case RW_WORD:
		c->write_latch = v; /* LSB first; the count loads with the MSB */
		c->write_state = 4;
		break;
	default:
		load_count(chip, ch, c->write_latch | ((uint32_t)v << 8), now);
		c->write_state = RW_WORD;
		break;
	}
}

uint8_t emu_pit_ioport_read(struct emu_irqchip *chip, uint16_t port, uint64_t now)
{
	struct emu_pit *pit = &chip->pit;
	if (port == 0x61) {
		const struct emu_pit_channel *c = &pit->ch[2];
		unsigned refresh = (unsigned)((now / 15085) & 1); /* toggles every 15.085 us on a PC */
		return (uint8_t)((emu_pit_get_out(pit, 2, now) << 5) | (refresh << 4) | (pit->speaker_data_on << 1) |
				 c->gate);
	}
	if (port == 0x43)
		return 0xff; /* the control word register cannot be read */
	unsigned ch = port - 0x40;
	struct emu_pit_channel *c = &pit->ch[ch];
	if (c->status_latched) {
		c->status_latched = 0;
		return c->status;
	}
	if (c->count_latched) {
		uint8_t r;
		switch (c->count_latched) {
		case RW_LSB: r = (uint8_t)c->latched_count; c->count_latched = 0; break;
		case RW_MSB: r = (uint8_t)(c->latched_count >> 8); c->count_latched = 0; break;
		case RW_WORD: r = (uint8_t)c->latched_count; c->count_latched = 4; break;
		default: r = (uint8_t)(c->latched_count >> 8); c->count_latched = 0; break;
		}
		return r;
	}
	uint32_t count = emu_pit_get_count(pit, ch, now);
	switch (c->read_state) {
	case RW_LSB: return (uint8_t)count;
	case RW_MSB: return (uint8_t)(count >> 8);
	case RW_WORD: c->read_state = 4; return (uint8_t)count;
	default: c->read_state = RW_WORD; return (uint8_t)(count >> 8);
	}
}
