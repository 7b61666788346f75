/* SPDX-License-Identifier: MIT */
/*
 * The legacy integer instructions 16- and 32-bit code uses (invalid in 64-bit mode, where Zydis does
 * not decode them, unless noted): PUSHA/PUSHAD, POPA/POPAD, the BCD adjustments DAA DAS AAA AAS AAM
 * AAD, SALC, XLAT, BOUND, ARPL, and LDS/LES/LFS/LGS/LSS (LFS/LGS/LSS also in 64-bit mode). Selected
 * by emu_select_legacy() (insn.def's sel_legacy rows); same rules as exec*.c's handlers (inputs first,
 * commit last, emu_next()). Status flags go through emu_rflagsp(), which materialises the lazy flags,
 * so these handlers may sit anywhere in a block.
 *
 * Flags the SDM leaves undefined (DAA/DAS: OF; AAA/AAS: OF SF ZF PF; AAM/AAD: OF AF CF) are those
 * QEMU TCG computes (target/i386/tcg/int_helper.c), so that whole guests compare bit for bit with it
 * (guests/realmode.c hashes every flag): DAA/DAS clear OF; AAA/AAS leave SF ZF PF OF as they were;
 * AAM/AAD clear OF AF CF. Processors differ among themselves there; the host-CPU oracle
 * (tests/unit/emu_legacy_oracle.c) compares the defined flags only.
 */
#include "emu/emu.h"

#define ARGS struct emu_vcpu *c, const struct emu_insn *i
#define TRY(x)                            \
	do {                              \
		int st_ = (x);            \
		if (unlikely(st_))        \
			return st_;       \
	} while (0)

/* ---------------------------------------------------------------- PUSHA POPA */

/* PUSHA/PUSHAD (SDM "PUSHA/PUSHAD"): AX CX DX BX, the SP before the instruction, BP SI DI. A fault
 * on any push leaves SP as it was. */
static int h_pusha(ARGS)
{
	unsigned n = i->osz;
	uint64_t sp0 = c->r[EMU_RSP];
	for (int r = EMU_RAX; r <= EMU_RDI; r++) {
		int st = emu_push(c, n, r == EMU_RSP ? sp0 : c->r[r]);
		if (st) {
			c->r[EMU_RSP] = sp0;
			return st;
		}
	}
	return emu_next(c, i);
}

/* POPA/POPAD: DI SI BP, (the SP slot is skipped), BX DX CX AX; all read before any is written. */
static int h_popa(ARGS)
{
	unsigned n = i->osz;
	uint64_t sp0 = c->r[EMU_RSP], v[8];
	for (int r = EMU_RDI; r >= EMU_RAX; r--) {
		int st = emu_pop(c, n, &v[r]);
		if (st) {
			c->r[EMU_RSP] = sp0;
			return st;
		}
	}
	for (int r = EMU_RAX; r <= EMU_RDI; r++)
		if (r != EMU_RSP)
			emu_wrreg(c, n, (unsigned)r, v[r]);
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- BCD */

enum { B_DAA, B_DAS, B_AAA, B_AAS, B_AAM, B_AAD };

/* The status flags after a BCD adjustment: f holds the new CF AF (and OF); SF ZF PF from AL, or
 * kept (AAA/AAS: keep) as they were. */
static void bcd_flags(struct emu_vcpu *c, uint64_t f, unsigned al, bool keep)
{
	uint64_t *rf = emu_rflagsp(c);
	if (keep)
		*rf = (*rf & ~(EMU_CF | EMU_AF)) | (f & (EMU_CF | EMU_AF));
	else
		*rf = (*rf & ~EMU_STATUS_FLAGS) | (f & EMU_STATUS_FLAGS) | emu_flags_szp(1, al);
}

static int h_bcd(ARGS)
{
	uint64_t fl = emu_rflags(c);
	unsigned al = (unsigned)(c->r[EMU_RAX] & 0xff), ah = (unsigned)(c->r[EMU_RAX] >> 8) & 0xff;
	bool cf = fl & EMU_CF, af = fl & EMU_AF;
	uint64_t f = 0;
	unsigned nal = al, nah = ah;
	switch (i->op) {
	case B_DAA: case B_DAS: {
		/* SDM "DAA" / "DAS" */
		bool sub = i->op == B_DAS;
		unsigned adj = 0;
		bool ncf = false;
		if ((al & 0xf) > 9 || af) {
			adj = 6;
			ncf = cf || (sub ? al < 6 : al > 0xf9);
			f |= EMU_AF;
		}
		if (al > 0x99 || cf) {
			adj += 0x60;
			ncf = true;
		} else if (!sub) {
			ncf = false;
		}
		nal = (sub ? al - adj : al + adj) & 0xff;
		if (ncf)
			f |= EMU_CF;
		break;
	}
	case B_AAA: case B_AAS:
		/* SDM "AAA" / "AAS": AX +/- 106H */
		if ((al & 0xf) > 9 || af) {
			unsigned ax = (ah << 8 | al) + (i->op == B_AAA ? 0x106u : -0x106u);
			nal = ax & 0xf;
			nah = (ax >> 8) & 0xff;
			f |= EMU_AF | EMU_CF;
		} else {
			nal = al & 0xf;
		}
		break;
	case B_AAM:
		if (i->imm == 0)
			return emu_raise(c, EMU_V_DE);
		nah = al / (unsigned)i->imm;
		nal = al % (unsigned)i->imm;
		break;
	default: { /* AAD */
		unsigned p = (ah * (unsigned)i->imm) & 0xff;
		nal = (al + p) & 0xff;
		nah = 0;
		break;
	}
	}
	c->r[EMU_RAX] = (c->r[EMU_RAX] & ~0xffffull) | (nah << 8) | nal;
	bcd_flags(c, f, nal, i->op == B_AAA || i->op == B_AAS);
	return emu_next(c, i);
}

/* SALC (undocumented D6, "set AL from carry"): AL = CF ? FFH : 0; no flags change. */
static int h_salc(ARGS)
{
	EMU_WR_1(c, 0, (emu_rflags(c) & EMU_CF) ? 0xff : 0);
	return emu_next(c, i);
}

/* XLAT: AL = [seg:(E)BX + zero-extended AL], the sum at the address size (i->v). */
static int h_xlat(ARGS)
{
	uint64_t am = i->v == 2 ? 0xffff : i->v == 4 ? 0xffffffffull : ~0ull;
	uint64_t ea = (c->r[EMU_RBX] + (c->r[EMU_RAX] & 0xff)) & am, v;
	TRY(emu_rd1(c, emu_seg_lin(c, i->seg, ea, 1), &v));
	EMU_WR_1(c, 0, v);
	return emu_next(c, i);
}

/* BOUND r, m (SDM "BOUND"): #BR (vector 5, a fault) unless lower <= r <= upper, signed. */
static int h_bound(ARGS)
{
	unsigned n = i->osz;
	uint64_t lin = emu_lin(c, i), lo, hi;
	TRY(emu_rd(c, lin, n, &lo));
	TRY(emu_rd(c, (lin + n) & c->lin_mask, n, &hi));
	int64_t v = (int64_t)emu_sign_extend(n, c->r[i->r]);
	if (v < (int64_t)emu_sign_extend(n, lo) || v > (int64_t)emu_sign_extend(n, hi))
		return emu_raise(c, 5);
	return emu_next(c, i);
}

/* ARPL r/m16, r16 (SDM "ARPL"): protected mode only (#UD in real mode). */
static int arpl(struct emu_vcpu *c, const struct emu_insn *i, uint64_t d, uint64_t *nd)
{
	(void)i;
	if (!(c->cr0 & CR0_PE))
		return emu_raise(c, EMU_V_UD);
	uint64_t s = c->r[i->r] & 3;
	uint64_t *rf = emu_rflagsp(c);
	if ((d & 3) < s) {
		*nd = (d & ~3ull) | s;
		*rf |= EMU_ZF;
	} else {
		*nd = d;
		*rf &= ~EMU_ZF;
	}
	return 0;
}

static int h_arpl_r(ARGS)
{
	uint64_t nd = 0;
	TRY(arpl(c, i, c->r[i->b] & 0xffff, &nd));
	EMU_WR_2(c, i->b, nd);
	return emu_next(c, i);
}

static int h_arpl_m(ARGS)
{
	uint64_t d, nd = 0, lin = emu_lin(c, i);
	TRY(emu_rd2(c, lin, &d));
	uint64_t fl = emu_rflags(c);
	TRY(arpl(c, i, d, &nd));
	if (nd != d) {
		int st = emu_wr2(c, lin, nd);
		if (st) {
			c->rflags = fl;
			return st;
		}
	}
	return emu_next(c, i);
}

/* LDS LES LFS LGS LSS r, m16:16/m16:32/m16:64 (SDM "LDS/LES/LFS/LGS/LSS"): offset, then selector;
 * the segment load (which may fault) before the register is written. Segment in i->op. */
static int h_lseg(ARGS)
{
	unsigned n = i->osz;
	uint64_t lin = emu_lin(c, i), off, sel;
	TRY(emu_rd(c, lin, n, &off));
	TRY(emu_rd2(c, (lin + n) & c->lin_mask, &sel));
	TRY(emu_load_seg(c, i->op, (uint16_t)sel));
	emu_wrreg(c, n, i->r, off);
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- selection */

int emu_select_legacy(struct emu_vcpu *c, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		      struct emu_insn *i)
{
	(void)c;
	int k;
	switch (zi->mnemonic) {
	case ZYDIS_MNEMONIC_PUSHA: case ZYDIS_MNEMONIC_PUSHAD:
		i->fn = h_pusha;
		return 0;
	case ZYDIS_MNEMONIC_POPA: case ZYDIS_MNEMONIC_POPAD:
		i->fn = h_popa;
		return 0;
	case ZYDIS_MNEMONIC_DAA: i->op = B_DAA; i->fn = h_bcd; return 0;
	case ZYDIS_MNEMONIC_DAS: i->op = B_DAS; i->fn = h_bcd; return 0;
	case ZYDIS_MNEMONIC_AAA: i->op = B_AAA; i->fn = h_bcd; return 0;
	case ZYDIS_MNEMONIC_AAS: i->op = B_AAS; i->fn = h_bcd; return 0;
	case ZYDIS_MNEMONIC_AAM: case ZYDIS_MNEMONIC_AAD:
		i->op = zi->mnemonic == ZYDIS_MNEMONIC_AAM ? B_AAM : B_AAD;
		i->imm = zi->operand_count_visible ? zo[0].imm.value.u & 0xff : 10;
		i->fn = h_bcd;
		return 0;
	case ZYDIS_MNEMONIC_SALC:
		i->fn = h_salc;
		return 0;
	case ZYDIS_MNEMONIC_XLAT:
		i->v = (uint8_t)(zi->address_width / 8);
		i->seg = EMU_DS;
		for (unsigned n = 0; n < zi->operand_count; n++)
			if (zo[n].type == ZYDIS_OPERAND_TYPE_MEMORY)
				i->seg = (uint8_t)(zo[n].mem.segment - ZYDIS_REGISTER_ES);
		i->fn = h_xlat;
		return 0;
	case ZYDIS_MNEMONIC_BOUND:
		if ((k = emu_gpr_operand(&zo[0])) < 0 || emu_mem_operand(zi, &zo[1], i))
			return EMU_SEL_BAD;
		i->r = (uint8_t)k;
		i->fn = h_bound;
		return 0;
	case ZYDIS_MNEMONIC_ARPL:
		if ((k = emu_gpr_operand(&zo[1])) < 0)
			return EMU_SEL_BAD;
		i->r = (uint8_t)k;
		if (zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
			if ((k = emu_gpr_operand(&zo[0])) < 0)
				return EMU_SEL_BAD;
			i->b = (uint8_t)k;
			i->fn = h_arpl_r;
		} else if (!emu_mem_operand(zi, &zo[0], i)) {
			i->fn = h_arpl_m;
		} else {
			return EMU_SEL_BAD;
		}
		return 0;
	case ZYDIS_MNEMONIC_LDS: case ZYDIS_MNEMONIC_LES: case ZYDIS_MNEMONIC_LFS: case ZYDIS_MNEMONIC_LGS:
	case ZYDIS_MNEMONIC_LSS:
		if ((k = emu_gpr_operand(&zo[0])) < 0 || emu_mem_operand(zi, &zo[1], i))
			return EMU_SEL_BAD;
		i->r = (uint8_t)k;
		i->op = zi->mnemonic == ZYDIS_MNEMONIC_LDS ? EMU_DS : zi->mnemonic == ZYDIS_MNEMONIC_LES ? EMU_ES :
			zi->mnemonic == ZYDIS_MNEMONIC_LFS ? EMU_FS : zi->mnemonic == ZYDIS_MNEMONIC_LGS ? EMU_GS :
			EMU_SS;
		i->fn = h_lseg;
		return 0;
	default:
		return EMU_SEL_BAD;
	}
}
