/* SPDX-License-Identifier: MIT */
/*
 * blvm engine interface: what the monitor asks of an execution engine.
 *
 * Every operation mirrors one KVM ioctl (Documentation/virt/kvm/api.rst) with the
 * same argument structures from <linux/kvm.h> and the same return convention:
 * 0 (or a non-negative value where the ioctl returns one) on success, -errno on
 * failure. A reader who knows KVM knows this interface; the kvm engine is a thin
 * wrapper over the ioctls, and the emu engine implements the same semantics in
 * software.
 *
 * Upwards, an engine speaks only `struct kvm_run`: after run() returns 0, the
 * vCPU's kvm_run holds exit_reason, flags and the exit's payload exactly as KVM
 * fills them. For KVM_EXIT_IO the data lives at (char *)run + run->io.data_offset,
 * inside the engine's run area, as in KVM's mmap'ed run page.
 *
 * Threading: one host thread per vCPU calls run() and the register operations of
 * that vCPU; kick() may be called from any thread or a signal handler.
 */
#ifndef BLVM_ENGINE_H
#define BLVM_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "blvm/buslock.h"

/* blvm's own capability beyond KVM's (used with check_extension/enable_cap like KVM's; the number
 * is far above KVM's, "BL" << 16). args[0] = 1: the `contain` policy — the engine executes split and
 * UC locked operations without a host bus lock, atomically with respect to the VM's other vCPUs,
 * still detected, reported and attributed; args[0] = 0 turns it off; other values -EINVAL.
 * Only the emu engine has it. */
#define BLVM_CAP_BUS_LOCK_CONTAIN 0x424c0001

struct blvm_engine_vm;   /* engine-private */
struct blvm_engine_vcpu; /* engine-private */

/* Engine-specific knobs fixed at VM creation. */
struct blvm_engine_config {
	unsigned nr_vcpus;       /* how many vCPUs the VM will have (CPUID topology) */
	int cpu_vendor_amd;      /* emu: 0 = Intel flavour (VMX model), 1 = AMD flavour (SVM model) */
	int translate;           /* emu: 0 = the interpreter; 1 = the binary translator runs the blocks
				  * that run often; 2 = every block from its first run (tests) */
};

/* A triple fault explained (ops->shutdown_info). */
struct blvm_shutdown_info {
	uint64_t rip;      /* linear address (CS.base + RIP) of the instruction the first event came from */
	char disasm[64];   /* that instruction, Intel syntax; "(unknown)" where its bytes are not readable */
	/* The events in the order each one's delivery faulted, in the SDM's mnemonics, the last being
	 * the one raised while delivering #DF: "#UD -> #GP -> #DF -> #GP". INT n and interrupts are
	 * "INT 0xNN" and "interrupt 0xNN". */
	char chain[96];
};

struct blvm_engine_ops {
	const char *name; /* "emu", "kvm" */

	/* KVM_CREATE_VM. On failure returns -errno and writes a one-line reason to err. */
	int (*vm_create)(const struct blvm_engine_config *cfg, struct blvm_engine_vm **vm,
			 char *err, size_t errlen);
	void (*vm_destroy)(struct blvm_engine_vm *vm);

	/* KVM_CHECK_EXTENSION on the VM. */
	int (*check_extension)(struct blvm_engine_vm *vm, long cap);
	/* KVM_ENABLE_CAP on the VM. */
	int (*enable_cap)(struct blvm_engine_vm *vm, const struct kvm_enable_cap *cap);
	/* KVM_SET_USER_MEMORY_REGION: host memory stays owned by the caller. Guest-physical
	 * addresses outside every slot are MMIO: accesses exit with KVM_EXIT_MMIO. */
	int (*set_user_memory_region)(struct blvm_engine_vm *vm,
				      const struct kvm_userspace_memory_region *region);

	/* KVM_CREATE_VCPU; *run receives the vCPU's run area (KVM's mmap'ed kvm_run). */
	int (*vcpu_create)(struct blvm_engine_vm *vm, unsigned id, struct blvm_engine_vcpu **vcpu,
			   struct kvm_run **run);
	void (*vcpu_destroy)(struct blvm_engine_vcpu *vcpu);

	int (*get_regs)(struct blvm_engine_vcpu *vcpu, struct kvm_regs *regs);
	int (*set_regs)(struct blvm_engine_vcpu *vcpu, const struct kvm_regs *regs);
	int (*get_sregs)(struct blvm_engine_vcpu *vcpu, struct kvm_sregs *sregs);
	int (*set_sregs)(struct blvm_engine_vcpu *vcpu, const struct kvm_sregs *sregs);
	/* KVM_GET_MSRS (api.rst 4.18): fills entries[k].data for the first msrs->nmsrs entries by their
	 * index; returns how many were read, stopping at the first MSR the vCPU does not have (as KVM
	 * does), or -errno. The monitor reads IA32_GS_BASE and IA32_KERNEL_GS_BASE at a bus-lock exit
	 * to find the guest's per-CPU data (src/introspect/linux.h). */
	int (*get_msrs)(struct blvm_engine_vcpu *vcpu, struct kvm_msrs *msrs);
	/* KVM_SET_GUEST_DEBUG (single-step: KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP). May be NULL. */
	int (*set_guest_debug)(struct blvm_engine_vcpu *vcpu, const struct kvm_guest_debug *dbg);

	/* KVM_GET_MP_STATE / KVM_SET_MP_STATE (api.rst 4.38, 4.39): the vCPU's multiprocessor state,
	 * KVM_MP_STATE_RUNNABLE, _UNINITIALIZED (an AP after creation: it waits for INIT, then for a
	 * SIPI), _INIT_RECEIVED (INIT taken, waiting for a SIPI), _HALTED (after HLT). With the
	 * in-engine irqchip, vCPU 0 is created RUNNABLE and every other vCPU UNINITIALIZED, as KVM's
	 * kvm_arch_vcpu_create() does with an in-kernel irqchip: the guest starts its APs with
	 * INIT-SIPI-SIPI through its local APIC. Without the irqchip only RUNNABLE is valid (-EINVAL).
	 * From the vCPU's own thread, or while it does not run. */
	int (*get_mp_state)(struct blvm_engine_vcpu *vcpu, struct kvm_mp_state *mp);
	int (*set_mp_state)(struct blvm_engine_vcpu *vcpu, const struct kvm_mp_state *mp);

	/* The state a dead-VM check reads (src/vmm/dead.c), each one KVM ioctl, from any thread while
	 * the vCPU is not inside run() (KVM holds the vCPU's mutex during KVM_RUN). May be NULL.
	 * KVM_GET_VCPU_EVENTS (api.rst): pending and masked NMI, the latched INIT (smi), the
	 * interrupt shadow. KVM_GET_LAPIC: the xAPIC register page (regs[off] for offset off). */
	int (*get_vcpu_events)(struct blvm_engine_vcpu *vcpu, struct kvm_vcpu_events *events);
	int (*get_lapic)(struct blvm_engine_vcpu *vcpu, struct kvm_lapic_state *lapic);
	/* KVM_GET_STATS_FD on the vCPU (api.rst; virt/kvm/binary_stats.c): a new file descriptor with KVM's binary
	 * statistics (header, id, descriptors, data; read with pread, without the vCPU's mutex), or
	 * -errno. Its "blocking" stat is 1 while the vCPU sleeps inside KVM_RUN (kvm_vcpu_block: HLT
	 * with the in-kernel irqchip, or waiting for INIT/SIPI). NULL where run() itself reports a dead
	 * VM (the emu engine's KVM_EXIT_HLT, src/emu/irqchip.c): the monitor then needs no detector.
	 * Called before the vCPU first runs. */
	int (*get_stats_fd)(struct blvm_engine_vcpu *vcpu);

	/* KVM_RUN: 0 with run->exit_reason set, or -errno (-EINTR after kick()). */
	int (*run)(struct blvm_engine_vcpu *vcpu);
	/* Make the current or next run() return -EINTR promptly. Thread- and signal-safe. */
	void (*kick)(struct blvm_engine_vcpu *vcpu);

	/* Beyond KVM: the bus lock the last run() reported in run->flags (KVM_RUN_X86_BUS_LOCK),
	 * attributed: 0 with *info filled, or -ENOENT. NULL where the engine cannot attribute
	 * (the kvm engine: the hardware exit carries no payload). */
	int (*bus_lock_info)(struct blvm_engine_vcpu *vcpu, struct blvm_bus_lock_info *info);

	/* Beyond KVM: what led to the KVM_EXIT_SHUTDOWN the last run() reported (a triple fault, SDM
	 * Vol. 3 6.15 "Interrupt 8"), 0 with *info filled, or -ENOENT. NULL where the engine does not
	 * know (the kvm engine: KVM's exit carries no payload, and the events are gone from the vCPU). */
	int (*shutdown_info)(struct blvm_engine_vcpu *vcpu, struct blvm_shutdown_info *info);

	/* Instructions retired by this vCPU, or -1 where the engine cannot count them. Any thread, also
	 * while the vCPU runs (live statistics): a recent count, exact once the vCPU has stopped. */
	int64_t (*instructions)(struct blvm_engine_vcpu *vcpu);
	/* Of those, the ones executed as re-emitted host instructions by the emu engine's binary
	 * translator (--translate=on); -1 without it. May be NULL. Same threading as instructions. */
	int64_t (*native_instructions)(struct blvm_engine_vcpu *vcpu);

	/* The PC interrupt controllers and timer live in the engine, as KVM keeps them in the kernel
	 * (api.rst 4.24 KVM_CREATE_IRQCHIP, 4.25 KVM_IRQ_LINE, 4.71 KVM_CREATE_PIT2). Called before
	 * any vCPU is created; NULL where the engine does not have them yet (the monitor says so). */
	/* KVM_CREATE_IRQCHIP: 8259 PIC pair, I/O APIC, and a local APIC for every vCPU created after. */
	int (*create_irqchip)(struct blvm_engine_vm *vm);
	/* KVM_CREATE_PIT2: the 8254 PIT (IRQ 0) with port 0x61's speaker/gate bits. */
	int (*create_pit2)(struct blvm_engine_vm *vm, const struct kvm_pit_config *cfg);
	/* KVM_IRQ_LINE: sets GSI irq->irq to level irq->level. Routing, on both engines, is the one
	 * QEMU's pc machine gives KVM (KVM_SET_GSI_ROUTING): GSI 0 (the PIT) to the PIC's IR0 and the
	 * I/O APIC's pin 2 (the MADT's ISA override), GSI 1 and 3-15 to the PIC and the pin of the
	 * same number, 16-23 to the I/O APIC, GSI 2 (the cascade) nowhere. Any thread. */
	int (*irq_line)(struct blvm_engine_vm *vm, const struct kvm_irq_level *irq);
	/* KVM_GET_IRQCHIP (api.rst): chip_id KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE or _IOAPIC.
	 * KVM_GET_PIT2: the PIT's counters; count_load_time is CLOCK_MONOTONIC in ns (KVM's
	 * ktime_get()); a counter with no count loaded has mode 0xff (kvm_pit_reset()). May be NULL. */
	int (*get_irqchip)(struct blvm_engine_vm *vm, struct kvm_irqchip *chip);
	int (*get_pit2)(struct blvm_engine_vm *vm, struct kvm_pit_state2 *pit);
};

extern const struct blvm_engine_ops blvm_engine_emu;
extern const struct blvm_engine_ops blvm_engine_kvm;

/* The engine called `name`, or NULL. */
const struct blvm_engine_ops *blvm_engine_find(const char *name);

#endif
