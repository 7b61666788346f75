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
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char buf[128] __attribute__((aligned(64)));

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
	const char *name = strrchr(argv[0], '/');
	name = name ? name + 1 : argv[0];
	void *counter = buf + 62; /* bytes 62..65: lines 0 and 1 */
	for (long i = 0; i < n; i++) {
		__asm__ volatile("lock addl $1, (%0)" : : "r"(counter) : "memory");
		if (i % 64 == 63)
			sched_yield();
	}
	uint32_t v;
	memcpy(&v, counter, 4);
	printf("%s: pid %d tgid %d: %ld split locks, counter %u\n", name, (int)gettid(), (int)getpid(), n, v);
	return v == (uint32_t)n ? 0 : 1;
}
