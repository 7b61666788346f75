/* SPDX-License-Identifier: MIT */
/*
 * arith: integer arithmetic checked against the host CPU.
 *
 * Every case of $(BUILD)/guests/gen/arith_cases.h (written at build time by guests/gen/arith-gen
 * on the host) names an operation, a width and an operand pair, with the host's result and the
 * host's defined flags. We run the same arith_eval() (guests/gen/arith_ops.h) here and compare.
 * Operands are read through volatile pointers, so nothing can be folded at compile time: the CPU
 * under test computes every result.
 *
 * Prints "FAIL op=<name> w=<bits> a=0x.. b=0x.. got=0x.. want=0x.." per mismatch (a flags
 * mismatch is op=<name>.flags with the defined flags as got/want; " c=0x.." follows when the
 * operation uses the third operand), then "arith: N checks, M failed"; exits 0 iff M == 0.
 */
#include "rt.h"

#include "arith_ops.h"
#include "arith_cases.h"

/* After this many FAIL lines, only count: a badly broken CPU should not flood the console. */
#define MAX_REPORTED 1000

static uint64_t mask(unsigned w) { return w == 64 ? ~0ull : (1ull << w) - 1; }

static bool uses_c(unsigned op)
{
	return op == ARITH_ADC || op == ARITH_SBB || op == ARITH_RCL || op == ARITH_RCR || op == ARITH_DIV_Q ||
	       op == ARITH_DIV_R;
}

static unsigned failed;

static void report(unsigned op, const char *what, unsigned w, const struct arith_pair *p, uint64_t got,
		   uint64_t want)
{
	if (++failed > MAX_REPORTED)
		return;
	rt_printf("FAIL op=%s%s w=%u a=0x%lx b=0x%lx got=0x%lx want=0x%lx", arith_op_names[op], what, w,
		  p->a & mask(w), p->b & mask(w), got, want);
	if (uses_c(op))
		rt_printf(" c=0x%lx", p->c & mask(w));
	rt_putc('\n');
}

int guest_main(void)
{
	const volatile struct arith_case *cases = arith_cases;
	const volatile struct arith_pair *pairs = arith_pairs;
	unsigned checks = 0;
	for (unsigned i = 0; i < ARITH_NCASES; i++) {
		unsigned op = cases[i].op, w = cases[i].w, pi = cases[i].pair;
		uint64_t want = cases[i].want;
		unsigned fmask = cases[i].fmask, fwant = cases[i].fwant;
		struct arith_pair p = { pairs[pi].a, pairs[pi].b, pairs[pi].c };
		uint64_t fl = 0;
		uint64_t got = arith_eval(op, w, p.a, p.b, p.c, &fl);
		checks++;
		if (got != want)
			report(op, "", w, &p, got, want);
		if (fmask) {
			checks++;
			if ((fl & fmask) != fwant)
				report(op, ".flags", w, &p, fl & fmask, fwant);
		}
	}
	if (failed > MAX_REPORTED)
		rt_printf("(%u more failures not shown)\n", failed - MAX_REPORTED);
	rt_printf("arith: %u checks, %u failed\n", checks, failed);
	return failed ? RT_EXIT_FAIL : RT_EXIT_OK;
}
