/* SPDX-License-Identifier: MIT */
/* The 8254 (src/emu/pit.c) against the Intel 8254 datasheet: modes, counter latch, read-back,
 * LSB/MSB access, port 0x61 (gate 2, OUT2 in bit 5), counter 0 as IRQ 0 to the 8259 and to the
 * I/O APIC's pin 2. Time is virtual: d input clocks after t0 is ns_at(d). */
#include "irq_harness.h"

static const uint64_t T0 = 1000000;

/* the first nanosecond at which d clocks of 1.193182 MHz have elapsed since T0 */
static uint64_t ns_at(uint64_t d) { return T0 + (d * 1000000000ull + EMU_PIT_HZ - 1) / EMU_PIT_HZ; }

static void out(struct emu_irqchip *chip, uint16_t port, uint8_t v, uint64_t now)
{
	emu_pit_ioport_write(chip, port, v, now);
}
static uint8_t in(struct emu_irqchip *chip, uint16_t port, uint64_t now) { return emu_pit_ioport_read(chip, port, now); }

static unsigned read16(struct emu_irqchip *chip, uint16_t port, uint64_t now)
{
	unsigned lo = in(chip, port, now);
	return lo | (unsigned)in(chip, port, now) << 8;
}

int main(void)
{
	struct emu_irqchip *chip = t_chip(1);
	chip->has_pit = true;
	emu_pit_reset(&chip->pit, 0);
	struct emu_pit *pit = &chip->pit;

	/* mode 0, LSB then MSB, count 100: OUT low until terminal count */
	out(chip, 0x43, 0x30, T0);
	out(chip, 0x40, 100, T0);
	out(chip, 0x40, 0, T0);
	CHECK_EQ(emu_pit_get_count(pit, 0, ns_at(30)), 70);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(99)), 0);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(100)), 1);
	/* counter latch command: the count at the latch, whatever time the reads happen */
	out(chip, 0x43, 0x00, ns_at(40));
	CHECK_EQ(read16(chip, 0x40, ns_at(90)), 60);
	CHECK_EQ(read16(chip, 0x40, ns_at(90)), 10); /* unlatched: live again */
	/* read-back (0xc0 | ...): status of counter 0 = OUT, null count, RW 11, mode 000, binary */
	out(chip, 0x43, 0xe2, ns_at(50));
	CHECK_EQ(in(chip, 0x40, ns_at(50)), 0x30);
	out(chip, 0x43, 0xe2, ns_at(150));
	CHECK_EQ(in(chip, 0x40, ns_at(150)), 0xb0);
	/* read-back of count and status together: status first, then the count */
	out(chip, 0x43, 0xc2, ns_at(60));
	CHECK_EQ(in(chip, 0x40, ns_at(70)), 0x30);
	CHECK_EQ(read16(chip, 0x40, ns_at(80)), 40);
	/* a control word sets null count until the count is written */
	out(chip, 0x43, 0x34, ns_at(200));
	out(chip, 0x43, 0xe2, ns_at(200));
	CHECK_EQ(in(chip, 0x40, ns_at(200)) & 0x40, 0x40);

	/* mode 2 (rate generator), count 10: N - d mod N; OUT low only in the clock with count 1 */
	out(chip, 0x40, 10, T0);
	out(chip, 0x40, 0, T0);
	CHECK_EQ(emu_pit_get_count(pit, 0, ns_at(3)), 7);
	CHECK_EQ(emu_pit_get_count(pit, 0, ns_at(13)), 7);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(8)), 1);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(9)), 0);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(10)), 1);
	/* mode 3 (square wave), count 10: high for 5 clocks, low for 5; the count steps by 2 */
	out(chip, 0x43, 0x36, T0);
	out(chip, 0x40, 10, T0);
	out(chip, 0x40, 0, T0);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(4)), 1);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(5)), 0);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(12)), 1);
	CHECK_EQ(emu_pit_get_count(pit, 0, ns_at(2)), 6);
	/* mode 4 (software strobe): OUT low for the one clock at terminal count */
	out(chip, 0x43, 0x38, T0);
	out(chip, 0x40, 20, T0);
	out(chip, 0x40, 0, T0);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(19)), 1);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(20)), 0);
	CHECK_EQ(emu_pit_get_out(pit, 0, ns_at(21)), 1);
	/* LSB-only and MSB-only access */
	out(chip, 0x43, 0x50, T0);         /* counter 1, LSB only, mode 0 */
	out(chip, 0x41, 0x80, T0);
	CHECK_EQ(in(chip, 0x41, ns_at(0x10)), 0x70);
	out(chip, 0x43, 0x60, T0);         /* counter 1, MSB only */
	out(chip, 0x41, 0x02, T0);         /* count 0x200 */
	CHECK_EQ(in(chip, 0x41, ns_at(0x100)), 0x01);
	/* a count of 0 is 65536 */
	out(chip, 0x43, 0x50, T0);
	out(chip, 0x41, 0, T0);
	CHECK_EQ(emu_pit_get_out(pit, 1, ns_at(65535)), 0);
	CHECK_EQ(emu_pit_get_out(pit, 1, ns_at(65536)), 1);

	/* port 0x61 and counter 2, as Linux's pit_calibrate_tsc(): gate high, speaker off, mode 0,
	 * then poll bit 5 (OUT2) */
	out(chip, 0x61, 0x01, T0);
	out(chip, 0x43, 0xb0, T0);
	out(chip, 0x42, 0xe8, T0);
	out(chip, 0x42, 0x03, T0);         /* 1000 */
	CHECK_EQ(in(chip, 0x61, ns_at(999)) & 0x23, 0x01);
	CHECK_EQ(in(chip, 0x61, ns_at(1000)) & 0x23, 0x21);
	out(chip, 0x61, 0x03, T0);
	CHECK_EQ(in(chip, 0x61, ns_at(1000)) & 0x03, 0x03); /* speaker data bit reads back */
	/* a rising gate retriggers mode 1 */
	out(chip, 0x61, 0x00, T0);
	out(chip, 0x43, 0xb2, T0);
	out(chip, 0x42, 100, T0);
	out(chip, 0x42, 0, T0);
	out(chip, 0x61, 0x01, ns_at(50));
	CHECK_EQ(emu_pit_get_count(pit, 2, ns_at(60)), 90);
	/* the refresh bit (4) toggles every 15.085 us */
	CHECK(((in(chip, 0x61, 0) ^ in(chip, 0x61, 15085)) & 0x10) == 0x10, "refresh toggles");

	/* counter 0 is IRQ 0: mode 2 with count 1193 interrupts once per period; the 8259 sees IR0
	 * edges (master unmasked) and the I/O APIC pin 2 too */
	emu_pic_ioport_write(chip, 0x20, 0x11); emu_pic_ioport_write(chip, 0x21, 0x20);
	emu_pic_ioport_write(chip, 0x21, 0x04); emu_pic_ioport_write(chip, 0x21, 0x01);
	emu_pic_ioport_write(chip, 0x21, 0xfe);
	emu_lapic_write(chip, chip->lapic[0], APIC_SVR, 0x1ff, 0);
	emu_ioapic_write(chip, 0x00, 0x10 + 4);
	emu_ioapic_write(chip, 0x10, 0x52); /* pin 2: vector 0x52, to APIC 0 */
	pit->irqs = 0;
	out(chip, 0x43, 0x34, T0);
	out(chip, 0x40, 1193 & 0xff, T0);
	out(chip, 0x40, 1193 >> 8, T0);
	unsigned pic_irqs = 0, apic_irqs = 0;
	for (uint64_t d = 0; d < 1193 * 100 + 97; d += 97) { /* through the 100th period end */
		emu_irqchip_run_timers(chip, ns_at(d));
		if (emu_pic_intr(&chip->pic)) {
			CHECK_EQ(emu_pic_ack(chip), 0x20);
			emu_pic_ioport_write(chip, 0x20, 0x20);
			pic_irqs++;
		}
		if (emu_lapic_ack(chip->lapic[0]) == 0x52) {
			emu_lapic_write(chip, chip->lapic[0], APIC_EOI, 0, 0);
			apic_irqs++;
		}
	}
	CHECK_EQ(pit->irqs, 100);
	CHECK_EQ(pic_irqs, 100);
	CHECK_EQ(apic_irqs, 100);
	/* reinjection (KVM's default): ten periods pass while the guest does not take IRQ 0 (its vCPU
	 * ran late): one edge goes out, nine wait, and each acknowledge sends the next */
	emu_ioapic_write(chip, 0x00, 0x10 + 4);
	emu_ioapic_write(chip, 0x10, 1u << 16); /* only the 8259 route */
	pit->irqs = 0;
	uint64_t t2 = ns_at(1193 * 200);
	out(chip, 0x43, 0x34, t2);
	out(chip, 0x40, 1193 & 0xff, t2);
	out(chip, 0x40, 1193 >> 8, t2);
	emu_irqchip_run_timers(chip, t2 + 10 * 1000000 + 50000); /* 10 periods of 0.99985 ms */
	CHECK_EQ(pit->irqs, 1);
	CHECK_EQ(pit->pending, 9);
	unsigned taken = 0;
	while (emu_pic_intr(&chip->pic) && taken < 20) {
		CHECK_EQ(emu_pic_ack(chip), 0x20);
		emu_pic_ioport_write(chip, 0x20, 0x20);
		taken++;
	}
	CHECK_EQ(taken, 10);
	CHECK_EQ(pit->irqs, 10);
	CHECK_EQ(pit->pending, 0);
	/* masked on every route: no backlog builds up */
	emu_pic_ioport_write(chip, 0x21, 0xff);
	emu_irqchip_run_timers(chip, t2 + 30 * 1000000);
	CHECK_EQ(pit->pending, 0);
	emu_pic_ioport_write(chip, 0x21, 0xfe);
	/* mode 0: one interrupt at terminal count, then none (first the edge the 8259 latched while
	 * masked: IRR keeps a request under a mask, as the datasheet says) */
	CHECK_EQ(emu_pic_ack(chip), 0x20);
	emu_pic_ioport_write(chip, 0x20, 0x20);
	pit->irqs = 0;
	uint64_t t1 = t2 + 40 * 1000000;
	out(chip, 0x43, 0x30, t1);
	out(chip, 0x40, 100, t1);
	out(chip, 0x40, 0, t1);
	emu_irqchip_run_timers(chip, t1 + 1000000000);
	CHECK_EQ(emu_irqchip_run_timers(chip, t1 + 2000000000), 0);
	CHECK_EQ(pit->irqs, 1);
	emu_irqchip_free(chip);
	return t_done("emu_pit");
}
