/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the bus-lock unit tests (tests/unit/buslock_*.c): the emu engine driven through
 * its ops only, as a KVM monitor drives KVM. Builds on emu_harness.h (same guest-physical layout),
 * but creates the VM itself so that the flavour (cpu_vendor_amd) and KVM_ENABLE_CAP can come
 * before the vCPU, as KVM requires.
 */
#ifndef BUSLOCK_HARNESS_H
#define BUSLOCK_HARNESS_H

#include "emu_harness.h"

#define B_DATA 0x100000ull   /* data area (WB, 2 MiB page) */
#define B_PT 0x5000ull       /* a 4 KiB page table for 0x200000..0x3fffff (bl_small_pages) */
#define B_SMALL 0x200000ull  /* start of the 4 KiB-mapped region */

enum { BL_OFF = 0, BL_ENABLE = 1, BL_ENABLE_AFTER_VCPU = 2 };

static inline int bl_enable_cap(struct t_vm *t, uint64_t mode)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_BUS_LOCK_EXIT, .args = { mode } };
	return t->ops->enable_cap(t->vm, &cap);
}

/* A VM with 4 MiB of RAM at 0, one vCPU; detection per `how`; the AMD flavour when amd. */
static inline void bl_init(struct t_vm *t, int amd, int how)
{
	char err[256];
	t->ops = &blvm_engine_emu;
	t->ram = mmap(NULL, T_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->ram == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	struct blvm_engine_config cfg = { .nr_vcpus = 1, .cpu_vendor_amd = amd, .translate = t_translate() };
	if (t->ops->vm_create(&cfg, &t->vm, err, sizeof err)) {
		fprintf(stderr, "vm_create: %s\n", err);
		exit(1);
	}
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)t->ram };
	if (t->ops->set_user_memory_region(t->vm, &r)) {
		fprintf(stderr, "set_user_memory_region failed\n");
		exit(1);
	}
	if (how == BL_ENABLE && bl_enable_cap(t, KVM_BUS_LOCK_DETECTION_EXIT)) {
		fprintf(stderr, "enable_cap failed\n");
		exit(1);
	}
	if (t->ops->vcpu_create(t->vm, 0, &t->cpu, &t->run)) {
		fprintf(stderr, "vcpu_create failed\n");
		exit(1);
	}
	if (how == BL_ENABLE_AFTER_VCPU && bl_enable_cap(t, KVM_BUS_LOCK_DETECTION_EXIT)) {
		fprintf(stderr, "enable_cap failed\n");
		exit(1);
	}
}

/* Long mode at T_CODE with the blob loaded, RDI = data. */
static inline void bl_start(struct t_vm *t, const uint8_t *start, const uint8_t *end, uint64_t rdi)
{
	t_long_mode(t);
	t_load(t, T_CODE, start, end);
	struct kvm_regs r = t_regs(t);
	r.rdi = rdi;
	t->ops->set_regs(t->cpu, &r);
}

/* Maps 0x200000..0x3fffff with 4 KiB pages through the page table at B_PT. pde_flags are the PD
 * entry's flags (add 0x18 for an uncacheable page table), pte_flags every PTE's (A clear: 0x7). */
static inline void bl_small_pages(struct t_vm *t, uint64_t pde_flags, uint64_t pte_flags)
{
	for (uint64_t k = 0; k < 512; k++)
		t_w64(t, B_PT + 8 * k, (B_SMALL + (k << 12)) | pte_flags);
	t_w64(t, T_PD + 8 * (B_SMALL >> 21), B_PT | pde_flags);
}

static inline int bl_info(struct t_vm *t, struct blvm_bus_lock_info *info)
{
	memset(info, 0, sizeof *info);
	return t->ops->bus_lock_info(t->cpu, info);
}

/* Runs until an exit other than KVM_EXIT_X86_BUS_LOCK; counts the bus-lock exits and flags. */
static inline int bl_run_counting(struct t_vm *t, unsigned *exits33, unsigned *flags)
{
	for (;;) {
		int r = t_run(t);
		if (t->run->flags & KVM_RUN_X86_BUS_LOCK)
			(*flags)++;
		if (r != KVM_EXIT_X86_BUS_LOCK)
			return r;
		(*exits33)++;
	}
}

#endif
