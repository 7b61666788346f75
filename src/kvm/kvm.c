/* SPDX-License-Identifier: MIT */
/*
 * The kvm engine: blvm's engine contract (include/blvm/engine.h) over /dev/kvm.
 *
 * Every operation is one KVM ioctl (Documentation/virt/kvm/api.rst) with the same
 * arguments, returning 0 (or the ioctl's non-negative value) or -errno. What this
 * file adds on top of the raw ioctls:
 *   - vm_create sets up what an x86 VM needs before its vCPUs (TSS and identity-map
 *     pages, api.rst 4.32 KVM_SET_TSS_ADDR and 4.47 KVM_SET_IDENTITY_MAP_ADDR);
 *   - vcpu_create mmaps the run area and gives the vCPU a CPUID (APIC ID and blvm's
 *     hypervisor leaves, see set_cpuid());
 *   - kick() interrupts a running vCPU from another thread (protocol below).
 *
 * The in-kernel irqchip and PIT (create_irqchip, create_pit2) are KVM's own: HLT does not exit
 * (the vCPU blocks in KVM_RUN until an interrupt), and every vCPU but the first starts in
 * KVM_MP_STATE_UNINITIALIZED, waiting for the guest's INIT-SIPI-SIPI.
 *
 * Guest-physical range reserved by this engine (must not be RAM or a device):
 *   0xfffbc000..0xfffbcfff  identity-mapped page table page (Intel real mode / no paging)
 *   0xfffbd000..0xfffbffff  the three pages of the TSS (Intel real mode)
 * These are the same addresses Firecracker and kvmtool use, just below the 4 GiB
 * boundary's BIOS area.
 */
#include <blvm/engine.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KVM_ENGINE_TSS_ADDR 0xfffbd000UL
#define KVM_ENGINE_IDENTITY_MAP_ADDR 0xfffbc000ULL

/* Signal used by kick(). Its disposition is owned by this engine (see kick protocol). */
#define KVM_ENGINE_KICK_SIGNAL SIGUSR1

/* blvm's hypervisor CPUID leaves (guest ABI, read by the guest runtime's SMP start-up). */
#define BLVM_CPUID_SIGNATURE 0x40000000u /* EAX = max leaf, EBX:ECX:EDX = "blvmblvmblvm" */
#define BLVM_CPUID_INFO 0x40000001u      /* EAX = number of vCPUs, EBX = ABI version */
#define BLVM_CPUID_ABI_VERSION 1u

struct blvm_engine_vm {
	int sys_fd;               /* /dev/kvm: system ioctls (mmap size, supported CPUID) */
	int vm_fd;                /* KVM_CREATE_VM */
	unsigned nr_vcpus;        /* from the config, for the hypervisor CPUID leaf */
	size_t run_size;          /* KVM_GET_VCPU_MMAP_SIZE */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, fetched once, read-only afterwards */
	int bus_lock_rip;         /* where RIP is at exit 33: BUS_LOCK_RIP_* (the host's vendor) */
};

/* api.rst, KVM_CAP_X86_BUS_LOCK_EXIT: "On Intel hosts, RIP points at the next instruction, i.e. the
 * exit is trap-like. On AMD hosts, RIP points at the offending instruction, i.e. the exit is
 * fault-like" (the SDM's "bus lock detection" VM exit, reason 74, comes after the instruction
 * completed; the APM's "Bus Lock Threshold" intercept before it executes: docs/REFERENCE.md). The
 * host's vendor is leaf 0 of
 * KVM_GET_SUPPORTED_CPUID, which KVM takes from the host (the vendor string is not virtualised). */
enum { BUS_LOCK_RIP_UNKNOWN, BUS_LOCK_RIP_NEXT, BUS_LOCK_RIP_INSN };

struct blvm_engine_vcpu {
	struct blvm_engine_vm *vm;
	int fd;
	unsigned id;
	struct kvm_run *run; /* mmap'ed, vm->run_size bytes */
	int tid;             /* kernel thread id of the last run() caller, 0 = never ran; atomic */
};

/* ---- errors ---------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, int e, const char *fmt, const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, what, strerror(e));
	return -e;
}

/* ---- VM -------------------------------------------------------------------------- */

/* KVM_GET_SUPPORTED_CPUID with a buffer grown until it fits (api.rst 4.46: E2BIG). */
static int get_supported_cpuid(int sys_fd, struct kvm_cpuid2 **out)
{
	for (unsigned nent = 64; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = nent;
		if (ioctl(sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			*out = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return -e;
	}
	return -E2BIG;
}

static void kvm_vm_destroy(struct blvm_engine_vm *vm)
{
	if (!vm)
		return;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->sys_fd >= 0)
		close(vm->sys_fd);
	free(vm->cpuid);
	free(vm);
}

static int kvm_vm_create(const struct blvm_engine_config *cfg, struct blvm_engine_vm **out,
			 char *err, size_t errlen)
{
	struct blvm_engine_vm *vm = calloc(1, sizeof(*vm));
	int r;

	if (err && errlen)
		err[0] = '\0';
	*out = NULL;
	if (!vm)
		return fail(err, errlen, ENOMEM, "%s: %s", "kvm engine");
	vm->sys_fd = vm->vm_fd = -1;
	vm->nr_vcpus = cfg && cfg->nr_vcpus ? cfg->nr_vcpus : 1;

	vm->sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->sys_fd < 0) {
		r = fail(err, errlen, errno, "%s: %s (the kvm engine needs KVM; use --engine=emu)",
			 "/dev/kvm");
		goto out;
	}
	r = ioctl(vm->sys_fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		if (r < 0) {
			r = fail(err, errlen, errno, "%s: KVM_GET_API_VERSION: %s", "/dev/kvm");
		} else {
			if (err && errlen)
				snprintf(err, errlen,
					 "/dev/kvm: KVM API version %d, this engine needs %d (use --engine=emu)",
					 r, KVM_API_VERSION);
			r = -EINVAL;
		}
		goto out;
	}
	r = ioctl(vm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < 0) {
		r = fail(err, errlen, errno, "%s: KVM_GET_VCPU_MMAP_SIZE: %s", "/dev/kvm");
		goto out;
	}
	vm->run_size = (size_t)r;
	if (vm->run_size < sizeof(struct kvm_run)) {
		r = fail(err, errlen, EINVAL, "%s: KVM_GET_VCPU_MMAP_SIZE smaller than kvm_run: %s",
			 "/dev/kvm");
		goto out;
	}
	r = get_supported_cpuid(vm->sys_fd, &vm->cpuid);
	if (r < 0) {
		r = fail(err, errlen, -r, "%s: KVM_GET_SUPPORTED_CPUID: %s", "/dev/kvm");
		goto out;
	}
	for (__u32 i = 0; i < vm->cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &vm->cpuid->entries[i];
		char vendor[13];
		if (e->function != 0)
			continue;
		memcpy(vendor, &e->ebx, 4), memcpy(vendor + 4, &e->edx, 4), memcpy(vendor + 8, &e->ecx, 4);
		vendor[12] = '\0';
		if (strcmp(vendor, "GenuineIntel") == 0)
			vm->bus_lock_rip = BUS_LOCK_RIP_NEXT;
		else if (strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0)
			vm->bus_lock_rip = BUS_LOCK_RIP_INSN; /* Hygon: KVM's SVM code, as AMD */
	}

	/* Type 0: the default x86 VM. KVM_CREATE_VM can fail with EINTR on a busy host. */
	do
		vm->vm_fd = ioctl(vm->sys_fd, KVM_CREATE_VM, 0UL);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0) {
		r = fail(err, errlen, errno, "%s: KVM_CREATE_VM: %s (use --engine=emu)", "/dev/kvm");
		goto out;
	}

	/*
	 * Intel VMX without unrestricted guest runs real mode through vm86 and needs a TSS
	 * of three pages and an identity-mapped page table in guest-physical space; both
	 * must be set before the first vCPU. On AMD these are accepted and unused.
	 */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_ENGINE_TSS_ADDR) < 0) {
		r = fail(err, errlen, errno, "%s: KVM_SET_TSS_ADDR: %s", "/dev/kvm");
		goto out;
	}
	if (ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		__u64 addr = KVM_ENGINE_IDENTITY_MAP_ADDR;
		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) {
			r = fail(err, errlen, errno, "%s: KVM_SET_IDENTITY_MAP_ADDR: %s", "/dev/kvm");
			goto out;
		}
	}

	*out = vm;
	return 0;
out:
	kvm_vm_destroy(vm);
	return r;
}

static int kvm_check_extension(struct blvm_engine_vm *vm, long cap)
{
	int r = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? -errno : r;
}

static int kvm_enable_cap(struct blvm_engine_vm *vm, const struct kvm_enable_cap *cap)
{
	struct kvm_enable_cap c = *cap; /* the ioctl takes a non-const pointer */
	return ioctl(vm->vm_fd, KVM_ENABLE_CAP, &c) < 0 ? -errno : 0;
}

static int kvm_set_user_memory_region(struct blvm_engine_vm *vm,
				      const struct kvm_userspace_memory_region *region)
{
	struct kvm_userspace_memory_region r = *region;
	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

/* ---- vCPU ------------------------------------------------------------------------ */

static int kick_signal_setup(void); /* see the kick protocol below */

/*
 * blvm's hypervisor leaves replace KVM's (0x40000000 "KVMKVMKVM", 0x40000001 PV
 * features): the guest sees "blvmblvmblvm", max leaf 0x40000001, and in 0x40000001
 * EAX = number of vCPUs, EBX = ABI version. The guest runtime's SMP start-up reads
 * them (the emu engine reports the same leaves). Without KVM's signature, KVM offers
 * the guest no paravirtual features, which blvm's guests do not use.
 * `c` has room for two more entries than it holds.
 */
static void cpuid_set_hypervisor_leaves(struct kvm_cpuid2 *c, unsigned nr_vcpus)
{
	__u32 n = 0;
	for (__u32 i = 0; i < c->nent; i++)
		if ((c->entries[i].function & 0xffffff00u) != 0x40000000u)
			c->entries[n++] = c->entries[i];

	static const char sig[12] = { 'b', 'l', 'v', 'm', 'b', 'l', 'v', 'm', 'b', 'l', 'v', 'm' };
	struct kvm_cpuid_entry2 e = { .function = BLVM_CPUID_SIGNATURE, .eax = BLVM_CPUID_INFO };
	memcpy(&e.ebx, sig, 4);
	memcpy(&e.ecx, sig + 4, 4);
	memcpy(&e.edx, sig + 8, 4);
	c->entries[n++] = e;
	c->entries[n++] = (struct kvm_cpuid_entry2){
		.function = BLVM_CPUID_INFO, .eax = nr_vcpus, .ebx = BLVM_CPUID_ABI_VERSION,
	};
	c->nent = n;
}

/*
 * KVM_SET_CPUID2 from what KVM supports, with this vCPU's APIC ID (SDM vol. 2A CPUID:
 * leaf 1 EBX[31:24] initial APIC ID; leaves 0xB and 0x1F EDX x2APIC ID; APM: leaf
 * 0x8000001E EAX extended APIC ID) and blvm's hypervisor leaves.
 */
static int set_cpuid(struct blvm_engine_vcpu *vcpu)
{
	const struct kvm_cpuid2 *sup = vcpu->vm->cpuid;
	size_t size = sizeof(*sup) + (sup->nent + 2) * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	int r = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, sup, sizeof(*sup) + sup->nent * sizeof(sup->entries[0]));
	for (__u32 i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x00ffffffu) | (vcpu->id << 24);
			break;
		case 0xb:
		case 0x1f:
			e->edx = vcpu->id;
			break;
		case 0x8000001e:
			e->eax = vcpu->id;
			break;
		}
	}
	cpuid_set_hypervisor_leaves(c, vcpu->vm->nr_vcpus);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0)
		r = -errno;
	free(c);
	return r;
}

static void kvm_vcpu_destroy(struct blvm_engine_vcpu *vcpu)
{
	if (!vcpu)
		return;
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	free(vcpu);
}

static int kvm_vcpu_create(struct blvm_engine_vm *vm, unsigned id, struct blvm_engine_vcpu **out,
			   struct kvm_run **run)
{
	struct blvm_engine_vcpu *vcpu = calloc(1, sizeof(*vcpu));
	int r;

	*out = NULL;
	if (!vcpu)
		return -ENOMEM;
	vcpu->vm = vm;
	vcpu->id = id;
	r = kick_signal_setup();
	if (r < 0) {
		free(vcpu);
		return r;
	}
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		r = -errno;
		goto out;
	}
	void *p = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	vcpu->run = p;
	r = set_cpuid(vcpu);
	if (r < 0)
		goto out;
	*out = vcpu;
	if (run)
		*run = vcpu->run;
	return 0;
out:
	kvm_vcpu_destroy(vcpu);
	return r;
}

static int kvm_get_regs(struct blvm_engine_vcpu *vcpu, struct kvm_regs *regs)
{
	return ioctl(vcpu->fd, KVM_GET_REGS, regs) < 0 ? -errno : 0;
}

static int kvm_set_regs(struct blvm_engine_vcpu *vcpu, const struct kvm_regs *regs)
{
	struct kvm_regs r = *regs;
	return ioctl(vcpu->fd, KVM_SET_REGS, &r) < 0 ? -errno : 0;
}

static int kvm_get_sregs(struct blvm_engine_vcpu *vcpu, struct kvm_sregs *sregs)
{
	return ioctl(vcpu->fd, KVM_GET_SREGS, sregs) < 0 ? -errno : 0;
}

static int kvm_set_sregs(struct blvm_engine_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	struct kvm_sregs s = *sregs;
	return ioctl(vcpu->fd, KVM_SET_SREGS, &s) < 0 ? -errno : 0;
}

static int kvm_get_msrs(struct blvm_engine_vcpu *vcpu, struct kvm_msrs *msrs)
{
	int r = ioctl(vcpu->fd, KVM_GET_MSRS, msrs);
	return r < 0 ? -errno : r;
}

static int kvm_set_guest_debug(struct blvm_engine_vcpu *vcpu, const struct kvm_guest_debug *dbg)
{
	struct kvm_guest_debug d = *dbg;
	return ioctl(vcpu->fd, KVM_SET_GUEST_DEBUG, &d) < 0 ? -errno : 0;
}

/* KVM_GET_MP_STATE / KVM_SET_MP_STATE (api.rst 4.38/4.39). With the in-kernel irqchip KVM creates
 * every vCPU but the first UNINITIALIZED (kvm_arch_vcpu_create()): APs wait for INIT and SIPI. */
static int kvm_get_mp_state(struct blvm_engine_vcpu *vcpu, struct kvm_mp_state *mp)
{
	return ioctl(vcpu->fd, KVM_GET_MP_STATE, mp) < 0 ? -errno : 0;
}

static int kvm_set_mp_state(struct blvm_engine_vcpu *vcpu, const struct kvm_mp_state *mp)
{
	struct kvm_mp_state m = *mp;
	return ioctl(vcpu->fd, KVM_SET_MP_STATE, &m) < 0 ? -errno : 0;
}

/* What the monitor's dead-VM check reads (src/vmm/dead.c), each one ioctl of api.rst. */
static int kvm_get_vcpu_events(struct blvm_engine_vcpu *vcpu, struct kvm_vcpu_events *events)
{
	return ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, events) < 0 ? -errno : 0;
}

static int kvm_get_lapic(struct blvm_engine_vcpu *vcpu, struct kvm_lapic_state *lapic)
{
	return ioctl(vcpu->fd, KVM_GET_LAPIC, lapic) < 0 ? -errno : 0;
}

/* KVM_GET_STATS_FD takes the vCPU's mutex to make the file; reading it later does not. */
static int kvm_get_stats_fd(struct blvm_engine_vcpu *vcpu)
{
	int fd = ioctl(vcpu->fd, KVM_GET_STATS_FD, 0);
	return fd < 0 ? -errno : fd;
}

static int kvm_get_irqchip(struct blvm_engine_vm *vm, struct kvm_irqchip *chip)
{
	return ioctl(vm->vm_fd, KVM_GET_IRQCHIP, chip) < 0 ? -errno : 0;
}

static int kvm_get_pit2(struct blvm_engine_vm *vm, struct kvm_pit_state2 *pit)
{
	return ioctl(vm->vm_fd, KVM_GET_PIT2, pit) < 0 ? -errno : 0;
}

/* ---- run and kick ---------------------------------------------------------------- */

/*
 * Kick protocol (api.rst, "immediate_exit" in struct kvm_run, and 4.2 KVM_RUN -EINTR):
 *
 *   kick():  1. store run->immediate_exit = 1;
 *            2. if a thread has run this vCPU, send it KVM_ENGINE_KICK_SIGNAL (tgkill).
 *   run():   records its thread id before KVM_RUN; on -EINTR it clears immediate_exit.
 *
 * Whatever the interleaving, the current or the next run() returns -EINTR promptly:
 *   - kick before KVM_RUN is entered: KVM sees immediate_exit = 1 and returns -EINTR
 *     at once, without entering the guest (the flag closes the window in which a
 *     signal delivered just before the ioctl would be consumed and lost);
 *   - kick while the guest runs: the pending signal makes KVM leave the guest and
 *     return -EINTR; the handler then runs and does nothing;
 *   - kick while run() is outside KVM_RUN handling an exit: the flag stays set and
 *     the next run() returns -EINTR; the signal only interrupts whatever system call
 *     the vCPU thread is in (the handler is installed without SA_RESTART so that
 *     KVM_RUN is not restarted; callers on vCPU threads must tolerate EINTR).
 * run() clears the flag only after returning -EINTR, so a kick is never lost: at
 * worst two kicks collapse into one -EINTR. The caller decides after -EINTR whether
 * it was asked to stop (its own flag) and simply runs again otherwise.
 *
 * The signal's handler is a no-op installed once per process (pthread_once) on the
 * first vcpu_create; it is the only process-wide state of this engine. Because a
 * blocked signal would not interrupt KVM_RUN, run() unblocks the signal in each new
 * vCPU thread. The monitor must not use KVM_ENGINE_KICK_SIGNAL (SIGUSR1) itself.
 * tgkill() is limited to this process's thread group, so a kick after the vCPU's
 * thread has exited can at worst hit another of our threads with the no-op handler.
 */
static void kick_signal_handler(int sig)
{
	(void)sig;
}

static pthread_once_t kick_signal_once = PTHREAD_ONCE_INIT;
static int kick_signal_error; /* written once inside pthread_once */

static void kick_signal_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_signal_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return -EINTR */
	if (sigaction(KVM_ENGINE_KICK_SIGNAL, &sa, NULL) < 0)
		kick_signal_error = errno;
}

static int kick_signal_setup(void)
{
	pthread_once(&kick_signal_once, kick_signal_install);
	return -kick_signal_error;
}

static int kvm_run(struct blvm_engine_vcpu *vcpu)
{
	int tid = (int)syscall(SYS_gettid);

	if (__atomic_load_n(&vcpu->tid, __ATOMIC_RELAXED) != tid) {
		/* A new thread runs this vCPU: make sure a kick can interrupt it. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, KVM_ENGINE_KICK_SIGNAL);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		__atomic_store_n(&vcpu->tid, tid, __ATOMIC_SEQ_CST);
	}

	if (ioctl(vcpu->fd, KVM_RUN, 0) == 0)
		return 0;
	int e = errno;
	if (e == EINTR)
		__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	return -e;
}

static void kvm_kick(struct blvm_engine_vcpu *vcpu)
{
	int saved = errno; /* callable from a signal handler */

	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	int tid = __atomic_load_n(&vcpu->tid, __ATOMIC_SEQ_CST);
	if (tid > 0)
		syscall(SYS_tgkill, (int)getpid(), tid, KVM_ENGINE_KICK_SIGNAL);
	errno = saved;
}

static int64_t kvm_instructions(struct blvm_engine_vcpu *vcpu)
{
	(void)vcpu;
	return -1; /* KVM exposes no retired-instruction count to the monitor */
}

/* ---- in-kernel interrupt controllers and PIT (api.rst 4.24, 4.25, 4.71) ---------- */

/*
 * KVM_CREATE_IRQCHIP, then the GSI routing QEMU's pc machine installs (kvm_pc_setup_irq_routing(),
 * api.rst 4.52 KVM_SET_GSI_ROUTING): GSI 0 (the in-kernel PIT) to the 8259's IR0 and the I/O
 * APIC's pin 2, as the MADT's ISA override says; GSI 1 and 3-7 to the master, 8-15 to the slave,
 * 1 and 3-23 to the I/O APIC pin of the same number; GSI 2 (the cascade) nowhere. KVM's default
 * table sends GSI 0 to pin 0 instead, where a PC kernel does not look for the timer. The emu
 * engine routes the same way (src/emu/irqchip.c).
 */
static int kvm_create_irqchip(struct blvm_engine_vm *vm)
{
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	enum { N = 7 + 8 + 23 };
	struct kvm_irq_routing *rt = calloc(1, sizeof *rt + N * sizeof rt->entries[0]);
	if (!rt)
		return -ENOMEM;
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < 16; gsi++) {
		if (gsi == 2)
			continue;
		struct kvm_irq_routing_entry *e = &rt->entries[n++];
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		e->u.irqchip.pin = gsi & 7;
	}
	for (unsigned gsi = 0; gsi < 24; gsi++) {
		if (gsi == 2)
			continue;
		struct kvm_irq_routing_entry *e = &rt->entries[n++];
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e->u.irqchip.pin = gsi == 0 ? 2 : gsi;
	}
	rt->nr = n;
	int r = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, rt) < 0 ? -errno : 0;
	free(rt);
	return r;
}

static int kvm_create_pit2(struct blvm_engine_vm *vm, const struct kvm_pit_config *cfg)
{
	struct kvm_pit_config c = *cfg;
	return ioctl(vm->vm_fd, KVM_CREATE_PIT2, &c) < 0 ? -errno : 0;
}

static int kvm_irq_line(struct blvm_engine_vm *vm, const struct kvm_irq_level *irq)
{
	struct kvm_irq_level l = *irq;
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

/* The one fact KVM gives about a bus lock: the vCPU's RIP at exit 33, as a linear address (KVM's
 * kvm_get_linear_rip: CS.base + RIP outside 64-bit mode, truncated to 32 bits), the locking
 * instruction's own or the next one's by the host's vendor (above). A bus lock flagged on another
 * exit (an MMIO or I/O exit it coincided with) says nothing about where the instruction is: none. */
static int kvm_bus_lock_info(struct blvm_engine_vcpu *vcpu, struct blvm_bus_lock_info *info)
{
	if (vcpu->run->exit_reason != KVM_EXIT_X86_BUS_LOCK || vcpu->vm->bus_lock_rip == BUS_LOCK_RIP_UNKNOWN)
		return -ENOENT;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	bool long64 = (sregs.efer & (1u << 10)) && sregs.cs.l; /* EFER.LMA and CS.L: 64-bit mode */
	*info = (struct blvm_bus_lock_info){
		.rip = long64 ? regs.rip : (uint32_t)(sregs.cs.base + regs.rip),
		.rip_next = vcpu->vm->bus_lock_rip == BUS_LOCK_RIP_NEXT,
	};
	return 0;
}

const struct blvm_engine_ops blvm_engine_kvm = {
	.name = "kvm",
	.vm_create = kvm_vm_create,
	.vm_destroy = kvm_vm_destroy,
	.check_extension = kvm_check_extension,
	.enable_cap = kvm_enable_cap,
	.set_user_memory_region = kvm_set_user_memory_region,
	.vcpu_create = kvm_vcpu_create,
	.vcpu_destroy = kvm_vcpu_destroy,
	.get_regs = kvm_get_regs,
	.set_regs = kvm_set_regs,
	.get_sregs = kvm_get_sregs,
	.set_sregs = kvm_set_sregs,
	.get_msrs = kvm_get_msrs,
	.set_guest_debug = kvm_set_guest_debug,
	.get_mp_state = kvm_get_mp_state,
	.set_mp_state = kvm_set_mp_state,
	.get_vcpu_events = kvm_get_vcpu_events,
	.get_lapic = kvm_get_lapic,
	.get_stats_fd = kvm_get_stats_fd,
	.run = kvm_run,
	.kick = kvm_kick,
	.instructions = kvm_instructions,
	/* KVM_EXIT_X86_BUS_LOCK carries no payload (api.rst): only the RIP it leaves. The capability
	 * (KVM_CAP_X86_BUS_LOCK_EXIT), exit 33 and the flag pass through check_extension, enable_cap
	 * and run unchanged. */
	.bus_lock_info = kvm_bus_lock_info,
	.create_irqchip = kvm_create_irqchip,
	.create_pit2 = kvm_create_pit2,
	.irq_line = kvm_irq_line,
	.get_irqchip = kvm_get_irqchip,
	.get_pit2 = kvm_get_pit2,
};
