/* SPDX-License-Identifier: MIT */
/*
 * A tiny monitor for the emu engine's unit tests: drives blvm_engine_emu ONLY through its ops, like
 * the real monitor. Guest code is assembled by the host assembler at build time (top-level asm in
 * .rodata: the bytes are copied into guest RAM, never executed on the host).
 *
 * Guest-physical layout (RAM = 4 MiB at 0; everything else is MMIO):
 *   0x0500 GDT: 0x08 code64, 0x10 data, 0x18 code32, 0x20 data dpl3, 0x28 code64 dpl3, 0x30 TSS (16 B)
 *   0x1000 PML4, 0x2000 PDPT (entry 0 -> PD, entries 1..3: 1 GiB pages), 0x3000 PD (2 MiB pages)
 *   0x4000 IDT (256 x 16 B), 0x8000 TSS, 0x10000 code, 0x80000 stack top, 0x100000.. data
 */
#ifndef EMU_HARNESS_H
#define EMU_HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "blvm/engine.h"

#define T_RAM (4u << 20)
#define T_GDT 0x500
#define T_PML4 0x1000
#define T_PDPT 0x2000
#define T_PD 0x3000
#define T_IDT 0x4000
#define T_TSS 0x8000
#define T_CODE 0x10000
#define T_STACK 0x80000

struct t_vm {
	const struct blvm_engine_ops *ops;
	struct blvm_engine_vm *vm;
	struct blvm_engine_vcpu *cpu;
	struct kvm_run *run;
	uint8_t *ram;
};

static int t_failures;

/* The back end the emu tests run on (blvm_engine_config.translate): BLVM_TRANSLATE=all the binary
 * translator from every block's first run, on its hot blocks only, off the interpreter; unset, blvm's
 * default, on (tests/run.sh runs the emu tests on both; blvm's own --translate default comes from it
 * too). */
static int t_backend = -1; /* >= 0: the next t_init's back end whatever the environment says */
static inline int t_translate(void)
{
	if (t_backend >= 0)
		return t_backend;
	const char *t = getenv("BLVM_TRANSLATE");
	return !t || !*t ? 1 : !strcmp(t, "all") ? 2 : !strcmp(t, "on") ? 1 : 0;
}

#define CHECK(cond, ...)                                                         \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                            \
			fprintf(stderr, "\n");                                   \
			t_failures++;                                            \
		}                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                                         \
	do {                                                                                   \
		unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
		CHECK(a_ == b_, "0x%llx != 0x%llx", a_, b_);                                   \
	} while (0)

static inline void t_init(struct t_vm *t)
{
	char err[256];
	t->ops = &blvm_engine_emu;
	/* Guest RAM between two inaccessible guard pages: an engine access outside the slot's host
	 * memory faults at once instead of reading or corrupting a neighbour. */
	uint8_t *m = mmap(NULL, T_RAM + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m + 4096, T_RAM, PROT_READ | PROT_WRITE) != 0) {
		perror("mmap");
		exit(1);
	}
	t->ram = m + 4096;
	struct blvm_engine_config cfg = { .nr_vcpus = 1, .translate = t_translate() };
	if (t->ops->vm_create(&cfg, &t->vm, err, sizeof err)) {
		fprintf(stderr, "vm_create: %s\n", err);
		exit(1);
	}
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)t->ram };
	if (t->ops->set_user_memory_region(t->vm, &r) || t->ops->vcpu_create(t->vm, 0, &t->cpu, &t->run)) {
		fprintf(stderr, "setup failed\n");
		exit(1);
	}
}

static inline void t_fini(struct t_vm *t)
{
	t->ops->vcpu_destroy(t->cpu);
	t->ops->vm_destroy(t->vm);
	munmap(t->ram - 4096, T_RAM + 2 * 4096);
}

static inline void t_w64(struct t_vm *t, uint64_t gpa, uint64_t v) { memcpy(t->ram + gpa, &v, 8); }
static inline uint64_t t_r64(struct t_vm *t, uint64_t gpa) { uint64_t v; memcpy(&v, t->ram + gpa, 8); return v; }
static inline uint32_t t_r32(struct t_vm *t, uint64_t gpa) { uint32_t v; memcpy(&v, t->ram + gpa, 4); return v; }

static inline void t_load(struct t_vm *t, uint64_t gpa, const uint8_t *start, const uint8_t *end)
{
	memcpy(t->ram + gpa, start, (size_t)(end - start));
}

static inline void t_seg(struct kvm_segment *s, uint16_t sel, int code, int l, int dpl)
{
	memset(s, 0, sizeof *s);
	s->selector = sel;
	s->limit = 0xffffffff;
	s->g = 1;
	s->s = 1;
	s->present = 1;
	s->dpl = (uint8_t)dpl;
	s->type = code ? 0xb : 0x3;
	s->l = (uint8_t)l;
	s->db = !l;
}

/* GDT, identity page tables for the first 4 GiB (PD 2 MiB pages for the first GiB, 1 GiB pages
 * above), IDT (empty), TSS with RSP0 = T_STACK. */
static inline void t_tables(struct t_vm *t)
{
	uint64_t gdt[8] = { 0,
			    0x00af9b000000ffffull,   /* 0x08 code64 */
			    0x00cf93000000ffffull,   /* 0x10 data */
			    0x00cf9b000000ffffull,   /* 0x18 code32 */
			    0x00cff3000000ffffull,   /* 0x20 data dpl3 */
			    0x00affb000000ffffull,   /* 0x28 code64 dpl3 */
			    0, 0 };
	/* 0x30: 64-bit TSS at T_TSS, limit 0x67, type 9 (available) */
	gdt[6] = 0x67 | ((uint64_t)(T_TSS & 0xffffff) << 16) | (0x89ull << 40);
	memcpy(t->ram + T_GDT, gdt, sizeof gdt);
	t_w64(t, T_PML4, T_PDPT | 0x7);
	t_w64(t, T_PDPT, T_PD | 0x7);
	for (uint64_t k = 1; k < 4; k++)
		t_w64(t, T_PDPT + 8 * k, (k << 30) | 0x87);
	for (uint64_t k = 0; k < 512; k++)
		t_w64(t, T_PD + 8 * k, (k << 21) | 0x87);
	t_w64(t, T_TSS + 4, T_STACK);
}

/* 64-bit long mode, CPL 0, paging on, RIP = T_CODE. */
static inline void t_long_mode(struct t_vm *t)
{
	t_tables(t);
	struct kvm_sregs s;
	t->ops->get_sregs(t->cpu, &s);
	t_seg(&s.cs, 0x08, 1, 1, 0);
	t_seg(&s.ds, 0x10, 0, 0, 0);
	s.es = s.fs = s.gs = s.ss = s.ds;
	memset(&s.tr, 0, sizeof s.tr);
	s.tr.selector = 0x30;
	s.tr.base = T_TSS;
	s.tr.limit = 0x67;
	s.tr.type = 0xb;
	s.tr.present = 1;
	s.gdt.base = T_GDT;
	s.gdt.limit = 8 * 8 - 1;
	s.idt.base = T_IDT;
	s.idt.limit = 256 * 16 - 1;
	s.cr0 = 0x80050033; /* PG WP NE ET MP PE */
	s.cr3 = T_PML4;
	s.cr4 = 0x20; /* PAE */
	s.efer = 0xd01;  /* NXE LMA LME SCE */
	t->ops->set_sregs(t->cpu, &s);
	struct kvm_regs r = { .rip = T_CODE, .rsp = T_STACK, .rflags = 2 };
	t->ops->set_regs(t->cpu, &r);
}

/* The PVH entry state (docs/DESIGN.md "Booting"): 32-bit flat protected mode, paging off. */
static inline void t_prot32(struct t_vm *t)
{
	t_tables(t);
	struct kvm_sregs s;
	t->ops->get_sregs(t->cpu, &s);
	t_seg(&s.cs, 0x18, 1, 0, 0);
	t_seg(&s.ds, 0x10, 0, 0, 0);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.gdt.base = T_GDT;
	s.gdt.limit = 8 * 8 - 1;
	s.cr0 = 0x11; /* PE ET */
	s.cr4 = 0;
	s.efer = 0;
	t->ops->set_sregs(t->cpu, &s);
	struct kvm_regs r = { .rip = T_CODE, .rsp = T_STACK, .rflags = 2, .rbx = 0x6000 };
	t->ops->set_regs(t->cpu, &r);
}

/* IDT gate vec -> handler (64-bit interrupt gate, selector 0x08, DPL dpl, IST ist). */
static inline void t_gate(struct t_vm *t, int vec, uint64_t handler, int dpl, int ist)
{
	uint8_t *g = t->ram + T_IDT + 16 * vec;
	memset(g, 0, 16);
	g[0] = (uint8_t)handler;
	g[1] = (uint8_t)(handler >> 8);
	g[2] = 0x08;
	g[4] = (uint8_t)ist;
	g[5] = (uint8_t)(0x8e | (dpl << 5));
	g[6] = (uint8_t)(handler >> 16);
	g[7] = (uint8_t)(handler >> 24);
	memcpy(g + 8, (uint32_t[]){ (uint32_t)(handler >> 32) }, 4);
}

static inline int t_run(struct t_vm *t)
{
	int r = t->ops->run(t->cpu);
	if (r < 0)
		return r;
	return (int)t->run->exit_reason;
}

/* The emu engine's run area: struct kvm_run, then the PIO data page (as KVM's mmap). */
#define T_RUN_AREA 8192

/* The exit in t->run against api.rst's contract for a guest running garbage: an IO exit's size is
 * 1, 2 or 4 and its data lies in the run area; an MMIO exit's length is 1..8, outside RAM; any other
 * exit is DEBUG, X86_BUS_LOCK, HLT, SHUTDOWN or INTERNAL_ERROR. false with why in buf when not
 * (tests/unit/emu_garbage.c, tests/fuzz/emu_cpu.c). */
static inline bool t_exit_wellformed(const struct t_vm *t, char *buf, size_t len)
{
	const struct kvm_run *run = t->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		if (!(run->io.size == 1 || run->io.size == 2 || run->io.size == 4)) {
			snprintf(buf, len, "io size %u", run->io.size);
			return false;
		}
		if (run->io.count < 1 || run->io.data_offset < sizeof *run ||
		    run->io.data_offset + (uint64_t)run->io.size * run->io.count > T_RUN_AREA) {
			snprintf(buf, len, "io count %u data_offset %llu", run->io.count,
				 (unsigned long long)run->io.data_offset);
			return false;
		}
		return true;
	case KVM_EXIT_MMIO:
		if (run->mmio.len < 1 || run->mmio.len > 8) {
			snprintf(buf, len, "mmio len %u", run->mmio.len);
			return false;
		}
		if (run->mmio.phys_addr < T_RAM) {
			snprintf(buf, len, "mmio at 0x%llx, inside RAM", (unsigned long long)run->mmio.phys_addr);
			return false;
		}
		return true;
	case KVM_EXIT_DEBUG: case KVM_EXIT_X86_BUS_LOCK: case KVM_EXIT_HLT: case KVM_EXIT_SHUTDOWN:
	case KVM_EXIT_INTERNAL_ERROR:
		return true;
	default:
		snprintf(buf, len, "exit reason %u", run->exit_reason);
		return false;
	}
}

static inline struct kvm_regs t_regs(struct t_vm *t)
{
	struct kvm_regs r;
	t->ops->get_regs(t->cpu, &r);
	return r;
}

static inline int t_result(const char *name)
{
	if (t_failures) {
		fprintf(stderr, "%s: %d failure(s)\n", name, t_failures);
		return 1;
	}
	printf("%s: ok\n", name);
	return 0;
}

/* Guest code blobs: GUEST(name, ".code64", "asm...") defines name_start[] / name_end[]. */
#define GUEST(name, mode, body)                                                        \
	__asm__(".pushsection .rodata\n\t" mode "\n\t.globl " #name "_start\n" #name "_start:\n" \
		body "\n\t.globl " #name "_end\n" #name "_end:\n\t.code64\n\t.popsection");     \
	extern const uint8_t name##_start[], name##_end[]
/* guest address of a label inside blob `name` loaded at T_CODE */
#define GADDR(name, label) "(0x10000 + " #label " - " #name "_start)"

#endif
