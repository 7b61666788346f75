/* SPDX-License-Identifier: MIT */
/*
 * Host program: writes the arith guest's cases to stdout as a C header (arith_cases.h).
 *
 * Operands come from a fixed-seed generator plus the edge values of each width (0, 1, -1, min,
 * max, powers of two, alternating bits); the expected results and flags come from running
 * arith_eval() -- the same code the guest runs -- on the host CPU. For each case it also records
 * which flags the SDM defines after that instruction with those operands (SDM Vol. 2, "Flags
 * Affected" of ADD, ADC, SUB, SBB, AND, OR, XOR, NEG, INC, DEC, SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR,
 * MUL, IMUL); undefined flags are never compared.
 *
 * Built with the host compiler and plain -O2; run at build time (guests/guests.mk).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "arith_ops.h"

static const unsigned widths[] = { 8, 16, 32, 64 };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64* (Vigna): deterministic across hosts and compilers. */
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t wmask(unsigned w) { return w == 64 ? ~0ull : (1ull << w) - 1; }
static uint64_t smin(unsigned w) { return 1ull << (w - 1); }

/* A random w-bit value of random magnitude, so small and large operands both occur. */
static uint64_t rand_operand(unsigned w)
{
	uint64_t v = rng() & wmask(w);
	unsigned shift = (unsigned)(rng() % w);
	v >>= shift;
	if (rng() & 1)
		v = (0 - v) & wmask(w); /* negative, as a signed value */
	return v;
}

#define MAX_PAIRS 4096
static struct arith_pair pairs[MAX_PAIRS];
static unsigned npairs;

/* Per width: the "binary" set (edge x edge, then random) and the "count" set (b = every count
 * 0..63, twice, a from edges and random) for shifts, rotates and unary operations. */
struct pair_set {
	unsigned first, n;
};
static struct pair_set bin_set[4], cnt_set[4];

static unsigned add_pair(uint64_t a, uint64_t b, uint64_t c)
{
	if (npairs == MAX_PAIRS) {
		fprintf(stderr, "arith-gen: too many operand pairs\n");
		exit(1);
	}
	pairs[npairs] = (struct arith_pair){ a, b, c };
	return npairs++;
}

static unsigned edges(unsigned w, uint64_t *e)
{
	uint64_t m = wmask(w);
	unsigned n = 0;
	e[n++] = 0;
	e[n++] = 1;
	e[n++] = 2;
	e[n++] = m;                    /* -1 */
	e[n++] = m - 1;                /* -2 */
	e[n++] = smin(w);              /* min */
	e[n++] = smin(w) + 1;          /* min + 1 */
	e[n++] = smin(w) - 1;          /* max */
	e[n++] = 0x5555555555555555ull & m;
	e[n++] = 1ull << (w / 2);      /* a power of two in the middle */
	e[n++] = 0xaaaaaaaaaaaaaaaaull & m;
	e[n++] = (1ull << (w / 2)) - 1;
	e[n++] = 7;
	e[n++] = 0x80ull << (w - 8) >> 1; /* 0x40, 0x4000, ... */
	return n;
}

static void make_pairs(void)
{
	for (unsigned wi = 0; wi < 4; wi++) {
		unsigned w = widths[wi];
		uint64_t e[16];
		unsigned ne = edges(w, e);
		/* binary: the first 10 edges crossed, then random pairs (128 in all) */
		bin_set[wi].first = npairs;
		for (unsigned i = 0; i < 10; i++)
			for (unsigned j = 0; j < 10; j++)
				add_pair(e[i], e[j], rng());
		while (npairs - bin_set[wi].first < 128)
			add_pair(rand_operand(w), rand_operand(w), rng());
		bin_set[wi].n = npairs - bin_set[wi].first;
		/* counts: every count 0..63 twice */
		cnt_set[wi].first = npairs;
		for (unsigned k = 0; k < 64; k++) {
			add_pair(e[k % ne], k, rng());
			add_pair(rand_operand(w), k, rng());
		}
		cnt_set[wi].n = npairs - cnt_set[wi].first;
	}
}

static int uses_count_set(unsigned op)
{
	switch (op) {
	case ARITH_NEG: case ARITH_NOT: case ARITH_INC: case ARITH_DEC:
	case ARITH_SHL: case ARITH_SHR: case ARITH_SAR: case ARITH_ROL: case ARITH_ROR:
	case ARITH_RCL: case ARITH_RCR: case ARITH_IMUL3_I8: case ARITH_IMUL3_IMM:
	case ARITH_C_NEG: case ARITH_C_SHL: case ARITH_C_SHR: case ARITH_C_SAR: case ARITH_C_ROTL:
		return 1;
	}
	return 0;
}

/* Operands the instruction or C cannot take: division by zero, and min / -1 (#DE for idiv,
 * undefined behaviour in C). */
static int allowed(unsigned op, unsigned w, const struct arith_pair *p)
{
	uint64_t a = p->a & wmask(w), b = p->b & wmask(w);
	switch (op) {
	case ARITH_DIV_Q: case ARITH_DIV_R: case ARITH_C_UDIV: case ARITH_C_UREM:
		return b != 0;
	case ARITH_IDIV_Q: case ARITH_IDIV_R: case ARITH_C_SDIV: case ARITH_C_SREM:
		return b != 0 && !(a == smin(w) && b == wmask(w));
	}
	return 1;
}

static unsigned flag_mask(unsigned op, unsigned w, uint64_t b)
{
	const unsigned all5 = ARITH_CF | ARITH_PF | ARITH_ZF | ARITH_SF | ARITH_OF;
	unsigned mc = (unsigned)(b & (w == 64 ? 63 : 31)); /* the masked count */
	unsigned m;
	switch (op) {
	case ARITH_ADD: case ARITH_SUB: case ARITH_ADC: case ARITH_SBB: case ARITH_NEG:
		return all5 | ARITH_AF;
	case ARITH_INC: case ARITH_DEC: /* CF is left alone: stc set it before */
		return all5 | ARITH_AF;
	case ARITH_AND: case ARITH_OR: case ARITH_XOR: /* AF undefined */
		return all5;
	case ARITH_SHL: case ARITH_SHR: case ARITH_SAR:
		if (mc == 0) /* no flag changes: those test left */
			return all5;
		m = ARITH_PF | ARITH_ZF | ARITH_SF;
		if (mc < w) /* CF undefined when the count reaches the operand size */
			m |= ARITH_CF;
		if (mc == 1)
			m |= ARITH_OF;
		return m;
	case ARITH_ROL: case ARITH_ROR: /* only CF and OF change; PF ZF SF stay as test left them */
		if (mc == 0)
			return all5;
		return mc == 1 ? all5 : all5 & ~ARITH_OF;
	case ARITH_RCL: case ARITH_RCR: /* bt before leaves the other flags undefined */
		return mc == 1 ? ARITH_CF | ARITH_OF : ARITH_CF;
	case ARITH_MUL_LO: case ARITH_MUL_HI: case ARITH_IMUL_LO: case ARITH_IMUL_HI:
	case ARITH_IMUL2: case ARITH_IMUL3_I8: case ARITH_IMUL3_IMM:
		return ARITH_CF | ARITH_OF;
	}
	return 0;
}

int main(void)
{
	make_pairs();
	printf("/* Generated by guests/gen/arith-gen.c on the host: the host CPU's results. Do not edit. */\n");
	printf("static const struct arith_pair arith_pairs[%u] = {\n", npairs);
	for (unsigned i = 0; i < npairs; i++)
		printf("\t{ 0x%" PRIx64 "ull, 0x%" PRIx64 "ull, 0x%" PRIx64 "ull },\n", pairs[i].a, pairs[i].b,
		       pairs[i].c);
	printf("};\n\n");

	unsigned ncases = 0;
	printf("static const struct arith_case arith_cases[] = {\n");
	for (unsigned op = 0; op < ARITH_NOPS; op++) {
		printf("\t/* %s */\n", arith_op_names[op]);
		for (unsigned wi = 0; wi < 4; wi++) {
			unsigned w = widths[wi];
			if (!arith_valid(op, w))
				continue;
			const struct pair_set *s = uses_count_set(op) ? &cnt_set[wi] : &bin_set[wi];
			for (unsigned i = s->first; i < s->first + s->n; i++) {
				const struct arith_pair *p = &pairs[i];
				if (!allowed(op, w, p))
					continue;
				uint64_t fl = 0;
				uint64_t want = arith_eval(op, w, p->a, p->b, p->c, &fl);
				unsigned fmask = flag_mask(op, w, p->b);
				printf("\t{ 0x%" PRIx64 "ull, %u, 0x%x, 0x%x, %u, %u },\n", want, i, fmask,
				       (unsigned)(fl & fmask), op, w);
				ncases++;
			}
		}
	}
	printf("};\n#define ARITH_NCASES %u\n", ncases);
	return 0;
}
