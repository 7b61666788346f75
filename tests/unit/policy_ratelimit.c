/* SPDX-License-Identifier: MIT */
/*
 * ratelimit=N[/SLICE] with an injected clock: exact sleep times, hand-computed for given sequences and
 * compared, for long pseudo-random ones, with a transcription of QEMU's limiter written here on its own
 * (include/qemu/ratelimit.h ratelimit_set_speed/ratelimit_calculate_delay, zero-initialised like QEMU's
 * static bus_lock_ratelimit_ctrl, driven by a clock that, like QEMU's, is far from 0).
 */
#include <stdio.h>
#include <string.h>

#include "blvm/policy.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)
#define CHECK_EQ(a, b) do { unsigned long long a_ = (a), b_ = (b); if (a_ != b_) { \
	fprintf(stderr, "%s:%d: %s = %llu, expected %llu\n", __FILE__, __LINE__, #a, a_, b_); failures++; } } while (0)

#define MS 1000000ull
#define S 1000000000ull

/* ---- QEMU, transcribed (RateLimit, ratelimit_set_speed, ratelimit_calculate_delay) ---- */
typedef struct {
	int64_t slice_start_time;
	int64_t slice_end_time;
	uint64_t slice_quota;
	uint64_t slice_ns;
	uint64_t dispatched;
} RateLimit;

static void qemu_set_speed(RateLimit *limit, uint64_t speed, uint64_t slice_ns)
{
	limit->slice_ns = slice_ns;
	double q = ((double)speed * slice_ns) / 1000000000ULL;
	limit->slice_quota = q > 1 ? q : 1; /* MAX(..., 1) */
}

static int64_t qemu_calculate_delay(RateLimit *limit, int64_t now, uint64_t n)
{
	double delay_slices;
	if (limit->slice_end_time < now) {
		limit->slice_start_time = now;
		limit->slice_end_time = now + limit->slice_ns;
		limit->dispatched = 0;
	}
	limit->dispatched += n;
	if (limit->dispatched < limit->slice_quota)
		return 0;
	delay_slices = (double)limit->dispatched / limit->slice_quota;
	limit->slice_end_time = limit->slice_start_time + (uint64_t)(delay_slices * limit->slice_ns);
	return limit->slice_end_time - now;
}
/* ---- end of the transcription ---- */

static uint64_t fake_now;
static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static struct kvm_run bus_lock_run = { .exit_reason = KVM_EXIT_X86_BUS_LOCK, .flags = KVM_RUN_X86_BUS_LOCK };

static struct blvm_policy *make(const char *spec, uint64_t t0)
{
	struct blvm_policy_config cfg;
	char err[200];
	if (blvm_policy_parse(spec, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	fake_now = t0;
	return blvm_policy_create(&cfg, 4, fake_clock, NULL);
}

/* The sleep one bus lock at time t asks for (0 = CONTINUE). */
static uint64_t lock_at(struct blvm_policy *p, uint64_t t, unsigned vcpu)
{
	fake_now = t;
	struct blvm_policy_action a = blvm_policy_after_run(p, vcpu, &bus_lock_run, NULL);
	if (a.what == BLVM_POLICY_CONTINUE)
		return 0;
	if (a.what != BLVM_POLICY_SLEEP || a.sleep_ns == 0) {
		fprintf(stderr, "unexpected action %d (%llu ns)\n", a.what, (unsigned long long)a.sleep_ns);
		failures++;
	}
	return a.sleep_ns;
}

static void quota_1000_at_zero(void)
{
	/* The clock starts at 0: the first bus lock still opens the first slice [0, 1 s]. */
	struct blvm_policy *p = make("ratelimit=1000", 0);
	for (int i = 1; i <= 999; i++)
		CHECK_EQ(lock_at(p, 0, i % 2), 0);
	CHECK_EQ(lock_at(p, 0, 0), 1 * S);            /* the 1000th: quota reached, sleep to the slice end */
	CHECK_EQ(lock_at(p, 0, 1), 1000999999);       /* another vCPU's 1001st: (uint64_t)(1.001 * 1e9) */
	/* vCPU 0 wakes at exactly 1 s: the slice [0, 1.000999999 s] has not ended (end < now is false). */
	CHECK_EQ(lock_at(p, 1 * S, 0), 2 * MS);         /* 1002nd: 1.002 slices, end 1.002 s */
	blvm_policy_destroy(p);
}

static void bursts_across_slices(void)
{
	struct blvm_policy *p = make("ratelimit=10", 5 * S);
	uint64_t t0 = 10 * S; /* slice times relative to t0 */
	for (int i = 1; i <= 9; i++)
		CHECK_EQ(lock_at(p, t0 + 100 * MS, 0), 0); /* slice [0.1 s, 1.1 s] */
	CHECK_EQ(lock_at(p, t0 + 900 * MS, 0), 200 * MS);   /* 10th: end 1.1 s */
	CHECK_EQ(lock_at(p, t0 + 950 * MS, 1), 250 * MS);   /* 11th: 1.1 slices, end 1.2 s */
	CHECK_EQ(lock_at(p, t0 + 1100 * MS, 0), 200 * MS);  /* 12th, vCPU 0 awake: 1.2 slices, end 1.3 s */
	CHECK_EQ(lock_at(p, t0 + 1350 * MS, 2), 0);         /* after 1.3 s: new slice [1.35 s, 2.35 s] */
	static const uint64_t burst[] = { /* 30 more at 2 s without sleeping (many vCPUs): dispatched 2..31 */
		[10 - 2] = 350 * MS, [20 - 2] = 1350 * MS, [30 - 2] = 2350 * MS, [31 - 2] = 2450 * MS,
	};
	for (unsigned d = 2; d <= 31; d++) {
		uint64_t want = burst[d - 2];
		if (!want && d > 10) /* between the marks: the slice stretched to d/10 slices */
			want = 1350 * MS + d * 100 * MS - 2000 * MS;
		CHECK_EQ(lock_at(p, t0 + 2 * S, d % 4), want);
	}
	CHECK_EQ(lock_at(p, t0 + 4450 * MS + 1, 3), 0); /* 1 ns after the stretched end: a fresh slice */
	struct blvm_policy_stats st;
	blvm_policy_get_stats(p, &st);
	CHECK_EQ(st.total, 9 + 3 + 1 + 30 + 1);
	CHECK_EQ(st.sleeps, 3 + 22);
	blvm_policy_destroy(p);
}

static void trickle(void)
{
	/* 500/s against a quota of 1000/s for 10 s: never sleeps. */
	struct blvm_policy *p = make("ratelimit=1000", 0);
	uint64_t slept = 0;
	for (uint64_t t = 0; t < 10 * S; t += 2 * MS)
		slept += lock_at(p, t, 0);
	CHECK_EQ(slept, 0);
	blvm_policy_destroy(p);
	/* Exactly at the rate, QEMU's "dispatched < quota" makes the quota-th of each slice wait for its end. */
	p = make("ratelimit=1000", 0);
	CHECK_EQ(lock_at(p, 0, 0), 0);
	for (int i = 1; i < 999; i++)
		CHECK_EQ(lock_at(p, i * MS, 0), 0);
	CHECK_EQ(lock_at(p, 999 * MS, 0), 1 * MS);
	blvm_policy_destroy(p);
}

static void quota_rounds_up(void)
{
	/* ratelimit=1/100ms: 1 * 0.1 s = 0.1 per slice -> quota 1: every bus lock sleeps to its slice end. */
	struct blvm_policy *p = make("ratelimit=1/100ms", 0);
	CHECK_EQ(lock_at(p, 0, 0), 100 * MS);
	CHECK_EQ(lock_at(p, 100 * MS, 0), 100 * MS); /* at the end, not past it: stretched to 2 slices */
	CHECK_EQ(lock_at(p, 200 * MS, 0), 100 * MS);
	CHECK_EQ(lock_at(p, 250 * MS, 1), 150 * MS); /* another vCPU inside the stretched slice: 4 slices */
	CHECK_EQ(lock_at(p, 2 * S, 0), 100 * MS);    /* long after: a fresh slice, first lock fills it */
	blvm_policy_destroy(p);
	/* 15/100ms: 1.5 per slice, truncated to 1; 25/100ms: 2.5 -> 2. */
	p = make("ratelimit=15/100ms", 0);
	CHECK_EQ(lock_at(p, 0, 0), 100 * MS);
	blvm_policy_destroy(p);
	p = make("ratelimit=25/100ms", 0);
	CHECK_EQ(lock_at(p, 0, 0), 0);
	CHECK_EQ(lock_at(p, 0, 0), 100 * MS);
	CHECK_EQ(lock_at(p, 0, 0), 150 * MS); /* 3 / 2 slices */
	blvm_policy_destroy(p);
	/* 1000/2s: quota 2000 per 2 s slice. */
	p = make("ratelimit=1000/2s", 0);
	for (int i = 1; i < 2000; i++)
		CHECK_EQ(lock_at(p, 0, 0), 0);
	CHECK_EQ(lock_at(p, 0, 0), 2 * S);
	blvm_policy_destroy(p);
}

/* Long pseudo-random sequences against the transcription, bus lock by bus lock. */
static void against_qemu(const char *spec, uint64_t speed, uint64_t slice_ns, uint64_t max_gap, unsigned seed)
{
	const uint64_t base = 123456789012345ull; /* a realistic CLOCK_MONOTONIC: QEMU's first call opens a slice */
	struct blvm_policy *p = make(spec, base);
	RateLimit q;
	memset(&q, 0, sizeof q);
	qemu_set_speed(&q, speed, slice_ns);
	uint64_t x = seed, t = base, mismatches = 0, slept = 0;
	uint64_t wake[4] = { base, base, base, base }; /* each vCPU runs again after its sleep */
	for (int i = 0; i < 200000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		unsigned vcpu = (unsigned)(x >> 62);
		uint64_t gap = (x >> 20) % (max_gap + 1);
		t += gap;
		uint64_t now = t > wake[vcpu] ? t : wake[vcpu];
		int64_t want = qemu_calculate_delay(&q, (int64_t)now, 1);
		uint64_t got = lock_at(p, now, vcpu);
		if ((uint64_t)(want > 0 ? want : 0) != got && mismatches++ < 5)
			fprintf(stderr, "%s: lock %d at %llu: got %llu, QEMU %lld\n", spec, i,
				(unsigned long long)(now - base), (unsigned long long)got, (long long)want);
		wake[vcpu] = now + got;
		slept += got;
	}
	CHECK_EQ(mismatches, 0);
	if (slept == 0) { /* the sequence must reach the limit to test anything */
		fprintf(stderr, "%s: never slept\n", spec);
		failures++;
	}
	blvm_policy_destroy(p);
}

/* blvm_policy_set_config while bus locks come: log -> ratelimit=1000 starts QEMU's zero-initialised
 * limiter; ratelimit=1000 -> 100 mid-run is QEMU's ratelimit_set_speed() on the same RateLimit (the
 * slice and its count carried over); the transcription must agree at every bus lock. kill=3 set after
 * 10 bus locks stops at the 3rd after the change; the counts go on through every change. */
static void live_switch(void)
{
	const uint64_t base = 987654321000ull;
	struct blvm_policy *p = make("log", base);
	uint64_t t = base;
	for (int i = 0; i < 500; i++)
		CHECK_EQ(lock_at(p, t += 1000, i % 4), 0);
	struct blvm_policy_config cfg;
	char err[200];
	RateLimit q;
	memset(&q, 0, sizeof q);
	qemu_set_speed(&q, 1000, S);
	CHECK(blvm_policy_parse("ratelimit=1000", &cfg, err, sizeof err) == 0);
	blvm_policy_set_config(p, &cfg);
	uint64_t x = 7, mismatches = 0, slept = 0, wake[4] = { t, t, t, t };
	for (int i = 0; i < 100000; i++) {
		if (i == 50000) { /* mid-slice: the new speed, the same slice */
			CHECK(blvm_policy_parse("ratelimit=100", &cfg, err, sizeof err) == 0);
			blvm_policy_set_config(p, &cfg);
			qemu_set_speed(&q, 100, S);
		}
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		unsigned vcpu = (unsigned)(x >> 62);
		t += (x >> 20) % (2 * MS + 1);
		uint64_t now = t > wake[vcpu] ? t : wake[vcpu];
		int64_t want = qemu_calculate_delay(&q, (int64_t)now, 1);
		uint64_t got = lock_at(p, now, vcpu);
		if ((uint64_t)(want > 0 ? want : 0) != got && mismatches++ < 5)
			fprintf(stderr, "live switch: lock %d: got %llu, QEMU %lld\n", i, (unsigned long long)got,
				(long long)want);
		wake[vcpu] = now + got;
		slept += got;
	}
	CHECK_EQ(mismatches, 0);
	CHECK(slept > 0);
	struct blvm_policy_config now_cfg;
	blvm_policy_get_config(p, &now_cfg);
	CHECK_EQ(now_cfg.mode, BLVM_POLICY_RATELIMIT);
	CHECK_EQ(now_cfg.rate, 100);
	struct blvm_policy_stats st;
	blvm_policy_get_stats(p, &st);
	CHECK_EQ(st.total, 100500);
	blvm_policy_destroy(p);

	p = make("log", base);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(lock_at(p, base, 0), 0);
	CHECK(blvm_policy_parse("kill=3", &cfg, err, sizeof err) == 0);
	blvm_policy_set_config(p, &cfg);
	fake_now = base;
	CHECK_EQ(blvm_policy_after_run(p, 0, &bus_lock_run, NULL).what, BLVM_POLICY_CONTINUE);
	CHECK_EQ(blvm_policy_after_run(p, 1, &bus_lock_run, NULL).what, BLVM_POLICY_CONTINUE);
	struct blvm_policy_action a = blvm_policy_after_run(p, 0, &bus_lock_run, NULL);
	CHECK_EQ(a.what, BLVM_POLICY_STOP);
	CHECK(a.reason && strstr(a.reason, "bus lock 3 of 3 allowed"));
	blvm_policy_get_stats(p, &st);
	CHECK_EQ(st.total, 13);
	blvm_policy_destroy(p);
}

int main(void)
{
	live_switch();
	quota_1000_at_zero();
	bursts_across_slices();
	trickle();
	quota_rounds_up();
	against_qemu("ratelimit=1000", 1000, S, 2 * MS, 1);
	against_qemu("ratelimit=10", 10, S, 200 * MS, 2);
	against_qemu("ratelimit=1/100ms", 1, 100 * MS, 300 * MS, 3);
	against_qemu("ratelimit=333/250ms", 333, 250 * MS, 5 * MS, 4);
	against_qemu("ratelimit=7/3s", 7, 3 * S, 200 * MS, 5);
	against_qemu("ratelimit=100000", 100000, S, 20000, 6);
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("policy_ratelimit: ok\n");
	return 0;
}
