/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the emu engine's interrupt-platform models (src/emu/irq.h) without a vCPU: a chip
 * with LAPICs, no timer thread, a kick hook that counts, and virtual time passed by hand, so every
 * result is exact. Oracles: the SDM / datasheet sentences cited at each check.
 */
#ifndef IRQ_HARNESS_H
#define IRQ_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "emu/irq.h"

static int t_failures;
static unsigned t_kicks[EMU_IRQ_MAX_CPUS];

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			fprintf(stderr, __VA_ARGS__);                                    \
			fprintf(stderr, "\n");                                           \
			t_failures++;                                                    \
		}                                                                        \
	} while (0)
#define CHECK_EQ(a, b)                                                                         \
	do {                                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);                            \
		CHECK(a_ == b_, "%lld (0x%llx) != %lld (0x%llx)", a_, (unsigned long long)a_, b_, \
		      (unsigned long long)b_);                                                 \
	} while (0)

static inline void t_kick(void *arg, unsigned cpu)
{
	(void)arg;
	t_kicks[cpu]++;
}

static inline struct emu_irqchip *t_chip(unsigned ncpus)
{
	struct emu_irqchip *chip = emu_irqchip_new(t_kick, NULL);
	if (!chip) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (unsigned k = 0; k < ncpus; k++)
		emu_irqchip_add_cpu(chip, k);
	return chip;
}

/* software-enables a LAPIC (SVR bit 8), spurious vector 0xff */
static inline void t_lapic_on(struct emu_irqchip *chip, unsigned cpu)
{
	emu_lapic_write(chip, chip->lapic[cpu], APIC_SVR, 0x1ff, 0);
}

static inline int t_done(const char *name)
{
	if (t_failures) {
		fprintf(stderr, "%s: %d failures\n", name, t_failures);
		return 1;
	}
	printf("%s: ok\n", name);
	return 0;
}

#endif
