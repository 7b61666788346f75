/* SPDX-License-Identifier: MIT */
/*
 * blvm library API: a VM that boots a kernel (PVH ELF, bzImage or Multiboot) on an engine and runs it to the end.
 *
 *   struct blvm_vm_config cfg = BLVM_VM_CONFIG_DEFAULT;
 *   cfg.kernel_path = "guest.elf";
 *   struct blvm_vm *vm;
 *   if (blvm_vm_create(&cfg, &vm, err, sizeof err) != 0) { fputs(err, stderr); ... }
 *   struct blvm_vm_result res;
 *   blvm_vm_run(vm, &res);            // returns when the guest ends the VM
 *   blvm_vm_write_stats(vm, &res, f); // the --stats JSON
 *   blvm_vm_destroy(vm);
 */
#ifndef BLVM_VM_H
#define BLVM_VM_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>

#include "blvm/engine.h"
#include "blvm/policy.h"

/* Process exit statuses of `blvm run` besides the guest's own (value written to port 0xf4, & 0xff). */
enum {
	BLVM_STATUS_USAGE = 2,     /* bad option, bad kernel, engine unavailable: nothing started */
	BLVM_STATUS_TIMEOUT = 124, /* --timeout expired (as timeout(1)) */
	BLVM_STATUS_VM_FAILED = 125, /* halt with interrupts off, triple fault, engine failure */
	BLVM_STATUS_BUS_LOCK_KILL = 123, /* --bus-lock=kill[=N]: the guest took its N-th bus lock */
	BLVM_STATUS_CONSOLE_FAILED = 122, /* the guest's console output could not be written (stdout full,
					   * closed, or its reader gone): output was lost, the VM ended */
	BLVM_STATUS_SIGNAL_BASE = 128, /* + N: signal N (SIGINT, SIGTERM, SIGHUP, SIGQUIT) ended the VM, as
					* a shell reports a command killed by N */
};

struct blvm_vm_config {
	const char *engine;    /* "emu", "kvm" or "auto" */
	uint64_t mem_size;     /* bytes of guest RAM */
	unsigned nr_vcpus;
	int cpu_vendor_amd;    /* --cpu=amd */
	int translate;         /* --translate: 0 off (the interpreter), 1 on, 2 all (blvm_engine_config) */
	const char *kernel_path;
	const char *cmdline;   /* guest command line, may be NULL */
	const char *initrd_path; /* --initrd: PVH module, bzImage ramdisk or Multiboot module; may be NULL */
	double timeout_s;      /* 0: none */
	FILE *console;         /* where COM1 output goes (stdout) */
	int console_in;        /* the fd COM1 receives from (stdin), -1: no input */
	struct blvm_policy_config bus_lock; /* --bus-lock */
	bool quiet;            /* no progress lines on stderr */
	const char *kernel_btf_path; /* --kernel-btf: the guest kernel's BTF (a vmlinux or raw BTF); NULL:
				      * the kernel file's own .BTF, if it is an ELF vmlinux */
	const char *kernel_symbols_path; /* --kernel-symbols: the guest kernel's System.map, for naming
					  * kernel functions under KASLR; NULL: the kernel file's symbols */
};

#define BLVM_VM_CONFIG_DEFAULT \
	{ .engine = "emu", .mem_size = 128ull << 20, .nr_vcpus = 1, .cpu_vendor_amd = 0, .translate = 1, \
	  .kernel_path = NULL, .cmdline = NULL, .initrd_path = NULL, .timeout_s = 0, .console = NULL, .console_in = -1, \
	  .bus_lock = BLVM_POLICY_CONFIG_DEFAULT, .quiet = false, \
	  .kernel_btf_path = NULL, .kernel_symbols_path = NULL }

enum blvm_end_reason {
	BLVM_END_GUEST_EXIT,   /* the guest wrote to the exit port */
	BLVM_END_HALT,         /* HLT with nothing to wake the vCPU */
	BLVM_END_SHUTDOWN,     /* triple fault */
	BLVM_END_TIMEOUT,
	BLVM_END_ENGINE_ERROR, /* internal error, failed entry, unexpected exit, run() failure */
	BLVM_END_BUS_LOCK_KILL, /* the kill policy ended the VM */
	BLVM_END_POWEROFF,     /* ACPI S5 through PM1a_CNT (status 0) */
	BLVM_END_REBOOT,       /* a reset through RESET_REG or the i8042 (status 0, as qemu -no-reboot) */
	BLVM_END_CONSOLE_QUIT, /* Ctrl-A x on the console (status 0, as QEMU's) */
	BLVM_END_SIGNAL,       /* blvm_vm_signal(): a signal asked blvm to stop */
	BLVM_END_CONSOLE_ERROR, /* the console output could not be written (BLVM_STATUS_CONSOLE_FAILED) */
	BLVM_END_QUIT,         /* blvm_vm_quit(): QMP's quit on the control socket (status 0) */
};

struct blvm_vm_result {
	enum blvm_end_reason reason;
	int exit_status;       /* what `blvm run` exits with */
	uint64_t rip;          /* where the ending vCPU stopped */
	char message[256];     /* one line for stderr, empty for a normal guest exit */
	int console_errno;     /* why console output was lost (errno), 0 when nothing was */
};

struct blvm_vm;

/* Creates the VM, its RAM and vCPUs, and loads the kernel. On failure returns -1 with a
 * one-line message (naming the problem and the fix) in err; nothing is left running. */
int blvm_vm_create(const struct blvm_vm_config *cfg, struct blvm_vm **vm, char *err, size_t errlen);
/* Runs until the guest ends the VM; fills res. Returns res->exit_status. */
int blvm_vm_run(struct blvm_vm *vm, struct blvm_vm_result *res);
/* The --stats JSON object (docs/DESIGN.md, "Command line"). res NULL: the object now, while the VM runs
 * (any thread; "exit_code", "end" and "message" null), as the control socket and --metrics read it. */
void blvm_vm_write_stats(const struct blvm_vm *vm, const struct blvm_vm_result *res, FILE *out);
/* QMP's stop and cont: blvm_vm_pause returns once no vCPU executes guest code (a vCPU sleeping for
 * the policy parks when its sleep ends); blvm_vm_resume lets them run again. Any thread. */
void blvm_vm_pause(struct blvm_vm *vm);
void blvm_vm_resume(struct blvm_vm *vm);
bool blvm_vm_paused(const struct blvm_vm *vm);
/* The VM has ended (blvm_vm_run returns or is about to). Any thread. */
bool blvm_vm_ended(const struct blvm_vm *vm);
/* QMP's quit: ends the VM cleanly with status 0 (reason BLVM_END_QUIT). Any thread. */
void blvm_vm_quit(struct blvm_vm *vm);
/* Changes the bus-lock policy while the VM runs (any thread): the counts and the rate limiter's
 * state carry over (blvm_policy_set_config). -1 with one line in err where the engine cannot: the
 * VM started with detection off, turning it off, contain on the kvm engine. */
int blvm_vm_set_bus_lock_policy(struct blvm_vm *vm, const struct blvm_policy_config *cfg, char *err,
				size_t errlen);
/* Told by a vCPU thread around each sleep the bus-lock policy imposes on it (a SLEEP verdict:
 * ratelimit past its quota, pause): asleep true at the decision, before the sleep, with the number
 * of the bus lock that caused it (blvm_policy_action.total); asleep false when the sleep is over.
 * fn must not block (it delays the vCPU). Set it before blvm_vm_run; fn NULL: none. */
typedef void (*blvm_throttle_fn)(void *arg, unsigned vcpu, bool asleep, uint64_t total);
void blvm_vm_set_throttle_hook(struct blvm_vm *vm, blvm_throttle_fn fn, void *arg);
/* The bus-lock report for humans (stderr) when a policy is active; nothing under off. */
void blvm_vm_write_report(const struct blvm_vm *vm, FILE *out);
void blvm_vm_destroy(struct blvm_vm *vm);
/* Ends a created VM, running or not yet run, as signal signo asked: every vCPU stops at its next
 * exit, blvm_vm_run returns with reason BLVM_END_SIGNAL and status 128 + signo. Any thread, but
 * not from a signal handler (it takes no lock, yet kicks vCPU threads): a signal handler only
 * records the signal; a thread calls this (src/cli/main.c waits for signals with sigwait). A VM
 * that has already ended keeps its reason. */
void blvm_vm_signal(struct blvm_vm *vm, int signo);
const char *blvm_vm_engine_name(const struct blvm_vm *vm);

/* Parses a size such as 128M, 1G, 65536K or a plain number of MiB (as QEMU's -m). 0 on success. */
int blvm_parse_size(const char *s, uint64_t *out);

#endif
