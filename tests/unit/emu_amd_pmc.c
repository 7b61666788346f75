/* SPDX-License-Identifier: MIT */
/*
 * The AMD legacy performance-counter MSRs (APM Vol. 2 13.2.1: PerfEvtSel0-3 at C001_0000h-3h,
 * PerfCtr0-3 at C001_0004h-7h, present on every AMD64 CPU without a CPUID bit). With --cpu=amd
 * they behave as under KVM without a vPMU (kvm_get_msr_common / kvm_set_msr_common): a write is
 * accepted and ignored, a read returns 0. The Intel model has no such MSRs: every access #GPs.
 * (kvm-unit-tests' pmu_init() clears them at start on an AMD CPU without PerfCtrExtCore.)
 */
#include "emu_harness.h"

#define OUT 0x100000ull /* per MSR: the value read after writing 0x1234 (edx:eax); then #GP count */

GUEST(pm, ".code64",
	"mov $0x100000, %edi\n"
	"mov $0xc0010000, %ecx\n"
	"1: mov $0x1234, %eax\n"
	"xor %edx, %edx\n"
	"wrmsr\n"
	"mov $-1, %eax\n"
	"mov $-1, %edx\n"
	"rdmsr\n"
	"mov %eax, (%rdi)\n"
	"mov %edx, 4(%rdi)\n"
	"add $8, %rdi\n"
	"inc %ecx\n"
	"cmp $0xc0010008, %ecx\n"
	"jne 1b\n"
	"mov %r12d, 0x100100\n"
	"mov $0x3f8, %dx\n"
	"out %al, %dx\n"
	"hlt\n"
	".globl pm_gp\npm_gp:\n"              /* count, skip the 2-byte WRMSR/RDMSR */
	"inc %r12d\n"
	"addq $2, 8(%rsp)\n"
	"add $8, %rsp\n"
	"iretq\n");
extern const uint8_t pm_gp[];

static void run_as(bool amd)
{
	struct t_vm t;
	t_init(&t);
	/* t_init's VM is the Intel model: replace it by one of the vendor asked for */
	t.ops->vcpu_destroy(t.cpu);
	t.ops->vm_destroy(t.vm);
	char err[256];
	struct blvm_engine_config cfg = { .nr_vcpus = 1, .cpu_vendor_amd = amd, .translate = t_translate() };
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)t.ram };
	if (t.ops->vm_create(&cfg, &t.vm, err, sizeof err) || t.ops->set_user_memory_region(t.vm, &r) ||
	    t.ops->vcpu_create(t.vm, 0, &t.cpu, &t.run)) {
		fprintf(stderr, "setup failed: %s\n", err);
		exit(1);
	}
	t_long_mode(&t);
	t_load(&t, T_CODE, pm_start, pm_end);
	t_gate(&t, 13, T_CODE + (uint64_t)(pm_gp - pm_start), 0, 0);
	memset(t.ram + OUT, 0xee, 0x200);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	unsigned gps = t_r32(&t, 0x100100);
	if (amd) {
		CHECK(gps == 0, "AMD: %u #GP, want none", gps);
		for (unsigned k = 0; k < 8; k++)
			CHECK(t_r64(&t, OUT + 8 * k) == 0, "AMD: MSR 0x%x reads 0x%llx after a write, want 0",
			      0xc0010000 + k, (unsigned long long)t_r64(&t, OUT + 8 * k));
	} else {
		CHECK(gps == 16, "Intel: %u #GP, want 16 (every WRMSR and RDMSR)", gps);
	}
	t_fini(&t);
}

int main(void)
{
	run_as(true);
	run_as(false);
	return t_result("emu_amd_pmc");
}
