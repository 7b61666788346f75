/* SPDX-License-Identifier: MIT */
/*
 * smp-litmus: the classic x86-TSO litmus tests (SDM Vol. 3A 9.2.3 "Examples Illustrating the
 * Memory-Ordering Principles"; Sewell et al., "x86-TSO", CACM 2010), each run K times with the
 * vCPUs synchronised before every run by a barrier on a generation counter.
 *
 *   mp   (message passing)  T0: x=1; y=1            T1: r1=y; r2=x
 *                           forbidden: r1=1 r2=0 (stores are not reordered with stores, loads
 *                           not with loads)
 *   sb   (store buffering)  T0: x=1; r1=y           T1: y=1; r2=x
 *                           allowed: r1=0 r2=0 (a load may pass an older store to another
 *                           address: the store buffer); on hardware, and on the emu engine
 *                           (host threads doing host loads and stores), it should appear
 *   lb   (load buffering)   T0: r1=x; y=1           T1: r2=y; x=1
 *                           forbidden: r1=1 r2=1 (stores are not reordered with older loads)
 *   iriw (independent reads of independent writes, 4 vCPUs)
 *                           T0: x=1   T1: y=1   T2: r1=x; r2=y   T3: r3=y; r4=x
 *                           forbidden: r1=1 r2=0 r3=1 r4=0 (stores are seen in one order by all)
 *
 * The two-thread tests run on pairs of vCPUs (0,1), (2,3), ... each with its own x and y in
 * lines of their own; an odd last vCPU idles. With one vCPU (QEMU) T0 runs, then T1: the code is
 * exercised, no reordering can show. Every access is one plain `mov` in inline assembly, so the
 * compiler adds nothing and removes nothing.
 *
 * Command line: [K] (runs per test; default 100000).
 * Output (the lines without "info:" do not depend on timing):
 *   smp-litmus: mp ok: forbidden outcome r1=1 r2=0 never seen      (or FAIL: seen C times)
 *   smp-litmus: lb ok: forbidden outcome r1=1 r2=1 never seen
 *   smp-litmus: iriw ok: forbidden outcome never seen               (or: iriw skipped (needs 4 vCPUs))
 *   smp-litmus: sb: allowed outcome observed: yes|no
 *   smp-litmus: info: TEST 00=.. 01=.. 10=.. 11=.. (outcome counts, r1 r2)
 *   smp-litmus: done (N vCPUs x K iterations)
 * Exit status 0, 1 if a forbidden outcome appeared, 2 for a bad command line.
 */
#include "rt.h"
#include "smp/common.h"

#define DEFAULT_K 100000
#define LINE __attribute__((aligned(64)))
#define BATCH 1024     /* runs per barrier: slot i of every thread is run i */
#define MAX_PAIRS 8  /* vCPUs beyond 16 idle in the two-thread tests */
#define STRIDE 4    /* uint32_t per slot: each x[i] and y[i] in a line of its own */

struct pair {
	uint32_t x[BATCH * STRIDE] LINE;
	uint32_t y[BATCH * STRIDE] LINE;
	uint8_t r[4][BATCH] LINE; /* each thread's results, published after its runs */
	struct smp_barrier bar;
};

static struct pair pairs[MAX_PAIRS] LINE;
static uint64_t outcomes[3][4] LINE; /* [test][r1 << 1 | r2] summed over pairs */
static uint64_t iriw_forbidden, iriw_runs;

enum test { MP, SB, LB, IRIW };
static const char *const names[] = { "mp", "sb", "lb", "iriw" };

/*
 * One thread's side of `runs` runs, run i on slot i: threads that leave the barrier together
 * meet on the same slots while they go, which makes the reorderings a window of nanoseconds
 * allows far likelier than one run per barrier (litmus7's approach). Each access is one `mov`.
 */
static void thread(enum test t, int role, struct pair *p, unsigned runs)
{
	uint8_t res[2][BATCH];
	for (unsigned i = 0; i < runs; i++) {
		uint32_t *x = &p->x[i * STRIDE], *y = &p->y[i * STRIDE];
		uint32_t a = 0, b = 0;
		switch (t) {
		case MP:
			if (role == 0)
				__asm__ volatile("movl $1, (%0)\n\tmovl $1, (%1)" : : "r"(x), "r"(y) : "memory");
			else
				__asm__ volatile("movl (%2), %0\n\tmovl (%3), %1" : "=&r"(a), "=&r"(b) : "r"(y), "r"(x) : "memory");
			break;
		case SB:
			if (role == 0)
				__asm__ volatile("movl $1, (%1)\n\tmovl (%2), %0" : "=&r"(a) : "r"(x), "r"(y) : "memory");
			else
				__asm__ volatile("movl $1, (%1)\n\tmovl (%2), %0" : "=&r"(a) : "r"(y), "r"(x) : "memory");
			break;
		case LB:
			if (role == 0)
				__asm__ volatile("movl (%1), %0\n\tmovl $1, (%2)" : "=&r"(a) : "r"(x), "r"(y) : "memory");
			else
				__asm__ volatile("movl (%1), %0\n\tmovl $1, (%2)" : "=&r"(a) : "r"(y), "r"(x) : "memory");
			break;
		case IRIW:
			if (role == 0)
				__asm__ volatile("movl $1, (%0)" : : "r"(x) : "memory");
			else if (role == 1)
				__asm__ volatile("movl $1, (%0)" : : "r"(y) : "memory");
			else if (role == 2)
				__asm__ volatile("movl (%2), %0\n\tmovl (%3), %1" : "=&r"(a), "=&r"(b) : "r"(x), "r"(y) : "memory");
			else
				__asm__ volatile("movl (%2), %0\n\tmovl (%3), %1" : "=&r"(a), "=&r"(b) : "r"(y), "r"(x) : "memory");
			break;
		}
		res[0][i] = (uint8_t)a;
		res[1][i] = (uint8_t)b;
	}
	/* Publish: MP's reader has r1, r2; SB and LB: T0 has r1, T1 has r2; IRIW: T2 r1 r2, T3 r3 r4. */
	for (unsigned i = 0; i < runs; i++) {
		if (t == MP) {
			if (role == 1)
				p->r[0][i] = res[0][i], p->r[1][i] = res[1][i];
		} else if (t == IRIW) {
			if (role >= 2)
				p->r[2 * (role - 2)][i] = res[0][i], p->r[2 * (role - 2) + 1][i] = res[1][i];
		} else {
			p->r[role][i] = res[0][i];
		}
	}
}

static void spin(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		RT_BARRIER();
}

struct job {
	enum test t;
	uint64_t k;
};

static void reset(struct pair *p, unsigned runs)
{
	for (unsigned i = 0; i < runs; i++)
		p->x[i * STRIDE] = p->y[i * STRIDE] = 0;
}

static void worker(unsigned cpu, void *arg)
{
	const struct job *j = arg;
	const unsigned n = rt_cpu_count();
	uint64_t local[4] = { 0 }, forb = 0;

	if (j->t == IRIW) {
		if (n < 4 || cpu >= 4)
			return;
		struct pair *p = &pairs[0];
		for (uint64_t done = 0; done < j->k;) {
			unsigned runs = j->k - done < BATCH ? (unsigned)(j->k - done) : BATCH;
			if (cpu == 0)
				reset(p, runs);
			smp_barrier_wait(&p->bar, 4);
			thread(IRIW, (int)cpu, p, runs);
			smp_barrier_wait(&p->bar, 4);
			if (cpu == 0)
				for (unsigned i = 0; i < runs; i++)
					forb += p->r[0][i] == 1 && p->r[1][i] == 0 && p->r[2][i] == 1 && p->r[3][i] == 0;
			done += runs;
		}
		if (cpu == 0)
			iriw_forbidden = forb, iriw_runs = j->k;
		return;
	}

	unsigned npairs = n / 2 < MAX_PAIRS ? n / 2 : MAX_PAIRS;
	if (n > 1 && cpu / 2 >= npairs)
		return; /* the odd one out, or beyond MAX_PAIRS */
	struct pair *p = &pairs[n > 1 ? cpu / 2 : 0];
	int role = (int)(cpu % 2);
	for (uint64_t done = 0; done < j->k;) {
		unsigned runs = j->k - done < BATCH ? (unsigned)(j->k - done) : BATCH;
		if (n == 1) { /* T0's runs, then T1's: nothing can be reordered */
			reset(p, runs);
			thread(j->t, 0, p, runs);
			thread(j->t, 1, p, runs);
		} else {
			if (role == 0)
				reset(p, runs);
			smp_barrier_wait(&p->bar, 2);
			/* The last to reach the barrier leaves it first, by up to a whole batch on the
			 * emu engine: T0 waits a different while in each batch, so that in some of them
			 * the two threads meet on the same slots. */
			if (role == 0)
				spin((unsigned)(done / BATCH % 64) * 4);
			thread(j->t, role, p, runs);
			smp_barrier_wait(&p->bar, 2);
		}
		if (role == 0)
			for (unsigned i = 0; i < runs; i++)
				local[(p->r[0][i] & 1) << 1 | (p->r[1][i] & 1)]++;
		done += runs;
	}
	if (role == 0)
		for (int o = 0; o < 4; o++)
			__atomic_fetch_add(&outcomes[j->t][o], local[o], __ATOMIC_RELAXED);
}

int guest_main(void)
{
	uint64_t k = smp_arg_count("smp-litmus", DEFAULT_K);
	if (!k)
		return 2;
	const unsigned n = rt_cpu_count();
	int bad = 0;
	for (enum test t = MP; t <= IRIW; t++) {
		struct job j = { t, k };
		rt_smp_run(worker, &j);
	}
	/* outcome index: r1 << 1 | r2 */
	if (outcomes[MP][2])
		bad++, rt_printf("smp-litmus: mp FAIL: forbidden outcome r1=1 r2=0 seen %lu times\n", (unsigned long)outcomes[MP][2]);
	else
		rt_printf("smp-litmus: mp ok: forbidden outcome r1=1 r2=0 never seen\n");
	if (outcomes[LB][3])
		bad++, rt_printf("smp-litmus: lb FAIL: forbidden outcome r1=1 r2=1 seen %lu times\n", (unsigned long)outcomes[LB][3]);
	else
		rt_printf("smp-litmus: lb ok: forbidden outcome r1=1 r2=1 never seen\n");
	if (n < 4)
		rt_printf("smp-litmus: iriw skipped (needs 4 vCPUs)\n");
	else if (iriw_forbidden)
		bad++, rt_printf("smp-litmus: iriw FAIL: forbidden outcome r1=1 r2=0 r3=1 r4=0 seen %lu times\n",
				 (unsigned long)iriw_forbidden);
	else
		rt_printf("smp-litmus: iriw ok: forbidden outcome never seen\n");
	rt_printf("smp-litmus: sb: allowed outcome observed: %s\n", outcomes[SB][0] ? "yes" : "no");
	for (enum test t = MP; t <= LB; t++)
		rt_printf("smp-litmus: info: %s 00=%lu 01=%lu 10=%lu 11=%lu\n", names[t], (unsigned long)outcomes[t][0],
			  (unsigned long)outcomes[t][1], (unsigned long)outcomes[t][2], (unsigned long)outcomes[t][3]);
	if (n >= 4)
		rt_printf("smp-litmus: info: iriw forbidden %lu of %lu\n", (unsigned long)iriw_forbidden,
			  (unsigned long)iriw_runs);
	rt_printf("smp-litmus: done (%u vCPUs x %lu iterations)\n", n, (unsigned long)k);
	return bad ? RT_EXIT_FAIL : RT_EXIT_OK;
}
