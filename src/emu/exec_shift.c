/* SPDX-License-Identifier: MIT */
/*
 * Shifts and rotates: ROL ROR RCL RCR SHL SHR SAR, SHLD SHRD.
 * The rules every handler follows, and where the other families are: exec.h.
 */
#include "emu/exec.h"

/* ---------------------------------------------------------------- shifts and rotates */

/* SHL SHR SAR ROL ROR inline, bit for bit as alu.c's emu_shift (its comment gives the undefined
 * flags we reproduce); RCL/RCR go to emu_shift. Returns false when the masked count is 0 (nothing
 * changes, no flag either); else the result in *r and, in *fx, CF OF (and AF for shifts). */
static inline bool sh_calc(unsigned op, unsigned n, uint64_t d, uint64_t cnt, uint64_t *r, uint64_t *fx)
{
	const unsigned bits = 8 * n, top = bits - 1;
	const uint64_t m = emu_size_mask(n);
	unsigned k = (unsigned)cnt & (n == 8 ? 0x3f : 0x1f), t;
	uint64_t v, cf, of;
	if (!k)
		return false;
	switch (op) {
	case EMU_SHL: case EMU_SAL:
		v = (d << k) & m;
		cf = k <= bits ? (d >> (bits - k)) & 1 : 0;
		of = ((v >> top) ^ cf) & 1;
		*fx = cf | (of << 11) | EMU_AF;
		break;
	case EMU_SHR:
		v = d >> k;
		cf = (d >> (k - 1)) & 1;
		of = ((v >> top) ^ (v >> (top - 1))) & 1;
		*fx = cf | (of << 11) | EMU_AF;
		break;
	case EMU_SAR: {
		int64_t sd = (int64_t)emu_sign_extend(n, d);
		v = (uint64_t)(sd >> (k > top ? top : k)) & m;
		cf = (uint64_t)(sd >> (k - 1 > top ? top : k - 1)) & 1;
		*fx = cf | EMU_AF;
		break;
	}
	case EMU_ROL:
		t = k & top;
		v = t ? ((d << t) | (d >> (bits - t))) & m : d;
		cf = v & 1;
		*fx = cf | ((((v >> top) ^ cf) & 1) << 11);
		break;
	default: /* ROR */
		t = k & top;
		v = t ? ((d >> t) | (d << (bits - t))) & m : d;
		cf = v >> top;
		*fx = cf | ((((v >> top) ^ (v >> (top - 1))) & 1) << 11);
		break;
	}
	*r = v;
	return true;
}

/* Flags of sh_calc: shifts lazily (SF ZF PF from the result), rotates touch only CF and OF. */
static inline void sh_rec(struct emu_vcpu *c, unsigned op, unsigned n, uint64_t r, uint64_t fx)
{
	if (op == EMU_ROL || op == EMU_ROR) {
		lazy_cfof(c, fx);
	} else {
		c->lf_s = fx;
		c->lf_r = r << LF_SH(n);
		c->lf_k = LF_SZPX | (n << 8);
	}
}

#define SH_COUNT(c, i) (((i)->flg & EMU_I_CL) ? (uint8_t)(c)->r[EMU_RCX] : (i)->imm)
#define SH_H(N, NAME, OP)                                                                \
	static int h_##NAME##_r_##N(ARGS)                                                \
	{                                                                                \
		uint64_t r, fx, d = EMU_RD_##N(c, i->r);                                 \
		if (sh_calc(OP, N, d, SH_COUNT(c, i), &r, &fx))                          \
			sh_rec(c, OP, N, r, fx);                                         \
		else                                                                     \
			r = d; /* count 0: no flags, but a 32-bit destination is still   \
				  written, i.e. zero-extended (as the host does) */      \
		EMU_WR_##N(c, i->r, r);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_##NAME##_m_##N(ARGS)                                                \
	{                                                                                \
		uint64_t d, r, fx, lin = emu_lin(c, i);                                  \
		TRY(emu_rd##N(c, lin, &d));                                              \
		if (sh_calc(OP, N, d, SH_COUNT(c, i), &r, &fx)) {                        \
			TRY(emu_wr##N(c, lin, r));                                       \
			sh_rec(c, OP, N, r, fx);                                         \
		} else {                                                                 \
			TRY(emu_wr##N(c, lin, d)); /* a count of 0 still writes */      \
		}                                                                        \
		return emu_next(c, i);                                                   \
	}
#define SH_SIZES(NAME, OP) SH_H(1, NAME, OP) SH_H(2, NAME, OP) SH_H(4, NAME, OP) SH_H(8, NAME, OP)
SH_SIZES(shl, EMU_SHL) SH_SIZES(shr, EMU_SHR) SH_SIZES(sar, EMU_SAR) SH_SIZES(rol, EMU_ROL)
SH_SIZES(ror, EMU_ROR)

/* RCL RCR: through alu.c */
#define RC_H(N)                                                                          \
	static int h_rcx_r_##N(ARGS)                                                     \
	{                                                                                \
		EMU_WR_##N(c, i->r, emu_shift(i->op, N, EMU_RD_##N(c, i->r), SH_COUNT(c, i), emu_rflagsp(c))); \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_rcx_m_##N(ARGS)                                                     \
	{                                                                                \
		uint64_t d, f = emu_rflags(c), lin = emu_lin(c, i);                      \
		TRY(emu_rd##N(c, lin, &d));                                              \
		TRY(emu_wr##N(c, lin, emu_shift(i->op, N, d, SH_COUNT(c, i), &f)));      \
		c->rflags = f;                                                           \
		return emu_next(c, i);                                                   \
	}
RC_H(1) RC_H(2) RC_H(4) RC_H(8)
#define SH_ROW(NAME) { { h_##NAME##_r_1, h_##NAME##_r_2, h_##NAME##_r_4, h_##NAME##_r_8 }, \
		       { h_##NAME##_m_1, h_##NAME##_m_2, h_##NAME##_m_4, h_##NAME##_m_8 } }
/* [emu_shift_op][mem][size] */
static emu_fn *const shift_t[8][2][4] = { SH_ROW(rol), SH_ROW(ror), SH_ROW(rcx), SH_ROW(rcx),
					 SH_ROW(shl), SH_ROW(shr), SH_ROW(shl), SH_ROW(sar) };

/* SHLD/SHRD: op 0 = SHLD, 1 = SHRD; r = source register, b / memory = destination */
static int h_shxd_r(ARGS)
{
	unsigned n = i->osz;
	uint64_t cnt = (i->flg & EMU_I_CL) ? (uint8_t)c->r[EMU_RCX] : i->imm;
	uint64_t d = emu_rdreg(c, n, i->b), s = emu_rdreg(c, n, i->r);
	uint64_t *fp = emu_rflagsp(c);
	uint64_t v = i->op ? emu_shrd(n, d, s, cnt, fp) : emu_shld(n, d, s, cnt, fp);
	emu_wrreg(c, n, i->b, v);
	return emu_next(c, i);
}

static int h_shxd_m(ARGS)
{
	unsigned n = i->osz;
	uint64_t cnt = (i->flg & EMU_I_CL) ? (uint8_t)c->r[EMU_RCX] : i->imm;
	uint64_t d, f = emu_rflags(c), lin = emu_lin(c, i), s = emu_rdreg(c, n, i->r);
	TRY(emu_rd(c, lin, n, &d));
	uint64_t v = i->op ? emu_shrd(n, d, s, cnt, &f) : emu_shld(n, d, s, cnt, &f);
	TRY(emu_wr(c, lin, n, v));
	c->rflags = f;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- selection (insn.def rows) */

/* ROL ROR RCL RCR SHL SHR SAR: count 1, imm8 or CL */
int sel_shift(struct emu_sel *s)
{
	const ZydisDecodedOperand *zo = s->zo;
	struct emu_insn *i = s->i;
	unsigned nvis = s->zi->operand_count_visible;
	i->op = s->row->op;
	int f = emu_form1(s->zi, &zo[0], i);
	if (f < 0)
		return EMU_SEL_BAD;
	if (nvis < 2 || zo[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		i->imm = nvis < 2 ? 1 : zo[1].imm.value.u;
	else if (zo[1].type == ZYDIS_OPERAND_TYPE_REGISTER && zo[1].reg.value == ZYDIS_REGISTER_CL)
		i->flg |= EMU_I_CL;
	else
		return EMU_SEL_BAD;
	i->fn = shift_t[i->op][f][SI(i)];
	return 0;
}

/* SHLD (op 0) SHRD (op 1) */
int sel_shxd(struct emu_sel *s)
{
	const ZydisDecodedOperand *zo = s->zo;
	struct emu_insn *i = s->i;
	i->op = s->row->op;
	int f = emu_form2(s->zi, zo, i);
	if (f == F_RR) {
		uint8_t t = i->r;
		i->r = i->b;
		i->b = t;
		i->fn = h_shxd_r;
	} else if (f == F_MR) {
		i->fn = h_shxd_m;
	} else {
		return EMU_SEL_BAD;
	}
	if (zo[2].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		i->imm = zo[2].imm.value.u;
	else
		i->flg |= EMU_I_CL;
	return 0;
}
