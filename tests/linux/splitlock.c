/* SPDX-License-Identifier: MIT */
/*
 * A Linux userland program that takes exactly N split locks (issue 13's oracle): N times
 * `lock add` on a 4-byte counter at offset 62 of a 64-byte aligned buffer, so that every access
 * straddles a cache-line boundary (SDM Vol. 3A 9.1.2.2: a locked access that spans two cache lines
 * is a bus lock). It yields the CPU every 64 locks so that two instances run interleaved, then
 * prints its name, its thread id (what Linux prints as "comm/pid") and its process id, and the
 * counter, which must be N.
 *
 *   splitlock N        built static (scripts/linux-inputs.sh), run as splitlock-a, splitlock-b
 *                      (links), whose comm is the link's name (fs/exec.c, __set_task_comm)
 *   splitlock N timed  the same, and a second line with the rate the guest kernel let it take its
 *                      locks at, in the guest's own time (CLOCK_MONOTONIC): (N - 1) locks over the
 *                      time from the return of the first to the return of the last, so that Linux's
 *                      split_lock_detect=ratelimit:R, which lets R bus locks through per second
 *                      (arch/x86/kernel/cpu/intel.c, handle_bus_lock: __ratelimit(&bld_ratelimit),
 *                      interval HZ, burst R, msleep(20) while over it), shows as about R/s
 *                      (tests/sh/linux-sld.sh). Without "timed" the output is as before.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned char buf[128] __attribute__((aligned(64)));

/* The one instruction that takes the split locks, out of line: the oracles want all N at one RIP,
 * and gcc -O2 unswitches main's loop on "timed" and peels its first iteration, which copied an
 * inline asm statement to three places (seen as 1 + 4999 locks at two RIPs with gcc 12.2). */
static __attribute__((noinline)) void split_lock(void *counter)
{
	__asm__ volatile("lock addl $1, (%0)" : : "r"(counter) : "memory");
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
	const char *name = strrchr(argv[0], '/');
	name = name ? name + 1 : argv[0];
	int timed = argc > 2 && strcmp(argv[2], "timed") == 0;
	void *counter = buf + 62; /* bytes 62..65: lines 0 and 1 */
	struct timespec first = {0, 0}, last = {0, 0};
	for (long i = 0; i < n; i++) {
		split_lock(counter);
		if (timed)
			clock_gettime(CLOCK_MONOTONIC, i == 0 ? &first : &last);
		if (i % 64 == 63)
			sched_yield();
	}
	uint32_t v;
	memcpy(&v, counter, 4);
	printf("%s: pid %d tgid %d: %ld split locks, counter %u\n", name, (int)gettid(), (int)getpid(), n, v);
	if (timed && n > 1) {
		double s = (double)(last.tv_sec - first.tv_sec) + (double)(last.tv_nsec - first.tv_nsec) / 1e9;
		printf("%s: %ld split locks in %.3f s of guest time: %.2f/s\n", name, n - 1, s,
		       s > 0 ? (double)(n - 1) / s : 0.0);
	}
	return v == (uint32_t)n ? 0 : 1;
}
