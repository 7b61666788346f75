/* SPDX-License-Identifier: MIT */
/*
 * What blvm knows about one bus lock beyond KVM. KVM's KVM_EXIT_X86_BUS_LOCK carries no
 * payload (api.rst); the emu engine, which executes the locked instruction itself, can say
 * exactly which instruction took the bus lock, on which data, and why.
 */
#ifndef BLVM_BUSLOCK_H
#define BLVM_BUSLOCK_H

#include <stdint.h>
#include <linux/kvm.h>

/* Older <linux/kvm.h> headers lack the bus-lock names (docs/REFERENCE.md lists the upstream values). */
#ifndef KVM_CAP_X86_BUS_LOCK_EXIT
#define KVM_CAP_X86_BUS_LOCK_EXIT 193
#endif
#ifndef KVM_BUS_LOCK_DETECTION_OFF
#define KVM_BUS_LOCK_DETECTION_OFF (1 << 0)
#endif
#ifndef KVM_BUS_LOCK_DETECTION_EXIT
#define KVM_BUS_LOCK_DETECTION_EXIT (1 << 1)
#endif
#ifndef KVM_EXIT_X86_BUS_LOCK
#define KVM_EXIT_X86_BUS_LOCK 33
#endif
#ifndef KVM_RUN_X86_BUS_LOCK
#define KVM_RUN_X86_BUS_LOCK (1 << 1)
#endif

enum blvm_bus_lock_reason {
	BLVM_BUS_LOCK_SPLIT = 1, /* the locked access crosses a 64-byte cache line in write-back memory */
	BLVM_BUS_LOCK_UC = 2,    /* the locked access is to uncacheable memory (UC/UC- or MMIO) */
};

struct blvm_bus_lock_info {
	uint64_t rip;       /* linear address of the locking instruction itself (not the next one) */
	uint64_t linear;    /* linear address of the locked data */
	uint64_t phys;      /* guest-physical address of the locked data (of its first byte) */
	uint8_t size;       /* bytes: 1, 2, 4, 8 or 16 */
	uint8_t reason;     /* enum blvm_bus_lock_reason */
	uint8_t implicit;   /* 1 when the CPU itself took the lock (XCHG without LOCK, A/D or descriptor update) */
	char disasm[64];    /* the instruction, disassembled by the engine (Intel syntax) */
	/* 1: rip is the address of the instruction AFTER the locking one, whose own address is not
	 * known; the other fields are then 0 and disasm "". The kvm engine on an Intel host: the
	 * bus-lock VM exit is trap-like (the SDM's "bus lock detection" VM exit, reason 74, comes after
	 * the instruction completed; api.rst KVM_CAP_X86_BUS_LOCK_EXIT: "On Intel hosts, RIP points at the
	 * next instruction, i.e. the exit is trap-like. On AMD hosts, RIP points at the offending
	 * instruction, i.e. the exit is fault-like"). An instruction's length cannot be read backwards
	 * from its end, so the start is never guessed. 0: rip is the locking instruction's own. */
	uint8_t rip_next;
};

#endif
