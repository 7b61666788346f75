/* SPDX-License-Identifier: MIT */
/*
 * Arithmetic and logic: group-1 ALU and TEST (and their LOCK forms), INC/DEC/NEG/NOT, MUL/IMUL/
 * DIV/IDIV, BT/BTS/BTR/BTC, BSF/BSR/TZCNT/LZCNT/POPCNT, BMI1, BSWAP, XADD, CMPXCHG, CMPXCHG8B/16B.
 * The arithmetic itself is alu.h / alu.c.
 * The rules every handler follows, and where the other families are: exec.h.
 */
#include "emu/exec.h"

/* ---------------------------------------------------------------- group-1 ALU, TEST */

#define ALU_H(N, NAME, OP, WB, F, L)                                                           \
	HFN h_##NAME##_rr##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t d = EMU_RD_##N(c, i->r), s = EMU_RD_##N(c, i->b), v = alu_res(c, OP, d, s); \
		alu_rec(c, OP, N, d, s, v);                                              \
		if (WB)                                                                  \
			EMU_WR_##N(c, i->r, v);                                          \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_##NAME##_rm##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, L(c, i), &s));                                    \
		uint64_t d = EMU_RD_##N(c, i->r), v = alu_res(c, OP, d, s);              \
		alu_rec(c, OP, N, d, s, v);                                              \
		if (WB)                                                                  \
			EMU_WR_##N(c, i->r, v);                                          \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_##NAME##_ri##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t d = EMU_RD_##N(c, i->r), v = alu_res(c, OP, d, i->imm);         \
		alu_rec(c, OP, N, d, i->imm, v);                                         \
		if (WB)                                                                  \
			EMU_WR_##N(c, i->r, v);                                          \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_##NAME##_mr##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t d, lin = L(c, i);                                         \
		TRY(emu_rd##N(c, lin, &d));                                              \
		uint64_t s = EMU_RD_##N(c, i->r), v = alu_res(c, OP, d, s);              \
		if (WB)                                                                  \
			TRY(emu_wr##N(c, lin, v));                                       \
		alu_rec(c, OP, N, d, s, v);                                              \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_##NAME##_mi##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t d, lin = L(c, i);                                         \
		TRY(emu_rd##N(c, lin, &d));                                              \
		uint64_t v = alu_res(c, OP, d, i->imm);                                  \
		if (WB)                                                                  \
			TRY(emu_wr##N(c, lin, v));                                       \
		alu_rec(c, OP, N, d, i->imm, v);                                         \
		return emu_next(c, i);                                                   \
	}
#define ALU_ALL(X) X(add, EMU_ALU_ADD, 1) X(or, EMU_ALU_OR, 1) X(adc, EMU_ALU_ADC, 1) \
	X(sbb, EMU_ALU_SBB, 1) X(and, EMU_ALU_AND, 1) X(sub, EMU_ALU_SUB, 1)              \
	X(xor, EMU_ALU_XOR, 1) X(cmp, EMU_ALU_CMP, 0) X(test, 8, 0)
#define ALU_SIZES(NAME, OP, WB) ALU_H(1, NAME, OP, WB, , emu_lin) ALU_H(2, NAME, OP, WB, , emu_lin) \
	ALU_H(4, NAME, OP, WB, , emu_lin) ALU_H(8, NAME, OP, WB, , emu_lin)
#define ALU_SIZES_F(NAME, OP, WB) ALU_H(1, NAME, OP, WB, _f, lin_flat) ALU_H(2, NAME, OP, WB, _f, lin_flat) \
	ALU_H(4, NAME, OP, WB, _f, lin_flat) ALU_H(8, NAME, OP, WB, _f, lin_flat)
ALU_ALL(ALU_SIZES)
ALU_ALL(ALU_SIZES_F)
#define ALU_ROW(NAME, OP, WB)                                                                   \
	{ { h_##NAME##_rr_1, h_##NAME##_rr_2, h_##NAME##_rr_4, h_##NAME##_rr_8 },               \
	  { h_##NAME##_rm_1, h_##NAME##_rm_2, h_##NAME##_rm_4, h_##NAME##_rm_8 },               \
	  { h_##NAME##_mr_1, h_##NAME##_mr_2, h_##NAME##_mr_4, h_##NAME##_mr_8 },               \
	  { h_##NAME##_ri_1, h_##NAME##_ri_2, h_##NAME##_ri_4, h_##NAME##_ri_8 },               \
	  { h_##NAME##_mi_1, h_##NAME##_mi_2, h_##NAME##_mi_4, h_##NAME##_mi_8 } },
/* [op: EMU_ALU_* then TEST][form][size] */
static emu_fn *const alu_t[9][F_NFORMS][4] = { ALU_ALL(ALU_ROW) };
#define ALU_ROW_F(NAME, OP, WB)                                                                 \
	{ { h_##NAME##_rr_1, h_##NAME##_rr_2, h_##NAME##_rr_4, h_##NAME##_rr_8 },               \
	  { h_##NAME##_rm_f_1, h_##NAME##_rm_f_2, h_##NAME##_rm_f_4, h_##NAME##_rm_f_8 },       \
	  { h_##NAME##_mr_f_1, h_##NAME##_mr_f_2, h_##NAME##_mr_f_4, h_##NAME##_mr_f_8 },       \
	  { h_##NAME##_ri_1, h_##NAME##_ri_2, h_##NAME##_ri_4, h_##NAME##_ri_8 },               \
	  { h_##NAME##_mi_f_1, h_##NAME##_mi_f_2, h_##NAME##_mi_f_4, h_##NAME##_mi_f_8 } },
/* the same for 64-bit mode, a flat segment and no RIP-relative or 32-bit address (lin_flat) */
static emu_fn *const alu_f_t[9][F_NFORMS][4] = { ALU_ALL(ALU_ROW_F) };

/* Locked forms: the one locked path. Operation in i->op (emu_rmw_op), size in i->osz. */
static int h_lock_mr(ARGS)
{
	struct emu_rmw m = { .op = i->op, .size = i->osz, .src = emu_rdreg(c, i->osz, i->r), .rflags = emu_rflags(c) };
	TRY(emu_locked_rmw(c, i, emu_lin(c, i), &m));
	c->rflags = m.rflags;
	return emu_next(c, i);
}

static int h_lock_mi(ARGS)
{
	struct emu_rmw m = { .op = i->op, .size = i->osz, .src = i->imm, .rflags = emu_rflags(c) };
	TRY(emu_locked_rmw(c, i, emu_lin(c, i), &m));
	c->rflags = m.rflags;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- INC DEC NEG NOT */

/* INC DEC NEG NOT: result; un_rec records the flags (INC/DEC keep CF: it is fixed in rflags first). */
static inline uint64_t un_res(unsigned op, uint64_t d)
{
	return op == EMU_INC ? d + 1 : op == EMU_DEC ? d - 1 : op == EMU_NEG ? 0 - d : ~d;
}

static inline void un_rec(struct emu_vcpu *c, unsigned op, unsigned n, uint64_t d, uint64_t r)
{
	if (op == EMU_INC || op == EMU_DEC) {
		c->rflags = (c->rflags & ~EMU_CF) | lazy_cf(c);
		lazy_set(c, op == EMU_INC ? LF_INC : LF_DEC, n, d, 1, r);
	} else if (op == EMU_NEG) {
		lazy_set(c, LF_SUB, n, 0, d, r);
	}
}

#define UN_H(N, NAME, OP)                                                                \
	static int h_##NAME##_r_##N(ARGS)                                                \
	{                                                                                \
		uint64_t d = EMU_RD_##N(c, i->r), r = un_res(OP, d);                     \
		un_rec(c, OP, N, d, r);                                                  \
		EMU_WR_##N(c, i->r, r);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_##NAME##_m_##N(ARGS)                                                \
	{                                                                                \
		uint64_t d, lin = emu_lin(c, i);                                         \
		TRY(emu_rd##N(c, lin, &d));                                              \
		uint64_t r = un_res(OP, d);                                              \
		TRY(emu_wr##N(c, lin, r));                                               \
		un_rec(c, OP, N, d, r);                                                  \
		return emu_next(c, i);                                                   \
	}
#define UN_ALL(X) X(inc, EMU_INC) X(dec, EMU_DEC) X(neg, EMU_NEG) X(not, EMU_NOT)
#define UN_SIZES(NAME, OP) UN_H(1, NAME, OP) UN_H(2, NAME, OP) UN_H(4, NAME, OP) UN_H(8, NAME, OP)
UN_ALL(UN_SIZES)
#define UN_ROW(NAME, OP) { { h_##NAME##_r_1, h_##NAME##_r_2, h_##NAME##_r_4, h_##NAME##_r_8 }, \
			   { h_##NAME##_m_1, h_##NAME##_m_2, h_##NAME##_m_4, h_##NAME##_m_8 } },
static emu_fn *const un_t[4][2][4] = { UN_ALL(UN_ROW) };

/* ---------------------------------------------------------------- MUL IMUL DIV IDIV (one operand) */


static int muldiv(struct emu_vcpu *c, const struct emu_insn *i, unsigned n, uint64_t src)
{
	uint64_t m = emu_size_mask(n);
	uint64_t a = n == 1 ? (uint8_t)c->r[EMU_RAX] : c->r[EMU_RAX] & m;
	uint64_t hi = n == 1 ? (uint8_t)(c->r[EMU_RAX] >> 8) : c->r[EMU_RDX] & m;
	uint64_t q, r;
	struct emu_wide w;
	switch (i->op) {
	case MD_MUL:
	case MD_IMUL:
		w = i->op == MD_MUL ? emu_mul(n, a, src, emu_rflagsp(c)) : emu_imul1(n, a, src, emu_rflagsp(c));
		q = w.lo;
		r = w.hi;
		break;
	case MD_DIV:
		if (emu_div(n, hi, n == 1 ? (uint16_t)c->r[EMU_RAX] & 0xff : a, src, &q, &r))
			return emu_raise(c, EMU_V_DE);
		c->rflags = emu_div_flags(emu_rflags(c)); /* undefined (SDM "DIV"): the host's pattern */
		break;
	default:
		if (emu_idiv(n, hi, n == 1 ? (uint16_t)c->r[EMU_RAX] & 0xff : a, src, &q, &r))
			return emu_raise(c, EMU_V_DE);
		c->rflags = emu_div_flags(emu_rflags(c)); /* undefined (SDM "IDIV"): the host's pattern */
		break;
	}
	if (n == 1) {
		EMU_WR_2(c, EMU_RAX, (q & 0xff) | ((r & 0xff) << 8));
	} else {
		emu_wrreg(c, n, EMU_RAX, q);
		emu_wrreg(c, n, EMU_RDX, r);
	}
	return emu_next(c, i);
}

/* Two/three-operand IMUL inline: the truncated signed product; CF = OF = the product does not fit,
 * SF ZF AF PF unchanged (as alu.c's emu_imul, the AMD host). */
static inline uint64_t imul_n(struct emu_vcpu *c, unsigned n, uint64_t a, uint64_t b)
{
	uint64_t lo;
	bool ovf;
	if (n == 8) {
		__int128 p = (__int128)(int64_t)a * (int64_t)b;
		lo = (uint64_t)p;
		ovf = p != (__int128)(int64_t)lo;
	} else {
		int64_t p = (int64_t)emu_sign_extend(n, a) * (int64_t)emu_sign_extend(n, b);
		lo = (uint64_t)p & emu_size_mask(n);
		ovf = p != (int64_t)emu_sign_extend(n, lo);
	}
	lazy_cfof(c, ovf ? EMU_CF | EMU_OF : 0);
	return lo;
}

#define MD_H(N)                                                                          \
	static int h_muldiv_r_##N(ARGS)                                                  \
	{                                                                                \
		return muldiv(c, i, N, EMU_RD_##N(c, i->r));                             \
	}                                                                                \
	static int h_muldiv_m_##N(ARGS)                                                  \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &s));                                    \
		return muldiv(c, i, N, s);                                               \
	}                                                                                \
	static int h_imul2_rr_##N(ARGS)                                                  \
	{                                                                                \
		EMU_WR_##N(c, i->r, imul_n(c, N, EMU_RD_##N(c, i->r), EMU_RD_##N(c, i->b))); \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_imul2_rm_##N(ARGS)                                                  \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &s));                                    \
		EMU_WR_##N(c, i->r, imul_n(c, N, EMU_RD_##N(c, i->r), s));               \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_imul3_rr_##N(ARGS)                                                  \
	{                                                                                \
		EMU_WR_##N(c, i->r, imul_n(c, N, EMU_RD_##N(c, i->b), i->imm));          \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_imul3_rm_##N(ARGS)                                                  \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &s));                                    \
		EMU_WR_##N(c, i->r, imul_n(c, N, s, i->imm));                            \
		return emu_next(c, i);                                                   \
	}
MD_H(1) MD_H(2) MD_H(4) MD_H(8)
T4(h_muldiv_r); T4(h_muldiv_m); T4(h_imul2_rr); T4(h_imul2_rm); T4(h_imul3_rr); T4(h_imul3_rm);

/* ---------------------------------------------------------------- bit operations */

/* BT/BTS/BTR/BTC (op = emu_bt_op); reg/imm bit offsets on registers and memory */
static int h_bt_rr(ARGS)
{
	unsigned n = i->osz;
	uint64_t v = emu_bt(i->op, n, emu_rdreg(c, n, i->b), emu_rdreg(c, n, i->r), emu_rflagsp(c));
	if (i->op != EMU_BT)
		emu_wrreg(c, n, i->b, v);
	return emu_next(c, i);
}

static int h_bt_ri(ARGS)
{
	unsigned n = i->osz;
	uint64_t v = emu_bt(i->op, n, emu_rdreg(c, n, i->b), i->imm, emu_rflagsp(c));
	if (i->op != EMU_BT)
		emu_wrreg(c, n, i->b, v);
	return emu_next(c, i);
}

static int bt_mem(struct emu_vcpu *c, const struct emu_insn *i, uint64_t lin, uint64_t bit)
{
	unsigned n = i->osz;
	if (i->flg & EMU_I_LOCK) {
		struct emu_rmw m = { .op = EMU_RMW_BTS + (i->op - EMU_BTS), .size = n, .src = bit,
				     .rflags = emu_rflags(c) };
		TRY(emu_locked_rmw(c, i, lin, &m));
		c->rflags = m.rflags;
		return emu_next(c, i);
	}
	uint64_t d, f = emu_rflags(c);
	TRY(emu_rd(c, lin, n, &d));
	uint64_t v = emu_bt(i->op, n, d, bit, &f);
	if (i->op != EMU_BT)
		TRY(emu_wr(c, lin, n, v));
	c->rflags = f;
	return emu_next(c, i);
}

static int h_bt_mr(ARGS)
{
	uint64_t off = emu_rdreg(c, i->osz, i->r), add = (uint64_t)emu_bt_mem_offset(i->osz, off), lin;
	if (unlikely(i->flg & EMU_I_SEG)) {
		/* the operand accessed is at the effective address plus the bit offset's bytes: the
		 * segment's limit is checked there (the sum at the address size) */
		struct emu_insn at = *i;
		at.disp += (int64_t)add;
		lin = emu_lin(c, &at);
	} else {
		lin = (emu_lin(c, i) + add) & c->lin_mask;
	}
	return bt_mem(c, i, lin, off);
}

static int h_bt_mi(ARGS)
{
	return bt_mem(c, i, emu_lin(c, i), i->imm);
}

/* BSF BSR TZCNT LZCNT POPCNT (op 0..4): dst register r, source b or memory */
static uint64_t bitscan(const struct emu_insn *i, uint64_t src, uint64_t old, uint64_t *f)
{
	switch (i->op) {
	case 0: return emu_bsf(i->osz, src, old, f);
	case 1: return emu_bsr(i->osz, src, old, f);
	case 2: return emu_tzcnt(i->osz, src, f);
	case 3: return emu_lzcnt(i->osz, src, f);
	default: return emu_popcnt(i->osz, src, f);
	}
}

/* BSF/BSR of a zero source leave the WHOLE destination register unchanged, also with a 32-bit
 * operand (no zero-extension of the upper half: AMD APM "BSF"; what the host does, alu.h). */
static int bitscan_wb(struct emu_vcpu *c, const struct emu_insn *i, uint64_t src)
{
	unsigned n = i->osz;
	uint64_t v = bitscan(i, src, emu_rdreg(c, n, i->r), emu_rflagsp(c));
	if (i->op > 1 || (src & emu_size_mask(n)))
		emu_wrreg(c, n, i->r, v);
	return emu_next(c, i);
}

static int h_bitscan_r(ARGS)
{
	return bitscan_wb(c, i, emu_rdreg(c, i->osz, i->b));
}

static int h_bitscan_m(ARGS)
{
	uint64_t s;
	TRY(emu_rd(c, emu_lin(c, i), i->osz, &s));
	return bitscan_wb(c, i, s);
}

/* BMI1 (op 0 ANDN, 1 BEXTR, 2 BLSI, 3 BLSMSK, 4 BLSR). ANDN r = ~v & E; BEXTR r = E, ctl v;
 * BLS* v = f(E). The E operand is b (register) or memory. */
static int bmi1(struct emu_vcpu *c, const struct emu_insn *i, uint64_t e)
{
	unsigned n = i->osz;
	uint64_t f = emu_rflags(c), vv = emu_rdreg(c, n, i->v), res;
	switch (i->op) {
	case 0: res = emu_andn(n, vv, e, &f); break;
	case 1: res = emu_bextr(n, e, vv, &f); break;
	case 2: res = emu_blsi(n, e, &f); break;
	case 3: res = emu_blsmsk(n, e, &f); break;
	default: res = emu_blsr(n, e, &f); break;
	}
	emu_wrreg(c, n, i->op >= 2 ? i->v : i->r, res);
	c->rflags = f;
	return emu_next(c, i);
}

static int h_bmi1_r(ARGS)
{
	return bmi1(c, i, emu_rdreg(c, i->osz, i->b));
}

static int h_bmi1_m(ARGS)
{
	uint64_t e;
	TRY(emu_rd(c, emu_lin(c, i), i->osz, &e));
	return bmi1(c, i, e);
}

static int h_bswap(ARGS)
{
	emu_wrreg(c, i->osz, i->r, emu_bswap(i->osz, emu_rdreg(c, i->osz, i->r)));
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- XADD CMPXCHG CMPXCHG8B/16B */

static int h_xadd_rr(ARGS)
{
	unsigned n = i->osz;
	uint64_t d = emu_rdreg(c, n, i->b), s = emu_rdreg(c, n, i->r);
	uint64_t sum = emu_alu(EMU_ALU_ADD, n, d, s, emu_rflagsp(c));
	emu_wrreg(c, n, i->r, d);
	emu_wrreg(c, n, i->b, sum);
	return emu_next(c, i);
}

static int h_xadd_m(ARGS)
{
	unsigned n = i->osz;
	uint64_t lin = emu_lin(c, i), s = emu_rdreg(c, n, i->r), d;
	if (i->flg & EMU_I_LOCK) {
		struct emu_rmw m = { .op = EMU_RMW_XADD, .size = n, .src = s, .rflags = emu_rflags(c) };
		TRY(emu_locked_rmw(c, i, lin, &m));
		c->rflags = m.rflags;
		d = m.old;
	} else {
		uint64_t f = emu_rflags(c);
		TRY(emu_rd(c, lin, n, &d));
		TRY(emu_wr(c, lin, n, emu_alu(EMU_ALU_ADD, n, d, s, &f)));
		c->rflags = f;
	}
	emu_wrreg(c, n, i->r, d);
	return emu_next(c, i);
}

static int h_cmpxchg_rr(ARGS)
{
	unsigned n = i->osz;
	uint64_t d = emu_rdreg(c, n, i->b), a = emu_rdreg(c, n, EMU_RAX);
	emu_alu(EMU_ALU_CMP, n, a, d, emu_rflagsp(c));
	if (c->rflags & EMU_ZF)
		emu_wrreg(c, n, i->b, emu_rdreg(c, n, i->r));
	else
		emu_wrreg(c, n, EMU_RAX, d);
	return emu_next(c, i);
}

static int h_cmpxchg_m(ARGS)
{
	unsigned n = i->osz;
	uint64_t lin = emu_lin(c, i), a = emu_rdreg(c, n, EMU_RAX), s = emu_rdreg(c, n, i->r), d;
	if (i->flg & EMU_I_LOCK) {
		struct emu_rmw m = { .op = EMU_RMW_CMPXCHG, .size = n, .src = s, .cmp = a, .rflags = emu_rflags(c) };
		TRY(emu_locked_rmw(c, i, lin, &m));
		c->rflags = m.rflags;
		d = m.old;
	} else {
		uint64_t f = emu_rflags(c);
		TRY(emu_rd(c, lin, n, &d));
		emu_alu(EMU_ALU_CMP, n, a, d, &f);
		/* the destination is always written (SDM "CMPXCHG") */
		TRY(emu_wr(c, lin, n, (f & EMU_ZF) ? s : d));
		c->rflags = f;
	}
	if (!(c->rflags & EMU_ZF))
		emu_wrreg(c, n, EMU_RAX, d);
	return emu_next(c, i);
}

/* CMPXCHG8B (osz 4) / CMPXCHG16B (osz 8): EDX:EAX / RDX:RAX against m64 / m128 */
static int h_cmpxchg_dw(ARGS)
{
	unsigned h = i->osz;
	uint64_t lin = emu_lin(c, i);
	uint64_t lo = emu_rdreg(c, h, EMU_RAX), hi = emu_rdreg(c, h, EMU_RDX);
	uint64_t nlo = emu_rdreg(c, h, EMU_RBX), nhi = emu_rdreg(c, h, EMU_RCX);
	uint64_t olo, ohi;
	bool eq;
	if (h == 8 && (lin & 15))
		return emu_raise_err(c, EMU_V_GP, 0);
	if (i->flg & EMU_I_LOCK) {
		struct emu_rmw m = { .op = EMU_RMW_CMPXCHG_DW, .size = 2 * h, .cmp = lo, .cmp_hi = hi,
				     .new_lo = nlo, .new_hi = nhi, .rflags = emu_rflags(c) };
		TRY(emu_locked_rmw(c, i, lin, &m));
		c->rflags = m.rflags;
		olo = m.old;
		ohi = m.old_hi;
		eq = c->rflags & EMU_ZF;
	} else {
		uint64_t buf[2] = { 0, 0 };
		TRY(emu_read_bytes(c, lin, buf, 2 * h, EMU_ACC_R));
		if (h == 4) {
			olo = (uint32_t)buf[0];
			ohi = buf[0] >> 32;
		} else {
			olo = buf[0];
			ohi = buf[1];
		}
		eq = olo == lo && ohi == hi;
		uint64_t w[2];
		if (h == 4) {
			w[0] = eq ? (nlo | (nhi << 32)) : buf[0];
		} else {
			w[0] = eq ? nlo : olo;
			w[1] = eq ? nhi : ohi;
		}
		TRY(emu_write_bytes(c, lin, w, 2 * h, EMU_ACC_W));
		uint64_t f = emu_rflags(c);
		c->rflags = eq ? (f | EMU_ZF) : (f & ~EMU_ZF);
	}
	if (!eq) {
		emu_wrreg(c, h, EMU_RAX, olo);
		emu_wrreg(c, h, EMU_RDX, ohi);
	}
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- selection (insn.def rows) */

/* Group-1 ALU and TEST (op: EMU_ALU_*, ALU_TEST); LOCK forms through alu.c's locked RMW. */
int sel_alu(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	unsigned k = s->row->op, si = SI(i);
	int f = emu_form2(s->zi, s->zo, i);
	if (f < 0)
		return EMU_SEL_BAD;
	if (i->flg & EMU_I_LOCK) {
		i->op = (uint8_t)k;
		i->fn = f == F_MR ? h_lock_mr : h_lock_mi;
		return 0;
	}
	i->fn = alu_t[k][f][si];
	s->flat = alu_f_t[k][f][si];
	return 0;
}

/* INC DEC NEG NOT (op 0..3) */
int sel_unary(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	unsigned k = s->row->op;
	int f = emu_form1(s->zi, &s->zo[0], i);
	if (f < 0)
		return EMU_SEL_BAD;
	if (i->flg & EMU_I_LOCK) {
		i->op = (uint8_t)(EMU_RMW_INC + k);
		i->fn = h_lock_mi;
		return 0;
	}
	i->fn = un_t[k][f][SI(i)];
	return 0;
}

/* MUL IMUL DIV IDIV with one operand; IMUL with two or three */
int sel_muldiv(struct emu_sel *s)
{
	const ZydisDecodedOperand *zo = s->zo;
	struct emu_insn *i = s->i;
	unsigned nvis = s->zi->operand_count_visible, si = SI(i);
	int f;
	if (s->row->op != MD_IMUL || nvis == 1) {
		i->op = s->row->op;
		f = emu_form1(s->zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->fn = f ? h_muldiv_m_t[si] : h_muldiv_r_t[si];
		return 0;
	}
	f = emu_form2(s->zi, zo, i);
	if (nvis == 3) {
		i->imm = zo[2].imm.value.u;
		if (f == F_RR)
			i->fn = h_imul3_rr_t[si];
		else if (f == F_RM)
			i->fn = h_imul3_rm_t[si];
		else
			return EMU_SEL_BAD;
		return 0;
	}
	if (f == F_RR)
		i->fn = h_imul2_rr_t[si];
	else if (f == F_RM)
		i->fn = h_imul2_rm_t[si];
	else
		return EMU_SEL_BAD;
	return 0;
}

/* XADD and CMPXCHG: form2 puts dst in r, src in b; the register handlers want dst b, src r */
static int sel_xadd_like(struct emu_sel *s, emu_fn *rr, emu_fn *m)
{
	struct emu_insn *i = s->i;
	int f = emu_form2(s->zi, s->zo, i);
	if (f == F_RR) {
		uint8_t t = i->r;
		i->r = i->b;
		i->b = t;
		i->fn = rr;
	} else if (f == F_MR) {
		i->fn = m;
	} else {
		return EMU_SEL_BAD;
	}
	return 0;
}

int sel_xadd(struct emu_sel *s)
{
	return sel_xadd_like(s, h_xadd_rr, h_xadd_m);
}

int sel_cmpxchg(struct emu_sel *s)
{
	return sel_xadd_like(s, h_cmpxchg_rr, h_cmpxchg_m);
}

/* CMPXCHG8B (op 4) CMPXCHG16B (op 8): the half size in i->osz */
int sel_cmpxchg_dw(struct emu_sel *s)
{
	if (emu_mem_operand(s->zi, &s->zo[0], s->i))
		return EMU_SEL_BAD;
	s->i->osz = s->row->op;
	s->i->fn = h_cmpxchg_dw;
	return 0;
}

/* BT BTS BTR BTC (op: enum emu_bt_op) */
int sel_bt(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	i->op = s->row->op;
	switch (emu_form2(s->zi, s->zo, i)) {
	case F_RR: { uint8_t t = i->r; i->r = i->b; i->b = t; i->fn = h_bt_rr; return 0; }
	case F_RI: i->b = i->r; i->fn = h_bt_ri; return 0;
	case F_MR: i->fn = h_bt_mr; return 0;
	case F_MI: i->fn = h_bt_mi; return 0;
	default: return EMU_SEL_BAD;
	}
}

/* BSF (op 0) BSR (1) TZCNT (2) LZCNT (3) POPCNT (4) */
int sel_bitscan(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	i->op = s->row->op;
	int f = emu_form2(s->zi, s->zo, i);
	if (f == F_RR)
		i->fn = h_bitscan_r;
	else if (f == F_RM)
		i->fn = h_bitscan_m;
	else
		return EMU_SEL_BAD;
	return 0;
}

/* ANDN (op 0) BEXTR (1) BLSI (2) BLSMSK (3) BLSR (4) */
int sel_bmi1(struct emu_sel *s)
{
	const ZydisDecodedOperand *zo = s->zo, *e;
	struct emu_insn *i = s->i;
	i->op = s->row->op;
	int d = emu_gpr_operand(&zo[0]);
	if (d < 0)
		return EMU_SEL_BAD;
	if (i->op == 0) { /* ANDN r, vvvv, r/m */
		i->r = (uint8_t)d;
		i->v = (uint8_t)emu_gpr_operand(&zo[1]);
		e = &zo[2];
	} else if (i->op == 1) { /* BEXTR r, r/m, vvvv */
		i->r = (uint8_t)d;
		i->v = (uint8_t)emu_gpr_operand(&zo[2]);
		e = &zo[1];
	} else { /* BLS* vvvv, r/m */
		i->v = (uint8_t)d;
		e = &zo[1];
	}
	if (e->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		i->b = (uint8_t)emu_gpr_operand(e);
		i->fn = h_bmi1_r;
	} else if (!emu_mem_operand(s->zi, e, i)) {
		i->fn = h_bmi1_m;
	} else {
		return EMU_SEL_BAD;
	}
	return 0;
}

int sel_bswap(struct emu_sel *s)
{
	int k = emu_gpr_operand(&s->zo[0]);
	if (k < 0)
		return EMU_SEL_BAD;
	s->i->r = (uint8_t)k;
	s->i->fn = h_bswap;
	return 0;
}
