/* SPDX-License-Identifier: MIT */
/*
 * Host atomicity and its deliberate exception. Without BLVM_CAP_BUS_LOCK_CONTAIN a guest split
 * lock is a host split lock on the same bytes; with it (the `contain` policy) split and UC locked
 * operations run as a plain read-modify-write inside the VM's exclusive section. Either way the
 * guest's results are exact and every bus lock is still detected, reported and attributed: a loop
 * of split XADD / CMPXCHG8B / BTC and UC INC gives the exact sums and one exit per instruction, in
 * both flavours, with and without contain.
 */
#include "buslock_harness.h"

#define N 200

GUEST(mix, ".code64",
	"mov $0x201000, %esi\n"
	"xor %r8d, %r8d\n"
	"1:\n"
	"mov $3, %eax\n"
	"lock xaddl %eax, 0x3e(%rdi)\n"          /* split: += 3 */
	"mov 0x7c(%rdi), %eax\n mov 0x80(%rdi), %edx\n"
	"lea 1(%rax), %ebx\n mov %edx, %ecx\n"
	"lock cmpxchg8b 0x7c(%rdi)\n"            /* split: += 1 */
	"lock btcq $0, 0xbd(%rdi)\n"             /* split: toggles bit 0 */
	"lock incl (%rsi)\n"                     /* UC */
	"inc %r8d\n"
	"cmp $200, %r8d\n"
	"jne 1b\n"
	"hlt\n");

static void run(int amd, int contain)
{
	struct t_vm t;
	bl_init(&t, amd, BL_ENABLE);
	if (contain) {
		struct kvm_enable_cap ct = { .cap = BLVM_CAP_BUS_LOCK_CONTAIN, .args = { 1 } };
		CHECK_EQ(t.ops->enable_cap(t.vm, &ct), 0);
	}
	bl_start(&t, mix_start, mix_end, B_DATA);
	bl_small_pages(&t, 0x7, 0x7);
	t_w64(&t, B_PT + 8, 0x201000 | 0x7 | 0x18);
	unsigned n = 0, flags = 0, split = 0, uc = 0;
	int r;
	while ((r = t_run(&t)) == KVM_EXIT_X86_BUS_LOCK) {
		n++;
		flags += !!(t.run->flags & KVM_RUN_X86_BUS_LOCK);
		struct blvm_bus_lock_info info;
		CHECK_EQ(bl_info(&t, &info), 0);
		split += info.reason == BLVM_BUS_LOCK_SPLIT;
		uc += info.reason == BLVM_BUS_LOCK_UC;
	}
	CHECK_EQ(r, KVM_EXIT_HLT);
	CHECK_EQ(n, 4 * N);
	CHECK_EQ(flags, 4 * N);
	CHECK_EQ(split, 3 * N);
	CHECK_EQ(uc, N);
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), 3 * N);
	CHECK_EQ(t_r64(&t, B_DATA + 0x7c), N);
	CHECK_EQ(t_r64(&t, B_DATA + 0xbd), 0); /* toggled an even number of times */
	CHECK_EQ(t_r32(&t, 0x201000), N);
	t_fini(&t);
}

int main(void)
{
	for (int amd = 0; amd < 2; amd++)
		for (int contain = 0; contain < 2; contain++)
			run(amd, contain);
	return t_result("guest split locks give exact results, as host locks and contained");
}
