/* SPDX-License-Identifier: MIT */
/*
 * Data movement: MOV, MOVZX/MOVSX/MOVSXD, LEA, XCHG, CMOVcc, SETcc, PUSH/POP, PUSHF/POPF,
 * ENTER/LEAVE, CBW/CWD.., the flag instructions (CLC..CLAC, LAHF/SAHF), MOV to/from a segment register.
 * The rules every handler follows, and where the other families are: exec.h.
 */
#include "emu/exec.h"

/* ---------------------------------------------------------------- MOV */

#define MOV_H(N, F, L)                                                                         \
	HFN h_mov_rr##F##_##N(ARGS)                                                    \
	{                                                                                \
		EMU_WR_##N(c, i->r, EMU_RD_##N(c, i->b));                                \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_mov_rm##F##_##N(ARGS)                                                    \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_rd##N(c, L(c, i), &v));                                    \
		EMU_WR_##N(c, i->r, v);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_mov_mr##F##_##N(ARGS)                                                    \
	{                                                                                \
		TRY(emu_wr##N(c, L(c, i), EMU_RD_##N(c, i->r)));                   \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_mov_ri##F##_##N(ARGS)                                                    \
	{                                                                                \
		EMU_WR_##N(c, i->r, i->imm);                                             \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_mov_mi##F##_##N(ARGS)                                                    \
	{                                                                                \
		TRY(emu_wr##N(c, L(c, i), i->imm));                                \
		return emu_next(c, i);                                                   \
	}
MOV_H(1, , emu_lin) MOV_H(2, , emu_lin) MOV_H(4, , emu_lin) MOV_H(8, , emu_lin)
MOV_H(1, _f, lin_flat) MOV_H(2, _f, lin_flat) MOV_H(4, _f, lin_flat) MOV_H(8, _f, lin_flat)
T4(h_mov_rr); T4(h_mov_rm); T4(h_mov_mr); T4(h_mov_ri); T4(h_mov_mi);
T4(h_mov_rm_f); T4(h_mov_mr_f); T4(h_mov_mi_f);

/* ---------------------------------------------------------------- MOVZX MOVSX MOVSXD */

#define MOVX_H(S, D, F, L)                                                                     \
	HFN h_movzx_r##F##_##S##_##D(ARGS)                                             \
	{                                                                                \
		EMU_WR_##D(c, i->r, EMU_RD_##S(c, i->b));                                \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_movzx_m##F##_##S##_##D(ARGS)                                             \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_rd##S(c, L(c, i), &v));                                    \
		EMU_WR_##D(c, i->r, v);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_movsx_r##F##_##S##_##D(ARGS)                                             \
	{                                                                                \
		EMU_WR_##D(c, i->r, emu_sign_extend(S, EMU_RD_##S(c, i->b)));            \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_movsx_m##F##_##S##_##D(ARGS)                                             \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_rd##S(c, L(c, i), &v));                                    \
		EMU_WR_##D(c, i->r, emu_sign_extend(S, v));                              \
		return emu_next(c, i);                                                   \
	}
#define MOVX_D(S) MOVX_H(S, 2, , emu_lin) MOVX_H(S, 4, , emu_lin) MOVX_H(S, 8, , emu_lin) \
	MOVX_H(S, 2, _f, lin_flat) MOVX_H(S, 4, _f, lin_flat) MOVX_H(S, 8, _f, lin_flat)
MOVX_D(1) MOVX_D(2) MOVX_D(4)
#define MOVX_ROW(K, F, S) { h_##K##_##F##_##S##_2, h_##K##_##F##_##S##_4, h_##K##_##F##_##S##_8 }
/* [sx][mem][src 1,2,4][dst 2,4,8] */
static emu_fn *const movx_t[2][2][3][3] = {
	{ { MOVX_ROW(movzx, r, 1), MOVX_ROW(movzx, r, 2), MOVX_ROW(movzx, r, 4) },
	  { MOVX_ROW(movzx, m, 1), MOVX_ROW(movzx, m, 2), MOVX_ROW(movzx, m, 4) } },
	{ { MOVX_ROW(movsx, r, 1), MOVX_ROW(movsx, r, 2), MOVX_ROW(movsx, r, 4) },
	  { MOVX_ROW(movsx, m, 1), MOVX_ROW(movsx, m, 2), MOVX_ROW(movsx, m, 4) } },
};
static emu_fn *const movx_f_t[2][3][3] = { /* [sx][src][dst], memory forms, lin_flat */
	{ MOVX_ROW(movzx, m_f, 1), MOVX_ROW(movzx, m_f, 2), MOVX_ROW(movzx, m_f, 4) },
	{ MOVX_ROW(movsx, m_f, 1), MOVX_ROW(movsx, m_f, 2), MOVX_ROW(movsx, m_f, 4) },
};

/* ---------------------------------------------------------------- LEA XCHG CMOV SETcc */

#define LEA_H(N)                                                                         \
	static int h_lea_##N(ARGS)                                                       \
	{                                                                                \
		EMU_WR_##N(c, i->r, ea_of(c, i));                                        \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_lea_f_##N(ARGS)                                                     \
	{                                                                                \
		EMU_WR_##N(c, i->r, c->r[i->b] + (c->r[i->x] << i->sc) + (uint64_t)i->disp); \
		return emu_next(c, i);                                                   \
	}
LEA_H(1) LEA_H(2) LEA_H(4) LEA_H(8)
T4(h_lea); T4(h_lea_f);

static int h_xchg_rr(ARGS)
{
	unsigned n = i->osz;
	uint64_t a = emu_rdreg(c, n, i->r), b = emu_rdreg(c, n, i->b);
	emu_wrreg(c, n, i->r, b);
	emu_wrreg(c, n, i->b, a);
	return emu_next(c, i);
}

/* XCHG with memory is locked whether or not it has the prefix (SDM "XCHG"). */
static int h_xchg_m(ARGS)
{
	struct emu_rmw m = { .op = EMU_RMW_XCHG, .size = i->osz, .src = emu_rdreg(c, i->osz, i->r),
			     .rflags = emu_rflags(c) };
	TRY(emu_locked_rmw(c, i, emu_lin(c, i), &m));
	emu_wrreg(c, i->osz, i->r, m.old);
	return emu_next(c, i);
}

#define CMOV_H(N)                                                                        \
	static int h_cmov_rr_##N(ARGS)                                                   \
	{                                                                                \
		uint64_t v = lazy_cond(c, i->op) ? EMU_RD_##N(c, i->b) : EMU_RD_##N(c, i->r); \
		EMU_WR_##N(c, i->r, v);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_cmov_rm_##N(ARGS)                                                   \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &s));                                    \
		EMU_WR_##N(c, i->r, lazy_cond(c, i->op) ? s : EMU_RD_##N(c, i->r));      \
		return emu_next(c, i);                                                   \
	}
CMOV_H(1) CMOV_H(2) CMOV_H(4) CMOV_H(8)
T4(h_cmov_rr); T4(h_cmov_rm);

static int h_setcc_r(ARGS)
{
	EMU_WR_1(c, i->r, lazy_cond(c, i->op));
	return emu_next(c, i);
}

static int h_setcc_m(ARGS)
{
	TRY(emu_wr1(c, emu_lin(c, i), lazy_cond(c, i->op)));
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- PUSH POP */

#define PUSHPOP_H(N)                                                                     \
	static int h_push_r_##N(ARGS)                                                    \
	{                                                                                \
		TRY(emu_push(c, N, EMU_RD_##N(c, i->r)));                                \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_push_i_##N(ARGS)                                                    \
	{                                                                                \
		TRY(emu_push(c, N, i->imm));                                             \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_push_m_##N(ARGS)                                                    \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &v));                                    \
		TRY(emu_push(c, N, v));                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_pop_r_##N(ARGS)                                                     \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_pop(c, N, &v));                                                  \
		EMU_WR_##N(c, i->r, v);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_pop_m_##N(ARGS)                                                     \
	{                                                                                \
		uint64_t v, sp = RSP_;                                                   \
		TRY(emu_pop(c, N, &v));                                                  \
		int st = emu_wr##N(c, emu_lin(c, i), v);                                 \
		if (st) {                                                                \
			RSP_ = sp;                                                       \
			return st;                                                       \
		}                                                                        \
		return emu_next(c, i);                                                   \
	}
PUSHPOP_H(1) PUSHPOP_H(2) PUSHPOP_H(4) PUSHPOP_H(8)
T4(h_push_r); T4(h_push_i); T4(h_push_m); T4(h_pop_r); T4(h_pop_m);

int h_pushf(ARGS)
{
	/* VM and RF are pushed as 0 (SDM "PUSHF") */
	TRY(emu_push(c, i->osz, emu_rflags(c) & ~(EMU_VM | EMU_RF)));
	return emu_next(c, i);
}

/* POPF (SDM "POPF"): at CPL 0 every writable flag; at CPL > 0 IOPL is kept, and IF too when
 * CPL > IOPL. VM/VIF/VIP are never set (no virtual-8086 mode). */
int h_popf(ARGS)
{
	uint64_t v;
	TRY(emu_pop(c, i->osz, &v));
	uint64_t mask = EMU_FLAGS_WRITABLE & ~EMU_RF;
	if (c->cpl > 0)
		mask &= ~EMU_IOPL;
	if (c->cpl > ((c->rflags >> 12) & 3))
		mask &= ~EMU_IF;
	if (i->osz == 2)
		mask &= 0xffff;
	c->rflags = (emu_rflags(c) & ~mask) | (v & mask) | EMU_RF_FIXED;
	emu_ac_written(c);
	c->stop = EMU_ST_END; /* TF may have changed */
	if (c->rflags & EMU_IF)
		emu_irq_if_set(c);
	return emu_next(c, i);
}

static int h_push_sreg(ARGS)
{
	TRY(emu_push(c, i->osz, c->seg[i->op].selector));
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- misc data */

/* CBW/CWDE/CDQE (op 0) and CWD/CDQ/CQO (op 1) */
int h_cext(ARGS)
{
	unsigned n = i->osz;
	if (i->op == 0) {
		emu_wrreg(c, n, EMU_RAX, emu_sign_extend(n / 2, c->r[EMU_RAX]));
	} else {
		uint64_t a = emu_rdreg(c, n, EMU_RAX);
		emu_wrreg(c, n, EMU_RDX, (a & emu_size_sign(n)) ? ~0ull : 0);
	}
	return emu_next(c, i);
}

/* flag instructions: op 0 CLC 1 STC 2 CMC 3 CLD 4 STD 5 CLI 6 STI 7 LAHF 8 SAHF 9 STAC 10 CLAC */
int h_flagop(ARGS)
{
	uint64_t f = emu_rflags(c);
	unsigned iopl = (f >> 12) & 3;
	switch (i->op) {
	case 0: f &= ~EMU_CF; break;
	case 1: f |= EMU_CF; break;
	case 2: f ^= EMU_CF; break;
	case 3: f &= ~EMU_DF; break;
	case 4: f |= EMU_DF; break;
	case 5:
	case 6:
		if (c->cpl > iopl)
			return emu_raise_err(c, EMU_V_GP, 0);
		if (i->op == 6 && !(f & EMU_IF)) {
			/* STI that sets IF: interrupts stay blocked until after the next instruction
			 * (SDM Vol. 3 6.8.3); the block ends so the run loop sees the shadow */
			c->intr_shadow = true;
			c->stop = EMU_ST_END;
			c->rflags = f | EMU_IF;
			emu_irq_if_set(c);
			return emu_next(c, i);
		}
		f = i->op == 5 ? (f & ~EMU_IF) : (f | EMU_IF);
		break;
	case 7:
		EMU_WR_1(c, 1, (f & 0xd5) | 2); /* AH = SF:ZF:0:AF:0:PF:1:CF */
		return emu_next(c, i);
	case 9:
	case 10:
		/* SDM Vol. 2 "STAC", "CLAC": #UD "If the CPL > 0" (and where CPUID.(EAX=07H,ECX=0H):
		 * EBX.SMAP[bit 20] = 0: never, emu_cpuid advertises it); in real mode CPL is 0 */
		if (c->cpl > 0)
			return emu_raise(c, EMU_V_UD);
		c->rflags = i->op == 9 ? (f | EMU_AC) : (f & ~EMU_AC);
		emu_ac_written(c);
		return emu_next(c, i);
	default:
		f = (f & ~0xd5ull) | (((c->r[EMU_RAX] >> 8) & 0xd5)) | 2;
		break;
	}
	c->rflags = f;
	return emu_next(c, i);
}

static int h_enter(ARGS)
{
	unsigned n = i->osz, level = i->v & 31;
	uint64_t sp0 = RSP_, bp = c->r[EMU_RBP];
	int st = emu_push(c, n, bp);
	uint64_t frame = RSP_ & c->sp_mask;
	for (unsigned k = 1; !st && k < level; k++) {
		uint64_t v;
		bp = (bp - n) & c->sp_mask;
		uint64_t lin = emu_seg_lin(c, EMU_SS, bp, n);
		st = emu_rd(c, lin, n, &v);
		if (st)
			st = stack_fault(c, st, lin);
		else
			st = emu_push(c, n, v);
	}
	if (!st && level)
		st = emu_push(c, n, frame);
	if (st) {
		RSP_ = sp0;
		return st;
	}
	emu_wrreg(c, n == 8 ? 8 : n, EMU_RBP, frame);
	RSP_ = (RSP_ & ~c->sp_mask) | ((RSP_ - i->imm) & c->sp_mask);
	return emu_next(c, i);
}

int h_leave(ARGS)
{
	uint64_t sp0 = RSP_, v;
	RSP_ = (RSP_ & ~c->sp_mask) | (c->r[EMU_RBP] & c->sp_mask);
	int st = emu_pop(c, i->osz, &v);
	if (st) {
		RSP_ = sp0;
		return st;
	}
	emu_wrreg(c, i->osz, EMU_RBP, v);
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- MOV from a segment register */

/* (the loads, MOV Sreg and POP Sreg, are system.c's) */

static int h_mov_r_sreg(ARGS)
{
	emu_wrreg(c, i->osz, i->r, c->seg[i->op].selector);
	return emu_next(c, i);
}

static int h_mov_m_sreg(ARGS)
{
	TRY(emu_wr2(c, emu_lin(c, i), c->seg[i->op].selector));
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- selection (insn.def rows) */

/* MOV: GPR forms, and the CRn/DRn/segment-register forms (system.c's handlers begin a block). */
int sel_mov(struct emu_sel *s)
{
	const ZydisDecodedInstruction *zi = s->zi;
	const ZydisDecodedOperand *zo = s->zo;
	struct emu_insn *i = s->i;
	unsigned si = SI(i);
	int k, f;
	ZydisRegisterClass c0 = zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER ? ZydisRegisterGetClass(zo[0].reg.value) : ZYDIS_REGCLASS_INVALID;
	ZydisRegisterClass c1 = zo[1].type == ZYDIS_OPERAND_TYPE_REGISTER ? ZydisRegisterGetClass(zo[1].reg.value) : ZYDIS_REGCLASS_INVALID;
	if (c0 == ZYDIS_REGCLASS_CONTROL || c0 == ZYDIS_REGCLASS_DEBUG) {
		i->op = (uint8_t)ZydisRegisterGetId(zo[0].reg.value);
		k = emu_gpr_operand(&zo[1]);
		if (k < 0)
			return EMU_SEL_BAD;
		i->r = (uint8_t)k;
		i->fn = c0 == ZYDIS_REGCLASS_CONTROL ? emu_h_mov_cr_r : emu_h_mov_dr_r;
		return EMU_SEL_END | SEL_FIRST;
	}
	if (c1 == ZYDIS_REGCLASS_CONTROL || c1 == ZYDIS_REGCLASS_DEBUG) {
		i->op = (uint8_t)ZydisRegisterGetId(zo[1].reg.value);
		k = emu_gpr_operand(&zo[0]);
		if (k < 0)
			return EMU_SEL_BAD;
		i->r = (uint8_t)k;
		i->fn = c1 == ZYDIS_REGCLASS_CONTROL ? emu_h_mov_r_cr : emu_h_mov_r_dr;
		return SEL_FIRST;
	}
	if (c0 == ZYDIS_REGCLASS_SEGMENT) {
		i->op = (uint8_t)(zo[0].reg.value - ZYDIS_REGISTER_ES);
		f = emu_form1(zi, &zo[1], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->fn = f ? emu_h_mov_sreg_m : emu_h_mov_sreg_r;
		i->osz = f ? 2 : i->osz;
		return SEL_FIRST;
	}
	if (c1 == ZYDIS_REGCLASS_SEGMENT) {
		i->op = (uint8_t)(zo[1].reg.value - ZYDIS_REGISTER_ES);
		f = emu_form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->fn = f ? h_mov_m_sreg : h_mov_r_sreg;
		return 0;
	}
	switch (emu_form2(zi, zo, i)) {
	case F_RR: i->fn = h_mov_rr_t[si]; return 0;
	case F_RM: i->fn = h_mov_rm_t[si]; s->flat = h_mov_rm_f_t[si]; return 0;
	case F_MR: i->fn = h_mov_mr_t[si]; s->flat = h_mov_mr_f_t[si]; return 0;
	case F_RI: i->fn = h_mov_ri_t[si]; return 0;
	case F_MI: i->fn = h_mov_mi_t[si]; s->flat = h_mov_mi_f_t[si]; return 0;
	default: return EMU_SEL_BAD;
	}
}

/* MOVZX MOVSX MOVSXD */
int sel_movx(struct emu_sel *s)
{
	const ZydisDecodedOperand *zo = s->zo;
	struct emu_insn *i = s->i;
	unsigned ssz = zo[1].size / 8, dsz = zo[0].size / 8;
	int f = emu_form2(s->zi, zo, i);
	if ((f != F_RR && f != F_RM) || ssz > 4 || dsz < 2)
		return EMU_SEL_BAD;
	if (ssz >= dsz) { /* MOVSXD without REX.W, MOVZX r16, r/m16: a plain move */
		i->fn = f == F_RR ? h_mov_rr_t[sidx(dsz)] : h_mov_rm_t[sidx(dsz)];
		s->flat = f == F_RR ? NULL : h_mov_rm_f_t[sidx(dsz)];
		return 0;
	}
	bool sx = s->zi->mnemonic != ZYDIS_MNEMONIC_MOVZX;
	i->fn = movx_t[sx][f == F_RM][sidx(ssz)][sidx(dsz) - 1];
	s->flat = f == F_RM ? movx_f_t[sx][sidx(ssz)][sidx(dsz) - 1] : NULL;
	return 0;
}

int sel_lea(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	int k;
	if (s->zo[0].type != ZYDIS_OPERAND_TYPE_REGISTER || (k = emu_gpr_operand(&s->zo[0])) < 0 ||
	    emu_mem_operand(s->zi, &s->zo[1], i))
		return EMU_SEL_BAD;
	i->r = (uint8_t)k;
	i->fn = h_lea_t[SI(i)];
	s->flat = h_lea_f_t[SI(i)];
	return 0;
}

int sel_xchg(struct emu_sel *s)
{
	switch (emu_form2(s->zi, s->zo, s->i)) {
	case F_RR: s->i->fn = h_xchg_rr; return 0;
	case F_MR: case F_RM: s->i->fn = h_xchg_m; return 0; /* r is the register, memory the other */
	default: return EMU_SEL_BAD;
	}
}

int sel_push(struct emu_sel *s)
{
	const ZydisDecodedOperand *zo = s->zo;
	struct emu_insn *i = s->i;
	unsigned si = SI(i);
	if (zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
	    ZydisRegisterGetClass(zo[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
		i->op = (uint8_t)(zo[0].reg.value - ZYDIS_REGISTER_ES);
		i->fn = h_push_sreg;
		return 0;
	}
	if (zo[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		i->imm = zo[0].imm.value.u;
		i->fn = h_push_i_t[si];
		return 0;
	}
	int f = emu_form1(s->zi, &zo[0], i);
	if (f < 0)
		return EMU_SEL_BAD;
	i->fn = f ? h_push_m_t[si] : h_push_r_t[si];
	return 0;
}

int sel_pop(struct emu_sel *s)
{
	const ZydisDecodedOperand *zo = s->zo;
	struct emu_insn *i = s->i;
	if (zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
	    ZydisRegisterGetClass(zo[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
		i->op = (uint8_t)(zo[0].reg.value - ZYDIS_REGISTER_ES);
		i->fn = emu_h_pop_sreg;
		return SEL_FIRST;
	}
	int f = emu_form1(s->zi, &zo[0], i);
	if (f < 0)
		return EMU_SEL_BAD;
	i->fn = f ? h_pop_m_t[SI(i)] : h_pop_r_t[SI(i)];
	return 0;
}

int sel_setcc(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	i->op = s->row->op;
	int f = emu_form1(s->zi, &s->zo[0], i);
	if (f < 0)
		return EMU_SEL_BAD;
	i->fn = f ? h_setcc_m : h_setcc_r;
	return 0;
}

int sel_cmov(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	i->op = s->row->op;
	int f = emu_form2(s->zi, s->zo, i);
	if (f == F_RR)
		i->fn = h_cmov_rr_t[SI(i)];
	else if (f == F_RM)
		i->fn = h_cmov_rm_t[SI(i)];
	else
		return EMU_SEL_BAD;
	return 0;
}

int sel_enter(struct emu_sel *s)
{
	s->i->imm = s->zo[0].imm.value.u & 0xffff;
	s->i->v = (uint8_t)s->zo[1].imm.value.u;
	s->i->fn = h_enter;
	return 0;
}
