/* SPDX-License-Identifier: MIT */
/*
 * buslock-census: performs KNOWN numbers of every kind of locked access, checks the exact result
 * of each, and prints how many bus locks a bus-lock-aware monitor must have seen (docs/DESIGN.md
 * "Bus-lock semantics"). It is the guest side of the census test: the test compares these
 * numbers with the counts blvm reports (--stats bus_locks.split / .uc / .total).
 *
 * Command line: a list of phases to run, in this order whatever order they are given in; empty or
 * "all" runs every phase. Phases:
 *   wb        locked RMWs in write-back memory that do not cross a 64-byte line (aligned, and
 *             misaligned inside one line): NOT bus locks                             expect 0
 *   split     the same instructions with the operand crossing a 64-byte line (sizes 2, 4, 8;
 *             mid-page and across a 4 KiB page boundary), CMPXCHG8B split            split 214
 *   uc        aligned locked RMWs on a page mapped PCD=1 PWT=1 (UC) and one mapped PCD=1 PWT=0
 *             (UC- with the power-on PAT), CMPXCHG16B included                       uc 168
 *   pat       IA32_PAT reprogrammed (entry 4 UC, 5 UC-, 6 WB, see PAT_CENSUS): pages selecting
 *             entry 4 (twice) and 5 are bus locks, a page PCD=1 selecting entry 6 (WB) is not;
 *             the power-on PAT is restored afterwards                                uc 252
 *   mmio      locked RMWs on guest-physical 0xc0000000 (not RAM: needs RAM below 3 GiB, e.g.
 *             --mem=128M) through the identity map; each is one bus lock            uc 82
 *   unlocked  plain (unlocked) RMWs, loads, stores and string moves crossing lines, unlocked
 *             ops on the UC page, XCHG reg,reg: NOT bus locks                        expect 0
 * All phases: split=214 uc=502 total=716 bus locks.
 *
 * The instruction families, at each operand size: lock add/or/adc/sbb/and/sub/xor reg,mem;
 * lock add $imm8 and lock xor $imm (the 0x83 and 0x80/0x81 encodings); lock inc/dec/neg/not;
 * lock xadd; lock cmpxchg that succeeds and one that fails (a failing locked CMPXCHG still
 * writes and still locks); xchg reg,mem (implicitly locked, no prefix); lock bts/btr/btc $imm and
 * lock bts reg (not at byte size: BT has no byte form). That is 21 per size 2/4/8, 17 at size 1.
 * CMPXCHG8B and CMPXCHG16B each run once succeeding and once failing (2 ops). CMPXCHG16B needs a
 * 16-byte-aligned operand (#GP otherwise), so it never splits; it is a bus lock on UC memory. The
 * guest skips it (and says so, with the counts adjusted) if CPUID.1:ECX.CX16 is clear.
 *
 * Output (a test parses these; everything else is commentary):
 *   census: <kind> <size> expect <N> bus locks          one per kind and operand size
 *   census-phase: <phase> split=<S> uc=<U> total=<T>    one per phase run
 *   census-expect: split=<S> uc=<U> total=<T>           the sum over the phases run
 *   census: <C> checks, <F> failed                      last line
 * The kind lines end with " (<L> locked ops)": how many locked instructions that line executed,
 * bus locks or not. <kind> is one of wb, wb-misaligned, split, split-page, cmpxchg8b-split, uc,
 * uc-minus, pat-uc, pat-uc-minus, pat-wb, mmio, unlocked, unlocked-uc; <size> is 1, 2, 4, 8 or 16;
 * a kind may have several lines of one size (e.g. uc 8: the ALU families, then CMPXCHG8B). The
 * mmio phase also prints "census: mmio reads 0x<v>" (what the platform returns: blvm all ones,
 * QEMU 0; the checks start from that value since writes there are dropped). A wrong value
 * prints "census: FAIL ..." with what was expected. Exit status 0 when every check passed, 1
 * otherwise, 2 for an unknown phase name.
 *
 * Nothing else in the guest (runtime included) executes a locked instruction, and its paging
 * structures, GDT and IDT live in write-back memory, so these are all the bus locks it takes.
 */
#include "rt.h"
#include "buslock-census/paging.h"

/* ---- expected totals (checked against the tallies at the end) ------------------------------ */

#define FAMS_WIDE 21 /* families at sizes 2, 4, 8 */
#define FAMS_BYTE 17 /* without the four BT forms */
/* One "full set" at aligned addresses: sizes 1, 2, 4, 8, then CMPXCHG8B and CMPXCHG16B x2. */
#define FULL_SET (FAMS_BYTE + 3 * FAMS_WIDE + 2 + 2) /* 84 */

#define EXPECT_SPLIT (2 * FAMS_WIDE + 4 * FAMS_WIDE + 4 * FAMS_WIDE + 2 * 2) /* 214 */
#define EXPECT_UC (2 * FULL_SET)                                            /* 168 */
#define EXPECT_PAT (3 * FULL_SET)                                           /* 252 */
#define EXPECT_MMIO (FULL_SET - 2)                                          /* 82: no CMPXCHG16B */

/* PAT for the pat phase, entry 7 first: 7 UC, 6 WB, 5 UC-, 4 UC, then the power-on 3-0 (UC,
 * UC-, WT, WB) so that the identity map (entry 0) stays write-back. Memory types: 0 UC, 4 WT,
 * 6 WB, 7 UC- (SDM Vol. 3A Table 12-10). */
#define PAT_CENSUS 0x0006070000070406ull

#define MMIO_ADDR 0xc0000000ull

/* ---- tallies --------------------------------------------------------------------------------- */

enum reason { R_NONE, R_SPLIT, R_UC };

static unsigned long tally[3];    /* locked ops executed, by the reason they are (not) bus locks */
static unsigned long checks, failed;
static bool have_cx16;

static const char *cur_kind = "";

static void fail(const char *what, int size, uintptr_t a, uint64_t got, uint64_t want)
{
	failed++;
	if (failed <= 40)
		rt_printf("census: FAIL %s %s size=%d addr=0x%lx got=0x%lx want=0x%lx\n", cur_kind, what, size,
			  (unsigned long)a, (unsigned long)got, (unsigned long)want);
}

static void check(const char *what, int size, uintptr_t a, uint64_t got, uint64_t want)
{
	checks++;
	if (got != want)
		fail(what, size, a, got, want);
}

/* xorshift64*: fixed seed, so every run uses the same operands. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* ---- plain (unlocked) accesses of any alignment ----------------------------------------------- */

typedef uint16_t u16u __attribute__((aligned(1), may_alias));
typedef uint32_t u32u __attribute__((aligned(1), may_alias));
typedef uint64_t u64u __attribute__((aligned(1), may_alias));

static uint64_t mask(int size) { return size == 8 ? ~0ull : (1ull << (size * 8)) - 1; }

static uint64_t load(uintptr_t a, int size)
{
	switch (size) {
	case 1: return *(volatile uint8_t *)a;
	case 2: return *(volatile u16u *)a;
	case 4: return *(volatile u32u *)a;
	default: return *(volatile u64u *)a;
	}
}

static void store(uintptr_t a, int size, uint64_t v)
{
	switch (size) {
	case 1: *(volatile uint8_t *)a = (uint8_t)v; break;
	case 2: *(volatile u16u *)a = (uint16_t)v; break;
	case 4: *(volatile u32u *)a = (uint32_t)v; break;
	default: *(volatile u64u *)a = v; break;
	}
}

/* ---- the locked instructions ----------------------------------------------------------------- */

enum fam {
	F_ADD, F_OR, F_ADC, F_SBB, F_AND, F_SUB, F_XOR, F_ADDI, F_XORI, F_INC, F_DEC, F_NEG, F_NOT,
	F_XADD, F_CMPXCHG_OK, F_CMPXCHG_FAIL, F_XCHG,
	F_BTS, F_BTR, F_BTC, F_BTS_REG, /* not at byte size */
	F_N
};
static const char *const fam_name[F_N] = {
	"add", "or", "adc", "sbb", "and", "sub", "xor", "add-imm8", "xor-imm", "inc", "dec", "neg", "not",
	"xadd", "cmpxchg", "cmpxchg-fail", "xchg", "bts", "btr", "btc", "bts-reg",
};

#define RFL_CF 0x001ull
#define RFL_ZF 0x040ull
#define RFL_SF 0x080ull

/* Immediates: XOR_IMM per size (0x80 /6 ib, 0x81 /6 iw/id, sign-extended id for q), and the
 * bit number of the BT $imm forms (inside the operand, so the access stays where it is). */
#define XI_b 0x5a
#define XI_w 0x1234
#define XI_l 0x12345678
#define XI_q 0x12345678
#define BIT_w 11
#define BIT_l 27
#define BIT_q 45
#define STR_(x) #x
#define STR(x) STR_(x)

/* One locked instruction with flags captured right after it. `s` is the register source, `acc`
 * the accumulator for CMPXCHG; *reg receives the register result (XADD, XCHG: old memory value;
 * CMPXCHG: accumulator). Returns RFLAGS. */
#define OP(insn, ...) __asm__ volatile(insn "\n\tpushfq\n\tpopq %[f]" : [f] "=r"(f) __VA_ARGS__)
#define IN_PS : [p] "r"(a), [s] "r"(s) : "cc", "memory"
#define IN_P : [p] "r"(a) : "cc", "memory"

#define DEF_EXEC_COMMON(SFX, T)                                                                           \
	T s = (T)s64, acc = (T)acc64;                                                                     \
	uint64_t f = 0;                                                                                   \
	*reg = 0;                                                                                         \
	switch (fam) {                                                                                    \
	case F_ADD: OP("lock add" #SFX " %[s], (%[p])", IN_PS); break;                                  \
	case F_OR: OP("lock or" #SFX " %[s], (%[p])", IN_PS); break;                                    \
	case F_ADC: OP("stc\n\tlock adc" #SFX " %[s], (%[p])", IN_PS); break;                           \
	case F_SBB: OP("stc\n\tlock sbb" #SFX " %[s], (%[p])", IN_PS); break;                           \
	case F_AND: OP("lock and" #SFX " %[s], (%[p])", IN_PS); break;                                  \
	case F_SUB: OP("lock sub" #SFX " %[s], (%[p])", IN_PS); break;                                  \
	case F_XOR: OP("lock xor" #SFX " %[s], (%[p])", IN_PS); break;                                  \
	case F_ADDI: OP("lock add" #SFX " $5, (%[p])", IN_P); break;                                    \
	case F_XORI: OP("lock xor" #SFX " $" STR(XI_##SFX) ", (%[p])", IN_P); break;                    \
	case F_INC: OP("lock inc" #SFX " (%[p])", IN_P); break;                                         \
	case F_DEC: OP("lock dec" #SFX " (%[p])", IN_P); break;                                         \
	case F_NEG: OP("lock neg" #SFX " (%[p])", IN_P); break;                                         \
	case F_NOT: OP("lock not" #SFX " (%[p])", IN_P); break;                                         \
	case F_XADD:                                                                                      \
		OP("lock xadd" #SFX " %[s], (%[p])", , [s] "+r"(s) : [p] "r"(a) : "cc", "memory");       \
		*reg = s;                                                                                 \
		break;                                                                                    \
	case F_CMPXCHG_OK:                                                                                \
	case F_CMPXCHG_FAIL:                                                                              \
		OP("lock cmpxchg" #SFX " %[s], (%[p])", , "+a"(acc) IN_PS);                              \
		*reg = acc;                                                                               \
		break;                                                                                    \
	case F_XCHG: /* no LOCK prefix: XCHG with memory locks by itself (SDM XCHG) */                   \
		OP("xchg" #SFX " %[s], (%[p])", , [s] "+r"(s) : [p] "r"(a) : "cc", "memory");            \
		*reg = s;                                                                                 \
		break;

#define DEF_EXEC_BT(SFX)                                                                                  \
	case F_BTS: OP("lock bts" #SFX " $" STR(BIT_##SFX) ", (%[p])", IN_P); break;                    \
	case F_BTR: OP("lock btr" #SFX " $" STR(BIT_##SFX) ", (%[p])", IN_P); break;                    \
	case F_BTC: OP("lock btc" #SFX " $" STR(BIT_##SFX) ", (%[p])", IN_P); break;                    \
	case F_BTS_REG: OP("lock bts" #SFX " %[s], (%[p])", IN_PS); break;

#define DEF_EXEC_END                                                                                      \
	default: break;                                                                                   \
	}                                                                                                 \
	return f;

static uint64_t exec_b(int fam, uintptr_t a, uint64_t s64, uint64_t acc64, uint64_t *reg)
{
	DEF_EXEC_COMMON(b, uint8_t)
	DEF_EXEC_END
}
static uint64_t exec_w(int fam, uintptr_t a, uint64_t s64, uint64_t acc64, uint64_t *reg)
{
	DEF_EXEC_COMMON(w, uint16_t)
	DEF_EXEC_BT(w)
	DEF_EXEC_END
}
static uint64_t exec_l(int fam, uintptr_t a, uint64_t s64, uint64_t acc64, uint64_t *reg)
{
	DEF_EXEC_COMMON(l, uint32_t)
	DEF_EXEC_BT(l)
	DEF_EXEC_END
}
static uint64_t exec_q(int fam, uintptr_t a, uint64_t s64, uint64_t acc64, uint64_t *reg)
{
	DEF_EXEC_COMMON(q, uint64_t)
	DEF_EXEC_BT(q)
	DEF_EXEC_END
}

static int bitno(int size) { return size == 2 ? BIT_w : size == 4 ? BIT_l : BIT_q; }
static uint64_t xor_imm(int size)
{
	return size == 1 ? XI_b : size == 2 ? XI_w : size == 4 ? (uint64_t)XI_l : (uint64_t)XI_q;
}

/*
 * Runs family `fam` once at address a with operand size `size` and checks memory, the register
 * result and the flags the instruction defines. mmio: the location is not RAM, so writes are
 * dropped and reads return whatever the platform returns (the model starts from that value).
 */
static void one(int fam, int size, uintptr_t a, bool mmio, enum reason why)
{
	uint64_t m = mask(size), top = 1ull << (size * 8 - 1);
	uint64_t v = rnd() & m, s = rnd() & m;
	if (fam == F_BTS_REG)
		s = (uint64_t)(size * 8 - 2); /* bit offset inside the operand: the access stays at a */
	store(a, size, v);
	uint64_t v0 = load(a, size);
	if (!mmio)
		check("store/load", size, a, v0, v);
	v = v0;

	uint64_t res = v, want_reg = 0, acc = 0;
	int flags = 0; /* 1: check ZF/SF of res; 2: also CF = cf; 4: CF = cf only; 8: ZF = zf only */
	uint64_t cf = 0, zf = 0;
	switch (fam) {
	case F_ADD: res = v + s; flags = 3; cf = (res & m) < v; break;
	case F_OR: res = v | s; flags = 1; break;
	case F_ADC: res = v + s + 1; flags = 1; break;
	case F_SBB: res = v - s - 1; flags = 1; break;
	case F_AND: res = v & s; flags = 1; break;
	case F_SUB: res = v - s; flags = 3; cf = v < s; break;
	case F_XOR: res = v ^ s; flags = 1; break;
	case F_ADDI: res = v + 5; flags = 3; cf = (res & m) < v; break;
	case F_XORI: res = v ^ (xor_imm(size) & m); flags = 1; break;
	case F_INC: res = v + 1; flags = 1; break;
	case F_DEC: res = v - 1; flags = 1; break;
	case F_NEG: res = -v; flags = 3; cf = v != 0; break;
	case F_NOT: res = ~v; break;
	case F_XADD: res = v + s; want_reg = v; flags = 3; cf = (res & m) < v; break;
	case F_CMPXCHG_OK: acc = v; res = s; want_reg = v; flags = 8; zf = 1; break;
	case F_CMPXCHG_FAIL: acc = v ^ 1; res = v; want_reg = v; flags = 8; zf = 0; break;
	case F_XCHG: res = s; want_reg = v; break;
	case F_BTS: res = v | 1ull << bitno(size); cf = v >> bitno(size) & 1; flags = 4; break;
	case F_BTR: res = v & ~(1ull << bitno(size)); cf = v >> bitno(size) & 1; flags = 4; break;
	case F_BTC: res = v ^ 1ull << bitno(size); cf = v >> bitno(size) & 1; flags = 4; break;
	case F_BTS_REG: res = v | 1ull << s; cf = v >> s & 1; flags = 4; break;
	}
	res &= m;

	uint64_t reg = 0, fl;
	switch (size) {
	case 1: fl = exec_b(fam, a, s, acc, &reg); break;
	case 2: fl = exec_w(fam, a, s, acc, &reg); break;
	case 4: fl = exec_l(fam, a, s, acc, &reg); break;
	default: fl = exec_q(fam, a, s, acc, &reg); break;
	}
	tally[why]++;

	const char *n = fam_name[fam];
	check(n, size, a, load(a, size), mmio ? v : res);
	if (fam == F_XADD || fam == F_XCHG || fam == F_CMPXCHG_OK || fam == F_CMPXCHG_FAIL)
		check(n, size, a, reg & m, want_reg);
	if (flags & 1) {
		check(n, size, a, fl & RFL_ZF, res == 0 ? RFL_ZF : 0);
		check(n, size, a, fl & RFL_SF, res & top ? RFL_SF : 0);
	}
	if (flags & (2 | 4))
		check(n, size, a, fl & RFL_CF, cf ? RFL_CF : 0);
	if (flags & 8)
		check(n, size, a, fl & RFL_ZF, zf ? RFL_ZF : 0);
}

/* Every family at one operand size and address. */
static void families(int size, uintptr_t a, bool mmio, enum reason why)
{
	int n = size == 1 ? FAMS_BYTE : FAMS_WIDE;
	for (int fam = 0; fam < n; fam++)
		one(fam, size, a, mmio, why);
}

/* LOCK CMPXCHG8B, once succeeding and once failing (it locks and writes either way). */
static void cx8(uintptr_t a, bool mmio, enum reason why)
{
	for (int ok = 1; ok >= 0; ok--) {
		uint64_t v = rnd(), n = rnd();
		store(a, 8, v);
		uint64_t v0 = load(a, 8);
		if (!mmio)
			check("cmpxchg8b store/load", 8, a, v0, v);
		uint64_t cmp = ok ? v0 : v0 ^ (1ull << 40);
		uint32_t lo = (uint32_t)cmp, hi = (uint32_t)(cmp >> 32);
		uint64_t f;
		__asm__ volatile("lock cmpxchg8b (%[p])\n\tpushfq\n\tpopq %[f]"
				 : [f] "=r"(f), "+a"(lo), "+d"(hi)
				 : [p] "r"(a), "b"((uint32_t)n), "c"((uint32_t)(n >> 32))
				 : "cc", "memory");
		tally[why]++;
		check("cmpxchg8b", 8, a, load(a, 8), mmio || !ok ? v0 : n);
		check("cmpxchg8b edx:eax", 8, a, (uint64_t)hi << 32 | lo, v0);
		check("cmpxchg8b ZF", 8, a, f & RFL_ZF, ok ? RFL_ZF : 0);
	}
}

/* LOCK CMPXCHG16B (16-byte aligned), once succeeding and once failing. */
static void cx16(uintptr_t a, enum reason why)
{
	if (!have_cx16)
		return;
	for (int ok = 1; ok >= 0; ok--) {
		uint64_t v_lo = rnd(), v_hi = rnd(), n_lo = rnd(), n_hi = rnd();
		store(a, 8, v_lo);
		store(a + 8, 8, v_hi);
		uint64_t lo = v_lo, hi = ok ? v_hi : v_hi ^ 4;
		uint64_t f;
		__asm__ volatile("lock cmpxchg16b (%[p])\n\tpushfq\n\tpopq %[f]"
				 : [f] "=r"(f), "+a"(lo), "+d"(hi)
				 : [p] "r"(a), "b"(n_lo), "c"(n_hi)
				 : "cc", "memory");
		tally[why]++;
		check("cmpxchg16b lo", 16, a, load(a, 8), ok ? n_lo : v_lo);
		check("cmpxchg16b hi", 16, a + 8, load(a + 8, 8), ok ? n_hi : v_hi);
		check("cmpxchg16b rdx:rax", 16, a, lo ^ hi, v_lo ^ v_hi);
		check("cmpxchg16b rax", 16, a, lo, v_lo);
		check("cmpxchg16b ZF", 16, a, f & RFL_ZF, ok ? RFL_ZF : 0);
	}
}

/* ---- reporting per kind ------------------------------------------------------------------------ */

static unsigned long mark[3];

static void kind_begin(const char *kind)
{
	cur_kind = kind;
	for (int i = 0; i < 3; i++)
		mark[i] = tally[i];
}

static void kind_end(int size)
{
	unsigned long bus = (tally[R_SPLIT] - mark[R_SPLIT]) + (tally[R_UC] - mark[R_UC]);
	unsigned long ops = bus + tally[R_NONE] - mark[R_NONE];
	rt_printf("census: %s %d expect %lu bus locks (%lu locked ops)\n", cur_kind, size, bus, ops);
}

/* One full set at the aligned address a (64-byte aligned, so every size is naturally aligned):
 * sizes 1, 2, 4, 8, then CMPXCHG8B and CMPXCHG16B. */
static void full_set(const char *kind, uintptr_t a, bool mmio, bool with_cx16, enum reason why)
{
	static const int sizes[] = {1, 2, 4, 8};
	for (unsigned i = 0; i < 4; i++) {
		kind_begin(kind);
		families(sizes[i], a + 16 * i, mmio, why);
		kind_end(sizes[i]);
	}
	kind_begin(kind);
	cx8(a + 8, mmio, why); /* 8-aligned, not 16: CMPXCHG8B needs no more */
	kind_end(8);
	if (with_cx16 && have_cx16) {
		kind_begin(kind);
		cx16(a + 32, why);
		kind_end(16);
	}
}

/* ---- the phases ------------------------------------------------------------------------------ */

/* Write-back buffers: two pages, so that an operand can cross the page boundary between them. */
static uint8_t wb_buf[2 * 4096] __attribute__((aligned(4096)));
/* Physical pages mapped a second time, with other memory types, at BL_HIGH_VA. */
static uint8_t uc_pages[5][4096] __attribute__((aligned(4096)));
enum { SLOT_UC, SLOT_UCMINUS, SLOT_PAT_UC, SLOT_PAT_UCMINUS, SLOT_PAT_WB };

static uintptr_t slot_va(unsigned slot) { return (uintptr_t)(BL_HIGH_VA + slot * 4096ull); }

static void phase_wb(void)
{
	uintptr_t line = (uintptr_t)wb_buf + 256;
	full_set("wb", line, false, true, R_NONE);
	/* Misaligned but inside one line: still a cache-line lock, not a bus lock. */
	kind_begin("wb-misaligned");
	families(1, line + 63, false, R_NONE); /* a byte never splits, even at the line's end */
	kind_end(1);
	kind_begin("wb-misaligned");
	families(2, line + 64 + 1, false, R_NONE);
	families(2, line + 128 + 62, false, R_NONE); /* ends exactly at the line's end */
	kind_end(2);
	kind_begin("wb-misaligned");
	families(4, line + 192 + 1, false, R_NONE);
	families(4, line + 256 + 60, false, R_NONE);
	kind_end(4);
	kind_begin("wb-misaligned");
	families(8, line + 320 + 3, false, R_NONE);
	families(8, line + 384 + 56, false, R_NONE);
	cx8(line + 448 + 4, false, R_NONE);
	kind_end(8);
}

static void phase_split(void)
{
	uintptr_t line = (uintptr_t)wb_buf + 1024; /* 64-aligned, well inside page 0 */
	uintptr_t page_end = (uintptr_t)wb_buf + 4096;
	kind_begin("split");
	families(2, line + 63, false, R_SPLIT);
	kind_end(2);
	kind_begin("split");
	families(4, line + 128 + 61, false, R_SPLIT);
	families(4, line + 256 + 62, false, R_SPLIT);
	families(4, line + 384 + 63, false, R_SPLIT);
	kind_end(4);
	kind_begin("split");
	families(8, line + 512 + 57, false, R_SPLIT);
	families(8, line + 640 + 60, false, R_SPLIT);
	families(8, line + 768 + 63, false, R_SPLIT);
	kind_end(8);
	/* Across the 4 KiB boundary: two lines on two pages (both write-back). */
	kind_begin("split-page");
	families(2, page_end - 1, false, R_SPLIT);
	kind_end(2);
	kind_begin("split-page");
	families(4, page_end - 2, false, R_SPLIT);
	kind_end(4);
	kind_begin("split-page");
	families(8, page_end - 4, false, R_SPLIT);
	kind_end(8);
	kind_begin("cmpxchg8b-split");
	cx8(line + 896 + 60, false, R_SPLIT);
	cx8(page_end - 4, false, R_SPLIT);
	kind_end(8);
}

static void phase_uc(void)
{
	full_set("uc", slot_va(SLOT_UC) + 64, false, true, R_UC);           /* PCD=1 PWT=1: entry 3, UC */
	full_set("uc-minus", slot_va(SLOT_UCMINUS) + 64, false, true, R_UC); /* PCD=1: entry 2, UC- */
}

static void phase_pat(void)
{
	bl_set_pat(PAT_CENSUS);
	uint64_t pat = rdmsr(BL_MSR_PAT);
	check("rdmsr IA32_PAT", 8, BL_MSR_PAT, pat, PAT_CENSUS);
	full_set("pat-uc", slot_va(SLOT_PAT_UC) + 64, false, true, R_UC); /* PAT=1: entry 4, UC */
	full_set("pat-uc", slot_va(SLOT_PAT_UC) + 1024, false, true, R_UC);
	full_set("pat-uc-minus", slot_va(SLOT_PAT_UCMINUS) + 64, false, true, R_UC); /* entry 5, UC- */
	/* PAT=1 PCD=1: entry 6, which the power-on PAT makes UC- but PAT_CENSUS makes WB. The PCD
	 * bit alone does not make memory uncacheable: the PAT entry it selects does. */
	full_set("pat-wb", slot_va(SLOT_PAT_WB) + 64, false, true, R_NONE);
	bl_set_pat(BL_PAT_DEFAULT);
}

static bool mmio_free(void)
{
	for (unsigned i = 0; i < rt_memmap_count(); i++) {
		const struct hvm_memmap_table_entry *e = rt_memmap_entry(i);
		if (e->addr < MMIO_ADDR + 4096 && e->addr + e->size > MMIO_ADDR)
			return false;
	}
	return true;
}

static void phase_mmio(void)
{
	if (!mmio_free()) {
		rt_printf("census: mmio skipped: 0x%lx is in the memory map (use --mem=128M)\n",
			  (unsigned long)MMIO_ADDR);
		return;
	}
	rt_printf("census: mmio reads 0x%lx\n", (unsigned long)load(MMIO_ADDR, 8));
	full_set("mmio", MMIO_ADDR + 64, true, false, R_UC);
}

/* Unlocked RMWs of the lockable families, plain loads/stores and string moves, all crossing a
 * line; then unlocked ops on UC memory; none is a bus lock. The tallies do not move. */
static void phase_unlocked(void)
{
	uintptr_t a = (uintptr_t)wb_buf + 2048 + 62; /* a 4-byte operand here crosses a line */
	uintptr_t q = (uintptr_t)wb_buf + 2048 + 128 + 60;
	kind_begin("unlocked");
	uint32_t v = (uint32_t)rnd(), s = (uint32_t)rnd();
	store(a, 4, v);
	__asm__ volatile("addl %[s], (%[p])" : : [p] "r"(a), [s] "r"(s) : "cc", "memory");
	check("add", 4, a, load(a, 4), (uint32_t)(v + s));
	v = (uint32_t)(v + s);
	__asm__ volatile("incl (%[p])" : : [p] "r"(a) : "cc", "memory");
	check("inc", 4, a, load(a, 4), (uint32_t)(v + 1));
	v = v + 1;
	__asm__ volatile("btsl $29, (%[p])" : : [p] "r"(a) : "cc", "memory");
	check("bts", 4, a, load(a, 4), v | 1u << 29);
	v |= 1u << 29;
	uint32_t x = s;
	__asm__ volatile("xaddl %[s], (%[p])" : [s] "+r"(x) : [p] "r"(a) : "cc", "memory");
	check("xadd", 4, a, load(a, 4), (uint32_t)(v + s));
	check("xadd reg", 4, a, x, v);
	v = (uint32_t)(v + s);
	uint32_t acc = v;
	__asm__ volatile("cmpxchgl %[s], (%[p])" : "+a"(acc) : [p] "r"(a), [s] "r"(s) : "cc", "memory");
	check("cmpxchg (no lock)", 4, a, load(a, 4), s);
	uint64_t w = rnd(), n = rnd();
	store(q, 8, w);
	uint32_t lo = (uint32_t)w, hi = (uint32_t)(w >> 32);
	__asm__ volatile("cmpxchg8b (%[p])"
			 : "+a"(lo), "+d"(hi)
			 : [p] "r"(q), "b"((uint32_t)n), "c"((uint32_t)(n >> 32))
			 : "cc", "memory");
	check("cmpxchg8b (no lock)", 8, q, load(q, 8), n);
	/* Split loads and stores, and a string move whose source and destination cross lines. */
	store(q, 8, w);
	check("mov split", 8, q, load(q, 8), w);
	uintptr_t dst = (uintptr_t)wb_buf + 3072 + 61;
	uintptr_t src = q - 5;
	size_t cnt = 24;
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(cnt) : : "memory");
	check("rep movsb", 8, (uintptr_t)wb_buf + 3072 + 66, load((uintptr_t)wb_buf + 3072 + 66, 8), w);
	/* XCHG between registers: no memory operand, no lock. */
	uint64_t r1 = 1, r2 = 2;
	__asm__ volatile("xchgq %0, %1" : "+r"(r1), "+r"(r2));
	check("xchg reg,reg", 8, 0, r1 << 8 | r2, 2 << 8 | 1);
	kind_end(4);

	/* Unlocked RMW on uncacheable memory: not locked, so not a bus lock. */
	kind_begin("unlocked-uc");
	uintptr_t u = slot_va(SLOT_UC) + 2048;
	store(u, 8, w);
	__asm__ volatile("addq %[s], (%[p])" : : [p] "r"(u), [s] "r"(n) : "cc", "memory");
	check("add uc", 8, u, load(u, 8), w + n);
	kind_end(8);
}

/* ---- main -------------------------------------------------------------------------------------- */

enum { PH_WB, PH_SPLIT, PH_UC, PH_PAT, PH_MMIO, PH_UNLOCKED, PH_N };
static const char *const phase_name[PH_N] = {"wb", "split", "uc", "pat", "mmio", "unlocked"};
static void (*const phase_fn[PH_N])(void) = {phase_wb, phase_split, phase_uc, phase_pat, phase_mmio,
					       phase_unlocked};

/* Parses the command line into a set of phases; false on an unknown word. */
static bool parse(const char *s, bool want[PH_N])
{
	bool any = false;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (!*s)
			break;
		const char *w = s;
		while (*s && *s != ' ' && *s != '\t' && *s != ',')
			s++;
		size_t len = (size_t)(s - w);
		if (len == 3 && !strncmp(w, "all", 3)) {
			for (int i = 0; i < PH_N; i++)
				want[i] = true;
			any = true;
			continue;
		}
		int i;
		for (i = 0; i < PH_N; i++)
			if (strlen(phase_name[i]) == len && !strncmp(w, phase_name[i], len))
				break;
		if (i == PH_N) {
			rt_printf("census: unknown phase \"%.*s\" (phases: all wb split uc pat mmio unlocked)\n",
				  (int)len, w);
			return false;
		}
		want[i] = any = true;
	}
	if (!any)
		for (int i = 0; i < PH_N; i++)
			want[i] = true;
	return true;
}

int guest_main(void)
{
	bool want[PH_N] = {0};
	if (!parse(rt_cmdline(), want))
		return 2;
	have_cx16 = cpuid(1, 0).ecx >> 13 & 1;
	if (!have_cx16)
		rt_puts("census: CPUID.1:ECX.CX16 is clear: no CMPXCHG16B (counts below exclude it)\n");
	bl_paging_init();
	bl_map(SLOT_UC, (uintptr_t)uc_pages[0], BL_PTE_PCD | BL_PTE_PWT);
	bl_map(SLOT_UCMINUS, (uintptr_t)uc_pages[1], BL_PTE_PCD);
	bl_map(SLOT_PAT_UC, (uintptr_t)uc_pages[2], BL_PTE_PAT);
	bl_map(SLOT_PAT_UCMINUS, (uintptr_t)uc_pages[3], BL_PTE_PAT | BL_PTE_PWT);
	bl_map(SLOT_PAT_WB, (uintptr_t)uc_pages[4], BL_PTE_PAT | BL_PTE_PCD);

	unsigned long sum_split = 0, sum_uc = 0;
	for (int i = 0; i < PH_N; i++) {
		if (!want[i])
			continue;
		unsigned long s0 = tally[R_SPLIT], u0 = tally[R_UC];
		phase_fn[i]();
		unsigned long ds = tally[R_SPLIT] - s0, du = tally[R_UC] - u0;
		rt_printf("census-phase: %s split=%lu uc=%lu total=%lu\n", phase_name[i], ds, du, ds + du);
		/* The counts documented at the top, as the tallies must reproduce them. */
		unsigned long want_s = 0, want_u = 0, cx16_ops = have_cx16 ? 0 : 2;
		switch (i) {
		case PH_SPLIT: want_s = EXPECT_SPLIT; break;
		case PH_UC: want_u = EXPECT_UC - 2 * cx16_ops; break;
		case PH_PAT: want_u = EXPECT_PAT - 3 * cx16_ops; break;
		case PH_MMIO: want_u = mmio_free() ? EXPECT_MMIO : 0; break;
		}
		cur_kind = phase_name[i];
		check("phase split count", 0, 0, ds, want_s);
		check("phase uc count", 0, 0, du, want_u);
		sum_split += ds;
		sum_uc += du;
	}
	rt_printf("census-expect: split=%lu uc=%lu total=%lu\n", sum_split, sum_uc, sum_split + sum_uc);
	rt_printf("census: %lu checks, %lu failed\n", checks, failed);
	return failed ? RT_EXIT_FAIL : RT_EXIT_OK;
}
