/* SPDX-License-Identifier: MIT */
/*
 * String instructions: MOVS STOS LODS CMPS SCAS, with REP/REPE/REPNE.
 * The rules every handler follows, and where the other families are: exec.h.
 */
#include "emu/exec.h"

/* ---------------------------------------------------------------- string instructions */

/*
 * MOVS STOS LODS CMPS SCAS at each size, with REP/REPE/REPNE (SDM Vol. 2 "REP/REPE/REPZ/REPNE/REPNZ").
 * Interruptible: after each iteration RSI/RDI/RCX are committed, so a fault, an MMIO exit or a kick in
 * the middle leaves them consistent with RIP still at the instruction, which resumes where it stopped.
 * The address size (counter and index width) is in i->v.
 */


/* Copies/fills k elements host-side, element by element in increasing address order, each load and
 * store ONE host access of the element's size (EMU_GLD/EMU_GST, emu.h): x86-TSO as one at a time. */
#define REP_FILL(T, D, S, K, V)                                                          \
	do {                                                                             \
		uint8_t *d_ = (D);                                                       \
		const uint8_t *s_ = (S);                                                 \
		for (uint64_t j_ = 0; j_ < (K); j_++)                                     \
			EMU_GST(T, d_ + j_ * sizeof(T),                                  \
				s_ ? EMU_GLD(T, s_ + j_ * sizeof(T)) : (T)(V));          \
	} while (0)

/*
 * REP MOVS / REP STOS, forward (DF = 0): the elements that lie in one 4 KiB page on each side whose
 * translation is in the TLB with the needed permission, done without translating each element. The
 * TLB holds only RAM (never MMIO) and never grants writing to a page with decoded code, so MMIO, SMC
 * detection and page faults all stay with the one-element path, which the caller takes when this
 * returns 0 (and which refills the TLB). Stops before an element would cross a page or wrap the
 * address size.
 */
static inline uint64_t rep_fast(struct emu_vcpu *c, const unsigned n, const int kind, uint64_t cnt,
				uint64_t slin, uint64_t dlin, uint64_t si, uint64_t di, uint64_t am)
{
	const struct emu_tlb_entry *ed = emu_tlbe(c, dlin);
	if (ed->tag_w != (dlin & ~0xfffull))
		return 0;
	uint64_t k = (0x1000 - (dlin & 0xfff)) / n;
	const uint8_t *src = NULL;
	if (kind == S_MOVS) {
		const struct emu_tlb_entry *es = emu_tlbe(c, slin);
		if (es->tag_r != (slin & ~0xfffull))
			return 0;
		uint64_t ks = (0x1000 - (slin & 0xfff)) / n;
		k = ks < k ? ks : k;
		src = (const uint8_t *)(uintptr_t)(slin + (uint64_t)es->addend);
		if (am != ~0ull && (am - si) / n < k)
			k = (am - si) / n;
	}
	if (am != ~0ull && (am - di) / n < k)
		k = (am - di) / n;
	k = cnt < k ? cnt : k;
	uint8_t *dst = (uint8_t *)(uintptr_t)(dlin + (uint64_t)ed->addend);
	uint64_t v = c->r[EMU_RAX];
	switch (n) {
	case 1: REP_FILL(uint8_t, dst, src, k, v); break;
	case 2: REP_FILL(uint16_t, dst, src, k, v); break;
	case 4: REP_FILL(uint32_t, dst, src, k, v); break;
	default: REP_FILL(uint64_t, dst, src, k, v); break;
	}
	return k;
}

static inline int string_op(struct emu_vcpu *c, const struct emu_insn *i, const unsigned n, const int kind)
{
	const unsigned asz = i->v;
	const uint64_t am = amask_of(asz);
	const uint64_t step = (c->rflags & EMU_DF) ? (uint64_t)-(int64_t)n : n;
	const bool rep = i->flg & (EMU_I_REP | EMU_I_REPNE);
	uint64_t cnt = rep ? (c->r[EMU_RCX] & am) : 1;
	unsigned iter = 0;
	while (cnt) {
		uint64_t si = c->r[EMU_RSI] & am, di = c->r[EMU_RDI] & am, a = 0, b = 0;
		uint64_t slin = emu_seg_lin(c, i->seg, si, n), dlin = emu_seg_lin(c, EMU_ES, di, n);
		/* the fast path knows no limit: with a checked segment, element by element */
		if ((kind == S_MOVS || kind == S_STOS) && rep && step == n && cnt > 1 &&
		    !(c->seg_check & ((1u << EMU_ES) | (1u << i->seg)))) {
			uint64_t k = rep_fast(c, n, kind, cnt, slin, dlin, si, di, am);
			if (k) {
				if (kind == S_MOVS)
					set_areg(c, EMU_RSI, asz, si + k * n);
				set_areg(c, EMU_RDI, asz, di + k * n);
				cnt -= k;
				set_areg(c, EMU_RCX, asz, cnt);
				if (cnt && unlikely(c->exit_pending || c->stop))
					return c->exit_pending ? EMU_ST_EXIT : (c->stop = 0, EMU_ST_EXIT);
				iter += (unsigned)k;
				if (unlikely(iter >= EMU_REP_KICK_CHECK)) {
					iter = 0;
					if (cnt && rep_interrupt(c))
						return EMU_ST_EXIT;
				}
				continue;
			}
		}
		switch (kind) {
		case S_MOVS:
			TRY(emu_rd(c, slin, n, &a));
			TRY(emu_wr(c, dlin, n, a));
			set_areg(c, EMU_RSI, asz, si + step);
			set_areg(c, EMU_RDI, asz, di + step);
			break;
		case S_STOS:
			TRY(emu_wr(c, dlin, n, c->r[EMU_RAX]));
			set_areg(c, EMU_RDI, asz, di + step);
			break;
		case S_LODS:
			TRY(emu_rd(c, slin, n, &a));
			emu_wrreg(c, n, EMU_RAX, a);
			set_areg(c, EMU_RSI, asz, si + step);
			break;
		case S_CMPS:
			TRY(emu_rd(c, slin, n, &a));
			TRY(emu_rd(c, dlin, n, &b));
			alu_rec(c, EMU_ALU_CMP, n, a, b, a - b);
			set_areg(c, EMU_RSI, asz, si + step);
			set_areg(c, EMU_RDI, asz, di + step);
			break;
		default:
			TRY(emu_rd(c, dlin, n, &b));
			a = c->r[EMU_RAX];
			alu_rec(c, EMU_ALU_CMP, n, a, b, a - b);
			set_areg(c, EMU_RDI, asz, di + step);
			break;
		}
		if (!rep)
			break;
		cnt--;
		set_areg(c, EMU_RCX, asz, cnt);
		if (kind == S_CMPS || kind == S_SCAS) {
			bool zf = !((a - b) & emu_size_mask(n));
			if ((i->flg & EMU_I_REPNE) ? zf : !zf)
				break;
		}
		if (cnt && unlikely(c->exit_pending || c->stop))
			return c->exit_pending ? EMU_ST_EXIT : (c->stop = 0, EMU_ST_EXIT);
		if (unlikely(++iter == EMU_REP_KICK_CHECK)) {
			iter = 0;
			if (cnt && rep_interrupt(c))
				return EMU_ST_EXIT;
		}
	}
	return emu_next(c, i);
}

#define STR_H(N)                                                                          \
	static int h_movs_##N(ARGS) { return string_op(c, i, N, S_MOVS); }                \
	static int h_stos_##N(ARGS) { return string_op(c, i, N, S_STOS); }                \
	static int h_lods_##N(ARGS) { return string_op(c, i, N, S_LODS); }                \
	static int h_cmps_##N(ARGS) { return string_op(c, i, N, S_CMPS); }                \
	static int h_scas_##N(ARGS) { return string_op(c, i, N, S_SCAS); }
STR_H(1) STR_H(2) STR_H(4) STR_H(8)
T4(h_movs); T4(h_stos); T4(h_lods); T4(h_cmps); T4(h_scas);

/* ---------------------------------------------------------------- selection (insn.def rows) */

/* MOVS STOS LODS CMPS SCAS (op: S_*); the SSE MOVSD/CMPSD share the mnemonic: fpu.c */
int sel_string(struct emu_sel *s)
{
	static emu_fn *const *const kinds[] = { [S_MOVS] = h_movs_t, [S_STOS] = h_stos_t, [S_LODS] = h_lods_t,
						[S_CMPS] = h_cmps_t, [S_SCAS] = h_scas_t };
	struct emu_insn *i = s->i;
	if (s->zi->meta.category != ZYDIS_CATEGORY_STRINGOP)
		return EMU_SEL_BAD;
	i->v = (uint8_t)(s->zi->address_width / 8); /* SI/DI/CX with a 16-bit address size */
	i->seg = emu_src_seg(s->zi, s->zo);
	i->fn = kinds[s->row->op][SI(i)];
	return 0;
}
