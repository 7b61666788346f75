/* SPDX-License-Identifier: MIT */
/*
 * smp-stack: a lock-free stack (Treiber) shared by every vCPU. The head is 16 bytes, {top, tag},
 * 16-aligned, and every push and pop replaces it with one `lock cmpxchg16b` that also bumps the tag,
 * so a head that went A -> B -> A between a vCPU's read and its compare-exchange fails the compare
 * (the ABA problem). Nodes are static and never freed, so reading a stale node's `next` is safe.
 *
 * E nodes (ids 0..E-1) start on the stack. Each vCPU then runs R rounds: pop up to B nodes
 * (fewer if the stack runs dry), claim each one (an xchg on the node's owner word must find it
 * free: a node popped twice at once is caught here), release them and push them back.
 * At the end vCPU 0 pops everything: exactly E nodes, each id once (a presence bitmap), the sum
 * of ids E(E-1)/2, pops = pushes across all vCPUs, and no double claim.
 *
 * Command line: [R] (rounds per vCPU; default 20000). E = 1024, B = 8.
 * Output: `smp-stack: 1024 nodes, N x R rounds of 8: ok` or `smp-stack: FAIL ...` lines.
 * Exit status 0, 1 on any failure, 2 for a bad command line.
 */
#include "rt.h"
#include "smp/common.h"

#define E 1024
#define B 8
#define DEFAULT_R 20000

struct node {
	struct node *next;
	uint32_t id;
	uint32_t owner; /* 0 free, else claiming vCPU + 1 */
} __attribute__((aligned(64)));

struct head {
	struct node *top;
	uint64_t tag;
} __attribute__((aligned(16)));

static struct node nodes[E];
static struct head head;
static uint64_t pushes, pops, double_claims __attribute__((aligned(64)));
static struct smp_barrier start_barrier;

/* One atomic 16-byte compare-exchange: *h == *old ? (*h = nw, true) : (*old = *h, false). */
static bool cas16(struct head *h, struct head *old, struct head nw)
{
	bool ok;
	__asm__ volatile("lock cmpxchg16b %[m]"
			 : "=@ccz"(ok), [m] "+m"(*h), "+a"(old->top), "+d"(old->tag)
			 : "b"(nw.top), "c"(nw.tag)
			 : "memory");
	return ok;
}

/* A possibly torn read is harmless: the compare-exchange then fails and returns the real head. */
static struct head read_head(void)
{
	struct head h;
	h.tag = __atomic_load_n(&head.tag, __ATOMIC_ACQUIRE);
	h.top = __atomic_load_n(&head.top, __ATOMIC_ACQUIRE);
	return h;
}

static void push(struct node *n)
{
	struct head old = read_head();
	for (;;) {
		__atomic_store_n(&n->next, old.top, __ATOMIC_RELAXED);
		if (cas16(&head, &old, (struct head){ n, old.tag + 1 }))
			return;
	}
}

static struct node *pop(void)
{
	struct head old = read_head();
	for (;;) {
		if (!old.top)
			return NULL;
		struct node *next = __atomic_load_n(&old.top->next, __ATOMIC_RELAXED);
		if (cas16(&head, &old, (struct head){ next, old.tag + 1 }))
			return old.top;
	}
}

static void worker(unsigned cpu, void *arg)
{
	uint64_t rounds = *(const uint64_t *)arg, npush = 0, npop = 0, dup = 0;
	struct node *held[B];
	smp_barrier_wait(&start_barrier, rt_cpu_count());
	for (uint64_t r = 0; r < rounds; r++) {
		unsigned k = 0;
		while (k < B && (held[k] = pop()) != NULL)
			k++;
		npop += k;
		for (unsigned i = 0; i < k; i++)
			if (__atomic_exchange_n(&held[i]->owner, cpu + 1, __ATOMIC_ACQ_REL) != 0)
				dup++;
		for (unsigned i = 0; i < k; i++) {
			__atomic_store_n(&held[i]->owner, 0, __ATOMIC_RELEASE);
			push(held[i]);
		}
		npush += k;
	}
	__atomic_fetch_add(&pushes, npush, __ATOMIC_RELAXED);
	__atomic_fetch_add(&pops, npop, __ATOMIC_RELAXED);
	__atomic_fetch_add(&double_claims, dup, __ATOMIC_RELAXED);
}

int guest_main(void)
{
	uint64_t rounds = smp_arg_count("smp-stack", DEFAULT_R);
	if (!rounds)
		return 2;
	const unsigned n = rt_cpu_count();
	for (unsigned i = 0; i < E; i++) {
		nodes[i].id = i;
		push(&nodes[i]);
	}
	pushes = 0;
	rt_smp_run(worker, &rounds);

	static uint8_t seen[E];
	unsigned count = 0, dups = 0, strays = 0;
	uint64_t sum = 0;
	struct node *nd;
	while ((nd = pop()) != NULL && count <= E) {
		count++;
		if (nd < nodes || nd >= nodes + E || nd != &nodes[nd->id]) {
			strays++;
			continue;
		}
		if (seen[nd->id]++)
			dups++;
		sum += nd->id;
	}
	unsigned missing = 0;
	for (unsigned i = 0; i < E; i++)
		missing += !seen[i];
	bool ok = count == E && dups == 0 && strays == 0 && missing == 0 && sum == (uint64_t)E * (E - 1) / 2 &&
		  pushes == pops && double_claims == 0;
	if (!ok) {
		rt_printf("smp-stack: FAIL %u nodes at the end (want %u), %u duplicated, %u missing, %u strays, "
			  "sum %lu (want %lu), %lu pops vs %lu pushes, %lu double claims (%u x %lu)\n",
			  count, E, dups, missing, strays, (unsigned long)sum, (unsigned long)E * (E - 1) / 2,
			  (unsigned long)pops, (unsigned long)pushes, (unsigned long)double_claims, n,
			  (unsigned long)rounds);
		return RT_EXIT_FAIL;
	}
	rt_printf("smp-stack: %u nodes, %u x %lu rounds of %u: ok\n", E, n, (unsigned long)rounds, B);
	return RT_EXIT_OK;
}
