/* SPDX-License-Identifier: MIT */
/*
 * smp-stop: one vCPU ends the VM while the others run, for issue 6's "a clean stop of every vCPU
 * when one ends the VM, with nothing lost from the console".
 *
 * Command line: MODE
 *   triple  every vCPU prints `smp-stop: vCPU I of N ready`; after a barrier the last vCPU prints
 *           `smp-stop: vCPU L triple-faults now`, loads an IDT with limit 0 and executes UD2: #UD
 *           cannot be delivered (#GP), nor can the #GP (#DF), nor the #DF: a triple fault (SDM
 *           Vol. 3 6.15, Table 6-5), which the monitor reports as a shutdown. The other vCPUs spin.
 *   storm   every vCPU prints its ready line; after a barrier each split-locks forever (`lock addl`
 *           at line+62): for `--bus-lock=kill=N`, which ends the VM at the N-th bus lock of any vCPU.
 * Every line is printed before the barrier, so the VM cannot end before all N lines are out: a
 * console that misses one lost output. Nothing is printed after the barrier except the triple
 * fault's announcement. The guest never exits by itself (status 1 for a bad command line).
 */
#include "rt.h"
#include "smp/common.h"

static struct smp_barrier barrier;
static uint8_t lines[128] __attribute__((aligned(64)));
static int mode_triple;

static void worker(unsigned cpu, void *arg)
{
	(void)arg;
	const unsigned n = rt_cpu_count();
	rt_printf("smp-stop: vCPU %u of %u ready\n", cpu, n);
	smp_barrier_wait(&barrier, n);
	if (mode_triple && cpu == n - 1) {
		rt_printf("smp-stop: vCPU %u triple-faults now\n", cpu);
		static const struct __attribute__((packed)) {
			uint16_t limit;
			uint64_t base;
		} empty_idt = {0, 0};
		__asm__ volatile("lidt %0\n\tud2" : : "m"(empty_idt) : "memory");
	}
	if (mode_triple)
		for (;;)
			pause();
	volatile void *p = lines + 62;
	__asm__ volatile("1: lock addl $1, (%[p])\n\t"
			 "jmp 1b"
			 :
			 : [p] "r"(p)
			 : "cc", "memory");
}

int guest_main(void)
{
	const char *s = rt_cmdline();
	while (*s == ' ')
		s++;
	if (strcmp(s, "triple") == 0)
		mode_triple = 1;
	else if (strcmp(s, "storm") != 0) {
		rt_printf("smp-stop: bad command line \"%s\" (usage: triple|storm)\n", rt_cmdline());
		return RT_EXIT_FAIL;
	}
	rt_smp_run(worker, 0);
	rt_printf("smp-stop: FAIL the VM did not end\n");
	return RT_EXIT_FAIL;
}
