/* SPDX-License-Identifier: MIT */
/*
 * One policy per VM, called from every vCPU thread: 4 threads x 100000 runs with a bus lock (and as
 * many without) give exact totals, per-vCPU counts and attribution; under kill=N exactly the runs from
 * the N-th bus lock on are told to stop; the shared rate limiter hands out exactly the sleeps a
 * serial replay of the same clock readings would.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "blvm/policy.h"

/* One vCPU's bus locks, through the per-vCPU statistics. */
static unsigned long long vcpu_locks(const struct blvm_policy *p, unsigned vcpu)
{
	struct blvm_policy_vcpu_stats v;
	blvm_policy_get_vcpu_stats(p, vcpu, &v);
	return v.bus_locks;
}

static int failures;
#define CHECK_EQ(a, b) do { unsigned long long a_ = (a), b_ = (b); if (a_ != b_) { \
	fprintf(stderr, "%s:%d: %s = %llu, expected %llu\n", __FILE__, __LINE__, #a, a_, b_); failures++; } } while (0)

#define THREADS 4
#define RUNS 100000

static struct blvm_policy *policy;
static atomic_ullong stops, sleeps, sleep_ns;
static atomic_ullong ticks; /* the injected clock: every reading advances it by 1 us */

static uint64_t ticking_clock(void *arg)
{
	(void)arg;
	return atomic_fetch_add(&ticks, 1) * 1000;
}

static void *vcpu(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct kvm_run with = { .exit_reason = KVM_EXIT_MMIO, .flags = KVM_RUN_X86_BUS_LOCK };
	struct kvm_run without = { .exit_reason = KVM_EXIT_IO };
	struct blvm_bus_lock_info info = { .size = 4, .disasm = "lock add dword ptr [rax], ecx" };
	for (unsigned i = 0; i < RUNS; i++) {
		info.rip = 0x1000 + (i % 8) * 0x10;
		info.reason = i % 4 == 3 ? BLVM_BUS_LOCK_UC : BLVM_BUS_LOCK_SPLIT;
		struct blvm_policy_action a = blvm_policy_after_run(policy, id, &with, id == 3 ? NULL : &info);
		if (a.what == BLVM_POLICY_STOP)
			atomic_fetch_add(&stops, 1);
		if (a.what == BLVM_POLICY_SLEEP) {
			atomic_fetch_add(&sleeps, 1);
			atomic_fetch_add(&sleep_ns, a.sleep_ns);
			blvm_policy_slept(policy, id, 1);
		}
		a = blvm_policy_after_run(policy, id, &without, NULL);
		if (a.what != BLVM_POLICY_CONTINUE)
			atomic_fetch_add(&stops, 1000000);
	}
	return NULL;
}

static void run_threads(const char *spec)
{
	struct blvm_policy_config cfg;
	char err[200];
	if (blvm_policy_parse(spec, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		failures++;
		return;
	}
	atomic_store(&ticks, 0);
	atomic_store(&stops, 0);
	atomic_store(&sleeps, 0);
	atomic_store(&sleep_ns, 0);
	policy = blvm_policy_create(&cfg, THREADS, ticking_clock, NULL);
	pthread_t t[THREADS];
	for (unsigned i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, vcpu, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

int main(void)
{
	struct blvm_policy_stats st;

	run_threads("log");
	blvm_policy_get_stats(policy, &st);
	CHECK_EQ(st.total, THREADS * RUNS);
	CHECK_EQ(st.uc, 3 * RUNS / 4);
	CHECK_EQ(st.split, 3 * RUNS * 3 / 4);
	CHECK_EQ(st.unattributed, RUNS);
	for (unsigned i = 0; i < THREADS; i++)
		CHECK_EQ(vcpu_locks(policy, i), RUNS);
	struct blvm_policy_insn top[10];
	CHECK_EQ(blvm_policy_top(policy, top, 10), 8);
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(top[i].count, 3 * RUNS / 8);
	CHECK_EQ(atomic_load(&stops) + atomic_load(&sleeps), 0);
	blvm_policy_destroy(policy);

	run_threads("kill=200000");
	blvm_policy_get_stats(policy, &st);
	CHECK_EQ(st.total, THREADS * RUNS);
	CHECK_EQ(atomic_load(&stops), THREADS * RUNS - 200000 + 1); /* the 200000th and every later one */
	blvm_policy_destroy(policy);

	/* 1000/s with a clock advancing 1 us per reading: the limiter must sleep, and the total slept time
	 * handed out is what one shared limiter gives (QEMU: one per VM), whatever the interleaving:
	 * every bus lock reads the clock once, inside the lock, so the readings are 0, 1 us, 2 us, ... in
	 * the order of the calls, exactly as a serial replay. */
	run_threads("ratelimit=1000");
	blvm_policy_get_stats(policy, &st);
	CHECK_EQ(st.total, THREADS * RUNS);
	CHECK_EQ(st.sleeps, atomic_load(&sleeps));
	CHECK_EQ(st.throttled_ns, atomic_load(&sleeps));
	blvm_policy_destroy(policy);
	{
		/* serial replay */
		struct blvm_policy_config cfg;
		blvm_policy_parse("ratelimit=1000", &cfg, NULL, 0);
		atomic_store(&ticks, 0);
		struct blvm_policy *p = blvm_policy_create(&cfg, 1, ticking_clock, NULL);
		struct kvm_run with = { .exit_reason = KVM_EXIT_X86_BUS_LOCK, .flags = KVM_RUN_X86_BUS_LOCK };
		unsigned long long n = 0, ns = 0;
		for (unsigned i = 0; i < THREADS * RUNS; i++) {
			struct blvm_policy_action a = blvm_policy_after_run(p, 0, &with, NULL);
			if (a.what == BLVM_POLICY_SLEEP)
				n++, ns += a.sleep_ns;
		}
		CHECK_EQ(atomic_load(&sleeps), n);
		CHECK_EQ(atomic_load(&sleep_ns), ns);
		if (n == 0) {
			fprintf(stderr, "the limiter never slept\n");
			failures++;
		}
		blvm_policy_destroy(p);
	}

	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("policy_threads: ok\n");
	return 0;
}
