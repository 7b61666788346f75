/* SPDX-License-Identifier: MIT */
/*
 * Long PAUSE loops sleep (exec.c, pause_loop_exit): a vCPU that spins on a flag for more than a
 * millisecond stops taking a host CPU, and nothing of the guest's meaning changes. Three vCPUs:
 * vCPUs 1 and 2 wait on a flag in a `pause; cmp; jne` loop while vCPU 0 computes for well over a
 * millisecond (~200 M instructions, started once both wait) and then, under `contain`, takes split
 * locked increments (each an exclusive section, while the waiters sleep outside the protocol). Then vCPU 0 sets the flag, and
 * all three increment one split counter M times each. Checked, with and without a kicker thread:
 *   - every vCPU ends (HLT): the sleepers woke and saw the flag;
 *   - the counter is exactly M x 3 plus vCPU 0's earlier increments (atomicity kept across sleeps);
 *   - the waiters slept (the engine's ple_sleeps > 0: the sleep path ran, a count, not a time);
 *     nothing else about the sleeps is asserted (how many depends on the host's scheduling).
 */
#include "smp_harness.h"
#include "emu/emu.h"

#define M 2000
#define PRE 500

GUEST(waiters, ".code64",
	".set M, 2000\n .set PRE, 500\n"
	"test %esi, %esi\n jnz 20f\n"
	/* vCPU 0: once both waiters are in their loops, compute (~200 M instructions: ~0.1 s with the
	 * translator, which made 20 M a window of ~13 ms, short enough for a waiter's thread, descheduled
	 * on a loaded host, to miss the whole of it and never spin 1 ms: seen in a CI run under ASan),
	 * PRE split increments, then the flag */
	"0: pause\n cmpl $2, 0x48(%rdi)\n jne 0b\n"
	"mov $50000000, %ecx\n"
	"1: add %rcx, %rax\n xor $0x55, %rax\n dec %ecx\n jnz 1b\n"
	"mov $PRE, %ecx\n"
	"2: lock addl $1, 0xbe(%rdi)\n dec %ecx\n jnz 2b\n"
	"movl $1, 0x40(%rdi)\n"
	"jmp 30f\n"
	/* vCPUs 1, 2: wait for the flag */
	"20: lock incl 0x48(%rdi)\n"                   /* waiting */
	"21: pause\n cmpl $1, 0x40(%rdi)\n jne 21b\n"
	"lock incl 0x44(%rdi)\n"                       /* saw it */
	/* everyone: M split increments of one counter (line + 62) */
	"30: mov $M, %ecx\n"
	"31: lock addl $1, 0xbe(%rdi)\n dec %ecx\n jnz 31b\n"
	"hlt\n");

static void run(int contain, int kick)
{
	struct s_vm s;
	s_init(&s, 3, BL_OFF, contain);
	s_start(&s, waiters_start, waiters_end);
	s_run(&s, kick);
	struct t_vm *t = &s.t[0];
	for (unsigned k = 0; k < 3; k++)
		CHECK_EQ(s.last_exit[k], KVM_EXIT_HLT);
	CHECK_EQ(t_r32(t, S_DATA + 0x44), 2);
	CHECK(t_r32(t, S_DATA + 0xbe) == 3 * M + PRE, "contain %d kick %d: counter %u, expected %u", contain, kick,
	      t_r32(t, S_DATA + 0xbe), 3 * M + PRE);
	uint64_t s1 = ((struct emu_vcpu *)s.t[1].cpu)->ple_sleeps, s2 = ((struct emu_vcpu *)s.t[2].cpu)->ple_sleeps;
	CHECK(s1 > 0 && s2 > 0, "contain %d kick %d: the waiters slept %llu and %llu times; a loop of more than 1 ms "
	      "should sleep", contain, kick, (unsigned long long)s1, (unsigned long long)s2);
	printf("contain %d kick %d: waiters slept %llu and %llu times\n", contain, kick, (unsigned long long)s1,
	       (unsigned long long)s2);
	s_fini(&s);
}

int main(void)
{
	run(0, 0);
	run(1, 0);
	run(1, 1);
	return t_result("long PAUSE loops sleep; the sleepers wake, see the flag, and every locked increment counts");
}
