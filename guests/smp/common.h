/* SPDX-License-Identifier: MIT */
/* Helpers shared by the smp-* guests (header only: guests/NAME/ directories are per guest). */
#ifndef BLVM_GUEST_SMP_COMMON_H
#define BLVM_GUEST_SMP_COMMON_H

#include "rt.h"

/* First word of the command line as a count: decimal with an optional k (x1000) or M (x1000000)
 * suffix. Returns def if the command line is empty; 0 (and says so) if it is malformed. */
static inline uint64_t smp_arg_count(const char *who, uint64_t def)
{
	const char *s = rt_cmdline();
	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return def;
	uint64_t v = 0;
	const char *w = s;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	if (s > w && (*s == 'k' || *s == 'K'))
		v *= 1000, s++;
	else if (s > w && *s == 'M')
		v *= 1000000, s++;
	while (*s == ' ' || *s == '\t')
		s++;
	if (s == w || *s || v == 0) {
		rt_printf("%s: bad command line \"%s\" (usage: [COUNT[k|M]])\n", who, rt_cmdline());
		return 0;
	}
	return v;
}

/*
 * A barrier for every vCPU, on a generation counter: the last to arrive resets the count and
 * bumps the generation; the others spin (PAUSE) until the generation moves. The count and the
 * generation live in lines of their own. Its locked operation (lock xadd) is aligned: no bus lock.
 */
struct smp_barrier {
	uint32_t count __attribute__((aligned(64)));
	uint32_t gen __attribute__((aligned(64)));
	char pad[60];
};

static inline void smp_barrier_wait(struct smp_barrier *b, unsigned n)
{
	if (n <= 1)
		return;
	uint32_t g = __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);
	if (__atomic_fetch_add(&b->count, 1, __ATOMIC_ACQ_REL) == n - 1) {
		__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&b->gen, g + 1, __ATOMIC_RELEASE);
	} else {
		while (__atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == g)
			pause();
	}
}

#endif
