/* SPDX-License-Identifier: MIT */
/*
 * victim: the host process a bus-locking guest must not hurt (issue 5, bench/victim.sh).
 *
 *   victim [--core=N] [--passes=P] [--mib=M] [--kind=rmw|read|chase]
 *       Pins itself to core N (default 1), sweeps an M MiB buffer (default 64) P times (default
 *       40, after 3 warm-up passes) and prints the median time of a pass. A bus lock stops all
 *       other cores' memory traffic while it is held, so a memory-bound loop is what feels a
 *       split-lock storm on another core. Kinds:
 *         rmw    (default) add 1 to every 64-bit word: a read-modify-write sweep, ~4.8 ms per
 *                64 MiB pass on the reference machine, the most sensitive of the three there
 *         read   sum every 64-bit word into four independent sums (loads only)
 *         chase  dependent loads: each word read holds the index of the next, one per 64-byte
 *                line, in address order (every load waits for the previous one)
 *       Prints one line on stdout:
 *         victim: median_ms=4.83 min_ms=4.71 max_ms=5.02 passes=40 mib=64 core=1 kind=rmw
 *
 *   victim --storm [--core=N] [--seconds=S] [--aligned]
 *       A native split-lock storm: pins itself to core N (default 0) and runs `lock addl $1` on
 *       an operand at line+62 (crossing a 64-byte line) until SIGTERM/SIGINT or S seconds.
 *       --aligned uses an aligned operand instead (control: a cache-line lock, no bus lock).
 *       At the end prints on stdout:
 *         storm: locks=N seconds=S rate=R (R in locks per second)
 *
 * Built with plain gcc -O2 (bench/bench.mk): no sanitizer may distort the timing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void pin(int core)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(core, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		fprintf(stderr, "victim: cannot pin to core %d: %s\n", core, strerror(errno));
		exit(2);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

enum kind { K_RMW, K_READ, K_CHASE };

/* One pass over the buffer. The result is returned so the compiler cannot drop the loop. */
static uint64_t sweep(uint64_t *buf, size_t words, enum kind kind)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	switch (kind) {
	case K_RMW:
		for (size_t i = 0; i < words; i++)
			buf[i] += 1;
		return buf[words - 1];
	case K_READ: /* four independent sums: limited by memory, not by the add latency */
		for (size_t i = 0; i < words; i += 4) {
			s0 += buf[i];
			s1 += buf[i + 1];
			s2 += buf[i + 2];
			s3 += buf[i + 3];
		}
		return s0 ^ s1 ^ s2 ^ s3;
	case K_CHASE: {
		size_t j = 0;
		for (size_t i = 0; i < words / 8; i++)
			j = buf[j];
		return j;
	}
	}
	return 0;
}

static int run_victim(int core, int passes, size_t mib, enum kind kind)
{
	pin(core);
	size_t bytes = mib << 20, words = bytes / 8;
	uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		fprintf(stderr, "victim: mmap %zu MiB: %s\n", mib, strerror(errno));
		return 2;
	}
	for (size_t i = 0; i < words; i++) /* chase: word i leads to the next line's first word */
		buf[i] = kind == K_CHASE ? (i + 8) % words : i * 0x9e3779b97f4a7c15ull;
	double *ms = calloc((size_t)passes, sizeof *ms);
	volatile uint64_t sink = 0;
	for (int i = 0; i < 3; i++)
		sink += sweep(buf, words, kind);
	for (int i = 0; i < passes; i++) {
		double t0 = now();
		sink += sweep(buf, words, kind);
		ms[i] = (now() - t0) * 1e3;
	}
	(void)sink;
	qsort(ms, (size_t)passes, sizeof *ms, cmp_double);
	static const char *const kind_name[] = {"rmw", "read", "chase"};
	printf("victim: median_ms=%.2f min_ms=%.2f max_ms=%.2f passes=%d mib=%zu core=%d kind=%s\n",
	       ms[passes / 2], ms[0], ms[passes - 1], passes, mib, core, kind_name[kind]);
	free(ms);
	munmap(buf, bytes);
	return 0;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int run_storm(int core, double seconds, int aligned)
{
	pin(core);
	static uint8_t lines[256] __attribute__((aligned(64)));
	/* bytes 62..65 cross the line boundary at 64: every lock is a split lock */
	volatile uint32_t *p = (volatile uint32_t *)(lines + (aligned ? 64 : 62));
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	uint64_t locks = 0;
	double t0 = now(), t = t0;
	while (!stop && (seconds <= 0 || t - t0 < seconds)) {
		/* 64 Ki split locks (~50-80 ms on the reference machine) between checks */
		uint64_t n = 1 << 16;
		__asm__ volatile("1:\n\t"
				 "lock addl $1, (%[p])\n\t"
				 "dec %[n]\n\t"
				 "jnz 1b"
				 : [n] "+r"(n)
				 : [p] "r"(p)
				 : "cc", "memory");
		locks += 1 << 16;
		t = now();
	}
	printf("storm: locks=%llu seconds=%.3f rate=%.0f\n", (unsigned long long)locks, t - t0,
	       (double)locks / (t - t0));
	return 0;
}

static const char *arg_value(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return strncmp(arg, name, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}

int main(int argc, char **argv)
{
	int storm = 0, aligned = 0, core = -1, passes = 40;
	size_t mib = 64;
	double seconds = 0;
	enum kind kind = K_RMW;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if (!strcmp(argv[i], "--storm"))
			storm = 1;
		else if (!strcmp(argv[i], "--aligned"))
			aligned = 1;
		else if ((v = arg_value(argv[i], "--core")))
			core = atoi(v);
		else if ((v = arg_value(argv[i], "--passes")) && atoi(v) > 0)
			passes = atoi(v);
		else if ((v = arg_value(argv[i], "--mib")) && atoi(v) > 0)
			mib = (size_t)atoi(v);
		else if ((v = arg_value(argv[i], "--kind")) && (!strcmp(v, "rmw") || !strcmp(v, "read") || !strcmp(v, "chase")))
			kind = !strcmp(v, "rmw") ? K_RMW : !strcmp(v, "read") ? K_READ : K_CHASE;
		else if ((v = arg_value(argv[i], "--seconds")))
			seconds = atof(v);
		else {
			fprintf(stderr, "victim: unknown argument '%s' (usage: victim [--core=N] [--passes=P] "
					"[--mib=M] [--kind=rmw|read|chase] | victim --storm [--core=N] [--seconds=S] [--aligned])\n",
				argv[i]);
			return 2;
		}
	}
	if (storm)
		return run_storm(core < 0 ? 0 : core, seconds, aligned);
	return run_victim(core < 0 ? 1 : core, passes, mib, kind);
}
