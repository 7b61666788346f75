/* SPDX-License-Identifier: MIT */
/*
 * Seed: "If delivery of this VM exit was preempted by a higher priority VM exit (e.g. EPT
 * misconfiguration, EPT violation, APIC access VM exit, APIC write VM exit, exception bitmap
 * exiting), bit 26 of exit reason in vmcs field is set to 1." -- and KVM then keeps the exit's own
 * reason for user space and sets KVM_RUN_X86_BUS_LOCK.
 *
 * Two such exits (Intel flavour):
 *  - MMIO (KVM: EPT misconfiguration -> KVM_EXIT_MMIO): a locked RMW on MMIO exits first for its
 *    read part; that exit carries the flag. The instruction re-executes to consume the data and
 *    then exits for its write part, without the flag: exactly one bus lock per instruction, also
 *    for CMPXCHG16B whose two 8-byte reads re-execute it twice;
 *  - single-step (KVM_SET_GUEST_DEBUG: an intercepted #DB, exception bitmap exiting ->
 *    KVM_EXIT_DEBUG): the step over the bus-locking instruction carries the flag, the others not.
 */
#include "buslock_harness.h"

GUEST(mmio, ".code64",
	"mov $0xd0000000, %esi\n"
	"mov $3, %ecx\n"
	"1: lock orl $0x10, (%rsi)\n"
	"loop 1b\n"
	"xor %eax, %eax\n xor %edx, %edx\n mov $7, %ebx\n mov $8, %ecx\n"
	"lock cmpxchg16b 0x10(%rsi)\n"
	"hlt\n");

GUEST(step, ".code64",
	"nop\n"
	".globl step_lock\nstep_lock:\n"
	"lock incl 0x3e(%rdi)\n"
	".globl step_after\nstep_after:\n"
	"nop\n"
	"hlt\n");
extern const uint8_t step_lock[], step_after[];

static void test_mmio(void)
{
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, mmio_start, mmio_end, B_DATA);
	for (int k = 0; k < 3; k++) {
		CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
		CHECK_EQ(t.run->mmio.is_write, 0);
		CHECK_EQ(t.run->flags, KVM_RUN_X86_BUS_LOCK);
		struct blvm_bus_lock_info info;
		CHECK_EQ(bl_info(&t, &info), 0);
		CHECK_EQ(info.reason, BLVM_BUS_LOCK_UC);
		CHECK_EQ(info.phys, 0xd0000000);
		memcpy(t.run->mmio.data, (uint32_t[]){ 0x100u * (unsigned)k }, 4);
		CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
		CHECK_EQ(t.run->mmio.is_write, 1);
		CHECK_EQ(t.run->flags, 0);
		uint32_t v;
		memcpy(&v, t.run->mmio.data, 4);
		CHECK_EQ(v, 0x100u * (unsigned)k | 0x10);
	}
	/* CMPXCHG16B: two 8-byte read exits (the first flagged), then two write exits */
	CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
	CHECK_EQ(t.run->mmio.is_write, 0);
	CHECK_EQ(t.run->mmio.phys_addr, 0xd0000010);
	CHECK_EQ(t.run->flags, KVM_RUN_X86_BUS_LOCK);
	struct blvm_bus_lock_info info;
	CHECK_EQ(bl_info(&t, &info), 0);
	CHECK_EQ(info.size, 16);
	memset(t.run->mmio.data, 0, 8);
	CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
	CHECK_EQ(t.run->mmio.is_write, 0);
	CHECK_EQ(t.run->mmio.phys_addr, 0xd0000018);
	CHECK_EQ(t.run->flags, 0);
	memset(t.run->mmio.data, 0, 8);
	for (int k = 0; k < 2; k++) {
		CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
		CHECK_EQ(t.run->mmio.is_write, 1);
		CHECK_EQ(t.run->flags, 0);
		uint64_t v;
		memcpy(&v, t.run->mmio.data, 8);
		CHECK_EQ(v, k ? 8 : 7);
	}
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t.run->flags, 0);
	t_fini(&t);
}

static void test_single_step(void)
{
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, step_start, step_end, B_DATA);
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP };
	CHECK_EQ(t.ops->set_guest_debug(t.cpu, &dbg), 0);
	CHECK_EQ(t_run(&t), KVM_EXIT_DEBUG); /* nop */
	CHECK_EQ(t.run->flags, 0);
	CHECK_EQ(t_run(&t), KVM_EXIT_DEBUG); /* the bus lock: the #DB wins and carries the flag */
	CHECK_EQ(t.run->flags, KVM_RUN_X86_BUS_LOCK);
	uint64_t after = T_CODE + (uint64_t)(step_after - step_start);
	CHECK_EQ(t.run->debug.arch.pc, after);
	CHECK_EQ(t_regs(&t).rip, after);
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), 1);
	struct blvm_bus_lock_info info;
	CHECK_EQ(bl_info(&t, &info), 0);
	CHECK_EQ(info.rip, T_CODE + (uint64_t)(step_lock - step_start));
	CHECK_EQ(info.reason, BLVM_BUS_LOCK_SPLIT);
	CHECK_EQ(t_run(&t), KVM_EXIT_DEBUG); /* nop: no second exit for the same bus lock */
	CHECK_EQ(t.run->flags, 0);
	dbg.control = 0;
	CHECK_EQ(t.ops->set_guest_debug(t.cpu, &dbg), 0);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t.run->flags, 0);
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), 1);
	t_fini(&t);
}

int main(void)
{
	test_mmio();
	test_single_step();
	return t_result("If delivery of this VM exit was preempted by a higher priority VM exit ... bit 26 "
			"of exit reason ... is set");
}
