/* SPDX-License-Identifier: MIT */
/*
 * The VM and its one exit loop. Whatever the engine, a vCPU thread calls run() and acts on
 * struct kvm_run exactly as a KVM-based monitor does (Documentation/virt/kvm/api.rst, "KVM_RUN").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "vmm/vmm.h"
#include "boot/boot.h"
#include "common/escape.h"
#include "common/json.h"

#define MEM_MIN (2ull << 20)   /* the boot information below 1 MiB and a kernel at 1 MiB */
#define MEM_MAX (64ull << 30)
#define RFLAGS_IF 0x200ull

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

const struct blvm_engine_ops *blvm_engine_find(const char *name)
{
	if (strcmp(name, "emu") == 0)
		return &blvm_engine_emu;
	if (strcmp(name, "kvm") == 0)
		return &blvm_engine_kvm;
	return NULL;
}

const char *blvm_vm_engine_name(const struct blvm_vm *vm)
{
	return vm->ops->name;
}

/*
 * QEMU's -m syntax (util/cutils.c, do_strtosz with default suffix M): a decimal number, a fraction
 * allowed ("1.5G", truncated to whole bytes as QEMU does, never with B), then one suffix of B, K, M,
 * G, T, P, E in either case; none means MiB. blvm also takes the IEC and SI spellings after the
 * letter ("1GiB", "1GB", "1Gi"), all binary. Not taken: QEMU's hexadecimal "0x...", a number
 * starting with its fraction (".5G"), and leading blanks or signs.
 */
int blvm_parse_size(const char *s, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	unsigned long long frac = 0, den = 1; /* the fraction frac / den */
	if (*end == '.') {
		end++;
		for (; *end >= '0' && *end <= '9'; end++)
			if (den < 1000000000000000000ull) { /* digits past the 18th cannot change whole bytes */
				frac = frac * 10 + (unsigned)(*end - '0');
				den *= 10;
			}
	}
	unsigned shift = 20; /* a plain number is MiB, as QEMU's -m */
	char letter = *end;
	switch (letter) {
	case 'b': case 'B': shift = 0; end++; break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case 'p': case 'P': shift = 50; end++; break;
	case 'e': case 'E': shift = 60; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (letter != '\0' && shift) { /* K..E: "KiB", "KB", "Ki" as well */
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
	}
	if (*end != '\0' || (shift == 0 && frac))
		return -1;
	unsigned __int128 bytes = ((unsigned __int128)v << shift) + (((unsigned __int128)frac << shift) / den);
	if (bytes > UINT64_MAX)
		return -1;
	*out = (uint64_t)bytes;
	return 0;
}

#define FOUR_GIB 0x100000000ull

void *blvm_gpa(struct blvm_vm *vm, uint64_t gpa, uint64_t len)
{
	uint64_t low = vm->ram_below_4g, high = vm->cfg.mem_size - low;
	if (fits(gpa, len, low))
		return vm->ram + gpa;
	if (gpa >= FOUR_GIB && fits(gpa - FOUR_GIB, len, high))
		return vm->ram + low + (gpa - FOUR_GIB);
	return NULL;
}

/*
 * KVM_CAP_X86_BUS_LOCK_EXIT (api.rst 7.24): the mode bitmap says whether this engine on this host
 * can exit on bus locks; EXIT is enabled on the VM before any vCPU exists, because the setting
 * reaches only vCPUs created afterwards. Like QEMU, refuse to start when a policy needs detection
 * the host does not have, rather than run the guest unpoliced.
 */
/* The policy's reports name functions through the kernel's symbol table. */
int blvm_vm_symbol(const struct blvm_vm *vm, uint64_t rip, char *buf, size_t len)
{
	if (vm->syms_map) {
		if (!atomic_load(&vm->syms_slide_known)) {
			if (len)
				buf[0] = '\0'; /* the offset is not known yet: no name rather than a wrong one */
			return 0;
		}
		uint64_t slide = atomic_load(&vm->syms_slide);
		if (rip < slide) { /* below the relocated kernel (a user address): not one of its functions */
			if (len)
				buf[0] = '\0';
			return 0;
		}
		rip -= slide;
	}
	return blvm_symtab_format(&vm->syms, rip, buf, len);
}

static int symbolize(void *arg, uint64_t rip, char *buf, size_t len)
{
	return blvm_vm_symbol(arg, rip, buf, len);
}

static int enable_bus_lock_detection(struct blvm_vm *vm, char *err, size_t errlen)
{
	const struct blvm_policy_config *pc = &vm->cfg.bus_lock;
	if (pc->mode == BLVM_POLICY_OFF)
		return 0;
	char spec[64];
	blvm_policy_format(pc, spec, sizeof spec);
	int modes = vm->ops->check_extension(vm->ev, KVM_CAP_X86_BUS_LOCK_EXIT);
	if (modes < 0 || !(modes & KVM_BUS_LOCK_DETECTION_EXIT)) {
		snprintf(err, errlen, "--bus-lock=%s: the %s engine cannot detect bus locks on this host "
			 "(KVM_CAP_X86_BUS_LOCK_EXIT reports %d); use --engine=emu", spec, vm->ops->name, modes);
		return -1;
	}
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_BUS_LOCK_EXIT, .args = { KVM_BUS_LOCK_DETECTION_EXIT } };
	int r = vm->ops->enable_cap(vm->ev, &cap);
	if (r < 0) {
		snprintf(err, errlen, "--bus-lock=%s: enabling bus-lock detection failed: %s", spec, strerror(-r));
		return -1;
	}
	if (pc->mode == BLVM_POLICY_CONTAIN) {
		/* Beyond KVM: the emu engine executes split and UC locked operations without a host bus lock. */
		struct kvm_enable_cap contain = { .cap = BLVM_CAP_BUS_LOCK_CONTAIN, .args = { 1 } };
		if (vm->ops->check_extension(vm->ev, BLVM_CAP_BUS_LOCK_CONTAIN) <= 0 ||
		    vm->ops->enable_cap(vm->ev, &contain) < 0) {
			snprintf(err, errlen, "--bus-lock=contain needs the emu engine (the %s engine runs locked "
				 "operations on the real CPU); use --engine=emu", vm->ops->name);
			return -1;
		}
	}
	vm->policy = blvm_policy_create(pc, vm->cfg.nr_vcpus, NULL, NULL);
	if (!vm->policy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	blvm_policy_set_symbolizer(vm->policy, symbolize, vm);
	blvm_policy_set_task_source(vm->policy, blvm_tasks_source, vm);
	return 0;
}

int blvm_vm_create(const struct blvm_vm_config *cfg, struct blvm_vm **out, char *err, size_t errlen)
{
	*out = NULL;
	if (cfg->mem_size < MEM_MIN || cfg->mem_size > MEM_MAX) {
		snprintf(err, errlen, "--mem must be between 2M and 64G (got %" PRIu64 " bytes)", cfg->mem_size);
		return -1;
	}
	if (cfg->mem_size & 0xfff) {
		snprintf(err, errlen, "--mem must be a multiple of 4K");
		return -1;
	}
	if (!cfg->kernel_path) {
		snprintf(err, errlen, "no kernel given");
		return -1;
	}
	const struct blvm_engine_ops *ops = blvm_engine_find(cfg->engine);
	if (!ops) {
		snprintf(err, errlen, "unknown engine '%s' (choose emu, kvm or auto)", cfg->engine);
		return -1;
	}

	struct blvm_vm *vm = calloc(1, sizeof *vm);
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	vm->cfg = *cfg;
	vm->ops = ops;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->report_lock, NULL);
	pthread_mutex_init(&vm->end_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);

	/* Guest RAM: reserved, not committed, so a large --mem costs only what the guest touches. */
	vm->ram = mmap(NULL, cfg->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (vm->ram == MAP_FAILED) {
		vm->ram = NULL;
		snprintf(err, errlen, "cannot allocate %" PRIu64 " MiB of guest RAM: %s", cfg->mem_size >> 20,
			 strerror(errno));
		goto fail;
	}
	/* Transparent huge pages where the host allows them (as QEMU madvises its RAM blocks,
	 * ram_block_add()): one fault per 2 MiB instead of per 4 KiB as the guest first touches its
	 * memory. On this host's default (THP "madvise") a Linux boot spent 7 % of its time in those
	 * faults. Advice only: a host without THP ignores it (EINVAL is not an error). */
	(void)madvise(vm->ram, cfg->mem_size, MADV_HUGEPAGE);
	vm->ram_below_4g = blvm_ram_below_4g(cfg->mem_size);
	/* The devices, and the ACPI tables in the BIOS area, before the kernel loader, which points
	 * the kernel at vm->acpi_rsdp. */
	if (blvm_devices_create(vm, err, errlen) != 0)
		goto fail;
	if (blvm_boot_load(vm, err, errlen) != 0)
		goto fail;

	struct blvm_engine_config ecfg = { .nr_vcpus = cfg->nr_vcpus, .cpu_vendor_amd = cfg->cpu_vendor_amd,
					  .translate = cfg->translate };
	char eerr[200] = "";
	int r = ops->vm_create(&ecfg, &vm->ev, eerr, sizeof eerr);
	if (r < 0) {
		vm->ev = NULL;
		snprintf(err, errlen, "%s engine: %s", ops->name, eerr[0] ? eerr : strerror(-r));
		goto fail;
	}
	if (enable_bus_lock_detection(vm, err, errlen) != 0)
		goto fail;
	/* The memory map's RAM (src/boot/memmap.c): slot 0 below the 32-bit hole, slot 1 for the rest at
	 * 4 GiB, both from the one host mapping. */
	struct kvm_userspace_memory_region regions[2] = {
		{ .slot = 0, .guest_phys_addr = 0, .memory_size = vm->ram_below_4g, .userspace_addr = (uintptr_t)vm->ram },
		{ .slot = 1, .guest_phys_addr = FOUR_GIB, .memory_size = cfg->mem_size - vm->ram_below_4g,
		  .userspace_addr = (uintptr_t)vm->ram + vm->ram_below_4g },
	};
	for (unsigned k = 0; k < 2; k++) {
		if (!regions[k].memory_size)
			continue;
		r = ops->set_user_memory_region(vm->ev, &regions[k]);
		if (r < 0) {
			snprintf(err, errlen, "%s engine: cannot map guest RAM at 0x%llx: %s", ops->name,
				 (unsigned long long)regions[k].guest_phys_addr, strerror(-r));
			goto fail;
		}
	}
	/* The PC's interrupt controllers and PIT live in the engine, as KVM keeps them in the kernel;
	 * both must exist before the vCPUs (api.rst 4.24 KVM_CREATE_IRQCHIP, 4.71 KVM_CREATE_PIT2). */
	if (!ops->create_irqchip || !ops->create_pit2) {
		snprintf(err, errlen, "%s engine: no in-engine interrupt controller (KVM_CREATE_IRQCHIP) or PIT "
			 "(KVM_CREATE_PIT2)", ops->name);
		goto fail;
	}
	r = ops->create_irqchip(vm->ev);
	if (r < 0) {
		snprintf(err, errlen, "%s engine: cannot create the interrupt controllers (KVM_CREATE_IRQCHIP): %s",
			 ops->name, strerror(-r));
		goto fail;
	}
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	r = ops->create_pit2(vm->ev, &pit);
	if (r < 0) {
		snprintf(err, errlen, "%s engine: cannot create the PIT (KVM_CREATE_PIT2): %s", ops->name,
			 strerror(-r));
		goto fail;
	}
	vm->vcpus = calloc(cfg->nr_vcpus, sizeof *vm->vcpus);
	if (!vm->vcpus) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < cfg->nr_vcpus; i++) {
		struct blvm_vcpu *c = &vm->vcpus[i];
		c->vm = vm;
		c->id = i;
		r = ops->vcpu_create(vm->ev, i, &c->ev, &c->run);
		if (r < 0) {
			c->ev = NULL;
			snprintf(err, errlen, "%s engine: cannot create vCPU %u: %s", ops->name, i, strerror(-r));
			goto fail;
		}
		/* The loader's entry state goes to the vCPUs that run from reset: the BSP. The others
		 * wait for the guest's INIT-SIPI-SIPI (KVM_MP_STATE_UNINITIALIZED, as on hardware). */
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
		if (ops->get_mp_state && (r = ops->get_mp_state(c->ev, &mp)) < 0) {
			snprintf(err, errlen, "%s engine: cannot read vCPU %u's state (KVM_GET_MP_STATE): %s", ops->name,
				 i, strerror(-r));
			goto fail;
		}
		if (mp.mp_state == KVM_MP_STATE_RUNNABLE && blvm_boot_set_entry_state(vm, c, err, errlen) != 0)
			goto fail;
	}
	*out = vm;
	return 0;
fail:
	blvm_vm_destroy(vm);
	return -1;
}

void blvm_vm_destroy(struct blvm_vm *vm)
{
	if (!vm)
		return;
	/* The devices first: a device's thread (the RTC's) may raise an interrupt line until it is
	 * joined, and needs the engine's VM and vCPUs for that. */
	blvm_bus_destroy(&vm->bus);
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
			if (vm->vcpus[i].ev)
				vm->ops->vcpu_destroy(vm->vcpus[i].ev);
		free(vm->vcpus);
	}
	if (vm->ev)
		vm->ops->vm_destroy(vm->ev);
	if (vm->ram)
		munmap(vm->ram, vm->cfg.mem_size);
	blvm_policy_destroy(vm->policy);
	blvm_symtab_free(&vm->syms);
	pthread_mutex_destroy(&vm->report_lock);
	pthread_mutex_destroy(&vm->end_lock);
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

void blvm_irq_line(struct blvm_vm *vm, unsigned gsi, int level)
{
	if (!vm->ev || !vm->ops->irq_line)
		return;
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };
	vm->ops->irq_line(vm->ev, &l);
}

void blvm_vm_end(struct blvm_vm *vm, enum blvm_end_reason reason, int status, uint64_t rip, const char *fmt, ...)
{
	/* end_lock: the result is written whole before blvm_vm_run reads it, also when the caller is
	 * a thread that blvm_vm_run does not join (a signal thread). */
	pthread_mutex_lock(&vm->end_lock);
	bool expected = false;
	if (!atomic_compare_exchange_strong(&vm->ending, &expected, true)) {
		pthread_mutex_unlock(&vm->end_lock);
		return; /* the VM already ended; the first reason stands */
	}
	vm->result.reason = reason;
	vm->result.exit_status = status;
	vm->result.rip = rip;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->result.message, sizeof vm->result.message, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&vm->end_lock);
	/* Paused vCPUs (blvm_vm_pause) wake up to see the end; a pauser stops waiting. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
		if (vm->vcpus[i].ev)
			vm->ops->kick(vm->vcpus[i].ev);
}

/* After run() returns: the last vCPU out wakes a pauser. */
static void leave_guest(struct blvm_vcpu *c)
{
	atomic_store(&c->in_guest, false);
	if (atomic_load(&c->vm->paused)) {
		pthread_mutex_lock(&c->vm->pause_lock);
		pthread_cond_broadcast(&c->vm->pause_cond);
		pthread_mutex_unlock(&c->vm->pause_lock);
	}
}

void blvm_vm_quit(struct blvm_vm *vm)
{
	blvm_vm_end(vm, BLVM_END_QUIT, 0, 0, "quit requested on the control socket; the VM stopped");
}

void blvm_vm_set_throttle_hook(struct blvm_vm *vm, blvm_throttle_fn fn, void *arg)
{
	vm->throttle_fn = fn;
	vm->throttle_arg = arg;
}

/*
 * QMP's stop: no vCPU executes guest code until blvm_vm_resume(). A vCPU thread passes the gate in
 * vcpu_thread() before each run(): it sets in_guest, then looks at paused; the pauser sets paused,
 * then kicks every vCPU (a kick also makes the next run() return at once: engine.h) and waits until
 * no vCPU is in_guest. Both sides use sequentially consistent atomics, so at least one sees the
 * other: either the vCPU parks, or the pauser waits for its run() to return. A vCPU sleeping for a
 * policy (throttle) is not in the guest; it parks when its sleep ends.
 */
void blvm_vm_pause_for(struct blvm_vm *vm, unsigned who)
{
	atomic_fetch_or(&vm->paused, who);
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
		if (vm->vcpus[i].ev)
			vm->ops->kick(vm->vcpus[i].ev);
	pthread_mutex_lock(&vm->pause_lock);
	for (;;) {
		bool busy = false;
		for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
			busy |= atomic_load(&vm->vcpus[i].in_guest);
		if (!busy || atomic_load(&vm->ending))
			break;
		/* Woken by the last vCPU out of run(); the timeout only bounds a kick lost to a bug. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
	}
	pthread_mutex_unlock(&vm->pause_lock);
}

void blvm_vm_resume_for(struct blvm_vm *vm, unsigned who)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_fetch_and(&vm->paused, ~who);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void blvm_vm_pause(struct blvm_vm *vm)
{
	blvm_vm_pause_for(vm, BLVM_PAUSE_USER);
}

void blvm_vm_resume(struct blvm_vm *vm)
{
	blvm_vm_resume_for(vm, BLVM_PAUSE_USER);
}

bool blvm_vm_ended(const struct blvm_vm *vm)
{
	return atomic_load(&vm->ending);
}

bool blvm_vm_paused(const struct blvm_vm *vm)
{
	return atomic_load(&vm->paused) & BLVM_PAUSE_USER;
}

/* The pause gate before run(): false when the VM ended while the vCPU waited. */
static bool enter_guest(struct blvm_vcpu *c)
{
	struct blvm_vm *vm = c->vm;
	for (;;) {
		atomic_store(&c->in_guest, true);
		if (!atomic_load(&vm->paused))
			return !atomic_load(&vm->ending);
		leave_guest(c);
		pthread_mutex_lock(&vm->pause_lock);
		while (atomic_load(&vm->paused) && !atomic_load(&vm->ending))
			pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
		pthread_mutex_unlock(&vm->pause_lock);
		if (atomic_load(&vm->ending))
			return false;
	}
}

/*
 * A live change of the bus-lock policy (QMP set-bus-lock-policy), through the policy module
 * (blvm_policy_set_config: counts and the limiter's slice carried over). What the engine cannot do
 * is refused with one line: detection is a VM capability that reaches only vCPUs created after it
 * is enabled (api.rst 7.24 KVM_CAP_X86_BUS_LOCK_EXIT; the emu engine models the same per-vCPU
 * controls), so it can be neither turned on (the VM started with off) nor off once the vCPUs exist;
 * contain needs the emu engine's own capability.
 */
int blvm_vm_set_bus_lock_policy(struct blvm_vm *vm, const struct blvm_policy_config *cfg, char *err,
				size_t errlen)
{
	char spec[64];
	blvm_policy_format(cfg, spec, sizeof spec);
	if (!vm->policy) {
		snprintf(err, errlen, "bus-lock detection is off in this VM: the %s engine enables it "
			 "(KVM_CAP_X86_BUS_LOCK_EXIT) only before the vCPUs exist; start with --bus-lock=log to "
			 "change the policy while it runs", vm->ops->name);
		return -1;
	}
	if (cfg->mode == BLVM_POLICY_OFF) {
		snprintf(err, errlen, "bus-lock detection cannot be turned off once the vCPUs exist "
			 "(KVM_CAP_X86_BUS_LOCK_EXIT); use log to count without acting");
		return -1;
	}
	struct blvm_policy_config old;
	blvm_policy_get_config(vm->policy, &old);
	bool contain = cfg->mode == BLVM_POLICY_CONTAIN, was = old.mode == BLVM_POLICY_CONTAIN;
	if (contain != was) {
		struct kvm_enable_cap cap = { .cap = BLVM_CAP_BUS_LOCK_CONTAIN, .args = { contain } };
		if (vm->ops->check_extension(vm->ev, BLVM_CAP_BUS_LOCK_CONTAIN) <= 0 ||
		    vm->ops->enable_cap(vm->ev, &cap) < 0) {
			snprintf(err, errlen, "%s needs the emu engine (the %s engine runs locked operations on "
				 "the real CPU)", contain ? "contain" : "leaving contain", vm->ops->name);
			return -1;
		}
	}
	blvm_policy_set_config(vm->policy, cfg);
	return 0;
}

void blvm_vm_signal(struct blvm_vm *vm, int signo)
{
	const char *name = sigabbrev_np(signo);
	blvm_vm_end(vm, BLVM_END_SIGNAL, BLVM_STATUS_SIGNAL_BASE + signo, 0, "SIG%s received; the VM stopped",
		    name ? name : "?");
}

/*
 * The one place where lost console output ends the VM: the guest's bytes could not be written
 * (stdout is /dev/full, closed, or a pipe whose reader left: EPIPE, SIGPIPE being ignored). Going on
 * would lose output silently, so the VM ends with its own status and the record is kept (--stats).
 */
void blvm_console_failed(struct blvm_vm *vm, int err)
{
	pthread_mutex_lock(&vm->end_lock);
	if (!vm->console_errno)
		vm->console_errno = err;
	pthread_mutex_unlock(&vm->end_lock);
	blvm_vm_end(vm, BLVM_END_CONSOLE_ERROR, BLVM_STATUS_CONSOLE_FAILED, 0,
		    "cannot write the guest's console to stdout: %s; ending the VM (output was lost)", strerror(err));
}

/* " <function+0xoff>" for a guest RIP in the fatal messages, "" where the kernel has no name for it. */
static const char *rip_sym(const struct blvm_vm *vm, uint64_t rip, char *buf, size_t len)
{
	char name[96], safe[4 * sizeof name];
	blvm_vm_symbol(vm, rip, name, sizeof name);
	if (name[0])
		snprintf(buf, len, " <%s>", blvm_escape_text(safe, sizeof safe, name));
	else
		buf[0] = '\0';
	return buf;
}

void blvm_vm_end_dead(struct blvm_vm *vm, unsigned id, uint64_t rip)
{
	char sym[400];
	blvm_vm_end(vm, BLVM_END_HALT, BLVM_STATUS_VM_FAILED, rip,
		    "vCPU %u halted with interrupts disabled at rip 0x%" PRIx64 "%s (nothing can wake it%s); ending the VM",
		    id, rip, rip_sym(vm, rip, sym, sizeof sym),
		    vm->cfg.nr_vcpus > 1 ? ", and every other vCPU is halted or waits for INIT/SIPI" : "");
}

uint64_t blvm_vcpu_rip(struct blvm_vcpu *c)
{
	struct kvm_regs regs;
	return c && c->vm->ops->get_regs(c->ev, &regs) == 0 ? regs.rip : 0;
}

static uint64_t vcpu_rip(struct blvm_vcpu *c)
{
	return blvm_vcpu_rip(c);
}

/* Acts on one exit. Returns false when the VM has ended. */
static void handle_exit(struct blvm_vcpu *c)
{
	struct blvm_vm *vm = c->vm;
	struct kvm_run *run = c->run;
	uint64_t rip;
	char sym[400];

	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		/* api.rst: data at data_offset, `count` items of `size` bytes (string I/O). */
		uint8_t *data = (uint8_t *)run + run->io.data_offset;
		pthread_mutex_lock(&vm->lock);
		for (uint32_t i = 0; i < run->io.count && !atomic_load(&vm->ending); i++)
			blvm_io(vm, c, run->io.port, run->io.direction == KVM_EXIT_IO_OUT, data + i * run->io.size,
				run->io.size);
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	case KVM_EXIT_MMIO:
		pthread_mutex_lock(&vm->lock);
		blvm_mmio(vm, c, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data,
			  run->mmio.len > 8 ? 8 : run->mmio.len);
		pthread_mutex_unlock(&vm->lock);
		return;
	case KVM_EXIT_X86_BUS_LOCK:
		/* A bus lock the engine handled itself: the policy acts on the flag (apply_bus_lock_policy). */
		return;
	case KVM_EXIT_HLT: {
		struct kvm_regs regs;
		int r = vm->ops->get_regs(c->ev, &regs);
		rip = r == 0 ? regs.rip : 0;
		/* With the irqchip the emu engine exits on HLT only when no vCPU can run again
		 * (src/emu/irqchip.c, the dead VM): this one halted last, every other is halted so too or
		 * waits for INIT/SIPI. (KVM never exits here with its irqchip: dead.c finds it instead.) */
		if (r == 0 && !(regs.rflags & RFLAGS_IF))
			blvm_vm_end_dead(vm, c->id, rip);
		else
			blvm_vm_end(vm, BLVM_END_HALT, BLVM_STATUS_VM_FAILED, rip,
				    "vCPU %u halted at rip 0x%" PRIx64 "%s waiting for an interrupt, and blvm has no "
				    "interrupt source; ending the VM", c->id, rip, rip_sym(vm, rip, sym, sizeof sym));
		return;
	}
	case KVM_EXIT_SHUTDOWN: {
		/* The "errors on a triple fault name the instruction and the exception chain":
		 * from the engine where it knows them (emu); KVM's exit carries neither. */
		struct blvm_shutdown_info si;
		rip = vcpu_rip(c);
		if (vm->ops->shutdown_info && vm->ops->shutdown_info(c->ev, &si) == 0)
			blvm_vm_end(vm, BLVM_END_SHUTDOWN, BLVM_STATUS_VM_FAILED, rip,
				    "vCPU %u triple-faulted (shutdown) at rip 0x%" PRIx64 "%s: %s; %s -> shutdown; "
				    "ending the VM", c->id, rip, rip_sym(vm, rip, sym, sizeof sym), si.disasm, si.chain);
		else
			blvm_vm_end(vm, BLVM_END_SHUTDOWN, BLVM_STATUS_VM_FAILED, rip,
				    "vCPU %u triple-faulted (shutdown) at rip 0x%" PRIx64 "%s (the %s engine does not "
				    "report the instruction or the exception chain); ending the VM", c->id, rip,
				    rip_sym(vm, rip, sym, sizeof sym), vm->ops->name);
		return;
	}
	case KVM_EXIT_INTERNAL_ERROR:
		rip = vcpu_rip(c);
		blvm_vm_end(vm, BLVM_END_ENGINE_ERROR, BLVM_STATUS_VM_FAILED, rip,
			    "%s engine internal error (suberror %u) on vCPU %u at rip 0x%" PRIx64 "%s", vm->ops->name,
			    run->internal.suberror, c->id, rip, rip_sym(vm, rip, sym, sizeof sym));
		return;
	case KVM_EXIT_FAIL_ENTRY:
		rip = vcpu_rip(c);
		blvm_vm_end(vm, BLVM_END_ENGINE_ERROR, BLVM_STATUS_VM_FAILED, rip,
			    "VM entry failed on vCPU %u (hardware reason 0x%llx) at rip 0x%" PRIx64 "%s", c->id,
			    (unsigned long long)run->fail_entry.hardware_entry_failure_reason, rip,
			    rip_sym(vm, rip, sym, sizeof sym));
		return;
	default:
		rip = vcpu_rip(c);
		blvm_vm_end(vm, BLVM_END_ENGINE_ERROR, BLVM_STATUS_VM_FAILED, rip,
			    "unexpected exit reason %u from the %s engine on vCPU %u at rip 0x%" PRIx64 "%s",
			    run->exit_reason, vm->ops->name, c->id, rip, rip_sym(vm, rip, sym, sizeof sym));
		return;
	}
}

/* Sleeps up to ns, in slices, returning early when the VM ends: a throttled vCPU must not delay
 * the end of the VM (exit port on another vCPU, --timeout, kill). Returns the time slept. */
static uint64_t throttle_sleep(struct blvm_vm *vm, uint64_t ns)
{
	double t0 = now();
	uint64_t left = ns;
	while (left && !atomic_load(&vm->ending)) {
		uint64_t chunk = left < 20000000 ? left : 20000000;
		struct timespec ts = { (time_t)(chunk / 1000000000), (long)(chunk % 1000000000) };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !atomic_load(&vm->ending))
			;
		left -= chunk;
	}
	return (uint64_t)((now() - t0) * 1e9);
}

static void apply_bus_lock_policy(struct blvm_vcpu *c)
{
	struct blvm_vm *vm = c->vm;
	struct blvm_bus_lock_info info, *ip = NULL;
	if (vm->ops->bus_lock_info && vm->ops->bus_lock_info(c->ev, &info) == 0)
		ip = &info;
	struct blvm_policy_action a = blvm_policy_after_run(vm->policy, c->id, c->run, ip);
	if (!vm->cfg.quiet) {
		char line[200];
		if (blvm_policy_progress_due(vm->policy, line, sizeof line)) {
			pthread_mutex_lock(&vm->report_lock);
			fprintf(stderr, "blvm: %s\n", line);
			pthread_mutex_unlock(&vm->report_lock);
		}
	}
	if (a.what == BLVM_POLICY_SLEEP) {
		/* told at the decision, not when the sleep is over: BUS_LOCK_THROTTLE_START's moment */
		if (vm->throttle_fn)
			vm->throttle_fn(vm->throttle_arg, c->id, true, a.total);
		blvm_policy_slept(vm->policy, c->id, throttle_sleep(vm, a.sleep_ns));
		if (vm->throttle_fn)
			vm->throttle_fn(vm->throttle_arg, c->id, false, a.total);
	} else if (a.what == BLVM_POLICY_STOP) {
		blvm_vm_end(vm, BLVM_END_BUS_LOCK_KILL, BLVM_STATUS_BUS_LOCK_KILL, ip ? ip->rip : vcpu_rip(c), "%s",
			    a.reason);
	}
}

static void *vcpu_thread(void *arg)
{
	struct blvm_vcpu *c = arg;
	struct blvm_vm *vm = c->vm;
	while (enter_guest(c)) {
		int r = vm->ops->run(c->ev);
		leave_guest(c);
		if (r == -EINTR)
			continue; /* kicked: the loop condition says whether the VM ended */
		if (r < 0) {
			uint64_t rip = vcpu_rip(c);
			blvm_vm_end(vm, BLVM_END_ENGINE_ERROR, BLVM_STATUS_VM_FAILED, rip,
				    "%s engine: running vCPU %u failed: %s (rip 0x%" PRIx64 ")", vm->ops->name, c->id,
				    strerror(-r), rip);
			break;
		}
		__atomic_store_n(&c->exits, c->exits + 1, __ATOMIC_RELAXED);
		if (c->run->exit_reason < 64)
			__atomic_store_n(&c->exits_by_reason[c->run->exit_reason],
					 c->exits_by_reason[c->run->exit_reason] + 1, __ATOMIC_RELAXED);
		/* The one policy decision point. KVM sets the flag on exit 33 and on any other exit the bus
		 * lock coincided with, so it is checked whatever the exit reason (api.rst, "flags"). */
		if (c->run->flags & KVM_RUN_X86_BUS_LOCK)
			apply_bus_lock_policy(c);
		handle_exit(c);
	}
	return NULL;
}

struct watchdog {
	struct blvm_vm *vm;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	double t = deadline.tv_sec + deadline.tv_nsec / 1e9 + w->vm->cfg.timeout_s;
	deadline.tv_sec = (time_t)t;
	deadline.tv_nsec = (long)((t - (double)deadline.tv_sec) * 1e9);
	pthread_mutex_lock(&w->lock);
	int r = 0;
	while (!w->done && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&w->cond, &w->lock, &deadline);
	bool fire = !w->done;
	pthread_mutex_unlock(&w->lock);
	if (fire)
		blvm_vm_end(w->vm, BLVM_END_TIMEOUT, BLVM_STATUS_TIMEOUT, 0,
			    "timeout: the guest ran for %g s (--timeout); ending the VM", w->vm->cfg.timeout_s);
	return NULL;
}

int blvm_vm_run(struct blvm_vm *vm, struct blvm_vm_result *res)
{
	struct watchdog w = { .vm = vm, .done = false };
	pthread_t wd;
	bool have_wd = false;
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	if (vm->syms_warning[0])
		fprintf(stderr, "blvm: %s\n", vm->syms_warning);
	pthread_mutex_lock(&vm->end_lock);
	vm->start_time = now();
	pthread_mutex_unlock(&vm->end_lock);
	if (vm->console && blvm_console_start(vm->console) != 0)
		blvm_vm_end(vm, BLVM_END_ENGINE_ERROR, BLVM_STATUS_VM_FAILED, 0, "cannot start the console threads");
	if (vm->cfg.timeout_s > 0)
		have_wd = pthread_create(&wd, NULL, watchdog_thread, &w) == 0;
	/* before the vCPUs run: KVM_GET_STATS_FD takes a vCPU's mutex, which KVM_RUN holds */
	blvm_dead_check_start(vm);

	unsigned started = 0;
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		if (pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]) != 0) {
			blvm_vm_end(vm, BLVM_END_ENGINE_ERROR, BLVM_STATUS_VM_FAILED, 0,
				    "cannot start the thread of vCPU %u: %s", i, strerror(errno));
			break;
		}
		started++;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(vm->vcpus[i].thread, NULL);
	blvm_dead_check_stop(vm);
	pthread_mutex_lock(&vm->end_lock);
	vm->end_time = now();
	pthread_mutex_unlock(&vm->end_lock);
	/* What the guest wrote goes out, however long stdout takes, but never past --timeout: a
	 * stdout that does not drain must not keep a timed VM alive (console.c). */
	if (vm->console)
		blvm_console_stop(vm->console, vm->cfg.timeout_s > 0 ? vm->start_time + vm->cfg.timeout_s : 1e300);

	if (have_wd) {
		pthread_mutex_lock(&w.lock);
		w.done = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(wd, NULL);
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	/* Lost output must not hide behind the guest's own status: the console writer has stopped
	 * (blvm_console_stop above); a guest exit whose bytes were lost becomes a console failure, any
	 * other end keeps its status, and the loss is still reported. */
	pthread_mutex_lock(&vm->end_lock);
	if (vm->console_errno && vm->result.reason == BLVM_END_GUEST_EXIT) {
		/* The vCPUs have stopped: the result is ours to rewrite, as blvm_console_failed words it. */
		vm->result.reason = BLVM_END_CONSOLE_ERROR;
		vm->result.exit_status = BLVM_STATUS_CONSOLE_FAILED;
		snprintf(vm->result.message, sizeof vm->result.message,
			 "cannot write the guest's console to stdout: %s; output was lost", strerror(vm->console_errno));
	}
	vm->result.console_errno = vm->console_errno;
	*res = vm->result;
	pthread_mutex_unlock(&vm->end_lock);
	return res->exit_status;
}

static const char *exit_reason_name(unsigned r)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "unknown", [KVM_EXIT_EXCEPTION] = "exception", [KVM_EXIT_IO] = "io",
		[KVM_EXIT_HYPERCALL] = "hypercall", [KVM_EXIT_DEBUG] = "debug", [KVM_EXIT_HLT] = "hlt",
		[KVM_EXIT_MMIO] = "mmio", [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
		[KVM_EXIT_SHUTDOWN] = "shutdown", [KVM_EXIT_FAIL_ENTRY] = "fail_entry", [KVM_EXIT_INTR] = "intr",
		[KVM_EXIT_INTERNAL_ERROR] = "internal_error", [KVM_EXIT_X86_BUS_LOCK] = "x86_bus_lock",
	};
	return r < sizeof names / sizeof names[0] && names[r] ? names[r] : NULL;
}

static const char *end_reason_name(enum blvm_end_reason r)
{
	switch (r) {
	case BLVM_END_GUEST_EXIT: return "guest_exit";
	case BLVM_END_HALT: return "halt";
	case BLVM_END_SHUTDOWN: return "shutdown";
	case BLVM_END_TIMEOUT: return "timeout";
	case BLVM_END_ENGINE_ERROR: return "engine_error";
	case BLVM_END_BUS_LOCK_KILL: return "bus_lock_kill";
	case BLVM_END_POWEROFF: return "poweroff";
	case BLVM_END_REBOOT: return "reboot";
	case BLVM_END_CONSOLE_QUIT: return "console_quit";
	case BLVM_END_SIGNAL: return "signal";
	case BLVM_END_CONSOLE_ERROR: return "console_error";
	case BLVM_END_QUIT: return "quit";
	}
	return "unknown";
}

/*
 * The one builder of the statistics object: --stats at the end (res given), and while the VM runs
 * (res NULL: "exit_code", "end" and "message" are null, "wall_seconds" is the time so far) for the
 * control socket's query-bus-locks and the --metrics file, which read this object. Live, every
 * counter is read as its owner publishes it: the vCPU threads' through relaxed atomics, the devices'
 * under vm->lock, the policy's under its own lock.
 */
void blvm_vm_write_stats(const struct blvm_vm *vm, const struct blvm_vm_result *res, FILE *f)
{
	struct blvm_vm *mvm = (struct blvm_vm *)vm; /* for its locks only */
	int64_t insns = 0, native = vm->ops->native_instructions ? 0 : -1;
	uint64_t exits_by_reason[64] = { 0 };
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		int64_t n = vm->ops->instructions(vm->vcpus[i].ev);
		insns = (n < 0 || insns < 0) ? -1 : insns + n;
		if (native >= 0) {
			n = vm->ops->native_instructions(vm->vcpus[i].ev);
			native = n < 0 ? -1 : native + n;
		}
		for (unsigned r = 0; r < 64; r++)
			exits_by_reason[r] += __atomic_load_n(&vm->vcpus[i].exits_by_reason[r], __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&mvm->end_lock);
	/* Once the vCPUs have stopped the VM's time stops too: a live reader (the --metrics tick)
	 * that runs between the end and the final statistics must not report more than they do. */
	double wall = res || vm->end_time > 0 ? vm->end_time - vm->start_time
					      : vm->start_time > 0 ? now() - vm->start_time : 0;
	int console_errno = res ? res->console_errno : vm->console_errno;
	pthread_mutex_unlock(&mvm->end_lock);
	pthread_mutex_lock(&mvm->lock);
	uint64_t tx_bytes = vm->com1 ? vm->com1->tx_bytes : 0, tx_dropped = vm->com1 ? vm->com1->tx_dropped : 0;
	uint64_t unclaimed[4] = { vm->port_reads_unclaimed, vm->port_writes_unclaimed, vm->mmio_reads,
				  vm->mmio_writes };
	pthread_mutex_unlock(&mvm->lock);
	fprintf(f, "{\n  \"engine\": ");
	json_write_string(f, vm->ops->name);
	if (res) {
		fprintf(f, ",\n  \"exit_code\": %d,\n  \"end\": ", res->exit_status);
		json_write_string(f, end_reason_name(res->reason));
		fprintf(f, ",\n  \"message\": ");
		json_write_string(f, res->message);
	} else {
		fprintf(f, ",\n  \"exit_code\": null,\n  \"end\": null,\n  \"message\": null");
	}
	fprintf(f, ",\n  \"wall_seconds\": %.6f", wall);
	if (insns >= 0)
		fprintf(f, ",\n  \"instructions\": %" PRId64, insns);
	else
		fprintf(f, ",\n  \"instructions\": null");
	if (native >= 0) /* the emu engine's translator: how many ran as host instructions */
		fprintf(f, ",\n  \"native_instructions\": %" PRId64, native);
	fprintf(f, ",\n  \"mem_bytes\": %" PRIu64 ",\n  \"console_bytes\": %" PRIu64 ",\n  \"console_dropped\": %" PRIu64,
		vm->cfg.mem_size, tx_bytes, tx_dropped);
	fprintf(f, ",\n  \"console_error\": ");
	if (console_errno)
		json_write_string(f, strerror(console_errno));
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"exits\": {");
	const char *sep = "";
	for (unsigned r = 0; r < 64; r++) {
		if (!exits_by_reason[r])
			continue;
		const char *name = exit_reason_name(r);
		if (name)
			fprintf(f, "%s\"%s\": %" PRIu64, sep, name, exits_by_reason[r]);
		else
			fprintf(f, "%s\"reason_%u\": %" PRIu64, sep, r, exits_by_reason[r]);
		sep = ", ";
	}
	fprintf(f, "}");
	if (atomic_load(&vm->dead_check_ran)) /* dead.c: how often every vCPU blocked and their state was judged */
		fprintf(f, ",\n  \"dead_checks\": %" PRIu64, __atomic_load_n(&vm->dead_checks, __ATOMIC_RELAXED));
	fprintf(f, ",\n  \"unclaimed\": {\"port_reads\": %" PRIu64 ", \"port_writes\": %" PRIu64
		", \"mmio_reads\": %" PRIu64 ", \"mmio_writes\": %" PRIu64 "}",
		unclaimed[0], unclaimed[1], unclaimed[2], unclaimed[3]);
	fprintf(f, ",\n");
	blvm_policy_write_json(vm->policy, f, 2);
	fprintf(f, ",\n  \"vcpus\": [");
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		const struct blvm_vcpu *c = &vm->vcpus[i];
		int64_t n = vm->ops->instructions(c->ev);
		struct blvm_policy_vcpu_stats b;
		blvm_policy_get_vcpu_stats(vm->policy, i, &b);
		fprintf(f, "%s\n    {\"id\": %u, \"bus_locks\": %" PRIu64 ", \"split\": %" PRIu64 ", \"uc\": %" PRIu64
			", \"unattributed\": %" PRIu64 ", \"throttled_ns\": %" PRIu64 ", \"exits\": %" PRIu64
			", \"instructions\": ",
			i ? "," : "", c->id, b.bus_locks, b.split, b.uc, b.unattributed, b.throttled_ns,
			__atomic_load_n(&c->exits, __ATOMIC_RELAXED));
		if (n >= 0)
			fprintf(f, "%" PRId64 "}", n);
		else
			fprintf(f, "null}");
	}
	fprintf(f, "\n  ]\n}\n");
}

void blvm_vm_write_report(const struct blvm_vm *vm, FILE *out)
{
	blvm_policy_write_summary(vm->policy, out, vm->end_time - vm->start_time);
}
