/* SPDX-License-Identifier: MIT */
/*
 * Which guest task took a bus lock (issue 13): the policy's task source for a Linux guest.
 *
 * At VM creation the guest kernel's BTF (the vmlinux given as the kernel, or --kernel-btf=FILE: a
 * vmlinux or a raw BTF file such as the guest's /sys/kernel/btf/vmlinux) gives the layout of
 * task_struct and the per-CPU offset of the current task (src/introspect/linux.h). At each bus lock,
 * and only then, the vCPU's CR3, CR4.LA57, CPL, IA32_GS_BASE and IA32_KERNEL_GS_BASE come through the
 * engine contract (KVM_GET_SREGS, KVM_GET_MSRS) and the task through the monitor's one guest-memory
 * path (blvm_gpa) and the introspection's own page walk with the kernel PGD. Where a fact is missing
 * (no BTF, not a Linux kernel, a kernel that does not match the BTF, memory the guest made hostile),
 * one line says so, once per VM, and the bus locks are attributed by CR3 and RIP as before.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"
#include "boot/boot.h"

#define MSR_GS_BASE 0xc0000101        /* SDM Vol. 4, Table 2-2 */
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_LSTAR 0xc0000082          /* SDM Vol. 4, Table 2-2: the RIP of SYSCALL in 64-bit mode */
#define CR4_LA57 (1ull << 12)
#define EFER_LMA (1ull << 10)

int blvm_tasks_setup(struct blvm_vm *vm, const uint8_t *kernel, size_t len, bool bzimage, char *err, size_t errlen)
{
	struct blvm_tasks *t = &vm->tasks;
	if (vm->cfg.bus_lock.mode == BLVM_POLICY_OFF)
		return 0; /* nothing is attributed: the BTF is not read */
	char why[200];
	if (vm->cfg.kernel_btf_path) {
		uint8_t *f;
		size_t flen;
		if (blvm_boot_read_file("--kernel-btf", vm->cfg.kernel_btf_path, &f, &flen, err, errlen) != 0)
			return -1;
		/* An ELF file (a vmlinux) carries BTF in its .BTF section; anything else is taken as raw BTF
		 * (btf.rst: the magic 0xeb9f), which libbpf checks. */
		int r = flen >= 4 && memcmp(f, "\177ELF", 4) == 0
				? blvm_linux_layout_from_elf(f, flen, &t->layout, why, sizeof why)
				: blvm_linux_layout_from_btf(f, flen, &t->layout, why, sizeof why);
		blvm_boot_free_file(f, flen);
		if (r == 0)
			t->ok = true;
		else
			snprintf(t->why, sizeof t->why, "--kernel-btf=%s: %s", vm->cfg.kernel_btf_path, why);
	} else if (bzimage) {
		/* The BTF is in the vmlinux inside the compressed payload. */
		uint8_t *v;
		size_t vlen;
		if (blvm_bzimage_vmlinux(kernel, len, BLVM_VMLINUX_MAX, &v, &vlen, why, sizeof why) != 0) {
			snprintf(t->why, sizeof t->why, "kernel %s: %s; give --kernel-btf=FILE (the kernel's vmlinux, or "
				 "the guest's /sys/kernel/btf/vmlinux)", vm->cfg.kernel_path, why);
		} else {
			if (blvm_linux_layout_from_elf(v, vlen, &t->layout, why, sizeof why) == 0)
				t->ok = true;
			else
				snprintf(t->why, sizeof t->why, "kernel %s: its vmlinux: %s", vm->cfg.kernel_path, why);
			free(v);
		}
	} else if (blvm_linux_layout_from_elf(kernel, len, &t->layout, why, sizeof why) == 0) {
		t->ok = true;
	} else {
		snprintf(t->why, sizeof t->why, "kernel %s: %s", vm->cfg.kernel_path, why);
	}
	return 0;
}

/* Says `fmt` once per VM on stderr. */
static void say_once(struct blvm_vm *vm, const char *what)
{
	if (atomic_exchange(&vm->tasks.said, true))
		return;
	pthread_mutex_lock(&vm->report_lock);
	fprintf(stderr, "blvm: guest processes not named: %s; bus locks are attributed by CR3 and RIP\n", what);
	pthread_mutex_unlock(&vm->report_lock);
}

/* Guest-physical reads for the introspection, through the one translation of guest RAM. */
static int phys_read(void *arg, uint64_t gpa, void *buf, size_t len)
{
	const void *src = blvm_gpa(arg, gpa, len);
	if (!src)
		return -1;
	memcpy(buf, src, len);
	return 0;
}

/* KVM_GET_MSRS through the engine for up to two MSRs: true when all n were read. struct kvm_msrs ends
 * in a flexible array, so the room for its entries is a union (ISO C; a struct around it would be a
 * GNU extension). */
static bool read_msrs(struct blvm_vm *vm, struct blvm_vcpu *c, const uint32_t *index, uint64_t *data, unsigned n)
{
	union { struct kvm_msrs h; char room[sizeof(struct kvm_msrs) + 2 * sizeof(struct kvm_msr_entry)]; } m;
	if (n > 2 || !vm->ops->get_msrs)
		return false;
	memset(&m, 0, sizeof m);
	m.h.nmsrs = n;
	for (unsigned k = 0; k < n; k++)
		m.h.entries[k].index = index[k];
	if (vm->ops->get_msrs(c->ev, &m.h) != (int)n)
		return false;
	for (unsigned k = 0; k < n; k++)
		data[k] = m.h.entries[k].data;
	return true;
}

/*
 * --kernel-symbols under KASLR: Linux points IA32_LSTAR at entry_SYSCALL_64 (syscall_init, before
 * userland and before any bus lock worth naming), so LSTAR minus the System.map's address is the
 * offset the decompressor relocated the kernel by. Read once, at the first bus lock in long mode
 * with LSTAR set; a value that is not a KASLR offset is said once and names nothing.
 */
static void learn_kaslr_offset(struct blvm_vm *vm, struct blvm_vcpu *c)
{
	const uint32_t lstar_index = MSR_LSTAR;
	uint64_t lstar = 0;
	char why[200];
	uint64_t slide;
	if (!read_msrs(vm, c, &lstar_index, &lstar, 1))
		snprintf(why, sizeof why, "the engine cannot read IA32_LSTAR (KVM_GET_MSRS)");
	else if (lstar == 0)
		return; /* the kernel has not set it yet: ask again at the next bus lock */
	else if (blvm_kaslr_slide(vm->syms_anchor, lstar, &slide, why, sizeof why) == 0) {
		atomic_store(&vm->syms_slide, slide);
		if (atomic_exchange(&vm->syms_slide_known, true))
			return; /* another vCPU learnt it first: the same value */
		pthread_mutex_lock(&vm->report_lock);
		fprintf(stderr, "blvm: --kernel-symbols: KASLR offset 0x%" PRIx64 " (IA32_LSTAR 0x%" PRIx64
			" is entry_SYSCALL_64, at 0x%" PRIx64 " in the System.map)\n", slide, lstar, vm->syms_anchor);
		pthread_mutex_unlock(&vm->report_lock);
		return;
	}
	if (atomic_exchange(&vm->syms_slide_said, true))
		return;
	pthread_mutex_lock(&vm->report_lock);
	fprintf(stderr, "blvm: --kernel-symbols=%s: %s; kernel functions are not named\n", vm->cfg.kernel_symbols_path,
		why);
	pthread_mutex_unlock(&vm->report_lock);
}

void blvm_tasks_source(void *arg, unsigned vcpu, struct blvm_policy_task *t)
{
	struct blvm_vm *vm = arg;
	if (vcpu >= vm->cfg.nr_vcpus)
		return;
	struct blvm_vcpu *c = &vm->vcpus[vcpu];
	struct kvm_sregs s;
	if (vm->ops->get_sregs(c->ev, &s) != 0)
		return;
	t->cr3 = s.cr3;
	/* The CPL is the RPL of CS (SDM Vol. 3 5.5; real mode runs at 0). A locked instruction changes
	 * neither CPL, CR3 nor the GS bases, so what the vCPU holds at the exit is what it held. */
	t->mode = (s.cr0 & 1) && (s.cs.selector & 3) == 3 ? BLVM_MODE_USER : BLVM_MODE_KERNEL;
	if (vm->syms_map && !atomic_load(&vm->syms_slide_known) && !atomic_load(&vm->syms_slide_said) &&
	    (s.efer & EFER_LMA))
		learn_kaslr_offset(vm, c);
	if (!vm->tasks.ok) {
		say_once(vm, vm->tasks.why);
		return;
	}
	if (!(s.efer & EFER_LMA)) {
		say_once(vm, "a bus lock outside long mode (not a 64-bit Linux, or its early boot)");
		return;
	}
	static const uint32_t gs_index[2] = { MSR_GS_BASE, MSR_KERNEL_GS_BASE };
	uint64_t gs[2];
	if (!read_msrs(vm, c, gs_index, gs, 2)) {
		say_once(vm, "the engine cannot read IA32_GS_BASE and IA32_KERNEL_GS_BASE (KVM_GET_MSRS)");
		return;
	}
	struct blvm_linux_task lt;
	char why[200], line[320];
	if (blvm_linux_current(&vm->tasks.layout, s.cr3, s.cr4 & CR4_LA57, t->mode == BLVM_MODE_USER, gs[0], gs[1], phys_read, vm, &lt, why, sizeof why) != 0) {
		snprintf(line, sizeof line, "at a bus lock on vCPU %u: %s (does the BTF match the kernel?)", vcpu, why);
		say_once(vm, line);
		return;
	}
	t->known = true;
	t->pid = lt.pid;
	t->tgid = lt.tgid;
	snprintf(t->comm, sizeof t->comm, "%s", lt.comm);
}
