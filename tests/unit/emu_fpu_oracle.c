/* SPDX-License-Identifier: MIT */
/*
 * emu_fpu_oracle: the host CPU is the oracle for every x87 / MMX / SSE..SSE4.2 (and PCLMULQDQ, MOVBE)
 * instruction form Zydis knows (emu_fpu_enum.h), register and memory forms alike.
 *
 * Each case runs, natively and in the engine (emu_oracle_run.h):
 *     fxrstor64 [rbx]            the whole x87/MMX/SSE input state from the window
 *     <the form>                 memory operand [rsi] / [rsi+16] / [r14].. (or MASKMOV's [rdi])
 *     fxsave64 [rbx]             the whole state out
 *     fninit; ldmxcsr [rbx+508]  a clean host state for the C code between cases
 * and compares all GPRs, the status flags, the 1024-byte window (the FXSAVE image: FCW, FSW with
 * C0-C3 and TOP, abridged FTW, ST0-7 / MM0-7, MXCSR, XMM0-15; and the memory operands) bit for bit,
 * and the exception (#MF / #XM for an unmasked exception: the host's SIGFPE; #GP for a misaligned
 * operand: its SIGSEGV). Not compared: FOP/FIP/FDP (bytes 6-23: the engine does not record them, the
 * host writes them only with an exception pending; the same fields of FNSTENV/FNSAVE's memory image),
 * MXCSR_MASK (28-31: the engine reports 0xffff, an
 * AMD host may have bit 17, MM), the reserved upper 6 bytes of each ST slot.
 *
 * Inputs: per case a random FXSAVE image built from special values -- x87 registers zero, denormal,
 * pseudo-denormal, unnormal, normal, integers, infinities, QNaN/SNaN, pseudo-NaN/-infinity; FCW with
 * every rounding and precision control and (1 case in 4) unmasked exceptions; FSW with random TOP,
 * C0-C3 and sticky flags (consistent ES/B; a pending exception in some cases); MXCSR with every RC,
 * DAZ, FTZ, (1 in 4) unmasked exceptions; XMM lanes as f32 / f64 specials (+-0, denormals, min normal,
 * max, +-inf, QNaN, SNaN, 2^31, 2^63, ...), integer patterns, strings with NULs; memory operands the
 * same; 1 case in 8 with a misaligned memory base. Transcendental instructions (FSIN, FCOS, FPTAN,
 * FPATAN, FYL2X, F2XM1, ...) compare against the HOST's values: the engine runs them on the host, so
 * a guest sees what this host's CPU computes (another vendor may differ in the last bits).
 *
 * Environment: EMU_ORACLE_SEED, EMU_ORACLE_CASES (default 1000), EMU_ORACLE_ONLY=substring,
 * EMU_ORACLE_VERBOSE=1.
 */
#define MEMSZ 1024
#define MID 768
#include "emu_oracle_run.h"
#include "emu_fpu_enum.h"

#include <stdbool.h>

enum { K_X87, K_MMX, K_SSE, K_INT };

#define NV 12
struct fvar {
	uint8_t b[40];
	unsigned len;
	uint16_t pmask;
	int base;       /* memory base register (offset MID), -1 none */
	int disp;       /* its displacement */
};
struct fform {
	char name[96];
	int kind;
	int mmx;        /* an MMX register operand: checks for a pending x87 exception (#MF) */
	unsigned nvar, seen;
	struct fvar v[NV];
};

static struct fform *forms;
static unsigned nforms, cap;
static unsigned ncases = 1000;
static int verbose;
static const char *only;
static struct orc O;
static struct batch B;
static unsigned printed;

/* fxrstor64 (%rbx) ... fxsave64 (%rbx); fninit; ldmxcsr 508(%rbx) */
static const uint8_t pre[] = { 0x48, 0x0f, 0xae, 0x0b };
static const uint8_t post[] = { 0x48, 0x0f, 0xae, 0x03, 0xdb, 0xe3, 0x0f, 0xae, 0x93, 0xfc, 0x01, 0x00, 0x00 };

static int kind_of(ZydisISASet s, ZydisMnemonic m)
{
	switch (s) {
	case ZYDIS_ISA_SET_X87: case ZYDIS_ISA_SET_FCMOV: case ZYDIS_ISA_SET_SSE3X87: return K_X87;
	case ZYDIS_ISA_SET_PENTIUMMMX: return K_MMX;
	case ZYDIS_ISA_SET_MOVBE: return K_INT;
	default:
		if (m == ZYDIS_MNEMONIC_FISTTP)
			return K_X87;
		return m == ZYDIS_MNEMONIC_CRC32 || m == ZYDIS_MNEMONIC_MOVNTI ? K_INT : K_SSE;
	}
}

static int gpr_num(ZydisRegister r)
{
	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR8: { /* AL CL DL BL AH CH DH BH SPL BPL SIL DIL R8B..R15B */
		int k = (int)(r - ZYDIS_REGISTER_AL);
		return k < 4 ? k : k - 4;
	}
	case ZYDIS_REGCLASS_GPR16: case ZYDIS_REGCLASS_GPR32: case ZYDIS_REGCLASS_GPR64:
		return ZydisRegisterGetId(r);
	default:
		return -1;
	}
}

static void collect(const uint8_t *b, unsigned len, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		    void *arg)
{
	(void)arg;
	switch (zi->mnemonic) {
	case ZYDIS_MNEMONIC_FXSAVE: case ZYDIS_MNEMONIC_FXSAVE64: case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_FXRSTOR64: case ZYDIS_MNEMONIC_XSAVE: case ZYDIS_MNEMONIC_XSAVE64:
	case ZYDIS_MNEMONIC_XSAVEOPT: case ZYDIS_MNEMONIC_XSAVEOPT64: case ZYDIS_MNEMONIC_XRSTOR:
	case ZYDIS_MNEMONIC_XRSTOR64: case ZYDIS_MNEMONIC_XGETBV: case ZYDIS_MNEMONIC_XSETBV:
		return; /* state save/restore and XCR0: emu_fpu_state.c */
	default: break;
	}
	struct fvar v;
	memset(&v, 0, sizeof v);
	v.base = -1;
	uint32_t gprs = 0;
	for (unsigned k = 0; k < zi->operand_count; k++) {
		const ZydisDecodedOperand *o = &zo[k];
		if (o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->mem.type == ZYDIS_MEMOP_TYPE_MEM) {
			if (o->mem.index != ZYDIS_REGISTER_NONE)
				return;
			int r = gpr_num(o->mem.base);
			if (r < 0 || r == RSP || r == RBX)
				return;
			v.base = r;
			v.disp = (int)o->mem.disp.value;
		} else if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
			int r = gpr_num(o->reg.value);
			if (r >= 0 && o->visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT)
				gprs |= 1u << r;
		}
	}
	if (gprs & ((1u << RSP) | (1u << RBX)))
		return;
	if (v.base >= 0 && (gprs >> v.base & 1))
		return;
	char name[96];
	fe_form_name(zi, zo, name, sizeof name);
	struct fform *f = NULL;
	for (unsigned k = nforms; k-- > 0;)
		if (!strcmp(forms[k].name, name)) {
			f = &forms[k];
			break;
		}
	if (!f) {
		if (nforms == cap) {
			cap = cap ? 2 * cap : 256;
			forms = realloc(forms, cap * sizeof *forms);
		}
		f = &forms[nforms++];
		memset(f, 0, sizeof *f);
		snprintf(f->name, sizeof f->name, "%s", name);
		f->kind = kind_of(zi->meta.isa_set, zi->mnemonic);
		for (unsigned k = 0; k < zi->operand_count; k++)
			if (zo[k].type == ZYDIS_OPERAND_TYPE_REGISTER &&
			    ZydisRegisterGetClass(zo[k].reg.value) == ZYDIS_REGCLASS_MMX)
				f->mmx = 1;
	}
	/* a reservoir sample of NV encodings of the form (registers, REX, displacement) */
	f->seen++;
	unsigned slot = f->nvar < NV ? f->nvar : (unsigned)rndn(f->seen);
	if (slot >= NV)
		return;
	memcpy(v.b, pre, sizeof pre);
	memcpy(v.b + sizeof pre, b, len);
	/* a random imm8 (PSHUFD, PCMPxSTRx, ROUNDSS, ...: the last byte of these legacy encodings) */
	for (unsigned k = 0; k < zi->operand_count_visible; k++)
		if (zo[k].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && zi->raw.imm[0].size == 8)
			v.b[sizeof pre + len - 1] = (uint8_t)rnd();
	memcpy(v.b + sizeof pre + len, post, sizeof post);
	v.len = (unsigned)(sizeof pre + len + sizeof post);
	v.pmask = (uint16_t)(1u << RBX);
	if (v.base >= 0)
		v.pmask |= (uint16_t)(1u << v.base);
	f->v[slot] = v;
	if (slot == f->nvar)
		f->nvar++;
}

/* ------------------------------------------------------------------------------------- values */

static uint32_t f32v(void)
{
	static const uint32_t sp[] = { 0, 0x80000000, 0x3f800000, 0xbfc00000, 1, 0x807fffff, 0x00800000,
				       0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001,
				       0x7fbfffff, 0x4f000000, 0xcf000000, 0x5f000000, 0x3f000000, 0x3fc00000,
				       0x4b000000, 0x3effffff, 0xc3800000 };
	switch (rndn(3)) {
	case 0: return sp[rndn(sizeof sp / sizeof sp[0])];
	case 1: return (uint32_t)rnd();
	default: return (uint32_t)((rnd() & 0x800fffffu) | ((0x70u + rndn(32)) << 23));
	}
}

static uint64_t f64v(void)
{
	static const uint64_t sp[] = { 0, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff8000000000000ull, 1,
				       0x800fffffffffffffull, 0x0010000000000000ull, 0x7fefffffffffffffull,
				       0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull,
				       0xfff8000000000001ull, 0x7ff0000000000001ull, 0x7ff7ffffffffffffull,
				       0x41e0000000000000ull, 0xc1e0000000000000ull, 0x43e0000000000000ull,
				       0x3fe0000000000000ull, 0x3ff8000000000000ull, 0x4330000000000000ull,
				       0x36a0000000000000ull, 0x47efffffe0000000ull, 0x3810000000000000ull };
	switch (rndn(3)) {
	case 0: return sp[rndn(sizeof sp / sizeof sp[0])];
	case 1: return rnd();
	default: return (rnd() & 0x800fffffffffffffull) | ((uint64_t)(0x3c0 + rndn(128)) << 52);
	}
}

/* 16 bytes of one flavour */
static void chunk(uint8_t *p)
{
	switch (rndn(6)) {
	case 0:
		for (int k = 0; k < 4; k++) {
			uint32_t x = f32v();
			memcpy(p + 4 * k, &x, 4);
		}
		break;
	case 1:
		for (int k = 0; k < 2; k++) {
			uint64_t x = f64v();
			memcpy(p + 8 * k, &x, 8);
		}
		break;
	case 2: {
		static const uint8_t pat[] = { 0, 0xff, 0x80, 0x7f, 1, 0xfe, 0x41, 0x61 };
		for (int k = 0; k < 16; k++)
			p[k] = pat[rndn(sizeof pat)];
		break;
	}
	case 3: /* a string: letters, sometimes a NUL */
		for (int k = 0; k < 16; k++)
			p[k] = rndn(12) == 0 ? 0 : (uint8_t)('a' + rndn(6));
		break;
	case 4: { /* small integers in every lane size */
		for (int k = 0; k < 16; k += 4) {
			uint32_t x = (uint32_t)((int32_t)rndn(64) - 32);
			memcpy(p + k, &x, 4);
		}
		break;
	}
	default:
		for (int k = 0; k < 16; k += 8) {
			uint64_t x = rnd();
			memcpy(p + k, &x, 8);
		}
		break;
	}
}

/* an 80-bit x87 value in a 16-byte slot */
static void f80v(uint8_t *p)
{
	uint64_t mant;
	uint16_t se;
	unsigned sign = (unsigned)rndn(2) << 15;
	switch (rndn(12)) {
	case 0: mant = 0; se = 0; break;                                           /* zero */
	case 1: mant = rnd() >> 1; se = 0; break;                                  /* denormal */
	case 2: mant = rnd() | (1ull << 63); se = 0; break;                        /* pseudo-denormal */
	case 3: mant = rnd() >> 1; se = (uint16_t)(1 + rndn(0x7ffe)); break;       /* unnormal */
	case 4: mant = 1ull << 63; se = 0x7fff; break;                             /* infinity */
	case 5: mant = (3ull << 62) | (rnd() >> 2 & -(uint64_t)rndn(2)); se = 0x7fff; break; /* QNaN */
	case 6: mant = (1ull << 63) | (rnd() >> 2 | 1); se = 0x7fff; break;       /* SNaN */
	case 7: mant = rnd() >> 1; se = 0x7fff; break;                             /* pseudo-NaN/inf */
	case 8: { /* an integer value */
		unsigned e = (unsigned)rndn(64);
		mant = (rnd() | (1ull << 63)) & ~((1ull << (63 - e)) - 1) ;
		se = (uint16_t)(0x3fff + e);
		break;
	}
	case 9: mant = rnd() | (1ull << 63); se = (uint16_t)(rndn(2) ? 1 + rndn(0x7ffe) : rndn(0x7fff)); break;
	default: mant = rnd() | (1ull << 63); se = (uint16_t)(0x3fff - 40 + rndn(80)); break;
	}
	se |= (uint16_t)sign;
	memset(p, 0, 16);
	memcpy(p, &mant, 8);
	memcpy(p + 8, &se, 2);
}

static void gen_image(uint8_t *m)
{
	memset(m, 0, 512);
	uint16_t fcw = 0x40 | (uint16_t)(rndn(4) << 8) | (uint16_t)(rndn(4) << 10);
	fcw |= rndn(4) ? 0x3f : (uint16_t)rndn(64);
	uint16_t fsw = (uint16_t)(rndn(8) << 11) | (uint16_t)(rnd() & 0x4700);
	uint16_t fl = (uint16_t)(rnd() & 0x7f);
	if (rndn(8))
		fl &= fcw & 0x3f; /* mostly nothing pending */
	fsw |= fl;
	if (fl & ~fcw & 0x3f)
		fsw |= 0x8080;
	uint8_t ftw = rndn(2) ? 0xff : rndn(2) ? (uint8_t)rnd() : 0;
	memcpy(m + 0, &fcw, 2);
	memcpy(m + 2, &fsw, 2);
	m[4] = ftw;
	uint32_t mx = (uint32_t)(rndn(4) << 13) | (rndn(2) ? 0x8000 : 0) | (rndn(2) ? 0x40 : 0);
	mx |= rndn(4) ? 0x1f80 : (uint32_t)(rndn(64) << 7);
	mx |= (uint32_t)(rnd() & 0x3f) & -(uint32_t)rndn(2);
	memcpy(m + 24, &mx, 4);
	for (int k = 0; k < 8; k++)
		f80v(m + 32 + 16 * k);
	for (int k = 0; k < 16; k++)
		chunk(m + 160 + 16 * k);
	uint32_t host_mx = 0x1f80;
	memcpy(m + 508, &host_mx, 4);
}

static void gen_case(const struct fform *f, struct ocase *c, unsigned i)
{
	memset(c, 0, sizeof *c);
	for (int k = 0; k < 16; k++)
		c->r[k] = k == RSP ? 0 : rndn(4) ? rnd() : (uint64_t)(int64_t)((int)rndn(64) - 32);
	c->fl = BASE_FLAGS | (rnd() & EMU_STATUS_FLAGS);
	c->var = i % f->nvar;
	const struct fvar *v = &f->v[c->var];
	gen_image(c->mem);
	for (unsigned k = 512; k < MEMSZ; k += 16)
		chunk(c->mem + k);
	c->r[RBX] = 0;
	if (v->base >= 0)
		c->r[v->base] = MID + (i % 8 == 7 ? 4 : 0);
	if (!strncmp(f->name, "LDMXCSR", 7) && i % 8) { /* mostly a valid MXCSR */
		for (unsigned k = 512; k < MEMSZ; k += 4)
			c->mem[k + 2] = c->mem[k + 3] = 0;
	}
}

/* the bytes not compared (see the top) */
static void unmask(const struct fform *f, struct ocase *c, unsigned i)
{
	/* FNSTENV/FNSAVE: FIP FCS FOP FDP FDS are the host's on both sides (the engine stores 0) */
	int env = !strncmp(f->name, "fnstenv", 7) || !strncmp(f->name, "fnsave", 6);
	const struct fvar *v = &f->v[B.in[i].var];
	if (env && v->base >= 0) {
		unsigned at = (unsigned)(MID + (i % 8 == 7 ? 4 : 0) + v->disp);
		int big = strstr(f->name, "m224") || strstr(f->name, "m864");
		memset(c->mem + at + (big ? 12 : 6), 0, big ? 16 : 8);
	}
	memset(c->mem + 6, 0, 18);
	memset(c->mem + 28, 0, 4);
	for (int k = 0; k < 8; k++)
		memset(c->mem + 32 + 16 * k + 10, 0, 6);
}

static unsigned long total_cases, nexc[32];
static unsigned fails;

static void run_form(struct fform *f)
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
	}
	orc_native(&O, &B);
	int engine_ok = orc_engine(&O, &B) == 0;
	unsigned bad = 0;
	for (unsigned i = 0; i < ncases; i++) {
		struct ocase *n = &B.nat[i], *e = &B.emu[i];
		if (n->de == 1) { /* SIGFPE: #MF for a pending x87 exception, else #XM */
			bool x87 = f->kind == K_X87 || f->kind == K_MMX || (f->mmx && (B.in[i].mem[2] & 0x80));
			n->de = (x87 ? 16 : 19) + 1;
		}
		if (n->de < 32)
			nexc[n->de]++;
		unmask(f, n, i);
		unmask(f, e, i);
		if (compare_case(&B.in[i], n, e, 0, CMP_FLAGS, 0, 0, B.pmask[i], 0))
			continue;
		bad++;
		if (printed++ < 12) {
			char dis[160];
			const struct fvar *v = &f->v[B.in[i].var];
			disas(v->b + sizeof pre, v->len - (unsigned)sizeof pre - (unsigned)sizeof post, dis, sizeof dis);
			uint32_t mi, mn, me;
			memcpy(&mi, B.in[i].mem + 24, 4);
			memcpy(&mn, n->mem + 24, 4);
			memcpy(&me, e->mem + 24, 4);
			fprintf(stderr, "MISMATCH form [%s] case %u: %s (MXCSR in %#x host %#x emu %#x)\n", f->name, i,
				dis, mi, mn, me);
			compare_case(&B.in[i], n, e, 0, CMP_FLAGS, 0, 0, B.pmask[i], 1);
		}
	}
	total_cases += ncases;
	if (!engine_ok)
		bad++;
	if (bad) {
		fails++;
		fprintf(stderr, "FAILED form [%s]: %u of %u cases differ\n", f->name, bad, ncases);
	}
	if (verbose)
		printf("  %-40s %2u variants: %s\n", f->name, f->nvar, bad ? "FAILED" : "ok");
}

/* CR4.OSFXSR (SSE), OSXMMEXCPT (#XM for unmasked SSE exceptions); CR0.NE (#MF) is set by t_long_mode */
static void post_init(struct t_vm *t)
{
	struct kvm_sregs s;
	t->ops->get_sregs(t->cpu, &s);
	s.cr4 |= (1u << 9) | (1u << 10);
	t->ops->set_sregs(t->cpu, &s);
}

int main(void)
{
	uint64_t seed = env_u64("EMU_ORACLE_SEED", 0x5eedf00dfacef00d);
	ncases = (unsigned)env_u64("EMU_ORACLE_CASES", 1000);
	verbose = (int)env_u64("EMU_ORACLE_VERBOSE", 0);
	only = getenv("EMU_ORACLE_ONLY");
	if (ncases < 16)
		ncases = 16;
	if (ncases > 2600)
		ncases = 2600;
	rng_state = seed ? seed : 1;
	fe_enumerate(collect, NULL);
	printf("emu_fpu_oracle: seed %#" PRIx64 " (EMU_ORACLE_SEED), %u forms, %u operand sets per form "
	       "(EMU_ORACLE_CASES)%s\n", seed, nforms, ncases, ORC_SANITIZED ? ", under ASan" : "");
	B.in = calloc(ncases, sizeof *B.in);
	B.nat = calloc(ncases, sizeof *B.nat);
	B.emu = calloc(ncases, sizeof *B.emu);
	B.pmask = calloc(ncases, sizeof *B.pmask);
	orc_signals();
	orc_post_init = post_init;
	orc_init(&O);
	for (unsigned k = 0; k < nforms; k++)
		run_form(&forms[k]);
	printf("emu_fpu_oracle: %u forms, %lu cases (host exceptions: #GP %lu, #MF %lu, #XM %lu), %" PRIu64
	       " guest instructions: %s\n", nforms, total_cases, nexc[14], nexc[17], nexc[20], O.instructions,
	       fails ? "FAILED" : "ok");
	orc_fini(&O);
	free(B.in);
	free(B.nat);
	free(B.emu);
	free(B.pmask);
	free(forms);
	if (fails) {
		fprintf(stderr, "emu_fpu_oracle: %u form(s) differ from the host\n", fails);
		return 1;
	}
	return 0;
}
