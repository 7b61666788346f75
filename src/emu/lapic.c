/* SPDX-License-Identifier: MIT */
/*
 * The local APIC (Intel SDM Vol. 3A chapter 11 "Advanced Programmable Interrupt Controller (APIC)"),
 * one per vCPU, in xAPIC mode (MMIO page at IA32_APIC_BASE) and x2APIC mode (MSRs 0x800-0x8ff,
 * SDM 11.12). KVM's arch/x86/kvm/lapic.c was the reference for the choices the SDM leaves open
 * (reset values of a virtual BSP, what a guest may write); the code is this project's own.
 *
 * Model: IRR/ISR/TMR are 256-bit sets; the processor priority is PPR = max(TPR, class of the
 * highest ISR vector) (11.8.3.1); the CPU takes the highest IRR vector whose class is above PPR's
 * (11.8.4). EOI retires the highest ISR vector and, if it was level-triggered (TMR), broadcasts
 * the EOI to the I/O APIC (11.8.5). Interrupt messages are accepted at once: the ICR's delivery
 * status always reads idle. Every function runs under chip->lock.
 *
 * Timer (11.5.4): counts at the APIC bus clock (EMU_TSC_HZ) divided by TDCR; one-shot, periodic,
 * and TSC-deadline (11.5.4.1; IA32_TSC_DEADLINE is reset to 0 when it fires). The model keeps the
 * next expiry in timer_deadline; irqchip.c's timer thread calls emu_lapic_timer_expired() then.
 */
#include <string.h>

#include "emu/irq.h"

#define TESTB(r, v) (((r)[(v) >> 5] >> ((v) & 31)) & 1u)
#define SETB(r, v) ((r)[(v) >> 5] |= 1u << ((v) & 31))
#define CLRB(r, v) ((r)[(v) >> 5] &= ~(1u << ((v) & 31)))

#define MSR_IA32_APIC_BASE 0x1b
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define APIC_BASE_RESERVED (0x2ffull | ~((1ull << 39) - 1)) /* bits 0-7, 9, above MAXPHYADDR (39) */

static int highest(const uint32_t r[8])
{
	for (int k = 7; k >= 0; k--)
		if (r[k])
			return k * 32 + 31 - __builtin_clz(r[k]);
	return -1;
}

int emu_lapic_highest_irr(const struct emu_lapic *l) { return highest(l->irr); }
int emu_lapic_highest_isr(const struct emu_lapic *l) { return highest(l->isr); }

bool emu_lapic_hw_enabled(const struct emu_lapic *l) { return l->base_msr & APIC_BASE_EN; }
bool emu_lapic_x2apic(const struct emu_lapic *l) { return (l->base_msr & (APIC_BASE_EN | APIC_BASE_EXTD)) ==
							  (APIC_BASE_EN | APIC_BASE_EXTD); }
static bool sw_enabled(const struct emu_lapic *l) { return l->svr & APIC_SVR_ENABLE; }

static uint32_t x2apic_ldr(unsigned id) { return ((id >> 4) << 16) | (1u << (id & 0xf)); } /* 11.12.10.2 */

/* Registers to their power-up values (SDM 11.4.7.1), the ID and IA32_APIC_BASE kept by the caller. */
static void regs_reset(struct emu_lapic *l)
{
	l->id = l->cpu << 24;
	l->tpr = l->ldr = l->esr = l->esr_pending = l->icr_lo = l->icr_hi = 0;
	l->dfr = 0xffffffffu;
	l->svr = 0xff;
	for (int k = 0; k < LVT_N; k++)
		l->lvt[k] = APIC_LVT_MASKED;
	memset(l->irr, 0, sizeof l->irr);
	memset(l->isr, 0, sizeof l->isr);
	memset(l->tmr, 0, sizeof l->tmr);
	l->tmict = l->tdcr = 0;
	l->timer_start = l->timer_period = l->timer_deadline = l->tsc_deadline = 0;
	if (emu_lapic_x2apic(l)) {
		l->id = l->cpu;
		l->ldr = x2apic_ldr(l->cpu);
	}
}

void emu_lapic_reset(struct emu_lapic *l, unsigned cpu)
{
	memset(l, 0, sizeof *l);
	l->cpu = cpu;
	l->base_msr = EMU_APIC_DEFAULT_BASE | APIC_BASE_EN | (cpu == 0 ? APIC_BASE_BSP : 0);
	regs_reset(l);
	/* There is no firmware to program the virtual wire: as KVM's KVM_X86_QUIRK_LINT0_REENABLED, the
	 * BSP's LINT0 comes up as unmasked ExtINT, so the 8259's INTR reaches the BSP as on a PC after
	 * the BIOS (SDM 11.5.1; MP spec 3.6.2.2 "virtual wire mode"). */
	if (cpu == 0)
		l->lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
	l->mp_state = EMU_MP_RUNNABLE;
	l->sipi_vector = -1;
}

void emu_lapic_init_reset(struct emu_lapic *l)
{
	uint32_t id = l->id;
	regs_reset(l);
	l->id = id;
	l->nmi_pending = 0;
	/* KVM's kvm_lapic_reset(vcpu, true) re-enables LINT0 as ExtINT on INIT too, for the vCPU
	 * that was the BSP at RESET (kvm_vcpu_is_reset_bsp; KVM_X86_QUIRK_LINT0_REENABLED) */
	if (l->cpu == 0)
		l->lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
}

uint32_t emu_lapic_ppr(const struct emu_lapic *l)
{
	int isrv = highest(l->isr);
	uint32_t isrc = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	return (l->tpr & 0xf0) >= isrc ? l->tpr & 0xff : isrc;
}

int emu_lapic_peek(const struct emu_lapic *l)
{
	if (!emu_lapic_hw_enabled(l))
		return -1;
	int v = highest(l->irr);
	if (v < 0 || ((uint32_t)v & 0xf0) <= (emu_lapic_ppr(l) & 0xf0))
		return -1;
	return v;
}

int emu_lapic_ack(struct emu_lapic *l)
{
	int v = emu_lapic_peek(l);
	if (v < 0)
		return -1;
	CLRB(l->irr, v);
	SETB(l->isr, v);
	return v;
}

bool emu_lapic_accepts_pic(const struct emu_lapic *l)
{
	if (!emu_lapic_hw_enabled(l))
		return l->cpu == 0; /* the APIC disabled: INTR goes straight to the CPU (SDM 11.4.3) */
	uint32_t lvt0 = l->lvt[LVT_LINT0];
	return !(lvt0 & APIC_LVT_MASKED) && ((lvt0 >> 8) & 7) == APIC_DM_EXTINT;
}

static void kick(struct emu_irqchip *chip, const struct emu_lapic *l)
{
	if (chip && chip->kick)
		chip->kick(chip->kick_arg, l->cpu);
}

void emu_lapic_accept(struct emu_irqchip *chip, struct emu_lapic *l, unsigned dm, unsigned vector, bool level)
{
	if (!emu_lapic_hw_enabled(l))
		return;
	switch (dm) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		/* A software-disabled APIC takes no fixed interrupts (11.4.7.2); vectors 0-15 are
		 * illegal: "received illegal vector" in the ESR, nothing in the IRR (11.5.3). */
		if (!sw_enabled(l))
			return;
		if (vector < 16) {
			l->esr_pending |= 1u << 6;
			return;
		}
		SETB(l->irr, vector);
		if (level)
			SETB(l->tmr, vector);
		else
			CLRB(l->tmr, vector);
		kick(chip, l);
		return;
	case APIC_DM_NMI:
		if (l->nmi_pending < 2)
			l->nmi_pending++; /* one in service and one latched at most (SDM Vol. 3 6.7.1) */
		kick(chip, l);
		return;
	case APIC_DM_INIT:
		/* INIT (11.6.1, 9.4.2): the processor goes to the INIT state, an AP then to wait-for-SIPI;
		 * the vCPU side acts on it (irqchip.c accept_init_sipi, as kvm_apic_accept_events). */
		l->init_pending = true;
		l->sipi_vector = -1; /* a SIPI before this INIT does not start the vCPU after it */
		kick(chip, l);
		return;
	case APIC_DM_STARTUP:
		l->sipi_last = (uint8_t)vector;
		/* A SIPI counts only in wait-for-SIPI (9.4.4.1): it names the page of the real-mode
		 * start-up code. Recorded; irqchip.c starts the vCPU there (see its comment). An INIT
		 * the vCPU has not taken yet counts as taken: the sender cannot know how fast the
		 * target runs (KVM keeps both as pending events and takes INIT first,
		 * kvm_apic_accept_events()). */
		if (l->mp_state == EMU_MP_INIT_RECEIVED || l->init_pending) {
			l->sipi_vector = (int)(vector & 0xff);
			kick(chip, l);
		}
		return;
	default:
		return; /* SMI and ExtINT messages are not modelled (no SMM; ExtINT comes through LINT0) */
	}
}

bool emu_lapic_match_dest(const struct emu_lapic *l, uint32_t dest, bool logical)
{
	if (!emu_lapic_hw_enabled(l))
		return false;
	if (emu_lapic_x2apic(l)) {
		if (dest == 0xffffffffu)
			return true;
		if (!logical)
			return dest == l->cpu;
		/* x2APIC logical: cluster in bits 31:16, one bit per member in 15:0 (11.12.10.2) */
		return (dest >> 16) == (l->ldr >> 16) && (dest & l->ldr & 0xffff);
	}
	uint32_t mda = dest & 0xff;
	if (mda == 0xff || dest == 0xffffffffu)
		return true;
	if (!logical)
		return mda == (l->id >> 24);
	uint32_t ldr = l->ldr >> 24;
	if ((l->dfr >> 28) == 0xf)
		return (ldr & mda) != 0;                                 /* flat model (11.6.2.2) */
	return (ldr >> 4) == (mda >> 4) && (ldr & mda & 0xf) != 0;      /* cluster model */
}

void emu_apic_deliver(struct emu_irqchip *chip, struct emu_lapic *src, unsigned shorthand, uint32_t dest,
		      bool logical, unsigned dm, unsigned vector, bool level)
{
	struct emu_lapic *sel[EMU_IRQ_MAX_CPUS];
	unsigned n = 0;
	for (unsigned k = 0; k < chip->ncpus; k++) {
		struct emu_lapic *l = chip->lapic[k];
		if (!l)
			continue;
		bool hit;
		switch (shorthand) {
		case APIC_DEST_SELF: hit = l == src; break;
		case APIC_DEST_ALLINC: hit = true; break;
		case APIC_DEST_ALLBUT: hit = l != src; break;
		default: hit = emu_lapic_match_dest(l, dest, logical); break;
		}
		if (hit)
			sel[n++] = l;
	}
	if (dm == APIC_DM_LOWEST && n > 1) {
		/* lowest priority (11.6.2.4): the selected APIC with the lowest PPR, the first on a tie */
		unsigned best = 0;
		for (unsigned k = 1; k < n; k++)
			if (emu_lapic_ppr(sel[k]) < emu_lapic_ppr(sel[best]))
				best = k;
		sel[0] = sel[best];
		n = 1;
	}
	for (unsigned k = 0; k < n; k++)
		emu_lapic_accept(chip, sel[k], dm, vector, level);
}

static void eoi(struct emu_irqchip *chip, struct emu_lapic *l)
{
	int v = highest(l->isr);
	if (v < 0)
		return;
	CLRB(l->isr, v);
	/* level-triggered (TMR): the EOI message goes to the I/O APIC unless suppressed (SVR bit 12
	 * is not offered: APIC_VERSION bit 24 is 0); an edge vector's EOI is told to the I/O APIC too,
	 * for the PIT's reinjection (KVM's ack notifiers), without touching Remote IRR */
	if (chip)
		emu_ioapic_eoi(chip, (unsigned)v, TESTB(l->tmr, v));
	if (emu_lapic_peek(l) >= 0)
		kick(chip, l);
}

/* ---------------------------------------------------------------- timer */

static unsigned timer_mode(const struct emu_lapic *l) { return (l->lvt[LVT_TIMER] >> 17) & 3; }

/* TDCR bits 0, 1, 3 (Figure 11-10): 000 -> 2, 001 -> 4, ..., 110 -> 128, 111 -> 1 */
static uint64_t divisor(const struct emu_lapic *l)
{
	unsigned v = (l->tdcr & 3) | ((l->tdcr & 8) >> 1);
	return 1ull << ((v + 1) & 7);
}

static void timer_changed(struct emu_irqchip *chip)
{
	if (chip)
		emu_irqchip_timer_changed(chip);
}

static void timer_start(struct emu_irqchip *chip, struct emu_lapic *l, uint64_t now)
{
	if (l->tmict == 0 || timer_mode(l) == APIC_TIMER_TSC_DEADLINE) {
		l->timer_period = l->timer_deadline = 0; /* a count of 0 stops the timer (11.5.4) */
	} else {
		l->timer_period = (uint64_t)l->tmict * divisor(l) * (1000000000ull / EMU_TSC_HZ);
		l->timer_start = now;
		l->timer_deadline = now + l->timer_period;
	}
	timer_changed(chip);
}

static uint32_t current_count(const struct emu_lapic *l, uint64_t now)
{
	if (timer_mode(l) == APIC_TIMER_TSC_DEADLINE || !l->timer_period || now < l->timer_start)
		return 0;
	uint64_t el = now - l->timer_start;
	if (el >= l->timer_period) {
		if (timer_mode(l) != APIC_TIMER_PERIODIC)
			return 0; /* one-shot: stays at 0 */
		el %= l->timer_period;
	}
	return (uint32_t)((l->timer_period - el) / divisor(l));
}

void emu_lapic_timer_expired(struct emu_irqchip *chip, struct emu_lapic *l, uint64_t now)
{
	if (!l->timer_deadline || now < l->timer_deadline)
		return;
	uint32_t lvt = l->lvt[LVT_TIMER];
	if (!(lvt & APIC_LVT_MASKED)) {
		emu_lapic_accept(chip, l, APIC_DM_FIXED, lvt & 0xff, false);
		l->timer_fires++;
	}
	switch (timer_mode(l)) {
	case APIC_TIMER_PERIODIC:
		/* next period from this expiry; a thread that woke more than a period late does not
		 * make up the lost ticks (they coalesce in the IRR bit, as KVM's) */
		l->timer_start = l->timer_deadline;
		l->timer_deadline += l->timer_period;
		if (l->timer_deadline <= now) {
			l->timer_start = now;
			l->timer_deadline = now + l->timer_period;
		}
		break;
	case APIC_TIMER_TSC_DEADLINE:
		l->tsc_deadline = 0;
		l->timer_deadline = 0;
		break;
	default:
		l->timer_deadline = 0; /* one-shot: the count stays 0 */
		break;
	}
	timer_changed(chip);
}

static void write_lvtt(struct emu_irqchip *chip, struct emu_lapic *l, uint32_t v, uint64_t now)
{
	unsigned old = timer_mode(l);
	l->lvt[LVT_TIMER] = v;
	unsigned mode = timer_mode(l);
	if (mode == 3)
		l->lvt[LVT_TIMER] &= ~(3u << 17); /* reserved mode: one-shot */
	if ((old == APIC_TIMER_TSC_DEADLINE) != (mode == APIC_TIMER_TSC_DEADLINE)) {
		/* switching to or from TSC-deadline mode disarms the timer (11.5.4.1; KVM clears TMICT) */
		l->tmict = 0;
		l->tsc_deadline = 0;
		l->timer_period = l->timer_deadline = 0;
		timer_changed(chip);
	}
	(void)now;
}

/* ---------------------------------------------------------------- registers */

static bool lvt_offset(unsigned off, int *k)
{
	if (off < APIC_LVTT || off > APIC_LVTERR || (off & 0xf))
		return false;
	*k = (int)((off - APIC_LVTT) >> 4);
	return true;
}

uint32_t emu_lapic_read(struct emu_irqchip *chip, struct emu_lapic *l, unsigned off, uint64_t now)
{
	(void)chip;
	int k;
	if (lvt_offset(off, &k))
		return l->lvt[k];
	if (off >= APIC_ISR && off < APIC_ISR + 0x80)
		return l->isr[(off - APIC_ISR) >> 4];
	if (off >= APIC_TMR && off < APIC_TMR + 0x80)
		return l->tmr[(off - APIC_TMR) >> 4];
	if (off >= APIC_IRR && off < APIC_IRR + 0x80)
		return l->irr[(off - APIC_IRR) >> 4];
	switch (off) {
	case APIC_ID: return l->id;
	case APIC_LVR: return APIC_VERSION;
	case APIC_TPR: return l->tpr;
	case APIC_PPR: return emu_lapic_ppr(l);
	case APIC_LDR: return l->ldr;
	case APIC_DFR: return l->dfr;
	case APIC_SVR: return l->svr;
	case APIC_ESR: return l->esr;
	case APIC_ICR: return l->icr_lo & ~APIC_LVT_PENDING; /* sent at once: delivery status idle */
	case APIC_ICR2: return l->icr_hi;
	case APIC_TMICT: return l->tmict;
	case APIC_TMCCT: return current_count(l, now);
	case APIC_TDCR: return l->tdcr;
	default: return 0; /* APR, RRD, EOI and reserved offsets read 0 */
	}
}

static void send_ipi(struct emu_irqchip *chip, struct emu_lapic *l)
{
	uint32_t lo = l->icr_lo;
	unsigned dm = (lo >> 8) & 7, shorthand = (lo >> 18) & 3;
	bool logical = lo & (1u << 11), assert = lo & (1u << 14), level = lo & (1u << 15);
	if (dm == APIC_DM_INIT && level && !assert)
		return; /* INIT level de-assert: no effect on Pentium 4 and later (11.6.1) */
	uint32_t dest;
	if (emu_lapic_x2apic(l)) {
		dest = l->icr_hi;
	} else {
		dest = l->icr_hi >> 24;
		if (dest == 0xff)
			dest = 0xffffffffu; /* xAPIC broadcast */
	}
	emu_apic_deliver(chip, l, shorthand, dest, logical, dm, lo & 0xff, level && dm == APIC_DM_FIXED);
}

static void set_svr(struct emu_lapic *l, uint32_t v)
{
	l->svr = v & 0x3ff; /* vector, APIC enable, focus processor checking */
	if (!sw_enabled(l))
		for (int k = 0; k < LVT_N; k++)
			l->lvt[k] |= APIC_LVT_MASKED; /* 11.4.7.2: software disable masks every LVT */
}

int emu_lapic_write(struct emu_irqchip *chip, struct emu_lapic *l, unsigned off, uint32_t v, uint64_t now)
{
	const bool x2 = emu_lapic_x2apic(l);
	int k;
	if (lvt_offset(off, &k)) {
		static const uint32_t mask[LVT_N] = {
			[LVT_TIMER] = 0x700ff,   /* vector, mask, timer mode */
			[LVT_THERMAL] = 0x107ff, /* vector, delivery mode, mask */
			[LVT_PERF] = 0x107ff,
			[LVT_LINT0] = 0x1a7ff,   /* + polarity, trigger mode */
			[LVT_LINT1] = 0x1a7ff,
			[LVT_ERROR] = 0x100ff,
		};
		uint32_t nv = v & mask[k];
		if (!sw_enabled(l))
			nv |= APIC_LVT_MASKED;
		if (k == LVT_TIMER)
			write_lvtt(chip, l, nv, now);
		else
			l->lvt[k] = nv | (l->lvt[k] & APIC_LVT_REMOTE_IRR);
		return 0;
	}
	switch (off) {
	case APIC_ID:
		if (x2)
			return -1;
		l->id = v & 0xff000000u;
		return 0;
	case APIC_TPR:
		l->tpr = v & 0xff;
		if (emu_lapic_peek(l) >= 0)
			kick(chip, l);
		return 0;
	case APIC_EOI:
		if (x2 && v)
			return -1; /* 11.12.1.2: a non-zero write to the x2APIC EOI register #GPs */
		eoi(chip, l);
		return 0;
	case APIC_LDR:
		if (x2)
			return -1;
		l->ldr = v & 0xff000000u;
		return 0;
	case APIC_DFR:
		if (x2)
			return -1;
		l->dfr = v | 0x0fffffffu;
		return 0;
	case APIC_SVR:
		set_svr(l, v);
		return 0;
	case APIC_ESR:
		if (x2 && v)
			return -1;
		l->esr = l->esr_pending; /* a write latches the errors seen since the last one (11.5.3) */
		l->esr_pending = 0;
		return 0;
	case APIC_ICR2:
		if (x2)
			return -1;
		l->icr_hi = v & 0xff000000u;
		return 0;
	case APIC_ICR:
		l->icr_lo = v & 0xcdfff; /* vector, mode, dest mode, level, trigger, shorthand */
		send_ipi(chip, l);
		return 0;
	case APIC_TMICT:
		if (timer_mode(l) == APIC_TIMER_TSC_DEADLINE)
			return 0; /* ignored in TSC-deadline mode (11.5.4.1) */
		l->tmict = v;
		timer_start(chip, l, now);
		return 0;
	case APIC_TDCR:
		l->tdcr = v & 0xb;
		return 0;
	case APIC_SELF_IPI:
		if (!x2)
			return 0;
		emu_lapic_accept(chip, l, APIC_DM_FIXED, v & 0xff, false);
		return 0;
	default:
		return x2 ? -1 : 0; /* read-only and reserved registers: ignored (xAPIC), #GP (x2APIC) */
	}
}

/* ---------------------------------------------------------------- MSRs */

/* x2APIC MSR -> register offset, for the registers x2APIC mode has (SDM Table 11-6), else -1 */
static int x2apic_offset(uint32_t msr, bool write)
{
	if (msr < 0x800 || msr > 0x8ff)
		return -1;
	unsigned off = (msr - 0x800) << 4;
	if ((off >= APIC_ISR && off < APIC_IRR + 0x80) || (off >= APIC_LVTT && off <= APIC_LVTERR))
		return write && !(off >= APIC_LVTT) ? -1 : (int)off;
	switch (off) {
	case APIC_ID: case APIC_LVR: case APIC_PPR: case APIC_LDR: case APIC_TMCCT:
		return write ? -1 : (int)off;
	case APIC_EOI: case APIC_SELF_IPI:
		return write ? (int)off : -1;
	case APIC_TPR: case APIC_SVR: case APIC_ESR: case APIC_ICR: case APIC_TMICT: case APIC_TDCR:
		return (int)off;
	default:
		return -1;
	}
}

int emu_lapic_rdmsr(struct emu_irqchip *chip, struct emu_lapic *l, uint32_t msr, uint64_t *v, uint64_t now)
{
	if (msr == MSR_IA32_APIC_BASE) {
		*v = l->base_msr;
		return 0;
	}
	if (msr == MSR_IA32_TSC_DEADLINE) {
		*v = timer_mode(l) == APIC_TIMER_TSC_DEADLINE ? l->tsc_deadline : 0;
		return 0;
	}
	if (!emu_lapic_x2apic(l))
		return -1; /* x2APIC MSRs #GP unless x2APIC mode is on (11.12.1.2) */
	int off = x2apic_offset(msr, false);
	if (off < 0)
		return -1;
	if (off == APIC_ICR)
		*v = ((uint64_t)l->icr_hi << 32) | (l->icr_lo & ~APIC_LVT_PENDING);
	else
		*v = emu_lapic_read(chip, l, (unsigned)off, now);
	return 0;
}

static int write_apic_base(struct emu_irqchip *chip, struct emu_lapic *l, uint64_t v)
{
	if (v & APIC_BASE_RESERVED)
		return -1;
	uint64_t old = l->base_msr;
	bool was_en = old & APIC_BASE_EN, was_x2 = emu_lapic_x2apic(l);
	bool en = v & APIC_BASE_EN, extd = v & APIC_BASE_EXTD;
	/* SDM 11.12.5, Figure 11-27: EXTD without EN is invalid; x2APIC -> xAPIC must go through
	 * disabled; disabled -> x2APIC must go through xAPIC. */
	if (extd && !en)
		return -1;
	if (was_x2 && en && !extd)
		return -1;
	if (!was_en && extd)
		return -1;
	l->base_msr = v;
	if (was_en && !en) {
		regs_reset(l); /* the APIC disabled: back to the power-up state (11.4.3) */
		l->nmi_pending = 0;
	}
	if (!was_x2 && en && extd) {
		l->id = l->cpu; /* x2APIC ID and the derived logical ID (11.12.5.1) */
		l->ldr = x2apic_ldr(l->cpu);
	}
	if (!was_en && en)
		l->id = l->cpu << 24;
	timer_changed(chip);
	return 0;
}

int emu_lapic_wrmsr(struct emu_irqchip *chip, struct emu_lapic *l, uint32_t msr, uint64_t v, uint64_t now,
		    uint64_t tsc_now)
{
	if (msr == MSR_IA32_APIC_BASE)
		return write_apic_base(chip, l, v);
	if (msr == MSR_IA32_TSC_DEADLINE) {
		if (timer_mode(l) != APIC_TIMER_TSC_DEADLINE || !emu_lapic_hw_enabled(l))
			return 0; /* ignored outside TSC-deadline mode (11.5.4.1) */
		l->tsc_deadline = v;
		if (!v) {
			l->timer_deadline = 0; /* writing 0 disarms */
		} else {
			/* the guest TSC runs at EMU_TSC_HZ = 1 GHz: one tick is one nanosecond. The sum
			 * saturates: a guest whose TSC is behind host time (it wrote IA32_TIME_STAMP_COUNTER)
			 * and arms a far deadline must not wrap round to "already passed" and fire now. */
			uint64_t ahead = v > tsc_now ? v - tsc_now : 0;
			l->timer_deadline = ahead > UINT64_MAX - now ? UINT64_MAX : now + ahead;
			if (l->timer_deadline <= now)
				emu_lapic_timer_expired(chip, l, now); /* already passed: fires at once */
		}
		timer_changed(chip);
		return 0;
	}
	if (!emu_lapic_x2apic(l))
		return -1;
	int off = x2apic_offset(msr, true);
	if (off < 0)
		return -1;
	if (off == APIC_ICR) {
		l->icr_hi = (uint32_t)(v >> 32);
		l->icr_lo = (uint32_t)v & 0xcdfff;
		send_ipi(chip, l);
		return 0;
	}
	if (v >> 32)
		return -1; /* the other x2APIC registers are 32 bits wide; reserved bits #GP */
	return emu_lapic_write(chip, l, (unsigned)off, (uint32_t)v, now);
}
