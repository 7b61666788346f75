/* SPDX-License-Identifier: MIT */
/*
 * The dead VM on an engine whose HLT blocks inside run(): KVM with the in-kernel irqchip never exits
 * to user space on HLT (kvm_vcpu_halt() sleeps inside KVM_RUN until an event), so a VM in which
 * nothing can wake any vCPU would wait for --timeout, where the emu engine ends it at once
 * (src/emu/irqchip.c, vm_dead(): its run() returns KVM_EXIT_HLT). This file finds the same VM from
 * the monitor, with KVM's own interfaces only, and ends it with the same status and message.
 *
 * How. One thread per VM reads each vCPU's "blocking" statistic (1 while KVM_RUN sleeps in
 * kvm_vcpu_block(): after HLT, or waiting for INIT/SIPI) from its KVM_GET_STATS_FD file with
 * pread(), which needs no vCPU mutex (api.rst "KVM_GET_STATS_FD"; virt/kvm/binary_stats.c for the
 * layout), every CHECK_NS. Only when every vCPU blocks does it look closer: it pauses the vCPUs
 * through the pause gate QMP's stop uses (each is kicked out of KVM_RUN and parks before the next),
 * reads their state with the KVM_GET_* ioctls, applies vm_dead()'s rule, and either ends the VM
 * or lets it run and looks again CHECK_NS later. No busy loop: an idle guest costs a few preads
 * and, while every vCPU sleeps, one pause every CHECK_NS.
 *
 * The rule, vm_dead()'s, over what KVM reports (the emu engine answers the same ioctls from its
 * own state, which tests/sh/kvm-dead.sh uses through the test shim's software KVM):
 *   - every vCPU is HALTED with RFLAGS.IF = 0 (KVM_GET_MP_STATE, which takes a pending INIT or
 *     SIPI first as kvm_apic_accept_events() does, and KVM_GET_REGS), or waits for INIT/SIPI
 *     (UNINITIALIZED, INIT_RECEIVED). A vCPU halted with IF = 1 is never dead: a timer or a device
 *     may wake it;
 *   - no NMI pending and no INIT latched on any (KVM_GET_VCPU_EVENTS: nmi.pending, smi.latched_init);
 *   - no NMI can still come to a halted vCPU outside its NMI handler (nmi.masked) whose LAPIC is
 *     enabled (KVM_GET_SREGS apic_base): from an unmasked I/O APIC redirection entry in NMI mode
 *     whose destination selects it (KVM_GET_IRQCHIP; pin 2 only while the PIT counts), or from
 *     LVT0 in NMI mode, unmasked, while the PIT counts (KVM_GET_LAPIC; KVM's NMI-watchdog wire).
 *     "The PIT counts": counter 0 in a periodic mode (2, 3), or a one-shot count whose end is
 *     still ahead (KVM_GET_PIT2: mode, count, count_load_time on CLOCK_MONOTONIC).
 * The message names the lowest-numbered halted vCPU (KVM does not say which halted last, as the emu
 * engine's exit does; the two agree when vCPU 0 halts last, as a PC OS's power-off path does).
 * Not visible through KVM and so not counted: the PIT's reinjection backlog of ticks (the emu
 * engine's pit.pending; KVM's is internal), which matters only to a one-shot count that already
 * ended while an LVT0 or I/O APIC NMI route exists.
 *
 * Where KVM lacks KVM_CAP_BINARY_STATS_FD (before Linux 5.14) or the "blocking" statistic, one
 * line says so and a dead VM waits for --timeout as before.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm.h"

#define CHECK_NS 100000000ll /* between two looks */
#define RFLAGS_IF 0x200ull
#define APIC_BASE_EXTD (1ull << 10) /* IA32_APIC_BASE (SDM Vol. 3 11.4.4) */
#define APIC_BASE_EN (1ull << 11)
#define APIC_ID 0x20 /* xAPIC register offsets (SDM Vol. 3 Table 11-1) */
#define APIC_LDR 0xd0
#define APIC_DFR 0xe0
#define APIC_LVT0 0x350
#define LVT_MASKED (1u << 16)
#define DM_NMI 4u                      /* delivery mode (bits 10:8) of LVTs and redirection entries */
#define IOAPIC_RE_MASKED (1ull << 16)  /* 82093AA redirection entry */
#define IOAPIC_RE_LOGICAL (1ull << 11)
#define PIT_HZ 1193182ull             /* the 8254's input clock on a PC */

struct blvm_dead_check {
	struct blvm_vm *vm;
	int *fd;             /* per vCPU: its KVM_GET_STATS_FD file */
	uint64_t *blocking;  /* per vCPU: where "blocking" is in it */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stop;
};

static void say(struct blvm_vm *vm, const char *fmt, const char *detail)
{
	pthread_mutex_lock(&vm->report_lock);
	fprintf(stderr, "blvm: the %s engine cannot tell a dead VM (every vCPU halted for good) here: ", vm->ops->name);
	fprintf(stderr, fmt, detail);
	fprintf(stderr, "; such a VM waits for --timeout\n");
	pthread_mutex_unlock(&vm->report_lock);
}

/* The file offset of the one value of statistic `name` of type `type` (KVM_STATS_TYPE_*) in a
 * KVM_GET_STATS_FD file, or -1 when it has none. The layout (api.rst "KVM_GET_STATS_FD",
 * virt/kvm/binary_stats.c): struct kvm_stats_header at 0; num_desc descriptors at desc_offset,
 * each a struct kvm_stats_desc and its name_size-byte NUL-padded name; a statistic's values at
 * data_offset + its descriptor's offset, u64 each. Read once, before the vCPUs run. */
int64_t blvm_kvm_stat_offset(int fd, const char *name, uint32_t type)
{
	struct kvm_stats_header h;
	size_t len = strlen(name);
	if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.name_size <= len || h.name_size > 4096 ||
	    h.num_desc > 65536)
		return -1;
	size_t one = sizeof(struct kvm_stats_desc) + h.name_size, all = one * h.num_desc;
	uint8_t *d = malloc(all ? all : 1);
	int64_t at = -1;
	if (d && pread(fd, d, all, h.desc_offset) == (ssize_t)all) {
		for (uint32_t i = 0; i < h.num_desc && at < 0; i++) {
			struct kvm_stats_desc *e = (struct kvm_stats_desc *)(d + i * one);
			if (memcmp(e->name, name, len + 1) == 0 && (e->flags & KVM_STATS_TYPE_MASK) == type && e->size == 1)
				at = (int64_t)h.data_offset + e->offset;
		}
	}
	free(d);
	return at;
}

static bool all_blocking(const struct blvm_dead_check *d)
{
	for (unsigned i = 0; i < d->vm->cfg.nr_vcpus; i++) {
		uint64_t v = 0;
		if (pread(d->fd[i], &v, sizeof v, (off_t)d->blocking[i]) != (ssize_t)sizeof v || !v)
			return false;
	}
	return true;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Will counter 0 raise IRQ 0 again? Periodic modes always; a one-shot count while its end is ahead;
 * mode 0xff is KVM's "never programmed" (kvm_pit_reset()). Modes 6 and 7 are 2 and 3 (8254). */
static bool pit_counts(const struct kvm_pit_state2 *pit, uint64_t now)
{
	const struct kvm_pit_channel_state *c = &pit->channels[0];
	unsigned mode = c->mode == 0xff ? 0xff : c->mode > 5 ? c->mode - 4u : c->mode;
	if (mode == 0xff)
		return false;
	if (mode == 2 || mode == 3)
		return true;
	uint64_t n = c->count ? c->count : 0x10000;
	uint64_t end = (uint64_t)c->count_load_time + (n * 1000000000ull + PIT_HZ - 1) / PIT_HZ;
	return end > now;
}

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned off)
{
	uint32_t v;
	memcpy(&v, &l->regs[off], 4);
	return v;
}

/* Does an I/O APIC message to `dest` (8 bits; 0xff broadcast) select vCPU `id`'s LAPIC? SDM Vol. 3
 * 11.6.2: physical by APIC ID, logical by LDR in the flat or cluster model (DFR); x2APIC (11.12.10):
 * the x2APIC ID (the vCPU's index, as blvm's CPUID gives it), cluster and member bits of the LDR. */
static bool selects(uint32_t dest, bool logical, unsigned id, uint64_t apic_base, const struct kvm_lapic_state *l)
{
	if (dest == 0xff)
		return true;
	if ((apic_base & (APIC_BASE_EN | APIC_BASE_EXTD)) == (APIC_BASE_EN | APIC_BASE_EXTD)) {
		uint32_t ldr = lapic_reg(l, APIC_LDR);
		return logical ? (dest >> 16) == (ldr >> 16) && (dest & ldr & 0xffff) : dest == id;
	}
	if (!logical)
		return dest == lapic_reg(l, APIC_ID) >> 24;
	uint32_t ldr = lapic_reg(l, APIC_LDR) >> 24;
	if ((lapic_reg(l, APIC_DFR) >> 28) == 0xf)
		return (ldr & dest) != 0;                           /* flat model */
	return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf) != 0; /* cluster model */
}

/* vm_dead()'s rule (above) over the paused vCPUs. True when dead; *who and *rip name the vCPU the
 * message names (the first one halted). A state that cannot be read counts as "not dead". */
static bool judge(struct blvm_vm *vm, unsigned *who, uint64_t *rip)
{
	const struct blvm_engine_ops *ops = vm->ops;
	unsigned n = vm->cfg.nr_vcpus;
	bool found = false;
	struct kvm_pit_state2 pit;
	struct kvm_irqchip io = { .chip_id = KVM_IRQCHIP_IOAPIC };
	uint64_t now = mono_ns();
	bool pit_ok = ops->get_pit2(vm->ev, &pit) == 0 && pit_counts(&pit, now);
	if (ops->get_irqchip(vm->ev, &io) < 0)
		return false;
	for (unsigned i = 0; i < n; i++) {
		struct blvm_engine_vcpu *v = vm->vcpus[i].ev;
		struct kvm_mp_state mp;
		struct kvm_vcpu_events ev;
		if (ops->get_mp_state(v, &mp) < 0 || ops->get_vcpu_events(v, &ev) < 0)
			return false;
		if (ev.nmi.pending || ev.smi.latched_init)
			return false;
		if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED || mp.mp_state == KVM_MP_STATE_INIT_RECEIVED)
			continue; /* takes no NMI, and nothing else wakes it but INIT/SIPI from a running vCPU */
		if (mp.mp_state != KVM_MP_STATE_HALTED)
			return false;
		struct kvm_regs regs;
		struct kvm_sregs sregs;
		struct kvm_lapic_state lapic;
		if (ops->get_regs(v, &regs) < 0 || (regs.rflags & RFLAGS_IF))
			return false;
		if (!found) {
			found = true;
			*who = i;
			*rip = regs.rip;
		}
		if (ev.nmi.masked)
			continue; /* in its NMI handler: no NMI until IRET (SDM Vol. 3 6.7.1) */
		if (ops->get_sregs(v, &sregs) < 0 || ops->get_lapic(v, &lapic) < 0)
			return false;
		if (!(sregs.apic_base & APIC_BASE_EN))
			continue;
		uint32_t lvt0 = lapic_reg(&lapic, APIC_LVT0);
		if (pit_ok && !(lvt0 & LVT_MASKED) && ((lvt0 >> 8) & 7) == DM_NMI)
			return false;
		for (unsigned pin = 0; pin < KVM_IOAPIC_NUM_PINS; pin++) {
			uint64_t re = io.chip.ioapic.redirtbl[pin].bits;
			if ((re & IOAPIC_RE_MASKED) || ((re >> 8) & 7) != DM_NMI || (pin == 2 && !pit_ok))
				continue;
			if (selects((uint32_t)(re >> 56), re & IOAPIC_RE_LOGICAL, i, sregs.apic_base, &lapic))
				return false;
		}
	}
	if (!found) { /* every vCPU waits for INIT/SIPI: name the first (vm_dead() also ends this VM) */
		*who = 0;
		*rip = blvm_vcpu_rip(&vm->vcpus[0]);
	}
	return true;
}

static void *check_thread(void *arg)
{
	struct blvm_dead_check *d = arg;
	struct blvm_vm *vm = d->vm;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&d->lock);
	while (!d->stop && !atomic_load(&vm->ending)) {
		next.tv_nsec += CHECK_NS;
		if (next.tv_nsec >= 1000000000) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000;
		}
		int r = 0;
		while (!d->stop && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&d->cond, &d->lock, &next);
		if (d->stop)
			break;
		pthread_mutex_unlock(&d->lock);
		if (all_blocking(d)) {
			blvm_vm_pause_for(vm, BLVM_PAUSE_DEAD_CHECK);
			unsigned who;
			uint64_t rip;
			if (!atomic_load(&vm->ending)) {
				__atomic_store_n(&vm->dead_checks, vm->dead_checks + 1, __ATOMIC_RELAXED);
				if (judge(vm, &who, &rip))
					blvm_vm_end_dead(vm, who, rip);
			}
			blvm_vm_resume_for(vm, BLVM_PAUSE_DEAD_CHECK);
		}
		clock_gettime(CLOCK_MONOTONIC, &next); /* the next look CHECK_NS after this one ended */
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static void free_check(struct blvm_dead_check *d)
{
	for (unsigned i = 0; d->fd && i < d->vm->cfg.nr_vcpus; i++)
		if (d->fd[i] >= 0)
			close(d->fd[i]);
	free(d->fd);
	free(d->blocking);
	free(d);
}

void blvm_dead_check_start(struct blvm_vm *vm)
{
	const struct blvm_engine_ops *ops = vm->ops;
	if (!ops->get_stats_fd)
		return; /* the engine's run() reports a dead VM itself */
	if (!ops->get_mp_state || !ops->get_vcpu_events || !ops->get_lapic || !ops->get_irqchip || !ops->get_pit2) {
		say(vm, "%s", "it cannot read the vCPUs' interrupt state");
		return;
	}
	int cap = ops->check_extension(vm->ev, KVM_CAP_BINARY_STATS_FD);
	if (cap <= 0) {
		say(vm, "%s", "KVM lacks KVM_CAP_BINARY_STATS_FD (Linux 5.14), the vCPUs' \"blocking\" statistic");
		return;
	}
	struct blvm_dead_check *d = calloc(1, sizeof *d);
	unsigned n = vm->cfg.nr_vcpus;
	if (!d || !(d->fd = malloc(n * sizeof *d->fd)) || !(d->blocking = malloc(n * sizeof *d->blocking))) {
		if (d) {
			free(d->fd);
			free(d);
		}
		say(vm, "%s", "out of memory");
		return;
	}
	d->vm = vm;
	for (unsigned i = 0; i < n; i++)
		d->fd[i] = -1;
	for (unsigned i = 0; i < n; i++) {
		int fd = ops->get_stats_fd(vm->vcpus[i].ev);
		if (fd < 0) {
			say(vm, "KVM_GET_STATS_FD: %s", strerror(-fd));
			free_check(d);
			return;
		}
		d->fd[i] = fd;
		int64_t at = blvm_kvm_stat_offset(fd, "blocking", KVM_STATS_TYPE_INSTANT);
		if (at < 0) {
			say(vm, "%s", "KVM's vCPU statistics have no \"blocking\"");
			free_check(d);
			return;
		}
		d->blocking[i] = (uint64_t)at;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&d->thread, NULL, check_thread, d) != 0) {
		pthread_cond_destroy(&d->cond);
		pthread_mutex_destroy(&d->lock);
		free_check(d);
		say(vm, "%s", "cannot start its thread");
		return;
	}
	vm->dead_check = d;
	atomic_store(&vm->dead_check_ran, true);
}

void blvm_dead_check_stop(struct blvm_vm *vm)
{
	struct blvm_dead_check *d = vm->dead_check;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free_check(d);
	vm->dead_check = NULL;
}
