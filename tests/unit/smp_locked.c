/* SPDX-License-Identifier: MIT */
/*
 * Locked operations are atomic across vCPUs (issue 6): 2 to 4 vCPU threads on one VM run the same
 * loop of locked read-modify-writes on shared operands, aligned and split (across a 64-byte line),
 * on an uncacheable page, and split across two guest pages that are NOT adjacent on the host; some
 * operands are hit by an aligned locked operation on some vCPUs and by an overlapping split one on
 * the others. Two spin locks (XCHG, aligned and split) guard plain increments. Every final value is
 * exact (the oracle: n x M atomic operations), by default (split lock = host split lock) and under
 * `contain` (split and UC locked operations as plain read-modify-writes inside the exclusive section,
 * against the other vCPUs' host-atomic operations on the same bytes), with bus-lock detection on
 * and off, and while a thread kicks every vCPU all along (vCPUs leave and re-enter run() in the
 * middle of exclusive sections) and vCPUs finish at different times.
 */
#include "smp_harness.h"

#define M 1500

GUEST(loop, ".code64",
	".set M, 1500\n"
	"mov %rsi, %r15\n"
	"mov %rdx, %r14\n"
	"xor %r8d, %r8d\n"
	"1:\n"
	"lock addq $1, 0x0(%rdi)\n"
	"lock incl 0x8(%rdi)\n"
	"mov $1, %eax\n lock xaddq %rax, 0x10(%rdi)\n"
	"mov 0x18(%rdi), %rax\n"
	"2: lea 1(%rax), %rcx\n lock cmpxchgq %rcx, 0x18(%rdi)\n jne 2b\n"
	"lock addl $1, 0xbe(%rdi)\n"                     /* split dword (line + 62) */
	"mov $1, %eax\n lock xaddq %rax, 0x13c(%rdi)\n"  /* split qword (line + 60) */
	"mov 0x1bc(%rdi), %eax\n mov 0x1c0(%rdi), %edx\n" /* split cmpxchg8b (line + 60) */
	"3: mov %eax, %ebx\n mov %edx, %ecx\n add $1, %ebx\n adc $0, %ecx\n"
	"lock cmpxchg8b 0x1bc(%rdi)\n jne 3b\n"
	"mov 0x200(%rdi), %rax\n mov 0x208(%rdi), %rdx\n" /* cmpxchg16b, +1 with carry */
	"4: mov %rax, %rbx\n mov %rdx, %rcx\n add $1, %rbx\n adc $0, %rcx\n"
	"lock cmpxchg16b 0x200(%rdi)\n jne 4b\n"
	"test $1, %r15d\n jnz 5f\n"                      /* mixed: split dword vs aligned word */
	"lock addl $0x8000, 0x2be(%rdi)\n jmp 6f\n"
	"5: lock addw $1, 0x2c0(%rdi)\n"
	"6:\n"
	"7: mov $1, %eax\n xchg %eax, 0x300(%rdi)\n test %eax, %eax\n jz 8f\n" /* xchg spin lock */
	"71: pause\n cmpl $0, 0x300(%rdi)\n jne 71b\n jmp 7b\n"
	"8: mov 0x308(%rdi), %eax\n inc %eax\n mov %eax, 0x308(%rdi)\n movl $0, 0x300(%rdi)\n"
	"9: mov $1, %eax\n xchg %eax, 0x3be(%rdi)\n test %eax, %eax\n jz 10f\n" /* split lock word */
	"91: pause\n cmpl $0, 0x3be(%rdi)\n jne 91b\n jmp 9b\n"
	"10: mov 0x400(%rdi), %eax\n inc %eax\n mov %eax, 0x400(%rdi)\n movl $0, 0x3be(%rdi)\n"
	"mov $0x201000, %eax\n lock incl (%rax)\n"      /* UC page */
	"test $1, %r15d\n jnz 11f\n"                     /* split over host-discontiguous pages */
	"mov $0x202ffe, %eax\n lock addl $0x8000, (%rax)\n jmp 12f\n"
	"11: mov $0x203000, %eax\n lock addw $1, (%rax)\n"
	"12:\n"
	"inc %r8d\n cmp $M, %r8d\n jne 1b\n"
	"hlt\n");

static uint32_t r32(struct s_vm *s, uint64_t gpa) { return t_r32(&s->t[0], gpa); }
static uint64_t r64(struct s_vm *s, uint64_t gpa) { return t_r64(&s->t[0], gpa); }

static void run(unsigned n, int how, int contain, int kick)
{
	struct s_vm s;
	s_init(&s, n, how, contain);
	s_start(&s, loop_start, loop_end);
	struct t_vm *t = &s.t[0];
	bl_small_pages(t, 0x7, 0x7);
	t_w64(t, B_PT + 8 * 1, 0x201000 | 0x7 | 0x18);   /* 0x201000: PCD|PWT -> UC */
	t_w64(t, B_PT + 8 * 3, 0x205000 | 0x7);          /* 0x203000 -> 0x205000: not after 0x202000 */
	t_w64(t, S_DATA + 0x200, ~0ull - 99);            /* cmpxchg16b: carries into the high half */
	s_run(&s, kick);

	uint64_t nm = (uint64_t)n * M, e = (n + 1) / 2, o = n / 2;
	uint32_t mixed = (uint32_t)(e * M * 0x8000 + o * M * 0x10000);
	for (unsigned k = 0; k < n; k++)
		CHECK(s.last_exit[k] == KVM_EXIT_HLT, "n=%u contain=%d: vCPU %u ended with %d", n, contain, k,
		      s.last_exit[k]);
	CHECK_EQ(r64(&s, S_DATA + 0x0), nm);
	CHECK_EQ(r32(&s, S_DATA + 0x8), nm);
	CHECK_EQ(r64(&s, S_DATA + 0x10), nm);
	CHECK_EQ(r64(&s, S_DATA + 0x18), nm);
	CHECK_EQ(r32(&s, S_DATA + 0xbe), nm);
	CHECK_EQ(r64(&s, S_DATA + 0x13c), nm);
	CHECK_EQ(r64(&s, S_DATA + 0x1bc), nm);
	CHECK_EQ(r64(&s, S_DATA + 0x200), nm - 100);
	CHECK_EQ(r64(&s, S_DATA + 0x208), 1);
	CHECK_EQ(r32(&s, S_DATA + 0x2be), mixed);
	CHECK_EQ(r32(&s, S_DATA + 0x308), nm);
	CHECK_EQ(r32(&s, S_DATA + 0x400), nm);
	CHECK_EQ(r32(&s, 0x201000), nm);
	uint32_t nc = (uint32_t)(t->ram[0x202ffe] | t->ram[0x202fff] << 8 | t->ram[0x205000] << 16 |
				 (uint32_t)t->ram[0x205001] << 24);
	CHECK_EQ(nc, mixed);
	if (t_failures)
		fprintf(stderr, "  (n=%u detection=%d contain=%d kick=%d)\n", n, how, contain, kick);
	s_fini(&s);
}

int main(void)
{
	run(1, BL_OFF, 1, 0);     /* the one-vCPU fast path of the exclusive section */
	run(2, BL_OFF, 0, 0);
	run(2, BL_ENABLE, 1, 0);
	run(3, BL_ENABLE, 0, 1);
	run(4, BL_OFF, 1, 1);
	return t_result("locked operations exact across 1-4 vCPUs, aligned/split/UC/discontiguous, with and without contain");
}
