/* SPDX-License-Identifier: MIT */
/*
 * bench-cpu: a CPU-bound, self-checking benchmark of ordinary integer code (issue 3,
 * "Performance"). Five parts, each the kind of loop gcc -O2 emits for freestanding code without
 * SSE, each checked against a value computed another way or known in closed form:
 *
 *   sieve   sieve of Eratosthenes below 2^15; count = pi(2^15) = 3512, and the first 4096
 *           flags agree with trial division
 *   crc32   CRC-32 (IEEE, reflected) bitwise and table-driven over pseudo-random buffers; both
 *           agree, CRC("123456789") = 0xcbf43926, and appending a buffer's CRC gives the
 *           residue 0x2144df1c
 *   sort    quicksort and heapsort of pseudo-random 64-bit keys; both sorted, identical, and the
 *           order-independent checksums (sum, xor, sum of squares) are preserved
 *   interp  a switch-dispatched stack-machine interpreter running Fibonacci mod 2^32 (checked
 *           by fast doubling) and a sum of (i*i ^ i>>3) mod 2^32 (checked by direct C)
 *   hash    FNV-1a 64 and SipHash-2-4 (reference test vectors); an open-addressing table keyed
 *           by FNV-1a finds every inserted string and none of the others
 *
 * Command line: an optional decimal scale (default BENCH_DEFAULT_SCALE; every part does `scale`
 * rounds, so the work is proportional to it), optionally `only=PART` to run one part, and
 * optionally `smp`: every vCPU (rt_cpu_count(), up to RT_MAX_CPUS = 64; -smp N under QEMU) runs the
 * whole selected work, each on state of its own (a struct bench_state of 92 KiB per vCPU, in the
 * RAM just above the APs' stacks: N x 92 KiB beyond the image and the stacks, 5.75 MiB for 64
 * vCPUs, well within blvm's default --mem of 128M; if the memory map says that RAM is not there,
 * it says how much it needs, "raise --mem", and exits 1). The vCPUs' results (the values the part
 * lines print) are compared after all are done: vCPU 0 prints the part lines, and any other vCPU
 * whose results differ from vCPU 0's gets `PART: FAIL vCPU I differs` (exit 1); a failed check
 * on vCPU I > 0 prints `PART: FAIL vCPU I: ...`. With `smp` the output differs from the one
 * without only in its first line (`bench-cpu: scale 500, smp 2 vCPUs`). Without `smp` the parts
 * run on vCPU 0 alone, exactly as they did before `smp` existed (see "the parts" below).
 * `blvm run bench-cpu -- 50`, `blvm run --vcpus=2 bench-cpu -- 50 smp`,
 * `qemu-system-x86_64 ... -kernel bench-cpu -append 50`.
 *
 * The output depends only on the command line (no timings), so it must be byte-identical under
 * every engine and QEMU. Exit 0 if every part is ok, 1 otherwise.
 */
#ifndef BENCH_PASS /* (the parts, compiled twice, are in the #else branch below) */
#include "rt.h"

/* One round of all five parts is ~3.1 M guest instructions (gcc 12 -O2), plus ~0.7 M once; the
 * default (~1.56 G instructions) takes QEMU TCG about 1.1 s on this project's machine
 * (bench/README.md). `1 only=PART` (<= 1.1 M) suits the slow kvm engine here (2-10 M/s). */
#define BENCH_DEFAULT_SCALE 500

/* ---- per-vCPU state ----------------------------------------------------------------------- */

#define SIEVE_N (1u << 15)
#define CRC_BUF 6144u
#define SORT_N 2048u
#define HASH_KEYS 512u
#define HASH_SLOTS 1024u   /* power of two, load factor 1/2 */
#define KEY_MAX 32

enum { PART_SIEVE, PART_CRC, PART_SORT, PART_INTERP, PART_HASH, NPARTS };

/* What a part's line prints beyond the constants: vCPU 0 prints it, the others must match it. */
struct part_result {
	bool ok;
	uint64_t v[4];
};

/*
 * Everything a part writes. Without `smp` these are static arrays of the same names (the first
 * pass, below). With `smp` every vCPU has one of these in RAM above the APs' stacks, never
 * zeroed: every buffer is filled before it is read, and run_all() sets cpu, failures, results.
 */
struct bench_state {
	uint8_t sieve_composite[SIEVE_N];
	uint32_t crc_table[256];
	uint8_t crc_buf[CRC_BUF + 4];
	uint64_t sort_a[SORT_N], sort_b[SORT_N];
	char hash_keys[HASH_KEYS][KEY_MAX];
	uint8_t hash_len[HASH_KEYS];
	uint16_t hash_table[HASH_SLOTS]; /* key index + 1, 0 = empty */
	unsigned cpu;
	int failures;
	struct part_result results[NPARTS];
};

/* On failure: says what (vCPUs other than 0 say which they are), counts it, and returns 1 from
 * the part, whose result stays "not ok". */
#define CHECK(part, cond, ...)                                                                   \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			rt_console_lock();                                                       \
			if (ST_CPU)                                                              \
				rt_printf("%s: FAIL vCPU %u: ", part, ST_CPU);                   \
			else                                                                     \
				rt_printf("%s: FAIL ", part);                                    \
			rt_printf(__VA_ARGS__);                                                  \
			rt_printf("\n");                                                         \
			rt_console_unlock();                                                     \
			S(failures)++;                                                           \
			return 1;                                                                \
		}                                                                                \
	} while (0)

/* ---- the parts ---------------------------------------------------------------------------- */

/*
 * The parts (the #else branch below) are compiled twice, by including this file in itself:
 *  1. without `smp`: on static arrays, as before `smp` existed. gcc specializes the parts and
 *     their helpers for the arrays' link-time addresses (quicksort.constprop.0 and the like),
 *     so this run executes the very instructions it did then: the helpers' code is identical,
 *     and the whole run costs ~200 guest instructions more (the results kept for printing);
 *  2. for `smp`: every function renamed NAME_any (the list below: a function added to the parts
 *     must be added to it, or it is defined twice), on any vCPU's state through a pointer `st`.
 */
#define BENCH_PASS 1
#include "bench-cpu.c"
#undef BENCH_PASS

#define BENCH_PASS 2
/* Keep gcc from merging the two passes' identical functions (-fipa-icf): the first pass's would
 * then be called with the second's pointers too, and lose their specialization for the arrays. */
#if !defined(__clang__) /* clang has no -fipa-icf to turn off */
#pragma GCC push_options
#pragma GCC optimize("no-ipa-icf")
#endif
#define splitmix64 splitmix64_any
#define xs64 xs64_any
#define sieve sieve_any
#define is_prime_trial is_prime_trial_any
#define part_sieve part_sieve_any
#define crc32_bitwise crc32_bitwise_any
#define crc32_table crc32_table_any
#define part_crc part_crc_any
#define insertion_sort insertion_sort_any
#define quicksort quicksort_any
#define sift_down sift_down_any
#define heapsort heapsort_any
#define checksum checksum_any
#define part_sort part_sort_any
#define interp interp_any
#define fib_doubling fib_doubling_any
#define part_interp part_interp_any
#define fnv1a64 fnv1a64_any
#define rotl rotl_any
#define load64le load64le_any
#define siphash24 siphash24_any
#define make_key make_key_any
#define key_eq key_eq_any
#define table_find table_find_any
#define part_hash part_hash_any
#include "bench-cpu.c"
#if !defined(__clang__)
#pragma GCC pop_options
#endif
#undef splitmix64
#undef xs64
#undef sieve
#undef is_prime_trial
#undef part_sieve
#undef crc32_bitwise
#undef crc32_table
#undef part_crc
#undef insertion_sort
#undef quicksort
#undef sift_down
#undef heapsort
#undef checksum
#undef part_sort
#undef interp
#undef fib_doubling
#undef part_interp
#undef fnv1a64
#undef rotl
#undef load64le
#undef siphash24
#undef make_key
#undef key_eq
#undef table_find
#undef part_hash
#undef BENCH_PASS

#else /* BENCH_PASS: the parts, on a state `st` (see "the parts" above) */

/*
 * S(x) is the state's member x. In the first pass it is a static array (or variable) of that name,
 * as before `smp`, and the parts and their helpers take no state; in the second it is st->x, and
 * they take `st` as a first parameter (ST_PARAM_; ST_ passes it on). ST_CPU is the vCPU.
 */
#undef S
#undef ST_PARAM_
#undef ST_
#undef ST_CPU
#if BENCH_PASS == 1
#define S(x) x
#define ST_PARAM_
#define ST_
#define ST_CPU 0u
static uint8_t sieve_composite[SIEVE_N];
static uint32_t crc_table[256];
static uint8_t crc_buf[CRC_BUF + 4];
static uint64_t sort_a[SORT_N], sort_b[SORT_N];
static char hash_keys[HASH_KEYS][KEY_MAX];
static uint8_t hash_len[HASH_KEYS];
static uint16_t hash_table[HASH_SLOTS];
static int failures;
static struct part_result results[NPARTS];
#else
#define S(x) (st->x)
#define ST_PARAM_ struct bench_state *st,
#define ST_ st,
#define ST_CPU (st->cpu)
#endif

/* ---- pseudo-random numbers: splitmix64 for seeds, xorshift64* for streams ------------------- */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t xs64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* ---- (a) sieve of Eratosthenes ----------------------------------------------------------------- */

#define SIEVE_PI 3512u      /* pi(2^15), the number of primes below 32768 */
#define TRIAL_N 4096u       /* flags below this are checked by trial division */
__attribute__((noinline)) static uint32_t sieve(uint8_t *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		c[i] = 0;
	c[0] = c[1] = 1;
	for (uint32_t i = 2; i * i < n; i++)
		if (!c[i])
			for (uint32_t j = i * i; j < n; j += i)
				c[j] = 1;
	uint32_t count = 0;
	for (uint32_t i = 0; i < n; i++)
		count += !c[i];
	return count;
}

static bool is_prime_trial(uint32_t n)
{
	if (n < 2)
		return false;
	for (uint32_t d = 2; d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

static int part_sieve(ST_PARAM_ uint32_t rounds)
{
	uint32_t n = SIEVE_N;
	for (uint32_t r = 0; r < rounds; r++) {
		RT_OPAQUE(n);
		uint32_t count = sieve(S(sieve_composite), n);
		CHECK("sieve", count == SIEVE_PI, "round %u: %u primes below %u, want %u", r, count, n,
		      SIEVE_PI);
	}
	for (uint32_t i = 0; i < TRIAL_N; i++)
		CHECK("sieve", !S(sieve_composite)[i] == is_prime_trial(i), "%u: sieve says %s", i,
		      S(sieve_composite)[i] ? "composite" : "prime");
	S(results)[PART_SIEVE].ok = true;
	return 0;
}

/* ---- (b) CRC-32 ----------------------------------------------------------------------------- */

#define CRC_POLY 0xedb88320u  /* IEEE 802.3, reflected */

__attribute__((noinline)) static uint32_t crc32_bitwise(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC_POLY & -(c & 1));
	}
	return ~c;
}

__attribute__((noinline)) static uint32_t crc32_table(ST_PARAM_ const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	while (n--)
		c = S(crc_table)[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static int part_crc(ST_PARAM_ uint32_t rounds)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC_POLY : c >> 1;
		S(crc_table)[i] = c;
	}
	CHECK("crc32", S(crc_table)[1] == 0x77073096u && S(crc_table)[255] == 0x2d02ef8du,
	      "table[1] = 0x%08x table[255] = 0x%08x", S(crc_table)[1], S(crc_table)[255]);
	static const char check[] = "123456789";
	uint32_t a = crc32_bitwise((const uint8_t *)check, 9), b = crc32_table(ST_ (const uint8_t *)check, 9);
	CHECK("crc32", a == 0xcbf43926u && b == 0xcbf43926u,
	      "CRC(\"123456789\") = 0x%08x bitwise, 0x%08x table, want 0xcbf43926", a, b);

	uint32_t fold = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		uint64_t s = splitmix64(0xc0c0 + r);
		for (uint32_t i = 0; i < CRC_BUF; i += 8) {
			uint64_t v = xs64(&s);
			for (int k = 0; k < 8; k++)
				S(crc_buf)[i + k] = (uint8_t)(v >> (8 * k));
		}
		a = crc32_bitwise(S(crc_buf), CRC_BUF);
		b = crc32_table(ST_ S(crc_buf), CRC_BUF);
		CHECK("crc32", a == b, "round %u: bitwise 0x%08x != table 0x%08x", r, a, b);
		/* A message followed by its CRC (little-endian) has the constant CRC 0x2144df1c. */
		for (int k = 0; k < 4; k++)
			S(crc_buf)[CRC_BUF + k] = (uint8_t)(a >> (8 * k));
		uint32_t res = crc32_table(ST_ S(crc_buf), CRC_BUF + 4);
		CHECK("crc32", res == 0x2144df1cu, "round %u: residue 0x%08x, want 0x2144df1c", r, res);
		fold = fold * 31 + a;
	}
	S(results)[PART_CRC] = (struct part_result){.ok = true, .v = {fold}};
	return 0;
}

/* ---- (c) sorting ------------------------------------------------------------------------------ */

static void insertion_sort(uint64_t *v, long lo, long hi)
{
	for (long i = lo + 1; i <= hi; i++) {
		uint64_t x = v[i];
		long j = i - 1;
		while (j >= lo && v[j] > x) {
			v[j + 1] = v[j];
			j--;
		}
		v[j + 1] = x;
	}
}

/* Hoare partition around the median of three, recursing into the smaller side. */
__attribute__((noinline)) static void quicksort(uint64_t *v, long lo, long hi)
{
	while (hi - lo > 16) {
		long mid = lo + (hi - lo) / 2;
		uint64_t a = v[lo], b = v[mid], c = v[hi];
		uint64_t pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
		long i = lo - 1, j = hi + 1;
		for (;;) {
			do
				i++;
			while (v[i] < pivot);
			do
				j--;
			while (v[j] > pivot);
			if (i >= j)
				break;
			uint64_t t = v[i];
			v[i] = v[j];
			v[j] = t;
		}
		if (j - lo < hi - j) {
			quicksort(v, lo, j);
			lo = j + 1;
		} else {
			quicksort(v, j + 1, hi);
			hi = j;
		}
	}
	insertion_sort(v, lo, hi);
}

static void sift_down(uint64_t *v, size_t root, size_t n)
{
	uint64_t x = v[root];
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			break;
		if (child + 1 < n && v[child + 1] > v[child])
			child++;
		if (v[child] <= x)
			break;
		v[root] = v[child];
		root = child;
	}
	v[root] = x;
}

__attribute__((noinline)) static void heapsort(uint64_t *v, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(v, i, n);
	for (size_t end = n - 1; end > 0; end--) {
		uint64_t t = v[0];
		v[0] = v[end];
		v[end] = t;
		sift_down(v, 0, end);
	}
}

#if BENCH_PASS == 1 /* types and data: once */
struct sum3 {
	uint64_t sum, xor, sq;
};
#endif

static struct sum3 checksum(const uint64_t *v, size_t n)
{
	struct sum3 s = {0, 0, 0};
	for (size_t i = 0; i < n; i++) {
		s.sum += v[i];
		s.xor ^= v[i];
		s.sq += v[i] * v[i];
	}
	return s;
}

static int part_sort(ST_PARAM_ uint32_t rounds)
{
	uint64_t fold = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		uint64_t s = splitmix64(0x5027 + r);
		/* Every 8th round, keys from a small range: many duplicates. */
		uint64_t mask = r % 8 == 7 ? 0xff : ~0ull;
		for (uint32_t i = 0; i < SORT_N; i++)
			S(sort_a)[i] = S(sort_b)[i] = xs64(&s) & mask;
		struct sum3 before = checksum(S(sort_a), SORT_N);
		quicksort(S(sort_a), 0, SORT_N - 1);
		heapsort(S(sort_b), SORT_N);
		for (uint32_t i = 0; i < SORT_N; i++) {
			CHECK("sort", i == 0 || S(sort_a)[i - 1] <= S(sort_a)[i], "round %u: quicksort out of order at %u",
			      r, i);
			CHECK("sort", S(sort_a)[i] == S(sort_b)[i], "round %u: quicksort and heapsort differ at %u", r, i);
		}
		struct sum3 after = checksum(S(sort_a), SORT_N);
		CHECK("sort", before.sum == after.sum && before.xor == after.xor && before.sq == after.sq,
		      "round %u: checksum changed by sorting", r);
		fold = fold * 31 + S(sort_a)[SORT_N / 2];
	}
	S(results)[PART_SORT] = (struct part_result){.ok = true, .v = {fold}};
	return 0;
}

/* ---- (d) bytecode interpreter ---------------------------------------------------------------- */

#if BENCH_PASS == 1 /* types and data: once */
enum op { OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_XOR, OP_SHR, OP_DUP,
	  OP_DROP, OP_SWAP, OP_LT, OP_JZ, OP_JMP };

enum { V_A, V_B, V_N, V_I, V_S, NVARS = 8 };

/* Fibonacci: a = F(n) mod 2^32, F(0) = 0. */
static uint32_t prog_fib[] = {
	OP_PUSH, 0, OP_STORE, V_A,
	OP_PUSH, 1, OP_STORE, V_B,
	/* 8: loop */
	OP_LOAD, V_N, OP_JZ, 32,
	OP_LOAD, V_A, OP_LOAD, V_B, OP_ADD, OP_LOAD, V_B, OP_STORE, V_A, OP_STORE, V_B,
	OP_LOAD, V_N, OP_PUSH, 1, OP_SUB, OP_STORE, V_N,
	OP_JMP, 8,
	/* 32: end */
	OP_LOAD, V_A, OP_HALT,
};

/* s = sum over i < n of (i*i ^ i>>3) mod 2^32 */
static uint32_t prog_sum[] = {
	OP_PUSH, 0, OP_STORE, V_S,
	OP_PUSH, 0, OP_STORE, V_I,
	/* 8: loop */
	OP_LOAD, V_I, OP_LOAD, V_N, OP_LT, OP_JZ, 40,
	OP_LOAD, V_I, OP_DUP, OP_MUL, OP_LOAD, V_I, OP_PUSH, 3, OP_SHR, OP_XOR,
	OP_LOAD, V_S, OP_SWAP, OP_ADD, OP_STORE, V_S,
	OP_LOAD, V_I, OP_PUSH, 1, OP_ADD, OP_STORE, V_I, OP_JMP, 8,
	/* 40: end */
	OP_LOAD, V_S, OP_HALT,
};
#endif

/* Returns the top of the stack at OP_HALT; *bad is set on a malformed program. */
__attribute__((noinline)) static uint32_t interp(const uint32_t *code, uint32_t *vars, int *bad)
{
	uint32_t stack[64];
	int sp = 0;
	size_t pc = 0;
	for (;;) {
		uint32_t op = code[pc++];
		switch (op) {
		case OP_HALT:
			return sp > 0 ? stack[sp - 1] : 0;
		case OP_PUSH:
			stack[sp++] = code[pc++];
			break;
		case OP_LOAD:
			stack[sp++] = vars[code[pc++]];
			break;
		case OP_STORE:
			vars[code[pc++]] = stack[--sp];
			break;
		case OP_ADD:
			sp--;
			stack[sp - 1] += stack[sp];
			break;
		case OP_SUB:
			sp--;
			stack[sp - 1] -= stack[sp];
			break;
		case OP_MUL:
			sp--;
			stack[sp - 1] *= stack[sp];
			break;
		case OP_XOR:
			sp--;
			stack[sp - 1] ^= stack[sp];
			break;
		case OP_SHR:
			sp--;
			stack[sp - 1] >>= stack[sp] & 31;
			break;
		case OP_DUP:
			stack[sp] = stack[sp - 1];
			sp++;
			break;
		case OP_DROP:
			sp--;
			break;
		case OP_SWAP: {
			uint32_t t = stack[sp - 1];
			stack[sp - 1] = stack[sp - 2];
			stack[sp - 2] = t;
			break;
		}
		case OP_LT:
			sp--;
			stack[sp - 1] = stack[sp - 1] < stack[sp];
			break;
		case OP_JZ:
			if (stack[--sp] == 0)
				pc = code[pc];
			else
				pc++;
			break;
		case OP_JMP:
			pc = code[pc];
			break;
		default:
			*bad = 1;
			return 0;
		}
		if (sp < 0 || sp > 60) {
			*bad = 1;
			return 0;
		}
	}
}

/* F(n) mod 2^32 by fast doubling: F(2k) = F(k)(2F(k+1) - F(k)), F(2k+1) = F(k)^2 + F(k+1)^2. */
static uint32_t fib_doubling(uint32_t n)
{
	uint32_t a = 0, b = 1; /* F(k), F(k+1) with k = the bits of n seen so far */
	for (int bit = 31; bit >= 0; bit--) {
		uint32_t c = a * (2 * b - a), d = a * a + b * b;
		if (n >> bit & 1) {
			a = d;
			b = c + d;
		} else {
			a = c;
			b = d;
		}
	}
	return a;
}

#define INTERP_N 1200u

static int part_interp(ST_PARAM_ uint32_t rounds)
{
	static const uint32_t small[] = {0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89};
	for (uint32_t n = 0; n < 12; n++)
		CHECK("interp", fib_doubling(n) == small[n], "fib_doubling(%u) = %u, want %u", n,
		      fib_doubling(n), small[n]);
	uint32_t fold = 0, f = 0, s = 0, n = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		uint32_t vars[NVARS] = {0};
		int bad = 0;
		n = INTERP_N + r % 64;
		vars[V_N] = n;
		f = interp(prog_fib, vars, &bad);
		CHECK("interp", !bad && f == fib_doubling(n), "fib(%u): interpreter 0x%08x, fast doubling 0x%08x%s",
		      n, f, fib_doubling(n), bad ? " (bad program)" : "");
		vars[V_N] = n;
		s = interp(prog_sum, vars, &bad);
		uint32_t want = 0;
		for (uint32_t i = 0; i < n; i++) {
			RT_OPAQUE(i);
			want += i * i ^ i >> 3;
		}
		CHECK("interp", !bad && s == want, "sum(%u): interpreter 0x%08x, direct 0x%08x%s", n, s, want,
		      bad ? " (bad program)" : "");
		fold = fold * 31 + f + s;
	}
	S(results)[PART_INTERP] = (struct part_result){.ok = true, .v = {n, f, s, fold}};
	return 0;
}

/* ---- (e) hashing ---------------------------------------------------------------------------- */

static uint64_t fnv1a64(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	while (n--) {
		h ^= (uint8_t)*p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static inline uint64_t rotl(uint64_t x, int b) { return x << b | x >> (64 - b); }

#define SIPROUND                                                                                 \
	do {                                                                                     \
		v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);                        \
		v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                           \
		v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                           \
		v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);                        \
	} while (0)

static uint64_t load64le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* SipHash-2-4 (Aumasson and Bernstein), 64-bit output. */
static uint64_t siphash24(const void *data, size_t n, uint64_t k0, uint64_t k1)
{
	const uint8_t *p = data;
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	uint64_t b = (uint64_t)n << 56;
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t m = load64le(p);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t i = 0; i < n; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* "r<round>/<tag><i>" in decimal: distinct for distinct (round, tag, i). */
static size_t make_key(char *out, uint32_t round, char tag, uint32_t i)
{
	char tmp[12];
	size_t n = 0, t;
	out[n++] = 'r';
	t = 0;
	do tmp[t++] = (char)('0' + round % 10); while ((round /= 10) != 0);
	while (t)
		out[n++] = tmp[--t];
	out[n++] = '/';
	out[n++] = tag;
	do tmp[t++] = (char)('0' + i % 10); while ((i /= 10) != 0);
	while (t)
		out[n++] = tmp[--t];
	out[n] = 0;
	return n;
}

static bool key_eq(const char *a, size_t na, const char *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* Returns the index of the key, or -1; inserts it when ins (and returns its new index). */
static long table_find(ST_PARAM_ const char *k, size_t n, bool ins, uint32_t new_index)
{
	uint32_t slot = (uint32_t)fnv1a64(k, n) & (HASH_SLOTS - 1);
	for (;;) {
		uint16_t e = S(hash_table)[slot];
		if (e == 0) {
			if (!ins)
				return -1;
			S(hash_table)[slot] = (uint16_t)(new_index + 1);
			return new_index;
		}
		if (key_eq(S(hash_keys)[e - 1], S(hash_len)[e - 1], k, n))
			return e - 1;
		slot = (slot + 1) & (HASH_SLOTS - 1);
	}
}

static int part_hash(ST_PARAM_ uint32_t rounds)
{
	static const struct {
		const char *s;
		uint64_t h;
	} fnv_vec[] = {{"", 0xcbf29ce484222325ull}, {"a", 0xaf63dc4c8601ec8cull}, {"foobar", 0x85944171f73967e8ull}};
	for (size_t i = 0; i < sizeof fnv_vec / sizeof fnv_vec[0]; i++) {
		uint64_t h = fnv1a64(fnv_vec[i].s, strlen(fnv_vec[i].s));
		CHECK("hash", h == fnv_vec[i].h, "FNV-1a(\"%s\") = 0x%016llx, want 0x%016llx", fnv_vec[i].s,
		      (unsigned long long)h, (unsigned long long)fnv_vec[i].h);
	}
	/* The reference vectors: key 00 01 .. 0f, message 00 01 .. (len-1). */
	static const struct {
		size_t len;
		uint64_t h;
	} sip_vec[] = {{0, 0x726fdb47dd0e0e31ull}, {1, 0x74f839c593dc67fdull}, {8, 0x93f5f5799a932462ull},
		       {15, 0xa129ca6149be45e5ull}};
	uint8_t msg[16];
	for (int i = 0; i < 16; i++)
		msg[i] = (uint8_t)i;
	uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
	for (size_t i = 0; i < sizeof sip_vec / sizeof sip_vec[0]; i++) {
		uint64_t h = siphash24(msg, sip_vec[i].len, k0, k1);
		CHECK("hash", h == sip_vec[i].h, "SipHash-2-4 of %zu bytes = 0x%016llx, want 0x%016llx", sip_vec[i].len,
		      (unsigned long long)h, (unsigned long long)sip_vec[i].h);
	}

	uint64_t fold = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		for (uint32_t i = 0; i < HASH_SLOTS; i++)
			S(hash_table)[i] = 0;
		uint64_t sip = 0;
		for (uint32_t i = 0; i < HASH_KEYS; i++) {
			size_t n = make_key(S(hash_keys)[i], r, 'k', i);
			S(hash_len)[i] = (uint8_t)n;
			long at = table_find(ST_ S(hash_keys)[i], n, true, i);
			CHECK("hash", at == (long)i, "round %u: key %s already present at %ld", r, S(hash_keys)[i], at);
			sip += siphash24(S(hash_keys)[i], n, k0 + r, k1);
		}
		char probe[KEY_MAX];
		for (uint32_t i = 0; i < HASH_KEYS; i++) {
			size_t n = make_key(probe, r, 'k', i);
			long at = table_find(ST_ probe, n, false, 0);
			CHECK("hash", at == (long)i, "round %u: key %s found at %ld, want %u", r, probe, at, i);
			n = make_key(probe, r, 'm', i);
			at = table_find(ST_ probe, n, false, 0);
			CHECK("hash", at == -1, "round %u: absent key %s found at %ld", r, probe, at);
		}
		fold = fold * 31 + sip;
	}
	S(results)[PART_HASH] = (struct part_result){.ok = true, .v = {fold}};
	return 0;
}

#endif /* BENCH_PASS */
#ifndef BENCH_PASS

/* ---- the part lines: what vCPU 0 prints --------------------------------------------------------- */

static void print_sieve(const struct part_result *res, uint32_t rounds)
{
	(void)res;
	rt_printf("sieve: ok (primes below %u = %u, %u rounds, first %u checked by trial division)\n",
		  SIEVE_N, SIEVE_PI, rounds, TRIAL_N);
}

static void print_crc(const struct part_result *res, uint32_t rounds)
{
	rt_printf("crc32: ok (crc(\"123456789\") = 0xcbf43926, %u rounds x %u bytes, fold 0x%08x)\n",
		  rounds, CRC_BUF, (uint32_t)res->v[0]);
}

static void print_sort(const struct part_result *res, uint32_t rounds)
{
	rt_printf("sort: ok (%u rounds x %u keys, quicksort = heapsort, checksums kept, fold 0x%016llx)\n",
		  rounds, SORT_N, (unsigned long long)res->v[0]);
}

static void print_interp(const struct part_result *res, uint32_t rounds)
{
	uint32_t n = (uint32_t)res->v[0];
	rt_printf("interp: ok (%u rounds, fib(%u) mod 2^32 = 0x%08x, sum(%u) = 0x%08x, fold 0x%08x)\n", rounds,
		  n, (uint32_t)res->v[1], n, (uint32_t)res->v[2], (uint32_t)res->v[3]);
}

static void print_hash(const struct part_result *res, uint32_t rounds)
{
	rt_printf("hash: ok (FNV-1a and SipHash-2-4 vectors, %u rounds x %u keys found, %u absent not, fold 0x%016llx)\n",
		  rounds, HASH_KEYS, HASH_KEYS, (unsigned long long)res->v[0]);
}

/* ---- main ------------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*run0)(uint32_t rounds);                       /* the first pass: without smp */
	int (*run)(struct bench_state *st, uint32_t rounds); /* the second: smp, on any vCPU */
	void (*print)(const struct part_result *res, uint32_t rounds);
} parts[NPARTS] = {
	[PART_SIEVE] = {"sieve", part_sieve, part_sieve_any, print_sieve},
	[PART_CRC] = {"crc32", part_crc, part_crc_any, print_crc},
	[PART_SORT] = {"sort", part_sort, part_sort_any, print_sort},
	[PART_INTERP] = {"interp", part_interp, part_interp_any, print_interp},
	[PART_HASH] = {"hash", part_hash, part_hash_any, print_hash},
};

struct work {
	uint32_t scale;
	const char *only;
};

static bool selected(const struct work *w, unsigned part)
{
	return !w->only[0] || strcmp(w->only, parts[part].name) == 0;
}

/* ---- smp: every vCPU runs the selected parts on state of its own ----------------------------- */

extern char __image_end[]; /* guests/rt/guest.ld */

/* vCPU k's state is at smp_states + k * STATE_STRIDE. */
#define STATE_STRIDE ((sizeof(struct bench_state) + 4095) & ~(size_t)4095)
static uintptr_t smp_states;

static struct bench_state *state_of(unsigned cpu)
{
	return (struct bench_state *)(smp_states + cpu * STATE_STRIDE);
}

/*
 * Places the N states in the RAM just above the APs' stacks (guests/README.md, "SMP": the runtime
 * takes (N-1) x RT_AP_STACK_SIZE from the first page boundary above the image), outside the image
 * so that the .bss the runtime zeroes at every start stays what it was. Returns false, having
 * said why, if the memory map says that RAM is not there.
 */
static bool place_states(unsigned ncpus)
{
	uint64_t base = (((uint64_t)(uintptr_t)__image_end + 4095) & ~4095ull) + (uint64_t)(ncpus - 1) * RT_AP_STACK_SIZE;
	uint64_t end = base + (uint64_t)ncpus * STATE_STRIDE;
	if (!rt_ram_covers(base, end)) {
		rt_printf("bench-cpu: smp on %u vCPUs needs 0x%lx bytes of RAM at 0x%lx; raise --mem\n", ncpus,
			  (unsigned long)(end - base), (unsigned long)base);
		return false;
	}
	smp_states = (uintptr_t)base;
	return true;
}

static void run_all(unsigned cpu, void *arg)
{
	const struct work *w = arg;
	struct bench_state *st = state_of(cpu);
	st->cpu = cpu;
	st->failures = 0;
	for (unsigned i = 0; i < NPARTS; i++) {
		st->results[i].ok = false;
		if (selected(w, i))
			parts[i].run(st, w->scale);
	}
}

static bool same_result(const struct part_result *a, const struct part_result *b)
{
	if (a->ok != b->ok)
		return false;
	for (unsigned i = 0; a->ok && i < sizeof a->v / sizeof a->v[0]; i++)
		if (a->v[i] != b->v[i])
			return false;
	return true;
}

/* Every vCPU runs the work; then vCPU 0 prints its part lines and compares the others' results. */
static int run_smp(const struct work *w)
{
	unsigned ncpus = rt_cpu_count();
	if (!place_states(ncpus))
		return RT_EXIT_FAIL;
	rt_smp_run(run_all, (void *)w);
	int fails = 0;
	for (unsigned c = 0; c < ncpus; c++)
		fails += state_of(c)->failures;
	for (unsigned i = 0; i < NPARTS; i++) {
		if (!selected(w, i))
			continue;
		const struct part_result *r0 = &state_of(0)->results[i];
		if (r0->ok)
			parts[i].print(r0, w->scale);
		for (unsigned c = 1; c < ncpus; c++) {
			if (!same_result(&state_of(c)->results[i], r0)) {
				rt_printf("%s: FAIL vCPU %u differs\n", parts[i].name, c);
				fails++;
			}
		}
	}
	rt_printf("bench-cpu: %s\n", fails ? "FAILED" : "all ok");
	return fails ? RT_EXIT_FAIL : RT_EXIT_OK;
}

int guest_main(void)
{
	const char *p = rt_cmdline();
	uint32_t scale = BENCH_DEFAULT_SCALE;
	char only[16] = "";
	bool smp = false;
	/* Tokens separated by spaces: a decimal number is the scale, only=PART picks one part, smp
	 * runs the work on every vCPU. */
	while (*p) {
		while (*p == ' ')
			p++;
		const char *t = p;
		while (*p && *p != ' ')
			p++;
		size_t len = (size_t)(p - t);
		if (len == 0)
			break;
		if (t[0] >= '0' && t[0] <= '9') {
			uint32_t v = 0;
			for (size_t i = 0; i < len; i++) {
				if (t[i] < '0' || t[i] > '9' || v > 100000000u) {
					rt_printf("bench-cpu: bad scale in command line \"%s\"\n", rt_cmdline());
					return RT_EXIT_FAIL;
				}
				v = v * 10 + (uint32_t)(t[i] - '0');
			}
			scale = v;
		} else if (len > 5 && len - 5 < sizeof only && strncmp(t, "only=", 5) == 0) {
			for (size_t i = 5; i < len; i++)
				only[i - 5] = t[i];
			only[len - 5] = 0;
		} else if (len == 3 && strncmp(t, "smp", 3) == 0) {
			smp = true;
		} else {
			rt_printf("bench-cpu: unknown argument in command line \"%s\" (want [SCALE] [only=PART] [smp])\n",
				  rt_cmdline());
			return RT_EXIT_FAIL;
		}
	}
	if (scale == 0) {
		rt_printf("bench-cpu: scale must be at least 1\n");
		return RT_EXIT_FAIL;
	}
	if (smp)
		rt_printf("bench-cpu: scale %u%s%s, smp %u vCPU%s\n", scale, only[0] ? ", only " : "", only,
			  rt_cpu_count(), rt_cpu_count() == 1 ? "" : "s");
	else
		rt_printf("bench-cpu: scale %u%s%s\n", scale, only[0] ? ", only " : "", only);
	struct work w = {scale, only};
	int ran = 0;
	if (smp) {
		for (unsigned i = 0; i < NPARTS; i++)
			ran += selected(&w, i);
		if (ran)
			return run_smp(&w);
	} else {
		/* As before smp: on vCPU 0 alone, each part's line as soon as it is done. */
		for (unsigned i = 0; i < NPARTS; i++) {
			if (!selected(&w, i))
				continue;
			ran++;
			if (parts[i].run0(scale) == 0)
				parts[i].print(&results[i], scale);
		}
	}
	if (!ran) {
		rt_printf("bench-cpu: no part named \"%s\" (sieve crc32 sort interp hash)\n", only);
		return RT_EXIT_FAIL;
	}
	rt_printf("bench-cpu: %s\n", failures ? "FAILED" : "all ok");
	return failures ? RT_EXIT_FAIL : RT_EXIT_OK;
}
#endif /* !BENCH_PASS */
