/* SPDX-License-Identifier: MIT */
/* Monitor internals shared by the files of src/vmm. Engine-independent: engines are reached only
 * through struct blvm_engine_ops. */
#ifndef BLVM_VMM_H
#define BLVM_VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "blvm/vm.h"
#include "dev/dev.h"
#include "introspect/linux.h"

/* Guest-physical layout chosen by the PVH loader (below the kernel's usual 1 MiB). */
#define PVH_START_INFO_GPA 0x6000ull  /* struct hvm_start_info, then the memory map */
#define PVH_CMDLINE_GPA 0x7000ull     /* NUL-terminated command line */
#define PVH_CMDLINE_MAX 0x1000ull     /* bytes, including the NUL */
#define PVH_INFO_END 0x8000ull

/* The BIOS area (QEMU's pc machine has ROM here): the monitor's ACPI tables, RSDP first, on a 16-byte
 * boundary where an OS that finds no boot-info pointer searches for it (ACPI 6.5, 5.2.5.1). */
#define BLVM_BIOS_AREA_GPA 0xe0000ull
#define BLVM_BIOS_AREA_END 0x100000ull
#define BLVM_ACPI_RSDP_GPA BLVM_BIOS_AREA_GPA

struct blvm_vcpu {
	struct blvm_vm *vm;
	unsigned id;
	struct blvm_engine_vcpu *ev;
	struct kvm_run *run;
	pthread_t thread;
	/* Written by the vCPU's thread only, read live by --control and --metrics: relaxed atomic
	 * stores and loads (__atomic_*: a plain mov on x86), so that a reader never races. */
	uint64_t exits;
	uint64_t exits_by_reason[64]; /* KVM_EXIT_* < 64 */
	atomic_bool in_guest;         /* between the pause gate and the end of run() (blvm_vm_pause) */
};

/* [a, a + b) lies within [0, limit), without overflow: the check of every offset and size read from an
 * untrusted kernel file (pvh.c, symbols.c). */
static inline bool fits(uint64_t a, uint64_t b, uint64_t limit)
{
	return a <= limit && b <= limit - a;
}

/* symbols.c: the kernel's function symbols, for reports ("guest_main+0x1a5"). */
struct blvm_symtab {
	struct blvm_sym *v; /* sorted by address */
	size_t n;
	char *strtab;       /* a copy of the file's, NUL-terminated */
	size_t strsz;
};
/* Reads the SHT_SYMTAB of an ELF file whose ELF header the caller has checked. 0 with t->n == 0
 * when the file has no symbols; -1 with the reason in err when the table is malformed (t empty). */
int blvm_symtab_load(struct blvm_symtab *t, const uint8_t *f, size_t len, char *err, size_t errlen);
void blvm_symtab_free(struct blvm_symtab *t);
/* The function containing addr and the offset into it, or NULL. */
const char *blvm_symtab_lookup(const struct blvm_symtab *t, uint64_t addr, uint64_t *offset);
/* "name+0xoff" ("name" at offset 0) into buf, or "" when no symbol covers addr; t may be NULL.
 * Returns snprintf's count. */
int blvm_symtab_format(const struct blvm_symtab *t, uint64_t addr, char *buf, size_t len);
/* Reads a System.map (--kernel-symbols): its code symbols at their link-time addresses. 0, or -1
 * with the reason ("line N is not ...") in err and t empty. */
int blvm_symtab_load_map(struct blvm_symtab *t, const uint8_t *f, size_t len, char *err, size_t errlen);
/* The address of the symbol called name, or -1. */
int blvm_symtab_find(const struct blvm_symtab *t, const char *name, uint64_t *addr);
/* runtime - link when it can be a 64-bit Linux's KASLR offset; -1 with the reason otherwise. */
int blvm_kaslr_slide(uint64_t link, uint64_t runtime, uint64_t *slide, char *err, size_t errlen);

/* The entry state the kernel loader chose (src/boot/); blvm_boot_set_entry_state() applies it. */
enum blvm_entry_mode {
	BLVM_ENTRY_PROTECTED32, /* PVH, Multiboot: flat 32-bit protected mode, paging off */
	BLVM_ENTRY_LONG64,      /* bzImage 64-bit boot protocol: long mode, identity paging */
};
struct blvm_boot_entry {
	enum blvm_entry_mode mode;
	const char *format;     /* "PVH", "bzImage", "Multiboot" (messages) */
	uint64_t rip, rax, rbx, rsi, cr3;
};

/* tasks.c: naming the guest task that takes a bus lock. */
struct blvm_tasks {
	bool ok;                          /* layout holds the guest kernel's facts */
	struct blvm_linux_layout layout;
	char why[400];                    /* why not, when !ok */
	atomic_bool said;                 /* the one line about missing facts was printed */
};

struct blvm_vm {
	struct blvm_vm_config cfg;
	const struct blvm_engine_ops *ops;
	struct blvm_engine_vm *ev;
	uint8_t *ram;               /* host copy of guest RAM: reach it through blvm_gpa() */
	uint64_t ram_below_4g;      /* RAM [0, ram_below_4g) at ram; the rest at 4 GiB (memory map) */
	struct blvm_boot_entry boot;
	uint64_t acpi_rsdp;         /* guest-physical address of the RSDP the monitor built, 0: none */
	struct blvm_symtab syms;    /* the kernel's, empty if stripped */
	char syms_warning[320];     /* why a malformed table was ignored; printed when the VM runs */
	/* --kernel-symbols: syms is a System.map at link-time addresses; the KASLR offset is learnt at
	 * the first bus lock in long mode from IA32_LSTAR (tasks.c) and set once; until then no name. */
	bool syms_map;
	uint64_t syms_anchor;       /* entry_SYSCALL_64's link-time address */
	_Atomic uint64_t syms_slide;
	atomic_bool syms_slide_known, syms_slide_said;
	struct blvm_vcpu *vcpus;

	pthread_mutex_t lock;       /* guards the device models and the end of the VM */
	struct blvm_bus bus;        /* the devices and the port and MMIO ranges they claim (src/dev) */
	struct uart16550 *com1;     /* on the bus; here for --stats */
	struct blvm_console *console;
	uint64_t port_reads_unclaimed, port_writes_unclaimed;
	uint64_t mmio_reads, mmio_writes; /* accesses to guest-physical addresses that are not RAM */

	struct blvm_policy *policy; /* NULL when --bus-lock=off */
	blvm_throttle_fn throttle_fn; /* blvm_vm_set_throttle_hook */
	void *throttle_arg;
	struct blvm_tasks tasks;
	pthread_mutex_t report_lock; /* one progress line at a time on stderr */

	atomic_bool ending;         /* set once: every vCPU stops at its next exit */
	/* The pause gate: paused vCPU threads wait on pause_cond before entering run(); a pauser waits
	 * there until no vCPU is in_guest. One bit per pauser (BLVM_PAUSE_*), so that the dead-VM
	 * check's short pause never lifts QMP's stop. */
	atomic_uint paused;
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	pthread_mutex_t end_lock;   /* guards result: blvm_vm_end writes it, blvm_vm_run reads it */
	int console_errno;          /* console output was lost (blvm_console_failed), under end_lock */
	struct blvm_vm_result result;
	double start_time, end_time; /* under end_lock while the VM runs (live stats read them) */
	struct blvm_dead_check *dead_check; /* dead.c, NULL where the engine reports a dead VM itself */
	atomic_bool dead_check_ran; /* dead.c's thread ran: --stats has "dead_checks" */
	uint64_t dead_checks;       /* times every vCPU blocked and dead.c judged their state; written
				     * by its thread (relaxed atomic), read by the statistics */
};

/* Pausers of the gate (vm->paused). */
#define BLVM_PAUSE_USER 1u       /* blvm_vm_pause(): QMP's stop */
#define BLVM_PAUSE_DEAD_CHECK 2u /* dead.c, while it reads the vCPUs' state */
void blvm_vm_pause_for(struct blvm_vm *vm, unsigned who);
void blvm_vm_resume_for(struct blvm_vm *vm, unsigned who);
/* vm.c: ends the VM as dead (status 125): vCPU `id` halted at `rip` with interrupts disabled and
 * nothing can wake any vCPU. The one wording, whichever engine found it. */
void blvm_vm_end_dead(struct blvm_vm *vm, unsigned id, uint64_t rip);
/* dead.c: the dead-VM check for an engine whose HLT blocks inside run() (KVM with the in-kernel
 * irqchip). Start before the vCPU threads, stop after they ended. */
void blvm_dead_check_start(struct blvm_vm *vm);
/* dead.c: where the one value of KVM statistic `name` of type `type` (KVM_STATS_TYPE_*) is in a
 * KVM_GET_STATS_FD file (pread offset), or -1 when the file has none. */
int64_t blvm_kvm_stat_offset(int fd, const char *name, uint32_t type);
void blvm_dead_check_stop(struct blvm_vm *vm);

/* src/boot/boot.c: recognises and loads the kernel (and initrd), writes the boot information. */
int blvm_boot_load(struct blvm_vm *vm, char *err, size_t errlen);
/* tasks.c: reads the guest kernel's BTF (kernel, the kernel file's bytes, or --kernel-btf) when a
 * bus-lock policy is on. -1 with one line in err only when --kernel-btf cannot be read; facts that
 * are missing are said at the first bus lock. */
int blvm_tasks_setup(struct blvm_vm *vm, const uint8_t *kernel, size_t len, bool bzimage, char *err, size_t errlen);
/* vm.c: "function+0xoff" for a guest RIP (the kernel's symbols, or --kernel-symbols' shifted by the
 * KASLR offset), "" when none names it. */
int blvm_vm_symbol(const struct blvm_vm *vm, uint64_t rip, char *buf, size_t len);
/* tasks.c: the policy's task source (blvm_policy_set_task_source), arg = the VM. */
void blvm_tasks_source(void *arg, unsigned vcpu, struct blvm_policy_task *t);

/* src/boot/boot.c: puts vCPU c in the entry state of vm->boot. */
int blvm_boot_set_entry_state(struct blvm_vm *vm, struct blvm_vcpu *c, char *err, size_t errlen);

/* vm.c: the host address of guest-physical [gpa, gpa + len) when it is all RAM, else NULL. The one
 * translation: RAM above the 32-bit hole does not sit at vm->ram + gpa. */
void *blvm_gpa(struct blvm_vm *vm, uint64_t gpa, uint64_t len);

/* bus.c: the port and MMIO space, through the device registry. Called with vm->lock held. */
void blvm_io(struct blvm_vm *vm, struct blvm_vcpu *vcpu, uint16_t port, bool is_write,
	     uint8_t *data, unsigned size);
void blvm_mmio(struct blvm_vm *vm, struct blvm_vcpu *vcpu, uint64_t gpa, bool is_write, uint8_t *data,
	       unsigned len);

/* vm.c: the vCPU's RIP for messages, 0 when vcpu is NULL or the engine cannot say. */
uint64_t blvm_vcpu_rip(struct blvm_vcpu *vcpu);
/* vm.c: the console's bytes could not be written (errno err): ends the VM with
 * BLVM_STATUS_CONSOLE_FAILED. The one path for every console write error (src/dev/console.c's writer). */
void blvm_console_failed(struct blvm_vm *vm, int err);

/* vm.c: sets interrupt line gsi to level (0/1) in the engine's interrupt controllers
 * (KVM_IRQ_LINE); nothing where the engine has none. Any thread. */
void blvm_irq_line(struct blvm_vm *vm, unsigned gsi, int level);

/* vm.c: ends the VM once (the first caller wins) and kicks every vCPU. */
void blvm_vm_end(struct blvm_vm *vm, enum blvm_end_reason reason, int status, uint64_t rip,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
