/* SPDX-License-Identifier: MIT */
/*
 * The operations the arith guest checks, as ONE function compiled twice: by the host compiler
 * into guests/gen/arith-gen (whose results, computed by the host CPU, become the expected
 * values) and by the guest compiler into the arith guest (whose results the CPU under test
 * computes). The inline assembly is identical in both, so the two run the same instructions:
 * the host CPU is the oracle (docs/DESIGN.md, "How we know it works").
 *
 * Plain C operations (ARITH_C_*) exercise whatever instructions the compiler picks (lea, movzx,
 * setcc, cmov, imul, shifts by constants...); they are written without undefined behaviour so
 * both compilations mean the same thing. The assembly operations (the others) pin down exact
 * instructions at each operand size, and record RFLAGS (pushfq) right after them.
 *
 * Operands: a, b (the count for shifts and rotates), c (carry-in bit 0 for adc/sbb/rcl/rcr;
 * the upper half of the dividend for div: c & (b >> 1), which keeps the quotient in range).
 */
#ifndef BLVM_ARITH_OPS_H
#define BLVM_ARITH_OPS_H

#include <stdint.h>

#define ARITH_OP_LIST(X)                                                                              \
	X(ADD, "add") X(SUB, "sub") X(ADC, "adc") X(SBB, "sbb") X(AND, "and") X(OR, "or")             \
	X(XOR, "xor") X(NEG, "neg") X(NOT, "not") X(INC, "inc") X(DEC, "dec") X(SHL, "shl")           \
	X(SHR, "shr") X(SAR, "sar") X(ROL, "rol") X(ROR, "ror") X(RCL, "rcl") X(RCR, "rcr")           \
	X(MUL_LO, "mul.lo") X(MUL_HI, "mul.hi") X(IMUL_LO, "imul.lo") X(IMUL_HI, "imul.hi")           \
	X(IMUL2, "imul2") X(IMUL3_I8, "imul3.imm8") X(IMUL3_IMM, "imul3.imm") X(DIV_Q, "div.q")       \
	X(DIV_R, "div.r") X(IDIV_Q, "idiv.q") X(IDIV_R, "idiv.r") X(C_ADD, "c.add")                   \
	X(C_SUB, "c.sub") X(C_MUL, "c.mul") X(C_NEG, "c.neg") X(C_AND, "c.and") X(C_OR, "c.or")       \
	X(C_XOR, "c.xor") X(C_UDIV, "c.udiv") X(C_UREM, "c.urem") X(C_SDIV, "c.sdiv")                 \
	X(C_SREM, "c.srem") X(C_SHL, "c.shl") X(C_SHR, "c.shr") X(C_SAR, "c.sar") X(C_ROTL, "c.rotl") \
	X(C_LTS, "c.lt_s") X(C_LTU, "c.lt_u") X(C_MULHU, "c.mulhi_u") X(C_MULHS, "c.mulhi_s")

enum arith_op {
#define ARITH_ENUM(id, name) ARITH_##id,
	ARITH_OP_LIST(ARITH_ENUM)
#undef ARITH_ENUM
	ARITH_NOPS
};

static const char *const arith_op_names[ARITH_NOPS] = {
#define ARITH_NAME(id, name) name,
	ARITH_OP_LIST(ARITH_NAME)
#undef ARITH_NAME
};

/* RFLAGS bits (SDM Vol. 1 3.4.3.1). */
#define ARITH_CF 0x001
#define ARITH_PF 0x004
#define ARITH_AF 0x010
#define ARITH_ZF 0x040
#define ARITH_SF 0x080
#define ARITH_OF 0x800

struct arith_pair {
	uint64_t a, b, c;
};

struct arith_case {
	uint64_t want;  /* the result, zero-extended from w bits */
	uint16_t pair;  /* index in arith_pairs[] */
	uint16_t fmask; /* the flags defined after this operation (0: flags not checked) */
	uint16_t fwant; /* their values on the host, already masked */
	uint8_t op;     /* enum arith_op */
	uint8_t w;      /* operand size in bits: 8, 16, 32 or 64 */
};

/* RFLAGS right after the instruction. lea leaves the flags alone; stepping over 128 bytes keeps
 * the push out of the host's red zone (the guest has none). */
#define ARITH_FLAGS_SAVE "\n\tlea -128(%%rsp), %%rsp\n\tpushfq\n\tpopq %[fl]\n\tlea 128(%%rsp), %%rsp"
/* Known flags before an instruction that may leave some unchanged (count 0, inc/dec's CF):
 * test clears CF and OF and sets ZF/SF/PF from x; stc sets CF; bt copies the carry-in to CF. */
#define ARITH_PRE_NONE ""
#define ARITH_PRE_TEST "test %[x], %[x]\n\t"
#define ARITH_PRE_STC "stc\n\t"
#define ARITH_PRE_CARRY "btl $0, %k[c]\n\t"

#define ARITH_A2(pre, insn)                                                                          \
	__asm__(pre insn " %[y], %[x]" ARITH_FLAGS_SAVE : [x] "+r"(x), [fl] "=r"(fl) : [y] "r"(y), [c] "r"(c) \
		: "cc")
#define ARITH_A1(pre, insn)                                                                      \
	__asm__(pre insn " %[x]" ARITH_FLAGS_SAVE : [x] "+r"(x), [fl] "=r"(fl) : [c] "r"(c) : "cc")
#define ARITH_SH(pre, insn)                                                                      \
	__asm__(pre insn " %%cl, %[x]" ARITH_FLAGS_SAVE : [x] "+r"(x), [fl] "=r"(fl) : "c"(cnt), [c] "r"(c) \
		: "cc")

/* The cases common to every operand size; uT/sT/uP are the width's unsigned, signed and
 * promoted-unsigned types, W its size in bits. */
#define ARITH_COMMON_CASES                                                                                      \
	case ARITH_ADD: ARITH_A2(ARITH_PRE_NONE, "add"); r = x; break;                                          \
	case ARITH_SUB: ARITH_A2(ARITH_PRE_NONE, "sub"); r = x; break;                                          \
	case ARITH_ADC: ARITH_A2(ARITH_PRE_CARRY, "adc"); r = x; break;                                         \
	case ARITH_SBB: ARITH_A2(ARITH_PRE_CARRY, "sbb"); r = x; break;                                         \
	case ARITH_AND: ARITH_A2(ARITH_PRE_NONE, "and"); r = x; break;                                          \
	case ARITH_OR: ARITH_A2(ARITH_PRE_NONE, "or"); r = x; break;                                            \
	case ARITH_XOR: ARITH_A2(ARITH_PRE_NONE, "xor"); r = x; break;                                          \
	case ARITH_NEG: ARITH_A1(ARITH_PRE_NONE, "neg"); r = x; break;                                          \
	case ARITH_NOT: ARITH_A1(ARITH_PRE_NONE, "not"); r = x; break;                                          \
	case ARITH_INC: ARITH_A1(ARITH_PRE_STC, "inc"); r = x; break;                                           \
	case ARITH_DEC: ARITH_A1(ARITH_PRE_STC, "dec"); r = x; break;                                           \
	case ARITH_SHL: ARITH_SH(ARITH_PRE_TEST, "shl"); r = x; break;                                          \
	case ARITH_SHR: ARITH_SH(ARITH_PRE_TEST, "shr"); r = x; break;                                          \
	case ARITH_SAR: ARITH_SH(ARITH_PRE_TEST, "sar"); r = x; break;                                          \
	case ARITH_ROL: ARITH_SH(ARITH_PRE_TEST, "rol"); r = x; break;                                          \
	case ARITH_ROR: ARITH_SH(ARITH_PRE_TEST, "ror"); r = x; break;                                          \
	case ARITH_RCL: ARITH_SH(ARITH_PRE_CARRY, "rcl"); r = x; break;                                         \
	case ARITH_RCR: ARITH_SH(ARITH_PRE_CARRY, "rcr"); r = x; break;                                         \
	case ARITH_C_ADD: r = (uT)((uP)x + y); break;                                                           \
	case ARITH_C_SUB: r = (uT)((uP)x - y); break;                                                           \
	case ARITH_C_MUL: r = (uT)((uP)x * y); break;                                                           \
	case ARITH_C_NEG: r = (uT)(0 - (uP)x); break;                                                           \
	case ARITH_C_AND: r = x & y; break;                                                                     \
	case ARITH_C_OR: r = x | y; break;                                                                      \
	case ARITH_C_XOR: r = x ^ y; break;                                                                     \
	case ARITH_C_UDIV: r = (uT)(x / y); break;                                                              \
	case ARITH_C_UREM: r = (uT)(x % y); break;                                                              \
	case ARITH_C_SDIV: r = (uT)((sT)x / (sT)y); break;                                                      \
	case ARITH_C_SREM: r = (uT)((sT)x % (sT)y); break;                                                      \
	case ARITH_C_SHL: r = (uT)((uP)x << (b % W)); break;                                                    \
	case ARITH_C_SHR: r = (uT)(x >> (b % W)); break;                                                        \
	case ARITH_C_SAR: r = (uT)((sT)x >> (b % W)); break;                                                    \
	case ARITH_C_ROTL: r = (uT)(((uP)x << (b % W)) | (x >> ((W - b % W) % W))); break;                      \
	case ARITH_C_LTS: r = (sT)x < (sT)y; break;                                                             \
	case ARITH_C_LTU: r = x < y; break;

/* Operations valid at a width (imul's two- and three-operand forms have no 8-bit encoding). */
static inline int arith_valid(unsigned op, unsigned w)
{
	if (w == 8 && (op == ARITH_IMUL2 || op == ARITH_IMUL3_I8 || op == ARITH_IMUL3_IMM))
		return 0;
	return 1;
}

static uint64_t arith_eval8(unsigned op, uint64_t a, uint64_t b, uint64_t c, uint64_t *flags)
{
	typedef uint8_t uT;
	typedef int8_t sT;
	typedef uint32_t uP;
	enum { W = 8 };
	uT x = (uT)a, y = (uT)b, r = 0;
	uint8_t cnt = (uint8_t)b;
	uint64_t fl = 0;
	uint16_t ax;
	switch (op) {
		ARITH_COMMON_CASES
	case ARITH_MUL_LO:
	case ARITH_MUL_HI:
		ax = x;
		__asm__("mul %[y]" ARITH_FLAGS_SAVE : "+a"(ax), [fl] "=r"(fl) : [y] "q"(y) : "cc");
		r = op == ARITH_MUL_LO ? (uT)ax : (uT)(ax >> 8);
		break;
	case ARITH_IMUL_LO:
	case ARITH_IMUL_HI:
		ax = x;
		__asm__("imul %[y]" ARITH_FLAGS_SAVE : "+a"(ax), [fl] "=r"(fl) : [y] "q"(y) : "cc");
		r = op == ARITH_IMUL_LO ? (uT)ax : (uT)(ax >> 8);
		break;
	case ARITH_DIV_Q:
	case ARITH_DIV_R:
		ax = (uint16_t)(((uT)c & (y >> 1)) << 8 | x);
		__asm__("div %[y]" : "+a"(ax) : [y] "q"(y) : "cc");
		r = op == ARITH_DIV_Q ? (uT)ax : (uT)(ax >> 8);
		break;
	case ARITH_IDIV_Q:
	case ARITH_IDIV_R:
		ax = x;
		__asm__("cbtw\n\tidiv %[y]" : "+a"(ax) : [y] "q"(y) : "cc");
		r = op == ARITH_IDIV_Q ? (uT)ax : (uT)(ax >> 8);
		break;
	case ARITH_C_MULHU: r = (uT)(((uint32_t)x * y) >> W); break;
	case ARITH_C_MULHS: r = (uT)((uint32_t)((int32_t)(sT)x * (sT)y) >> W); break;
	}
	*flags = fl;
	return r;
}

/* 16, 32 and 64 bits differ only in types and the sign-extension mnemonic (cwd/cdq/cqo). */
#define ARITH_EVAL_WIDE(name, uT_, sT_, uP_, W_, sext, mulhu, mulhs)                                           \
	static uint64_t name(unsigned op, uint64_t a, uint64_t b, uint64_t c, uint64_t *flags)                 \
	{                                                                                                       \
		typedef uT_ uT;                                                                                 \
		typedef sT_ sT;                                                                                 \
		typedef uP_ uP;                                                                                 \
		enum { W = W_ };                                                                                \
		uT x = (uT)a, y = (uT)b, r = 0, hi;                                                             \
		uint8_t cnt = (uint8_t)b;                                                                       \
		uint64_t fl = 0;                                                                                \
		switch (op) {                                                                                   \
			ARITH_COMMON_CASES                                                                      \
		case ARITH_MUL_LO:                                                                              \
		case ARITH_MUL_HI:                                                                              \
			__asm__("mul %[y]" ARITH_FLAGS_SAVE : "+a"(x), "=&d"(hi), [fl] "=r"(fl) : [y] "r"(y) : "cc"); \
			r = op == ARITH_MUL_LO ? x : hi;                                                        \
			break;                                                                                  \
		case ARITH_IMUL_LO:                                                                             \
		case ARITH_IMUL_HI:                                                                             \
			__asm__("imul %[y]" ARITH_FLAGS_SAVE : "+a"(x), "=&d"(hi), [fl] "=r"(fl) : [y] "r"(y) : "cc"); \
			r = op == ARITH_IMUL_LO ? x : hi;                                                       \
			break;                                                                                  \
		case ARITH_IMUL2: ARITH_A2(ARITH_PRE_NONE, "imul"); r = x; break;                               \
		case ARITH_IMUL3_I8:                                                                            \
			__asm__("imul $-7, %[x], %[r]" ARITH_FLAGS_SAVE : [r] "=r"(r), [fl] "=r"(fl) : [x] "r"(x) : "cc"); \
			break;                                                                                  \
		case ARITH_IMUL3_IMM:                                                                           \
			__asm__("imul $-12345, %[x], %[r]" ARITH_FLAGS_SAVE : [r] "=r"(r), [fl] "=r"(fl) : [x] "r"(x) \
				: "cc");                                                                        \
			break;                                                                                  \
		case ARITH_DIV_Q:                                                                               \
		case ARITH_DIV_R:                                                                               \
			hi = (uT)c & (y >> 1);                                                                  \
			__asm__("div %[y]" : "+a"(x), "+d"(hi) : [y] "r"(y) : "cc");                            \
			r = op == ARITH_DIV_Q ? x : hi;                                                         \
			break;                                                                                  \
		case ARITH_IDIV_Q:                                                                              \
		case ARITH_IDIV_R:                                                                              \
			__asm__(sext "\n\tidiv %[y]" : "+a"(x), "=&d"(hi) : [y] "r"(y) : "cc");                 \
			r = op == ARITH_IDIV_Q ? x : hi;                                                        \
			break;                                                                                  \
		case ARITH_C_MULHU: r = (uT)(mulhu); break;                                                     \
		case ARITH_C_MULHS: r = (uT)(mulhs); break;                                                     \
		}                                                                                               \
		*flags = fl;                                                                                    \
		return r;                                                                                       \
	}

ARITH_EVAL_WIDE(arith_eval16, uint16_t, int16_t, uint32_t, 16, "cwtd", ((uint32_t)x * y) >> W,
		(uint32_t)((int32_t)(sT)x * (sT)y) >> W)
ARITH_EVAL_WIDE(arith_eval32, uint32_t, int32_t, uint32_t, 32, "cltd", ((uint64_t)x * y) >> W,
		(uint64_t)((int64_t)(sT)x * (sT)y) >> W)
ARITH_EVAL_WIDE(arith_eval64, uint64_t, int64_t, uint64_t, 64, "cqto", ((unsigned __int128)x * y) >> W,
		(unsigned __int128)((__int128)(sT)x * (sT)y) >> W)

/* The result of op at width w, zero-extended; *flags = RFLAGS after it (0 if not recorded). */
static uint64_t arith_eval(unsigned op, unsigned w, uint64_t a, uint64_t b, uint64_t c, uint64_t *flags)
{
	switch (w) {
	case 8: return arith_eval8(op, a, b, c, flags);
	case 16: return arith_eval16(op, a, b, c, flags);
	case 32: return arith_eval32(op, a, b, c, flags);
	default: return arith_eval64(op, a, b, c, flags);
	}
}

#endif
