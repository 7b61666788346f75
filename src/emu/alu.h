/* blvm emu engine: integer instruction semantics as pure functions.
 *
 * Conventions (every function below):
 *  - `size` is the operand size in bytes: 1, 2, 4 or 8 (each function says which it accepts).
 *  - Operands are passed zero-extended in uint64_t; bits above `size` are ignored.
 *  - Results are returned truncated to `size` (zero-extended in the uint64_t). The caller does the
 *    architectural write-back (8/16-bit writes merge, 32-bit writes zero-extend to 64).
 *  - `*rflags` is the full RFLAGS. On input it supplies CF (ADC, SBB, RCL, RCR) and the old values of the
 *    flags the instruction leaves alone; on output exactly the flags the instruction writes are replaced
 *    and every other bit is preserved. Where the SDM calls a flag "undefined" we still produce a value:
 *    the one the AMD EPYC host of tests/unit/alu_oracle.c produces (documented at each function), so that
 *    a guest sees the same flags under emu and kvm there. emu_undefined_flags() tells an oracle test which
 *    flags not to compare (an Intel host differs on several).
 *
 * Undefined behaviour references are to the Intel SDM Vol. 2 instruction pages (name given in each
 * comment) and, where Intel is silent, the AMD APM Vol. 3.
 *
 * The hot operations (group-1 ALU, INC/DEC/NEG/NOT, condition codes) are static inline here; the rest
 * live in alu.c. No function has undefined C behaviour for any input (all arithmetic is unsigned, no
 * shift by >= 64). */
#ifndef BLVM_EMU_ALU_H
#define BLVM_EMU_ALU_H

#include <stdint.h>

#define EMU_CF 0x001ull
#define EMU_PF 0x004ull
#define EMU_AF 0x010ull
#define EMU_ZF 0x040ull
#define EMU_SF 0x080ull
#define EMU_TF 0x100ull
#define EMU_IF 0x200ull
#define EMU_DF 0x400ull
#define EMU_OF 0x800ull
#define EMU_STATUS_FLAGS (EMU_CF | EMU_PF | EMU_AF | EMU_ZF | EMU_SF | EMU_OF)

/* ---------------------------------------------------------------- small helpers */

/* All ones at `size` bytes (1, 2, 4, 8). */
static inline uint64_t emu_size_mask(unsigned size)
{
    return ~0ull >> (64 - 8 * size);
}

/* The sign bit at `size` bytes. */
static inline uint64_t emu_size_sign(unsigned size)
{
    return 1ull << (8 * size - 1);
}

/* PF: set when the low 8 bits of the result hold an even number of ones (SDM Vol. 1, 3.4.3.1). */
static inline uint64_t emu_flag_pf(uint64_t r)
{
    return __builtin_parity((unsigned)(r & 0xff)) ? 0 : EMU_PF;
}

/* SF, ZF, PF of a result already truncated to `size`. SF is bit 7 of RFLAGS, so the sign bit of the
 * result shifted down to bit 7 is SF directly. */
static inline uint64_t emu_flags_szp(unsigned size, uint64_t r)
{
    return ((r >> (8 * size - 8)) & EMU_SF) | (r == 0 ? EMU_ZF : 0) | emu_flag_pf(r);
}

/* Sign-extend the low `from_size` bytes of v to 64 bits (CBW/CWDE/CDQE, CWD/CDQ/CQO, MOVSX/MOVSXD). */
static inline uint64_t emu_sign_extend(unsigned from_size, uint64_t v)
{
    unsigned sh = 64 - 8 * from_size;
    return (uint64_t)((int64_t)(v << sh) >> sh); /* arithmetic right shift: gcc-defined, no UB */
}

/* ---------------------------------------------------------------- group 1: ADD OR ADC SBB AND SUB XOR CMP */

/* Values are the group-1 ModRM.reg /digit (and the opcode row: 00 ADD, 08 OR, 10 ADC, ...). */
enum emu_alu_op {
    EMU_ALU_ADD, EMU_ALU_OR, EMU_ALU_ADC, EMU_ALU_SBB, EMU_ALU_AND, EMU_ALU_SUB, EMU_ALU_XOR, EMU_ALU_CMP
};

/* Flags of dst + src + c, r already truncated. */
static inline uint64_t emu__flags_add(unsigned size, uint64_t d, uint64_t s, uint64_t r)
{
    unsigned top = 8 * size - 1;
    uint64_t carries = (d & s) | ((d | s) & ~r);  /* carry out of every bit position */
    uint64_t ovf = (d ^ r) & (s ^ r);               /* both operands' sign differs from the result's */
    return ((carries >> top) & 1) | (((ovf >> top) & 1) << 11) | ((d ^ s ^ r) & EMU_AF) |
           emu_flags_szp(size, r);
}

/* Flags of dst - src - b, r already truncated. */
static inline uint64_t emu__flags_sub(unsigned size, uint64_t d, uint64_t s, uint64_t r)
{
    unsigned top = 8 * size - 1;
    uint64_t borrows = (~d & s) | (~(d ^ s) & r);  /* borrow out of every bit position */
    uint64_t ovf = (d ^ s) & (d ^ r);
    return ((borrows >> top) & 1) | (((ovf >> top) & 1) << 11) | ((d ^ s ^ r) & EMU_AF) |
           emu_flags_szp(size, r);
}

/* ADD OR ADC SBB AND SUB XOR CMP. CMP returns dst unchanged (flags of SUB); TEST is AND whose result the
 * caller discards. All six status flags are written. AND/OR/XOR: CF=OF=0, AF undefined (SDM "AND", "OR",
 * "XOR", "TEST"): we clear AF, which is what AMD and Intel hardware do. */
static inline uint64_t emu_alu(enum emu_alu_op op, unsigned size, uint64_t dst, uint64_t src,
                               uint64_t *rflags)
{
    uint64_t m = emu_size_mask(size), d = dst & m, s = src & m, r, f, c;
    switch (op) {
    case EMU_ALU_ADD:
        r = (d + s) & m;
        f = emu__flags_add(size, d, s, r);
        break;
    case EMU_ALU_ADC:
        c = *rflags & EMU_CF;
        r = (d + s + c) & m;
        f = emu__flags_add(size, d, s, r);
        break;
    case EMU_ALU_SUB:
    case EMU_ALU_CMP:
        r = (d - s) & m;
        f = emu__flags_sub(size, d, s, r);
        break;
    case EMU_ALU_SBB:
        c = *rflags & EMU_CF;
        r = (d - s - c) & m;
        f = emu__flags_sub(size, d, s, r);
        break;
    case EMU_ALU_OR:
        r = d | s;
        f = emu_flags_szp(size, r);
        break;
    case EMU_ALU_AND:
        r = d & s;
        f = emu_flags_szp(size, r);
        break;
    case EMU_ALU_XOR:
    default:
        r = d ^ s;
        f = emu_flags_szp(size, r);
        break;
    }
    *rflags = (*rflags & ~EMU_STATUS_FLAGS) | f;
    return op == EMU_ALU_CMP ? d : r;
}

/* ---------------------------------------------------------------- INC DEC NEG NOT */

enum emu_unary_op { EMU_INC, EMU_DEC, EMU_NEG, EMU_NOT };

/* INC/DEC: OF SF ZF AF PF written, CF preserved (SDM "INC", "DEC"). NEG: all six written, CF = (src != 0)
 * (SDM "NEG"). NOT: no flags touched (SDM "NOT"). */
static inline uint64_t emu_unary(enum emu_unary_op op, unsigned size, uint64_t v, uint64_t *rflags)
{
    uint64_t m = emu_size_mask(size), d = v & m, r, f;
    switch (op) {
    case EMU_INC:
        r = (d + 1) & m;
        f = emu__flags_add(size, d, 1, r) & ~EMU_CF;
        *rflags = (*rflags & ~(EMU_STATUS_FLAGS & ~EMU_CF)) | f;
        return r;
    case EMU_DEC:
        r = (d - 1) & m;
        f = emu__flags_sub(size, d, 1, r) & ~EMU_CF;
        *rflags = (*rflags & ~(EMU_STATUS_FLAGS & ~EMU_CF)) | f;
        return r;
    case EMU_NEG:
        r = (0 - d) & m;
        f = emu__flags_sub(size, 0, d, r);
        *rflags = (*rflags & ~EMU_STATUS_FLAGS) | f;
        return r;
    case EMU_NOT:
    default:
        return ~d & m;
    }
}

/* ---------------------------------------------------------------- conditions */

/* cc 0..15 as in Jcc/SETcc/CMOVcc (the low nibble of the opcode): O NO B AE E NE BE A S NS P NP L GE LE G.
 * Odd cc is the negation of cc-1. Returns 0 or 1. */
static inline int emu_cond(unsigned cc, uint64_t rflags)
{
    int t;
    switch ((cc >> 1) & 7) {
    case 0: t = (rflags & EMU_OF) != 0; break;                              /* O */
    case 1: t = (rflags & EMU_CF) != 0; break;                              /* B */
    case 2: t = (rflags & EMU_ZF) != 0; break;                              /* E */
    case 3: t = (rflags & (EMU_CF | EMU_ZF)) != 0; break;                   /* BE */
    case 4: t = (rflags & EMU_SF) != 0; break;                              /* S */
    case 5: t = (rflags & EMU_PF) != 0; break;                              /* P */
    case 6: t = ((rflags >> 7) ^ (rflags >> 11)) & 1; break;                /* L: SF != OF */
    default: t = (((rflags >> 7) ^ (rflags >> 11)) & 1) | ((rflags & EMU_ZF) != 0); break; /* LE */
    }
    return t ^ (int)(cc & 1);
}

/* ---------------------------------------------------------------- group 2: shifts and rotates */

/* Values are the group-2 ModRM.reg /digit; /6 (SAL) is an alias of /4 (SHL) (SDM "SAL/SAR/SHL/SHR"). */
enum emu_shift_op { EMU_ROL, EMU_ROR, EMU_RCL, EMU_RCR, EMU_SHL, EMU_SHR, EMU_SAL, EMU_SAR };

/* Sizes 1, 2, 4, 8. `count` is the raw CL / imm8 value: the function masks it (5 bits, 6 for size 8) and,
 * for RCL/RCR of 8/16-bit operands, reduces it mod 9/17 (SDM "RCL/RCR/ROL/ROR" pseudocode). A masked count
 * of 0 touches no flag. See alu.c for the flags left undefined and what we produce for them. */
uint64_t emu_shift(enum emu_shift_op op, unsigned size, uint64_t dst, uint64_t count, uint64_t *rflags);

/* SHLD/SHRD dst, src, count. Sizes 2, 4, 8. Count masked to 5 bits (6 for size 8). A 16-bit count above 16
 * leaves result and flags undefined (SDM "SHLD", "SHRD"): we reproduce the AMD host (alu.c). */
uint64_t emu_shld(unsigned size, uint64_t dst, uint64_t src, uint64_t count, uint64_t *rflags);
uint64_t emu_shrd(unsigned size, uint64_t dst, uint64_t src, uint64_t count, uint64_t *rflags);

/* ---------------------------------------------------------------- multiply and divide */

struct emu_wide { uint64_t lo, hi; };

/* One-operand MUL: a * b (a = AL/AX/EAX/RAX). Returns hi:lo, each truncated to size (size 1: AH = hi,
 * AL = lo; the caller assembles AX). CF = OF = (hi != 0); SF ZF AF PF undefined (SDM "MUL"): left
 * unchanged, as the AMD host does (all IMUL forms too). */
struct emu_wide emu_mul(unsigned size, uint64_t a, uint64_t b, uint64_t *rflags);
/* One-operand IMUL: signed a * b. CF = OF = (the full product != sign-extension of lo) (SDM "IMUL"). */
struct emu_wide emu_imul1(unsigned size, uint64_t a, uint64_t b, uint64_t *rflags);
/* Two/three-operand IMUL (sizes 2, 4, 8; 1 accepted too): truncated signed product, CF/OF as above. */
uint64_t emu_imul(unsigned size, uint64_t a, uint64_t b, uint64_t *rflags);

/* DIV/IDIV of hi:lo (AH:AL for size 1, DX:AX, EDX:EAX, RDX:RAX) by divisor. Returns 0 with quot and rem
 * truncated to size, or -1 for #DE (zero divisor or a quotient that does not fit; IDIV: the signed range,
 * so -2^(n-1) fits). On -1 quot and rem are not written. Signed/unsigned 128-by-64 without C UB. DIV/IDIV
 * leave all six status flags undefined (SDM "DIV", "IDIV"); these functions do not touch RFLAGS: the
 * caller applies emu_div_flags() after a successful divide (no flag changes when #DE is raised). */
int emu_div(unsigned size, uint64_t hi, uint64_t lo, uint64_t divisor, uint64_t *quot, uint64_t *rem);
int emu_idiv(unsigned size, uint64_t hi, uint64_t lo, uint64_t divisor, uint64_t *quot, uint64_t *rem);

/* RFLAGS after a DIV/IDIV that did not fault: the AMD host clears SF ZF PF, sets AF and keeps CF OF,
 * whatever the operands (checked by the oracle on 2e5 random divides). All six are undefined (SDM). */
static inline uint64_t emu_div_flags(uint64_t rflags)
{
    return (rflags & ~(EMU_SF | EMU_ZF | EMU_PF)) | EMU_AF;
}

/* ---------------------------------------------------------------- bit test and scan */

enum emu_bt_op { EMU_BT, EMU_BTS, EMU_BTR, EMU_BTC }; /* order of the 0F BA group /4../7 */

/* BT/BTS/BTR/BTC on a value: sizes 2, 4, 8; `bit` taken modulo size*8 (register destination, immediate
 * offset, and the in-operand offset of the memory form). CF = the selected bit before the operation,
 * ZF preserved, OF SF AF PF undefined (SDM "BT"): left unchanged, as the AMD host does. Returns the new
 * value (BT returns v unchanged). */
uint64_t emu_bt(enum emu_bt_op op, unsigned size, uint64_t v, uint64_t bit, uint64_t *rflags);

/* Memory form with a register bit offset: the bit offset register (its value at operand size, zero-
 * extended) is a signed integer; the operand actually accessed is the size-byte unit at
 * EA + size * floor(offset / (8*size)) (SDM "BT", "bit base / bit offset", and its note on 16/32-bit
 * access). Returns that byte displacement; the in-operand bit is offset mod size*8 (emu_bt takes care). */
int64_t emu_bt_mem_offset(unsigned size, uint64_t bit_signed_value);

/* BSF/BSR: sizes 2, 4, 8. src != 0: index of the lowest/highest set bit, ZF=0. src == 0: ZF=1 and the
 * destination is unchanged: returns old_dst truncated (SDM "BSF": "content of the destination operand is
 * undefined"; AMD APM documents "unchanged", and Intel hardware does the same). CF OF SF AF PF are
 * undefined: left unchanged, as the AMD host does.
 * NOTE for the executor: with a 32-bit operand and src == 0 the host leaves the WHOLE 64-bit register
 * unchanged (no zero-extension of the upper half; the oracle prints this), so skip the write-back when
 * src == 0 rather than writing the returned value with the usual 32-bit zero-extension. */
uint64_t emu_bsf(unsigned size, uint64_t src, uint64_t old_dst, uint64_t *rflags);
uint64_t emu_bsr(unsigned size, uint64_t src, uint64_t old_dst, uint64_t *rflags);

/* TZCNT/LZCNT (sizes 2, 4, 8): count; CF = (src == 0), ZF = (result == 0); OF SF PF AF undefined
 * (SDM "TZCNT", "LZCNT"): SF AF PF cleared and OF unchanged, as the AMD host does.
 * POPCNT (sizes 2, 4, 8): ZF = (src == 0), OF SF AF CF PF cleared (SDM "POPCNT"). */
uint64_t emu_tzcnt(unsigned size, uint64_t src, uint64_t *rflags);
uint64_t emu_lzcnt(unsigned size, uint64_t src, uint64_t *rflags);
uint64_t emu_popcnt(unsigned size, uint64_t src, uint64_t *rflags);

/* BSWAP: sizes 4 and 8. Size 2 is undefined (SDM "BSWAP": "When the BSWAP instruction references a 16-bit
 * register, the result is undefined"); we return 0, which is what Intel and AMD hardware put in the low
 * 16 bits. No flags. */
uint64_t emu_bswap(unsigned size, uint64_t v);

/* ---------------------------------------------------------------- BMI1 (sizes 4 and 8) */

/* AF/PF (undefined for all five): ANDN and BLSx clear AF and set PF from the result; BEXTR sets AF, clears
 * SF and sets PF from the result. Both as the AMD host does. */
/* ANDN: ~a & b. SF ZF by result, CF OF cleared, AF PF undefined (SDM "ANDN"). */
uint64_t emu_andn(unsigned size, uint64_t a, uint64_t b, uint64_t *rflags);
/* BEXTR: start = ctl[7:0], len = ctl[15:8]. ZF by result, CF OF cleared, AF SF PF undefined (SDM "BEXTR"). */
uint64_t emu_bextr(unsigned size, uint64_t src, uint64_t ctl, uint64_t *rflags);
/* BLSI: src & -src. ZF SF by result, CF = (src != 0), OF cleared, AF PF undefined. */
uint64_t emu_blsi(unsigned size, uint64_t src, uint64_t *rflags);
/* BLSMSK: src ^ (src - 1). SF by result, ZF cleared, CF = (src == 0), OF cleared, AF PF undefined. */
uint64_t emu_blsmsk(unsigned size, uint64_t src, uint64_t *rflags);
/* BLSR: src & (src - 1). ZF SF by result, CF = (src == 0), OF cleared, AF PF undefined. */
uint64_t emu_blsr(unsigned size, uint64_t src, uint64_t *rflags);

/* ---------------------------------------------------------------- undefined flags */

/* Flag classes: which SDM flags rule an instruction follows. A whole-instruction oracle maps each mnemonic
 * to its class (listed per class) and masks emu_undefined_flags() before comparing with the host. */
enum emu_flag_class {
    EMU_FC_ARITH,   /* ADD ADC SUB SBB CMP NEG INC DEC, NOT (no flags), POPCNT, CMOV/SETcc: none undefined */
    EMU_FC_LOGIC,   /* AND OR XOR TEST: AF */
    EMU_FC_SHIFT,   /* SHL SAL SHR: arg = raw count */
    EMU_FC_SAR,     /* SAR: arg = raw count (CF stays defined for counts >= size) */
    EMU_FC_ROTATE,  /* ROL ROR RCL RCR: arg = raw count */
    EMU_FC_SHXD,    /* SHLD SHRD: arg = raw count */
    EMU_FC_MUL,     /* MUL IMUL (all forms): SF ZF AF PF */
    EMU_FC_DIV,     /* DIV IDIV: all six */
    EMU_FC_BT,      /* BT BTS BTR BTC: OF SF AF PF */
    EMU_FC_BSCAN,   /* BSF BSR: CF OF SF AF PF */
    EMU_FC_CNT,     /* TZCNT LZCNT: OF SF AF PF */
    EMU_FC_ANDN,    /* ANDN BLSI BLSR BLSMSK: AF PF */
    EMU_FC_BEXTR,   /* BEXTR: AF SF PF */
    EMU_FC_BSWAP,   /* BSWAP: arg unused; size 2 -> EMU_UNDEF_RESULT */
};

/* Set in emu_undefined_flags()'s answer when the destination value itself is undefined (16-bit SHLD/SHRD
 * with a count above 16, 16-bit BSWAP); never a real RFLAGS bit. */
#define EMU_UNDEF_RESULT (1ull << 63)

/* The status flags the SDM leaves undefined for an instruction of class `cls` at `size` with `arg` (the raw
 * count for shifts/rotates/SHLD/SHRD, else ignored), possibly with EMU_UNDEF_RESULT. */
uint64_t emu_undefined_flags(enum emu_flag_class cls, unsigned size, uint64_t arg);

#endif
