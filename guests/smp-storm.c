/* SPDX-License-Identifier: MIT */
/*
 * smp-storm: every vCPU split-locks: K times `lock addl $1` on one shared dword at line+62 (it
 * crosses the 64-byte line, so each is a split lock), all vCPUs on the same bytes. For the
 * per-VM rate limit (`--bus-lock=ratelimit=N` must hold the VM, not each vCPU, to N per second).
 *
 * Command line: [K] (per vCPU, decimal with optional k/M suffix; default 1000).
 * Output: `smp-storm: vCPU I of N storming` from each vCPU (in any order), then
 * `smp-storm: done N x K` once the counter holds exactly N*K (mod 2^32); exit status 0,
 * 1 if it does not (the value is printed), 2 for a bad command line. The guest takes exactly N*K
 * bus locks and no other locked operation on a split or UC operand.
 */
#include "rt.h"
#include "smp/common.h"

static uint8_t lines[128] __attribute__((aligned(64)));

static void worker(unsigned cpu, void *arg)
{
	uint64_t k = *(const uint64_t *)arg;
	/* One whole line per vCPU, in any order: the console lock keeps lines apart. */
	rt_printf("smp-storm: vCPU %u of %u storming\n", cpu, rt_cpu_count());
	volatile void *p = lines + 62;
	__asm__ volatile("1: lock addl $1, (%[p])\n\t"
			 "dec %[k]\n\t"
			 "jnz 1b"
			 : [k] "+r"(k)
			 : [p] "r"(p)
			 : "cc", "memory");
}

int guest_main(void)
{
	uint64_t k = smp_arg_count("smp-storm", 1000);
	if (!k)
		return 2;
	const unsigned n = rt_cpu_count();
	rt_smp_run(worker, &k);
	uint32_t got;
	memcpy(&got, lines + 62, 4);
	if (got != (uint32_t)(n * k)) {
		rt_printf("smp-storm: FAIL counter 0x%x, want 0x%x (%u x %lu)\n", got, (uint32_t)(n * k), n,
			  (unsigned long)k);
		return RT_EXIT_FAIL;
	}
	rt_printf("smp-storm: done %u x %lu\n", n, (unsigned long)k);
	return RT_EXIT_OK;
}
