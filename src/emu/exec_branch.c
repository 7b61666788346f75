/* SPDX-License-Identifier: MIT */
/*
 * Near branches: JMP, CALL, RET, Jcc, LOOP/LOOPE/LOOPNE, JCXZ/JECXZ/JRCXZ (far ones: system.c).
 * The rules every handler follows, and where the other families are: exec.h.
 */
#include "emu/exec.h"

/* ---------------------------------------------------------------- branches */

/*
 * A taken branch: RIP = t and the block ends (c->last_i: see emu_next()). Block chaining: when
 * nothing asks for the run loop (c->stop: single-step, SMC, an exit...) and the jump cache has a
 * valid block at t (see emu_block_next(); not one that needs exact flags), its retired instructions
 * are counted and the next block runs right away, as a tail call. c->chain_left bounds the chain so
 * that the run loop still looks at kicks and other vCPUs' code writes often, and bounds the stack
 * where a handler could not make its dispatch a tail call. The translator emits this same rule as
 * host code for the relative branches of 64-bit blocks (xlate.c emit_taken()): change both.
 */
static inline int branch_to(struct emu_vcpu *c, const struct emu_insn *i, uint64_t t)
{
	c->rip = t;
	c->last_i = i;
	if (likely(!c->stop) && likely(c->chain_left > 0)) {
		uint64_t lin = emu_code_lin(c, t);
		const struct emu_jc *j = &c->jc[emu_jc_index(lin)];
		struct emu_block *b = j->b;
		if (likely(j->lin == lin && j->xep == c->xep && j->chain_mode == c->mode)) {
			c->chain_left--;
			__atomic_store_n(&c->icount, c->icount + i->idx + 1u, __ATOMIC_RELAXED);
			c->cur_b = b;
			c->cur_blin = lin;
			c->last_i = b->insn;
			return b->entry(c, b->insn);
		}
	}
	return EMU_ST_END;
}

/* Outside 64-bit mode a near branch's target must lie within CS's limit (SDM "JMP", "Jcc",
 * "CALL", "RET", "LOOP": "IF tempEIP is not within code segment limit THEN #GP(0)", before EIP,
 * ESP or ECX change): c->seg_check says whether CS has one to check (emu_seg_lin). */
static inline int cs_limit(struct emu_vcpu *c, uint64_t t)
{
	if (unlikely(c->seg_check & (1u << EMU_CS)) && t > c->seg[EMU_CS].limit)
		return emu_raise_err(c, EMU_V_GP, 0);
	return 0;
}

/* The target of a near branch, checked before anything is committed: canonical in 64-bit mode;
 * else EIP, or IP with a 16-bit operand size (SDM "JMP": "IF OperandSize = 16 THEN EIP <- tempEIP
 * AND 0000FFFFH"), within CS's limit. Once branch_to() runs, the status it returns may come from chained blocks
 * (an MMIO or I/O exit, a fault further on): a handler must not undo its own effects on it. */
static inline int branch_target(struct emu_vcpu *c, const struct emu_insn *i, uint64_t *t)
{
	if (c->mode64) {
		if (unlikely(!emu_canonical(c, *t)))
			return emu_raise_err(c, EMU_V_GP, 0);
	} else {
		*t = i->osz == 2 ? (uint16_t)*t : (uint32_t)*t;
		return cs_limit(c, *t);
	}
	return 0;
}

static inline int branch(struct emu_vcpu *c, const struct emu_insn *i, uint64_t t)
{
	TRY(branch_target(c, i, &t));
	return branch_to(c, i, t);
}

static int h_jmp_rel(ARGS)
{
	return branch_to(c, i, (c->rip + i->len + i->imm) & c->lin_mask);
}

/* Relative branches outside 64-bit mode: the target wraps at the operand size (IP at 64 KiB with
 * a 16-bit one: 16-bit code, or 66 in 32-bit code; EIP at 4 GiB) and is checked against CS's
 * limit (cs_limit). Separate handlers, chosen at decode time (sel_jmp_call, sel_jcc: c->mode), so
 * that the 64-bit ones stay as they are. */
static inline uint64_t rel_target_seg(const struct emu_vcpu *c, const struct emu_insn *i)
{
	uint64_t t = c->rip + i->len + i->imm;
	return i->osz == 2 ? (uint16_t)t : (uint32_t)t;
}

static int h_jmp_rel_seg(ARGS)
{
	uint64_t t = rel_target_seg(c, i);
	TRY(cs_limit(c, t));
	return branch_to(c, i, t);
}

#define JCC_SEG_H(CC)                                                                    \
	static int h_jcc_seg_##CC(ARGS)                                                  \
	{                                                                                \
		if (lazy_cond(c, CC)) {                                                  \
			uint64_t t = rel_target_seg(c, i);                               \
			TRY(cs_limit(c, t));                                             \
			return branch_to(c, i, t);                                       \
		}                                                                        \
		return emu_next(c, i);                                                   \
	}
JCC_SEG_H(0) JCC_SEG_H(1) JCC_SEG_H(2) JCC_SEG_H(3) JCC_SEG_H(4) JCC_SEG_H(5) JCC_SEG_H(6) JCC_SEG_H(7)
JCC_SEG_H(8) JCC_SEG_H(9) JCC_SEG_H(10) JCC_SEG_H(11) JCC_SEG_H(12) JCC_SEG_H(13) JCC_SEG_H(14) JCC_SEG_H(15)
static emu_fn *const jcc_seg_t[16] = { h_jcc_seg_0, h_jcc_seg_1, h_jcc_seg_2, h_jcc_seg_3, h_jcc_seg_4,
				       h_jcc_seg_5, h_jcc_seg_6, h_jcc_seg_7, h_jcc_seg_8, h_jcc_seg_9,
				       h_jcc_seg_10, h_jcc_seg_11, h_jcc_seg_12, h_jcc_seg_13, h_jcc_seg_14,
				       h_jcc_seg_15 };

/* Jcc does not end its block: not taken, execution goes on with the next decoded instruction
 * (a block is a run of fall-through paths, left at the first taken branch). */
#define JCC_H(CC)                                                                        \
	static int h_jcc_##CC(ARGS)                                                      \
	{                                                                                \
		if (lazy_cond(c, CC))                                                    \
			return branch_to(c, i, (c->rip + i->len + i->imm) & c->lin_mask); \
		return emu_next(c, i);                                                   \
	}
JCC_H(0) JCC_H(1) JCC_H(2) JCC_H(3) JCC_H(4) JCC_H(5) JCC_H(6) JCC_H(7)
JCC_H(8) JCC_H(9) JCC_H(10) JCC_H(11) JCC_H(12) JCC_H(13) JCC_H(14) JCC_H(15)
static emu_fn *const jcc_t[16] = { h_jcc_0, h_jcc_1, h_jcc_2, h_jcc_3, h_jcc_4, h_jcc_5, h_jcc_6,
				   h_jcc_7, h_jcc_8, h_jcc_9, h_jcc_10, h_jcc_11, h_jcc_12, h_jcc_13,
				   h_jcc_14, h_jcc_15 };

/* LOOP/LOOPE/LOOPNE (op 0/1/2) and JCXZ/JECXZ/JRCXZ (op 3); counter size in i->v */
static int h_loop(ARGS)
{
	uint64_t m = amask_of(i->v), cnt = c->r[EMU_RCX] & m;
	bool take;
	if (i->op == 3) {
		take = cnt == 0;
	} else {
		cnt = (cnt - 1) & m;
		take = cnt != 0;
		if (i->op == 1)
			take = take && (emu_rflags(c) & EMU_ZF);
		else if (i->op == 2)
			take = take && !(emu_rflags(c) & EMU_ZF);
	}
	uint64_t t = c->mode64 ? c->rip + i->len + i->imm : rel_target_seg(c, i);
	if (take && !c->mode64)
		TRY(cs_limit(c, t)); /* before ECX changes */
	if (i->op != 3)
		set_areg(c, EMU_RCX, i->v, cnt);
	if (take)
		return branch_to(c, i, t);
	return emu_next(c, i); /* not taken: the block goes on */
}

static int h_call_rel(ARGS)
{
	uint64_t ret = c->rip + i->len;
	TRY(emu_push(c, i->osz, ret));
	return branch_to(c, i, (ret + i->imm) & c->lin_mask);
}

static int h_call_rel_seg(ARGS)
{
	uint64_t t = rel_target_seg(c, i);
	TRY(cs_limit(c, t)); /* before the push */
	TRY(emu_push(c, i->osz, c->rip + i->len));
	return branch_to(c, i, t);
}

static int h_call_r(ARGS)
{
	uint64_t t = emu_rdreg(c, i->osz, i->r);
	TRY(branch_target(c, i, &t));
	TRY(emu_push(c, i->osz, c->rip + i->len));
	return branch_to(c, i, t);
}

static int h_call_m(ARGS)
{
	uint64_t t;
	TRY(emu_rd(c, emu_lin(c, i), i->osz, &t));
	TRY(branch_target(c, i, &t));
	TRY(emu_push(c, i->osz, c->rip + i->len));
	return branch_to(c, i, t);
}

static int h_jmp_r(ARGS)
{
	return branch(c, i, emu_rdreg(c, i->osz, i->r));
}

static int h_jmp_m(ARGS)
{
	uint64_t t;
	TRY(emu_rd(c, emu_lin(c, i), i->osz, &t));
	return branch(c, i, t);
}

static int h_ret(ARGS)
{
	uint64_t t, sp = RSP_;
	TRY(emu_pop(c, i->osz, &t));
	int st = branch_target(c, i, &t);
	if (st) {
		RSP_ = sp;
		return st;
	}
	RSP_ = (RSP_ & ~c->sp_mask) | ((RSP_ + i->imm) & c->sp_mask);
	return branch_to(c, i, t);
}

static int h_ret_8(ARGS) /* the common near RET in 64-bit mode */
{
	uint64_t t;
	TRY(emu_rd8(c, c->r[EMU_RSP], &t));
	if (unlikely(!emu_canonical(c, t)))
		return emu_raise_err(c, EMU_V_GP, 0);
	c->r[EMU_RSP] += 8;
	return branch_to(c, i, t);
}

/* ---------------------------------------------------------------- selection (insn.def rows) */

/* Relative branches outside 64-bit mode take the _seg handlers (the target wraps at the operand
 * size, CS's limit); in 64-bit mode 66 does not shrink near branches on Intel, the engine keeps RIP
 * 64-bit there. */
static bool seg_branch(const struct emu_vcpu *c)
{
	return c->mode != EMU_MODE_64;
}

/* JMP (op 0) CALL (op 1): near relative, near indirect, far (system.c's handlers) */
int sel_jmp_call(struct emu_sel *s)
{
	const ZydisDecodedOperand *zo = s->zo;
	struct emu_insn *i = s->i;
	bool jmp = s->row->op == 0;
	if (s->zi->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
		if (zo[0].type == ZYDIS_OPERAND_TYPE_POINTER) {
			i->imm = zo[0].ptr.offset;
			i->v = 0;
			i->disp = zo[0].ptr.segment;
			i->fn = jmp ? emu_h_ljmp_ptr : emu_h_lcall_ptr;
			return SEL_FIRST;
		}
		if (emu_mem_operand(s->zi, &zo[0], i))
			return EMU_SEL_BAD;
		i->fn = jmp ? emu_h_ljmp_m : emu_h_lcall_m;
		return SEL_FIRST;
	}
	if (zo[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		i->imm = zo[0].imm.value.u;
		if (seg_branch(s->c))
			i->fn = jmp ? h_jmp_rel_seg : h_call_rel_seg;
		else
			i->fn = jmp ? h_jmp_rel : h_call_rel;
		return 0;
	}
	int f = emu_form1(s->zi, &zo[0], i);
	if (f < 0)
		return EMU_SEL_BAD;
	i->fn = jmp ? (f ? h_jmp_m : h_jmp_r) : (f ? h_call_m : h_call_r);
	return 0;
}

int sel_ret(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	i->imm = s->zi->operand_count_visible ? s->zo[0].imm.value.u : 0;
	if (s->zi->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
		i->fn = emu_h_lret;
		return SEL_FIRST;
	}
	i->fn = (i->osz == 8 && !i->imm) ? h_ret_8 : h_ret;
	return 0;
}

/* LOOP (op 0) LOOPE (1) LOOPNE (2) JCXZ/JECXZ/JRCXZ (3): the counter's width is the address size */
int sel_loop(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	i->op = s->row->op;
	i->v = (uint8_t)(s->zi->address_width / 8);
	i->imm = s->zo[0].imm.value.u;
	i->fn = h_loop;
	return 0;
}

/* Jcc (op: the condition code, SDM Vol. 1 Table B-1 order): not taken, the block goes on */
int sel_jcc(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	if (s->zi->meta.category != ZYDIS_CATEGORY_COND_BR)
		return EMU_SEL_BAD;
	i->imm = s->zo[0].imm.value.u;
	i->op = s->row->op;
	i->fn = seg_branch(s->c) ? jcc_seg_t[i->op] : jcc_t[i->op];
	return 0;
}
