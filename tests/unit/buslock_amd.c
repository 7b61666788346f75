/* SPDX-License-Identifier: MIT */
/*
 * The AMD flavour (cpu_vendor_amd; SVM Bus Lock Threshold, KVM since 6.16): the bus-lock exit
 * (0xa5 -> KVM_EXIT_X86_BUS_LOCK + flag) is fault-like: RIP at the locking instruction, which has
 * not executed (memory unchanged). Resuming with RIP unchanged executes it exactly once without a
 * new exit (KVM's complete_userspace_buslock() sets bus_lock_counter to 1: "If userspace has NOT
 * changed RIP, then KVM's ABI is to let the guest execute the bus-locking instruction"); resuming
 * at another RIP does not credit. A loop of N split locks: N exits, the guest's counter N (the
 * check of Linux's kvm_buslock_test). MMIO: the bus-lock exit comes first, then the MMIO exits
 * without the flag. A/D update of a UC page table: fault-like as well (A still clear at the exit).
 */
#include "buslock_harness.h"

GUEST(aloop, ".code64",
	"xor %ebx, %ebx\n"
	"1:\n"
	".globl aloop_lock\naloop_lock:\n"
	"xchg %eax, 0x3e(%rdi)\n"                /* implicit lock, split */
	"incl 0x100(%rdi)\n"
	"inc %ebx\n"
	"cmp $100, %ebx\n"
	"jne 1b\n"
	"hlt\n");
extern const uint8_t aloop_lock[];

GUEST(ab, ".code64",
	".globl ab_a\nab_a:\n"
	"lock incl 0x3e(%rdi)\n"
	".globl ab_b\nab_b:\n"
	"lock incl 0x7e(%rdi)\n"
	"hlt\n");
extern const uint8_t ab_a[], ab_b[];

GUEST(ammio, ".code64",
	"mov $0xd0000000, %esi\n"
	"lock incl (%rsi)\n"
	"hlt\n");

GUEST(aad, ".code64",
	"mov $0x204000, %esi\n"
	"mov (%rsi), %eax\n"
	"hlt\n");

#define GA(sym, blob) (T_CODE + (uint64_t)((sym) - (blob)))

static void test_loop(void)
{
	struct t_vm t;
	bl_init(&t, 1, BL_ENABLE);
	bl_start(&t, aloop_start, aloop_end, B_DATA);
	memset(t.ram + B_DATA + 0x3e, 0, 4);
	unsigned exits = 0;
	int r;
	while ((r = t_run(&t)) == KVM_EXIT_X86_BUS_LOCK) {
		CHECK_EQ(t.run->flags, KVM_RUN_X86_BUS_LOCK);
		/* fault-like: RIP at the instruction, not executed yet */
		CHECK_EQ(t_regs(&t).rip, GA(aloop_lock, aloop_start));
		CHECK_EQ(t_r32(&t, B_DATA + 0x100), exits);
		struct blvm_bus_lock_info info;
		CHECK_EQ(bl_info(&t, &info), 0);
		CHECK_EQ(info.rip, GA(aloop_lock, aloop_start));
		CHECK_EQ(info.implicit, 1);
		CHECK_EQ(info.reason, BLVM_BUS_LOCK_SPLIT);
		exits++;
		if (t_failures)
			break;
	}
	CHECK_EQ(r, KVM_EXIT_HLT);
	CHECK_EQ(exits, 100);
	CHECK_EQ(t_r32(&t, B_DATA + 0x100), 100);
	t_fini(&t);
}

static void test_resume_elsewhere(void)
{
	struct t_vm t;
	bl_init(&t, 1, BL_ENABLE);
	bl_start(&t, ab_start, ab_end, B_DATA);
	CHECK_EQ(t_run(&t), KVM_EXIT_X86_BUS_LOCK);
	CHECK_EQ(t_regs(&t).rip, GA(ab_a, ab_start));
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), 0); /* no side effects */
	/* the monitor moves RIP to B: no credit, B exits in its turn */
	struct kvm_regs g = t_regs(&t);
	g.rip = GA(ab_b, ab_start);
	t.ops->set_regs(t.cpu, &g);
	CHECK_EQ(t_run(&t), KVM_EXIT_X86_BUS_LOCK);
	CHECK_EQ(t.run->flags, KVM_RUN_X86_BUS_LOCK);
	CHECK_EQ(t_regs(&t).rip, GA(ab_b, ab_start));
	CHECK_EQ(t_r32(&t, B_DATA + 0x7e), 0);
	/* resumed unchanged: B executes once, then HLT without another exit */
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t.run->flags, 0);
	CHECK_EQ(t_r32(&t, B_DATA + 0x7e), 1);
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), 0); /* A never executed */
	t_fini(&t);
}

static void test_mmio(void)
{
	struct t_vm t;
	bl_init(&t, 1, BL_ENABLE);
	bl_start(&t, ammio_start, ammio_end, B_DATA);
	CHECK_EQ(t_run(&t), KVM_EXIT_X86_BUS_LOCK);
	uint64_t at = t_regs(&t).rip;
	CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
	CHECK_EQ(t.run->mmio.is_write, 0);
	CHECK_EQ(t.run->flags, 0);
	memcpy(t.run->mmio.data, (uint32_t[]){ 41 }, 4);
	CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
	CHECK_EQ(t.run->mmio.is_write, 1);
	CHECK_EQ(t.run->flags, 0);
	uint32_t v;
	memcpy(&v, t.run->mmio.data, 4);
	CHECK_EQ(v, 42);
	CHECK(t_regs(&t).rip > at, "completed");
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	t_fini(&t);
}

static void test_ad(void)
{
	struct t_vm t;
	bl_init(&t, 1, BL_ENABLE);
	bl_start(&t, aad_start, aad_end, B_DATA);
	bl_small_pages(&t, 0x7 | 0x18, 0x7);
	CHECK_EQ(t_run(&t), KVM_EXIT_X86_BUS_LOCK);
	struct blvm_bus_lock_info info;
	CHECK_EQ(bl_info(&t, &info), 0);
	CHECK_EQ(info.rip, t_regs(&t).rip);
	CHECK_EQ(info.implicit, 1);
	CHECK_EQ(info.phys, B_PT + 8 * 4);
	CHECK_EQ(t_r64(&t, B_PT + 8 * 4) & 0x20, 0); /* the A bit is not set yet */
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_r64(&t, B_PT + 8 * 4) & 0x20, 0x20);
	t_fini(&t);
}

int main(void)
{
	test_loop();
	test_resume_elsewhere();
	test_mmio();
	test_ad();
	return t_result("AMD flavour: fault-like bus-lock exit, resume with RIP unchanged executes once");
}
