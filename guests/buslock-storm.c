/* SPDX-License-Identifier: MIT */
/*
 * buslock-storm: a guest that takes bus locks as fast as it can, to measure what they do to the
 * host (bench/victim.sh) and what a policy does about them (issue 5).
 *
 * Command line: [MODE] [N]
 *   MODE  split    (default) `lock addl $1` on an operand at line+62: crosses a 64-byte line, so
 *                  every iteration is a split lock
 *         aligned  the same at an aligned address in write-back memory: no bus lock (control)
 *         uc       the same, aligned, on a page mapped PCD=1 PWT=1 (UC): every iteration is a
 *                  bus lock (reason uc)
 *   N     iterations, decimal, optional suffix k (x1000) or M (x1000000); without N the guest
 *         loops forever (stop it with --timeout, a policy such as kill, or a signal).
 *
 * Output: one line at the start,
 *   storm: <mode> lock addl at 0x<addr>, <N|forever> iterations
 * nothing while looping, and when N is given,
 *   storm: done <N>
 * after checking that the counter holds N (mod 2^32); exit status 0, 1 if the counter is wrong,
 * 2 for a malformed command line. The loop is exactly `lock addl $1, (%rdi); dec %rcx; jnz`, so
 * the guest takes exactly N bus locks (split, uc) or none (aligned), and nothing else in it is
 * locked.
 */
#include "rt.h"
#include "buslock-census/paging.h"

typedef uint32_t u32u __attribute__((aligned(1))); /* the split operand is misaligned */

static uint8_t wb_lines[128] __attribute__((aligned(64)));
static uint8_t uc_page[4096] __attribute__((aligned(4096)));

static void loop_n(volatile void *p, uint64_t n)
{
	if (n == 0)
		return;
	__asm__ volatile("1:\n\t"
			 "lock addl $1, (%[p])\n\t"
			 "dec %[n]\n\t"
			 "jnz 1b"
			 : [n] "+r"(n)
			 : [p] "r"(p)
			 : "cc", "memory");
}

__attribute__((noreturn)) static void loop_forever(volatile void *p)
{
	__asm__ volatile("1:\n\t"
			 "lock addl $1, (%[p])\n\t"
			 "jmp 1b"
			 :
			 : [p] "r"(p)
			 : "cc", "memory");
	__builtin_unreachable();
}

static const char *word(const char *s, const char **end)
{
	while (*s == ' ' || *s == '\t')
		s++;
	*end = s;
	while (**end && **end != ' ' && **end != '\t')
		(*end)++;
	return s;
}

static bool is(const char *w, const char *e, const char *lit)
{
	size_t n = (size_t)(e - w);
	return strlen(lit) == n && !strncmp(w, lit, n);
}

/* Decimal with an optional k/M suffix; false if malformed. */
static bool number(const char *w, const char *e, uint64_t *out)
{
	uint64_t v = 0;
	if (w == e)
		return false;
	for (; w < e && *w >= '0' && *w <= '9'; w++)
		v = v * 10 + (uint64_t)(*w - '0');
	if (w < e && (*w == 'k' || *w == 'K'))
		v *= 1000, w++;
	else if (w < e && *w == 'M')
		v *= 1000000, w++;
	*out = v;
	return w == e;
}

int guest_main(void)
{
	const char *e, *w = word(rt_cmdline(), &e);
	const char *mode = "split";
	if (is(w, e, "split") || is(w, e, "aligned") || is(w, e, "uc")) {
		mode = is(w, e, "split") ? "split" : is(w, e, "aligned") ? "aligned" : "uc";
		w = word(e, &e);
	}
	bool forever = w == e;
	uint64_t n = 0;
	if (!forever && !number(w, e, &n)) {
		rt_printf("storm: bad command line \"%s\" (usage: [split|aligned|uc] [N[k|M]])\n", rt_cmdline());
		return 2;
	}
	w = word(e, &e);
	if (w != e) {
		rt_printf("storm: bad command line \"%s\" (usage: [split|aligned|uc] [N[k|M]])\n", rt_cmdline());
		return 2;
	}

	volatile u32u *p;
	if (mode[0] == 's') {
		p = (volatile u32u *)(wb_lines + 62); /* bytes 62..65: crosses the line at 64 */
	} else if (mode[0] == 'a') {
		p = (volatile u32u *)(wb_lines + 64);
	} else {
		bl_paging_init();
		p = (volatile u32u *)bl_map(0, (uintptr_t)uc_page, BL_PTE_PCD | BL_PTE_PWT);
	}
	*p = 0;
	if (forever) {
		rt_printf("storm: %s lock addl at 0x%lx, forever iterations\n", mode, (unsigned long)(uintptr_t)p);
		loop_forever(p);
	}
	rt_printf("storm: %s lock addl at 0x%lx, %lu iterations\n", mode, (unsigned long)(uintptr_t)p,
		  (unsigned long)n);
	loop_n(p, n);
	uint32_t got = *p;
	if (got != (uint32_t)n) {
		rt_printf("storm: FAIL counter 0x%x, want 0x%x\n", got, (uint32_t)n);
		return RT_EXIT_FAIL;
	}
	rt_printf("storm: done %lu\n", (unsigned long)n);
	return RT_EXIT_OK;
}
