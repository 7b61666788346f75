/* SPDX-License-Identifier: MIT */
/*
 * halt: halts with interrupts disabled; nothing can wake it, so the monitor must end the VM (125).
 *
 * Command line, for the dead-VM rule (src/emu/irqchip.c vm_dead(), src/vmm/dead.c on kvm):
 *   (empty)      cli; hlt on vCPU 0: dead (status 125). Other vCPUs stay waiting for INIT/SIPI.
 *   park         every AP parks with cli; hlt; vCPU 0 then waits with sti; hlt for N_TICKS ticks of
 *                its LAPIC timer (periodic, 10 ms at the 1 GHz APIC bus of both engines), prints
 *                "halt: park: took N ticks" and exits 0: never dead (vCPU 0 can be woken), though
 *                every vCPU sleeps most of the time.
 *   park-halt    the same, then vCPU 0 halts with cli; hlt too: dead (125), every vCPU halted.
 *   nmi          the PIT's counter 0 ticks (mode 2, 10 ms) and LVT0 takes it as an NMI (KVM's
 *                NMI-watchdog wire); vCPU 0 halts with cli; hlt in a loop and exits 0 from its
 *                N_TICKS-th NMI: never dead (an NMI source exists), though IF = 0 throughout.
 *   nmi-ioapic   the same through the I/O APIC: pin 2 (the PIT, ISA override) in NMI delivery mode
 *                to APIC ID 0, LVT0 masked.
 *   lint1        the PIT ticks, but only LVT1 is in NMI mode (pin 2 and LVT0 masked): nothing drives
 *                LINT1 (a PC's chipset NMI line), so nothing can wake vCPU 0: dead (125).
 */
#include "rt.h"

#define APIC ((volatile uint32_t *)(uintptr_t)0xfee00000u)
#define R(off) APIC[(off) / 4]
#define IOAPIC_SEL ((volatile uint32_t *)(uintptr_t)0xfec00000u)
#define IOAPIC_WIN ((volatile uint32_t *)(uintptr_t)0xfec00010u)
#define V_TIMER 0x40
#define V_SPURIOUS 0xff
#define N_TICKS 30

static volatile unsigned ticks, parked;

static void on_timer(struct rt_frame *f)
{
	(void)f;
	ticks++;
	R(0xb0) = 0; /* EOI */
}

static void on_nmi(struct rt_frame *f)
{
	(void)f;
	if (++ticks == N_TICKS) {
		rt_printf("halt: nmi: took %u NMIs\n", ticks);
		rt_exit(RT_EXIT_OK);
	}
}

static void park(unsigned cpu, void *arg)
{
	bool halt_after = arg != NULL;
	if (cpu != 0) {
		__atomic_fetch_add(&parked, 1, __ATOMIC_SEQ_CST);
		cli();
		hlt();
		rt_printf("halt: vCPU %u woke up?!\n", cpu);
		rt_exit(RT_EXIT_FAIL);
	}
	while (__atomic_load_n(&parked, __ATOMIC_SEQ_CST) < rt_cpu_count() - 1)
		pause();
	rt_set_handler(V_TIMER, on_timer);
	R(0xf0) = 0x100 | V_SPURIOUS;      /* SVR: software enable */
	R(0x3e0) = 0xb;                    /* TDCR: divide by 1 */
	R(0x320) = V_TIMER | (1u << 17);   /* LVTT: periodic */
	R(0x380) = 10000000;               /* TMICT: 10 ms */
	for (;;) {
		cli();
		if (ticks >= N_TICKS)
			break;
		__asm__ volatile("sti; hlt" ::: "memory");
	}
	R(0x380) = 0;                      /* the timer stops */
	rt_printf("halt: park: took %u ticks\n", (unsigned)N_TICKS);
	if (!halt_after)
		rt_exit(RT_EXIT_OK);
	rt_puts("halting with interrupts off\n");
	hlt();
	rt_puts("woke up?!\n");
	rt_exit(RT_EXIT_FAIL);
}

int guest_main(void)
{
	const char *s = rt_cmdline();
	while (*s == ' ')
		s++;
	if (strcmp(s, "park") == 0 || strcmp(s, "park-halt") == 0) {
		rt_smp_run(park, strcmp(s, "park-halt") == 0 ? (void *)1 : NULL);
		return RT_EXIT_FAIL;
	}
	bool nmi = strcmp(s, "nmi") == 0, nmi_ioapic = strcmp(s, "nmi-ioapic") == 0, lint1 = strcmp(s, "lint1") == 0;
	if (nmi || nmi_ioapic || lint1) {
		rt_set_handler(2, on_nmi);
		R(0xf0) = 0x100 | V_SPURIOUS;       /* SVR: software enable */
		R(0x350) = nmi ? 4u << 8 : 1u << 16; /* LVT0: NMI delivery, unmasked; or masked */
		R(0x360) = lint1 ? 4u << 8 : 1u << 16; /* LVT1 likewise */
		if (nmi_ioapic) {
			IOAPIC_SEL[0] = 0x15;       /* redirection entry 2, high: destination APIC ID 0 */
			IOAPIC_WIN[0] = 0;
			IOAPIC_SEL[0] = 0x14;       /* low: NMI delivery, physical, edge, unmasked */
			IOAPIC_WIN[0] = 4u << 8;
		}
		if (lint1)
			rt_puts("halting with interrupts off\n");
		outb(0x43, 0x34);                   /* PIT counter 0, LSB then MSB, mode 2 */
		outb(0x40, 11932 & 0xff);           /* 10 ms at 1.193182 MHz */
		outb(0x40, 11932 >> 8);
		for (;;) {
			cli();
			hlt();
		}
	}
	if (*s) {
		rt_printf("halt: bad command line \"%s\" (usage: [park|park-halt|nmi|nmi-ioapic|lint1])\n", rt_cmdline());
		return RT_EXIT_FAIL;
	}
	rt_puts("halting with interrupts off\n");
	cli();
	hlt();
	rt_puts("woke up?!\n");
	return 1;
}
