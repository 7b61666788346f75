/* SPDX-License-Identifier: MIT */
/* The local APIC model (src/emu/lapic.c) against the SDM Vol. 3A chapter 11, with virtual time. */
#include "irq_harness.h"

#define TSC_DEADLINE 0x6e0

static void test_reset(void)
{
	struct emu_irqchip *chip = t_chip(2);
	struct emu_lapic *b = chip->lapic[0], *a = chip->lapic[1];
	/* 11.4.4: base 0xfee00000, enabled, BSP flag on the boot processor only */
	CHECK_EQ(b->base_msr, 0xfee00000ull | APIC_BASE_EN | APIC_BASE_BSP);
	CHECK_EQ(a->base_msr, 0xfee00000ull | APIC_BASE_EN);
	/* 11.4.7.1 power-up state */
	CHECK_EQ(emu_lapic_read(chip, a, APIC_ID, 0), 1u << 24);
	CHECK_EQ(emu_lapic_read(chip, a, APIC_LVR, 0), 0x50014);
	CHECK_EQ(emu_lapic_read(chip, a, APIC_SVR, 0), 0xff);
	CHECK_EQ(emu_lapic_read(chip, a, APIC_DFR, 0), 0xffffffffu);
	for (unsigned off = APIC_LVTT; off <= APIC_LVTERR; off += 0x10)
		CHECK_EQ(emu_lapic_read(chip, a, off, 0), APIC_LVT_MASKED);
	/* the BSP's LINT0 is the virtual wire (KVM's LINT0_REENABLED quirk: no firmware here) */
	CHECK_EQ(emu_lapic_read(chip, b, APIC_LVT0, 0), 0x700);
	CHECK(emu_lapic_accepts_pic(b) && !emu_lapic_accepts_pic(a), "virtual wire on the BSP only");
	emu_irqchip_free(chip);
}

static void test_priority(void)
{
	struct emu_irqchip *chip = t_chip(1);
	struct emu_lapic *l = chip->lapic[0];
	/* 11.4.7.2: a software-disabled APIC takes no fixed interrupt */
	emu_lapic_accept(chip, l, APIC_DM_FIXED, 0x31, false);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	t_lapic_on(chip, 0);
	unsigned k0 = t_kicks[0];
	emu_lapic_accept(chip, l, APIC_DM_FIXED, 0x31, false);
	emu_lapic_accept(chip, l, APIC_DM_FIXED, 0x52, false);
	CHECK_EQ(t_kicks[0], k0 + 2);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_IRR + 0x10, 0), 1u << 0x11); /* vector 0x31: IRR word 1 */
	CHECK_EQ(emu_lapic_peek(l), 0x52);                /* 11.8.4: highest vector first */
	CHECK_EQ(emu_lapic_ack(l), 0x52);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_ISR + 0x20, 0), 1u << 0x12);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_PPR, 0), 0x50); /* 11.8.3.1: PPR = class of ISRV */
	CHECK_EQ(emu_lapic_peek(l), -1);                  /* class 3 does not preempt class 5 */
	emu_lapic_write(chip, l, APIC_TPR, 0x60, 0);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_PPR, 0), 0x60);
	emu_lapic_write(chip, l, APIC_EOI, 0, 0);         /* retires 0x52 */
	CHECK_EQ(emu_lapic_highest_isr(l), -1);
	CHECK_EQ(emu_lapic_peek(l), -1);                  /* TPR 0x60 still masks class 3 */
	emu_lapic_write(chip, l, APIC_TPR, 0x30, 0);
	CHECK_EQ(emu_lapic_peek(l), -1);                  /* class 3 <= TPR class 3 */
	unsigned k1 = t_kicks[0];
	emu_lapic_write(chip, l, APIC_TPR, 0x2f, 0);
	CHECK_EQ(emu_lapic_peek(l), 0x31);                /* and the CPU is told */
	CHECK_EQ(t_kicks[0], k1 + 1);
	/* nested: 0x31 in service, 0x45 arrives and preempts; EOI retires the highest first */
	CHECK_EQ(emu_lapic_ack(l), 0x31);
	emu_lapic_accept(chip, l, APIC_DM_FIXED, 0x45, false);
	CHECK_EQ(emu_lapic_ack(l), 0x45);
	emu_lapic_write(chip, l, APIC_EOI, 0, 0);
	CHECK_EQ(emu_lapic_highest_isr(l), 0x31);
	emu_lapic_write(chip, l, APIC_EOI, 0, 0);
	CHECK_EQ(emu_lapic_highest_isr(l), -1);
	/* 11.5.3: an illegal vector (0-15) sets "received illegal vector" at the next ESR write */
	emu_lapic_accept(chip, l, APIC_DM_FIXED, 5, false);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_ESR, 0), 0);
	emu_lapic_write(chip, l, APIC_ESR, 0, 0);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_ESR, 0), 1u << 6);
	/* level-triggered acceptance sets TMR */
	emu_lapic_accept(chip, l, APIC_DM_FIXED, 0x66, true);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_TMR + 0x30, 0), 1u << 6);
	/* 11.4.7.2: clearing SVR bit 8 masks every LVT, and they cannot be unmasked */
	emu_lapic_write(chip, l, APIC_LVT1, 0x400, 0);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_LVT1, 0), 0x400);
	emu_lapic_write(chip, l, APIC_SVR, 0xff, 0);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_LVT1, 0), 0x400 | APIC_LVT_MASKED);
	emu_lapic_write(chip, l, APIC_LVT1, 0x400, 0);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_LVT1, 0), 0x400 | APIC_LVT_MASKED);
	emu_irqchip_free(chip);
}

static void test_timer(void)
{
	struct emu_irqchip *chip = t_chip(1);
	struct emu_lapic *l = chip->lapic[0];
	t_lapic_on(chip, 0);
	uint64_t t = 1000;
	/* one-shot, divide by 1 (TDCR 1011b): 1000 bus clocks = 1000 ns */
	emu_lapic_write(chip, l, APIC_TDCR, 0xb, t);
	emu_lapic_write(chip, l, APIC_LVTT, 0x40, t);
	emu_lapic_write(chip, l, APIC_TMICT, 1000, t);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_TMCCT, t + 400), 600);
	CHECK_EQ(emu_irqchip_run_timers(chip, t + 999), t + 1000);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	CHECK_EQ(emu_irqchip_run_timers(chip, t + 1000), 0); /* fired, nothing further */
	CHECK_EQ(emu_lapic_highest_irr(l), 0x40);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_TMCCT, t + 5000), 0); /* one-shot stays at 0 */
	emu_lapic_ack(l);
	emu_lapic_write(chip, l, APIC_EOI, 0, t);
	/* divide by 2 (TDCR 0000b) and by 128 (1010b): Figure 11-10 */
	emu_lapic_write(chip, l, APIC_TDCR, 0x0, t);
	emu_lapic_write(chip, l, APIC_TMICT, 100, t);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_TMCCT, t + 50), 75);
	emu_lapic_write(chip, l, APIC_TDCR, 0xa, t);
	emu_lapic_write(chip, l, APIC_TMICT, 100, t);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_TMCCT, t + 128 * 10), 90);
	/* a count of 0 stops it */
	emu_lapic_write(chip, l, APIC_TMICT, 0, t);
	CHECK_EQ(emu_irqchip_run_timers(chip, t + 1000000), 0);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	/* periodic: one interrupt per period, the count reloads */
	emu_lapic_write(chip, l, APIC_TDCR, 0xb, t);
	emu_lapic_write(chip, l, APIC_LVTT, 0x41 | (APIC_TIMER_PERIODIC << 17), t);
	emu_lapic_write(chip, l, APIC_TMICT, 100, t);
	unsigned fired = 0;
	for (uint64_t now = t; now <= t + 1000; now += 10) {
		emu_irqchip_run_timers(chip, now);
		if (emu_lapic_ack(l) == 0x41) {
			fired++;
			emu_lapic_write(chip, l, APIC_EOI, 0, now);
		}
	}
	CHECK_EQ(fired, 10);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_TMCCT, t + 1030), 70);
	/* masked: the timer runs, no interrupt */
	emu_lapic_write(chip, l, APIC_LVTT, 0x41 | (APIC_TIMER_PERIODIC << 17) | APIC_LVT_MASKED, t);
	emu_irqchip_run_timers(chip, t + 2000);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	/* TSC-deadline (11.5.4.1): switching modes disarms; the MSR is ignored in other modes */
	emu_lapic_write(chip, l, APIC_LVTT, 0x42 | (APIC_TIMER_TSC_DEADLINE << 17), t);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_TMICT, t), 0);
	uint64_t v = 1;
	CHECK_EQ(emu_lapic_rdmsr(chip, l, TSC_DEADLINE, &v, t), 0);
	CHECK_EQ(v, 0);
	emu_lapic_write(chip, l, APIC_TMICT, 100, t); /* ignored in this mode */
	CHECK_EQ(emu_lapic_read(chip, l, APIC_TMICT, t), 0);
	/* guest TSC 5000 at now = t: deadline TSC 9000 is 4000 ns ahead (1 GHz) */
	CHECK_EQ(emu_lapic_wrmsr(chip, l, TSC_DEADLINE, 9000, t, 5000), 0);
	emu_lapic_rdmsr(chip, l, TSC_DEADLINE, &v, t);
	CHECK_EQ(v, 9000);
	CHECK_EQ(emu_irqchip_run_timers(chip, t + 3999), t + 4000);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	emu_irqchip_run_timers(chip, t + 4000);
	CHECK_EQ(emu_lapic_highest_irr(l), 0x42);
	emu_lapic_rdmsr(chip, l, TSC_DEADLINE, &v, t + 4000);
	CHECK_EQ(v, 0); /* reset to 0 when it fires */
	emu_lapic_ack(l);
	emu_lapic_write(chip, l, APIC_EOI, 0, t);
	/* a deadline already passed fires at once; writing 0 disarms */
	emu_lapic_wrmsr(chip, l, TSC_DEADLINE, 100, t, 5000);
	CHECK_EQ(emu_lapic_highest_irr(l), 0x42);
	emu_lapic_ack(l);
	emu_lapic_write(chip, l, APIC_EOI, 0, t);
	emu_lapic_wrmsr(chip, l, TSC_DEADLINE, 9000, t, 5000);
	emu_lapic_wrmsr(chip, l, TSC_DEADLINE, 0, t, 5000);
	CHECK_EQ(emu_irqchip_run_timers(chip, t + 100000), 0);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	/* a guest TSC behind host time (the guest wrote the TSC) and the farthest deadline: it lies
	 * ahead, so nothing fires (the sum saturates; found by tests/fuzz/devices.c) */
	emu_lapic_wrmsr(chip, l, TSC_DEADLINE, UINT64_MAX, t, 0);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	CHECK_EQ(emu_irqchip_run_timers(chip, t + 100000), UINT64_MAX);
	CHECK_EQ(emu_lapic_highest_irr(l), -1);
	emu_lapic_wrmsr(chip, l, TSC_DEADLINE, 0, t, 0);
	/* back to one-shot: the TSC-deadline MSR is ignored and reads 0 */
	emu_lapic_write(chip, l, APIC_LVTT, 0x42, t);
	emu_lapic_wrmsr(chip, l, TSC_DEADLINE, 9000, t, 5000);
	emu_lapic_rdmsr(chip, l, TSC_DEADLINE, &v, t);
	CHECK_EQ(v, 0);
	CHECK_EQ(l->timer_fires, 13); /* one-shot 1 + periodic 10 + TSC-deadline 2; masked expiries do not count */
	emu_irqchip_free(chip);
}

static void test_x2apic(void)
{
	struct emu_irqchip *chip = t_chip(20);
	struct emu_lapic *l = chip->lapic[17];
	t_lapic_on(chip, 17);
	uint64_t v;
	/* 11.12.1.2: x2APIC MSRs #GP in xAPIC mode */
	CHECK_EQ(emu_lapic_rdmsr(chip, l, 0x802, &v, 0), -1);
	/* 11.12.5: EXTD without EN, and disabled -> x2APIC directly, are invalid */
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x1b, 0xfee00000ull | APIC_BASE_EXTD, 0, 0), -1);
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x1b, 0xfee00000ull | APIC_BASE_EN | APIC_BASE_EXTD, 0, 0), 0);
	CHECK(emu_lapic_x2apic(l), "x2APIC on");
	CHECK_EQ(emu_lapic_rdmsr(chip, l, 0x802, &v, 0), 0);
	CHECK_EQ(v, 17);                                     /* x2APIC ID */
	CHECK_EQ(emu_lapic_rdmsr(chip, l, 0x80d, &v, 0), 0);
	CHECK_EQ(v, (1u << 16) | (1u << 1));                 /* 11.12.10.2: cluster 1, bit 1 */
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x80d, 0, 0, 0), -1); /* LDR read-only */
	CHECK_EQ(emu_lapic_rdmsr(chip, l, 0x80e, &v, 0), -1);   /* no DFR */
	CHECK_EQ(emu_lapic_rdmsr(chip, l, 0x831, &v, 0), -1);   /* no ICR2 */
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x80b, 1, 0, 0), -1);  /* non-zero EOI */
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x808, 1ull << 32, 0, 0), -1); /* reserved bits */
	CHECK_EQ(emu_lapic_rdmsr(chip, l, 0x80b, &v, 0), -1);   /* EOI is write-only */
	/* SELF IPI register */
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x83f, 0x77, 0, 0), 0);
	CHECK_EQ(emu_lapic_highest_irr(l), 0x77);
	CHECK_EQ(emu_lapic_ack(l), 0x77);
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x80b, 0, 0, 0), 0);
	CHECK_EQ(emu_lapic_highest_isr(l), -1);
	/* 64-bit ICR: physical destination 3 (in xAPIC mode, ID 3) */
	t_lapic_on(chip, 3);
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x830, (3ull << 32) | 0x4055, 0, 0), 0);
	CHECK_EQ(emu_lapic_highest_irr(chip->lapic[3]), 0x55);
	/* x2APIC -> xAPIC is invalid; -> disabled is fine, and resets the registers */
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x1b, 0xfee00000ull | APIC_BASE_EN, 0, 0), -1);
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x1b, 0xfee00000ull, 0, 0), 0);
	CHECK(!emu_lapic_hw_enabled(l), "disabled");
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x1b, 0xfee00000ull | APIC_BASE_EN, 0, 0), 0);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_ID, 0), 17u << 24);
	CHECK_EQ(emu_lapic_read(chip, l, APIC_SVR, 0), 0xff);
	/* reserved bits of IA32_APIC_BASE */
	CHECK_EQ(emu_lapic_wrmsr(chip, l, 0x1b, 0xfee00000ull | APIC_BASE_EN | 1, 0, 0), -1);
	emu_irqchip_free(chip);
}

static void test_ipi(void)
{
	struct emu_irqchip *chip = t_chip(4);
	for (unsigned k = 0; k < 4; k++)
		t_lapic_on(chip, k);
	struct emu_lapic **L = chip->lapic;
	/* fixed, physical destination 2 */
	emu_lapic_write(chip, L[0], APIC_ICR2, 2u << 24, 0);
	emu_lapic_write(chip, L[0], APIC_ICR, 0x4031, 0);
	CHECK_EQ(emu_lapic_highest_irr(L[2]), 0x31);
	CHECK_EQ(emu_lapic_highest_irr(L[1]), -1);
	CHECK_EQ(emu_lapic_read(chip, L[0], APIC_ICR, 0) & APIC_LVT_PENDING, 0); /* idle at once */
	/* logical, flat model (11.6.2.2): LDR bits 31:24 against the 8-bit MDA */
	emu_lapic_write(chip, L[1], APIC_LDR, 0x01000000, 0);
	emu_lapic_write(chip, L[3], APIC_LDR, 0x04000000, 0);
	emu_lapic_write(chip, L[0], APIC_ICR2, 0x05u << 24, 0);
	emu_lapic_write(chip, L[0], APIC_ICR, 0x4832, 0);
	CHECK_EQ(emu_lapic_highest_irr(L[1]), 0x32);
	CHECK_EQ(emu_lapic_highest_irr(L[3]), 0x32);
	CHECK_EQ(emu_lapic_highest_irr(L[2]), 0x31);
	/* cluster model: DFR 0x0fffffff; cluster 1 member 2 */
	emu_lapic_write(chip, L[2], APIC_DFR, 0x0fffffff, 0);
	emu_lapic_write(chip, L[2], APIC_LDR, 0x12000000, 0);
	emu_lapic_write(chip, L[0], APIC_ICR2, 0x12u << 24, 0);
	emu_lapic_write(chip, L[0], APIC_ICR, 0x4833, 0);
	CHECK_EQ(emu_lapic_highest_irr(L[2]), 0x33);
	/* shorthands: all excluding self, self */
	emu_lapic_write(chip, L[1], APIC_ICR, 0x4034 | (APIC_DEST_ALLBUT << 18), 0);
	CHECK_EQ(emu_lapic_highest_irr(L[0]), 0x34);
	CHECK_EQ(emu_lapic_highest_irr(L[1]), 0x32);
	CHECK_EQ(emu_lapic_highest_irr(L[3]), 0x34);
	emu_lapic_write(chip, L[1], APIC_ICR, 0x4035 | (APIC_DEST_SELF << 18), 0);
	CHECK_EQ(emu_lapic_highest_irr(L[1]), 0x35);
	/* lowest priority to {1, 3}: one of them only (the lower PPR: raise 1's TPR) */
	emu_lapic_write(chip, L[1], APIC_TPR, 0x20, 0);
	emu_lapic_write(chip, L[0], APIC_ICR2, 0x05u << 24, 0);
	emu_lapic_write(chip, L[0], APIC_ICR, 0x4936, 0);
	CHECK_EQ(emu_lapic_highest_irr(L[3]), 0x36);
	CHECK_EQ(emu_lapic_highest_irr(L[1]), 0x35);
	/* NMI (delivery mode 100b) */
	emu_lapic_write(chip, L[0], APIC_ICR2, 3u << 24, 0);
	emu_lapic_write(chip, L[0], APIC_ICR, 0x4400, 0);
	CHECK_EQ(L[3]->nmi_pending, 1);
	/* INIT, then SIPI (9.4.4.1): a SIPI counts only in wait-for-SIPI */
	emu_lapic_write(chip, L[0], APIC_ICR, 0x4699, 0); /* SIPI before INIT: ignored */
	CHECK_EQ(L[3]->sipi_vector, -1);
	emu_lapic_write(chip, L[0], APIC_ICR, 0xc500, 0); /* INIT level assert */
	CHECK(L[3]->init_pending, "INIT accepted");
	L[3]->init_pending = false;
	L[3]->mp_state = EMU_MP_INIT_RECEIVED; /* what the vCPU side does with it */
	emu_lapic_write(chip, L[0], APIC_ICR, 0x8500, 0); /* INIT level de-assert: no effect */
	CHECK(!L[3]->init_pending, "de-assert ignored");
	emu_lapic_write(chip, L[0], APIC_ICR, 0x4699, 0);
	CHECK_EQ(L[3]->sipi_vector, 0x99);
	/* INIT resets the registers, not the APIC ID (SDM Vol. 3 11.4.7.3) */
	emu_lapic_write(chip, L[3], APIC_SVR, 0x1ff, 0);
	emu_lapic_write(chip, L[3], APIC_TPR, 0x40, 0);
	L[3]->id = 7u << 24;
	emu_lapic_init_reset(L[3]);
	CHECK_EQ(emu_lapic_read(chip, L[3], APIC_SVR, 0), 0xff);
	CHECK_EQ(emu_lapic_read(chip, L[3], APIC_TPR, 0), 0);
	CHECK_EQ(emu_lapic_read(chip, L[3], APIC_LVTT, 0), APIC_LVT_MASKED);
	CHECK_EQ(emu_lapic_read(chip, L[3], APIC_ID, 0), 7u << 24);
	CHECK_EQ(L[3]->nmi_pending, 0);
	L[3]->id = 3u << 24;
	emu_lapic_write(chip, L[3], APIC_SVR, 0x1ff, 0); /* software-enabled again for what follows */
	/* broadcast physical 0xff reaches all four */
	emu_lapic_write(chip, L[0], APIC_ICR2, 0xffu << 24, 0);
	emu_lapic_write(chip, L[0], APIC_ICR, 0x40f0, 0);
	for (unsigned k = 0; k < 4; k++)
		CHECK_EQ(emu_lapic_highest_irr(L[k]), 0xf0);
	emu_irqchip_free(chip);
}

int main(void)
{
	test_reset();
	test_priority();
	test_timer();
	test_x2apic();
	test_ipi();
	return t_done("emu_lapic");
}
