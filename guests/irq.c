/* SPDX-License-Identifier: MIT */
/*
 * irq: the PC interrupt platform, counted. Programs the local APIC timer (periodic, and
 * TSC-deadline when CPUID.1:ECX[24] says so), the 8254 PIT's counter 0 through the 8259 PIC
 * (ExtINT on LINT0, the virtual wire) and through the I/O APIC (ISA IRQ 0 = GSI 2), sends itself
 * IPIs, and with several vCPUs sends IPIs to every other vCPU. It waits for every interrupt with
 * `sti; hlt` and prints exact counts (timings never matter):
 *
 *   lapic-periodic: took 50 timer interrupts
 *   tsc-deadline: took 10 timer interrupts        (or "tsc-deadline: not offered")
 *   pit-pic: took 20 interrupts, vector 0x20
 *   pit-ioapic: took 20 interrupts, vector 0x51
 *   rtc-pic: took 20 interrupts, register C had IRQF and PF in each
 *   rtc-ioapic: took 20 interrupts, register C had IRQF and PF in each
 *   self-ipi: took 10 interrupts
 *   ipi: vCPU k took 10 interrupts                 (one line per other vCPU, blvm --vcpus>1)
 *   irq: ok
 *
 * Command line: "skip=NAME" leaves a part out (the QEMU comparison uses it for what QEMU 7.2 TCG
 * lacks); "idle" prints "idle: halting with interrupts on" and halts with IF=1 and no interrupt
 * source for good (tests/sh/irq.sh measures the host CPU time that costs); "rtc-alarm" runs only
 * the MC146818's alarm (rtc_alarm below: about 3 s of the RTC's seconds) and prints
 *
 *   rtc-alarm: register C after the alarm's second: 0x20, read again: 0x0
 *   rtc-alarm: AIE: took 1 interrupt, register C had 0xa0
 *
 * Exits 0 when every count is right, 1 otherwise.
 */
#include "rt.h"

#define APIC ((volatile uint32_t *)(uintptr_t)0xfee00000u)
#define IOAPIC_SEL ((volatile uint32_t *)(uintptr_t)0xfec00000u)
#define IOAPIC_WIN ((volatile uint32_t *)(uintptr_t)0xfec00010u)
#define R(off) APIC[(off) / 4]

#define V_TIMER 0x40
#define V_PIC 0x20 /* the master's base: IRQ 0 */
#define V_IOAPIC 0x51
#define V_IPI 0x60
#define V_RTC_PIC (V_PIC + 8) /* the slave's base: IRQ 8 */
#define V_RTC_IOAPIC 0x58
#define V_SPURIOUS 0xff

static volatile unsigned n_timer, n_pic, n_ioapic, n_ipi[RT_MAX_CPUS];
static volatile unsigned last_pic_vector;
static volatile unsigned timer_limit = ~0u;

static void eoi(void) { R(0xb0) = 0; }
static void ioapic_write(unsigned reg, uint32_t v);
static void wait_for(volatile unsigned *counter, unsigned n);

/* A periodic source is stopped by the handler of its N-th interrupt, and one that was already
 * on its way (a tick pending in the IRR when the vCPU ran late: the engines reinject lost PIT
 * ticks, as KVM does) is not counted: the count says N arrived, each exactly once. */
#define N_PERIODIC 50
#define N_PIT 20
static void on_timer(struct rt_frame *f)
{
	(void)f;
	if (n_timer < timer_limit && ++n_timer == timer_limit) {
		R(0x380) = 0;        /* stop the periodic timer */
		R(0x320) = 1u << 16;
	}
	eoi();
}
static void on_pic(struct rt_frame *f)
{
	last_pic_vector = (unsigned)f->vector;
	if (n_pic < N_PIT && ++n_pic == N_PIT)
		outb(0x21, 0xff); /* mask IRQ 0 */
	outb(0x20, 0x20); /* non-specific EOI to the master 8259 */
}
static void on_ioapic(struct rt_frame *f)
{
	(void)f;
	if (n_ioapic < N_PIT && ++n_ioapic == N_PIT)
		ioapic_write(0x10 + 2 * 2, 1u << 16); /* mask GSI 2 */
	eoi();
}
/* The MC146818's periodic interrupt (register B's PIE, 1024 Hz from register A's RS = 6) on IRQ 8:
 * the handler reads register C, which clears IRQF and releases the line (data sheet, "Register
 * C"); the N-th then turns PIE off (IRQF follows the enables: QEMU lowers the line there) and reads
 * C once more; one that was already on its way is not counted. */
#define N_RTC 20
static volatile unsigned n_rtc, rtc_c_all = 0xff;
static uint8_t cmos_read(uint8_t i) { outb(0x70, i); return inb(0x71); }
static void cmos_write(uint8_t i, uint8_t v) { outb(0x70, i); outb(0x71, v); }
static volatile bool alarm_mode;
static volatile unsigned n_alarm;
static volatile uint8_t alarm_c;
static void rtc_irq(void)
{
	uint8_t c = cmos_read(0x0c);
	if (alarm_mode) {
		alarm_c |= c;
		n_alarm++;
		return;
	}
	if (n_rtc >= N_RTC)
		return;
	rtc_c_all &= c;
	if (++n_rtc == N_RTC) {
		cmos_write(0x0b, cmos_read(0x0b) & ~0x40);
		(void)cmos_read(0x0c);
	}
}
static void on_rtc_pic(struct rt_frame *f)
{
	(void)f;
	rtc_irq();
	outb(0xa0, 0x20); /* EOI to the slave, then the master */
	outb(0x20, 0x20);
}
static void on_rtc_ioapic(struct rt_frame *f) { (void)f; rtc_irq(); eoi(); }
static void rtc_periodic(void)
{
	n_rtc = 0;
	rtc_c_all = 0xff;
	cmos_write(0x0a, 0x26);                     /* 32.768 kHz time base, RS 6: 1024 Hz */
	(void)cmos_read(0x0c);                      /* nothing pending */
	cmos_write(0x0b, cmos_read(0x0b) | 0x40);   /* PIE */
	wait_for(&n_rtc, N_RTC);
}

/* The alarm (data sheet, "Alarm"; QEMU's mc146818rtc.c): AF is set by the update into a second that
 * matches (hours and minutes "don't care" here: every minute at the given second), stays set until
 * register C is read, and with AIE raises IRQ 8 (here through the I/O APIC). Seconds are read
 * outside UIP; each alarm is written right after a second's update, so it is a second ahead. */
static bool rtc_bin;
static unsigned rtc_seconds(void)
{
	while (cmos_read(0x0a) & 0x80)
		;
	uint8_t v = cmos_read(0x00);
	return rtc_bin ? v : (unsigned)(v >> 4) * 10 + (v & 15);
}
static void rtc_wait_second(unsigned s)
{
	while (rtc_seconds() != s)
		;
}
static void rtc_set_alarm_second(unsigned s)
{
	s %= 60;
	cmos_write(0x01, (uint8_t)(rtc_bin ? s : (s / 10) << 4 | s % 10));
}
static int rtc_alarm(void)
{
	rtc_bin = cmos_read(0x0b) & 0x04;
	cmos_write(0x0b, cmos_read(0x0b) & ~0x70); /* no PIE, AIE, UIE */
	cmos_write(0x05, 0xc0);                    /* any hour */
	cmos_write(0x03, 0xc0);                    /* any minute */
	unsigned s = (rtc_seconds() + 1) % 60;
	rtc_wait_second(s);
	rtc_set_alarm_second(s + 1);
	(void)cmos_read(0x0c);
	rtc_wait_second((s + 2) % 60);             /* the alarm's second is over: C not read in it */
	uint8_t c1 = cmos_read(0x0c) & 0xa0, c2 = cmos_read(0x0c) & 0xa0;
	rt_printf("rtc-alarm: register C after the alarm's second: 0x%x, read again: 0x%x\n", c1, c2);

	R(0x350) = 1u << 16;                       /* LINT0 masked */
	uint32_t id = R(0x20) >> 24;
	ioapic_write(0x10 + 2 * 8 + 1, id << 24);
	ioapic_write(0x10 + 2 * 8, V_RTC_IOAPIC);  /* GSI 8: fixed, physical, edge, high */
	alarm_mode = true;
	rtc_set_alarm_second(s + 3);
	(void)cmos_read(0x0c);
	cmos_write(0x0b, cmos_read(0x0b) | 0x20);  /* AIE */
	wait_for(&n_alarm, 1);
	cmos_write(0x0b, cmos_read(0x0b) & ~0x20);
	ioapic_write(0x10 + 2 * 8, 1u << 16);
	alarm_mode = false;
	rt_printf("rtc-alarm: AIE: took %u interrupt, register C had 0x%x\n", n_alarm, alarm_c & 0xa0);
	return c1 == 0x20 && c2 == 0 && n_alarm == 1 && (alarm_c & 0xa0) == 0xa0 ? 0 : 1;
}

static void on_ipi(struct rt_frame *f) { (void)f; n_ipi[rt_cpu_index()]++; eoi(); }
static void on_spurious(struct rt_frame *f) { (void)f; }

/* Waits with interrupts enabled until *counter reaches n: `sti; hlt` is atomic with respect to
 * interrupts (the STI shadow), so an interrupt between the test and the HLT is not lost. */
static void wait_for(volatile unsigned *counter, unsigned n)
{
	for (;;) {
		cli();
		if (*counter >= n)
			break;
		__asm__ volatile("sti; hlt" ::: "memory");
	}
	cli();
}

static bool skipped(const char *name)
{
	const char *c = rt_cmdline();
	size_t n = strlen(name);
	for (const char *p = c; *p; p++)
		if (strncmp(p, "skip=", 5) == 0 && strncmp(p + 5, name, n) == 0 &&
		    (p[5 + n] == '\0' || p[5 + n] == ' ' || p[5 + n] == ','))
			return true;
	return false;
}

static void lapic_enable(void)
{
	R(0xf0) = 0x100 | V_SPURIOUS; /* SVR: software enable */
	R(0x80) = 0;                  /* TPR: accept every class */
}

static void ioapic_write(unsigned reg, uint32_t v) { *IOAPIC_SEL = reg; *IOAPIC_WIN = v; }

static void pic_init(uint8_t master_mask)
{
	outb(0x20, 0x11); outb(0xa0, 0x11);     /* ICW1: edge, cascade, ICW4 follows */
	outb(0x21, V_PIC); outb(0xa1, V_PIC + 8); /* ICW2: vector bases */
	outb(0x21, 0x04); outb(0xa1, 0x02);     /* ICW3: slave on IR2 */
	outb(0x21, 0x01); outb(0xa1, 0x01);     /* ICW4: 8086 mode, normal EOI */
	outb(0x21, master_mask); outb(0xa1, 0xff);
}

static void pit_periodic(uint16_t count)
{
	outb(0x43, 0x34); /* counter 0, LSB then MSB, mode 2 (rate generator), binary */
	outb(0x40, count & 0xff);
	outb(0x40, count >> 8);
}

static void pit_stop(void)
{
	outb(0x43, 0x30); /* counter 0, mode 0: one terminal count, then OUT stays high */
	outb(0x40, 1);
	outb(0x40, 0);
}

struct ipi_arg { volatile unsigned ready; };

static void ap_wait_ipis(unsigned cpu, void *p)
{
	struct ipi_arg *a = p;
	if (cpu == 0)
		return;
	lapic_enable();
	__atomic_fetch_add(&a->ready, 1, __ATOMIC_SEQ_CST);
	wait_for(&n_ipi[cpu], 10);
}

static void bsp_send_ipis(unsigned cpu, void *p)
{
	struct ipi_arg *a = p;
	if (cpu != 0)
		return;
	while (__atomic_load_n(&a->ready, __ATOMIC_SEQ_CST) < rt_cpu_count() - 1)
		pause();
	for (unsigned k = 1; k < rt_cpu_count(); k++) {
		for (unsigned i = 0; i < 10; i++) {
			unsigned before = n_ipi[k];
			R(0x310) = k << 24;         /* ICR high: destination APIC ID k */
			R(0x300) = V_IPI | (1u << 14); /* fixed, physical, assert */
			while (R(0x300) & (1u << 12))
				pause();                /* delivery status */
			while (n_ipi[k] == before)
				pause();                /* one at a time: IRR holds one per vector */
		}
	}
}

static void ipi_both(unsigned cpu, void *p)
{
	/* the AP waits for its IPIs; the BSP sends them */
	if (cpu == 0)
		bsp_send_ipis(cpu, p);
	else
		ap_wait_ipis(cpu, p);
}

int guest_main(void)
{
	int bad = 0;
	rt_set_handler(V_TIMER, on_timer);
	rt_set_handler(V_PIC, on_pic);
	rt_set_handler(V_IOAPIC, on_ioapic);
	rt_set_handler(V_IPI, on_ipi);
	rt_set_handler(V_RTC_PIC, on_rtc_pic);
	rt_set_handler(V_RTC_IOAPIC, on_rtc_ioapic);
	rt_set_handler(V_SPURIOUS, on_spurious);
	pic_init(0xff);
	lapic_enable();
	if (strcmp(rt_cmdline(), "rtc-alarm") == 0)
		return rtc_alarm();
	if (strcmp(rt_cmdline(), "idle") == 0) {
		rt_puts("idle: halting with interrupts on\n");
		for (;;)
			__asm__ volatile("sti; hlt" ::: "memory");
	}

	if (!skipped("lapic-periodic")) {
		timer_limit = N_PERIODIC;
		R(0x3e0) = 0xb;                 /* TDCR: divide by 1 */
		R(0x320) = V_TIMER | (1u << 17); /* LVTT: periodic */
		R(0x380) = 1000000;             /* TMICT: 1 ms at a 1 GHz bus */
		wait_for(&n_timer, N_PERIODIC);
		rt_printf("lapic-periodic: took %u timer interrupts\n", n_timer);
		bad |= n_timer != N_PERIODIC || R(0x380) != 0;
		timer_limit = ~0u;
	}

	if (!skipped("tsc-deadline")) {
		if (cpuid(1, 0).ecx & (1u << 24)) {
			n_timer = 0;
			R(0x320) = V_TIMER | (2u << 17); /* LVTT: TSC-deadline */
			for (unsigned i = 0; i < 10; i++) {
				wrmsr(0x6e0, rdtsc() + 200000);
				wait_for(&n_timer, i + 1);
			}
			bad |= rdmsr(0x6e0) != 0; /* reset to 0 when it fired (SDM Vol. 3 11.5.4.1) */
			R(0x320) = 1u << 16;
			rt_printf("tsc-deadline: took %u timer interrupts\n", n_timer);
			bad |= n_timer != 10;
		} else {
			rt_printf("tsc-deadline: not offered\n");
		}
	}

	if (!skipped("pit-pic")) {
		R(0x350) = 7u << 8;        /* LVT LINT0: ExtINT, unmasked (virtual wire) */
		pic_init(0xfe);            /* only IRQ 0 */
		pit_periodic(1193);        /* ~1 ms */
		wait_for(&n_pic, N_PIT);
		pit_stop();
		rt_printf("pit-pic: took %u interrupts, vector 0x%x\n", n_pic, last_pic_vector);
		bad |= n_pic != N_PIT || last_pic_vector != V_PIC;
	}

	if (!skipped("pit-ioapic")) {
		R(0x350) = 1u << 16;       /* LINT0 masked: the 8259 is out of the way */
		uint32_t id = R(0x20) >> 24;
		ioapic_write(0x10 + 2 * 2 + 1, id << 24);   /* GSI 2: destination = this APIC */
		ioapic_write(0x10 + 2 * 2, V_IOAPIC);       /* fixed, physical, edge, high, unmasked */
		pit_periodic(1193);
		wait_for(&n_ioapic, N_PIT);
		pit_stop();
		rt_printf("pit-ioapic: took %u interrupts, vector 0x%x\n", n_ioapic, V_IOAPIC);
		bad |= n_ioapic != N_PIT;
	}

	if (!skipped("rtc-pic")) {
		R(0x350) = 7u << 8;        /* LVT LINT0: ExtINT (virtual wire) */
		pic_init(0xfb);            /* the master's IR2: the slave */
		outb(0xa1, 0xfe);          /* the slave's IR0: IRQ 8 */
		rtc_periodic();
		outb(0xa1, 0xff);
		outb(0x21, 0xff);
		rt_printf("rtc-pic: took %u interrupts, register C had IRQF and PF in each%s\n", n_rtc,
			  (rtc_c_all & 0xc0) == 0xc0 ? "" : " NOT");
		bad |= n_rtc != N_RTC || (rtc_c_all & 0xc0) != 0xc0;
	}

	if (!skipped("rtc-ioapic")) {
		R(0x350) = 1u << 16;       /* LINT0 masked */
		uint32_t id = R(0x20) >> 24;
		ioapic_write(0x10 + 2 * 8 + 1, id << 24);
		ioapic_write(0x10 + 2 * 8, V_RTC_IOAPIC);  /* GSI 8: fixed, physical, edge, high */
		rtc_periodic();
		ioapic_write(0x10 + 2 * 8, 1u << 16);
		rt_printf("rtc-ioapic: took %u interrupts, register C had IRQF and PF in each%s\n", n_rtc,
			  (rtc_c_all & 0xc0) == 0xc0 ? "" : " NOT");
		bad |= n_rtc != N_RTC || (rtc_c_all & 0xc0) != 0xc0;
	}

	if (!skipped("self-ipi")) {
		for (unsigned i = 0; i < 10; i++) {
			R(0x310) = 0;
			R(0x300) = V_IPI | (1u << 14) | (1u << 18); /* fixed, shorthand self */
			wait_for(&n_ipi[0], i + 1);
		}
		rt_printf("self-ipi: took %u interrupts\n", n_ipi[0]);
		bad |= n_ipi[0] != 10;
	}

	if (rt_cpu_count() > 1 && !skipped("ipi")) {
		struct ipi_arg a = { 0 };
		rt_smp_run(ipi_both, &a);
		for (unsigned k = 1; k < rt_cpu_count(); k++) {
			rt_printf("ipi: vCPU %u took %u interrupts\n", k, n_ipi[k]);
			bad |= n_ipi[k] != 10;
		}
	}

	rt_puts(bad ? "irq: FAIL\n" : "irq: ok\n");
	return bad;
}
