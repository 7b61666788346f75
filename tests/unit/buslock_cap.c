/* SPDX-License-Identifier: MIT */
/*
 * Seed: "The user can get the supported mode bitmap (i.e. off and exit)" and "and enable it
 * explicitly (disabled by default)", with KVM's exact enable semantics (x86.c
 * kvm_vm_ioctl_enable_cap): unknown bits or OFF together with EXIT are -EINVAL; 0 and OFF succeed
 * and do nothing (OFF does not undo an earlier EXIT); the setting reaches only vCPUs created after
 * it. Also blvm's private BLVM_CAP_BUS_LOCK_CONTAIN (0/1, else -EINVAL).
 */
#include "buslock_harness.h"

GUEST(one, ".code64",
	"lock incl 0x3e(%rdi)\n"
	"hlt\n");

/* exits 33 seen before HLT, on a fresh vCPU over a VM prepared by bl_init(how) */
static unsigned count_exits(int amd, int how, uint64_t extra_mode)
{
	struct t_vm t;
	bl_init(&t, amd, how);
	if (extra_mode != ~0ull)
		CHECK_EQ(bl_enable_cap(&t, extra_mode), 0);
	bl_start(&t, one_start, one_end, B_DATA);
	unsigned n = 0, flags = 0;
	CHECK_EQ(bl_run_counting(&t, &n, &flags), KVM_EXIT_HLT);
	CHECK_EQ(flags, n);
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), 1);
	t_fini(&t);
	return n;
}

static void test_bitmap(void)
{
	int before = t_failures;
	struct t_vm t;
	bl_init(&t, 0, BL_OFF);
	CHECK_EQ(t.ops->check_extension(t.vm, KVM_CAP_X86_BUS_LOCK_EXIT),
		 KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT);
	CHECK_EQ(t.ops->check_extension(t.vm, KVM_CAP_X86_BUS_LOCK_EXIT), 3);
	t_fini(&t);
	bl_init(&t, 1, BL_OFF);
	CHECK_EQ(t.ops->check_extension(t.vm, KVM_CAP_X86_BUS_LOCK_EXIT), 3);
	t_fini(&t);
	printf("The user can get the supported mode bitmap (i.e. off and exit): %s\n",
	       t_failures > before ? "FAILED" : "ok");
}

static void test_enable(void)
{
	int before = t_failures;
	/* disabled by default, both flavours */
	CHECK_EQ(count_exits(0, BL_OFF, ~0ull), 0);
	CHECK_EQ(count_exits(1, BL_OFF, ~0ull), 0);
	/* enabled explicitly */
	CHECK_EQ(count_exits(0, BL_ENABLE, ~0ull), 1);
	CHECK_EQ(count_exits(1, BL_ENABLE, ~0ull), 1);
	/* enabled after the vCPU was created: that vCPU keeps its controls */
	CHECK_EQ(count_exits(0, BL_ENABLE_AFTER_VCPU, ~0ull), 0);
	CHECK_EQ(count_exits(1, BL_ENABLE_AFTER_VCPU, ~0ull), 0);
	/* ...but a vCPU created afterwards has them */
	{
		struct t_vm t;
		bl_init(&t, 0, BL_ENABLE_AFTER_VCPU);
		struct blvm_engine_vcpu *c2;
		struct kvm_run *run2;
		CHECK_EQ(t.ops->vcpu_create(t.vm, 1, &c2, &run2), 0);
		t.ops->vcpu_destroy(t.cpu);
		t.cpu = c2;
		t.run = run2;
		bl_start(&t, one_start, one_end, B_DATA);
		CHECK_EQ(t_run(&t), KVM_EXIT_X86_BUS_LOCK);
		CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
		t_fini(&t);
	}
	/* 0 and OFF succeed and do nothing; OFF after EXIT does not disable (as KVM) */
	CHECK_EQ(count_exits(0, BL_OFF, 0), 0);
	CHECK_EQ(count_exits(0, BL_OFF, KVM_BUS_LOCK_DETECTION_OFF), 0);
	CHECK_EQ(count_exits(0, BL_ENABLE, KVM_BUS_LOCK_DETECTION_OFF), 1);

	/* -EINVAL: unknown bits, OFF together with EXIT; an unknown capability */
	struct t_vm t;
	bl_init(&t, 0, BL_OFF);
	CHECK_EQ(bl_enable_cap(&t, KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT), -EINVAL);
	CHECK_EQ(bl_enable_cap(&t, 4), -EINVAL);
	CHECK_EQ(bl_enable_cap(&t, KVM_BUS_LOCK_DETECTION_EXIT | 4), -EINVAL);
	CHECK_EQ(bl_enable_cap(&t, 1ull << 63), -EINVAL);
	CHECK_EQ(bl_enable_cap(&t, ~0ull), -EINVAL);
	struct kvm_enable_cap bad = { .cap = 0x7fff, .args = { 1 } };
	CHECK_EQ(t.ops->enable_cap(t.vm, &bad), -EINVAL);
	/* blvm's contain capability */
	CHECK_EQ(t.ops->check_extension(t.vm, BLVM_CAP_BUS_LOCK_CONTAIN), 1);
	struct kvm_enable_cap ct = { .cap = BLVM_CAP_BUS_LOCK_CONTAIN, .args = { 2 } };
	CHECK_EQ(t.ops->enable_cap(t.vm, &ct), -EINVAL);
	ct.args[0] = 1;
	CHECK_EQ(t.ops->enable_cap(t.vm, &ct), 0);
	ct.args[0] = 0;
	CHECK_EQ(t.ops->enable_cap(t.vm, &ct), 0);
	t_fini(&t);
	/* the -EINVAL calls changed nothing */
	bl_init(&t, 0, BL_OFF);
	bl_enable_cap(&t, KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT);
	bl_enable_cap(&t, KVM_BUS_LOCK_DETECTION_EXIT | 4);
	struct blvm_engine_vcpu *c2;
	struct kvm_run *run2;
	CHECK_EQ(t.ops->vcpu_create(t.vm, 1, &c2, &run2), 0);
	t.ops->vcpu_destroy(t.cpu);
	t.cpu = c2;
	t.run = run2;
	bl_start(&t, one_start, one_end, B_DATA);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	t_fini(&t);
	printf("and enable it explicitly (disabled by default): %s\n", t_failures > before ? "FAILED" : "ok");
}

int main(void)
{
	test_bitmap();
	test_enable();
	return t_result("buslock_cap");
}
