/* SPDX-License-Identifier: MIT */
/*
 * emu_insn_oracle: the host CPU is the oracle for whole instructions through the emu engine.
 *
 * For every instruction FORM (mnemonic x operand size x register/memory/immediate shape, LOCK and REP
 * variants included) the test encodes a set of VARIANTS with Zydis's encoder (different registers, AH..BH,
 * addressing forms, and for immediate shapes the immediate / count itself), then runs >= 1000 operand
 * sets (edge values of the operand size: 0, 1, -1, sign boundaries, patterns, powers of two +- 1; and
 * random values from a fixed, printed seed; shift counts 0..2*bits+1; random status flags with CF both
 * 0 and 1; DF random) natively and in the engine (emu_oracle_run.h: one engine run per form). All 16
 * GPRs (RSP excepted: never an operand), the status flags and DF, the 512-byte memory window the memory
 * operands point into, and the exception (#DE, or anything else the engine might raise) must match.
 * Flags the SDM leaves undefined are masked with emu_undefined_flags() for the instruction's class, size
 * and count; a destination the SDM leaves undefined (16-bit SHLD/SHRD with a count above 16) is not
 * compared. Nothing else is masked.
 *
 * Environment: EMU_ORACLE_SEED=n (default fixed), EMU_ORACLE_CASES=n (default 1000, 256..4000),
 * EMU_ORACLE_VERBOSE=1 (one line per form), EMU_ORACLE_ONLY=substring (forms whose name contains it).
 * Exit 0: all match; 1: the first 20 mismatches are printed (form, variant, inputs, host vs engine).
 */
#include "emu_oracle_run.h"

#include <Zydis/Encoder.h>

/* ------------------------------------------------------------------------------------------ forms */

enum { K_R, K_RH, K_M, K_I, K_CL, K_ONE };
struct ospec {
	uint8_t kind, size;
};

enum { L_NONE, L_REG, L_MEM };
struct loc {
	uint8_t kind, reg, hi, size;
	int16_t off; /* L_MEM: offset of the operand in the window */
};

#define MAXOPS 8
struct variant {
	uint8_t b[16];
	uint8_t len;
	struct loc op[MAXOPS];
	unsigned nop;
	uint64_t imm;
	uint16_t pmask;     /* base register: holds an offset into the window */
	int idxreg;         /* index register (fixed value) or -1 */
	uint64_t idxval;
	int riprel;         /* LEA [rip+d]: destination compared relative to the end of the instruction */
	unsigned asz;       /* LEA address size */
};

enum { C_NONE, C_ONE, C_CL, C_IMM };

#define MAXVAR 256
struct form;
typedef void fixfn(struct form *f, const struct variant *v, struct ocase *c, unsigned i);
struct form {
	char name[80];
	unsigned size; /* operand size (the flags class's size) */
	int cls;
	int cnt;
	int e0, e1; /* operands given the systematic edge values (-1: none) */
	uint16_t avoid;
	fixfn *fix;
	unsigned nvar;
	struct variant v[MAXVAR];
};

static unsigned ncases = 1000;
static int verbose;
static const char *only;
static unsigned long total_cases, total_forms;
static int total_fail_forms;
static unsigned printed;
static struct orc O;
static struct batch B;
static struct form F;

/* Family summary */
static const char *fam_name;
static unsigned fam_forms, fam_fail, fam_sizes;
static unsigned long fam_cases, fam_de;

static void fam_end(void)
{
	if (fam_name && fam_forms)
		printf("%-10s %4u forms (sizes %s%s%s%s) x >= %u operand sets: %lu cases %s\n", fam_name, fam_forms,
		       fam_sizes & 1 ? "1" : "", fam_sizes & 2 ? " 2" : "", fam_sizes & 4 ? " 4" : "",
		       fam_sizes & 8 ? " 8" : "", ncases, fam_cases, fam_fail ? "FAILED" : "ok");
	if (fam_name && fam_de)
		printf("           (#DE raised by the host in %lu of them)\n", fam_de);
	fam_name = NULL;
	fam_de = 0;
	fam_forms = fam_fail = fam_sizes = 0;
	fam_cases = 0;
}

static void fam_begin(const char *name)
{
	fam_end();
	fam_name = name;
}

/* ------------------------------------------------------------------------------------------ values */

#define NE 16
static uint64_t edge(unsigned s, unsigned k)
{
	uint64_t m = emu_size_mask(s), sb = emu_size_sign(s);
	static const uint64_t pat[] = { 0x5555555555555555ull, 0xaaaaaaaaaaaaaaaaull, 0x0f0f0f0f0f0f0f0full };
	switch (k % NE) {
	case 0: return 0;
	case 1: return 1;
	case 2: return m;
	case 3: return sb;
	case 4: return sb - 1;
	case 5: return sb + 1;
	case 6: return 2;
	case 7: return m - 1;
	case 8: return pat[0] & m;
	case 9: return pat[1] & m;
	case 10: return pat[2] & m;
	case 11: return 0x7f;
	case 12: return 0x80 & m;
	case 13: return (sb >> 1);
	case 14: return 3;
	default: return (sb | 1) & m;
	}
}

static uint64_t biased(unsigned s)
{
	uint64_t m = emu_size_mask(s);
	switch (rndn(8)) {
	case 0:
	case 1: return edge(s, rndn(NE));
	case 2:
	case 3: return ((1ull << rndn(8 * s)) + (uint64_t)(int64_t)((int)rndn(3) - 1)) & m;
	default: return rnd() & m;
	}
}

static void put(struct ocase *c, const struct loc *l, uint64_t val)
{
	if (l->kind == L_REG) {
		uint64_t m = emu_size_mask(l->size);
		if (l->hi)
			c->r[l->reg] = (c->r[l->reg] & ~0xff00ull) | ((val & 0xff) << 8);
		else
			c->r[l->reg] = (c->r[l->reg] & ~m) | (val & m);
	} else if (l->kind == L_MEM) {
		memcpy(c->mem + MID + l->off, &val, l->size > 8 ? 8 : l->size);
	}
}

static uint64_t get(const struct ocase *c, const struct loc *l)
{
	uint64_t v = 0;
	if (l->kind == L_REG)
		v = l->hi ? (c->r[l->reg] >> 8) & 0xff : c->r[l->reg] & emu_size_mask(l->size);
	else if (l->kind == L_MEM)
		memcpy(&v, c->mem + MID + l->off, l->size > 8 ? 8 : l->size);
	return v;
}

/* ----------------------------------------------------------------------------------------- variants */

static const struct {
	int base, index, scale, disp;
	int64_t idxval;
} mems[] = {
	{ RBX, -1, 1, 0, 0 },       { R12, -1, 1, -8, 0 },   { RBP, -1, 1, 3, 0 },      { R13, -1, 1, 0, 0 },
	{ R10, R9, 4, -20, 5 },     { RSI, RDI, 8, 24, -2 }, { R11, R14, 2, 0x40, -0x20 }, { R15, -1, 1, -0x7f, 0 },
	{ RBX, R8, 1, 0x90, 0x10 }, { RDI, -1, 1, 0xa0, 0 },
};
#define NMEM (sizeof mems / sizeof mems[0])
static int align16; /* only 16-byte aligned memory operands (CMPXCHG16B) */

/* Encode variant j of f: specs in Intel operand order; imm for K_I; impl: implicit operand locations
 * appended to op[] (edge targets and fix-up helpers). Registers are chosen at random among those not
 * avoided; same-register forms (add rcx, rcx) happen on purpose. */
static void add_variant(struct form *f, ZydisMnemonic mn, ZyanU32 pfx, unsigned nspec, const struct ospec *sp,
			int64_t imm, const struct loc *impl, unsigned nimpl)
{
	struct variant *v = &f->v[f->nvar];
	unsigned j = f->nvar;
	for (int attempt = 0; attempt < 200; attempt++) {
		memset(v, 0, sizeof *v);
		v->idxreg = -1;
		v->imm = (uint64_t)imm;
		ZydisEncoderRequest req;
		memset(&req, 0, sizeof req);
		req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
		req.mnemonic = mn;
		req.prefixes = pfx;
		req.operand_count = (ZyanU8)nspec;
		uint32_t used = f->avoid | (1u << RSP);
		unsigned m = (j + (unsigned)attempt) % NMEM;
		int hasmem = 0;
		for (unsigned k = 0; k < nspec; k++)
			hasmem |= sp[k].kind == K_M;
		if (hasmem) {
			if (align16 && (MID + mems[m].disp + mems[m].idxval * mems[m].scale) % 16)
				continue;
			if ((used >> mems[m].base & 1) || (mems[m].index >= 0 && (used >> mems[m].index & 1)))
				continue;
			used |= 1u << mems[m].base;
			if (mems[m].index >= 0)
				used |= 1u << mems[m].index;
		}
		int last = -1, lasthi = 0;
		for (unsigned k = 0; k < nspec; k++) {
			ZydisEncoderOperand *o = &req.operands[k];
			struct loc *l = &v->op[k];
			unsigned s = sp[k].size;
			switch (sp[k].kind) {
			case K_R:
			case K_RH: {
				int r, hi = 0;
				if (last >= 0 && rndn(8) == 0) {
					r = last;
					hi = lasthi;
				} else {
					do
						r = (int)rndn(16);
					while (used >> r & 1);
					if (sp[k].kind == K_RH && s == 1 && r < 4 && rndn(3) == 0)
						hi = 1;
				}
				if (!hi || last != r)
					used |= 1u << r;
				last = r;
				lasthi = hi;
				o->type = ZYDIS_OPERAND_TYPE_REGISTER;
				o->reg.value = zreg(s, r, hi);
				*l = (struct loc){ L_REG, (uint8_t)r, (uint8_t)hi, (uint8_t)s, 0 };
				break;
			}
			case K_CL:
				o->type = ZYDIS_OPERAND_TYPE_REGISTER;
				o->reg.value = ZYDIS_REGISTER_CL;
				*l = (struct loc){ L_REG, RCX, 0, 1, 0 };
				break;
			case K_M:
				o->type = ZYDIS_OPERAND_TYPE_MEMORY;
				o->mem.base = zreg(8, mems[m].base, 0);
				o->mem.index = mems[m].index >= 0 ? zreg(8, mems[m].index, 0) : ZYDIS_REGISTER_NONE;
				o->mem.scale = mems[m].index >= 0 ? (ZyanU8)mems[m].scale : 0;
				o->mem.displacement = mems[m].disp;
				o->mem.size = (ZyanU16)s;
				*l = (struct loc){ L_MEM, 0, 0, (uint8_t)s,
						   (int16_t)(mems[m].disp + mems[m].idxval * mems[m].scale) };
				v->pmask = (uint16_t)(1u << mems[m].base);
				v->idxreg = mems[m].index;
				v->idxval = (uint64_t)mems[m].idxval;
				break;
			case K_I:
				o->type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
				o->imm.s = imm;
				l->kind = L_NONE;
				break;
			case K_ONE:
				o->type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
				o->imm.u = 1;
				l->kind = L_NONE;
				v->imm = 1;
				break;
			}
		}
		ZyanUSize len = sizeof v->b;
		if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, v->b, &len)))
			continue;
		v->len = (uint8_t)len;
		v->nop = nspec;
		for (unsigned k = 0; k < nimpl; k++)
			v->op[v->nop++] = impl[k];
		f->nvar++;
		return;
	}
	fprintf(stderr, "cannot encode %s (variant %u)\n", f->name, j);
	exit(2);
}

static const char *kname(struct ospec s)
{
	static char buf[8][8];
	static unsigned at;
	char *b = buf[at++ % 8];
	switch (s.kind) {
	case K_R:
	case K_RH: sprintf(b, "r%u", 8 * s.size); break;
	case K_M: sprintf(b, "m%u", 8 * s.size); break;
	case K_I: sprintf(b, "imm%u", 8 * s.size); break;
	case K_CL: return "cl";
	default: return "1";
	}
	return b;
}

static void form_init(struct form *f, const char *pfxname, ZydisMnemonic mn, unsigned nspec, const struct ospec *sp,
		      unsigned size, int cls, int cnt, int e0, int e1, uint16_t avoid, fixfn *fix)
{
	memset(f, 0, offsetof(struct form, v));
	int n = snprintf(f->name, sizeof f->name, "%s%s", pfxname, ZydisMnemonicGetString(mn));
	for (unsigned k = 0; k < nspec; k++)
		n += snprintf(f->name + n, sizeof f->name - (size_t)n, "%s%s", k ? "," : " ", kname(sp[k]));
	f->size = size;
	f->cls = cls;
	f->cnt = cnt;
	f->e0 = e0;
	f->e1 = e1;
	f->avoid = avoid;
	f->fix = fix;
}

/* --------------------------------------------------------------------------------------- run a form */

static void gen_case(struct form *f, struct ocase *c, unsigned i)
{
	memset(c, 0, sizeof *c);
	for (int k = 0; k < 16; k++)
		c->r[k] = k == RSP ? 0 : rnd();
	for (unsigned k = 0; k < MEMSZ; k += 8) {
		uint64_t x = rnd();
		memcpy(c->mem + k, &x, 8);
	}
	c->fl = BASE_FLAGS | (rnd() & EMU_STATUS_FLAGS & ~EMU_CF) | (i & 1) | (rnd() >> 40 & 1 ? EMU_DF : 0);
	c->var = i % f->nvar;
	const struct variant *v = &f->v[c->var];
	for (int k = 0; k < 16; k++)
		if (v->pmask >> k & 1)
			c->r[k] = MID;
	if (v->idxreg >= 0)
		c->r[v->idxreg] = v->idxval;
	for (unsigned k = 0; k < v->nop; k++)
		if ((int)k != f->e0 && (int)k != f->e1 && v->op[k].kind != L_NONE)
			put(c, &v->op[k], biased(v->op[k].size > 8 ? 8 : v->op[k].size));
	const struct loc *l0 = f->e0 >= 0 ? &v->op[f->e0] : NULL, *l1 = f->e1 >= 0 ? &v->op[f->e1] : NULL;
	if (l1 && l1->kind == L_NONE)
		l1 = NULL;
	if (l0 && l0->kind == L_NONE)
		l0 = l1, l1 = NULL;
	if (l0 && l1) {
		if (i < NE * NE) {
			put(c, l0, edge(l0->size, i / NE));
			put(c, l1, edge(l1->size, i % NE));
		} else {
			put(c, l0, biased(l0->size));
			put(c, l1, biased(l1->size));
		}
	} else if (l0) {
		put(c, l0, i < NE * f->nvar ? edge(l0->size, i / f->nvar) : biased(l0->size));
	}
	if (f->cnt == C_CL) {
		unsigned bits = 8 * f->size;
		uint64_t cl = i % 3 == 2 ? rnd() & 0xff : (i / 3) % (2 * bits + 2);
		c->r[RCX] = (c->r[RCX] & ~0xffull) | cl;
	}
	if (f->fix)
		f->fix(f, v, c, i);
}

static void run_form(struct form *f)
{
	if (only && !strstr(f->name, only))
		return;
	B.nvar = f->nvar;
	for (unsigned v = 0; v < f->nvar; v++) {
		B.vcode[v] = f->v[v].b;
		B.vlen[v] = f->v[v].len;
	}
	B.n = ncases;
	for (unsigned i = 0; i < ncases; i++) {
		gen_case(f, &B.in[i], i);
		B.pmask[i] = f->v[B.in[i].var].pmask;
		if (f->cls <= -2) /* string instructions: RSI and RDI point into the window */
			B.pmask[i] |= (1u << RSI) | (1u << RDI);
	}
	orc_native(&O, &B);
	int engine_ok = orc_engine(&O, &B) == 0;
	unsigned bad = 0;
	for (unsigned i = 0; i < ncases; i++) {
		const struct variant *v = &f->v[B.in[i].var];
		uint64_t count = f->cnt == C_ONE ? 1 : f->cnt == C_CL ? B.in[i].r[RCX] & 0xff : f->cnt == C_IMM ? v->imm : 0;
		uint64_t undef = f->cls >= 0 ? emu_undefined_flags((enum emu_flag_class)f->cls, f->size, count) : 0;
		uint16_t skipreg = 0;
		unsigned mlo = 0, mhi = 0;
		if (undef & EMU_UNDEF_RESULT) {
			if (v->op[0].kind == L_REG)
				skipreg |= (uint16_t)(1u << v->op[0].reg);
			else {
				mlo = (unsigned)(MID + v->op[0].off);
				mhi = mlo + v->op[0].size;
			}
		}
		struct ocase *n = &B.nat[i], *e = &B.emu[i];
		fam_de += n->de == 1;
		if (v->riprel) {
			/* LEA [rip+d]: the two sides run at different addresses; compare relative to the end */
			int d = v->op[0].reg;
			unsigned ls = v->asz < v->op[0].size ? v->asz : v->op[0].size;
			uint64_t lm = emu_size_mask(ls);
			n->r[d] = ((n->r[d] - B.nat_end[B.in[i].var]) & lm) | (n->r[d] & ~lm);
			e->r[d] = ((e->r[d] - B.emu_end[B.in[i].var]) & lm) | (e->r[d] & ~lm);
		}
		uint64_t fmask = CMP_FLAGS & ~(undef & EMU_STATUS_FLAGS);
		if (compare_case(&B.in[i], n, e, skipreg, fmask, mlo, mhi, B.pmask[i], 0))
			continue;
		bad++;
		if (printed++ < 20) {
			char dis[128];
			disas(v->b, v->len, dis, sizeof dis);
			fprintf(stderr, "MISMATCH form [%s] case %u variant %u: %s\n", f->name, i, (unsigned)B.in[i].var, dis);
			compare_case(&B.in[i], n, e, skipreg, fmask, mlo, mhi, B.pmask[i], 1);
		}
	}
	if (!engine_ok)
		bad++;
	fam_forms++;
	fam_cases += ncases;
	fam_sizes |= f->size <= 8 ? f->size : 8;
	total_forms++;
	total_cases += ncases;
	if (bad) {
		fam_fail++;
		total_fail_forms++;
		fprintf(stderr, "FAILED form [%s]: %u of %u cases differ\n", f->name, bad, ncases);
	}
	if (verbose) {
		char dis[128];
		disas(f->v[0].b, f->v[0].len, dis, sizeof dis);
		printf("  %-34s %3u variants (e.g. %s): %s\n", f->name, f->nvar, dis, bad ? "FAILED" : "ok");
	}
}

/* ------------------------------------------------------------------------------------------ immediates */

static int64_t sext(unsigned s, uint64_t v)
{
	return (int64_t)emu_sign_extend(s, v);
}

/* imm8 (sign-extended) values */
static unsigned imm8_list(int64_t *out)
{
	static const int64_t e[] = { 0, 1, -1, 127, -128, 2, -2, 0x40, -0x41, 0x55, -0x56, 0x0f, 0x7e, -0x7f, 8, 16 };
	unsigned n = 0;
	for (unsigned k = 0; k < sizeof e / sizeof e[0]; k++)
		out[n++] = e[k];
	while (n < 40)
		out[n++] = sext(1, rnd());
	return n;
}

/* full-size immediates (imm16 / imm32) outside the imm8 range unless allow_small */
static unsigned immfull_list(unsigned s, int allow_small, int64_t *out)
{
	unsigned is = s == 8 ? 4 : s;
	uint64_t sb = emu_size_sign(is), m = emu_size_mask(is);
	int64_t e[] = { sext(is, sb - 1), sext(is, sb), sext(is, sb + 1), 0x80, -0x81, 0x100, 0xff & (int64_t)m,
			sext(is, 0x12345678 & m), sext(is, 0xedcba987 & m), sext(is, 0xff00 & m), sext(is, 0x5555aaaa & m),
			sext(is, m ^ 0x80), 0, 1, -1, 0x7f };
	unsigned n = 0;
	for (unsigned k = 0; k < sizeof e / sizeof e[0]; k++)
		if (allow_small || e[k] < -128 || e[k] > 127)
			out[n++] = e[k];
	while (n < 40) {
		int64_t x = sext(is, rnd());
		if (allow_small || x < -128 || x > 127)
			out[n++] = x;
	}
	return n;
}

/* counts 0..2*bits+1 and a few large ones */
static unsigned count_list(unsigned s, int64_t *out)
{
	unsigned n = 0;
	for (unsigned k = 0; k < 2 * 8 * s + 2 && k < 256; k++)
		out[n++] = k;
	static const int64_t big[] = { 255, 128, 192, 0x41, 0x61, 0xe1 };
	for (unsigned k = 0; k < sizeof big / sizeof big[0]; k++)
		if (big[k] >= (int64_t)(2 * 8 * s + 2))
			out[n++] = big[k];
	return n;
}

/* Build and run: nvar = max(nimm, NVAR_REG) variants, the immediate cycling through imms. */
#define NVAR_REG 12
static void form_run(const char *pfxname, ZydisMnemonic mn, ZyanU32 pfx, unsigned nspec, const struct ospec *sp,
		     unsigned size, int cls, int cnt, int e0, int e1, uint16_t avoid, fixfn *fix, const int64_t *imms,
		     unsigned nimm, const struct loc *impl, unsigned nimpl)
{
	form_init(&F, pfxname, mn, nspec, sp, size, cls, cnt, e0, e1, avoid, fix);
	unsigned nv = nimm > NVAR_REG ? nimm : NVAR_REG;
	for (unsigned j = 0; j < nv; j++)
		add_variant(&F, mn, pfx, nspec, sp, nimm ? imms[j % nimm] : 0, impl, nimpl);
	run_form(&F);
}

#define SPEC(...) (sizeof((struct ospec[]){ __VA_ARGS__ }) / sizeof(struct ospec)), (struct ospec[]){ __VA_ARGS__ }
#define R(s) { K_R, s }
#define RH(s) { K_RH, s }
#define M(s) { K_M, s }
#define I(s) { K_I, s }
#define CL { K_CL, 1 }
#define ONE { K_ONE, 1 }
#define REG(r, s) ((struct loc){ L_REG, r, 0, s, 0 })

static const unsigned sizes4[] = { 1, 2, 4, 8 }, sizes3[] = { 2, 4, 8 }, sizes2[] = { 4, 8 };

/* -------------------------------------------------------------------------------------------- fix-ups */

/* DIV/IDIV: op[0] = divisor. Build dividends that mostly fit (quotient in range), plus zero divisors,
 * -2^(n-1) / -1 and random high halves (#DE). */
static void fix_div(struct form *f, const struct variant *v, struct ocase *c, unsigned i)
{
	unsigned s = f->size;
	uint64_t m = emu_size_mask(s), d = get(c, &v->op[0]), lo = biased(s), hi;
	int sgn = v->imm == 1; /* marks IDIV */
	switch (i % 8) {
	case 0:
		if (i % 16 == 0) {
			d = 0;
			put(c, &v->op[0], 0);
		}
		hi = rnd() & m;
		break;
	case 5:
		lo = emu_size_sign(s);
		hi = sgn ? m : rnd() % (d ? d : 1);
		if (sgn && i % 16 == 5) {
			d = m;
			put(c, &v->op[0], m);
		}
		break;
	case 6:
		hi = rnd() & m;
		break;
	default:
		if (sgn)
			hi = (lo & emu_size_sign(s)) ? m : 0;
		else
			hi = d ? rnd() % d : rnd() & m;
		break;
	}
	if (s == 1)
		c->r[RAX] = (c->r[RAX] & ~0xffffull) | ((hi & 0xff) << 8) | (lo & 0xff);
	else {
		put(c, &REG(RAX, s), lo);
		put(c, &REG(RDX, s), hi);
	}
}

/* BT/BTS/BTR/BTC m, r: the bit offset register is a signed offset from the operand; keep the accessed
 * unit inside the window (negative and beyond-the-operand offsets alike). */
static void fix_btmem(struct form *f, const struct variant *v, struct ocase *c, unsigned i)
{
	unsigned s = f->size;
	int64_t at = MID + v->op[0].off;             /* byte offset of the operand in the window */
	int64_t lo_units = -(at / (int64_t)s), hi_units = (MEMSZ - at) / (int64_t)s - 1;
	int64_t lo = lo_units * 8 * (int64_t)s, hi = hi_units * 8 * (int64_t)s + 8 * (int64_t)s - 1;
	int64_t bits = 8 * (int64_t)s;
	int64_t e[] = { 0, 1, -1, bits - 1, bits, -bits, -bits - 1, 2 * bits + 3, -2 * bits + 5, lo, hi };
	int64_t o = i % 3 == 0 ? e[(i / 3) % (sizeof e / sizeof e[0])] : lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
	put(c, &v->op[1], (uint64_t)o);
}

/* CMPXCHG: op[2] is the accumulator; half the cases compare equal. */
static void fix_cmpxchg(struct form *f, const struct variant *v, struct ocase *c, unsigned i)
{
	(void)f;
	if (i & 2)
		put(c, &v->op[2], get(c, &v->op[0]));
}

/* CMPXCHG8B/16B: half the cases have EDX:EAX / RDX:RAX equal to memory. */
static void fix_cx8(struct form *f, const struct variant *v, struct ocase *c, unsigned i)
{
	unsigned h = f->size / 2;
	uint64_t lo = 0, hi = 0;
	memcpy(&lo, c->mem + MID + v->op[0].off, h);
	memcpy(&hi, c->mem + MID + v->op[0].off + h, h);
	if (i & 2) {
		put(c, &REG(RAX, h), lo);
		put(c, &REG(RDX, h), hi);
	} else if (i & 4) {
		put(c, &REG(RAX, h), lo); /* low half equal only */
	}
}

/* BEXTR: op[2] is the control register (start = bits 7:0, length = bits 15:8). */
static void fix_bextr(struct form *f, const struct variant *v, struct ocase *c, unsigned i)
{
	unsigned bits = 8 * f->size;
	uint64_t ctl = i % 4 == 3 ? rnd() & 0xffff : (uint64_t)rndn(bits + 8) | ((uint64_t)rndn(bits + 8) << 8);
	c->r[v->op[2].reg] = (c->r[v->op[2].reg] & ~0xffffull) | ctl;
}

/* BSF/BSR/TZCNT/LZCNT/POPCNT: op[1] = source; make it zero more often (destination unchanged for BSF/BSR). */
static void fix_scan(struct form *f, const struct variant *v, struct ocase *c, unsigned i)
{
	(void)f;
	if (i % 8 == 7)
		put(c, &v->op[1], 0);
}

/* String instructions: RSI in the lower half of the window, RDI in the upper half, so that up to 23
 * elements of 8 bytes fit either way (DF); RCX small for REP forms; low-entropy data so that REPE/REPNE
 * stop at interesting places; RAX often equal to the fill. */
static void fix_string(struct form *f, const struct variant *v, struct ocase *c, unsigned i)
{
	int rep = v->imm != 0;
	int df = (c->fl & EMU_DF) != 0;
	c->r[RSI] = df ? 192 + rndn(56) : rndn(64);
	c->r[RDI] = df ? 448 + rndn(56) : 256 + rndn(64);
	if (rep)
		c->r[RCX] = i % 4 == 3 ? rndn(24) : (i / 4) % 24;
	static const uint8_t fills[] = { 0x00, 0xff, 0x5a, 0x80 };
	uint8_t fill = fills[rndn(4)];
	memset(c->mem, fill, MEMSZ);
	for (unsigned k = rndn(5); k; k--)
		c->mem[rndn(MEMSZ)] = (uint8_t)rnd();
	if (rndn(10) < 7)
		c->r[RAX] = 0x0101010101010101ull * fill ^ (rndn(4) == 0 ? (1ull << rndn(8 * f->size)) : 0);
}

/* ------------------------------------------------------------------------------------------- families */

static const ZydisMnemonic alu_mn[] = { ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR,  ZYDIS_MNEMONIC_ADC,
					ZYDIS_MNEMONIC_SBB, ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB,
					ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP, ZYDIS_MNEMONIC_TEST };
static int alu_cls(ZydisMnemonic mn)
{
	return mn == ZYDIS_MNEMONIC_AND || mn == ZYDIS_MNEMONIC_OR || mn == ZYDIS_MNEMONIC_XOR || mn == ZYDIS_MNEMONIC_TEST
		       ? EMU_FC_LOGIC
		       : EMU_FC_ARITH;
}

static void fam_alu(void)
{
	int64_t imm[300];
	unsigned n;
	fam_begin("alu");
	for (unsigned a = 0; a < 9; a++) {
		ZydisMnemonic mn = alu_mn[a];
		int cls = alu_cls(mn), test = mn == ZYDIS_MNEMONIC_TEST, lockable = !test && mn != ZYDIS_MNEMONIC_CMP;
		for (unsigned z = 0; z < 4; z++) {
			unsigned s = sizes4[z];
			form_run("", mn, 0, SPEC(RH(s), RH(s)), s, cls, C_NONE, 0, 1, 0, NULL, NULL, 0, NULL, 0);
			if (!test)
				form_run("", mn, 0, SPEC(RH(s), M(s)), s, cls, C_NONE, 0, 1, 0, NULL, NULL, 0, NULL, 0);
			form_run("", mn, 0, SPEC(M(s), RH(s)), s, cls, C_NONE, 0, 1, 0, NULL, NULL, 0, NULL, 0);
			if (lockable)
				form_run("lock ", mn, ZYDIS_ATTRIB_HAS_LOCK, SPEC(M(s), RH(s)), s, cls, C_NONE, 0, 1, 0, NULL,
					 NULL, 0, NULL, 0);
			if (!test || s == 1) {
				n = imm8_list(imm);
				form_run("", mn, 0, SPEC(RH(s), I(1)), s, cls, C_NONE, 0, -1, 0, NULL, imm, n, NULL, 0);
				form_run("", mn, 0, SPEC(M(s), I(1)), s, cls, C_NONE, 0, -1, 0, NULL, imm, n, NULL, 0);
				if (lockable)
					form_run("lock ", mn, ZYDIS_ATTRIB_HAS_LOCK, SPEC(M(s), I(1)), s, cls, C_NONE, 0, -1, 0,
						 NULL, imm, n, NULL, 0);
			}
			if (s > 1) {
				n = immfull_list(s, test, imm);
				form_run("", mn, 0, SPEC(R(s), I(s == 8 ? 4 : s)), s, cls, C_NONE, 0, -1, 0, NULL, imm, n, NULL, 0);
				form_run("", mn, 0, SPEC(M(s), I(s == 8 ? 4 : s)), s, cls, C_NONE, 0, -1, 0, NULL, imm, n, NULL, 0);
				if (lockable)
					form_run("lock ", mn, ZYDIS_ATTRIB_HAS_LOCK, SPEC(M(s), I(s == 8 ? 4 : s)), s, cls, C_NONE,
						 0, -1, 0, NULL, imm, n, NULL, 0);
			}
		}
	}
}

static void fam_unary(void)
{
	static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_INC, ZYDIS_MNEMONIC_DEC, ZYDIS_MNEMONIC_NEG, ZYDIS_MNEMONIC_NOT };
	fam_begin("unary");
	for (unsigned a = 0; a < 4; a++)
		for (unsigned z = 0; z < 4; z++) {
			unsigned s = sizes4[z];
			form_run("", mn[a], 0, SPEC(RH(s)), s, EMU_FC_ARITH, C_NONE, 0, -1, 0, NULL, NULL, 0, NULL, 0);
			form_run("", mn[a], 0, SPEC(M(s)), s, EMU_FC_ARITH, C_NONE, 0, -1, 0, NULL, NULL, 0, NULL, 0);
			form_run("lock ", mn[a], ZYDIS_ATTRIB_HAS_LOCK, SPEC(M(s)), s, EMU_FC_ARITH, C_NONE, 0, -1, 0, NULL,
				 NULL, 0, NULL, 0);
		}
}

static void fam_shift(void)
{
	static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_ROL, ZYDIS_MNEMONIC_ROR, ZYDIS_MNEMONIC_RCL, ZYDIS_MNEMONIC_RCR,
					    ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR, ZYDIS_MNEMONIC_SAR };
	int64_t imm[300];
	fam_begin("shift");
	for (unsigned a = 0; a < 7; a++) {
		int cls = a < 4 ? EMU_FC_ROTATE : a == 6 ? EMU_FC_SAR : EMU_FC_SHIFT;
		for (unsigned z = 0; z < 4; z++) {
			unsigned s = sizes4[z], n = count_list(s, imm);
			uint16_t av = 1u << RCX;
			form_run("", mn[a], 0, SPEC(RH(s), ONE), s, cls, C_ONE, 0, -1, av, NULL, NULL, 0, NULL, 0);
			form_run("", mn[a], 0, SPEC(M(s), ONE), s, cls, C_ONE, 0, -1, av, NULL, NULL, 0, NULL, 0);
			form_run("", mn[a], 0, SPEC(RH(s), CL), s, cls, C_CL, 0, -1, av, NULL, NULL, 0, NULL, 0);
			form_run("", mn[a], 0, SPEC(M(s), CL), s, cls, C_CL, 0, -1, av, NULL, NULL, 0, NULL, 0);
			form_run("", mn[a], 0, SPEC(RH(s), I(1)), s, cls, C_IMM, 0, -1, av, NULL, imm, n, NULL, 0);
			form_run("", mn[a], 0, SPEC(M(s), I(1)), s, cls, C_IMM, 0, -1, av, NULL, imm, n, NULL, 0);
		}
	}
	fam_begin("shld/shrd");
	for (unsigned a = 0; a < 2; a++) {
		ZydisMnemonic m = a ? ZYDIS_MNEMONIC_SHRD : ZYDIS_MNEMONIC_SHLD;
		for (unsigned z = 0; z < 3; z++) {
			unsigned s = sizes3[z], n = count_list(s, imm);
			uint16_t av = 1u << RCX;
			form_run("", m, 0, SPEC(R(s), R(s), I(1)), s, EMU_FC_SHXD, C_IMM, 0, 1, av, NULL, imm, n, NULL, 0);
			form_run("", m, 0, SPEC(M(s), R(s), I(1)), s, EMU_FC_SHXD, C_IMM, 0, 1, av, NULL, imm, n, NULL, 0);
			form_run("", m, 0, SPEC(R(s), R(s), CL), s, EMU_FC_SHXD, C_CL, 0, 1, av, NULL, NULL, 0, NULL, 0);
			form_run("", m, 0, SPEC(M(s), R(s), CL), s, EMU_FC_SHXD, C_CL, 0, 1, av, NULL, NULL, 0, NULL, 0);
		}
	}
}

static void fam_muldiv(void)
{
	int64_t imm[300];
	uint16_t av = (1u << RAX) | (1u << RDX);
	fam_begin("mul/imul");
	for (unsigned a = 0; a < 2; a++) {
		ZydisMnemonic m = a ? ZYDIS_MNEMONIC_IMUL : ZYDIS_MNEMONIC_MUL;
		for (unsigned z = 0; z < 4; z++) {
			unsigned s = sizes4[z];
			struct loc acc = REG(RAX, s);
			form_run("", m, 0, SPEC(R(s)), s, EMU_FC_MUL, C_NONE, 0, 1, av, NULL, NULL, 0, &acc, 1);
			form_run("", m, 0, SPEC(M(s)), s, EMU_FC_MUL, C_NONE, 0, 1, av, NULL, NULL, 0, &acc, 1);
		}
	}
	for (unsigned z = 0; z < 3; z++) {
		unsigned s = sizes3[z], n;
		form_run("", ZYDIS_MNEMONIC_IMUL, 0, SPEC(R(s), R(s)), s, EMU_FC_MUL, C_NONE, 0, 1, 0, NULL, NULL, 0, NULL, 0);
		form_run("", ZYDIS_MNEMONIC_IMUL, 0, SPEC(R(s), M(s)), s, EMU_FC_MUL, C_NONE, 0, 1, 0, NULL, NULL, 0, NULL, 0);
		n = imm8_list(imm);
		form_run("", ZYDIS_MNEMONIC_IMUL, 0, SPEC(R(s), R(s), I(1)), s, EMU_FC_MUL, C_NONE, 1, -1, 0, NULL, imm, n, NULL, 0);
		form_run("", ZYDIS_MNEMONIC_IMUL, 0, SPEC(R(s), M(s), I(1)), s, EMU_FC_MUL, C_NONE, 1, -1, 0, NULL, imm, n, NULL, 0);
		n = immfull_list(s, 0, imm);
		form_run("", ZYDIS_MNEMONIC_IMUL, 0, SPEC(R(s), R(s), I(s == 8 ? 4 : s)), s, EMU_FC_MUL, C_NONE, 1, -1, 0,
			 NULL, imm, n, NULL, 0);
		form_run("", ZYDIS_MNEMONIC_IMUL, 0, SPEC(R(s), M(s), I(s == 8 ? 4 : s)), s, EMU_FC_MUL, C_NONE, 1, -1, 0,
			 NULL, imm, n, NULL, 0);
	}
	fam_begin("div/idiv");
	for (unsigned a = 0; a < 2; a++) {
		ZydisMnemonic m = a ? ZYDIS_MNEMONIC_IDIV : ZYDIS_MNEMONIC_DIV;
		int64_t mark = a; /* variant imm 1 = signed, read by fix_div */
		for (unsigned z = 0; z < 4; z++) {
			unsigned s = sizes4[z];
			form_run("", m, 0, SPEC(R(s)), s, EMU_FC_DIV, C_NONE, 0, -1, av, fix_div, &mark, 1, NULL, 0);
			form_run("", m, 0, SPEC(M(s)), s, EMU_FC_DIV, C_NONE, 0, -1, av, fix_div, &mark, 1, NULL, 0);
		}
	}
}

static void fam_bit(void)
{
	static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_BT, ZYDIS_MNEMONIC_BTS, ZYDIS_MNEMONIC_BTR, ZYDIS_MNEMONIC_BTC };
	int64_t imm[300];
	fam_begin("bt*");
	for (unsigned a = 0; a < 4; a++)
		for (unsigned z = 0; z < 3; z++) {
			unsigned s = sizes3[z], n = count_list(s, imm);
			form_run("", mn[a], 0, SPEC(R(s), R(s)), s, EMU_FC_BT, C_NONE, 0, 1, 0, NULL, NULL, 0, NULL, 0);
			form_run("", mn[a], 0, SPEC(M(s), R(s)), s, EMU_FC_BT, C_NONE, 0, -1, 0, fix_btmem, NULL, 0, NULL, 0);
			form_run("", mn[a], 0, SPEC(R(s), I(1)), s, EMU_FC_BT, C_NONE, 0, -1, 0, NULL, imm, n, NULL, 0);
			form_run("", mn[a], 0, SPEC(M(s), I(1)), s, EMU_FC_BT, C_NONE, 0, -1, 0, NULL, imm, n, NULL, 0);
			if (a) {
				form_run("lock ", mn[a], ZYDIS_ATTRIB_HAS_LOCK, SPEC(M(s), R(s)), s, EMU_FC_BT, C_NONE, 0, -1, 0,
					 fix_btmem, NULL, 0, NULL, 0);
				form_run("lock ", mn[a], ZYDIS_ATTRIB_HAS_LOCK, SPEC(M(s), I(1)), s, EMU_FC_BT, C_NONE, 0, -1, 0,
					 NULL, imm, n, NULL, 0);
			}
		}
	fam_begin("bitscan");
	static const ZydisMnemonic sc[] = { ZYDIS_MNEMONIC_BSF, ZYDIS_MNEMONIC_BSR, ZYDIS_MNEMONIC_TZCNT,
					    ZYDIS_MNEMONIC_LZCNT, ZYDIS_MNEMONIC_POPCNT };
	static const int sccls[] = { EMU_FC_BSCAN, EMU_FC_BSCAN, EMU_FC_CNT, EMU_FC_CNT, EMU_FC_ARITH };
	for (unsigned a = 0; a < 5; a++)
		for (unsigned z = 0; z < 3; z++) {
			unsigned s = sizes3[z];
			form_run("", sc[a], 0, SPEC(R(s), R(s)), s, sccls[a], C_NONE, 1, 0, 0, fix_scan, NULL, 0, NULL, 0);
			form_run("", sc[a], 0, SPEC(R(s), M(s)), s, sccls[a], C_NONE, 1, 0, 0, fix_scan, NULL, 0, NULL, 0);
		}
	fam_begin("bswap");
	for (unsigned z = 0; z < 2; z++)
		form_run("", ZYDIS_MNEMONIC_BSWAP, 0, SPEC(R(sizes2[z])), sizes2[z], EMU_FC_BSWAP, C_NONE, 0, -1, 0, NULL, NULL,
			 0, NULL, 0);
	fam_begin("bmi1");
	for (unsigned z = 0; z < 2; z++) {
		unsigned s = sizes2[z];
		form_run("", ZYDIS_MNEMONIC_ANDN, 0, SPEC(R(s), R(s), R(s)), s, EMU_FC_ANDN, C_NONE, 1, 2, 0, NULL, NULL, 0, NULL, 0);
		form_run("", ZYDIS_MNEMONIC_ANDN, 0, SPEC(R(s), R(s), M(s)), s, EMU_FC_ANDN, C_NONE, 1, 2, 0, NULL, NULL, 0, NULL, 0);
		form_run("", ZYDIS_MNEMONIC_BEXTR, 0, SPEC(R(s), R(s), R(s)), s, EMU_FC_BEXTR, C_NONE, 1, -1, 0, fix_bextr, NULL,
			 0, NULL, 0);
		form_run("", ZYDIS_MNEMONIC_BEXTR, 0, SPEC(R(s), M(s), R(s)), s, EMU_FC_BEXTR, C_NONE, 1, -1, 0, fix_bextr, NULL,
			 0, NULL, 0);
		static const ZydisMnemonic bl[] = { ZYDIS_MNEMONIC_BLSI, ZYDIS_MNEMONIC_BLSMSK, ZYDIS_MNEMONIC_BLSR };
		for (unsigned a = 0; a < 3; a++) {
			form_run("", bl[a], 0, SPEC(R(s), R(s)), s, EMU_FC_ANDN, C_NONE, 1, -1, 0, NULL, NULL, 0, NULL, 0);
			form_run("", bl[a], 0, SPEC(R(s), M(s)), s, EMU_FC_ANDN, C_NONE, 1, -1, 0, NULL, NULL, 0, NULL, 0);
		}
	}
}

static void fam_cond(void)
{
	static const ZydisMnemonic cm[16] = {
		ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVNB,
		ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
		ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
		ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE };
	static const ZydisMnemonic sm[16] = {
		ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
		ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
		ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
		ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE };
	fam_begin("cmovcc");
	for (unsigned cc = 0; cc < 16; cc++)
		for (unsigned z = 0; z < 3; z++) {
			unsigned s = sizes3[z];
			form_run("", cm[cc], 0, SPEC(R(s), R(s)), s, EMU_FC_ARITH, C_NONE, 0, 1, 0, NULL, NULL, 0, NULL, 0);
			form_run("", cm[cc], 0, SPEC(R(s), M(s)), s, EMU_FC_ARITH, C_NONE, 0, 1, 0, NULL, NULL, 0, NULL, 0);
		}
	fam_begin("setcc");
	for (unsigned cc = 0; cc < 16; cc++) {
		form_run("", sm[cc], 0, SPEC(RH(1)), 1, EMU_FC_ARITH, C_NONE, 0, -1, 0, NULL, NULL, 0, NULL, 0);
		form_run("", sm[cc], 0, SPEC(M(1)), 1, EMU_FC_ARITH, C_NONE, 0, -1, 0, NULL, NULL, 0, NULL, 0);
	}
}

static void fam_move(void)
{
	fam_begin("movzx/sx");
	static const unsigned pairs[][2] = { { 2, 1 }, { 4, 1 }, { 8, 1 }, { 4, 2 }, { 8, 2 } };
	for (unsigned a = 0; a < 2; a++) {
		ZydisMnemonic m = a ? ZYDIS_MNEMONIC_MOVSX : ZYDIS_MNEMONIC_MOVZX;
		for (unsigned p = 0; p < 5; p++) {
			unsigned d = pairs[p][0], s = pairs[p][1];
			form_run("", m, 0, SPEC(R(d), RH(s)), d, EMU_FC_ARITH, C_NONE, 1, 0, 0, NULL, NULL, 0, NULL, 0);
			form_run("", m, 0, SPEC(R(d), M(s)), d, EMU_FC_ARITH, C_NONE, 1, 0, 0, NULL, NULL, 0, NULL, 0);
		}
	}
	form_run("", ZYDIS_MNEMONIC_MOVSXD, 0, SPEC(R(8), R(4)), 8, EMU_FC_ARITH, C_NONE, 1, 0, 0, NULL, NULL, 0, NULL, 0);
	form_run("", ZYDIS_MNEMONIC_MOVSXD, 0, SPEC(R(8), M(4)), 8, EMU_FC_ARITH, C_NONE, 1, 0, 0, NULL, NULL, 0, NULL, 0);

	fam_begin("xchg/xadd");
	static const ZydisMnemonic xm[] = { ZYDIS_MNEMONIC_XCHG, ZYDIS_MNEMONIC_XADD, ZYDIS_MNEMONIC_CMPXCHG };
	for (unsigned a = 0; a < 3; a++)
		for (unsigned z = 0; z < 4; z++) {
			unsigned s = sizes4[z];
			int cls = a == 0 ? EMU_FC_ARITH : EMU_FC_ARITH;
			struct loc acc = REG(RAX, s);
			int cx = a == 2;
			uint16_t av = cx ? 1u << RAX : 0;
			fixfn *fx = cx ? fix_cmpxchg : NULL;
			form_run("", xm[a], 0, SPEC(RH(s), RH(s)), s, cls, C_NONE, 0, 1, av, fx, NULL, 0, &acc, cx);
			form_run("", xm[a], 0, SPEC(M(s), RH(s)), s, cls, C_NONE, 0, 1, av, fx, NULL, 0, &acc, cx);
			if (a)
				form_run("lock ", xm[a], ZYDIS_ATTRIB_HAS_LOCK, SPEC(M(s), RH(s)), s, cls, C_NONE, 0, 1, av, fx,
					 NULL, 0, &acc, cx);
		}
	uint16_t av = (1u << RAX) | (1u << RBX) | (1u << RCX) | (1u << RDX);
	form_run("", ZYDIS_MNEMONIC_CMPXCHG8B, 0, SPEC(M(8)), 8, EMU_FC_ARITH, C_NONE, -1, -1, av, fix_cx8, NULL, 0, NULL, 0);
	form_run("lock ", ZYDIS_MNEMONIC_CMPXCHG8B, ZYDIS_ATTRIB_HAS_LOCK, SPEC(M(8)), 8, EMU_FC_ARITH, C_NONE, -1, -1, av,
		 fix_cx8, NULL, 0, NULL, 0);
	/* CMPXCHG16B needs a 16-byte aligned operand (#GP otherwise): only the aligned addressing forms */
	for (int lock = 0; lock < 2; lock++) {
		form_init(&F, lock ? "lock " : "", ZYDIS_MNEMONIC_CMPXCHG16B, SPEC(M(16)), 16, EMU_FC_ARITH, C_NONE, -1, -1,
			  av, fix_cx8);
		align16 = 1;
		while (F.nvar < NVAR_REG)
			add_variant(&F, ZYDIS_MNEMONIC_CMPXCHG16B, lock ? ZYDIS_ATTRIB_HAS_LOCK : 0, SPEC(M(16)), 0, NULL, 0);
		align16 = 0;
		run_form(&F);
	}

	fam_begin("cbw..cqo");
	static const struct {
		const char *name;
		uint8_t b[3], len, size;
	} cv[] = { { "cbw", { 0x66, 0x98 }, 2, 1 },       { "cwde", { 0x98 }, 1, 2 },       { "cdqe", { 0x48, 0x98 }, 2, 4 },
		   { "cwd", { 0x66, 0x99 }, 2, 2 },       { "cdq", { 0x99 }, 1, 4 },        { "cqo", { 0x48, 0x99 }, 2, 8 } };
	for (unsigned k = 0; k < 6; k++) {
		memset(&F, 0, offsetof(struct form, v));
		snprintf(F.name, sizeof F.name, "%s", cv[k].name);
		F.size = cv[k].size;
		F.cls = EMU_FC_ARITH;
		F.e0 = 0;
		F.e1 = -1;
		F.nvar = 1;
		memset(&F.v[0], 0, sizeof F.v[0]);
		memcpy(F.v[0].b, cv[k].b, cv[k].len);
		F.v[0].len = cv[k].len;
		F.v[0].idxreg = -1;
		F.v[0].nop = 1;
		F.v[0].op[0] = REG(RAX, cv[k].size);
		run_form(&F);
	}
}

/* LEA with every addressing form: base (none, any GPR but RSP, RIP), index (none, any but RSP), scale,
 * displacement (none, 8-bit, 32-bit, both signs), 64- and 32-bit address size, 16/32/64-bit destination.
 * The registers hold random values: LEA is arithmetic. */
static void fam_lea(void)
{
	fam_begin("lea");
	static const int32_t disps[] = { 0, 1, -1, 0x7f, -0x80, 0x80, -0x81, 0x12345678, -0x7fffffff - 1, 0x7fffffff, 0x40 };
	for (unsigned z = 0; z < 3; z++)
		for (unsigned asz = 4; asz <= 8; asz += 4) {
			unsigned s = sizes3[z];
			memset(&F, 0, offsetof(struct form, v));
			snprintf(F.name, sizeof F.name, "lea r%u, [a%u]", 8 * s, 8 * asz);
			F.size = s;
			F.cls = EMU_FC_ARITH;
			F.e0 = 1;
			F.e1 = 2;
			for (unsigned j = 0; j < MAXVAR; j++) {
				struct variant *v = &F.v[F.nvar];
				memset(v, 0, sizeof *v);
				v->idxreg = -1;
				v->asz = asz;
				int dst = (int)rndn(16), base, index;
				while (dst == RSP)
					dst = (int)rndn(16);
				unsigned kind = j % 8;
				base = kind == 0 ? -1 : kind == 1 ? -2 /* rip */ : (int)rndn(16);
				while (base == RSP)
					base = (int)rndn(16);
				index = kind == 1 || kind == 2 ? -1 : (int)rndn(16);
				while (index == RSP)
					index = (int)rndn(16);
				if (j < 16) { /* the special encodings: rbp/r13 base without displacement, r12 base */
					base = (int[]){ RBP, R13, R12, RBX }[j % 4];
				}
				int32_t disp = disps[rndn(sizeof disps / sizeof disps[0])];
				ZydisEncoderRequest req;
				memset(&req, 0, sizeof req);
				req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
				req.mnemonic = ZYDIS_MNEMONIC_LEA;
				req.operand_count = 2;
				req.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
				req.operands[0].reg.value = zreg(s, dst, 0);
				ZydisEncoderOperand *o = &req.operands[1];
				o->type = ZYDIS_OPERAND_TYPE_MEMORY;
				o->mem.base = base == -1 ? ZYDIS_REGISTER_NONE
					      : base == -2 ? (asz == 8 ? ZYDIS_REGISTER_RIP : ZYDIS_REGISTER_EIP)
							   : zreg(asz, base, 0);
				o->mem.index = index < 0 ? ZYDIS_REGISTER_NONE : zreg(asz, index, 0);
				o->mem.scale = index < 0 ? 0 : (ZyanU8)(1u << rndn(4));
				o->mem.displacement = disp;
				/* Zydis wants the memory operand's size for LEA: try the plausible ones */
				static const unsigned msz[] = { 0, 2, 4, 8 };
				ZyanUSize len = 0;
				int okenc = 0;
				for (unsigned q = 0; q < 4 && !okenc; q++) {
					o->mem.size = (ZyanU16)msz[q];
					len = sizeof v->b;
					okenc = ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, v->b, &len));
				}
				if (!okenc)
					continue;
				v->len = (uint8_t)len;
				v->riprel = base == -2;
				v->op[0] = REG(dst, s);
				v->op[1] = base >= 0 ? REG(base, 8) : (struct loc){ 0 };
				v->op[2] = index >= 0 ? REG(index, 8) : (struct loc){ 0 };
				v->nop = 3;
				F.nvar++;
			}
			if (F.nvar < 64) {
				fprintf(stderr, "lea: only %u variants encodable\n", F.nvar);
				exit(2);
			}
			run_form(&F);
		}
}

static void fam_string(void)
{
	fam_begin("string");
	static const struct {
		const char *name;
		uint8_t op;
		int cmp;
	} so[] = { { "movs", 0xa4, 0 }, { "cmps", 0xa6, 1 }, { "stos", 0xaa, 0 }, { "lods", 0xac, 0 }, { "scas", 0xae, 1 } };
	static const char sfx[] = { 0, 'b', 'w', 0, 'd', 0, 0, 0, 'q' };
	for (unsigned a = 0; a < 5; a++)
		for (unsigned z = 0; z < 4; z++)
			for (unsigned rep = 0; rep < 3; rep++) {
				if (rep == 2 && !so[a].cmp)
					continue;
				unsigned s = sizes4[z];
				memset(&F, 0, offsetof(struct form, v));
				snprintf(F.name, sizeof F.name, "%s%s%c", rep == 0 ? "" : rep == 1 ? (so[a].cmp ? "repe " : "rep ") : "repne ",
					 so[a].name, sfx[s]);
				F.size = s;
				F.cls = so[a].cmp ? -3 : -2;
				F.e0 = F.e1 = -1;
				F.fix = fix_string;
				F.nvar = 1;
				struct variant *v = &F.v[0];
				memset(v, 0, sizeof *v);
				v->idxreg = -1;
				v->imm = rep;
				unsigned n = 0;
				if (rep)
					v->b[n++] = rep == 1 ? 0xf3 : 0xf2;
				if (s == 2)
					v->b[n++] = 0x66;
				if (s == 8)
					v->b[n++] = 0x48;
				v->b[n++] = (uint8_t)(so[a].op + (s > 1));
				v->len = (uint8_t)n;
				run_form(&F);
			}
}

int main(void)
{
	uint64_t seed = env_u64("EMU_ORACLE_SEED", 0x5eed0c0ffee15bad);
	ncases = (unsigned)env_u64("EMU_ORACLE_CASES", 1000);
	verbose = (int)env_u64("EMU_ORACLE_VERBOSE", 0);
	only = getenv("EMU_ORACLE_ONLY");
	if (ncases < NE * NE)
		ncases = NE * NE;
	if (ncases > 4000)
		ncases = 4000;
	rng_state = seed ? seed : 1;
	/* The same count under ASan+UBSan: the whole run stays within a few seconds there too. */
	printf("emu_insn_oracle: seed %#" PRIx64 " (EMU_ORACLE_SEED), %u operand sets per form (EMU_ORACLE_CASES)%s\n",
	       seed, ncases, ORC_SANITIZED ? ", under ASan" : "");
	B.in = calloc(ncases, sizeof *B.in);
	B.nat = calloc(ncases, sizeof *B.nat);
	B.emu = calloc(ncases, sizeof *B.emu);
	B.pmask = calloc(ncases, sizeof *B.pmask);
	orc_signals();
	orc_init(&O);

	fam_alu();
	fam_unary();
	fam_shift();
	fam_muldiv();
	fam_bit();
	fam_cond();
	fam_move();
	fam_lea();
	fam_string();
	fam_end();

	printf("emu_insn_oracle: %lu forms, %lu cases, %" PRIu64 " guest instructions: %s\n", total_forms, total_cases,
	       O.instructions, total_fail_forms ? "FAILED" : "ok");
	orc_fini(&O);
	free(B.in);
	free(B.nat);
	free(B.emu);
	free(B.pmask);
	if (total_fail_forms) {
		fprintf(stderr, "emu_insn_oracle: %d form(s) differ from the host\n", total_fail_forms);
		return 1;
	}
	return 0;
}
