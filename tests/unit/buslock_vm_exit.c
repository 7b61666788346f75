/* SPDX-License-Identifier: MIT */
/*
 * Seed sentences on the exit itself (Intel flavour), each its own test:
 *  - "bus lock VM exit is introduced to notify the VMM when a bus lock was acquired": a guest loop
 *    of N split locks gives exactly N exits KVM_EXIT_X86_BUS_LOCK, each trap-like (the instruction
 *    completed, its effect visible, RIP after it), attributed to the locking instruction; the
 *    guest's own counter equals the exits seen (as Linux's kvm_buslock_test checks it);
 *  - "exit to user space even when current exit reason is handled by KVM internally": exit 74 is
 *    handled inside KVM and still reaches user space as 33; so does a bus lock whose instruction
 *    also raises a guest #DB (TF) that the guest handles itself: exit 33 first, then the #DB
 *    reaches the guest's handler on the next run;
 *  - "Set a new field KVM_RUN_BUS_LOCK in vcpu->run->flags": set on every bus-lock exit, and
 *    cleared by the next run (whatever the monitor left there).
 */
#include "buslock_harness.h"

#define N_LOCKS 1000

GUEST(loop, ".code64",
	"xor %ebx, %ebx\n"
	"1:\n"
	".globl loop_lock\nloop_lock:\n"
	"lock incl 0x3e(%rdi)\n"                 /* split: bytes 0x3e..0x41 */
	".globl loop_after\nloop_after:\n"
	"incl 0x100(%rdi)\n"                     /* the guest's own count */
	"inc %ebx\n"
	"cmp $" "1000" ", %ebx\n"
	"jne 1b\n"
	"mov $0x3f8, %dx\n"
	"out %al, %dx\n"                         /* an exit that is not a bus lock */
	"hlt\n");
extern const uint8_t loop_lock[], loop_after[];

GUEST(tf, ".code64",
	"pushf\n"
	"orl $0x100, (%rsp)\n"
	"popf\n"                                 /* TF on: #DB after the next instruction */
	".globl tf_lock\ntf_lock:\n"
	"lock incl 0x3e(%rdi)\n"
	".globl tf_after\ntf_after:\n"
	"nop\n"
	"hlt\n"
	".globl tf_db\ntf_db:\n"                 /* #DB handler: counts, clears TF, returns */
	"incl 0x200(%rdi)\n"
	"andl $~0x100, 16(%rsp)\n"
	"iretq\n");
extern const uint8_t tf_start[], tf_lock[], tf_after[], tf_db[];

#define GA(sym, blob) (T_CODE + (uint64_t)((sym) - (blob)))

static void test_notify(void)
{
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, loop_start, loop_end, B_DATA);
	unsigned exits = 0;
	int r;
	while ((r = t_run(&t)) == KVM_EXIT_X86_BUS_LOCK) {
		exits++;
		struct kvm_regs g = t_regs(&t);
		/* trap-like: completed (the split counter moved), RIP at the next instruction */
		CHECK_EQ(g.rip, GA(loop_after, loop_start));
		uint32_t v;
		memcpy(&v, t.ram + B_DATA + 0x3e, 4);
		if (v != exits) {
			CHECK_EQ(v, exits);
			break;
		}
		CHECK_EQ(t_r32(&t, B_DATA + 0x100), exits - 1);
		struct blvm_bus_lock_info info;
		CHECK_EQ(bl_info(&t, &info), 0);
		CHECK_EQ(info.rip, GA(loop_lock, loop_start));
		CHECK_EQ(info.linear, B_DATA + 0x3e);
		CHECK_EQ(info.size, 4);
		CHECK_EQ(info.reason, BLVM_BUS_LOCK_SPLIT);
		if (t_failures)
			break;
	}
	CHECK_EQ(r, KVM_EXIT_IO);
	CHECK_EQ(exits, N_LOCKS);
	CHECK_EQ(t_r32(&t, B_DATA + 0x100), N_LOCKS);
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), N_LOCKS);
	t_fini(&t);
	printf("bus lock VM exit is introduced to notify the VMM when a bus lock was acquired: %s\n",
	       t_failures ? "FAILED" : "ok");
}

static void test_internal(void)
{
	int before = t_failures;
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, tf_start, tf_end, B_DATA);
	t_gate(&t, 1, GA(tf_db, tf_start), 0, 0);
	/* the guest's #DB is not intercepted (KVM's default): handled inside, yet the bus lock exits */
	CHECK_EQ(t_run(&t), KVM_EXIT_X86_BUS_LOCK);
	CHECK_EQ(t.run->flags, KVM_RUN_X86_BUS_LOCK);
	CHECK_EQ(t_regs(&t).rip, GA(tf_after, tf_start));
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), 1);
	CHECK_EQ(t_r32(&t, B_DATA + 0x200), 0); /* the #DB is still pending */
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t.run->flags, 0);
	CHECK_EQ(t_r32(&t, B_DATA + 0x200), 1); /* delivered once, to the guest */
	t_fini(&t);
	printf("exit to user space even when current exit reason is handled by KVM internally: %s\n",
	       t_failures > before ? "FAILED" : "ok");
}

static void test_flags(void)
{
	int before = t_failures;
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, loop_start, loop_end, B_DATA);
	unsigned flagged = 0, exits = 0;
	for (;;) {
		t.run->flags = 0xffff; /* whatever the monitor leaves: cleared by the run */
		int r = t_run(&t);
		if (t.run->flags & KVM_RUN_X86_BUS_LOCK)
			flagged++;
		if (r != KVM_EXIT_X86_BUS_LOCK) {
			CHECK_EQ(r, KVM_EXIT_IO);
			CHECK_EQ(t.run->flags, 0);
			break;
		}
		exits++;
		CHECK_EQ(t.run->flags, KVM_RUN_X86_BUS_LOCK);
	}
	CHECK_EQ(exits, N_LOCKS);
	CHECK_EQ(flagged, N_LOCKS);
	struct blvm_bus_lock_info info;
	CHECK_EQ(bl_info(&t, &info), -ENOENT);
	t_fini(&t);
	printf("Set a new field KVM_RUN_BUS_LOCK in vcpu->run->flags: %s\n", t_failures > before ? "FAILED" : "ok");
}

int main(void)
{
	test_notify();
	test_internal();
	test_flags();
	return t_result("buslock_vm_exit");
}
