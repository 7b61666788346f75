/* SPDX-License-Identifier: MIT */
/*
 * The PC interrupt platform of the emu engine, kept "in the kernel" as KVM keeps it
 * (api.rst 4.24 KVM_CREATE_IRQCHIP, 4.25 KVM_IRQ_LINE, 4.71 KVM_CREATE_PIT2): one local APIC per
 * vCPU (lapic.c), the I/O APIC (ioapic.c), the 8259A pair (pic.c), the 8254 PIT with port 0x61
 * (pit.c), and the glue (irqchip.c): routing, the VM's timer thread, the vCPU side (acknowledge,
 * HLT sleep), MMIO/port/MSR dispatch.
 *
 * The models are plain state machines. They never read a clock: every entry point takes `now`, the
 * virtual time in nanoseconds (irqchip.c: CLOCK_MONOTONIC, which is also the guest TSC at 1 GHz),
 * so unit tests drive time by hand (tests/unit/emu_*.c) and results are exact.
 *
 * Concurrency: all state of one struct emu_irqchip is under its one mutex `lock`; the vCPU threads
 * (MMIO, ports, MSRs, acknowledge), the timer thread and KVM_IRQ_LINE callers take it. A model
 * that makes an interrupt pending for a CPU calls chip->kick(arg, cpu) (under the lock): the emu
 * engine sets EMU_KICK_EVENT in that vCPU's kick word and wakes it if it sleeps in HLT. The hot
 * path of the CPU never takes the lock: it sees the event bit in the word it already tests at
 * every block boundary.
 *
 * Time base: the virtual TSC, the TSC crystal and the APIC bus all run at EMU_TSC_HZ (1 GHz,
 * KVM's APIC_BUS_CYCLE_NS = 1), so a LAPIC timer count of 1 with divide-by-1 is one nanosecond and
 * CPUID 0x15 can state both exactly; the PIT counts at EMU_PIT_HZ as on a PC (8254 datasheet).
 */
#ifndef BLVM_EMU_IRQ_H
#define BLVM_EMU_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define EMU_TSC_HZ 1000000000ull
#define EMU_PIT_HZ 1193182ull
#define EMU_IRQ_MAX_CPUS 64

#define EMU_APIC_DEFAULT_BASE 0xfee00000ull
#define EMU_IOAPIC_BASE 0xfec00000ull
#define EMU_IOAPIC_SIZE 0x100ull      /* as KVM's IOAPIC_MEM_LENGTH */
#define EMU_IOAPIC_PINS 24

/* IA32_APIC_BASE (SDM Vol. 3 11.4.4, Figure 11-5) */
#define APIC_BASE_BSP (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10)
#define APIC_BASE_EN (1ull << 11)

/* xAPIC register offsets (SDM Vol. 3 Table 11-1); the x2APIC MSR is 0x800 + (offset >> 4) */
enum {
	APIC_ID = 0x20, APIC_LVR = 0x30, APIC_TPR = 0x80, APIC_APR = 0x90, APIC_PPR = 0xa0,
	APIC_EOI = 0xb0, APIC_RRR = 0xc0, APIC_LDR = 0xd0, APIC_DFR = 0xe0, APIC_SVR = 0xf0,
	APIC_ISR = 0x100, APIC_TMR = 0x180, APIC_IRR = 0x200, APIC_ESR = 0x280, APIC_LVT_CMCI = 0x2f0,
	APIC_ICR = 0x300, APIC_ICR2 = 0x310, APIC_LVTT = 0x320, APIC_LVTTHMR = 0x330, APIC_LVTPC = 0x340,
	APIC_LVT0 = 0x350, APIC_LVT1 = 0x360, APIC_LVTERR = 0x370, APIC_TMICT = 0x380, APIC_TMCCT = 0x390,
	APIC_TDCR = 0x3e0, APIC_SELF_IPI = 0x3f0,
};
#define APIC_VERSION 0x50014u /* version 0x14, max LVT entry 5 (KVM without CMCI) */
#define APIC_LVT_MASKED (1u << 16)
#define APIC_LVT_LEVEL (1u << 15)
#define APIC_LVT_REMOTE_IRR (1u << 14)
#define APIC_LVT_PENDING (1u << 12)   /* delivery status */
#define APIC_TIMER_ONESHOT 0u
#define APIC_TIMER_PERIODIC 1u
#define APIC_TIMER_TSC_DEADLINE 2u
#define APIC_SVR_ENABLE (1u << 8)
/* delivery modes (ICR, LVT, I/O APIC redirection entries) */
enum { APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2, APIC_DM_NMI = 4, APIC_DM_INIT = 5,
       APIC_DM_STARTUP = 6, APIC_DM_EXTINT = 7 };
/* ICR destination shorthands (bits 19:18) */
enum { APIC_DEST_NOSHORT = 0, APIC_DEST_SELF = 1, APIC_DEST_ALLINC = 2, APIC_DEST_ALLBUT = 3 };

/* The LVT entries this model has, in register order from LVTT (offset 0x320 + 0x10 * k) */
enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_N };

/* Multiprocessor state of a vCPU (KVM_MP_STATE_*, same numbers): runnable; an AP as created, which
 * waits for INIT (a SIPI is ignored there, as KVM does); waiting for a SIPI after INIT. */
enum { EMU_MP_RUNNABLE = 0, EMU_MP_UNINITIALIZED = 1, EMU_MP_INIT_RECEIVED = 2 };

struct emu_lapic {
	unsigned cpu;                 /* index of the vCPU (= initial APIC ID) */
	uint64_t base_msr;            /* IA32_APIC_BASE */
	uint32_t id;                  /* xAPIC ID register (ID in bits 31:24) */
	uint32_t tpr, ldr, dfr, svr, esr, esr_pending, icr_lo, icr_hi;
	uint32_t lvt[LVT_N];
	uint32_t irr[8], isr[8], tmr[8]; /* 256 bits each, bit v = vector v */
	/* timer (SDM Vol. 3 11.5.4) */
	uint32_t tmict, tdcr;
	uint64_t timer_start;         /* ns: when the current count was (re)loaded */
	uint64_t timer_period;        /* ns for a full count (one-shot/periodic); 0 = not counting */
	uint64_t timer_deadline;      /* ns of the next expiry, 0 = none (what the timer thread waits for) */
	uint64_t tsc_deadline;        /* IA32_TSC_DEADLINE as written (0 = disarmed) */
	/* events for the CPU */
	unsigned nmi_pending;         /* NMIs accepted and not yet taken (the CPU latches one) */
	bool init_pending;            /* INIT accepted: the vCPU goes to wait-for-SIPI */
	int mp_state;                 /* EMU_MP_* */
	int sipi_vector;              /* last SIPI accepted in wait-for-SIPI, -1 none */
	uint8_t sipi_last;            /* the vector of the last SIPI sent here, in any state (KVM's
				       * apic->sipi_vector): what KVM_SET_MP_STATE SIPI_RECEIVED replays */
	bool stopped;                 /* the vCPU sleeps after HLT with IF = 0 (irqchip.c, "dead VM") */
	uint64_t timer_fires;         /* statistics: expiries that set IRR */
	void *owner;                  /* the emu engine's vCPU (irqchip.c), NULL in unit tests */
};

struct emu_ioapic {
	uint32_t ioregsel, id;
	uint64_t redir[EMU_IOAPIC_PINS];
	uint32_t irr;                 /* pins asserted (level) / latched (edge) */
	uint32_t line;                /* current input level of each pin */
};
#define IOAPIC_RE_MASKED (1ull << 16)
#define IOAPIC_RE_LEVEL (1ull << 15)
#define IOAPIC_RE_REMOTE_IRR (1ull << 14)
#define IOAPIC_RE_POLARITY (1ull << 13)
#define IOAPIC_RE_PENDING (1ull << 12)
#define IOAPIC_RE_LOGICAL (1ull << 11)

/* One 8259A (datasheet: ICW1-4, OCW1-3) */
struct emu_pic1 {
	uint8_t irr, isr, imr, elcr, elcr_mask;
	uint8_t last_irr;             /* input levels seen last (edge detection) */
	uint8_t vector_base;          /* ICW2 & 0xf8 */
	uint8_t priority_add;         /* lowest-priority rotation: IRQ (priority_add) has the highest */
	uint8_t init_state;           /* 0 ready, 1 expect ICW2, 2 ICW3, 3 ICW4 */
	bool init4, auto_eoi, rotate_on_aeoi, special_mask, poll, read_isr, special_fully_nested, single;
};
struct emu_pic { struct emu_pic1 p[2]; bool output; };

/* 8254 (datasheet: modes 0-5, latch, read-back) */
struct emu_pit_channel {
	uint32_t count;               /* initial count, 1..0x10000 */
	uint64_t load_time;           /* ns when counting started */
	uint16_t latched_count;
	uint8_t count_latched;        /* 0, or the RW mode of a pending latched read */
	uint8_t status_latched, status;
	uint8_t read_state, write_state, write_latch;
	uint8_t rw_mode, mode, bcd, gate;
	bool null_count;
};
struct emu_pit {
	struct emu_pit_channel ch[3];
	bool speaker_data_on;
	uint64_t irq_deadline;        /* ns of channel 0's next output edge that raises IRQ 0, 0 = none */
	/* KVM's reinjection (i8254.c, the default): a period that ends while the last IRQ 0 is not yet
	 * acknowledged is counted, and delivered at the acknowledge, so a guest that counts ticks
	 * (jiffies) loses none when its vCPU thread runs late */
	uint32_t pending;
	uint64_t irq_next_k;          /* periodic modes: index of the period end irq_deadline is */
	uint64_t irqs;                /* statistics: IRQ 0 edges sent */
};

struct emu_irqchip {
	pthread_mutex_t lock;
	unsigned ncpus;
	struct emu_lapic *lapic[EMU_IRQ_MAX_CPUS];
	struct emu_ioapic ioapic;
	struct emu_pic pic;
	struct emu_pit pit;
	bool has_pit;
	/* an interrupt or event became pending for cpu (called under lock) */
	void (*kick)(void *arg, unsigned cpu);
	void *kick_arg;
	/* the timer thread (irqchip.c) */
	pthread_t thread;
	pthread_cond_t cond;
	bool thread_running, thread_stop;
};

/* ---------------------------------------------------------------- irqchip.c */
struct emu_irqchip *emu_irqchip_new(void (*kick)(void *, unsigned), void *kick_arg);
void emu_irqchip_free(struct emu_irqchip *chip);
int emu_irqchip_add_cpu(struct emu_irqchip *chip, unsigned cpu);
int emu_irqchip_start_thread(struct emu_irqchip *chip);
uint64_t emu_vtime_ns(void);
/* Fires every timer due at `now`; returns the earliest deadline still ahead (0: none). Lock held. */
uint64_t emu_irqchip_run_timers(struct emu_irqchip *chip, uint64_t now);
/* A timer's deadline changed (lock held): wakes the timer thread. */
void emu_irqchip_timer_changed(struct emu_irqchip *chip);
/* KVM_IRQ_LINE (lock held): GSI 0 to PIC IR0 and I/O APIC pin 2, 1 and 3-15 to the PIC and the
 * I/O APIC, 16-23 to the I/O APIC (QEMU's pc routing; engine.h). */
void emu_irqchip_set_irq(struct emu_irqchip *chip, unsigned gsi, int level);
/* The CPU side (lock held): the vector of the highest-priority maskable interrupt deliverable to
 * cpu (ExtINT from the PIC first, as KVM's kvm_cpu_get_interrupt()), or -1 ... */
int emu_irqchip_peek(struct emu_irqchip *chip, unsigned cpu);
/* ... and its acknowledge (INTA: PIC ISR, or LAPIC IRR -> ISR); returns the vector or -1. */
int emu_irqchip_ack(struct emu_irqchip *chip, unsigned cpu);

/* ---------------------------------------------------------------- lapic.c (lock held) */
void emu_lapic_reset(struct emu_lapic *l, unsigned cpu);
/* INIT (SDM Vol. 3 11.4.7.3): the registers as after power-up except the APIC ID; IA32_APIC_BASE
 * kept; pending NMIs dropped (KVM's kvm_lapic_reset(init_event) and kvm_vcpu_reset()). */
void emu_lapic_init_reset(struct emu_lapic *l);
bool emu_lapic_hw_enabled(const struct emu_lapic *l);
bool emu_lapic_x2apic(const struct emu_lapic *l);
uint32_t emu_lapic_read(struct emu_irqchip *chip, struct emu_lapic *l, unsigned off, uint64_t now);
/* returns 0, or -1 for a write the hardware refuses (x2APIC: #GP) */
int emu_lapic_write(struct emu_irqchip *chip, struct emu_lapic *l, unsigned off, uint32_t v, uint64_t now);
/* x2APIC MSRs 0x800-0x8ff, IA32_APIC_BASE, IA32_TSC_DEADLINE; tsc_now = the vCPU's TSC at now.
 * Return 0, or -1 = #GP. */
int emu_lapic_rdmsr(struct emu_irqchip *chip, struct emu_lapic *l, uint32_t msr, uint64_t *v, uint64_t now);
int emu_lapic_wrmsr(struct emu_irqchip *chip, struct emu_lapic *l, uint32_t msr, uint64_t v, uint64_t now,
		    uint64_t tsc_now);
/* An interrupt message for this LAPIC (from the I/O APIC, an IPI, an LVT). */
void emu_lapic_accept(struct emu_irqchip *chip, struct emu_lapic *l, unsigned dm, unsigned vector, bool level);
/* Does the message's destination select this LAPIC (SDM Vol. 3 11.6.2)? */
bool emu_lapic_match_dest(const struct emu_lapic *l, uint32_t dest, bool logical);
/* An interrupt message to every LAPIC its destination selects (fixed, lowest priority, NMI, INIT,
 * SIPI, ExtINT); `src` is the sender for shorthands, NULL for the I/O APIC. */
void emu_apic_deliver(struct emu_irqchip *chip, struct emu_lapic *src, unsigned shorthand, uint32_t dest,
		      bool logical, unsigned dm, unsigned vector, bool level);
int emu_lapic_highest_irr(const struct emu_lapic *l);
int emu_lapic_highest_isr(const struct emu_lapic *l);
uint32_t emu_lapic_ppr(const struct emu_lapic *l);
/* The vector the LAPIC would present to the CPU now (IRR above PPR), or -1; ack moves it to ISR. */
int emu_lapic_peek(const struct emu_lapic *l);
int emu_lapic_ack(struct emu_lapic *l);
/* The timer expired at `now` (lock held): sets IRR and re-arms a periodic timer. */
void emu_lapic_timer_expired(struct emu_irqchip *chip, struct emu_lapic *l, uint64_t now);
/* Does LINT0 take the PIC's INTR (virtual wire: LVT0 unmasked ExtINT, or the LAPIC disabled)? */
bool emu_lapic_accepts_pic(const struct emu_lapic *l);

/* ---------------------------------------------------------------- ioapic.c (lock held) */
void emu_ioapic_reset(struct emu_ioapic *io);
uint32_t emu_ioapic_read(struct emu_irqchip *chip, unsigned off);
void emu_ioapic_write(struct emu_irqchip *chip, unsigned off, uint32_t v);
void emu_ioapic_set_irq(struct emu_irqchip *chip, unsigned pin, int level);
/* A LAPIC's EOI of a level-triggered vector (broadcast, SDM Vol. 3 11.8.5; 82093AA 3.2.4). */
void emu_ioapic_eoi(struct emu_irqchip *chip, unsigned vector, bool level);

/* ---------------------------------------------------------------- pic.c (lock held) */
void emu_pic_reset(struct emu_pic *pic);
void emu_pic_set_irq(struct emu_irqchip *chip, unsigned irq, int level);
uint8_t emu_pic_ioport_read(struct emu_irqchip *chip, uint16_t port);
void emu_pic_ioport_write(struct emu_irqchip *chip, uint16_t port, uint8_t v);
/* INTR output of the master (recomputed after every change; the chip kicks the BSP on a rise) */
bool emu_pic_intr(const struct emu_pic *pic);
/* INTA cycle: the vector (datasheet: ISR set unless AEOI, IRR cleared for edge inputs) */
int emu_pic_ack(struct emu_irqchip *chip);
void emu_pic_update(struct emu_irqchip *chip);

/* ---------------------------------------------------------------- pit.c (lock held) */
void emu_pit_reset(struct emu_pit *pit, uint64_t now);
uint8_t emu_pit_ioport_read(struct emu_irqchip *chip, uint16_t port, uint64_t now);
void emu_pit_ioport_write(struct emu_irqchip *chip, uint16_t port, uint8_t v, uint64_t now);
/* the counter and OUT of a channel at `now` (datasheet's waveforms) */
uint32_t emu_pit_get_count(const struct emu_pit *pit, unsigned ch, uint64_t now);
int emu_pit_get_out(const struct emu_pit *pit, unsigned ch, uint64_t now);
/* Channel 0's output raised IRQ 0 at its deadline: pulse the line, compute the next one. */
void emu_pit_timer_expired(struct emu_irqchip *chip, uint64_t now);
/* IRQ 0 was acknowledged (8259 INTA of IR0, or the LAPIC's EOI of I/O APIC pin 2's vector): the
 * next pending tick, if any, goes out (KVM's kvm_pit_ack_irq) */
void emu_pit_irq_ack(struct emu_irqchip *chip);
/* Some LAPIC's LVT0 is unmasked in NMI mode: each IRQ 0 tick then also reaches every LVT0 (KVM's
 * NMI-watchdog virtual wire, pit.c irq0_pulse) */
bool emu_pit_lvt0_nmi(const struct emu_irqchip *chip);

#endif
