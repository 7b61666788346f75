/* alu_oracle: the host CPU is the oracle for src/emu/alu.[ch].
 *
 * Every function of alu.h is run against the real instruction at every operand size it supports, on all
 * pairs of edge values and on random values (fixed-seed xorshift, seed printed, override with
 * ALU_ORACLE_SEED=n). Input RFLAGS are loaded with popf (random status flags; CF both 0 and 1 for the
 * instructions that read it) and read back with pushf. Results and status flags are compared, masking only
 * what emu_undefined_flags() says the SDM leaves undefined. The emu side gets extra non-status RFLAGS bits
 * set, to check that it preserves every bit it does not own.
 *
 * The undefined flags (and the undefined 16-bit SHLD/SHRD results) are not compared, but the "note:" lines
 * count how often the host's value differs from emu's: alu.c reproduces the AMD EPYC host, so on such a host
 * they are all 0, and ALU_ORACLE_STRICT=1 compares them too (expect differences on an Intel host).
 * DIV/IDIV compare the #DE decision (the host's SIGFPE) and quotient/remainder; emu_div_flags() against the
 * host's flags is noted (strict: compared).
 *
 * Exit 0: all match. Exit 1: the first 20 mismatches are printed. */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/alu.h"

/* ------------------------------------------------------------------------------------------ harness */

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

/* Non-status bits set only on the emu side's input (TF DF AC ID and a reserved high bit): must come back
 * unchanged. The host never sees them (TF would trap, DF would break the compiler's assumptions). */
#define EXTRA (EMU_TF | EMU_DF | (1ull << 18) | (1ull << 21) | (1ull << 40))

static uint64_t base_flags; /* the host's RFLAGS with status flags cleared (bit 1, IF) */

static uint64_t rnd_flags(void)
{
    return base_flags | (rnd() & EMU_STATUS_FLAGS);
}

static int nfail;
static unsigned long nruns;
static int strict; /* ALU_ORACLE_STRICT=1: compare undefined flags and results too */

static void dump_flags(char *buf, uint64_t f)
{
    sprintf(buf, "%c%c%c%c%c%c", f & EMU_OF ? 'O' : '-', f & EMU_SF ? 'S' : '-', f & EMU_ZF ? 'Z' : '-',
            f & EMU_AF ? 'A' : '-', f & EMU_PF ? 'P' : '-', f & EMU_CF ? 'C' : '-');
}

/* Statistics on the flags we do not compare: how often the host's value differs from ours. */
struct undef_stat {
    unsigned long masked[12], differ[12];
    unsigned long undef_results, undef_results_equal;
};

static struct undef_stat ustat;

/* Compare one run. got_f is the emu's output for input fin ^ EXTRA; want_f the host's for input fin. */
static void check(const char *op, unsigned size, uint64_t a, uint64_t b, uint64_t c, uint64_t fin,
                  uint64_t got, uint64_t got_f, uint64_t want, uint64_t want_f, uint64_t undef)
{
    uint64_t fmask = strict ? ~0ull : ~(undef & EMU_STATUS_FLAGS);
    int bad = ((got_f ^ EXTRA) & fmask) != (want_f & fmask);
    nruns++;
    if (strict || !(undef & EMU_UNDEF_RESULT)) {
        bad |= got != want;
    } else {
        ustat.undef_results++;
        ustat.undef_results_equal += got == want;
    }
    for (int i = 0; i < 12; i++) {
        if ((undef >> i) & 1 & (EMU_STATUS_FLAGS >> i)) {
            ustat.masked[i]++;
            ustat.differ[i] += ((got_f ^ want_f) >> i) & 1;
        }
    }
    if (!bad)
        return;
    if (nfail++ < 20) {
        char fi[8], fg[8], fw[8];
        dump_flags(fi, fin);
        dump_flags(fg, got_f);
        dump_flags(fw, want_f);
        printf("MISMATCH %s size %u: a=%#" PRIx64 " b=%#" PRIx64 " c=%#" PRIx64 " flags in %s: got %#" PRIx64
               " %s (rflags %#" PRIx64 "), want %#" PRIx64 " %s (rflags %#" PRIx64 ")%s\n",
               op, size, a, b, c, fi, got, fg, (uint64_t)(got_f ^ EXTRA), want, fw, want_f,
               (undef & EMU_STATUS_FLAGS) ? " [some flags masked]" : "");
    }
}

static const char *const flag_names[12] = { "CF", "", "PF", "", "AF", "", "ZF", "SF", "", "", "", "OF" };

/* Print the family summary and, as information, how the host's undefined flags compare with ours. */
static void summary(const char *fam, unsigned nsizes, unsigned long min_cases, unsigned long runs0,
                    int fails0)
{
    printf("%s: %u sizes x >= %lu cases (%lu runs) %s\n", fam, nsizes, min_cases, nruns - runs0,
           nfail == fails0 ? "ok" : "FAILED");
    char line[256] = "";
    for (int i = 0; i < 12; i++) {
        if (ustat.masked[i])
            snprintf(line + strlen(line), sizeof line - strlen(line), " %s %lu/%lu", flag_names[i],
                     ustat.differ[i], ustat.masked[i]);
    }
    if (line[0])
        printf("  note: undefined flags where the host's value differs from emu's:%s\n", line);
    if (ustat.undef_results)
        printf("  note: undefined results: emu equals the host in %lu/%lu cases\n", ustat.undef_results_equal,
               ustat.undef_results);
    memset(&ustat, 0, sizeof ustat);
}

/* Edge values at a size: 0..3, all ones, sign boundaries, 0x55../0xaa.., powers of two +-1 and negated. */
static unsigned edges(unsigned size, uint64_t *out)
{
    static const unsigned ks[] = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 62, 63 };
    uint64_t m = emu_size_mask(size), sign = emu_size_sign(size);
    uint64_t cand[128];
    unsigned n = 0, k = 0;
    cand[n++] = 0; cand[n++] = 1; cand[n++] = 2; cand[n++] = 3;
    cand[n++] = m; cand[n++] = m - 1; cand[n++] = sign - 1; cand[n++] = sign; cand[n++] = sign + 1;
    cand[n++] = 0x5555555555555555ull & m; cand[n++] = 0xaaaaaaaaaaaaaaaaull & m;
    for (unsigned i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        if (ks[i] >= 8 * size)
            break;
        uint64_t p = 1ull << ks[i];
        cand[n++] = p; cand[n++] = p - 1; cand[n++] = p + 1; cand[n++] = (0 - p) & m;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned j;
        for (j = 0; j < k && out[j] != cand[i]; j++)
            ;
        if (j == k)
            out[k++] = cand[i];
    }
    return k;
}

/* A random operand: uniform, sparse, small (positive or negative) or near a power of two. */
static uint64_t rnd_operand(unsigned size)
{
    uint64_t m = emu_size_mask(size), r = rnd();
    switch (rnd() & 3) {
    case 0: return r & m;
    case 1: return r & rnd() & rnd() & m;
    case 2: return (r & 1 ? (uint64_t)(r >> 56) : 0 - (r >> 56)) & m;
    default: return ((1ull << (r % (8 * size))) + (uint64_t)(int64_t)(int8_t)(r >> 8)) & m;
    }
}

#define NRAND 1000

/* Operand pairs at a size: all pairs of edges, then NRAND random pairs. */
#define MAXCASES 16384
static uint64_t pa[MAXCASES], pb[MAXCASES];
static unsigned pairs(unsigned size)
{
    uint64_t e[128];
    unsigned ne = edges(size, e), n = 0;
    for (unsigned i = 0; i < ne; i++)
        for (unsigned j = 0; j < ne; j++) {
            pa[n] = e[i];
            pb[n++] = e[j];
        }
    for (unsigned i = 0; i < NRAND; i++) {
        pa[n] = rnd_operand(size);
        pb[n++] = rnd_operand(size);
    }
    return n;
}

/* Shift-style cases: edge values and random values, each with counts 0..2*bits+1 and some random counts
 * (the full 64-bit random value goes to emu, its low byte (CL) to the host). */
static unsigned shift_cases(unsigned size, int wide_counts)
{
    uint64_t e[128];
    unsigned ne = edges(size, e), n = 0, bits = 8 * size;
    unsigned maxc = wide_counts ? 2 * bits + 1 : bits + 1;
    for (unsigned i = 0; i < ne + 40; i++) {
        uint64_t v = i < ne ? e[i] : rnd_operand(size);
        for (unsigned c = 0; c <= maxc && n < MAXCASES; c++) {
            pa[n] = v;
            pb[n++] = c;
        }
        for (unsigned c = 0; c < 4 && n < MAXCASES; c++) {
            pa[n] = v;
            pb[n++] = rnd();
        }
    }
    for (unsigned i = 0; i < NRAND && n < MAXCASES; i++) {
        pa[n] = rnd_operand(size);
        pb[n++] = rnd() & (rnd() & 1 ? 0xff : 0x3f);
    }
    return n;
}

static const unsigned sizes_all[] = { 1, 2, 4, 8 };

/* ------------------------------------------------------------------------------------------ native */

/* The asm pushes below the stack pointer: step over the 128-byte red zone first, since the compiler may keep
 * live data there. Only register operands are used, so no operand address is %rsp-relative. */
#define ENTER "lea -128(%%rsp), %%rsp\n\tpush %[f]\n\tpopfq\n\t"
#define LEAVE "\n\tpushfq\n\tpop %[f]\n\tlea 128(%%rsp), %%rsp"

typedef uint64_t (*bin_fn)(uint64_t d, uint64_t s, uint64_t *f);
typedef uint64_t (*un_fn)(uint64_t d, uint64_t *f);

/* d = d OP s */
#define BIN1(fn, insn, T)                                                                         \
    static uint64_t fn(uint64_t d, uint64_t s, uint64_t *fl)                                      \
    {                                                                                             \
        T dd = (T)d, ss = (T)s;                                                                   \
        uint64_t f = *fl;                                                                         \
        __asm__ volatile(ENTER insn " %[s], %[d]" LEAVE : [d] "+r"(dd), [f] "+r"(f)              \
                         : [s] "r"(ss) : "cc", "memory");                                         \
        *fl = f;                                                                                  \
        return dd;                                                                                \
    }
#define BIN(name, mn)                                                                             \
    BIN1(name##_1, mn "b", uint8_t) BIN1(name##_2, mn "w", uint16_t) BIN1(name##_4, mn "l", uint32_t) \
    BIN1(name##_8, mn "q", uint64_t)                                                              \
    static const bin_fn name[4] = { name##_1, name##_2, name##_4, name##_8 };
/* Sizes 2, 4, 8 only (index 0 unused). */
#define BIN_W(name, mn)                                                                           \
    BIN1(name##_2, mn "w", uint16_t) BIN1(name##_4, mn "l", uint32_t) BIN1(name##_8, mn "q", uint64_t) \
    static const bin_fn name[4] = { 0, name##_2, name##_4, name##_8 };

/* d = OP d */
#define UN1(fn, insn, T)                                                                          \
    static uint64_t fn(uint64_t d, uint64_t *fl)                                                  \
    {                                                                                             \
        T dd = (T)d;                                                                              \
        uint64_t f = *fl;                                                                         \
        __asm__ volatile(ENTER insn " %[d]" LEAVE : [d] "+r"(dd), [f] "+r"(f) : : "cc", "memory"); \
        *fl = f;                                                                                  \
        return dd;                                                                                \
    }
#define UN(name, mn)                                                                              \
    UN1(name##_1, mn "b", uint8_t) UN1(name##_2, mn "w", uint16_t) UN1(name##_4, mn "l", uint32_t) \
    UN1(name##_8, mn "q", uint64_t)                                                               \
    static const un_fn name[4] = { name##_1, name##_2, name##_4, name##_8 };

/* d = d OP cl */
#define SH1(fn, insn, T)                                                                          \
    static uint64_t fn(uint64_t d, uint64_t c, uint64_t *fl)                                      \
    {                                                                                             \
        T dd = (T)d;                                                                              \
        uint8_t cl = (uint8_t)c;                                                                  \
        uint64_t f = *fl;                                                                         \
        __asm__ volatile(ENTER insn " %%cl, %[d]" LEAVE : [d] "+r"(dd), [f] "+r"(f) : "c"(cl)    \
                         : "cc", "memory");                                                       \
        *fl = f;                                                                                  \
        return dd;                                                                                \
    }
#define SH(name, mn)                                                                              \
    SH1(name##_1, mn "b", uint8_t) SH1(name##_2, mn "w", uint16_t) SH1(name##_4, mn "l", uint32_t) \
    SH1(name##_8, mn "q", uint64_t)                                                               \
    static const bin_fn name[4] = { name##_1, name##_2, name##_4, name##_8 };

/* d = SHxD(d, s, cl) */
typedef uint64_t (*shxd_fn)(uint64_t d, uint64_t s, uint64_t c, uint64_t *f);
#define SHXD1(fn, insn, T)                                                                        \
    static uint64_t fn(uint64_t d, uint64_t s, uint64_t c, uint64_t *fl)                          \
    {                                                                                             \
        T dd = (T)d, ss = (T)s;                                                                   \
        uint8_t cl = (uint8_t)c;                                                                  \
        uint64_t f = *fl;                                                                         \
        __asm__ volatile(ENTER insn " %%cl, %[s], %[d]" LEAVE : [d] "+r"(dd), [f] "+r"(f)        \
                         : [s] "r"(ss), "c"(cl) : "cc", "memory");                                \
        *fl = f;                                                                                  \
        return dd;                                                                                \
    }
#define SHXD(name, mn)                                                                            \
    SHXD1(name##_2, mn "w", uint16_t) SHXD1(name##_4, mn "l", uint32_t) SHXD1(name##_8, mn "q", uint64_t) \
    static const shxd_fn name[4] = { 0, name##_2, name##_4, name##_8 };

/* d = OP s (write-only destination: LZCNT TZCNT POPCNT BLSx) */
#define WO1(fn, insn, T)                                                                          \
    static uint64_t fn(uint64_t s, uint64_t *fl)                                                  \
    {                                                                                             \
        T dd, ss = (T)s;                                                                          \
        uint64_t f = *fl;                                                                         \
        __asm__ volatile(ENTER insn " %[s], %[d]" LEAVE : [d] "=&r"(dd), [f] "+r"(f)             \
                         : [s] "r"(ss) : "cc", "memory");                                         \
        *fl = f;                                                                                  \
        return dd;                                                                                \
    }
#define WO_W(name, mn)                                                                            \
    WO1(name##_2, mn "w", uint16_t) WO1(name##_4, mn "l", uint32_t) WO1(name##_8, mn "q", uint64_t) \
    static const un_fn name[4] = { 0, name##_2, name##_4, name##_8 };
#define WO_D(name, mn)                                                                            \
    WO1(name##_4, mn "l", uint32_t) WO1(name##_8, mn "q", uint64_t)                               \
    static const un_fn name[4] = { 0, 0, name##_4, name##_8 };

/* d = OP(a, b), VEX three-operand (ANDN: ~a & b; BEXTR: a = ctl, b = src) */
#define V31(fn, insn, T)                                                                          \
    static uint64_t fn(uint64_t a, uint64_t b, uint64_t *fl)                                      \
    {                                                                                             \
        T dd, aa = (T)a, bb = (T)b;                                                               \
        uint64_t f = *fl;                                                                         \
        __asm__ volatile(ENTER insn " %[b], %[a], %[d]" LEAVE : [d] "=&r"(dd), [f] "+r"(f)       \
                         : [a] "r"(aa), [b] "r"(bb) : "cc", "memory");                            \
        *fl = f;                                                                                  \
        return dd;                                                                                \
    }
#define V3(name, mn)                                                                              \
    V31(name##_4, mn "l", uint32_t) V31(name##_8, mn "q", uint64_t)                               \
    static const bin_fn name[4] = { 0, 0, name##_4, name##_8 };

BIN(n_add, "add") BIN(n_or, "or") BIN(n_adc, "adc") BIN(n_sbb, "sbb")
BIN(n_and, "and") BIN(n_sub, "sub") BIN(n_xor, "xor") BIN(n_cmp, "cmp") BIN(n_test, "test")
UN(n_inc, "inc") UN(n_dec, "dec") UN(n_neg, "neg") UN(n_not, "not")
SH(n_rol, "rol") SH(n_ror, "ror") SH(n_rcl, "rcl") SH(n_rcr, "rcr")
SH(n_shl, "shl") SH(n_shr, "shr") SH(n_sal, "sal") SH(n_sar, "sar")
SHXD(n_shld, "shld") SHXD(n_shrd, "shrd")
BIN_W(n_imul2, "imul")
BIN_W(n_bt, "bt") BIN_W(n_bts, "bts") BIN_W(n_btr, "btr") BIN_W(n_btc, "btc")
BIN_W(n_bsf, "bsf") BIN_W(n_bsr, "bsr")
WO_W(n_tzcnt, "tzcnt") WO_W(n_lzcnt, "lzcnt") WO_W(n_popcnt, "popcnt")
WO_D(n_blsi, "blsi") WO_D(n_blsmsk, "blsmsk") WO_D(n_blsr, "blsr")
V3(n_andn, "andn")

/* BEXTR dst, src, ctl: AT&T "bextr ctl, src, dst", i.e. V3 with a = src, b = ctl. */
V3(n_bextr, "bextr")

/* One-operand MUL/IMUL: hi:lo = a * b. */
#define MUL(name, mn)                                                                             \
    static struct emu_wide name(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)              \
    {                                                                                             \
        uint64_t f = *fl;                                                                         \
        struct emu_wide w;                                                                        \
        if (size == 1) {                                                                          \
            uint16_t ax = (uint8_t)a;                                                             \
            uint8_t bb = (uint8_t)b;                                                              \
            __asm__ volatile(ENTER mn "b %[b]" LEAVE : "+a"(ax), [f] "+r"(f) : [b] "r"(bb)       \
                             : "cc", "memory");                                                   \
            w.lo = ax & 0xff;                                                                     \
            w.hi = ax >> 8;                                                                       \
        } else if (size == 2) {                                                                   \
            uint16_t ax = (uint16_t)a, dx, bb = (uint16_t)b;                                      \
            __asm__ volatile(ENTER mn "w %[b]" LEAVE : "+a"(ax), "=&d"(dx), [f] "+r"(f)          \
                             : [b] "r"(bb) : "cc", "memory");                                     \
            w.lo = ax;                                                                            \
            w.hi = dx;                                                                            \
        } else if (size == 4) {                                                                   \
            uint32_t ax = (uint32_t)a, dx, bb = (uint32_t)b;                                      \
            __asm__ volatile(ENTER mn "l %[b]" LEAVE : "+a"(ax), "=&d"(dx), [f] "+r"(f)          \
                             : [b] "r"(bb) : "cc", "memory");                                     \
            w.lo = ax;                                                                            \
            w.hi = dx;                                                                            \
        } else {                                                                                  \
            uint64_t ax = a, dx, bb = b;                                                          \
            __asm__ volatile(ENTER mn "q %[b]" LEAVE : "+a"(ax), "=&d"(dx), [f] "+r"(f)          \
                             : [b] "r"(bb) : "cc", "memory");                                     \
            w.lo = ax;                                                                            \
            w.hi = dx;                                                                            \
        }                                                                                         \
        *fl = f;                                                                                  \
        return w;                                                                                 \
    }
MUL(n_mul, "mul")
MUL(n_imul1, "imul")

/* DIV/IDIV: -1 when the host raised #DE (SIGFPE). The handler is installed with SA_NODEFER so that the
 * jump out of it needs no signal-mask restore (sigsetjmp(..., 0): no system call per case). */
static sigjmp_buf fpe_jb;
/* ThreadSanitizer tracks signal delivery and needs the mask saved and restored by the jump. */
#if defined(__SANITIZE_THREAD__)
#define FPE_SAVEMASK 1
#else
#define FPE_SAVEMASK 0
#endif
static void on_fpe(int sig)
{
    (void)sig;
    siglongjmp(fpe_jb, 1);
}

#define DIV(name, mn)                                                                             \
    __attribute__((noinline)) static void name##_raw(unsigned size, uint64_t hi, uint64_t lo,    \
                                                     uint64_t v, uint64_t *q, uint64_t *r,        \
                                                     uint64_t *fl)                                \
    {                                                                                             \
        uint64_t f = *fl;                                                                         \
        if (size == 1) {                                                                          \
            uint16_t ax = (uint16_t)(((hi & 0xff) << 8) | (lo & 0xff));                           \
            uint8_t vv = (uint8_t)v;                                                              \
            __asm__ volatile(ENTER mn "b %[v]" LEAVE : "+a"(ax), [f] "+r"(f) : [v] "r"(vv)       \
                             : "cc", "memory");                                                   \
            *q = ax & 0xff;                                                                       \
            *r = ax >> 8;                                                                         \
        } else if (size == 2) {                                                                   \
            uint16_t ax = (uint16_t)lo, dx = (uint16_t)hi, vv = (uint16_t)v;                      \
            __asm__ volatile(ENTER mn "w %[v]" LEAVE : "+a"(ax), "+d"(dx), [f] "+r"(f)           \
                             : [v] "r"(vv) : "cc", "memory");                                     \
            *q = ax;                                                                              \
            *r = dx;                                                                              \
        } else if (size == 4) {                                                                   \
            uint32_t ax = (uint32_t)lo, dx = (uint32_t)hi, vv = (uint32_t)v;                      \
            __asm__ volatile(ENTER mn "l %[v]" LEAVE : "+a"(ax), "+d"(dx), [f] "+r"(f)           \
                             : [v] "r"(vv) : "cc", "memory");                                     \
            *q = ax;                                                                              \
            *r = dx;                                                                              \
        } else {                                                                                  \
            uint64_t ax = lo, dx = hi, vv = v;                                                    \
            __asm__ volatile(ENTER mn "q %[v]" LEAVE : "+a"(ax), "+d"(dx), [f] "+r"(f)           \
                             : [v] "r"(vv) : "cc", "memory");                                     \
            *q = ax;                                                                              \
            *r = dx;                                                                              \
        }                                                                                         \
        *fl = f;                                                                                  \
    }                                                                                             \
    static int name(unsigned size, uint64_t hi, uint64_t lo, uint64_t v, uint64_t *q, uint64_t *r, \
                    uint64_t *fl)                                                                 \
    {                                                                                             \
        if (sigsetjmp(fpe_jb, FPE_SAVEMASK))                                                      \
            return -1;                                                                            \
        name##_raw(size, hi, lo, v, q, r, fl);                                                    \
        return 0;                                                                                 \
    }
DIV(n_div, "div")
DIV(n_idiv, "idiv")

static uint64_t n_bswap(unsigned size, uint64_t v)
{
    if (size == 4) {
        uint32_t x = (uint32_t)v;
        __asm__("bswapl %0" : "+r"(x));
        return x;
    }
    if (size == 8) {
        __asm__("bswapq %0" : "+r"(v));
        return v;
    }
    /* 66 0F C8: bswap %ax (gas refuses the 16-bit form). */
    __asm__(".byte 0x66, 0x0f, 0xc8" : "+a"(v));
    return v & 0xffff;
}

/* SETcc for all 16 conditions. */
typedef int (*set_fn)(uint64_t f);
#define SET(cc)                                                                                   \
    static int n_set##cc(uint64_t f)                                                              \
    {                                                                                             \
        uint8_t r;                                                                                \
        __asm__ volatile(ENTER "set" #cc " %[r]" LEAVE : [r] "=&r"(r), [f] "+r"(f) : : "cc", "memory"); \
        return r;                                                                                 \
    }
SET(o) SET(no) SET(b) SET(ae) SET(e) SET(ne) SET(be) SET(a)
SET(s) SET(ns) SET(p) SET(np) SET(l) SET(ge) SET(le) SET(g)
static const set_fn n_set[16] = { n_seto, n_setno, n_setb, n_setae, n_sete, n_setne, n_setbe, n_seta,
                                  n_sets, n_setns, n_setp, n_setnp, n_setl, n_setge, n_setle, n_setg };

/* ------------------------------------------------------------------------------------------ families */

static void test_alu(void)
{
    static const struct { const char *name; enum emu_alu_op op; const bin_fn *nat; int test; } ops[] = {
        { "add", EMU_ALU_ADD, n_add, 0 }, { "or", EMU_ALU_OR, n_or, 0 }, { "adc", EMU_ALU_ADC, n_adc, 0 },
        { "sbb", EMU_ALU_SBB, n_sbb, 0 }, { "and", EMU_ALU_AND, n_and, 0 }, { "sub", EMU_ALU_SUB, n_sub, 0 },
        { "xor", EMU_ALU_XOR, n_xor, 0 }, { "cmp", EMU_ALU_CMP, n_cmp, 0 }, { "test", EMU_ALU_AND, n_test, 1 },
    };
    for (unsigned o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        int logic = ops[o].op == EMU_ALU_OR || ops[o].op == EMU_ALU_AND || ops[o].op == EMU_ALU_XOR;
        for (unsigned si = 0; si < 4; si++) {
            unsigned size = sizes_all[si], n = pairs(size);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                for (int cf = 0; cf < 2; cf++) {
                    uint64_t fin = (rnd_flags() & ~EMU_CF) | (uint64_t)cf, hf = fin, ef = fin ^ EXTRA;
                    uint64_t want = ops[o].nat[si](pa[i], pb[i], &hf);
                    uint64_t got = emu_alu(ops[o].op, size, pa[i], pb[i], &ef);
                    if (ops[o].test)
                        want = got; /* TEST writes no destination; the caller discards emu's result */
                    check(ops[o].name, size, pa[i], pb[i], 0, fin, got, ef, want, hf,
                          emu_undefined_flags(logic ? EMU_FC_LOGIC : EMU_FC_ARITH, size, 0));
                }
            }
        }
        summary(ops[o].name, 4, minc, runs0, fails0);
    }
}

static void test_unary(void)
{
    static const struct { const char *name; enum emu_unary_op op; const un_fn *nat; } ops[] = {
        { "inc", EMU_INC, n_inc }, { "dec", EMU_DEC, n_dec }, { "neg", EMU_NEG, n_neg }, { "not", EMU_NOT, n_not },
    };
    for (unsigned o = 0; o < 4; o++) {
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = 0; si < 4; si++) {
            unsigned size = sizes_all[si], n = pairs(size);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                uint64_t fin = rnd_flags(), hf = fin, ef = fin ^ EXTRA;
                uint64_t want = ops[o].nat[si](pa[i], &hf);
                uint64_t got = emu_unary(ops[o].op, size, pa[i], &ef);
                check(ops[o].name, size, pa[i], 0, 0, fin, got, ef, want, hf, 0);
            }
        }
        summary(ops[o].name, 4, minc, runs0, fails0);
    }
}

static void test_shift(void)
{
    static const struct { const char *name; enum emu_shift_op op; const bin_fn *nat; enum emu_flag_class fc; } ops[] = {
        { "rol", EMU_ROL, n_rol, EMU_FC_ROTATE }, { "ror", EMU_ROR, n_ror, EMU_FC_ROTATE },
        { "rcl", EMU_RCL, n_rcl, EMU_FC_ROTATE }, { "rcr", EMU_RCR, n_rcr, EMU_FC_ROTATE },
        { "shl", EMU_SHL, n_shl, EMU_FC_SHIFT }, { "shr", EMU_SHR, n_shr, EMU_FC_SHIFT },
        { "sal", EMU_SAL, n_sal, EMU_FC_SHIFT }, { "sar", EMU_SAR, n_sar, EMU_FC_SAR },
    };
    for (unsigned o = 0; o < 8; o++) {
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = 0; si < 4; si++) {
            unsigned size = sizes_all[si], n = shift_cases(size, 1);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                for (int cf = 0; cf < 2; cf++) {
                    uint64_t fin = (rnd_flags() & ~EMU_CF) | (uint64_t)cf, hf = fin, ef = fin ^ EXTRA;
                    uint64_t want = ops[o].nat[si](pa[i], pb[i] & 0xff, &hf);
                    uint64_t got = emu_shift(ops[o].op, size, pa[i], pb[i], &ef);
                    check(ops[o].name, size, pa[i], pb[i], 0, fin, got, ef, want, hf,
                          emu_undefined_flags(ops[o].fc, size, pb[i]));
                }
            }
        }
        summary(ops[o].name, 4, minc, runs0, fails0);
    }
}

static void test_shxd(void)
{
    for (int o = 0; o < 2; o++) {
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = 1; si < 4; si++) {
            unsigned size = sizes_all[si], n = shift_cases(size, 1);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                uint64_t src = (i & 1) ? rnd_operand(size) : pa[(i * 7919) % n];
                uint64_t fin = rnd_flags(), hf = fin, ef = fin ^ EXTRA, want, got;
                if (o == 0) {
                    want = n_shld[si](pa[i], src, pb[i] & 0xff, &hf);
                    got = emu_shld(size, pa[i], src, pb[i], &ef);
                } else {
                    want = n_shrd[si](pa[i], src, pb[i] & 0xff, &hf);
                    got = emu_shrd(size, pa[i], src, pb[i], &ef);
                }
                check(o ? "shrd" : "shld", size, pa[i], src, pb[i], fin, got, ef, want, hf,
                      emu_undefined_flags(EMU_FC_SHXD, size, pb[i]));
            }
        }
        summary(o ? "shrd" : "shld", 3, minc, runs0, fails0);
    }
}

static void test_mul(void)
{
    for (int o = 0; o < 3; o++) {
        static const char *const names[] = { "mul", "imul1", "imul" };
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = o == 2 ? 1 : 0; si < 4; si++) {
            unsigned size = sizes_all[si], n = pairs(size);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                uint64_t fin = rnd_flags(), hf = fin, ef = fin ^ EXTRA;
                uint64_t undef = emu_undefined_flags(EMU_FC_MUL, size, 0);
                if (o == 2) {
                    uint64_t want = n_imul2[si](pa[i], pb[i], &hf);
                    uint64_t got = emu_imul(size, pa[i], pb[i], &ef);
                    check(names[o], size, pa[i], pb[i], 0, fin, got, ef, want, hf, undef);
                    continue;
                }
                struct emu_wide w = (o ? n_imul1 : n_mul)(size, pa[i], pb[i], &hf);
                struct emu_wide g = (o ? emu_imul1 : emu_mul)(size, pa[i], pb[i], &ef);
                check(names[o], size, pa[i], pb[i], 0, fin, g.lo, ef, w.lo, hf, undef);
                if (g.hi != w.hi) /* the high half: the flags were compared just above */
                    check(o ? "imul1(hi)" : "mul(hi)", size, pa[i], pb[i], 0, fin, g.hi, ef, w.hi, hf, undef);
            }
        }
        summary(names[o], o == 2 ? 3 : 4, minc, runs0, fails0);
    }
}

static void test_div(void)
{
    unsigned long faults = 0;
    for (int o = 0; o < 2; o++) {
        const char *name = o ? "idiv" : "div";
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = 0; si < 4; si++) {
            unsigned size = sizes_all[si], n = pairs(size);
            uint64_t m = emu_size_mask(size), sign = emu_size_sign(size);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                for (int variant = 0; variant < 4; variant++) {
                    uint64_t v = pb[i], lo = pa[i], hi;
                    switch (variant) {
                    case 0: hi = 0; break;                                      /* small dividend */
                    case 1: hi = (lo & sign) ? m : 0; break;                    /* sign-extended dividend */
                    case 2: hi = pa[(i * 31 + 7) % n]; break;                   /* often overflows */
                    default: hi = v ? rnd() % (v & m) : rnd() & m; break;      /* near the limit */
                    }
                    uint64_t q = 0, r = 0, eq = 0x1234, er = 0x5678, fin = rnd_flags(), hf = fin;
                    int want = (o ? n_idiv : n_div)(size, hi, lo, v, &q, &r, &hf);
                    int got = (o ? emu_idiv : emu_div)(size, hi, lo, v, &eq, &er);
                    faults += want != 0;
                    nruns++;
                    if (want == 0) { /* the flags, all undefined: statistics (strict: compared) */
                        uint64_t ef = emu_div_flags(fin);
                        for (int b = 0; b < 12; b++)
                            if ((EMU_STATUS_FLAGS >> b) & 1) {
                                ustat.masked[b]++;
                                ustat.differ[b] += ((ef ^ hf) >> b) & 1;
                            }
                        if (strict && ef != hf && nfail++ < 20)
                            printf("MISMATCH %s size %u flags: %#" PRIx64 ":%#" PRIx64 " / %#" PRIx64
                                   ": flags in %#" PRIx64 ", got %#" PRIx64 ", want %#" PRIx64 "\n", name,
                                   size, hi, lo, v, fin, ef, hf);
                    }
                    if (got != want || (want == 0 && (eq != q || er != r))) {
                        if (nfail++ < 20)
                            printf("MISMATCH %s size %u: %#" PRIx64 ":%#" PRIx64 " / %#" PRIx64
                                   ": got %s q=%#" PRIx64 " r=%#" PRIx64 ", want %s q=%#" PRIx64
                                   " r=%#" PRIx64 "\n", name, size, hi, lo, v, got ? "#DE" : "ok", eq,
                                   er, want ? "#DE" : "ok", q, r);
                    }
                }
            }
        }
        summary(name, 4, minc, runs0, fails0);
    }
    printf("  div/idiv: %lu host #DE (SIGFPE) cases, each matched by emu returning -1\n", faults);
}

static void test_bt(void)
{
    static const struct { const char *name; enum emu_bt_op op; const bin_fn *nat; } ops[] = {
        { "bt", EMU_BT, n_bt }, { "bts", EMU_BTS, n_bts }, { "btr", EMU_BTR, n_btr }, { "btc", EMU_BTC, n_btc },
    };
    for (unsigned o = 0; o < 4; o++) {
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = 1; si < 4; si++) {
            unsigned size = sizes_all[si], n = shift_cases(size, 1);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                uint64_t bit = pb[i] & emu_size_mask(size); /* the register operand at operand size */
                uint64_t fin = rnd_flags(), hf = fin, ef = fin ^ EXTRA;
                uint64_t want = ops[o].nat[si](pa[i], bit, &hf);
                uint64_t got = emu_bt(ops[o].op, size, pa[i], bit, &ef);
                check(ops[o].name, size, pa[i], bit, 0, fin, got, ef, want, hf,
                      emu_undefined_flags(EMU_FC_BT, size, 0));
            }
        }
        summary(ops[o].name, 3, minc, runs0, fails0);
    }

    /* Memory form with a register bit offset: BTS on a zeroed buffer, then find the bit the host set and
     * compare with emu_bt_mem_offset() + the in-operand bit. */
    static uint8_t buf[1 << 14];
    unsigned long runs0 = nruns, minc = ~0ul;
    int fails0 = nfail;
    for (unsigned si = 1; si < 4; si++) {
        unsigned size = sizes_all[si], bits = 8 * size, cases = 0;
        uint8_t *base = buf + sizeof buf / 2;
        for (int i = 0; i < 3000; i++) {
            int64_t off;
            if (i < 2 * 256)
                off = (int64_t)(i - 256);                 /* every offset in [-256, 256) */
            else
                off = (int64_t)(rnd() % (8 * (sizeof buf / 2 - 16))) - (int64_t)(4 * (sizeof buf - 32));
            uint64_t reg = (uint64_t)off & emu_size_mask(size);
            memset(buf, 0, sizeof buf);
            if (size == 2) {
                uint16_t r16 = (uint16_t)reg;
                __asm__ volatile("btsw %[r], (%[b])" : : [r] "r"(r16), [b] "r"(base) : "cc", "memory");
            } else if (size == 4) {
                uint32_t r32 = (uint32_t)reg;
                __asm__ volatile("btsl %[r], (%[b])" : : [r] "r"(r32), [b] "r"(base) : "cc", "memory");
            } else {
                __asm__ volatile("btsq %[r], (%[b])" : : [r] "r"(reg), [b] "r"(base) : "cc", "memory");
            }
            int64_t hbyte = -1;
            int hbit = -1;
            for (size_t k = 0; k < sizeof buf; k++)
                if (buf[k]) {
                    hbyte = (int64_t)k - (int64_t)(sizeof buf / 2);
                    hbit = __builtin_ctz(buf[k]);
                    break;
                }
            uint64_t inop = (uint64_t)reg & (bits - 1);
            int64_t ebyte = emu_bt_mem_offset(size, reg) + (int64_t)(inop / 8);
            int ebit = (int)(inop % 8);
            nruns++;
            cases++;
            if (hbyte != ebyte || hbit != ebit) {
                if (nfail++ < 20)
                    printf("MISMATCH bt-mem size %u: offset %" PRId64 ": got byte %" PRId64 " bit %d, want byte %"
                           PRId64 " bit %d\n", size, off, ebyte, ebit, hbyte, hbit);
            }
        }
        minc = cases < minc ? cases : minc;
    }
    summary("bt-mem-offset", 3, minc, runs0, fails0);
}

static void test_bscan(void)
{
    for (int o = 0; o < 2; o++) {
        const char *name = o ? "bsr" : "bsf";
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = 1; si < 4; si++) {
            unsigned size = sizes_all[si], n = pairs(size);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                uint64_t src = (i % 7 == 0) ? 0 : pa[i], old = pb[i] ^ 0x5a5a5a5a5a5a5a5aull;
                old &= emu_size_mask(size);
                uint64_t fin = rnd_flags(), hf = fin, ef = fin ^ EXTRA;
                uint64_t want = (o ? n_bsr : n_bsf)[si](old, src, &hf);
                uint64_t got = (o ? emu_bsr : emu_bsf)(size, src, old, &ef);
                check(name, size, src, old, 0, fin, got, ef, want, hf,
                      emu_undefined_flags(EMU_FC_BSCAN, size, 0));
            }
        }
        summary(name, 3, minc, runs0, fails0);
    }
    /* The 64-bit register after a 32-bit BSF/BSR with a zero source (information for the executor). */
    uint64_t d1 = 0x1122334455667788ull, d2 = d1, z = 0;
    __asm__ volatile("bsfl %k[s], %k[d]" : [d] "+r"(d1) : [s] "r"(z) : "cc");
    __asm__ volatile("bsrl %k[s], %k[d]" : [d] "+r"(d2) : [s] "r"(z) : "cc");
    printf("  note: host 32-bit bsf/bsr with src 0 on rd=0x1122334455667788 leaves %#" PRIx64 " / %#" PRIx64
           "\n", d1, d2);
}

static void test_cnt(void)
{
    static const struct { const char *name; const un_fn *nat; uint64_t (*fn)(unsigned, uint64_t, uint64_t *);
                          enum emu_flag_class fc; } ops[] = {
        { "tzcnt", n_tzcnt, emu_tzcnt, EMU_FC_CNT }, { "lzcnt", n_lzcnt, emu_lzcnt, EMU_FC_CNT },
        { "popcnt", n_popcnt, emu_popcnt, EMU_FC_ARITH },
    };
    for (unsigned o = 0; o < 3; o++) {
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = 1; si < 4; si++) {
            unsigned size = sizes_all[si], n = pairs(size);
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                uint64_t fin = rnd_flags(), hf = fin, ef = fin ^ EXTRA;
                uint64_t want = ops[o].nat[si](pa[i], &hf);
                uint64_t got = ops[o].fn(size, pa[i], &ef);
                check(ops[o].name, size, pa[i], 0, 0, fin, got, ef, want, hf,
                      emu_undefined_flags(ops[o].fc, size, 0));
            }
        }
        summary(ops[o].name, 3, minc, runs0, fails0);
    }
}

static void test_bswap(void)
{
    unsigned long runs0 = nruns, minc = ~0ul;
    int fails0 = nfail;
    for (unsigned si = 2; si < 4; si++) {
        unsigned size = sizes_all[si], n = pairs(size);
        minc = n < minc ? n : minc;
        for (unsigned i = 0; i < n; i++)
            check("bswap", size, pa[i], 0, 0, 0, emu_bswap(size, pa[i]), EXTRA, n_bswap(size, pa[i]), 0, 0);
    }
    /* 16-bit: undefined result (noted; strict: compared) */
    unsigned n = pairs(2);
    for (unsigned i = 0; i < n; i++)
        check("bswap", 2, pa[i], 0, 0, 0, emu_bswap(2, pa[i]), EXTRA, n_bswap(2, pa[i]), 0,
              emu_undefined_flags(EMU_FC_BSWAP, 2, 0));
    summary("bswap", 3, minc, runs0, fails0);
}

static void test_bmi(void)
{
    for (int o = 0; o < 5; o++) {
        static const char *const names[] = { "andn", "bextr", "blsi", "blsmsk", "blsr" };
        unsigned long runs0 = nruns, minc = ~0ul;
        int fails0 = nfail;
        for (unsigned si = 2; si < 4; si++) {
            unsigned size = sizes_all[si], n = pairs(size);
            if (o == 1) {
                /* every start/len in 0..bits+3 on all ones and on a random value, then random controls
                 * with random upper bits */
                unsigned k = 0, bits = 8 * size;
                for (unsigned s = 0; s <= bits + 3; s++)
                    for (unsigned l = 0; l <= bits + 3; l++)
                        for (int v = 0; v < 2; v++) {
                            pb[k] = s | (l << 8) | (k & 2 ? (rnd() << 16) & emu_size_mask(size) : 0);
                            pa[k] = v ? rnd_operand(size) : emu_size_mask(size);
                            k++;
                        }
                for (unsigned i = 0; i < NRAND; i++, k++) {
                    pa[k] = rnd_operand(size);
                    pb[k] = rnd() & emu_size_mask(size);
                }
                n = k;
            }
            minc = n < minc ? n : minc;
            for (unsigned i = 0; i < n; i++) {
                uint64_t fin = rnd_flags(), hf = fin, ef = fin ^ EXTRA, want, got;
                enum emu_flag_class fc = EMU_FC_ANDN;
                switch (o) {
                case 0: want = n_andn[si](pa[i], pb[i], &hf); got = emu_andn(size, pa[i], pb[i], &ef); break;
                case 1:
                    want = n_bextr[si](pa[i], pb[i], &hf);
                    got = emu_bextr(size, pa[i], pb[i], &ef);
                    fc = EMU_FC_BEXTR;
                    break;
                case 2: want = n_blsi[si](pa[i], &hf); got = emu_blsi(size, pa[i], &ef); break;
                case 3: want = n_blsmsk[si](pa[i], &hf); got = emu_blsmsk(size, pa[i], &ef); break;
                default: want = n_blsr[si](pa[i], &hf); got = emu_blsr(size, pa[i], &ef); break;
                }
                check(names[o], size, pa[i], pb[i], 0, fin, got, ef, want, hf, emu_undefined_flags(fc, size, 0));
            }
        }
        summary(names[o], 2, minc, runs0, fails0);
    }
}

static void test_sign_extend(void)
{
    unsigned long runs0 = nruns, minc = ~0ul;
    int fails0 = nfail;
    for (unsigned si = 0; si < 3; si++) {
        unsigned size = sizes_all[si], n = pairs(size);
        minc = n < minc ? n : minc;
        for (unsigned i = 0; i < n; i++) {
            uint64_t v = pa[i] | (pb[i] << (8 * size)), want; /* garbage above the size must be ignored */
            if (size == 1) {
                uint8_t b = (uint8_t)v;
                __asm__("movsbq %1, %0" : "=r"(want) : "r"(b));
            } else if (size == 2) {
                uint16_t w = (uint16_t)v;
                __asm__("movswq %1, %0" : "=r"(want) : "r"(w));
            } else {
                uint32_t d = (uint32_t)v;
                __asm__("movslq %1, %0" : "=r"(want) : "r"(d));
            }
            check("movsx", size, v, 0, 0, 0, emu_sign_extend(size, v), EXTRA, want, 0, 0);
        }
    }
    summary("sign-extend", 3, minc, runs0, fails0);
}

static void test_cond(void)
{
    unsigned long runs0 = nruns;
    int fails0 = nfail;
    for (unsigned cc = 0; cc < 16; cc++) {
        for (unsigned i = 0; i < 64 + 1000; i++) {
            uint64_t f;
            if (i < 64) /* every combination of the six status flags */
                f = base_flags | ((i & 1) ? EMU_CF : 0) | ((i & 2) ? EMU_PF : 0) | ((i & 4) ? EMU_AF : 0) |
                    ((i & 8) ? EMU_ZF : 0) | ((i & 16) ? EMU_SF : 0) | ((i & 32) ? EMU_OF : 0);
            else
                f = rnd_flags();
            int want = n_set[cc](f), got = emu_cond(cc, f ^ EXTRA);
            char name[16];
            snprintf(name, sizeof name, "cond%u", cc);
            check(name, 0, cc, 0, 0, f, (uint64_t)got, EXTRA, (uint64_t)want, 0, 0);
        }
    }
    summary("cond (setcc, 16 conditions)", 1, 16 * (64 + 1000), runs0, fails0);
}

int main(void)
{
    const char *s = getenv("ALU_ORACLE_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : 0x9e3779b97f4a7c15ull;
    rng = seed ? seed : 1;
    s = getenv("ALU_ORACLE_STRICT");
    strict = s && *s == '1';
    printf("alu_oracle: seed %#" PRIx64 " (ALU_ORACLE_SEED to change)%s\n", seed,
           strict ? ", strict: undefined flags and results compared too" : "");

    uint64_t f;
    __asm__ volatile("pushfq\n\tpop %0" : "=r"(f));
    base_flags = f & ~(EMU_STATUS_FLAGS | EMU_TF | EMU_DF);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fpe;
    sa.sa_flags = SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGFPE, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }

    test_alu();
    test_unary();
    test_shift();
    test_shxd();
    test_mul();
    test_div();
    test_bt();
    test_bscan();
    test_cnt();
    test_bswap();
    test_bmi();
    test_sign_extend();
    test_cond();

    if (nfail) {
        printf("alu_oracle: FAIL: %d mismatches in %lu runs (first 20 shown)\n", nfail, nruns);
        return 1;
    }
    printf("alu_oracle: ok, %lu runs\n", nruns);
    return 0;
}
