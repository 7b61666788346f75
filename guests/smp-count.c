/* SPDX-License-Identifier: MIT */
/*
 * smp-count: every vCPU runs M locked operations of one family on one shared operand; afterwards
 * the operand must hold exactly what M x N atomic operations give. One lost update anywhere (a
 * locked read-modify-write that is not atomic with respect to another vCPU's) shows.
 *
 * Command line: [M] (per vCPU and family, decimal with optional k/M suffix; default 2000: about 1 s on the emu engine with 2 vCPUs on this project's machines, where a split lock costs a few microseconds).
 *
 * Families, each at operand sizes 2, 4 and 8, ALIGNED and SPLIT (the operand crosses a 64-byte
 * line: size 2 at line+63, 4 at line+62, 8 at line+60, so every split operation is a split lock):
 *   counting, final value = start + N*M*delta (mod 2^bits):
 *     lock add $1, lock sub $1, lock inc, lock dec, stc+lock adc $0, stc+lock sbb $0,
 *     lock xadd (+1), a lock cmpxchg loop (+1)
 *   involutions, two per iteration, final value = start:
 *     lock neg; lock neg      lock not; lock not
 *   one bit per vCPU (vCPU i owns bit i; vCPUs with i >= bits sit out), checked on every step,
 *   final value = 0:
 *     lock bts / lock btr (CF must say 0, then 1)     lock btc twice (CF 0, then 1)
 *     lock or / lock and (a plain load sees the bit set, then clear)
 *     lock xor twice (the same)
 * and, at size 4 (the lock word aligned or split), a plain increment of an aligned counter under
 *     a lock bts/btr spin lock, an xchg spin lock (implicitly locked; released by a plain store)
 * and cmpxchg8b (+1, aligned and split at line+60), cmpxchg16b (+1 with carry into the high
 * quadword, 16-aligned), and lock-add-mixed: even vCPUs lock-add 1 to a split dword at line+62,
 * odd vCPUs lock-add 1 to the aligned word at line+64 that overlaps its upper half.
 *
 * Output: `smp-count: FAMILY ok (N x M)` per family, `smp-count: FAMILY FAIL ...` with the values
 * on a mismatch, then `smp-count: F families ok` (F does not depend on N) or `smp-count: K of F
 * families FAILED`. Exit status 0, 1 on any failure, 2 for a bad command line.
 */
#include "rt.h"
#include "smp/common.h"

#define DEFAULT_M 2000

enum kind { COUNT, INVOLUTION, OWNBIT, SPINLOCK, CX8, CX16, MIXED };

struct family;
typedef void (*op_fn)(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p);

struct family {
	const char *name;
	enum kind kind;
	int size;    /* operand bytes */
	int delta;   /* COUNT: per operation */
	op_fn run;
};

/* The operand area: four lines, page-aligned; families put their operand at line 1 (+ split
 * offset), spin locks their counter at line 3. */
static uint8_t area[4096] __attribute__((aligned(4096)));
static uint64_t violations __attribute__((aligned(64)));
static struct smp_barrier start_barrier;

static volatile uint8_t *operand(int size, bool split)
{
	return area + 64 + (split ? 64 - (size == 2 ? 1 : size == 4 ? 2 : 4) : 0);
}

static void add_violations(uint64_t v)
{
	if (v)
		__atomic_fetch_add(&violations, v, __ATOMIC_RELAXED);
}

/* ---- counting and involutions: one instruction (or a fixed pair) per iteration ---------------- */

#define LOOP_ONE(fname, body, ...)                                                               \
	static void fname(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p) \
	{                                                                                        \
		(void)f;                                                                         \
		(void)cpu;                                                                       \
		for (uint64_t i = 0; i < m; i++)                                                 \
			__asm__ volatile(body : : "r"(p), ##__VA_ARGS__ : "cc", "memory");       \
	}

#define SIZED(name, w, l, q)                                 \
	LOOP_ONE(name##2, w)                                 \
	LOOP_ONE(name##4, l)                                 \
	LOOP_ONE(name##8, q)

SIZED(op_add, "lock addw $1, (%0)", "lock addl $1, (%0)", "lock addq $1, (%0)")
SIZED(op_sub, "lock subw $1, (%0)", "lock subl $1, (%0)", "lock subq $1, (%0)")
SIZED(op_inc, "lock incw (%0)", "lock incl (%0)", "lock incq (%0)")
SIZED(op_dec, "lock decw (%0)", "lock decl (%0)", "lock decq (%0)")
SIZED(op_adc, "stc; lock adcw $0, (%0)", "stc; lock adcl $0, (%0)", "stc; lock adcq $0, (%0)")
SIZED(op_sbb, "stc; lock sbbw $0, (%0)", "stc; lock sbbl $0, (%0)", "stc; lock sbbq $0, (%0)")
SIZED(op_neg, "lock negw (%0); lock negw (%0)", "lock negl (%0); lock negl (%0)", "lock negq (%0); lock negq (%0)")
SIZED(op_not, "lock notw (%0); lock notw (%0)", "lock notl (%0); lock notl (%0)", "lock notq (%0); lock notq (%0)")

#define XADD(n, sfx, reg)                                                                        \
	static void op_xadd##n(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p) \
	{                                                                                        \
		(void)f;                                                                         \
		(void)cpu;                                                                       \
		for (uint64_t i = 0; i < m; i++) {                                               \
			uint64_t one = 1;                                                        \
			__asm__ volatile("lock xadd" sfx " %" reg "0, (%1)" : "+r"(one) : "r"(p) : "cc", "memory"); \
		}                                                                                \
	}
XADD(2, "w", "w")
XADD(4, "l", "k")
XADD(8, "q", "q")

/* old = *p; new = old + 1; lock cmpxchg new, (p); retry while ZF = 0 (then rax holds the
 * current value, the usual loop). */
#define CMPXCHG(n, sfx, reg)                                                                     \
	static void op_cmpxchg##n(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p) \
	{                                                                                        \
		(void)f;                                                                         \
		(void)cpu;                                                                       \
		for (uint64_t i = 0; i < m; i++) {                                               \
			uint64_t old, tmp;                                                       \
			__asm__ volatile("mov" sfx " (%2), %" reg "0\n\t"                        \
					 "1: lea 1(%0), %1\n\t"                                  \
					 "lock cmpxchg" sfx " %" reg "1, (%2)\n\t"              \
					 "jnz 1b"                                                \
					 : "=&a"(old), "=&r"(tmp)                                \
					 : "r"(p)                                                \
					 : "cc", "memory");                                      \
		}                                                                                \
	}
CMPXCHG(2, "w", "w")
CMPXCHG(4, "l", "k")
CMPXCHG(8, "q", "q")

/* ---- one bit per vCPU ------------------------------------------------------------------------ */

static bool owns_bit(const struct family *f, unsigned cpu)
{
	return cpu < (unsigned)(f->size < 0 ? -f->size : f->size) * 8; /* size < 0: split */
}

/* bts must find the bit clear (CF=0), btr must find it set (CF=1): nobody else touches it. */
#define BTSBTR(n, sfx, reg)                                                                      \
	static void op_btsbtr##n(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p) \
	{                                                                                        \
		if (!owns_bit(f, cpu))                                                           \
			return;                                                                  \
		uint64_t bad = 0, bit = cpu;                                                     \
		for (uint64_t i = 0; i < m; i++) {                                               \
			uint8_t c1, c2;                                                          \
			__asm__ volatile("lock bts" sfx " %" reg "2, (%3)\n\t"                   \
					 "setc %0\n\t"                                           \
					 "lock btr" sfx " %" reg "2, (%3)\n\t"                   \
					 "setc %1"                                               \
					 : "=&r"(c1), "=&r"(c2)                                  \
					 : "r"(bit), "r"(p)                                      \
					 : "cc", "memory");                                      \
			bad += (c1 != 0) + (c2 != 1);                                            \
		}                                                                                \
		add_violations(bad);                                                             \
	}
BTSBTR(2, "w", "w")
BTSBTR(4, "l", "k")
BTSBTR(8, "q", "q")

#define BTC(n, sfx, reg)                                                                         \
	static void op_btc##n(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p) \
	{                                                                                        \
		if (!owns_bit(f, cpu))                                                           \
			return;                                                                  \
		uint64_t bad = 0, bit = cpu;                                                     \
		for (uint64_t i = 0; i < m; i++) {                                               \
			uint8_t c1, c2;                                                          \
			__asm__ volatile("lock btc" sfx " %" reg "2, (%3)\n\t"                   \
					 "setc %0\n\t"                                           \
					 "lock btc" sfx " %" reg "2, (%3)\n\t"                   \
					 "setc %1"                                               \
					 : "=&r"(c1), "=&r"(c2)                                  \
					 : "r"(bit), "r"(p)                                      \
					 : "cc", "memory");                                      \
			bad += (c1 != 0) + (c2 != 1);                                            \
		}                                                                                \
		add_violations(bad);                                                             \
	}
BTC(2, "w", "w")
BTC(4, "l", "k")
BTC(8, "q", "q")

/* OP1 sets the bit, OP2 clears it; a plain load after each must see it so. */
#define SETCLR(name, n, type, sfx, reg, op1, op2, arg2)                                          \
	static void name##n(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p) \
	{                                                                                        \
		if (!owns_bit(f, cpu))                                                           \
			return;                                                                  \
		uint64_t bad = 0;                                                                \
		type mask = (type)(1ull << cpu), notmask = (type)~mask;                          \
		(void)notmask;                                                                   \
		for (uint64_t i = 0; i < m; i++) {                                               \
			type v1, v2;                                                             \
			__asm__ volatile("lock " op1 sfx " %" reg "2, (%3)\n\t"                  \
					 "mov" sfx " (%3), %" reg "0\n\t"                        \
					 "lock " op2 sfx " %" reg "4, (%3)\n\t"                  \
					 "mov" sfx " (%3), %" reg "1"                            \
					 : "=&r"(v1), "=&r"(v2)                                  \
					 : "r"(mask), "r"(p), "r"(arg2)                          \
					 : "cc", "memory");                                      \
			bad += !(v1 & mask) + !!(v2 & mask);                                     \
		}                                                                                \
		add_violations(bad);                                                             \
	}
SETCLR(op_orand, 2, uint16_t, "w", "w", "or", "and", notmask)
SETCLR(op_orand, 4, uint32_t, "l", "k", "or", "and", notmask)
SETCLR(op_orand, 8, uint64_t, "q", "q", "or", "and", notmask)
SETCLR(op_xorxor, 2, uint16_t, "w", "w", "xor", "xor", mask)
SETCLR(op_xorxor, 4, uint32_t, "l", "k", "xor", "xor", mask)
SETCLR(op_xorxor, 8, uint64_t, "q", "q", "xor", "xor", mask)

/* ---- spin locks around a plain increment -------------------------------------------------------- */

static volatile uint64_t *spin_counter(void) { return (volatile uint64_t *)(area + 3 * 64); }

static void op_btslock(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p)
{
	(void)f;
	(void)cpu;
	volatile uint64_t *ctr = spin_counter();
	for (uint64_t i = 0; i < m; i++) {
		__asm__ volatile("1: lock btsl $0, (%0)\n\t"
				 "jnc 3f\n\t"
				 "2: pause\n\t"
				 "testl $1, (%0)\n\t"
				 "jnz 2b\n\t"
				 "jmp 1b\n\t"
				 "3:"
				 : : "r"(p) : "cc", "memory");
		*ctr = *ctr + 1; /* plain load, plain store: only the lock makes this exact */
		__asm__ volatile("lock btrl $0, (%0)" : : "r"(p) : "cc", "memory");
	}
}

static void op_xchglock(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p)
{
	(void)f;
	(void)cpu;
	volatile uint64_t *ctr = spin_counter();
	for (uint64_t i = 0; i < m; i++) {
		uint32_t v;
		__asm__ volatile("1: movl $1, %0\n\t"
				 "xchgl %0, (%1)\n\t" /* a memory operand: locked without a prefix */
				 "testl %0, %0\n\t"
				 "jz 3f\n\t"
				 "2: pause\n\t"
				 "cmpl $0, (%1)\n\t"
				 "jnz 2b\n\t"
				 "jmp 1b\n\t"
				 "3:"
				 : "=&r"(v) : "r"(p) : "cc", "memory");
		*ctr = *ctr + 1;
		/* TSO: a plain store releases (stores are not reordered with older loads or stores). */
		__asm__ volatile("movl $0, (%0)" : : "r"(p) : "memory");
	}
}

/* ---- cmpxchg8b / cmpxchg16b ----------------------------------------------------------------------- */

static void op_cx8(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p)
{
	(void)f;
	(void)cpu;
	for (uint64_t i = 0; i < m; i++) {
		uint32_t lo, hi, nlo, nhi;
		__asm__ volatile("movl (%4), %%eax\n\t"
				 "movl 4(%4), %%edx\n\t"
				 "1: movl %%eax, %%ebx\n\t"
				 "movl %%edx, %%ecx\n\t"
				 "addl $1, %%ebx\n\t"
				 "adcl $0, %%ecx\n\t"
				 "lock cmpxchg8b (%4)\n\t"
				 "jnz 1b"
				 : "=&a"(lo), "=&d"(hi), "=&b"(nlo), "=&c"(nhi)
				 : "r"(p)
				 : "cc", "memory");
	}
}

static void op_cx16(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p)
{
	(void)f;
	(void)cpu;
	for (uint64_t i = 0; i < m; i++) {
		uint64_t lo, hi, nlo, nhi;
		__asm__ volatile("movq (%4), %%rax\n\t"
				 "movq 8(%4), %%rdx\n\t"
				 "1: movq %%rax, %%rbx\n\t"
				 "movq %%rdx, %%rcx\n\t"
				 "addq $1, %%rbx\n\t"
				 "adcq $0, %%rcx\n\t"
				 "lock cmpxchg16b (%4)\n\t"
				 "jnz 1b"
				 : "=&a"(lo), "=&d"(hi), "=&b"(nlo), "=&c"(nhi)
				 : "r"(p)
				 : "cc", "memory");
	}
}

/* ---- aligned and split on overlapping bytes ------------------------------------------------------ */

static void op_mixed(const struct family *f, unsigned cpu, uint64_t m, volatile uint8_t *p)
{
	(void)f;
	volatile uint8_t *split = p;    /* line+62, 4 bytes: 62 63 | 64 65 */
	volatile uint8_t *word = p + 2; /* line+64, 2 bytes: the dword's upper half */
	if (cpu % 2 == 0)
		for (uint64_t i = 0; i < m; i++)
			__asm__ volatile("lock addl $1, (%0)" : : "r"(split) : "cc", "memory");
	else
		for (uint64_t i = 0; i < m; i++)
			__asm__ volatile("lock addw $1, (%0)" : : "r"(word) : "cc", "memory");
}

/* ---- the table ------------------------------------------------------------------------------------ */

#define F3(nm, kind, delta, fn)                                                                       \
	{ "lock-" nm "-aligned2", kind, 2, delta, fn##2 }, { "lock-" nm "-split2", kind, -2, delta, fn##2 }, \
	{ "lock-" nm "-aligned4", kind, 4, delta, fn##4 }, { "lock-" nm "-split4", kind, -4, delta, fn##4 }, \
	{ "lock-" nm "-aligned8", kind, 8, delta, fn##8 }, { "lock-" nm "-split8", kind, -8, delta, fn##8 }

/* size < 0: split. */
static const struct family families[] = {
	F3("add", COUNT, 1, op_add),
	F3("sub", COUNT, -1, op_sub),
	F3("inc", COUNT, 1, op_inc),
	F3("dec", COUNT, -1, op_dec),
	F3("adc", COUNT, 1, op_adc),
	F3("sbb", COUNT, -1, op_sbb),
	F3("xadd", COUNT, 1, op_xadd),
	F3("cmpxchg", COUNT, 1, op_cmpxchg),
	F3("neg-neg", INVOLUTION, 0, op_neg),
	F3("not-not", INVOLUTION, 0, op_not),
	F3("bts-btr", OWNBIT, 0, op_btsbtr),
	F3("btc-btc", OWNBIT, 0, op_btc),
	F3("or-and", OWNBIT, 0, op_orand),
	F3("xor-xor", OWNBIT, 0, op_xorxor),
	{ "bts-spinlock-aligned4", SPINLOCK, 4, 0, op_btslock },
	{ "bts-spinlock-split4", SPINLOCK, -4, 0, op_btslock },
	{ "xchg-spinlock-aligned4", SPINLOCK, 4, 0, op_xchglock },
	{ "xchg-spinlock-split4", SPINLOCK, -4, 0, op_xchglock },
	{ "cmpxchg8b-aligned", CX8, 8, 0, op_cx8 },
	{ "cmpxchg8b-split", CX8, -8, 0, op_cx8 },
	{ "cmpxchg16b-aligned", CX16, 16, 0, op_cx16 },
	{ "lock-add-mixed", MIXED, -4, 0, op_mixed },
};
#define NFAM (sizeof families / sizeof families[0])

struct job {
	const struct family *f;
	uint64_t m;
	volatile uint8_t *p;
};

static void worker(unsigned cpu, void *arg)
{
	const struct job *j = arg;
	/* Start together, so the vCPUs contend for the whole run. */
	smp_barrier_wait(&start_barrier, rt_cpu_count());
	j->f->run(j->f, cpu, j->m, j->p);
}

static uint64_t load(volatile uint8_t *p, int size)
{
	uint64_t v = 0;
	for (int i = size - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void store(volatile uint8_t *p, int size, uint64_t v)
{
	for (int i = 0; i < size; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t mask_of(int size) { return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1; }

int guest_main(void)
{
	uint64_t m = smp_arg_count("smp-count", DEFAULT_M);
	if (!m)
		return 2;
	const unsigned n = rt_cpu_count();
	unsigned failed = 0;
	for (unsigned k = 0; k < NFAM; k++) {
		const struct family *f = &families[k];
		bool split = f->size < 0;
		int size = split ? -f->size : f->size;
		for (unsigned i = 0; i < sizeof area; i++)
			area[i] = 0;
		violations = 0;
		volatile uint8_t *p = f->kind == CX16 ? area + 64 : operand(size, split);
		/* Start values that make carries and borrows cross the line and the halves. */
		uint64_t start = 0, start_hi = 0;
		if (f->kind == COUNT)
			start = 0x5555555555555555ull & mask_of(size) & ~0xffull;
		else if (f->kind == INVOLUTION)
			start = 0x0123456789abcdefull & mask_of(size);
		else if (f->kind == CX8)
			start = 0xfffffffful - (uint64_t)n * m / 2;
		else if (f->kind == CX16)
			start = ~0ull - (uint64_t)n * m / 2, start_hi = 7;
		if (f->kind == SPINLOCK || f->kind == OWNBIT || f->kind == MIXED)
			start = 0;
		store(p, size > 8 ? 8 : size, start);
		if (f->kind == CX16)
			store(p + 8, 8, start_hi);

		struct job j = { f, m, p };
		rt_smp_run(worker, &j);

		uint64_t got = load(p, size > 8 ? 8 : size), want = start, got_hi = 0, want_hi = 0;
		uint64_t total = (uint64_t)n * m;
		switch (f->kind) {
		case COUNT:
			want = (start + total * (uint64_t)(int64_t)f->delta) & mask_of(size);
			break;
		case INVOLUTION:
		case OWNBIT:
			want = start;
			break;
		case SPINLOCK:
			got = *spin_counter(), want = total;
			break;
		case CX8:
			want = start + total;
			break;
		case CX16:
			want = start + total;
			want_hi = start_hi + (want < start);
			got_hi = load(p + 8, 8);
			break;
		case MIXED: {
			uint64_t even = (n + 1) / 2, odd = n / 2;
			want = (even * m + ((odd * m) << 16)) & 0xffffffffull;
			break;
		}
		}
		if (got == want && got_hi == want_hi && violations == 0) {
			rt_printf("smp-count: %s ok (%u x %lu)\n", f->name, n, (unsigned long)m);
		} else {
			failed++;
			rt_printf("smp-count: %s FAIL got 0x%lx:%016lx want 0x%lx:%016lx, %lu violations (%u x %lu)\n",
				  f->name, (unsigned long)got_hi, (unsigned long)got, (unsigned long)want_hi,
				  (unsigned long)want, (unsigned long)violations, n, (unsigned long)m);
		}
	}
	if (failed) {
		rt_printf("smp-count: %u of %u families FAILED\n", failed, (unsigned)NFAM);
		return RT_EXIT_FAIL;
	}
	rt_printf("smp-count: %u families ok\n", (unsigned)NFAM);
	return RT_EXIT_OK;
}
