/* SPDX-License-Identifier: MIT */
/*
 * blvm bus-lock policy module: what a KVM-based monitor does when its guest takes a bus lock.
 *
 * It knows no engine and no monitor. It needs libc, pthreads, <linux/kvm.h> and blvm/buslock.h (the
 * attribution struct, plain C); any monitor with a plain KVM_RUN loop can use it:
 *
 *   struct blvm_policy_config cfg;
 *   if (blvm_policy_parse("ratelimit=1000", &cfg, err, sizeof err) != 0) { fputs(err, stderr); exit(2); }
 *   struct blvm_policy *p = blvm_policy_create(&cfg, nr_vcpus, NULL, NULL);
 *   ...enable KVM_CAP_X86_BUS_LOCK_EXIT with KVM_BUS_LOCK_DETECTION_EXIT unless cfg.mode is OFF...
 *   for (;;) {                                        // one loop per vCPU thread
 *       ioctl(vcpu_fd, KVM_RUN, 0);
 *       struct blvm_policy_action a = blvm_policy_after_run(p, id, run, NULL);
 *       if (a.what == BLVM_POLICY_SLEEP) {
 *           uint64_t t0 = now_ns(); sleep_ns(a.sleep_ns); blvm_policy_slept(p, id, now_ns() - t0);
 *       } else if (a.what == BLVM_POLICY_STOP) {
 *           fprintf(stderr, "%s\n", a.reason); end_the_vm(); break;
 *       }
 *       switch (run->exit_reason) { ... }              // KVM_EXIT_X86_BUS_LOCK needs nothing more
 *   }
 *   blvm_policy_write_summary(p, stderr, wall_seconds);
 *   blvm_policy_destroy(p);
 *
 * The module keys on KVM_RUN_X86_BUS_LOCK in kvm_run->flags, never on the exit reason: KVM sets the
 * flag on KVM_EXIT_X86_BUS_LOCK (33) and also on an exit to user space that the bus lock coincided
 * with (KVM_EXIT_MMIO, KVM_EXIT_IO, ...), which keeps its own reason (api.rst, "flags";
 * vmx_handle_exit()). QEMU checks the flag too; crosvm reacts to exit 33 only and misses the others.
 */
#ifndef BLVM_POLICY_H
#define BLVM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/kvm.h>

#include "blvm/buslock.h" /* the KVM bus-lock names; struct blvm_bus_lock_info */

/* struct blvm_bus_lock_info (buslock.h) is what blvm's emu engine knows about one bus lock beyond KVM
 * (KVM_EXIT_X86_BUS_LOCK has no payload): rip of the locking instruction itself, data addresses, size,
 * reason (BLVM_BUS_LOCK_SPLIT, BLVM_BUS_LOCK_UC; 0 = unknown) and disassembly. The kvm engine knows
 * only the vCPU's RIP at exit 33: the instruction's own on an AMD host, the next one's on an Intel
 * host (rip_next); elsewhere (a bus lock flagged on another exit) nothing. Every function taking it
 * accepts NULL. */

enum blvm_policy_mode {
	BLVM_POLICY_OFF = 0,   /* detection off: nothing counted, nothing done */
	BLVM_POLICY_LOG,       /* count and attribute */
	BLVM_POLICY_RATELIMIT, /* QEMU's limiter: at most `rate` per second per VM, vCPU threads sleep */
	BLVM_POLICY_PAUSE,     /* every bus lock sleeps its vCPU pause_ns */
	BLVM_POLICY_KILL,      /* the VM ends at its kill_at-th bus lock */
	BLVM_POLICY_CONTAIN,   /* executed by the emu engine without host bus locks; accounted as LOG */
};

struct blvm_policy_config {
	enum blvm_policy_mode mode;
	uint64_t rate;       /* RATELIMIT: bus locks per second (>= 1) */
	uint64_t slice_ns;   /* RATELIMIT: accounting slice (QEMU: BUS_LOCK_SLICE_TIME = 1 s). The quota
	                      * per slice is max(rate * slice / 1 s, 1), so with a slice shorter than
	                      * 1/rate the effective rate is one per slice (ratelimit=1/100ms: 10/s). */
	uint64_t pause_ns;   /* PAUSE: sleep per bus lock (>= 1 ms) */
	uint64_t kill_at;    /* KILL: the VM ends at this bus lock (>= 1; `kill` = 1) */
};

#define BLVM_POLICY_CONFIG_DEFAULT { .mode = BLVM_POLICY_OFF }

/* Parses a --bus-lock= value: off | log | ratelimit=N[/SLICE] | pause=MS | kill[=N] | contain.
 * N and MS are decimal integers; SLICE is an integer with a unit ns, us, ms or s (e.g. 100ms).
 * Returns 0, or -1 with one line in err naming the problem and the fix, e.g.
 * "--bus-lock=ratelimit=0: the rate must be at least 1 per second". */
int blvm_policy_parse(const char *spec, struct blvm_policy_config *cfg, char *err, size_t errlen);
/* The canonical spec of cfg ("off", "log", "ratelimit=1000", "ratelimit=10/100ms", "pause=10", "kill=3",
 * "contain"): parse() reads it back to the same cfg. Returns snprintf's result. */
int blvm_policy_format(const struct blvm_policy_config *cfg, char *buf, size_t len);

struct blvm_policy;

/* One policy per VM, shared by its vCPU threads. clock_ns: monotonic nanoseconds (NULL: CLOCK_MONOTONIC),
 * injectable so tests drive time exactly. Returns NULL when out of memory. */
struct blvm_policy *blvm_policy_create(const struct blvm_policy_config *cfg, unsigned nr_vcpus,
				       uint64_t (*clock_ns)(void *), void *clock_arg);
void blvm_policy_destroy(struct blvm_policy *p);
/* The configuration given at create. Not while blvm_policy_set_config() may run in another thread:
 * use blvm_policy_get_config() then. */
const struct blvm_policy_config *blvm_policy_config(const struct blvm_policy *p);
/* A copy of the configuration in force now (OFF's for p == NULL). Thread-safe. */
void blvm_policy_get_config(const struct blvm_policy *p, struct blvm_policy_config *cfg);
/* Changes the policy while vCPUs run (thread-safe): the counts, the attribution and the per-vCPU rows
 * go on; ratelimit to ratelimit keeps the limiter's current slice and count, as QEMU's
 * ratelimit_set_speed() does, so the new rate holds from this slice on; a limiter not running before
 * opens its first slice at the next bus lock; kill=N ends the VM at the N-th bus lock after the change.
 * Turning detection on or off is the monitor's business (KVM_CAP_X86_BUS_LOCK_EXIT reaches only vCPUs
 * created afterwards): the policy only decides what a bus lock it is shown costs. */
void blvm_policy_set_config(struct blvm_policy *p, const struct blvm_policy_config *cfg);

enum blvm_policy_verdict {
	BLVM_POLICY_CONTINUE = 0, /* run the vCPU again */
	BLVM_POLICY_SLEEP,        /* sleep the vCPU thread sleep_ns, then run it again */
	BLVM_POLICY_STOP,         /* end the VM with a distinct status and print reason */
};

struct blvm_policy_action {
	enum blvm_policy_verdict what;
	uint64_t sleep_ns;   /* SLEEP: > 0 */
	const char *reason;  /* STOP: one line, owned by the policy, valid until destroy; else NULL */
	uint64_t total;      /* the VM's bus locks counted with this one (this is the total-th); 0: not counted */
};

/* Call after every successful KVM_RUN of vCPU `vcpu` (0 <= vcpu < nr_vcpus) with its kvm_run and, where
 * the engine knows it, the bus lock's attribution (else NULL). Without KVM_RUN_X86_BUS_LOCK in
 * run->flags this is one branch and returns CONTINUE; with it, the bus lock is counted whatever
 * run->exit_reason is, and the policy decides. Thread-safe. p == NULL acts as OFF.
 * kill: STOP at exactly the kill_at-th bus lock of the VM (counted across vCPUs) and at every later
 * one (a vCPU racing the stop). */
struct blvm_policy_action blvm_policy_after_run(struct blvm_policy *p, unsigned vcpu, const struct kvm_run *run,
						const struct blvm_bus_lock_info *info);
/* The monitor reports how long vCPU `vcpu` actually slept for a SLEEP action: adds to throttled_ns. */
void blvm_policy_slept(struct blvm_policy *p, unsigned vcpu, uint64_t ns);

/* Largest number of distinct instruction addresses attributed; bus locks at further addresses are
 * counted in `rips_overflow` so a hostile guest cannot make the monitor allocate without bound. */
#define BLVM_POLICY_MAX_RIPS 4096
#define BLVM_POLICY_TOP 10

struct blvm_policy_stats {
	uint64_t total;         /* bus locks seen (0 under OFF) */
	uint64_t split, uc;     /* by reason, where the engine said */
	uint64_t unattributed;  /* without a reason: no info (kvm engine) or reason 0 */
	uint64_t throttled_ns;  /* sum of blvm_policy_slept() */
	uint64_t sleeps;        /* SLEEP actions returned */
	uint64_t distinct_rips; /* entries in the attribution table (<= BLVM_POLICY_MAX_RIPS) */
	uint64_t rips_overflow; /* attributed bus locks at instructions the full table could not take */
	uint64_t table_bytes;   /* memory held by the attribution table */
	double elapsed_s;       /* clock time since blvm_policy_create() */
	uint64_t task_unknown;  /* bus locks whose task the task source did not know (all, without one) */
	uint64_t tasks;         /* distinct known tasks counted (<= BLVM_POLICY_MAX_TASKS) */
	uint64_t tasks_overflow; /* bus locks of known tasks the full task table could not take */
};
void blvm_policy_get_stats(const struct blvm_policy *p, struct blvm_policy_stats *st);
/* The same, for one vCPU: the bus locks it took (its exits that carried the flag), by reason, and the
 * sleeps and throttled time of its own thread. All zero for an unknown vCPU or p == NULL. Summed over
 * the vCPUs, each field equals the VM's. */
struct blvm_policy_vcpu_stats {
	uint64_t bus_locks, split, uc, unattributed;
	uint64_t throttled_ns, sleeps;
};
void blvm_policy_get_vcpu_stats(const struct blvm_policy *p, unsigned vcpu, struct blvm_policy_vcpu_stats *st);

/* The guest task that took a bus lock, as the monitor found it from outside (issue 13: for a Linux
 * guest, from the kernel's BTF and memory, src/introspect/linux.h). */
enum blvm_task_mode {
	BLVM_MODE_UNKNOWN = 0,
	BLVM_MODE_USER,   /* CPL 3 at the bus lock */
	BLVM_MODE_KERNEL, /* CPL 0-2 */
};
#define BLVM_POLICY_COMM_LEN 16 /* Linux's TASK_COMM_LEN */
struct blvm_policy_task {
	uint8_t mode;     /* enum blvm_task_mode */
	bool known;       /* comm, pid and tgid are the guest kernel's own */
	int32_t pid;      /* the thread id, as Linux prints it ("comm/pid") */
	int32_t tgid;     /* the process id (getpid() in the guest) */
	char comm[BLVM_POLICY_COMM_LEN + 1]; /* NUL-terminated guest bytes, unescaped */
	uint64_t cr3;     /* the address space: the fallback key when !known (0: unknown too) */
};
/* Fills *t (zeroed by the caller) for the bus lock vCPU `vcpu` has just taken: called once per bus
 * lock, on that vCPU's thread, before the policy takes its lock, only when the flag is set. */
typedef void (*blvm_policy_task_source)(void *arg, unsigned vcpu, struct blvm_policy_task *t);
/* Optional; set it before the first KVM_RUN. Rows of the top list are then keyed by (rip, task) --
 * the task, or CR3 where the task is unknown -- and the tasks list, the JSON ("mode", "task",
 * "tasks") and the summary and kill messages name the guest process. */
void blvm_policy_set_task_source(struct blvm_policy *p, blvm_policy_task_source fn, void *arg);

/* One attributed instruction (in one task). */
struct blvm_policy_insn {
	uint64_t rip;
	uint64_t count;
	uint32_t size, reason;  /* of its first bus lock */
	char disasm[64];
	char symbol[96];        /* "function+0xoffset" from the symbolizer, "" without one or a name */
	struct blvm_policy_task task; /* all zero without a task source */
	uint8_t rip_next;       /* rip is the next instruction's (blvm_bus_lock_info.rip_next) */
};

/* Largest number of distinct known tasks counted; bus locks of further tasks go to tasks_overflow. */
#define BLVM_POLICY_MAX_TASKS 1024
struct blvm_policy_task_stats {
	struct blvm_policy_task task; /* known; mode and cr3 of its first bus lock */
	uint64_t bus_locks, split, uc;
};
/* The known tasks that took bus locks, most first (ties: lower pid first); returns how many (<= max). */
unsigned blvm_policy_tasks(const struct blvm_policy *p, struct blvm_policy_task_stats *out, unsigned max);
/* Names a guest RIP for the reports, e.g. from the kernel's symbol table ("guest_main+0x1a5"): writes
 * a NUL-terminated name into buf (at most len bytes, "" for none). Called with the policy's lock held
 * and from any vCPU thread: it must not call back into the policy. */
typedef int (*blvm_policy_symbolizer)(void *arg, uint64_t rip, char *buf, size_t len);
/* Optional; set it before the first KVM_RUN. The top list, the JSON ("symbol") and the summary and
 * kill messages ("<name+0xoff>" after the rip) then name the functions. */
void blvm_policy_set_symbolizer(struct blvm_policy *p, blvm_policy_symbolizer fn, void *arg);
/* The most frequent instructions, most frequent first (ties: lower rip first); returns how many (<= max). */
unsigned blvm_policy_top(const struct blvm_policy *p, struct blvm_policy_insn *out, unsigned max);

/* Writes three JSON object members, for the monitor to splice into its own object:
 *   "bus_locks": {"policy": "ratelimit=1000", "total": N, "split": N, "uc": N, "unattributed": N,
 *                 "throttled_ns": N, "per_second": X, "distinct_rips": N, "rips_overflow": N,
 *                 "task_unknown": N, "tasks_overflow": N},
 *   "top": [{"rip": "0x401000", "count": N, "insn": "lock add ...", "reason": "split", "size": 4,
 *            "symbol": "worker+0x1c", "mode": "user", "task": {"comm": "splitlock", "pid": 57,
 *            "tgid": 57}, "cr3": "0x1234000"}, ...]
 *   "tasks": [{"comm": "splitlock", "pid": 57, "tgid": 57, "bus_locks": N, "split": N, "uc": N}, ...]
 *   ("symbol": null without a symbolizer or a name; where the engine knows only the address after
 *   the instruction (rip_next: the kvm engine on an Intel host) "rip" is null and the row has
 *   "next_rip" and "next_symbol" (the next instruction's name) instead, "insn" and "size" null;
 *   "mode" null when unknown; "task" null and "cr3"
 *   the address space where the task is unknown, "cr3" null where that is unknown too; a row is one
 *   instruction in one task, so "rip" may repeat; "tasks" holds the known tasks, most first, at most
 *   BLVM_POLICY_TOP entries)
 * Each member starts on a new line after `indent` spaces; they are separated by ",\n"; nothing is
 * written before the first or after the last (no comma, no newline): the caller writes the braces and
 * the separators around them. "top" holds at most BLVM_POLICY_TOP entries; "reason" is "split", "uc"
 * or "unknown". per_second is total over the clock time since create. p == NULL writes OFF's zeros. */
void blvm_policy_write_json(const struct blvm_policy *p, FILE *f, int indent);
/* A short human report (for stderr): total, rate over wall_seconds, time throttled, the top
 * instructions with RIP and disassembly. Writes nothing under OFF. */
void blvm_policy_write_summary(const struct blvm_policy *p, FILE *f, double wall_seconds);
/* At most once per second of the policy's clock, and only if bus locks happened since the last line:
 * true with a one-line progress message in line, e.g. "bus locks: 2000/s over the last 1.0 s, 2000 in all"
 * (no "blvm: " prefix and no newline: the monitor adds its own, as for a STOP reason). */
bool blvm_policy_progress_due(struct blvm_policy *p, char *line, size_t len);

#endif
