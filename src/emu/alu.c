/* blvm emu engine: integer instruction semantics (the non-inline part of alu.h).
 *
 * Every function is pure: operands in, result out, RFLAGS updated through the pointer. All arithmetic is on
 * unsigned types and every shift goes through shl()/shr(), which define a shift by >= 64 as 0, so no input
 * triggers C undefined behaviour. Flags the SDM leaves undefined still get a value; the value chosen is what
 * the AMD EPYC host of the oracle test (tests/unit/alu_oracle.c) produces wherever that is cheap, so that a
 * guest sees the same bytes under emu and kvm on such a host. emu_undefined_flags() lists them. */
#include "emu/alu.h"

static inline uint64_t shl(uint64_t x, unsigned n)
{
    return n >= 64 ? 0 : x << n;
}

static inline uint64_t shr(uint64_t x, unsigned n)
{
    return n >= 64 ? 0 : x >> n;
}

/* Replace the flags in `which` with `val` (val must lie inside which). */
static inline void set_flags(uint64_t *rflags, uint64_t which, uint64_t val)
{
    *rflags = (*rflags & ~which) | val;
}

static inline unsigned count_mask(unsigned size)
{
    return size == 8 ? 0x3f : 0x1f;
}

/* ---------------------------------------------------------------- shifts and rotates */

/* SDM "RCL/RCR/ROL/ROR" and "SAL/SAR/SHL/SHR":
 *  - The count is masked to 5 bits (6 with REX.W); a masked count of 0 affects no flag.
 *  - ROL/ROR rotate by masked count mod size; CF (the bit rotated into the far end) is written whenever the
 *    masked count is non-zero, even when count mod size is 0. RCL/RCR rotate size+1 bits through CF by
 *    (masked count) mod 9 / mod 17 / as is; with tempCOUNT 0 the value and CF stay as they were.
 *    SF ZF AF PF are never touched by rotates.
 *  - OF is defined only for a masked count of 1. For every count we write a formula that gives the defined
 *    count-1 value and, for other counts, what the AMD EPYC oracle host produces: left shifts/rotates
 *    MSB(result) ^ CF; right shifts/rotates the XOR of the two top bits of the result (so SHR gives 0 for
 *    counts > 1); SAR 0.
 *  - Shifts: CF = last bit shifted out (undefined for SHL/SHR with count >= size: we produce what shifting
 *    one bit at a time gives, as the host does: the last bit out for count == size, 0 beyond; SAR keeps
 *    shifting out the sign bit); SF ZF PF by result; AF undefined for a non-zero count: SHIFT_AF. */

/* AF after a non-zero-count SHL/SHR/SAR/SHLD/SHRD, undefined per SDM: the AMD host always sets it. */
#define SHIFT_AF EMU_AF

uint64_t emu_shift(enum emu_shift_op op, unsigned size, uint64_t dst, uint64_t count, uint64_t *rflags)
{
    unsigned bits = 8 * size, top = bits - 1;
    uint64_t m = emu_size_mask(size), d = dst & m, r, cf, of;
    unsigned c = (unsigned)(count & count_mask(size)), n;

    if (c == 0)
        return d;
    switch (op) {
    case EMU_ROL:
        n = c & top;
        r = n ? ((d << n) | (d >> (bits - n))) & m : d;
        cf = r & 1;
        of = ((r >> top) ^ cf) & 1;
        set_flags(rflags, EMU_CF | EMU_OF, cf | (of << 11));
        return r;
    case EMU_ROR:
        n = c & top;
        r = n ? ((d >> n) | (d << (bits - n))) & m : d;
        cf = r >> top;
        of = ((r >> top) ^ (r >> (top - 1))) & 1;
        set_flags(rflags, EMU_CF | EMU_OF, cf | (of << 11));
        return r;
    case EMU_RCL:
        n = size == 1 ? c % 9 : size == 2 ? c % 17 : c;
        cf = *rflags & EMU_CF;
        if (n) {
            r = (shl(d, n) | shl(cf, n - 1) | shr(d, bits + 1 - n)) & m;
            cf = (d >> (bits - n)) & 1;
        } else {
            r = d;
        }
        of = ((r >> top) ^ cf) & 1;
        set_flags(rflags, EMU_CF | EMU_OF, cf | (of << 11));
        return r;
    case EMU_RCR:
        n = size == 1 ? c % 9 : size == 2 ? c % 17 : c;
        cf = *rflags & EMU_CF;
        if (n) {
            r = (shr(d, n) | shl(cf, bits - n) | shl(d, bits + 1 - n)) & m;
            cf = (d >> (n - 1)) & 1;
        } else {
            r = d;
        }
        of = ((r >> top) ^ (r >> (top - 1))) & 1;
        set_flags(rflags, EMU_CF | EMU_OF, cf | (of << 11));
        return r;
    case EMU_SHL:
    case EMU_SAL:
        r = shl(d, c) & m;
        cf = c <= bits ? (d >> (bits - c)) & 1 : 0;
        of = ((r >> top) ^ cf) & 1;
        break;
    case EMU_SHR:
        r = d >> c;            /* c <= 63 */
        cf = (d >> (c - 1)) & 1;
        of = ((r >> top) ^ (r >> (top - 1))) & 1; /* count 1: MSB(original); otherwise 0 */
        break;
    case EMU_SAR:
    default: {
        uint64_t sd = emu_sign_extend(size, d);
        unsigned k = c > top ? top : c;     /* shifting past the width gives all sign bits */
        r = (uint64_t)((int64_t)sd >> k) & m;
        cf = (uint64_t)((int64_t)sd >> (c - 1 > top ? top : c - 1)) & 1;
        of = 0;
        break;
    }
    }
    set_flags(rflags, EMU_STATUS_FLAGS, cf | (of << 11) | SHIFT_AF | emu_flags_szp(size, r));
    return r;
}

/* SDM "SHLD", "SHRD": count masked to 5 bits (6 with REX.W); 0 touches nothing. CF = last bit shifted out of
 * dst, SF ZF PF by result, OF = sign change for a count of 1, AF undefined (SHIFT_AF). OF for counts > 1 is
 * undefined: as for SHL/SHR we write what the AMD host does (SHLD: MSB(result) ^ CF; SHRD: XOR of the two
 * top bits of the result), both equal to the sign change for a count of 1.
 * A count greater than the operand size (only possible at 16 bits: 17..31) makes result and flags undefined.
 * We do what the AMD host does: SHLD shifts the 48-bit value dst:src:src left and keeps its top 16 bits,
 * SHRD shifts src:src:dst right and keeps the low 16 bits (Intel hardware reportedly uses dst:src:dst);
 * CF = 0, SHLD OF = 0, SHRD OF as above. (16-bit SHLD by exactly 16 is defined, result = src, and the host
 * sets OF = CF there, so we do too.) */
static uint64_t shxd_flags(unsigned size, uint64_t r, uint64_t cf, uint64_t of, uint64_t *rflags)
{
    set_flags(rflags, EMU_STATUS_FLAGS, cf | (of << 11) | SHIFT_AF | emu_flags_szp(size, r));
    return r;
}

uint64_t emu_shld(unsigned size, uint64_t dst, uint64_t src, uint64_t count, uint64_t *rflags)
{
    unsigned bits = 8 * size, top = bits - 1;
    uint64_t m = emu_size_mask(size), d = dst & m, s = src & m, r, cf;
    unsigned c = (unsigned)(count & count_mask(size));

    if (c == 0)
        return d;
    if (c > bits) { /* 16-bit only */
        uint64_t w = (d << 32) | (s << 16) | s;
        r = (w >> (32 - c)) & m;
        return shxd_flags(size, r, 0, 0, rflags);
    }
    r = (shl(d, c) | shr(s, bits - c)) & m;
    cf = (d >> (bits - c)) & 1;
    return shxd_flags(size, r, cf, c == 16 && size == 2 ? cf : ((r >> top) ^ cf) & 1, rflags);
}

uint64_t emu_shrd(unsigned size, uint64_t dst, uint64_t src, uint64_t count, uint64_t *rflags)
{
    unsigned bits = 8 * size, top = bits - 1;
    uint64_t m = emu_size_mask(size), d = dst & m, s = src & m, r, cf;
    unsigned c = (unsigned)(count & count_mask(size));

    if (c == 0)
        return d;
    if (c > bits) { /* 16-bit only */
        uint64_t w = (s << 32) | (s << 16) | d;
        r = (w >> c) & m;
        cf = 0;
    } else {
        r = (shr(d, c) | shl(s, bits - c)) & m;
        cf = (d >> (c - 1)) & 1;
    }
    return shxd_flags(size, r, cf, ((r >> top) ^ (r >> (top - 1))) & 1, rflags);
}

/* ---------------------------------------------------------------- multiply and divide */

/* SDM "MUL", "IMUL": CF = OF = whether the high half is significant; SF ZF AF PF undefined: we leave them
 * unchanged, as the AMD host does. */

struct emu_wide emu_mul(unsigned size, uint64_t a, uint64_t b, uint64_t *rflags)
{
    unsigned bits = 8 * size;
    uint64_t m = emu_size_mask(size);
    unsigned __int128 p = (unsigned __int128)(a & m) * (b & m);
    struct emu_wide w = { (uint64_t)p & m, (uint64_t)(p >> bits) & m };
    uint64_t cf = w.hi != 0;
    set_flags(rflags, EMU_CF | EMU_OF, cf | (cf << 11));
    return w;
}

struct emu_wide emu_imul1(unsigned size, uint64_t a, uint64_t b, uint64_t *rflags)
{
    unsigned bits = 8 * size;
    uint64_t m = emu_size_mask(size);
    /* Signed product of two sign-extended 64-bit values always fits in 128 bits; compute it in unsigned
     * (two's complement wrap-around is exact modulo 2^128). */
    unsigned __int128 p = (unsigned __int128)(__int128)(int64_t)emu_sign_extend(size, a) *
                          (unsigned __int128)(__int128)(int64_t)emu_sign_extend(size, b);
    struct emu_wide w = { (uint64_t)p & m, (uint64_t)(p >> bits) & m };
    /* Significant high half: the product differs from the sign extension of its low half. */
    unsigned __int128 ext = (unsigned __int128)(__int128)(int64_t)emu_sign_extend(size, w.lo);
    uint64_t cf = p != ext;
    set_flags(rflags, EMU_CF | EMU_OF, cf | (cf << 11));
    return w;
}

uint64_t emu_imul(unsigned size, uint64_t a, uint64_t b, uint64_t *rflags)
{
    return emu_imul1(size, a, b, rflags).lo;
}

/* SDM "DIV": #DE if the divisor is 0 or the quotient does not fit the destination. */
int emu_div(unsigned size, uint64_t hi, uint64_t lo, uint64_t divisor, uint64_t *quot, uint64_t *rem)
{
    uint64_t m = emu_size_mask(size), v = divisor & m;

    if (v == 0)
        return -1;
    if (size == 8) {
        if (hi >= v) /* quotient >= 2^64 */
            return -1;
        unsigned __int128 n = ((unsigned __int128)hi << 64) | lo;
        *quot = (uint64_t)(n / v);
        *rem = (uint64_t)(n % v);
        return 0;
    }
    unsigned bits = 8 * size;
    uint64_t n = ((hi & m) << bits) | (lo & m), q = n / v;
    if (q > m)
        return -1;
    *quot = q;
    *rem = n % v;
    return 0;
}

/* SDM "IDIV": signed; #DE if the divisor is 0 or the quotient is outside [-2^(n-1), 2^(n-1)-1] (the
 * remainder has the sign of the dividend). Done on magnitudes so INT_MIN / -1 has no C UB. */
int emu_idiv(unsigned size, uint64_t hi, uint64_t lo, uint64_t divisor, uint64_t *quot, uint64_t *rem)
{
    uint64_t m = emu_size_mask(size), sign = emu_size_sign(size), v = divisor & m;
    unsigned bits = 8 * size;

    if (v == 0)
        return -1;
    int nneg = (hi & sign) != 0, vneg = (v & sign) != 0;
    uint64_t vmag = vneg ? (0 - v) & m : v, qmag, rmag;
    if (size == 8) {
        unsigned __int128 n = ((unsigned __int128)hi << 64) | lo;
        if (nneg)
            n = 0 - n;
        unsigned __int128 q = n / vmag;
        if (q >> 64)
            return -1;
        qmag = (uint64_t)q;
        rmag = (uint64_t)(n % vmag);
    } else {
        uint64_t n = ((hi & m) << bits) | (lo & m);
        if (nneg)
            n = (0 - n) & emu_size_mask(2 * size == 8 ? 8 : 2 * size);
        uint64_t q = n / vmag;
        if (q > m)
            return -1;
        qmag = q;
        rmag = n % vmag;
    }
    if (nneg != vneg) {
        if (qmag > sign)
            return -1;
        *quot = (0 - qmag) & m;
    } else {
        if (qmag >= sign)
            return -1;
        *quot = qmag;
    }
    *rem = nneg ? (0 - rmag) & m : rmag;
    return 0;
}

/* ---------------------------------------------------------------- bit test and scan */

/* SDM "BT"/"BTS"/"BTR"/"BTC": CF = selected bit, ZF unaffected, OF SF AF PF undefined: left unchanged. */
uint64_t emu_bt(enum emu_bt_op op, unsigned size, uint64_t v, uint64_t bit, uint64_t *rflags)
{
    uint64_t m = emu_size_mask(size), d = v & m;
    unsigned n = (unsigned)(bit & (8 * size - 1));
    uint64_t b = 1ull << n;

    set_flags(rflags, EMU_CF, (d >> n) & 1);
    switch (op) {
    case EMU_BTS: return d | b;
    case EMU_BTR: return d & ~b;
    case EMU_BTC: return d ^ b;
    case EMU_BT:
    default: return d;
    }
}

int64_t emu_bt_mem_offset(unsigned size, uint64_t bit_signed_value)
{
    int64_t off = (int64_t)emu_sign_extend(size, bit_signed_value);
    unsigned lg = size == 2 ? 4 : size == 4 ? 5 : 6;
    /* floor division by the operand's bit count (arithmetic shift, not C's truncating division), times the
     * operand size in bytes. |off >> lg| < 2^58 so the product cannot overflow. */
    return (off >> lg) * (int64_t)size;
}

/* SDM "BSF"/"BSR": ZF = (src == 0); destination undefined for src == 0 (AMD APM: unchanged; we keep it
 * unchanged); CF OF SF AF PF undefined: see BSCAN_FLAGS. */
uint64_t emu_bsf(unsigned size, uint64_t src, uint64_t old_dst, uint64_t *rflags)
{
    uint64_t m = emu_size_mask(size), s = src & m;
    if (s == 0) {
        set_flags(rflags, EMU_ZF, EMU_ZF);
        return old_dst & m;
    }
    set_flags(rflags, EMU_ZF, 0);
    return (uint64_t)__builtin_ctzll(s);
}

uint64_t emu_bsr(unsigned size, uint64_t src, uint64_t old_dst, uint64_t *rflags)
{
    uint64_t m = emu_size_mask(size), s = src & m;
    if (s == 0) {
        set_flags(rflags, EMU_ZF, EMU_ZF);
        return old_dst & m;
    }
    set_flags(rflags, EMU_ZF, 0);
    return (uint64_t)(63 - __builtin_clzll(s));
}

/* SDM "TZCNT"/"LZCNT": CF = (src == 0), ZF = (result == 0), OF SF PF AF undefined: as the AMD host does, we
 * clear SF AF PF and leave OF unchanged. */
#define CNT_FLAGS (EMU_CF | EMU_ZF | EMU_SF | EMU_AF | EMU_PF)
uint64_t emu_tzcnt(unsigned size, uint64_t src, uint64_t *rflags)
{
    uint64_t s = src & emu_size_mask(size);
    uint64_t r = s ? (uint64_t)__builtin_ctzll(s) : 8 * size;
    set_flags(rflags, CNT_FLAGS, (s == 0 ? EMU_CF : 0) | (r == 0 ? EMU_ZF : 0));
    return r;
}

uint64_t emu_lzcnt(unsigned size, uint64_t src, uint64_t *rflags)
{
    uint64_t s = src & emu_size_mask(size);
    uint64_t r = s ? (uint64_t)__builtin_clzll(s) - (64 - 8 * size) : 8 * size;
    set_flags(rflags, CNT_FLAGS, (s == 0 ? EMU_CF : 0) | (r == 0 ? EMU_ZF : 0));
    return r;
}

/* SDM "POPCNT": ZF = (src == 0), OF SF AF CF PF cleared. */
uint64_t emu_popcnt(unsigned size, uint64_t src, uint64_t *rflags)
{
    uint64_t s = src & emu_size_mask(size);
    set_flags(rflags, EMU_STATUS_FLAGS, s == 0 ? EMU_ZF : 0);
    return (uint64_t)__builtin_popcountll(s);
}

uint64_t emu_bswap(unsigned size, uint64_t v)
{
    switch (size) {
    case 8: return __builtin_bswap64(v);
    case 4: return __builtin_bswap32((uint32_t)v);
    default: return 0; /* 16-bit BSWAP: undefined (SDM "BSWAP"); hardware zeroes the low 16 bits */
    }
}

/* ---------------------------------------------------------------- BMI1 */

/* SDM "ANDN", "BLSI", "BLSMSK", "BLSR": AF and PF undefined; we clear AF and set PF from the result, as the
 * AMD host does. */
uint64_t emu_andn(unsigned size, uint64_t a, uint64_t b, uint64_t *rflags)
{
    uint64_t r = ~a & b & emu_size_mask(size);
    set_flags(rflags, EMU_STATUS_FLAGS, emu_flags_szp(size, r));
    return r;
}

uint64_t emu_bextr(unsigned size, uint64_t src, uint64_t ctl, uint64_t *rflags)
{
    unsigned bits = 8 * size, start = ctl & 0xff, len = (ctl >> 8) & 0xff;
    uint64_t m = emu_size_mask(size), r = start >= bits ? 0 : (src & m) >> start;
    if (len < bits)
        r &= (1ull << len) - 1;
    /* SDM "BEXTR": ZF by result, CF OF cleared, AF SF PF undefined. The AMD host sets AF, clears SF and sets
     * PF from the result; so do we. */
    set_flags(rflags, EMU_STATUS_FLAGS, EMU_AF | (emu_flags_szp(size, r) & ~EMU_SF));
    return r;
}

uint64_t emu_blsi(unsigned size, uint64_t src, uint64_t *rflags)
{
    uint64_t m = emu_size_mask(size), s = src & m, r = s & (0 - s);
    set_flags(rflags, EMU_STATUS_FLAGS, (s != 0 ? EMU_CF : 0) | emu_flags_szp(size, r));
    return r;
}

uint64_t emu_blsmsk(unsigned size, uint64_t src, uint64_t *rflags)
{
    uint64_t m = emu_size_mask(size), s = src & m, r = (s ^ (s - 1)) & m;
    set_flags(rflags, EMU_STATUS_FLAGS, (s == 0 ? EMU_CF : 0) | (emu_flags_szp(size, r) & ~EMU_ZF));
    return r;
}

uint64_t emu_blsr(unsigned size, uint64_t src, uint64_t *rflags)
{
    uint64_t m = emu_size_mask(size), s = src & m, r = s & (s - 1);
    set_flags(rflags, EMU_STATUS_FLAGS, (s == 0 ? EMU_CF : 0) | emu_flags_szp(size, r));
    return r;
}

/* ---------------------------------------------------------------- undefined flags */

uint64_t emu_undefined_flags(enum emu_flag_class cls, unsigned size, uint64_t arg)
{
    unsigned c = (unsigned)(arg & count_mask(size));
    switch (cls) {
    case EMU_FC_ARITH: return 0;
    case EMU_FC_LOGIC: return EMU_AF;
    case EMU_FC_SHIFT: /* SDM "SAL/SAR/SHL/SHR" */
        if (c == 0)
            return 0;
        return EMU_AF | (c != 1 ? EMU_OF : 0) | (c >= 8 * size ? EMU_CF : 0);
    case EMU_FC_SAR:
        return c == 0 ? 0 : EMU_AF | (c != 1 ? EMU_OF : 0);
    case EMU_FC_ROTATE: /* SDM "RCL/RCR/ROL/ROR" */
        return c > 1 ? EMU_OF : 0;
    case EMU_FC_SHXD: /* SDM "SHLD", "SHRD" */
        if (c == 0)
            return 0;
        if (c > 8 * size)
            return EMU_STATUS_FLAGS | EMU_UNDEF_RESULT;
        return EMU_AF | (c != 1 ? EMU_OF : 0);
    case EMU_FC_MUL: return EMU_SF | EMU_ZF | EMU_AF | EMU_PF;
    case EMU_FC_DIV: return EMU_STATUS_FLAGS;
    case EMU_FC_BT: return EMU_OF | EMU_SF | EMU_AF | EMU_PF;
    case EMU_FC_BSCAN: return EMU_CF | EMU_OF | EMU_SF | EMU_AF | EMU_PF;
    case EMU_FC_CNT: return EMU_OF | EMU_SF | EMU_AF | EMU_PF;
    case EMU_FC_ANDN: return EMU_AF | EMU_PF;
    case EMU_FC_BEXTR: return EMU_AF | EMU_SF | EMU_PF;
    case EMU_FC_BSWAP: return size == 2 ? EMU_UNDEF_RESULT : 0;
    }
    return EMU_STATUS_FLAGS;
}
