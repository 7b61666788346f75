/* SPDX-License-Identifier: MIT */
/*
 * MC146818 real-time clock and CMOS memory (Motorola MC146818A data sheet), at ports 0x70 (index;
 * bit 7 is the PC's NMI mask, ignored as QEMU ignores it) and 0x71 (data).
 *
 * Time: the host's UTC clock plus whatever offset the guest set by writing the time registers. Register
 * B chooses BCD or binary (DM) and 12- or 24-hour mode (bit 7 of the hour is PM in 12-hour mode).
 * Register A's UIP bit reads 1 during the 244 us before each second's update, so software that
 * waits for UIP to fall, as Linux's mc146818_get_time does, finds the update boundary. Register D
 * reports valid RAM and time. Register C's flags are computed when it is read: UF when a second has
 * passed since the last read, PF when a periodic interval (rate from register A's RS bits) has, AF
 * when a second's update since then produced a time that matches the alarm (0xc0-0xff are "don't
 * care"; latch_af); reading clears them.
 * IRQF is set when a flag is whose interrupt register B enables (PIE, AIE, UIE), and the IRQ
 * output (IRQ 8 on a PC) is asserted while IRQF is 1 and released when register C is read (data
 * sheet, "Register C" and "Interrupts"; QEMU's mc146818rtc.c raises and lowers its IRQ so). Once
 * the guest enables an interrupt, a thread (rtc_thread) asserts IRQ 8 at the moment IRQF becomes
 * 1: rtc_irq_deadline() names it, rtc_irq_pending() confirms it.
 *
 * CMOS memory 0x0e-0x7f is plain memory, with what QEMU's pc machine fills in (hw/i386/pc.c,
 * pc_cmos_init): base memory 640 KiB (0x15/0x16), extended memory in KiB (0x17/0x18, 0x30/0x31, at
 * most 65535), memory above 16 MiB in 64 KiB units (0x34/0x35), above 4 GiB in 64 KiB units
 * (0x5b-0x5d), CPUs - 1 (0x5f), the equipment byte (0x14: a math coprocessor, EGA/VGA display, no
 * floppy, no PS/2 mouse), and the checksum of 0x10-0x2d (0x2e/0x2f). 0x32 is the century, a time
 * register here (the FADT's CENTURY field names it).
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "dev/dev.h"

enum { RTC_SEC = 0, RTC_SEC_ALARM = 1, RTC_MIN = 2, RTC_MIN_ALARM = 3, RTC_HOUR = 4, RTC_HOUR_ALARM = 5,
       RTC_DOW = 6, RTC_DOM = 7, RTC_MONTH = 8, RTC_YEAR = 9, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b,
       RTC_REG_C = 0x0c, RTC_REG_D = 0x0d, RTC_CENTURY = 0x32 };

#define A_UIP 0x80
#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define C_IRQF 0x80
#define C_PF 0x40
#define C_AF 0x20
#define C_UF 0x10
#define D_VRT 0x80

static double utc_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void cmos_checksum(struct rtc *r)
{
	unsigned sum = 0;
	for (unsigned i = 0x10; i <= 0x2d; i++)
		sum += r->cmos[i];
	r->cmos[0x2e] = (uint8_t)(sum >> 8);
	r->cmos[0x2f] = (uint8_t)sum;
}

void rtc_init(struct rtc *r, uint64_t ram_below_4g, uint64_t ram_above_4g, unsigned nr_vcpus)
{
	double (*clock)(void) = r->clock ? r->clock : utc_seconds;
	memset(r, 0, sizeof *r);
	r->clock = clock;
	r->cmos[RTC_REG_A] = 0x26; /* DV = 010 (32.768 kHz time base running), RS = 0110 (1024 Hz) */
	r->cmos[RTC_REG_B] = B_24H;
	r->cmos[RTC_REG_D] = D_VRT;
	r->cmos[0x14] = 0x02;
	r->cmos[0x15] = 0x80; /* 640 KiB */
	r->cmos[0x16] = 0x02;
	uint64_t ext_kib = ram_below_4g > (1u << 20) ? ram_below_4g / 1024 - 1024 : 0;
	if (ext_kib > 65535)
		ext_kib = 65535;
	r->cmos[0x17] = r->cmos[0x30] = (uint8_t)ext_kib;
	r->cmos[0x18] = r->cmos[0x31] = (uint8_t)(ext_kib >> 8);
	uint64_t above_16m = ram_below_4g > (16u << 20) ? (ram_below_4g - (16u << 20)) >> 16 : 0;
	if (above_16m > 65535)
		above_16m = 65535;
	r->cmos[0x34] = (uint8_t)above_16m;
	r->cmos[0x35] = (uint8_t)(above_16m >> 8);
	uint64_t above_4g = ram_above_4g >> 16;
	r->cmos[0x5b] = (uint8_t)above_4g;
	r->cmos[0x5c] = (uint8_t)(above_4g >> 8);
	r->cmos[0x5d] = (uint8_t)(above_4g >> 16);
	r->cmos[0x5f] = (uint8_t)(nr_vcpus - 1);
	cmos_checksum(r);
	r->last_c_read = r->irq_checked = r->af_checked = r->clock();
	r->af = false;
}

static double guest_now(struct rtc *r)
{
	return r->clock() + (double)r->offset_s;
}

static uint8_t to_bcd(unsigned v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

static uint8_t encode(const struct rtc *r, unsigned v)
{
	return (r->cmos[RTC_REG_B] & B_DM_BINARY) ? (uint8_t)v : to_bcd(v);
}

static unsigned decode(const struct rtc *r, uint8_t v)
{
	return (r->cmos[RTC_REG_B] & B_DM_BINARY) ? v : from_bcd(v);
}

static uint8_t encode_hour(const struct rtc *r, unsigned h)
{
	if (r->cmos[RTC_REG_B] & B_24H)
		return encode(r, h);
	unsigned h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(encode(r, h12) | (h >= 12 ? 0x80 : 0));
}

static unsigned decode_hour(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & B_24H)
		return decode(r, v);
	unsigned h = decode(r, v & 0x7f) % 12;
	return (v & 0x80) ? h + 12 : h;
}

static void broken_down(double t, struct tm *tm)
{
	time_t s = (time_t)floor(t);
	gmtime_r(&s, tm);
}

/* Reads time register reg of the guest's clock at time t. */
static uint8_t time_reg(struct rtc *r, unsigned reg, double t)
{
	struct tm tm;
	broken_down(t, &tm);
	switch (reg) {
	case RTC_SEC: return encode(r, (unsigned)tm.tm_sec);
	case RTC_MIN: return encode(r, (unsigned)tm.tm_min);
	case RTC_HOUR: return encode_hour(r, (unsigned)tm.tm_hour);
	case RTC_DOW: return encode(r, (unsigned)tm.tm_wday + 1); /* 1 = Sunday */
	case RTC_DOM: return encode(r, (unsigned)tm.tm_mday);
	case RTC_MONTH: return encode(r, (unsigned)tm.tm_mon + 1);
	case RTC_YEAR: return encode(r, (unsigned)(tm.tm_year + 1900) % 100);
	case RTC_CENTURY: return encode(r, (unsigned)(tm.tm_year + 1900) / 100);
	}
	return 0;
}

static bool is_time_reg(unsigned reg)
{
	return reg == RTC_SEC || reg == RTC_MIN || reg == RTC_HOUR || reg == RTC_DOW || reg == RTC_DOM ||
	       reg == RTC_MONTH || reg == RTC_YEAR || reg == RTC_CENTURY;
}

static bool alarm_matches(struct rtc *r, double t)
{
	static const unsigned pairs[3][2] = { { RTC_SEC_ALARM, RTC_SEC }, { RTC_MIN_ALARM, RTC_MIN },
					      { RTC_HOUR_ALARM, RTC_HOUR } };
	for (unsigned i = 0; i < 3; i++) {
		uint8_t a = r->cmos[pairs[i][0]];
		if ((a & 0xc0) == 0xc0)
			continue; /* don't care */
		if (a != time_reg(r, pairs[i][1], t))
			return false;
	}
	return true;
}

static double periodic_hz(unsigned rs)
{
	/* Data sheet table 5 (32.768 kHz time base): RS 1 and 2 give 256 and 128 Hz, RS 3-15 give
	 * 32768 >> (RS - 1) Hz. */
	return rs == 1 ? 256.0 : rs == 2 ? 128.0 : (double)(32768u >> (rs - 1));
}

/*
 * AF is set by a second's update whose new time matches the alarm, and held until register C is read
 * (data sheet, "Alarm" and "Register C"; QEMU's rtc_update_timer sets it when the clock reaches the
 * next alarm time, which get_next_alarm computes from the time and alarm of the moment, never the
 * current second). So the updates after the last look, up to host time now, are compared with the
 * alarm as it is, and a match latches AF. Called before anything that changes the alarm, the time or
 * its format (B's DM and 24/12), so a match is judged by the registers of its moment. An alarm that
 * can match at all does so within a day: older updates need no look.
 */
static void latch_af(struct rtc *r, double now)
{
	double from = r->af_checked > r->last_c_read ? r->af_checked : r->last_c_read;
	double first = floor(from) + 1, last = floor(now);
	if (last - first > 86400)
		first = last - 86400;
	for (double u = first; !r->af && u <= last; u++)
		r->af = alarm_matches(r, u + (double)r->offset_s);
	if (now > r->af_checked)
		r->af_checked = now;
}

/* Register C as a read at host time now would return it (the flags accrued since the last read). */
static uint8_t flags_at(struct rtc *r, double now)
{
	uint8_t c = 0;
	if (floor(now) != floor(r->last_c_read))
		c |= C_UF;
	unsigned rs = r->cmos[RTC_REG_A] & 0x0f;
	if (rs) {
		double hz = periodic_hz(rs);
		if (floor(now * hz) != floor(r->last_c_read * hz))
			c |= C_PF;
	}
	latch_af(r, now);
	if (r->af)
		c |= C_AF;
	uint8_t b = r->cmos[RTC_REG_B];
	if ((c & C_PF && b & B_PIE) || (c & C_AF && b & B_AIE) || (c & C_UF && b & B_UIE))
		c |= C_IRQF;
	return c;
}

static uint8_t reg_c(struct rtc *r)
{
	double now = r->clock();
	uint8_t c = flags_at(r, now);
	r->last_c_read = now;
	r->irq_checked = now;
	r->af = false;
	return c;
}

bool rtc_irq_enabled(const struct rtc *r)
{
	uint8_t b = r->cmos[RTC_REG_B];
	return (b & (B_AIE | B_UIE)) || ((b & B_PIE) && (r->cmos[RTC_REG_A] & 0x0f));
}

double rtc_irq_deadline(const struct rtc *r)
{
	uint8_t b = r->cmos[RTC_REG_B];
	double from = r->irq_checked > r->last_c_read ? r->irq_checked : r->last_c_read, t = 0;
	unsigned rs = r->cmos[RTC_REG_A] & 0x0f;
	if ((b & B_PIE) && rs) {
		double hz = periodic_hz(rs);
		t = (floor(from * hz) + 1) / hz; /* the next periodic edge */
	}
	if (b & (B_UIE | B_AIE)) {
		double u = floor(from) + 1; /* the next update; the alarm is compared at each */
		if (!t || u < t)
			t = u;
	}
	return t;
}

bool rtc_irq_pending(struct rtc *r, double now)
{
	if (flags_at(r, now) & C_IRQF)
		return true;
	r->irq_checked = now; /* an alarm that does not match yet: look again at the next second */
	return false;
}

uint8_t rtc_read(struct rtc *r, unsigned port_offset)
{
	if (port_offset == 0)
		return 0xff; /* the index register is write-only */
	unsigned reg = r->index;
	if (is_time_reg(reg))
		return time_reg(r, reg, guest_now(r));
	switch (reg) {
	case RTC_REG_A: {
		double t = guest_now(r);
		bool uip = t - floor(t) >= 1.0 - 244e-6;
		return (uint8_t)((r->cmos[RTC_REG_A] & 0x7f) | (uip ? A_UIP : 0));
	}
	case RTC_REG_C: return reg_c(r);
	case RTC_REG_D: return D_VRT;
	}
	return r->cmos[reg];
}

static void set_time_reg(struct rtc *r, unsigned reg, uint8_t v)
{
	double now = r->clock();
	struct tm tm;
	broken_down(now + (double)r->offset_s, &tm);
	unsigned year = (unsigned)tm.tm_year + 1900;
	switch (reg) {
	case RTC_SEC: tm.tm_sec = (int)decode(r, v) % 60; break;
	case RTC_MIN: tm.tm_min = (int)decode(r, v) % 60; break;
	case RTC_HOUR: tm.tm_hour = (int)decode_hour(r, v) % 24; break;
	case RTC_DOW: return; /* derived from the date */
	case RTC_DOM: tm.tm_mday = (int)decode(r, v); break;
	case RTC_MONTH: tm.tm_mon = (int)decode(r, v) - 1; break;
	case RTC_YEAR: tm.tm_year = (int)(year / 100 * 100 + decode(r, v) % 100) - 1900; break;
	case RTC_CENTURY: tm.tm_year = (int)(decode(r, v) * 100 + year % 100) - 1900; break;
	}
	if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_mon < 0 || tm.tm_mon > 11)
		return; /* not a date: the clock keeps its time */
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return;
	r->offset_s = (int64_t)t - (int64_t)floor(now);
}

void rtc_write(struct rtc *r, unsigned port_offset, uint8_t v)
{
	if (port_offset == 0) {
		r->index = v & 0x7f; /* bit 7: the PC's NMI disable, not modelled (as QEMU) */
		return;
	}
	unsigned reg = r->index;
	if (is_time_reg(reg) || reg == RTC_SEC_ALARM || reg == RTC_MIN_ALARM || reg == RTC_HOUR_ALARM ||
	    reg == RTC_REG_B)
		latch_af(r, r->clock()); /* the updates until now meet the alarm they met */
	if (is_time_reg(reg)) {
		set_time_reg(r, reg, v);
		return;
	}
	switch (reg) {
	case RTC_REG_A: r->cmos[reg] = v & 0x7f; return; /* UIP is read-only */
	case RTC_REG_B:
		if (v & B_SET)
			v &= (uint8_t)~B_UIE; /* setting SET clears UIE (data sheet, register B) */
		r->cmos[reg] = v;
		return;
	case RTC_REG_C:
	case RTC_REG_D: return; /* read-only */
	}
	r->cmos[reg] = v;
}

/* ---- the RTC on the VM: ports 0x70-0x71, IRQ 8 ----------------------------------------------- */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "vmm/vmm.h"

struct rtc_dev {
	struct rtc r;          /* first: the region's opaque is also the model's (tests/fuzz/devices.c) */
	struct blvm_vm *vm;
	pthread_cond_t cond;   /* with vm->lock: register A, B or C changed, or stop */
	pthread_t thread;
	bool started, stop;
	bool irq;              /* IRQ 8 asserted (IRQF), until register C is read */
};

/* Asserts IRQ 8 when IRQF becomes 1, under vm->lock as the vCPUs' accesses are. Started when the
 * guest first enables an interrupt; sleeps (no host CPU) while none is enabled or IRQ 8 waits for
 * the read of register C. The clock is CLOCK_REALTIME's, as pthread_cond_timedwait's. */
static void *rtc_thread(void *arg)
{
	struct rtc_dev *d = arg;
	pthread_mutex_lock(&d->vm->lock);
	while (!d->stop) {
		double t = d->irq ? 0 : rtc_irq_deadline(&d->r);
		double now = d->r.clock();
		if (!t) {
			pthread_cond_wait(&d->cond, &d->vm->lock);
		} else if (now < t) {
			struct timespec ts = { (time_t)floor(t), (long)((t - floor(t)) * 1e9) };
			pthread_cond_timedwait(&d->cond, &d->vm->lock, &ts);
		} else if (rtc_irq_pending(&d->r, now)) {
			d->irq = true;
			blvm_irq_line(d->vm, DEV_RTC_IRQ, 1);
		}
	}
	pthread_mutex_unlock(&d->vm->lock);
	return NULL;
}

static void rtc_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
		       unsigned size)
{
	struct rtc_dev *d = opaque;
	(void)vcpu;
	for (unsigned i = 0; i < size; i++) {
		if (is_write)
			rtc_write(&d->r, (unsigned)offset + i, data[i]);
		else
			data[i] = rtc_read(&d->r, (unsigned)offset + i);
		unsigned reg = d->r.index;
		if ((unsigned)offset + i != 1 || !(reg == RTC_REG_A || reg == RTC_REG_B || reg == RTC_REG_C))
			continue;
		/* reading C clears IRQF and releases the line; IRQF follows register B's enables
		 * (IRQF = PF.PIE + AF.AIE + UF.UIE), so a write to B that leaves no enabled flag set
		 * releases it too, as QEMU's mc146818rtc.c does */
		if (d->irq && ((!is_write && reg == RTC_REG_C) ||
			       (is_write && reg == RTC_REG_B && !rtc_irq_pending(&d->r, d->r.clock())))) {
			d->irq = false;
			blvm_irq_line(d->vm, DEV_RTC_IRQ, 0);
		}
		if (!d->started && rtc_irq_enabled(&d->r))
			d->started = pthread_create(&d->thread, NULL, rtc_thread, d) == 0;
		pthread_cond_signal(&d->cond);
	}
}

static void rtc_destroy(void *opaque)
{
	struct rtc_dev *d = opaque;
	if (d->started) {
		pthread_mutex_lock(&d->vm->lock);
		d->stop = true;
		pthread_cond_signal(&d->cond);
		pthread_mutex_unlock(&d->vm->lock);
		pthread_join(d->thread, NULL);
	}
	pthread_cond_destroy(&d->cond);
	free(d);
}

int dev_rtc_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	struct rtc_dev *d = calloc(1, sizeof *d);
	if (!d || pthread_cond_init(&d->cond, NULL) != 0) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (blvm_bus_add_device(&vm->bus, d, rtc_destroy) != 0) {
		rtc_destroy(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->vm = vm;
	uint64_t below = vm->ram_below_4g; /* the one memory map's rule (src/boot/memmap.c) */
	rtc_init(&d->r, below, vm->cfg.mem_size - below, vm->cfg.nr_vcpus);
	struct blvm_region reg = { .name = "rtc", .space = BLVM_SPACE_PIO, .base = DEV_RTC_BASE, .len = 2,
				   .access = rtc_access, .opaque = d };
	if (blvm_bus_register(&vm->bus, &reg) != 0) {
		snprintf(err, errlen, "cannot register %s", reg.name);
		return -1;
	}
	return 0;
}
