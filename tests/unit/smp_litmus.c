/* SPDX-License-Identifier: MIT */
/*
 * x86-TSO message passing on the emu engine (SDM Vol. 3 9.2.2: stores are not reordered with other
 * stores, loads not with other loads): a writer stores data then a flag; a reader that sees the flag
 * must see the data (the forbidden outcome: flag new, data old). Two forms: one plain MOV each, and
 * a 64-quadword message written by REP STOSQ + REP MOVSQ (the engine's string fast path) before the
 * flag, read back quadword by quadword after it. Pairs (0,1) and (2,3) run at once with 4 vCPUs.
 */
#include "smp_harness.h"

#define N 200000

/* RSI = index: even = writer, odd = reader of pair RSI/2; pair p uses S_DATA + p * 0x10000. */
GUEST(mp, ".code64",
	".set N, 200000\n"
	"mov %rsi, %rax\n shr $1, %rax\n shl $16, %rax\n add %rax, %rdi\n"
	"mov %rdi, %rbp\n"
	"test $1, %esi\n jnz 20f\n"
	/* writer */
	"mov $1, %r8d\n"
	"1: mov %r8, 0x100(%rbp)\n"                /* data */
	"lea 0x2000(%rbp), %rdi\n mov %r8, %rax\n mov $64, %ecx\n cld\n rep stosq\n"
	"lea 0x2000(%rbp), %rsi\n lea 0x1000(%rbp), %rdi\n mov $64, %ecx\n rep movsq\n"
	"mov %r8, 0x140(%rbp)\n"                   /* flag */
	"inc %r8d\n cmp $N, %r8d\n jbe 1b\n"
	"hlt\n"
	/* reader */
	"20: xor %r9d, %r9d\n xor %r10d, %r10d\n"                   /* forbidden outcomes seen */
	"21: inc %r10d\n mov 0x140(%rbp), %r8\n"  /* flag; r10d counts the reads */
	"mov 0x100(%rbp), %rax\n cmp %r8, %rax\n jae 22f\n inc %r9d\n"
	"22: xor %ecx, %ecx\n"
	"23: mov 0x1000(%rbp, %rcx, 8), %rax\n cmp %r8, %rax\n jae 24f\n inc %r9d\n"
	"24: inc %ecx\n cmp $64, %ecx\n jne 23b\n"
	"cmp $N, %r8d\n jne 21b\n"
	"mov %r9d, 0x180(%rbp)\n mov %r10d, 0x184(%rbp)\n hlt\n");

static void run(unsigned n)
{
	struct s_vm s;
	s_init(&s, n, BL_OFF, 0);
	s_start(&s, mp_start, mp_end);
	s_run(&s, 0);
	for (unsigned k = 0; k < n; k++)
		CHECK_EQ(s.last_exit[k], KVM_EXIT_HLT);
	for (unsigned p = 0; p < n / 2; p++) {
		uint64_t base = S_DATA + p * 0x10000ull;
		CHECK(t_r32(&s.t[0], base + 0x180) == 0, "pair %u: %u forbidden MP outcomes", p,
		      t_r32(&s.t[0], base + 0x180));
		CHECK_EQ(t_r64(&s.t[0], base + 0x140), N);
		printf("  %u vCPUs, pair %u: the reader read the message %u times\n", n, p, t_r32(&s.t[0], base + 0x184));
	}
	s_fini(&s);
}

int main(void)
{
	run(2);
	run(4);
	return t_result("message passing never shows the forbidden outcome (MOV and REP MOVS/STOS)");
}
