/* SPDX-License-Identifier: MIT */
/*
 * Reading a Linux guest from outside (issue 13): which task is running on a vCPU, from the guest
 * kernel's own type information, without the guest's cooperation.
 *
 * The facts come from the kernel's BTF (the .BTF section a CONFIG_DEBUG_INFO_BTF kernel carries,
 * Documentation/bpf/btf.rst): the offsets of comm, pid and tgid in struct task_struct, and the
 * per-CPU offset of the current task pointer (the per-CPU variable `current_task` up to Linux 6.1,
 * `pcpu_hot.current_task` from 6.2; pahole records per-CPU variables in the DATASEC
 * ".data..percpu", whose offsets are the variables' addresses because x86-64 links that section at
 * 0: arch/x86/kernel/vmlinux.lds.S, PERCPU_VADDR). No kernel's offsets are built in.
 *
 * The guest's memory is read through the guest's own page tables by a walker of the monitor's
 * (KVM_TRANSLATE knows only the current CR3): with page-table isolation a user-mode CR3 maps
 * neither per-CPU data nor task_struct, so the walk starts at the kernel PGD — CR3 with the PCID
 * bits 11:0 and the PTI user bit 12 cleared (arch/x86/entry/calling.h, PTI_USER_PGTABLE_MASK; the
 * kernel PGD is the even page of an 8 KiB pair). The per-CPU base is IA32_GS_BASE in kernel mode
 * and IA32_KERNEL_GS_BASE in user mode (SWAPGS, SDM Vol. 2B). Every pointer, length and table
 * entry read from the guest is checked; a hostile guest gets "unknown", never a crash.
 *
 * Depends on nothing of the monitor or the engines: memory comes through a callback.
 */
#ifndef BLVM_INTROSPECT_LINUX_H
#define BLVM_INTROSPECT_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLVM_TASK_COMM_LEN 16 /* include/linux/sched.h TASK_COMM_LEN */

struct blvm_linux_layout {
	uint32_t task_comm;         /* byte offsets in struct task_struct */
	uint32_t task_pid;
	uint32_t task_tgid;
	uint32_t comm_len;          /* sizeof task_struct.comm (16) */
	uint32_t task_size;         /* sizeof(struct task_struct) */
	uint64_t current_task;      /* per-CPU offset of the current task pointer */
	char current_task_how[32];  /* "current_task" or "pcpu_hot.current_task" */
};

/* Fills l from raw BTF (the bytes of a .BTF section). 0, or -1 with the reason in err. */
int blvm_linux_layout_from_btf(const void *btf, size_t len, struct blvm_linux_layout *l, char *err,
			       size_t errlen);
/* The same from an ELF64 kernel image (vmlinux) in memory: its .BTF section. */
int blvm_linux_layout_from_elf(const uint8_t *f, size_t len, struct blvm_linux_layout *l, char *err,
			       size_t errlen);

/* Guest-physical memory: copies len bytes at gpa into buf; 0, or -1 where gpa..gpa+len is not RAM. */
typedef int blvm_phys_read_fn(void *arg, uint64_t gpa, void *buf, size_t len);

/* Translates the linear address lin through 4-level (la57: 5-level) IA-32e paging rooted at cr3
 * (SDM Vol. 3 4.5), supervisor view, ignoring access rights. 0 with *gpa, or -1 (not present, a
 * reserved bit set, or a paging structure outside RAM). */
int blvm_guest_translate(uint64_t cr3, bool la57, uint64_t lin, blvm_phys_read_fn *rd, void *arg,
			 uint64_t *gpa);
/* Reads len bytes at linear address lin (pages translated one by one). 0 or -1. */
int blvm_guest_read(uint64_t cr3, bool la57, uint64_t lin, void *buf, size_t len, blvm_phys_read_fn *rd,
		    void *arg);
/* The kernel PGD for any CR3 the guest runs with (PCID and the PTI user bit cleared). */
uint64_t blvm_linux_kernel_cr3(uint64_t cr3);

struct blvm_linux_task {
	uint64_t addr;                      /* guest-virtual address of its task_struct */
	int32_t pid, tgid;                  /* pid: the thread id, as Linux prints it */
	char comm[BLVM_TASK_COMM_LEN + 1];  /* NUL-terminated (the guest's bytes, not escaped) */
};

/* The task running on a vCPU whose registers are: cr3, user (CPL 3), gs_base (IA32_GS_BASE) and
 * kernel_gs_base (IA32_KERNEL_GS_BASE). 0 with *t, or -1 with the reason in err. */
int blvm_linux_current(const struct blvm_linux_layout *l, uint64_t cr3, bool la57, bool user,
		       uint64_t gs_base, uint64_t kernel_gs_base, blvm_phys_read_fn *rd, void *arg,
		       struct blvm_linux_task *t, char *err, size_t errlen);

#endif
