/* SPDX-License-Identifier: MIT */
/*
 * The interrupt platform's glue (irq.h): KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2 and KVM_IRQ_LINE for
 * the emu engine, the VM's timer thread, GSI routing, and the vCPU side: taking interrupts at
 * instruction boundaries, NMI, INIT/SIPI, HLT.
 *
 * Time: emu_vtime_ns() is CLOCK_MONOTONIC; the guest TSC is the same clock at 1 GHz plus the
 * vCPU's offset (system.c emu_tsc), so TSC, LAPIC timer and PIT agree.
 *
 * Timers without polling: the models keep their next expiry (LAPIC timer_deadline, PIT
 * irq_deadline); one thread per VM sleeps on a condition variable (CLOCK_MONOTONIC) until the
 * earliest, fires what is due under the chip's lock, and sleeps again; a model that changes a
 * deadline signals it. This is KVM's hrtimer callback (apic_timer_fn, pit_timer_fn): it sets the
 * interrupt pending and kicks the vCPU.
 *
 * The vCPU side. A model that makes something pending for a CPU calls chip->kick, which sets
 * EMU_KICK_EVENT in the vCPU's kick word and wakes it (futex) if it sleeps. The run loop already
 * tests that word at every block boundary (engine.c); when EVENT is set it calls emu_irq_event(),
 * which, at that instruction boundary (SDM Vol. 3 6.9 priorities: after a pending exception, which
 * run_vcpu delivers first):
 *   - in an interrupt shadow (STI that set IF, MOV SS / POP SS: SDM 6.8.3) lets one more
 *     instruction run (a one-instruction block) and looks again;
 *   - delivers a pending NMI unless an NMI handler runs (blocked until IRET, SDM 6.7.1);
 *   - with RFLAGS.IF = 1, acknowledges the highest-priority interrupt (ExtINT from the 8259 on the
 *     BSP's LINT0 first, as KVM's kvm_cpu_get_interrupt(), then the LAPIC's IRR above PPR) and
 *     delivers its vector through the IDT (system.c, as an external interrupt: not soft, no error
 *     code); with IF = 0 remembers that one waits (irq_wait_if), and STI/POPF/IRET raise EVENT again.
 * Blocks are at most EMU_BLOCK_MAX instructions, chains at most EMU_CHAIN_MAX blocks, long string
 * instructions stop on a kick: an interrupt is taken within that bound, at no cost per instruction.
 *
 * HLT (exec.c h_hlt), the rule:
 *   - with the irqchip: the vCPU halts inside run(), as KVM's never exits on HLT: it sleeps on its
 *     kick word (futex, no host CPU, outside the exclusive-section protocol) until an interrupt
 *     (IF = 1) or an NMI or INIT is deliverable (it then resumes after the HLT, through the
 *     handler), or kick() (run() returns -EINTR and the next run() halts again);
 *   - beyond KVM, the dead VM (vm_dead below): when a vCPU halts with IF = 0 and every other vCPU is
 *     halted so too or waits for INIT/SIPI, with no NMI/INIT/SIPI on its way and no device or
 *     timer programmed to send one an NMI (nmi_can_come below), that vCPU's run()
 *     returns KVM_EXIT_HLT, and the monitor ends the VM (status 125), as it did for any HLT with
 *     IF = 0 before SMP: waiting forever is not what a user wants from a VM whose guest stopped.
 *     A vCPU halted with IF = 1 is never dead (a timer or device may wake it);
 *   - without the irqchip (KVM_CREATE_IRQCHIP not called): KVM_EXIT_HLT, as KVM.
 *
 * INIT/SIPI (SDM Vol. 3 9.4, 11.6.1; KVM's kvm_apic_accept_events()): every AP is created in
 * mp_state UNINITIALIZED (emu_irq_vcpu_init, as KVM with an in-kernel irqchip) and sleeps in run()
 * taking no host CPU; INIT puts an AP in the INIT state (emu_init_state) and INIT_RECEIVED, where
 * a SIPI starts it in real mode at vector << 12 (emu_enter_real_mode_sipi); a SIPI in any other
 * state is ignored; INIT resets the BSP to the INIT state too, RUNNABLE at F000:FFF0 (the reset
 * vector, as KVM's kvm_apic_accept_events). The monitor gives the loader's entry state only to the
 * vCPUs that are RUNNABLE (the BSP): the guest starts its APs with INIT-SIPI-SIPI.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "emu/emu.h"
#include "emu/irq.h"

uint64_t emu_vtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- the chip */

struct emu_irqchip *emu_irqchip_new(void (*kick)(void *, unsigned), void *kick_arg)
{
	struct emu_irqchip *chip = calloc(1, sizeof *chip);
	if (!chip)
		return NULL;
	pthread_mutex_init(&chip->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&chip->cond, &ca);
	pthread_condattr_destroy(&ca);
	chip->kick = kick;
	chip->kick_arg = kick_arg;
	emu_ioapic_reset(&chip->ioapic);
	emu_pic_reset(&chip->pic);
	emu_pit_reset(&chip->pit, 0);
	return chip;
}

void emu_irqchip_free(struct emu_irqchip *chip)
{
	if (!chip)
		return;
	if (chip->thread_running) {
		pthread_mutex_lock(&chip->lock);
		chip->thread_stop = true;
		pthread_cond_signal(&chip->cond);
		pthread_mutex_unlock(&chip->lock);
		pthread_join(chip->thread, NULL);
	}
	for (unsigned k = 0; k < EMU_IRQ_MAX_CPUS; k++)
		free(chip->lapic[k]);
	pthread_cond_destroy(&chip->cond);
	pthread_mutex_destroy(&chip->lock);
	free(chip);
}

int emu_irqchip_add_cpu(struct emu_irqchip *chip, unsigned cpu)
{
	if (cpu >= EMU_IRQ_MAX_CPUS)
		return -EINVAL;
	pthread_mutex_lock(&chip->lock);
	if (!chip->lapic[cpu])
		chip->lapic[cpu] = malloc(sizeof *chip->lapic[cpu]);
	int r = chip->lapic[cpu] ? 0 : -ENOMEM;
	if (!r) {
		emu_lapic_reset(chip->lapic[cpu], cpu);
		if (cpu >= chip->ncpus)
			chip->ncpus = cpu + 1;
	}
	pthread_mutex_unlock(&chip->lock);
	return r;
}

uint64_t emu_irqchip_run_timers(struct emu_irqchip *chip, uint64_t now)
{
	uint64_t next = 0;
	for (unsigned k = 0; k < chip->ncpus; k++) {
		struct emu_lapic *l = chip->lapic[k];
		if (!l || !l->timer_deadline)
			continue;
		if (l->timer_deadline <= now)
			emu_lapic_timer_expired(chip, l, now);
		if (l->timer_deadline && (!next || l->timer_deadline < next))
			next = l->timer_deadline;
	}
	if (chip->has_pit && chip->pit.irq_deadline) {
		if (chip->pit.irq_deadline <= now)
			emu_pit_timer_expired(chip, now);
		if (chip->pit.irq_deadline && (!next || chip->pit.irq_deadline < next))
			next = chip->pit.irq_deadline;
	}
	return next;
}

void emu_irqchip_timer_changed(struct emu_irqchip *chip)
{
	if (chip->thread_running)
		pthread_cond_signal(&chip->cond);
}

static void *timer_thread(void *arg)
{
	struct emu_irqchip *chip = arg;
	pthread_mutex_lock(&chip->lock);
	while (!chip->thread_stop) {
		uint64_t next = emu_irqchip_run_timers(chip, emu_vtime_ns());
		if (!next) {
			pthread_cond_wait(&chip->cond, &chip->lock);
		} else {
			struct timespec ts = { (time_t)(next / 1000000000ull), (long)(next % 1000000000ull) };
			pthread_cond_timedwait(&chip->cond, &chip->lock, &ts);
		}
	}
	pthread_mutex_unlock(&chip->lock);
	return NULL;
}

int emu_irqchip_start_thread(struct emu_irqchip *chip)
{
	pthread_mutex_lock(&chip->lock);
	chip->thread_running = true;
	pthread_mutex_unlock(&chip->lock);
	if (pthread_create(&chip->thread, NULL, timer_thread, chip) != 0) {
		chip->thread_running = false;
		return -EAGAIN;
	}
	return 0;
}

/* QEMU's pc routing for KVM (kvm_pc_setup_irq_routing(); engine.h KVM_IRQ_LINE) */
void emu_irqchip_set_irq(struct emu_irqchip *chip, unsigned gsi, int level)
{
	if (gsi == 2)
		return; /* the cascade input: not a GSI of any device */
	if (gsi < 16)
		emu_pic_set_irq(chip, gsi, level);
	if (gsi < EMU_IOAPIC_PINS)
		emu_ioapic_set_irq(chip, gsi == 0 ? 2 : gsi, level);
}

static bool extint_pending(struct emu_irqchip *chip, unsigned cpu)
{
	return cpu == 0 && chip->lapic[0] && emu_pic_intr(&chip->pic) && emu_lapic_accepts_pic(chip->lapic[0]);
}

int emu_irqchip_peek(struct emu_irqchip *chip, unsigned cpu)
{
	if (cpu >= chip->ncpus || !chip->lapic[cpu])
		return -1;
	if (extint_pending(chip, cpu))
		return 0; /* the vector is known only at INTA */
	return emu_lapic_peek(chip->lapic[cpu]);
}

int emu_irqchip_ack(struct emu_irqchip *chip, unsigned cpu)
{
	if (cpu >= chip->ncpus || !chip->lapic[cpu])
		return -1;
	if (extint_pending(chip, cpu))
		return emu_pic_ack(chip);
	return emu_lapic_ack(chip->lapic[cpu]);
}

/* ---------------------------------------------------------------- engine ops */

static void futex_wake(_Atomic int *w)
{
	syscall(SYS_futex, (int *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* chip->kick: under the chip's lock; the vCPU's pointer is in the LAPIC (set while it exists) */
static void kick_vcpu(void *arg, unsigned cpu)
{
	struct emu_irqchip *chip = arg;
	struct emu_lapic *l = cpu < chip->ncpus ? chip->lapic[cpu] : NULL;
	struct emu_vcpu *c = l ? l->owner : NULL;
	if (!c)
		return;
	atomic_fetch_or(&c->kick, EMU_KICK_EVENT);
	futex_wake(&c->kick);
}

void emu_wake(struct emu_vcpu *c)
{
	futex_wake(&c->kick);
}

int emu_op_create_irqchip(struct blvm_engine_vm *v)
{
	struct emu_vm *vm = (struct emu_vm *)v;
	if (vm->irqchip)
		return -EEXIST;
	if (atomic_load(&vm->nvcpus))
		return -EINVAL; /* api.rst: before any vCPU */
	struct emu_irqchip *chip = emu_irqchip_new(kick_vcpu, NULL);
	if (!chip)
		return -ENOMEM;
	chip->kick_arg = chip;
	int r = emu_irqchip_start_thread(chip);
	if (r < 0) {
		emu_irqchip_free(chip);
		return r;
	}
	vm->irqchip = chip;
	return 0;
}

int emu_op_create_pit2(struct blvm_engine_vm *v, const struct kvm_pit_config *cfg)
{
	struct emu_vm *vm = (struct emu_vm *)v;
	if (cfg && (cfg->flags & ~(uint32_t)KVM_PIT_SPEAKER_DUMMY))
		return -EINVAL;
	if (!vm->irqchip)
		return -ENOENT; /* the PIT needs the irqchip it interrupts */
	struct emu_irqchip *chip = vm->irqchip;
	pthread_mutex_lock(&chip->lock);
	int r = chip->has_pit ? -EEXIST : 0;
	if (!r) {
		emu_pit_reset(&chip->pit, emu_vtime_ns());
		chip->has_pit = true;
	}
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int emu_op_irq_line(struct blvm_engine_vm *v, const struct kvm_irq_level *irq)
{
	struct emu_vm *vm = (struct emu_vm *)v;
	struct emu_irqchip *chip = vm->irqchip;
	if (!chip)
		return -ENXIO;
	if (irq->irq >= EMU_IOAPIC_PINS)
		return -EINVAL;
	pthread_mutex_lock(&chip->lock);
	emu_irqchip_set_irq(chip, irq->irq, irq->level != 0);
	pthread_mutex_unlock(&chip->lock);
	return 0;
}

int emu_irq_vcpu_init(struct emu_vcpu *c)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip)
		return 0;
	int r = emu_irqchip_add_cpu(chip, c->id);
	if (r < 0)
		return r;
	pthread_mutex_lock(&chip->lock);
	c->lapic = chip->lapic[c->id];
	c->lapic->owner = c;
	c->apic_base = c->lapic->base_msr;
	/* kvm_arch_vcpu_create(): with the in-kernel irqchip every vCPU but the BSP starts
	 * UNINITIALIZED, as an AP waits for INIT and SIPI after RESET (SDM Vol. 3 9.4) */
	if (c->id != 0)
		c->lapic->mp_state = EMU_MP_UNINITIALIZED;
	pthread_mutex_unlock(&chip->lock);
	return 0;
}

void emu_irq_vcpu_fini(struct emu_vcpu *c)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip || !c->lapic)
		return;
	pthread_mutex_lock(&chip->lock);
	c->lapic->owner = NULL;
	pthread_mutex_unlock(&chip->lock);
	c->lapic = NULL;
}

/* ---------------------------------------------------------------- the vCPU side */

/*
 * The dead-VM rule (lock held): nothing inside the VM can wake any vCPU when every vCPU either sleeps
 * after HLT with IF = 0 (then only an NMI, SMI or INIT resumes it: SDM Vol. 2B "HLT") or
 * waits for INIT/SIPI, and no NMI, INIT or SIPI is on its way to any of them. An AP the guest never
 * started is no reason to keep the VM alive; an AP parked with cli; hlt (Linux's stop_this_cpu()
 * before the BSP powers off) is no reason to end it while another vCPU runs. Not counted as a
 * waker: an LVT or I/O APIC entry programmed to send an NMI later (no guest we run does that).
 */
/*
 * Whether an NMI can still come to l's vCPU, halted with IF = 0 (called when no vCPU runs: only a
 * device's or a timer's NMI can; INIT and SIPI need a running sender). The platform's NMI sources:
 *   - an I/O APIC redirection entry in NMI delivery mode, unmasked, whose destination takes in
 *     this LAPIC: pin 2 while the PIT's counter 0 will still raise IRQ 0, any other pin always
 *     (the monitor's devices raise their lines when input comes: IRQ_LINE, any time);
 *   - LVT0 (LINT0) in NMI mode, unmasked, while the PIT will still tick: KVM's NMI-watchdog wire
 *     (pit.c irq0_pulse).
 * Not sources here: LINT1 (on a PC the chipset's NMI line: IOCHK, SERR, an NMI button; nothing
 * drives it in this platform or in KVM's, and Linux leaves it unmasked in NMI mode on the BSP, so
 * counting it would keep every halted Linux VM waiting for --timeout), the thermal, performance
 * and error LVTs (this LAPIC never raises them), the timer LVT (fixed delivery only, SDM Vol. 3
 * Figure 11-8). A vCPU in its NMI handler (NMIs blocked until IRET, SDM Vol. 3 6.7.1) or waiting
 * for INIT/SIPI takes no NMI.
 */
static bool nmi_can_come(const struct emu_irqchip *chip, const struct emu_lapic *l)
{
	const struct emu_vcpu *c = l->owner;
	if (c->nmi_blocked || l->mp_state != EMU_MP_RUNNABLE || !emu_lapic_hw_enabled(l))
		return false;
	bool pit_ticks = chip->has_pit && (chip->pit.irq_deadline || chip->pit.pending);
	uint32_t lvt0 = l->lvt[LVT_LINT0];
	if (pit_ticks && !(lvt0 & APIC_LVT_MASKED) && ((lvt0 >> 8) & 7) == APIC_DM_NMI)
		return true;
	for (unsigned pin = 0; pin < EMU_IOAPIC_PINS; pin++) {
		uint64_t re = chip->ioapic.redir[pin];
		if ((re & IOAPIC_RE_MASKED) || ((re >> 8) & 7) != APIC_DM_NMI || (pin == 2 && !pit_ticks))
			continue;
		uint32_t dest = (uint32_t)(re >> 56);
		if (emu_lapic_match_dest(l, dest == 0xff ? 0xffffffffu : dest, re & IOAPIC_RE_LOGICAL))
			return true;
	}
	return false;
}

static bool vm_dead(struct emu_irqchip *chip)
{
	for (unsigned k = 0; k < chip->ncpus; k++) {
		const struct emu_lapic *o = chip->lapic[k];
		if (!o || !o->owner)
			continue;
		if (o->nmi_pending || o->init_pending || o->sipi_vector >= 0)
			return false;
		if (!o->stopped && o->mp_state == EMU_MP_RUNNABLE)
			return false;
	}
	/* every vCPU halted with IF = 0 or waiting for INIT/SIPI: now only an NMI can wake one */
	for (unsigned k = 0; k < chip->ncpus; k++) {
		const struct emu_lapic *o = chip->lapic[k];
		if (o && o->owner && nmi_can_come(chip, o))
			return false;
	}
	return true;
}

/* Injects vector as an external interrupt or NMI and delivers it through the IDT now. */
static int inject(struct emu_vcpu *c, int vec)
{
	c->halted = false;
	c->exc_vec = vec;
	c->exc_has_err = false;
	c->exc_err = 0;
	c->exc_soft = false;
	c->exc_ext = true;
	emu_rflags(c);
	return emu_deliver_pending(c) ? 1 : 0;
}

static void futex_wait(_Atomic int *w, int val)
{
	syscall(SYS_futex, (int *)w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

/*
 * KVM's kvm_apic_accept_events() (arch/x86/kvm/lapic.c): a pending INIT, then a pending SIPI.
 * INIT puts the vCPU in the architectural INIT state (SDM Vol. 3 Table 10-1; x87/SSE state and
 * MSRs kept; kvm_vcpu_reset(vcpu, true)): an AP then waits for a SIPI in INIT_RECEIVED; the BSP
 * (IA32_APIC_BASE.BSP, KVM's kvm_vcpu_is_bsp) is RUNNABLE at once and runs from the reset vector
 * F000:FFF0 (SDM Vol. 3 10.1.4), a SIPI that came with the INIT dropped (KVM clears the pending
 * SIPI whatever the state; only INIT_RECEIVED takes it). A SIPI in wait-for-SIPI starts the vCPU
 * in real mode at CS = vector << 8, IP = 0 (SDM Vol. 3 10.4.4.1). True when the vCPU's state was
 * replaced. Called with chip->lock held, from the vCPU's thread or while it does not run: at an
 * instruction boundary in run() (emu_irq_event) and by KVM_GET_MP_STATE, which KVM
 * also makes accept them first (kvm_arch_vcpu_ioctl_get_mpstate), so a state read after
 * INIT-SIPI or after KVM_SET_MP_STATE SIPI_RECEIVED is the one the vCPU will run in.
 */
static bool accept_init_sipi(struct emu_vcpu *c)
{
	struct emu_lapic *l = c->lapic;
	if (l->init_pending) {
		l->init_pending = false;
		emu_init_state(c);
		emu_lapic_init_reset(l);
		c->halted = false;
		c->intr_shadow = false;
		c->nmi_blocked = false;
		if (l->base_msr & APIC_BASE_BSP) {
			l->mp_state = EMU_MP_RUNNABLE;
			l->sipi_vector = -1;
			return true;
		}
		l->mp_state = EMU_MP_INIT_RECEIVED;
	}
	if (l->mp_state == EMU_MP_INIT_RECEIVED && l->sipi_vector >= 0) {
		uint8_t vector = (uint8_t)l->sipi_vector;
		l->sipi_vector = -1;
		l->mp_state = EMU_MP_RUNNABLE;
		emu_enter_real_mode_sipi(c, vector);
		return true;
	}
	return false;
}

int emu_irq_event(struct emu_vcpu *c)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip || !c->lapic) {
		atomic_fetch_and(&c->kick, ~EMU_KICK_EVENT);
		return 0;
	}
	if (c->halted) {
		c->intr_shadow = false; /* HLT itself was the instruction after STI */
	} else if (c->intr_shadow) {
		c->intr_shadow = false;
		c->stop = EMU_ST_END; /* one instruction, then this check again (EVENT stays set) */
		return 0;
	}
	struct emu_lapic *l = c->lapic;
	for (;;) {
		atomic_fetch_and(&c->kick, ~EMU_KICK_EVENT);
		pthread_mutex_lock(&chip->lock);
		l->stopped = false;
		if (accept_init_sipi(c)) {
			pthread_mutex_unlock(&chip->lock);
			return 0; /* the trampoline runs from the next block on */
		}
		bool waiting = l->mp_state != EMU_MP_RUNNABLE; /* for INIT, or for a SIPI after it */
		if (!waiting) {
			if (l->nmi_pending && !c->nmi_blocked) {
				l->nmi_pending--;
				pthread_mutex_unlock(&chip->lock);
				c->nmi_blocked = true;
				return inject(c, 2);
			}
			if (c->rflags & EMU_IF) {
				int v = emu_irqchip_ack(chip, c->id);
				if (v >= 0) {
					/* another one still waiting (the 8259 can keep INTR up through an
					 * INTA, and no new edge will announce it): look again at the next
					 * boundary, where IF = 0 in the handler makes it wait for IRET */
					if (emu_irqchip_peek(chip, c->id) >= 0 || l->nmi_pending)
						atomic_fetch_or(&c->kick, EMU_KICK_EVENT);
					pthread_mutex_unlock(&chip->lock);
					return inject(c, v);
				}
			} else if (emu_irqchip_peek(chip, c->id) >= 0) {
				c->irq_wait_if = true;
			}
			if (c->halted && !(c->rflags & EMU_IF)) {
				l->stopped = true;
				if (vm_dead(chip) && !c->vm->halt_in_kernel) {
					/* the last vCPU that could run stopped: KVM_EXIT_HLT, and the
					 * monitor ends the VM (status 125). As KVM's exit on HLT
					 * (kvm_emulate_halt() without an in-kernel LAPIC), the vCPU is
					 * runnable again after it: a next run() goes on after the HLT. */
					l->stopped = false;
					c->halted = false;
					pthread_mutex_unlock(&chip->lock);
					c->run->exit_reason = KVM_EXIT_HLT;
					return 2;
				}
			}
		}
		pthread_mutex_unlock(&chip->lock);
		if (!c->halted && !waiting)
			return 0;
		/* halted (or waiting for SIPI): sleep until the next event or kick, taking no host CPU;
		 * OUT of the exclusive-section protocol meanwhile (mmu.c "SMP") */
		int k = atomic_load(&c->kick);
		if (k & EMU_KICK_EXIT) {
			atomic_fetch_or(&c->kick, EMU_KICK_EVENT); /* halt again at the next run() */
			return -EINTR;
		}
		if (k & EMU_KICK_EVENT)
			continue;
		emu_vcpu_leave(c);
		atomic_store(&c->blocking, true);
		futex_wait(&c->kick, k);
		atomic_store(&c->blocking, false);
		emu_vcpu_enter(c);
	}
}

/* After this vCPU's own LAPIC write (ICR to itself, SELF IPI, EOI, TPR, CR8): an event it made
 * pending for this vCPU is taken at the next instruction boundary, not the block's end, as KVM
 * processes KVM_REQ_EVENT before it enters the guest again after the APIC write. Matters for an
 * INIT to itself, after which not one more instruction runs (SDM Vol. 3 10.4.7.3). */
static void own_event_next(struct emu_vcpu *c)
{
	if (atomic_load_explicit(&c->kick, memory_order_relaxed) & EMU_KICK_EVENT)
		c->stop = EMU_ST_END;
}

static bool lapic_page(const struct emu_lapic *l, uint64_t gpa)
{
	return emu_lapic_hw_enabled(l) && !emu_lapic_x2apic(l) &&
	       (gpa & ~0xfffull) == (l->base_msr & ~0xfffull & ((1ull << 39) - 1));
}

bool emu_irq_mmio(struct emu_vcpu *c, uint64_t gpa, bool write, uint8_t *data, unsigned len)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip || !c->lapic)
		return false;
	bool ioapic = gpa >= EMU_IOAPIC_BASE && gpa < EMU_IOAPIC_BASE + EMU_IOAPIC_SIZE;
	if (!ioapic && !lapic_page(c->lapic, gpa))
		return false;
	uint64_t now = emu_vtime_ns();
	pthread_mutex_lock(&chip->lock);
	if (!ioapic && !lapic_page(c->lapic, gpa)) { /* the base may have moved meanwhile */
		pthread_mutex_unlock(&chip->lock);
		return false;
	}
	unsigned off = ioapic ? (unsigned)(gpa - EMU_IOAPIC_BASE) : (unsigned)(gpa & 0xfff);
	if (write) {
		uint32_t v = 0;
		memcpy(&v, data, len < 4 ? len : 4);
		/* registers are 32 bits, 16-byte aligned: other writes are dropped (KVM does the same) */
		if (ioapic) {
			if (len == 4 && !(off & 3))
				emu_ioapic_write(chip, off, v);
		} else if (len == 4 && !(off & 0xf)) {
			emu_lapic_write(chip, c->lapic, off, v, now);
			own_event_next(c);
		}
	} else {
		uint32_t v = ioapic ? emu_ioapic_read(chip, off & ~3u) : emu_lapic_read(chip, c->lapic, off & ~0xfu, now);
		uint64_t w = (off & 0xf) < 4 ? (uint64_t)v >> (8 * (off & 3)) : 0;
		memcpy(data, &w, len < 8 ? len : 8);
	}
	pthread_mutex_unlock(&chip->lock);
	return true;
}

/* The ports of the engine's devices (KVM's in-kernel ones, i8259.c and i8254.c): the 8259 pair and
 * its ELCR pair; the 8254 and port 0x61. */
static bool pic_port(uint16_t p)
{
	return p == 0x20 || p == 0x21 || p == 0xa0 || p == 0xa1 || p == 0x4d0 || p == 0x4d1;
}

static bool pit_port(const struct emu_irqchip *chip, uint16_t p)
{
	return chip->has_pit && ((p >= 0x40 && p <= 0x43) || p == 0x61);
}

/* the bytes of [port, port + len) that are the engine's, moved to or from their devices */
static void chip_bytes(struct emu_irqchip *chip, uint16_t port, bool write, uint8_t *data, unsigned len,
		       uint64_t now)
{
	for (unsigned k = 0; k < len; k++) {
		uint16_t p = (uint16_t)(port + k); /* the port space wraps at 64 KiB */
		if (pic_port(p)) {
			if (write)
				emu_pic_ioport_write(chip, p, data[k]);
			else
				data[k] = emu_pic_ioport_read(chip, p);
		} else if (pit_port(chip, p)) {
			if (write)
				emu_pit_ioport_write(chip, p, data[k], now);
			else
				data[k] = emu_pit_ioport_read(chip, p, now);
		}
	}
}

/*
 * A port access by IN/OUT. The engine's devices are byte-wide: the ISA bus carries a wider access
 * as one byte cycle per port, each byte reaching the device that decodes its port. So the bytes of
 * [port, port + len) that are the engine's go to its devices, and:
 *   - every byte the engine's: the access ends here (true);
 *   - none: it exits to the monitor (false);
 *   - some (`outl` to 0x61 also covers 0x62..0x64, the i8042's command port): it still exits to
 *     the monitor whole (false), as KVM hands user space any access that no in-kernel device's
 *     range contains (virt/kvm/kvm_main.c, kvm_io_bus_cmp); the monitor's registry
 *     (src/vmm/bus.c) then delivers its own bytes one by one, and finds nothing at the engine's
 *     ports. A write's engine bytes are written here, before the exit; a read's are read when the
 *     IN is re-executed with the monitor's data (c->pio_data, all ones at the engine's ports) and
 *     replace those bytes, so each byte is read once, from its owner.
 */
bool emu_irq_pio(struct emu_vcpu *c, uint16_t port, bool write, uint8_t *data, unsigned len)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip)
		return false;
	unsigned mine = 0;
	for (unsigned k = 0; k < len; k++)
		mine += pic_port((uint16_t)(port + k)) || pit_port(chip, (uint16_t)(port + k));
	if (!mine)
		return false;
	bool all = mine == len;
	if (!all && !write) {
		if (!(c->pio_valid && c->pio_port == port && c->pio_size == len))
			return false; /* the monitor's bytes first */
		data = c->pio_data;
	}
	uint64_t now = emu_vtime_ns();
	pthread_mutex_lock(&chip->lock);
	chip_bytes(chip, port, write, data, len, now);
	pthread_mutex_unlock(&chip->lock);
	return all;
}

void emu_irq_set_cr8(struct emu_vcpu *c, uint64_t v)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	c->cr8 = v;
	if (!chip || !c->lapic)
		return;
	/* MOV to CR8 writes TPR[7:4] and clears TPR[3:0] (SDM Vol. 3 11.8.6.5); a lower TPR may let
	 * an interrupt through (the LAPIC kicks this vCPU, taken after this instruction) */
	pthread_mutex_lock(&chip->lock);
	emu_lapic_write(chip, c->lapic, APIC_TPR, (uint32_t)(v & 0xf) << 4, emu_vtime_ns());
	pthread_mutex_unlock(&chip->lock);
	own_event_next(c);
}

uint64_t emu_irq_get_cr8(struct emu_vcpu *c)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip || !c->lapic)
		return c->cr8;
	pthread_mutex_lock(&chip->lock);
	uint64_t v = (c->lapic->tpr >> 4) & 0xf;
	pthread_mutex_unlock(&chip->lock);
	return v;
}

int emu_irq_rdmsr(struct emu_vcpu *c, uint32_t msr, uint64_t *v)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip || !c->lapic || !(msr == 0x1b || msr == 0x6e0 || (msr >= 0x800 && msr <= 0x8ff)))
		return 1;
	pthread_mutex_lock(&chip->lock);
	int r = emu_lapic_rdmsr(chip, c->lapic, msr, v, emu_vtime_ns());
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int emu_irq_wrmsr(struct emu_vcpu *c, uint32_t msr, uint64_t v)
{
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip || !c->lapic || !(msr == 0x1b || msr == 0x6e0 || (msr >= 0x800 && msr <= 0x8ff)))
		return 1;
	uint64_t now = emu_vtime_ns();
	pthread_mutex_lock(&chip->lock);
	int r = emu_lapic_wrmsr(chip, c->lapic, msr, v, now, now + c->tsc_offset);
	c->apic_base = c->lapic->base_msr;
	pthread_mutex_unlock(&chip->lock);
	own_event_next(c);
	return r;
}

void emu_irqchip_destroy_vm(struct emu_vm *vm)
{
	emu_irqchip_free(vm->irqchip);
	vm->irqchip = NULL;
}

/* KVM_GET_MP_STATE (api.rst 4.38): the AP states, else HALTED after HLT, else RUNNABLE; a pending
 * INIT or SIPI is taken first, as KVM's kvm_arch_vcpu_ioctl_get_mpstate() does. */
int emu_op_get_mp_state(struct blvm_engine_vcpu *v, struct kvm_mp_state *mp)
{
	struct emu_vcpu *c = (struct emu_vcpu *)v;
	struct emu_irqchip *chip = c->vm->irqchip;
	int st = EMU_MP_RUNNABLE;
	if (chip && c->lapic) {
		pthread_mutex_lock(&chip->lock);
		accept_init_sipi(c);
		st = c->lapic->mp_state;
		pthread_mutex_unlock(&chip->lock);
	}
	mp->mp_state = st != EMU_MP_RUNNABLE ? (uint32_t)st : c->halted ? KVM_MP_STATE_HALTED : KVM_MP_STATE_RUNNABLE;
	return 0;
}

/* KVM_SET_MP_STATE (api.rst 4.39): without the irqchip only RUNNABLE (-EINVAL otherwise, as KVM);
 * with it RUNNABLE, UNINITIALIZED, INIT_RECEIVED, HALTED or SIPI_RECEIVED. SIPI_RECEIVED is what
 * KVM's kvm_arch_vcpu_ioctl_set_mpstate() makes of it: INIT_RECEIVED with a SIPI pending whose
 * vector is the last one this LAPIC was sent (0 if none), so the vCPU's next run() starts it in
 * real mode there (emu_irq_event), as kvm_apic_accept_events() does. */
int emu_op_set_mp_state(struct blvm_engine_vcpu *v, const struct kvm_mp_state *mp)
{
	struct emu_vcpu *c = (struct emu_vcpu *)v;
	struct emu_irqchip *chip = c->vm->irqchip;
	uint32_t st = mp->mp_state;
	if (!chip || !c->lapic) {
		if (st != KVM_MP_STATE_RUNNABLE)
			return -EINVAL;
		c->halted = false;
		return 0;
	}
	if (st != KVM_MP_STATE_RUNNABLE && st != KVM_MP_STATE_UNINITIALIZED && st != KVM_MP_STATE_INIT_RECEIVED &&
	    st != KVM_MP_STATE_HALTED && st != KVM_MP_STATE_SIPI_RECEIVED)
		return -EINVAL;
	pthread_mutex_lock(&chip->lock);
	struct emu_lapic *l = c->lapic;
	if (st == KVM_MP_STATE_SIPI_RECEIVED) {
		l->mp_state = EMU_MP_INIT_RECEIVED;
		l->sipi_vector = l->sipi_last;
	} else {
		l->mp_state = st == KVM_MP_STATE_HALTED ? EMU_MP_RUNNABLE : (int)st;
		l->sipi_vector = -1;
	}
	l->stopped = false;
	c->halted = st == KVM_MP_STATE_HALTED;
	pthread_mutex_unlock(&chip->lock);
	atomic_fetch_or(&c->kick, EMU_KICK_EVENT); /* run() looks at the new state first */
	return 0;
}

/* KVM_GET_VCPU_EVENTS (api.rst): what this engine keeps of the vCPU's events. NMI: pending (KVM
 * reports nmi_pending != 0) and masked (an NMI handler runs until IRET, SDM Vol. 3 6.7.1); the STI /
 * MOV SS shadow; the INIT accepted and not yet taken, which KVM reports as smi.latched_init; the
 * last SIPI vector. No event is ever "injected" between two runs here: delivery is immediate. */
int emu_op_get_vcpu_events(struct blvm_engine_vcpu *v, struct kvm_vcpu_events *ev)
{
	struct emu_vcpu *c = (struct emu_vcpu *)v;
	struct emu_irqchip *chip = c->vm->irqchip;
	memset(ev, 0, sizeof *ev);
	ev->flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	ev->interrupt.shadow = c->intr_shadow ? KVM_X86_SHADOW_INT_STI : 0;
	ev->nmi.masked = c->nmi_blocked;
	if (chip && c->lapic) {
		pthread_mutex_lock(&chip->lock);
		ev->nmi.pending = c->lapic->nmi_pending != 0;
		ev->smi.latched_init = c->lapic->init_pending;
		ev->sipi_vector = c->lapic->sipi_last;
		pthread_mutex_unlock(&chip->lock);
	}
	return 0;
}

/* KVM_GET_LAPIC: the xAPIC register page, each 32-bit register at its offset (SDM Vol. 3
 * Table 11-1) as a read of it returns; -ENXIO without the irqchip, as KVM. */
int emu_op_get_lapic(struct blvm_engine_vcpu *v, struct kvm_lapic_state *s)
{
	struct emu_vcpu *c = (struct emu_vcpu *)v;
	struct emu_irqchip *chip = c->vm->irqchip;
	if (!chip || !c->lapic)
		return -ENXIO;
	memset(s, 0, sizeof *s);
	uint64_t now = emu_vtime_ns();
	pthread_mutex_lock(&chip->lock);
	for (unsigned off = 0; off < sizeof s->regs; off += 16) {
		uint32_t r = emu_lapic_read(chip, c->lapic, off, now);
		memcpy(&s->regs[off], &r, 4);
	}
	pthread_mutex_unlock(&chip->lock);
	return 0;
}

static void pic_state(const struct emu_pic1 *p, struct kvm_pic_state *k)
{
	*k = (struct kvm_pic_state){
		.last_irr = p->last_irr, .irr = p->irr, .imr = p->imr, .isr = p->isr,
		.priority_add = p->priority_add, .irq_base = p->vector_base, .read_reg_select = p->read_isr,
		.poll = p->poll, .special_mask = p->special_mask, .init_state = p->init_state,
		.auto_eoi = p->auto_eoi, .rotate_on_auto_eoi = p->rotate_on_aeoi,
		.special_fully_nested_mode = p->special_fully_nested, .init4 = p->init4, .elcr = p->elcr,
		.elcr_mask = p->elcr_mask,
	};
}

/* KVM_GET_IRQCHIP (api.rst): the 8259 pair or the I/O APIC; -ENXIO without the irqchip. */
int emu_op_get_irqchip(struct blvm_engine_vm *v, struct kvm_irqchip *k)
{
	struct emu_irqchip *chip = ((struct emu_vm *)v)->irqchip;
	if (!chip)
		return -ENXIO;
	if (k->chip_id != KVM_IRQCHIP_PIC_MASTER && k->chip_id != KVM_IRQCHIP_PIC_SLAVE && k->chip_id != KVM_IRQCHIP_IOAPIC)
		return -EINVAL;
	memset(&k->chip, 0, sizeof k->chip);
	pthread_mutex_lock(&chip->lock);
	if (k->chip_id == KVM_IRQCHIP_IOAPIC) {
		struct kvm_ioapic_state *io = &k->chip.ioapic;
		io->base_address = EMU_IOAPIC_BASE;
		io->ioregsel = chip->ioapic.ioregsel;
		io->id = chip->ioapic.id;
		io->irr = chip->ioapic.irr;
		for (unsigned pin = 0; pin < EMU_IOAPIC_PINS && pin < KVM_IOAPIC_NUM_PINS; pin++)
			io->redirtbl[pin].bits = chip->ioapic.redir[pin];
	} else {
		pic_state(&chip->pic.p[k->chip_id == KVM_IRQCHIP_PIC_SLAVE], &k->chip.pic);
	}
	pthread_mutex_unlock(&chip->lock);
	return 0;
}

/* KVM_GET_PIT2 (api.rst): the 8254's counters as KVM keeps them (count as loaded, 1..0x10000;
 * count_load_time in CLOCK_MONOTONIC ns, KVM's ktime_get(), which emu_vtime_ns() is too). A
 * counter with no count loaded (after reset, or a control word without its count) reports mode
 * 0xff, kvm_pit_reset()'s "not programmed": it counts nothing. -ENXIO without the PIT, as KVM. */
int emu_op_get_pit2(struct blvm_engine_vm *v, struct kvm_pit_state2 *k)
{
	struct emu_irqchip *chip = ((struct emu_vm *)v)->irqchip;
	if (!chip)
		return -ENXIO;
	memset(k, 0, sizeof *k);
	pthread_mutex_lock(&chip->lock);
	int r = chip->has_pit ? 0 : -ENXIO;
	for (unsigned n = 0; !r && n < 3; n++) {
		const struct emu_pit_channel *c = &chip->pit.ch[n];
		k->channels[n] = (struct kvm_pit_channel_state){
			.count = c->count, .latched_count = c->latched_count, .count_latched = c->count_latched,
			.status_latched = c->status_latched, .status = c->status, .read_state = c->read_state,
			.write_state = c->write_state, .write_latch = c->write_latch, .rw_mode = c->rw_mode,
			.mode = c->null_count ? 0xff : c->mode, .bcd = c->bcd, .gate = c->gate,
			.count_load_time = (int64_t)c->load_time,
		};
	}
	if (!r && chip->pit.speaker_data_on)
		k->flags |= KVM_PIT_FLAGS_SPEAKER_DATA_ON;
	pthread_mutex_unlock(&chip->lock);
	return r;
}
