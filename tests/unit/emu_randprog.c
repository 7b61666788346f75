/* SPDX-License-Identifier: MIT */
/*
 * emu_randprog: random straight-line and looping programs, run natively and in the emu engine
 * (emu_oracle_run.h), final state compared: all GPRs but RSP, the status flags and DF, the 512-byte
 * scratch window.
 *
 * A program is 10..60 instructions over a safe subset: ALU (all forms, register/memory/immediate),
 * INC/DEC/NEG/NOT, shifts/rotates by 1/imm/CL, SHLD/SHRD, MUL/IMUL (all forms), BT* (register forms and
 * memory with an immediate), BSF/BSR/TZCNT/LZCNT/POPCNT, BMI1, BSWAP, CMOVcc/SETcc, MOVZX/MOVSX/MOVSXD,
 * LEA, MOV, XCHG/XADD/CMPXCHG, CBW..CQO, balanced PUSH/POP, REP MOVS/STOS in the window, forward Jcc over
 * a few instructions and counted loops (backward JNZ), and SSE mixed in (issue 11): XMM0-7 are loaded
 * from the window first, then MOVQ/MOVD/PINSRQ/PEXTRQ/PMOVMSKB between GPRs and XMM registers, MOVDQU
 * to and from the window, integer SIMD (PADDQ PSUBB PXOR PCMPEQB PMINUB PSHUFB PSHUFD PUNPCKLBW),
 * PTEST/COMISD/UCOMISD writing the flags, CRC32; their results reach the compared GPRs, flags, memory. R15 holds the window's address (never written nor
 * used as a value), R14 is the loop counter, RSP only moves through PUSH/POP.
 *
 * Flags the SDM leaves undefined: the generator tracks which status flags may be undefined at each point
 * (per instruction class and known count; conservatively for CL counts, joins and loop heads); before an
 * instruction that reads a possibly undefined flag (Jcc, SETcc, CMOVcc, ADC, SBB, RCL, RCR) it inserts a
 * CMP that defines them all, and the final comparison masks what may still be undefined. So the test is
 * exact on any host, not just the AMD one emu imitates.
 *
 * The two back ends of the emu engine (the interpreter and the binary translator, issue 16) also run
 * every batch against each other: the one BLVM_TRANSLATE selects and the other one (the translator
 * with --translate=all semantics: every block translated at its first run). Their final states
 * must be identical, undefined flags included (the translator re-emits forms with undefined flags
 * only where the host's values are the interpreter's), and so must their retired-instruction counts.
 *
 * Environment: EMU_RANDPROG_SEED=n, EMU_RANDPROG_COUNT=n programs (default 10000, each on 2 initial states).
 * On mismatch: the seed, program index, the program disassembled, both states, and the shortest failing
 * prefix (cut at top-level instruction boundaries); exit 1.
 */
#include "emu_oracle_run.h"

#include <Zydis/Encoder.h>

#define ALLF EMU_STATUS_FLAGS
#define BASE R15
#define CNT R14

struct prog {
	uint8_t b[4096];
	unsigned len;
	unsigned ninsn;
	uint64_t U;  /* status flags possibly undefined here */
	int depth;   /* pushes outstanding */
	int floor;   /* pops allowed above this depth only (bodies of skips and loops stay balanced) */
	unsigned nb; /* top-level boundaries: a prefix ending there is a complete program */
	unsigned bound[256];
	uint64_t ubound[256];
};

static const int pool[] = { RAX, RCX, RDX, RBX, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13 };
#define NPOOL (sizeof pool / sizeof pool[0])
static int rreg(void) { return pool[rndn(NPOOL)]; }
static int sreg(void) { return rndn(14) == 13 ? CNT : rreg(); } /* a source may be the loop counter */

static ZydisEncoderOperand opr(unsigned s, int r)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof o);
	o.type = ZYDIS_OPERAND_TYPE_REGISTER;
	o.reg.value = zreg(s, r, 0);
	return o;
}
static ZydisEncoderOperand opm(unsigned s)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof o);
	o.type = ZYDIS_OPERAND_TYPE_MEMORY;
	o.mem.base = ZYDIS_REGISTER_R15;
	o.mem.displacement = (int)rndn(480) - 240;
	o.mem.size = (ZyanU16)s;
	return o;
}
static ZydisEncoderOperand opx(int k)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof o);
	o.type = ZYDIS_OPERAND_TYPE_REGISTER;
	o.reg.value = (ZydisRegister)(ZYDIS_REGISTER_XMM0 + k);
	return o;
}
static ZydisEncoderOperand opi(int64_t v)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof o);
	o.type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
	o.imm.s = v;
	return o;
}

static int enc(struct prog *p, ZydisMnemonic mn, unsigned n, const ZydisEncoderOperand *ops)
{
	ZydisEncoderRequest req;
	memset(&req, 0, sizeof req);
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.mnemonic = mn;
	req.operand_count = (ZyanU8)n;
	memcpy(req.operands, ops, n * sizeof *ops);
	ZyanUSize len = sizeof p->b - p->len;
	if (len < 32 || !ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, p->b + p->len, &len)))
		return 0;
	p->len += (unsigned)len;
	p->ninsn++;
	return 1;
}
#define ENC(p, mn, ...) enc(p, mn, sizeof((ZydisEncoderOperand[]){ __VA_ARGS__ }) / sizeof(ZydisEncoderOperand), \
			    (ZydisEncoderOperand[]){ __VA_ARGS__ })

static void raw(struct prog *p, const uint8_t *b, unsigned n)
{
	memcpy(p->b + p->len, b, n);
	p->len += n;
	p->ninsn++;
}

/* flags read by condition cc */
static uint64_t cc_reads(unsigned cc)
{
	static const uint64_t r[8] = { EMU_OF, EMU_CF, EMU_ZF, EMU_CF | EMU_ZF, EMU_SF, EMU_PF, EMU_SF | EMU_OF,
				       EMU_SF | EMU_OF | EMU_ZF };
	return r[(cc >> 1) & 7];
}

/* Before reading flags R: define them if they may be undefined (cmp r, r': all six defined). */
static void need(struct prog *p, uint64_t R)
{
	if (R & p->U) {
		unsigned s = 1u << rndn(4);
		ENC(p, ZYDIS_MNEMONIC_CMP, opr(s, sreg()), opr(s, sreg()));
		p->U = 0;
	}
}
static void wrote(struct prog *p, uint64_t W, uint64_t X) { p->U = (p->U & ~W) | X; }

static const ZydisMnemonic alu_mn[] = { ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR,  ZYDIS_MNEMONIC_ADC,
					ZYDIS_MNEMONIC_SBB, ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB,
					ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP, ZYDIS_MNEMONIC_TEST };
static const ZydisMnemonic cmov_mn[16] = {
	ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVNB,
	ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
	ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
	ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE };
static const ZydisMnemonic set_mn[16] = {
	ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
	ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
	ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
	ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE };
static const ZydisMnemonic sh_mn[7] = { ZYDIS_MNEMONIC_ROL, ZYDIS_MNEMONIC_ROR, ZYDIS_MNEMONIC_RCL, ZYDIS_MNEMONIC_RCR,
					ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR, ZYDIS_MNEMONIC_SAR };

static int64_t rimm(unsigned s)
{
	switch (rndn(4)) {
	case 0: return (int8_t)rnd();
	case 1: return (int64_t)rndn(3) - 1;
	default: return s == 1 ? (int8_t)rnd() : s == 2 ? (int16_t)rnd() : (int32_t)rnd();
	}
}

/* One random instruction (sometimes two: PUSH/POP pairs are generated separately). */
static void one(struct prog *p)
{
	unsigned s = 1u << rndn(4), s3 = 2u << rndn(3), s2 = 4u << rndn(2);
	int d = rreg(), r = sreg();
	ZydisEncoderOperand dst = rndn(4) == 0 ? opm(s) : opr(s, d);
	int dmem = dst.type == ZYDIS_OPERAND_TYPE_MEMORY;
	switch (rndn(33)) {
	case 30: case 31: case 32: { /* SSE */
		int x = (int)rndn(8), y = (int)rndn(8);
		static const ZydisMnemonic simd[] = { ZYDIS_MNEMONIC_PADDQ, ZYDIS_MNEMONIC_PSUBB, ZYDIS_MNEMONIC_PXOR,
						      ZYDIS_MNEMONIC_PCMPEQB, ZYDIS_MNEMONIC_PMINUB, ZYDIS_MNEMONIC_PSHUFB,
						      ZYDIS_MNEMONIC_PUNPCKLBW };
		switch (rndn(11)) {
		case 0: ENC(p, rndn(2) ? ZYDIS_MNEMONIC_MOVQ : ZYDIS_MNEMONIC_MOVD, opx(x), opr(rndn(2) ? 8 : 4, r)); break;
		case 1: ENC(p, ZYDIS_MNEMONIC_MOVQ, opr(8, d), opx(x)); break;
		case 2: ENC(p, ZYDIS_MNEMONIC_MOVDQU, opx(x), opm(16)); break;
		case 3: ENC(p, ZYDIS_MNEMONIC_MOVDQU, opm(16), opx(x)); break;
		case 4: ENC(p, simd[rndn(sizeof simd / sizeof simd[0])], opx(x), opx(y)); break;
		case 5: ENC(p, ZYDIS_MNEMONIC_PMOVMSKB, opr(4, d), opx(x)); break;
		case 6:
			if (ENC(p, ZYDIS_MNEMONIC_PTEST, opx(x), opx(y)))
				wrote(p, ALLF, 0);
			break;
		case 7:
			if (ENC(p, rndn(2) ? ZYDIS_MNEMONIC_COMISD : ZYDIS_MNEMONIC_UCOMISD, opx(x), opx(y)))
				wrote(p, ALLF, 0);
			break;
		case 8: ENC(p, ZYDIS_MNEMONIC_CRC32, opr(s2, d), rndn(2) ? opr(s, r) : opm(s)); break;
		case 9:
			if (rndn(2))
				ENC(p, ZYDIS_MNEMONIC_PEXTRQ, opr(8, d), opx(x), opi(rndn(2)));
			else
				ENC(p, ZYDIS_MNEMONIC_PINSRQ, opx(x), opr(8, r), opi(rndn(2)));
			break;
		default: ENC(p, ZYDIS_MNEMONIC_PSHUFD, opx(x), opx(y), opi(rndn(256))); break;
		}
		break;
	}
	case 0: case 1: case 2: case 3: case 4: { /* ALU */
		unsigned a = rndn(9);
		ZydisMnemonic mn = alu_mn[a];
		need(p, mn == ZYDIS_MNEMONIC_ADC || mn == ZYDIS_MNEMONIC_SBB ? EMU_CF : 0);
		int ok;
		switch (rndn(3)) {
		case 0: ok = ENC(p, mn, dst, opr(s, r)); break;
		case 1: ok = mn == ZYDIS_MNEMONIC_TEST ? 0 : ENC(p, mn, opr(s, d), opm(s)); break;
		default: ok = ENC(p, mn, dst, opi(rimm(s))); break;
		}
		if (ok)
			wrote(p, ALLF, a == 1 || a == 4 || a == 6 || a == 8 ? EMU_AF : 0);
		break;
	}
	case 5: { /* INC DEC NEG NOT */
		static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_INC, ZYDIS_MNEMONIC_DEC, ZYDIS_MNEMONIC_NEG, ZYDIS_MNEMONIC_NOT };
		unsigned a = rndn(4);
		if (ENC(p, mn[a], dst))
			wrote(p, a < 2 ? ALLF & ~EMU_CF : a == 2 ? ALLF : 0, 0);
		break;
	}
	case 6: case 7: case 8: { /* shifts and rotates */
		unsigned a = rndn(7);
		int rot = a < 4, rc = a == 2 || a == 3;
		need(p, rc ? EMU_CF : 0);
		unsigned how = rndn(3);
		if (how == 2) {
			if (d == RCX || ENC(p, sh_mn[a], dmem ? dst : opr(s, d), opr(1, RCX)) == 0)
				break;
			p->U |= rot ? EMU_OF : a == 6 ? EMU_AF | EMU_OF : EMU_AF | EMU_OF | EMU_CF;
		} else {
			uint64_t c = how == 0 ? 1 : rndn(4) == 0 ? rnd() & 0xff : rndn(2 * 8 * s + 2);
			if (!ENC(p, sh_mn[a], dst, opi((int64_t)c)))
				break;
			unsigned mc = (unsigned)(c & (s == 8 ? 63 : 31));
			if (mc) {
				int cls = rot ? EMU_FC_ROTATE : a == 6 ? EMU_FC_SAR : EMU_FC_SHIFT;
				wrote(p, rot ? EMU_CF | EMU_OF : ALLF, emu_undefined_flags((enum emu_flag_class)cls, s, c) & ALLF);
			}
		}
		break;
	}
	case 9: { /* SHLD/SHRD, 32/64-bit (the 16-bit forms have undefined results for counts > 16) */
		ZydisMnemonic mn = rndn(2) ? ZYDIS_MNEMONIC_SHLD : ZYDIS_MNEMONIC_SHRD;
		ZydisEncoderOperand dd = dmem ? opm(s2) : opr(s2, d);
		if (rndn(2)) {
			uint64_t c = rndn(8 * s2 + 8);
			if (ENC(p, mn, dd, opr(s2, r), opi((int64_t)c)) && (c & (s2 == 8 ? 63 : 31)))
				wrote(p, ALLF, emu_undefined_flags(EMU_FC_SHXD, s2, c) & ALLF);
		} else if (d != RCX && r != RCX && ENC(p, mn, dd, opr(s2, r), opr(1, RCX))) {
			p->U |= EMU_AF | EMU_OF;
		}
		break;
	}
	case 10: { /* MUL/IMUL */
		int ok;
		switch (rndn(3)) {
		case 0: ok = ENC(p, rndn(2) ? ZYDIS_MNEMONIC_MUL : ZYDIS_MNEMONIC_IMUL, dmem ? opm(s) : opr(s, r)); break;
		case 1: ok = ENC(p, ZYDIS_MNEMONIC_IMUL, opr(s3, d), rndn(3) ? opr(s3, r) : opm(s3)); break;
		default: ok = ENC(p, ZYDIS_MNEMONIC_IMUL, opr(s3, d), rndn(3) ? opr(s3, r) : opm(s3), opi(rimm(s3))); break;
		}
		if (ok)
			wrote(p, ALLF, EMU_SF | EMU_ZF | EMU_AF | EMU_PF);
		break;
	}
	case 11: { /* BT* (memory only with an immediate: a register bit offset could leave the window) */
		static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_BT, ZYDIS_MNEMONIC_BTS, ZYDIS_MNEMONIC_BTR, ZYDIS_MNEMONIC_BTC };
		int ok = rndn(2) ? ENC(p, mn[rndn(4)], opr(s3, d), opr(s3, r))
				 : ENC(p, mn[rndn(4)], rndn(2) ? opm(s3) : opr(s3, d), opi(rndn(256)));
		if (ok)
			wrote(p, EMU_CF | EMU_OF | EMU_SF | EMU_AF | EMU_PF, EMU_OF | EMU_SF | EMU_AF | EMU_PF);
		break;
	}
	case 12: { /* bit scans and counts */
		static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_BSF, ZYDIS_MNEMONIC_BSR, ZYDIS_MNEMONIC_TZCNT,
						    ZYDIS_MNEMONIC_LZCNT, ZYDIS_MNEMONIC_POPCNT };
		static const uint64_t X[] = { EMU_CF | EMU_OF | EMU_SF | EMU_AF | EMU_PF, EMU_CF | EMU_OF | EMU_SF | EMU_AF | EMU_PF,
					      EMU_OF | EMU_SF | EMU_AF | EMU_PF, EMU_OF | EMU_SF | EMU_AF | EMU_PF, 0 };
		unsigned a = rndn(5);
		if (ENC(p, mn[a], opr(s3, d), rndn(3) ? opr(s3, r) : opm(s3)))
			wrote(p, ALLF, X[a]);
		break;
	}
	case 13: { /* BMI1 */
		unsigned a = rndn(5);
		int ok;
		uint64_t X = EMU_AF | EMU_PF;
		ZydisEncoderOperand src = rndn(3) ? opr(s2, r) : opm(s2);
		if (a == 0)
			ok = ENC(p, ZYDIS_MNEMONIC_ANDN, opr(s2, d), opr(s2, sreg()), src);
		else if (a == 1) {
			ok = ENC(p, ZYDIS_MNEMONIC_BEXTR, opr(s2, d), src, opr(s2, sreg()));
			X = EMU_AF | EMU_SF | EMU_PF;
		} else {
			static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_BLSI, ZYDIS_MNEMONIC_BLSMSK, ZYDIS_MNEMONIC_BLSR };
			ok = ENC(p, mn[a - 2], opr(s2, d), src);
		}
		if (ok)
			wrote(p, ALLF, X);
		break;
	}
	case 14: case 15: { /* CMOVcc / SETcc */
		unsigned cc = rndn(16);
		need(p, cc_reads(cc));
		if (rndn(2))
			ENC(p, cmov_mn[cc], opr(s3, d), rndn(3) ? opr(s3, r) : opm(s3));
		else
			ENC(p, set_mn[cc], rndn(3) ? opr(1, d) : opm(1));
		break;
	}
	case 16: { /* MOVZX/MOVSX/MOVSXD */
		static const unsigned pr[][2] = { { 2, 1 }, { 4, 1 }, { 8, 1 }, { 4, 2 }, { 8, 2 }, { 8, 4 } };
		unsigned k = rndn(6);
		ZydisEncoderOperand src = rndn(3) ? opr(pr[k][1], r) : opm(pr[k][1]);
		ENC(p, k == 5 ? ZYDIS_MNEMONIC_MOVSXD : rndn(2) ? ZYDIS_MNEMONIC_MOVZX : ZYDIS_MNEMONIC_MOVSX, opr(pr[k][0], d), src);
		break;
	}
	case 17: { /* LEA: base and index from the value registers (never R15: its value is an address) */
		ZydisEncoderOperand m;
		memset(&m, 0, sizeof m);
		m.type = ZYDIS_OPERAND_TYPE_MEMORY;
		unsigned asz = rndn(4) ? 8 : 4;
		m.mem.base = rndn(6) ? zreg(asz, sreg(), 0) : ZYDIS_REGISTER_NONE;
		if (rndn(3)) {
			m.mem.index = zreg(asz, sreg(), 0);
			m.mem.scale = (ZyanU8)(1u << rndn(4));
		}
		m.mem.displacement = rndn(2) ? (int8_t)rnd() : (int32_t)rnd();
		for (unsigned q = 0; q < 4; q++) {
			m.mem.size = (ZyanU16)((unsigned[]){ 0, 2, 4, 8 }[q]);
			if (ENC(p, ZYDIS_MNEMONIC_LEA, opr(s3, d), m))
				break;
		}
		break;
	}
	case 18: case 19: case 20: /* MOV */
		switch (rndn(4)) {
		case 0: ENC(p, ZYDIS_MNEMONIC_MOV, opr(s, d), opr(s, r)); break;
		case 1: ENC(p, ZYDIS_MNEMONIC_MOV, opr(s, d), opm(s)); break;
		case 2: ENC(p, ZYDIS_MNEMONIC_MOV, opm(s), opr(s, r)); break;
		default: ENC(p, ZYDIS_MNEMONIC_MOV, dst, opi(s == 8 && rndn(2) ? (int64_t)rnd() : rimm(s))); break;
		}
		break;
	case 21: { /* XCHG XADD CMPXCHG */
		static const ZydisMnemonic mn[] = { ZYDIS_MNEMONIC_XCHG, ZYDIS_MNEMONIC_XADD, ZYDIS_MNEMONIC_CMPXCHG };
		unsigned a = rndn(3);
		int r2 = rreg(); /* written too: not the loop counter */
		if (ENC(p, mn[a], dst, opr(s, r2)) && a)
			wrote(p, ALLF, 0);
		break;
	}
	case 22: { /* BSWAP, CBW..CQO */
		static const uint8_t cv[6][2] = { { 0x66, 0x98 }, { 0x98 }, { 0x48, 0x98 }, { 0x66, 0x99 }, { 0x99 }, { 0x48, 0x99 } };
		if (rndn(2))
			ENC(p, ZYDIS_MNEMONIC_BSWAP, opr(s2, d));
		else {
			unsigned k = rndn(6);
			raw(p, cv[k], cv[k][0] == 0x66 || cv[k][0] == 0x48 ? 2 : 1);
		}
		break;
	}
	case 23: { /* REP MOVS/STOS inside the window; RSI/RDI turned back into offsets */
		unsigned es = 1u << rndn(4), n = rndn(17), df = rndn(2);
		int dlo = df ? 16 * 8 + 8 : 8; /* room below for DF=1 */
		ENC(p, ZYDIS_MNEMONIC_LEA, opr(8, RDI), (ZydisEncoderOperand){ .type = ZYDIS_OPERAND_TYPE_MEMORY,
			.mem = { .base = ZYDIS_REGISTER_R15, .displacement = dlo + (int)rndn(64), .size = 8 } });
		ENC(p, ZYDIS_MNEMONIC_LEA, opr(8, RSI), (ZydisEncoderOperand){ .type = ZYDIS_OPERAND_TYPE_MEMORY,
			.mem = { .base = ZYDIS_REGISTER_R15, .displacement = -256 + dlo + (int)rndn(64), .size = 8 } });
		ENC(p, ZYDIS_MNEMONIC_MOV, opr(4, RCX), opi(n));
		uint8_t b[4];
		unsigned k = 0;
		b[k++] = 0xf3;
		if (es == 2)
			b[k++] = 0x66;
		if (es == 8)
			b[k++] = 0x48;
		b[k++] = (uint8_t)((rndn(2) ? 0xa4 : 0xaa) + (es > 1));
		if (df)
			raw(p, (const uint8_t[]){ 0xfd }, 1); /* std */
		raw(p, b, k);
		if (df)
			raw(p, (const uint8_t[]){ 0xfc }, 1); /* cld */
		ENC(p, ZYDIS_MNEMONIC_SUB, opr(8, RDI), opr(8, R15));
		ENC(p, ZYDIS_MNEMONIC_SUB, opr(8, RSI), opr(8, R15));
		wrote(p, ALLF, 0);
		break;
	}
	default: /* PUSH/POP */
		if (p->depth > p->floor && rndn(2)) {
			ENC(p, ZYDIS_MNEMONIC_POP, rndn(4) ? opr(8, d) : opm(8));
			p->depth--;
		} else if (p->depth < 6) {
			switch (rndn(3)) {
			case 0: ENC(p, ZYDIS_MNEMONIC_PUSH, opr(8, r)); break;
			case 1: ENC(p, ZYDIS_MNEMONIC_PUSH, opm(8)); break;
			default: ENC(p, ZYDIS_MNEMONIC_PUSH, opi((int32_t)rnd())); break;
			}
			p->depth++;
		}
		break;
	}
}

static void unwind(struct prog *p, int to)
{
	while (p->depth > to) {
		ENC(p, ZYDIS_MNEMONIC_POP, opr(8, rreg()));
		p->depth--;
	}
}

/* A forward Jcc over 1..5 instructions (either path may run), or a counted loop (R14, 1..8 iterations,
 * backward JNZ), or a plain instruction. Nesting is one level: loop/skip bodies are plain instructions. */
static void unit(struct prog *p, unsigned budget)
{
	unsigned k = rndn(10);
	if (k == 0 && budget >= 4) { /* forward skip */
		unsigned cc = rndn(16), n = 1 + rndn(5);
		need(p, cc_reads(cc));
		uint64_t U0 = p->U;
		int depth0 = p->depth;
		unsigned at = p->len;
		p->len += 2;
		p->floor = depth0;
		for (unsigned q = 0; q < n; q++)
			one(p);
		unwind(p, depth0);
		p->floor = 0;
		unsigned body = p->len - at - 2;
		if (body > 127) { /* too long for rel8: drop the skip, keep the body as straight code */
			memmove(p->b + at, p->b + at + 2, body);
			p->len -= 2;
		} else {
			p->b[at] = (uint8_t)(0x70 + cc);
			p->b[at + 1] = (uint8_t)body;
			p->ninsn++;
		}
		p->U |= U0;
	} else if (k == 1 && budget >= 6) { /* loop */
		unsigned iters = 1 + rndn(8), n = 2 + rndn(6);
		raw(p, (const uint8_t[]){ 0x41, 0xbe, (uint8_t)iters, 0, 0, 0 }, 6); /* mov r14d, iters */
		unsigned top = p->len;
		int depth0 = p->depth;
		p->U = ALLF; /* the first iteration and the later ones meet here */
		p->floor = depth0;
		for (unsigned q = 0; q < n; q++)
			one(p);
		unwind(p, depth0);
		p->floor = 0;
		if (rndn(2))
			raw(p, (const uint8_t[]){ 0x41, 0xff, 0xce }, 3); /* dec r14d */
		else
			raw(p, (const uint8_t[]){ 0x49, 0x83, 0xee, 0x01 }, 4); /* sub r14, 1 */
		wrote(p, EMU_OF | EMU_SF | EMU_ZF | EMU_AF | EMU_PF, 0);
		int rel = (int)top - (int)(p->len + 2);
		if (rel < -128) { /* body too long for rel8: jnz rel32 */
			rel = (int)top - (int)(p->len + 6);
			uint8_t j[6] = { 0x0f, 0x85 };
			memcpy(j + 2, &rel, 4);
			raw(p, j, 6);
		} else {
			raw(p, (const uint8_t[]){ 0x75, (uint8_t)rel }, 2);
		}
	} else {
		one(p);
	}
}

static void gen(struct prog *p, unsigned target)
{
	memset(p, 0, offsetof(struct prog, b) + 0);
	p->len = p->ninsn = p->nb = 0;
	p->depth = p->floor = 0;
	p->U = 0;
	/* XMM0-7 from the window: the same inputs natively and in the engine */
	for (int k = 0; k < 8; k++) {
		ZydisEncoderOperand m = opm(16);
		m.mem.displacement = 16 * k - 128;
		ENC(p, ZYDIS_MNEMONIC_MOVDQU, opx(k), m);
	}
	while (p->ninsn < target) {
		unit(p, target - p->ninsn);
		if (p->depth == 0 && p->nb < 256) {
			p->bound[p->nb] = p->len;
			p->ubound[p->nb++] = p->U;
		}
	}
	unwind(p, 0);
	p->bound[p->nb < 256 ? p->nb : 255] = p->len;
	p->ubound[p->nb < 256 ? p->nb : 255] = p->U;
	if (p->nb < 256)
		p->nb++;
}

static void init_state(struct ocase *c)
{
	memset(c, 0, sizeof *c);
	for (int k = 0; k < 16; k++) {
		uint64_t v = rnd();
		switch (rndn(6)) {
		case 0: v = rndn(8); break;
		case 1: v = (uint64_t)-(int64_t)rndn(4); break;
		case 2: v = 1ull << rndn(64); break;
		case 3: v &= 0xffffffff; break;
		default: break;
		}
		c->r[k] = v;
	}
	c->r[RSP] = 0;
	c->r[BASE] = MID;
	for (unsigned k = 0; k < MEMSZ; k += 8) {
		uint64_t x = rndn(4) ? rnd() : rndn(3);
		memcpy(c->mem + k, &x, 8);
	}
	c->fl = BASE_FLAGS | (rnd() & ALLF);
}

static void print_prog(const uint8_t *b, unsigned len)
{
	for (unsigned off = 0; off < len;) {
		ZydisDisassembledInstruction d;
		if (!ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, off, b + off, len - off, &d))) {
			fprintf(stderr, "    %4u: (undecodable %02x)\n", off, b[off]);
			return;
		}
		fprintf(stderr, "    %4u: %s\n", off, d.text);
		off += d.info.length;
	}
}

static struct orc O, O2; /* O2: the other back end */

/* CR4.OSFXSR and OSXMMEXCPT: the SSE instructions run (t_long_mode leaves them clear) */
static void post_init(struct t_vm *t)
{
	struct kvm_sregs s;
	t->ops->get_sregs(t->cpu, &s);
	s.cr4 |= (1u << 9) | (1u << 10);
	t->ops->set_sregs(t->cpu, &s);
}

/* Run program prefix [0, len) on one state: 1 if native and engine agree (flags masked with U). */
static int run_one(const uint8_t *code, unsigned len, const struct ocase *in, uint64_t U, int print)
{
	static struct batch b;
	static struct ocase i1, n1, e1;
	static uint16_t pm;
	b.nvar = 1;
	b.vcode[0] = code;
	b.vlen[0] = len;
	b.n = 1;
	i1 = *in;
	i1.var = 0;
	b.in = &i1;
	b.nat = &n1;
	b.emu = &e1;
	pm = 1u << BASE;
	b.pmask = &pm;
	orc_native(&O, &b);
	int ok = orc_engine(&O, &b) == 0;
	return compare_case(&i1, &n1, &e1, 0, CMP_FLAGS & ~U, 0, 0, pm, print) && ok;
}

int main(void)
{
	uint64_t seed = env_u64("EMU_RANDPROG_SEED", 0x7a11ab1e5eedull);
	unsigned count = (unsigned)env_u64("EMU_RANDPROG_COUNT", 10000);
	rng_state = seed ? seed : 1;
	printf("emu_randprog: seed %#" PRIx64 " (EMU_RANDPROG_SEED), %u programs (EMU_RANDPROG_COUNT)%s\n", seed, count,
	       ORC_SANITIZED ? ", under ASan" : "");
	orc_signals();
	orc_post_init = post_init;
	orc_init(&O);
	t_backend = t_translate() ? 0 : 2;
	orc_init(&O2);
	t_backend = -1;

	enum { PER_BATCH = 200, STATES = 2 };
	static struct prog progs[PER_BATCH];
	static struct batch B;
	static struct batch B2;
	static struct ocase in[PER_BATCH * STATES], nat[PER_BATCH * STATES], emu[PER_BATCH * STATES],
		emu2[PER_BATCH * STATES];
	static uint16_t pmask[PER_BATCH * STATES];
	unsigned long insns = 0, loops_bytes = 0;
	int failed = 0;
	for (unsigned first = 0; first < count && failed < 3; first += PER_BATCH) {
		unsigned np = count - first < PER_BATCH ? count - first : PER_BATCH;
		B.nvar = np;
		B.n = np * STATES;
		B.in = in;
		B.nat = nat;
		B.emu = emu;
		B.pmask = pmask;
		for (unsigned k = 0; k < np; k++) {
			gen(&progs[k], 10 + rndn(51));
			insns += progs[k].ninsn;
			loops_bytes += progs[k].len;
			B.vcode[k] = progs[k].b;
			B.vlen[k] = progs[k].len;
			for (unsigned s = 0; s < STATES; s++) {
				init_state(&in[k * STATES + s]);
				in[k * STATES + s].var = k;
				pmask[k * STATES + s] = 1u << BASE;
			}
		}
		orc_native(&O, &B);
		uint64_t icount = O.instructions, icount2 = O2.instructions;
		int eng_ok = orc_engine(&O, &B) == 0;
		B2 = B;
		B2.emu = emu2;
		if (orc_engine(&O2, &B2) != 0 || !eng_ok) {
			fprintf(stderr, "MISMATCH: seed %#" PRIx64 ", batch at program %u: an engine run failed\n", seed, first);
			failed++;
		} else if (O.instructions - icount != O2.instructions - icount2) {
			fprintf(stderr, "MISMATCH: seed %#" PRIx64 ", batch at program %u: %" PRIu64 " instructions retired by "
				"one back end, %" PRIu64 " by the other\n", seed, first, O.instructions - icount,
				O2.instructions - icount2);
			failed++;
		}
		for (unsigned i = 0; i < B.n && failed < 3; i++) {
			if (compare_case(&in[i], &emu[i], &emu2[i], 0, CMP_FLAGS, 0, 0, pmask[i], 0))
				continue;
			failed++;
			fprintf(stderr, "MISMATCH between the back ends (\"host\" = BLVM_TRANSLATE's, \"emu\" = the other): "
				"seed %#" PRIx64 ", program %u (state %u):\n", seed, first + (unsigned)in[i].var, i % STATES);
			print_prog(progs[in[i].var].b, progs[in[i].var].len);
			compare_case(&in[i], &emu[i], &emu2[i], 0, CMP_FLAGS, 0, 0, pmask[i], 1);
		}
		for (unsigned i = 0; i < B.n && failed < 3; i++) {
			struct prog *p = &progs[in[i].var];
			uint64_t U = p->ubound[p->nb - 1];
			if (eng_ok && compare_case(&in[i], &nat[i], &emu[i], 0, CMP_FLAGS & ~U, 0, 0, pmask[i], 0))
				continue;
			failed++;
			fprintf(stderr, "MISMATCH: seed %#" PRIx64 ", program %u (state %u), %u instructions:\n", seed,
				first + (unsigned)in[i].var, i % STATES, p->ninsn);
			print_prog(p->b, p->len);
			compare_case(&in[i], &nat[i], &emu[i], 0, CMP_FLAGS & ~U, 0, 0, pmask[i], 1);
			/* shrink: the shortest failing prefix at a top-level boundary */
			for (unsigned q = 0; q < p->nb; q++) {
				if (!run_one(p->b, p->bound[q], &in[i], p->ubound[q], 0)) {
					fprintf(stderr, "  shortest failing prefix (%u bytes):\n", p->bound[q]);
					print_prog(p->b, p->bound[q]);
					run_one(p->b, p->bound[q], &in[i], p->ubound[q], 1);
					break;
				}
			}
		}
	}
	printf("emu_randprog: %u programs x %d states, %lu instructions generated (%lu bytes), %" PRIu64
	       " guest instructions executed: %s\n",
	       count, STATES, insns, loops_bytes, O.instructions, failed ? "FAILED" : "ok");
	orc_fini(&O);
	orc_fini(&O2);
	return failed ? 1 : 0;
}
