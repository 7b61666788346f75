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
 *   victim --pair-with=PGID [--pairs=N] [--core=N] [--passes=P] [--mib=M] [--kind=...]
 *       Interleaved pairs: the storm (process group PGID, already running) is stopped (SIGSTOP)
 *       and continued (SIGCONT) by the victim itself, and the victim times P passes (default 5)
 *       with the storm stopped and P with it running, N times (default 60), in ABBA order (pair i
 *       runs "stopped, running" for even i, "running, stopped" for odd i) so that a drift of the
 *       machine within a pair cancels. Each pair gives a ratio (running / stopped, medians of the
 *       P passes); the windows are tens of milliseconds apart, so another tenant's load on this
 *       shared machine hits both halves of a pair alike, where separate runs seconds apart see it
 *       as a slowdown of up to 30 %. The storm is left running at the end, also on error.
 *       Prints one line on stdout (ratios: median and quartiles over the pairs):
 *         victim: pairs=60 alone_ms=4.83 storm_ms=5.02 ratio=1.04 q1=1.01 q3=1.06 passes=5 ...
 *       Exit status 3 when the storm's process group vanished (it ended or crashed).
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
#include <unistd.h>

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

static const char *const kind_name[] = {"rmw", "read", "chase"};

static uint64_t *make_buffer(size_t mib, enum kind kind)
{
	size_t bytes = mib << 20, words = bytes / 8;
	uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		fprintf(stderr, "victim: mmap %zu MiB: %s\n", mib, strerror(errno));
		exit(2);
	}
	for (size_t i = 0; i < words; i++) /* chase: word i leads to the next line's first word */
		buf[i] = kind == K_CHASE ? (i + 8) % words : i * 0x9e3779b97f4a7c15ull;
	return buf;
}

static volatile uint64_t sink;

/* Times `passes` sweeps into ms[] (sorted on return) and returns their median. */
static double timed_passes(uint64_t *buf, size_t words, enum kind kind, int passes, double *ms)
{
	for (int i = 0; i < passes; i++) {
		double t0 = now();
		sink += sweep(buf, words, kind);
		ms[i] = (now() - t0) * 1e3;
	}
	qsort(ms, (size_t)passes, sizeof *ms, cmp_double);
	return ms[passes / 2];
}

static int run_victim(int core, int passes, size_t mib, enum kind kind)
{
	pin(core);
	size_t words = (mib << 20) / 8;
	uint64_t *buf = make_buffer(mib, kind);
	double *ms = calloc((size_t)passes, sizeof *ms);
	for (int i = 0; i < 3; i++)
		sink += sweep(buf, words, kind);
	timed_passes(buf, words, kind, passes, ms);
	printf("victim: median_ms=%.2f min_ms=%.2f max_ms=%.2f passes=%d mib=%zu core=%d kind=%s\n",
	       ms[passes / 2], ms[0], ms[passes - 1], passes, mib, core, kind_name[kind]);
	free(ms);
	munmap(buf, mib << 20);
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ms * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Stops or continues the whole storm process group (every thread of blvm or QEMU). SIGSTOP reaches
 * a thread running on the other core through an IPI within microseconds; 3 ms of settling leaves
 * the stop (or the restart) complete before the window is timed. */
static int storm_signal(pid_t pgid, int sig)
{
	if (kill(-pgid, sig) != 0)
		return -1;
	sleep_ms(3);
	return 0;
}

static int run_pairs(int core, int passes, size_t mib, enum kind kind, pid_t pgid, int pairs)
{
	pin(core);
	size_t words = (mib << 20) / 8;
	uint64_t *buf = make_buffer(mib, kind);
	double *ms = calloc((size_t)passes, sizeof *ms);
	double *alone = calloc((size_t)pairs, sizeof *alone), *storm = calloc((size_t)pairs, sizeof *storm);
	double *ratio = calloc((size_t)pairs, sizeof *ratio);
	for (int i = 0; i < 3; i++)
		sink += sweep(buf, words, kind);
	for (int i = 0; i < pairs; i++) {
		for (int half = 0; half < 2; half++) {
			/* ABBA: even pairs stopped first, odd pairs running first */
			int running = (half == 0) == (i % 2 == 1);
			if (storm_signal(pgid, running ? SIGCONT : SIGSTOP) != 0) {
				fprintf(stderr, "victim: the storm (process group %d) is gone: %s\n", (int)pgid,
					strerror(errno));
				return 3;
			}
			double m = timed_passes(buf, words, kind, passes, ms);
			if (running)
				storm[i] = m;
			else
				alone[i] = m;
		}
		ratio[i] = storm[i] / alone[i];
	}
	kill(-pgid, SIGCONT); /* leave it as we found it */
	qsort(alone, (size_t)pairs, sizeof *alone, cmp_double);
	qsort(storm, (size_t)pairs, sizeof *storm, cmp_double);
	qsort(ratio, (size_t)pairs, sizeof *ratio, cmp_double);
	printf("victim: pairs=%d alone_ms=%.2f storm_ms=%.2f ratio=%.3f q1=%.3f q3=%.3f passes=%d mib=%zu core=%d "
	       "kind=%s\n",
	       pairs, alone[pairs / 2], storm[pairs / 2], ratio[pairs / 2], ratio[pairs / 4], ratio[(3 * pairs) / 4],
	       passes, mib, core, kind_name[kind]);
	free(ms);
	free(alone);
	free(storm);
	free(ratio);
	munmap(buf, mib << 20);
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
	int storm = 0, aligned = 0, core = -1, passes = -1, pairs = 60;
	pid_t pair_with = 0;
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
		else if ((v = arg_value(argv[i], "--pair-with")) && atoi(v) > 1)
			pair_with = (pid_t)atoi(v);
		else if ((v = arg_value(argv[i], "--pairs")) && atoi(v) > 0)
			pairs = atoi(v);
		else if ((v = arg_value(argv[i], "--seconds")))
			seconds = atof(v);
		else {
			fprintf(stderr, "victim: unknown argument '%s' (usage: victim [--core=N] [--passes=P] "
					"[--mib=M] [--kind=rmw|read|chase] [--pair-with=PGID [--pairs=N]] | victim --storm [--core=N] [--seconds=S] [--aligned])\n",
				argv[i]);
			return 2;
		}
	}
	if (storm)
		return run_storm(core < 0 ? 0 : core, seconds, aligned);
	if (pair_with)
		return run_pairs(core < 0 ? 1 : core, passes < 0 ? 5 : passes, mib, kind, pair_with, pairs);
	return run_victim(core < 0 ? 1 : core, passes < 0 ? 40 : passes, mib, kind);
}
