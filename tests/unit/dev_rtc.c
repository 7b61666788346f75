/* SPDX-License-Identifier: MIT */
/*
 * The MC146818 model (src/dev/rtc.c) with a test clock: the time of a known instant in BCD and
 * binary, 24- and 12-hour modes (PM in bit 7 of the hour), the day of the week, the century byte;
 * register A's UIP in the 244 us before a second's update and not after; register C's UF/PF/AF and
 * IRQF against register B's enables, cleared by the read; register D's VRT; setting the time moves
 * the guest's clock, not the host's; index bit 7 (NMI mask) ignored; CMOS memory and the memory
 * size fields QEMU fills in, with their checksum.
 */
#include <stdio.h>

#include "dev/dev.h"

static int failures;
#define CHECK_EQ(a, b) do { unsigned long long _a = (a), _b = (b); if (_a != _b) { \
	fprintf(stderr, "%s:%d: %s = 0x%llx, expected 0x%llx\n", __FILE__, __LINE__, #a, _a, _b); failures++; } } while (0)

static double now_s;
static double test_clock(void) { return now_s; }

static uint8_t rd(struct rtc *r, uint8_t i) { rtc_write(r, 0, i); return rtc_read(r, 1); }
static void wr(struct rtc *r, uint8_t i, uint8_t v) { rtc_write(r, 0, i); rtc_write(r, 1, v); }
/* BCD seconds b plus k, modulo a minute */
static uint8_t bcd_plus(uint8_t b, unsigned k)
{
	unsigned v = ((b >> 4) * 10 + (b & 15) + k) % 60;
	return (uint8_t)((v / 10) << 4 | v % 10);
}

int main(void)
{
	struct rtc r = { .clock = test_clock };
	/* 2026-12-05 21:07:09 UTC, a Saturday: 1796504829. */
	now_s = 1796504829.5;
	rtc_init(&r, 3ull << 30, 2ull << 30, 4);
	CHECK_EQ(rd(&r, 0x0a), 0x26);
	CHECK_EQ(rd(&r, 0x0b), 0x02);
	CHECK_EQ(rd(&r, 0x0d), 0x80);
	CHECK_EQ(rd(&r, 0x00), 0x09);
	CHECK_EQ(rd(&r, 0x02), 0x07);
	CHECK_EQ(rd(&r, 0x04), 0x21);
	CHECK_EQ(rd(&r, 0x06), 7); /* Saturday; Sunday is 1 */
	CHECK_EQ(rd(&r, 0x07), 0x05);
	CHECK_EQ(rd(&r, 0x08), 0x12);
	CHECK_EQ(rd(&r, 0x09), 0x26);
	CHECK_EQ(rd(&r, 0x32), 0x20);
	/* NMI disable bit on the index: ignored. */
	CHECK_EQ(rd(&r, 0x80 | 0x04), 0x21);
	/* 12-hour BCD: 9 PM. */
	wr(&r, 0x0b, 0x00);
	CHECK_EQ(rd(&r, 0x04), 0x89);
	/* Binary 24-hour. */
	wr(&r, 0x0b, 0x06);
	CHECK_EQ(rd(&r, 0x04), 21);
	CHECK_EQ(rd(&r, 0x09), 26);
	/* 12-hour binary: 9 | PM. */
	wr(&r, 0x0b, 0x04);
	CHECK_EQ(rd(&r, 0x04), 0x89);
	wr(&r, 0x0b, 0x02);
	/* UIP: set in the last 244 us of a second. */
	now_s = 1796504829.9999;
	CHECK_EQ(rd(&r, 0x0a) & 0x80, 0x80);
	now_s = 1796504830.0005;
	CHECK_EQ(rd(&r, 0x0a) & 0x80, 0);
	CHECK_EQ(rd(&r, 0x00), 0x10);
	/* UIP is read-only; the rest of A is kept. */
	wr(&r, 0x0a, 0xa3);
	CHECK_EQ(rd(&r, 0x0a) & 0x7f, 0x23);
	wr(&r, 0x0a, 0x26);
	/* Register C: flags since the last read; IRQF only with the matching enable. */
	rd(&r, 0x0c);
	now_s += 0.3;
	uint8_t c = rd(&r, 0x0c);
	CHECK_EQ(c & 0x50, 0x40);          /* PF (1024 Hz), no UF within the same second */
	CHECK_EQ(c & 0x80, 0);             /* no enable: no IRQF */
	wr(&r, 0x0b, 0x02 | 0x10);         /* UIE */
	now_s += 1.0;
	c = rd(&r, 0x0c);
	CHECK_EQ(c & 0x90, 0x90);          /* UF with UIE: IRQF */
	CHECK_EQ(rd(&r, 0x0c) & 0x10, 0);  /* cleared by the read */
	/* SET clears UIE (data sheet, register B). */
	wr(&r, 0x0b, 0x80 | 0x10 | 0x02);
	CHECK_EQ(rd(&r, 0x0b), 0x82);
	/* Setting the clock (BCD): 1999-01-02 03:04:05 stays set as time goes on. */
	wr(&r, 0x0b, 0x82);
	wr(&r, 0x32, 0x19);
	wr(&r, 0x09, 0x99);
	wr(&r, 0x08, 0x01);
	wr(&r, 0x07, 0x02);
	wr(&r, 0x04, 0x03);
	wr(&r, 0x02, 0x04);
	wr(&r, 0x00, 0x05);
	wr(&r, 0x0b, 0x02);
	now_s += 2.0;
	CHECK_EQ(rd(&r, 0x32), 0x19);
	CHECK_EQ(rd(&r, 0x09), 0x99);
	CHECK_EQ(rd(&r, 0x08), 0x01);
	CHECK_EQ(rd(&r, 0x07), 0x02);
	CHECK_EQ(rd(&r, 0x04), 0x03);
	CHECK_EQ(rd(&r, 0x02), 0x04);
	CHECK_EQ(rd(&r, 0x00), 0x07);
	CHECK_EQ(rd(&r, 0x06), 7); /* 1999-01-02 was a Saturday */
	/* C and D are read-only. */
	wr(&r, 0x0d, 0);
	CHECK_EQ(rd(&r, 0x0d), 0x80);
	/* CMOS memory. */
	wr(&r, 0x40, 0x5a);
	CHECK_EQ(rd(&r, 0x40), 0x5a);
	CHECK_EQ(rd(&r, 0x7f), 0);
	/* QEMU's fields for 3 GiB below 4 GiB, 2 GiB above, 4 CPUs. */
	CHECK_EQ(rd(&r, 0x15) | rd(&r, 0x16) << 8, 640);
	CHECK_EQ(rd(&r, 0x17) | rd(&r, 0x18) << 8, 65535);
	CHECK_EQ(rd(&r, 0x30) | rd(&r, 0x31) << 8, 65535);
	CHECK_EQ(rd(&r, 0x34) | rd(&r, 0x35) << 8, ((3ull << 30) - (16u << 20)) >> 16);
	CHECK_EQ(rd(&r, 0x5b) | rd(&r, 0x5c) << 8 | rd(&r, 0x5d) << 16, (2ull << 30) >> 16);
	CHECK_EQ(rd(&r, 0x5f), 3);
	CHECK_EQ(rd(&r, 0x14), 0x02);
	unsigned sum = 0;
	for (uint8_t i = 0x10; i <= 0x2d; i++)
		sum += rd(&r, i);
	CHECK_EQ(rd(&r, 0x2e) << 8 | rd(&r, 0x2f), sum);
	/* 64 MiB: 63 MiB extended (in KiB), 48 MiB above 16 MiB (in 64 KiB). */
	rtc_init(&r, 64u << 20, 0, 1);
	CHECK_EQ(rd(&r, 0x17) | rd(&r, 0x18) << 8, 63 * 1024);
	CHECK_EQ(rd(&r, 0x34) | rd(&r, 0x35) << 8, 48 * 16);
	CHECK_EQ(rd(&r, 0x5f), 0);

	/* Interrupts (data sheet, "Interrupts" and "Register C"): IRQF, and the IRQ output with it,
	 * when a flag is set whose enable bit register B has; rtc_irq_deadline() is when that can next
	 * happen, rtc_irq_pending() whether it has (the device's thread asserts IRQ 8 then). */
	now_s = 1796504829.25; /* 21:07:09.25; times are exact binary fractions */
	rtc_init(&r, 64u << 20, 0, 1);
	CHECK_EQ(rtc_irq_enabled(&r), 0);
	CHECK_EQ(rtc_irq_deadline(&r) == 0, 1);
	wr(&r, 0x0a, 0x2f);                /* RS 15: 2 Hz */
	CHECK_EQ(rtc_irq_enabled(&r), 0);  /* a rate, but PIE clear */
	wr(&r, 0x0b, 0x02 | 0x40);         /* PIE */
	CHECK_EQ(rtc_irq_enabled(&r), 1);
	CHECK_EQ(rtc_irq_deadline(&r) == 1796504829.5, 1); /* the next 2 Hz edge after C's last read */
	now_s = 1796504829.375;
	CHECK_EQ(rtc_irq_pending(&r, now_s), 0);
	now_s = 1796504829.5;
	CHECK_EQ(rtc_irq_pending(&r, now_s), 1);
	CHECK_EQ(rd(&r, 0x0c), 0xc0);      /* IRQF | PF, cleared by the read */
	CHECK_EQ(rtc_irq_deadline(&r) == 1796504830.0, 1);
	wr(&r, 0x0b, 0x02 | 0x10);         /* UIE instead: at the next second's update */
	CHECK_EQ(rtc_irq_deadline(&r) == 1796504830.0, 1);
	now_s = 1796504830.0;
	CHECK_EQ(rtc_irq_pending(&r, now_s), 1);
	CHECK_EQ(rd(&r, 0x0c), 0xd0);      /* IRQF | PF | UF: PF is set without PIE, only IRQF needs it */
	/* AIE, alarm 21:07:12 (BCD): checked at each second's update until it matches */
	wr(&r, 0x0a, 0x20);                /* RS 0: no periodic flag */
	wr(&r, 0x01, 0x12);
	wr(&r, 0x03, 0x07);
	wr(&r, 0x05, 0x21);
	wr(&r, 0x0b, 0x02 | 0x20);
	CHECK_EQ(rtc_irq_deadline(&r) == 1796504831.0, 1);
	now_s = 1796504831.0;              /* 21:07:11: not yet; the check moves on */
	CHECK_EQ(rtc_irq_pending(&r, now_s), 0);
	CHECK_EQ(rtc_irq_deadline(&r) == 1796504832.0, 1);
	now_s = 1796504832.0;
	CHECK_EQ(rtc_irq_pending(&r, now_s), 1);
	CHECK_EQ(rd(&r, 0x0c), 0xb0);      /* IRQF | AF | UF */
	wr(&r, 0x0b, 0x02);
	CHECK_EQ(rtc_irq_enabled(&r), 0);

	/* AF (AIE off): set by the next second's update that matches, not in the second the alarm is
	 * written (QEMU's get_next_alarm never gives the current second); held until C is read, and
	 * cleared by the read even while the alarm still matches; judged by the alarm of its moment. */
	double t0 = now_s + 0.5;
	now_s = t0;
	(void)rd(&r, 0x0c);
	uint8_t s0 = rd(&r, 0x00);
	wr(&r, 0x05, 0xc0);
	wr(&r, 0x03, 0xc0);
	wr(&r, 0x01, 0xc0);                /* every second matches */
	CHECK_EQ(rd(&r, 0x0c) & 0x20, 0);
	now_s = t0 + 1;
	CHECK_EQ(rd(&r, 0x0c) & 0x20, 0x20);
	now_s = t0 + 1.25;
	CHECK_EQ(rd(&r, 0x0c) & 0x20, 0);  /* no update since the read */
	wr(&r, 0x01, bcd_plus(s0, 3));     /* matched at t0 + 2.5, C read at t0 + 4: latched */
	now_s = t0 + 4;
	CHECK_EQ(rd(&r, 0x0c) & 0x20, 0x20);
	CHECK_EQ(rd(&r, 0x0c) & 0x20, 0);
	wr(&r, 0x01, bcd_plus(s0, 5));     /* matched at t0 + 4.5; the alarm moves before the read */
	now_s = t0 + 6;
	wr(&r, 0x01, bcd_plus(s0, 30));
	CHECK_EQ(rd(&r, 0x0c) & 0x20, 0x20);
	wr(&r, 0x01, bcd_plus(s0, 40));
	now_s = t0 + 8;
	CHECK_EQ(rd(&r, 0x0c) & 0x20, 0);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_rtc: all checks passed\n");
	return 0;
}
