/* SPDX-License-Identifier: MIT */
/*
 * Shared by the paging and system guests (pg-*.c, smc.c, sys-*.c): self-checks, fault capture,
 * and a private page-table hierarchy for test pages at a high virtual address.
 *
 * Include it from exactly one file of a guest: it defines static data and a few global
 * assembly probes (pg_read64, pg_write64, ...).
 *
 * Output rules (the same bytes under QEMU TCG, blvm emu and blvm kvm): a check prints
 * "ok: WHAT" or "FAIL WHAT: got=0x... want=0x...", never an address that could differ between
 * runs, never a timing or a vendor string.
 */
#ifndef BLVM_GUEST_PG_H
#define BLVM_GUEST_PG_H

#include "rt.h"

/* ---- self-checks ------------------------------------------------------------------------------- */

static unsigned pg_nchecks, pg_nfailed;

/* One named check of a 64-bit value. Returns true if it matched. */
static __attribute__((unused)) bool check(const char *what, uint64_t got, uint64_t want)
{
	pg_nchecks++;
	if (got == want) {
		rt_printf("ok: %s\n", what);
		return true;
	}
	pg_nfailed++;
	rt_printf("FAIL %s: got=0x%lx want=0x%lx\n", what, got, want);
	return false;
}

/* The guest's last line and exit status. */
static __attribute__((unused)) int finish(const char *guest)
{
	rt_printf("%s: %u checks, %u failed\n", guest, pg_nchecks, pg_nfailed);
	return pg_nfailed ? RT_EXIT_FAIL : RT_EXIT_OK;
}

/* ---- page-table bits (SDM Vol. 3A 4.5, Tables 4-14 .. 4-20) ------------------------------------- */

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_U 0x4ull
#define PTE_PWT 0x8ull
#define PTE_PCD 0x10ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

/* #PF error code bits (SDM Vol. 3A 4.7, Figure 4-12). */
#define PF_P 0x1
#define PF_W 0x2
#define PF_U 0x4
#define PF_RSVD 0x8
#define PF_ID 0x10

#define CR0_WP (1ull << 16)
#define MSR_EFER 0xc0000080u
#define EFER_SCE (1ull << 0)
#define EFER_NXE (1ull << 11)

/*
 * The test window: PML4 slot 2, virtual 0x100_0000_0000 (1 TiB), far above the runtime's 0-4 GiB
 * identity map (PML4 slot 0) and anything else. Our own PDPT -> PD -> two PTs, all in .bss:
 * PG_PAGES 4 KiB pages at PG_BASE (PD[0] -> pg_pt) and PG_PAGES more at PG_BASE + 2 MiB
 * (PD[1] -> pg_pt2, whose PDE a guest may restrict: NX or R/W=0 at the directory level).
 * The upper-level entries grant everything (P|W|U, NX=0), so the leaf decides.
 */
#define PG_PML4_SLOT 2
#define PG_BASE 0x10000000000ull
#define PG_BASE2 (PG_BASE + 0x200000ull)
#define PG_PAGES 512

static uint64_t pg_pdpt[512] __attribute__((aligned(4096)));
static uint64_t pg_pd[512] __attribute__((aligned(4096)));
static uint64_t pg_pt[512] __attribute__((aligned(4096)));
static uint64_t pg_pt2[512] __attribute__((aligned(4096)));

static inline uint64_t pg_pa(const volatile void *p) { return (uint64_t)(uintptr_t)p; } /* identity map */
static inline uint64_t *pg_pml4(void) { return (uint64_t *)(uintptr_t)rt_pml4_paddr(); }

/* Full TLB and paging-structure-cache flush: CR3 reload (no global pages in use). */
static inline void pg_flush_all(void) { write_cr3(read_cr3()); }

static __attribute__((unused)) void pg_init(void)
{
	pg_pd[0] = pg_pa(pg_pt) | PTE_P | PTE_W | PTE_U;
	pg_pd[1] = pg_pa(pg_pt2) | PTE_P | PTE_W | PTE_U;
	pg_pdpt[0] = pg_pa(pg_pd) | PTE_P | PTE_W | PTE_U;
	pg_pml4()[PG_PML4_SLOT] = pg_pa(pg_pdpt) | PTE_P | PTE_W | PTE_U;
	pg_flush_all();
}

/* Virtual address of test page i (0 .. PG_PAGES-1 in the first table, PG_PAGES.. in the second). */
static inline uint64_t pg_va(unsigned i) { return PG_BASE + (uint64_t)i * 4096; }
static inline volatile uint64_t *pg_pte(unsigned i) { return i < PG_PAGES ? &pg_pt[i] : &pg_pt2[i - PG_PAGES]; }

/* Sets the PTE of test page i (0 = not present) and invalidates its TLB entry. */
static __attribute__((unused)) void pg_map(unsigned i, uint64_t pte)
{
	*pg_pte(i) = pte;
	invlpg((const volatile void *)(uintptr_t)pg_va(i));
}

/* ---- fault capture ----------------------------------------------------------------------------- */

/*
 * Probes: single instructions at known addresses, so a handler can tell a probe's fault from a
 * stray one and resume after it. Each is `insn; ret`; pg_X_insn is the faulting instruction and
 * pg_X_done the ret after it.
 */
__asm__(".text\n"
	".globl pg_read64, pg_read64_insn, pg_read64_done\n"
	"pg_read64:\n"
	"pg_read64_insn: movq (%rdi), %rax\n"
	"pg_read64_done: ret\n"
	".globl pg_write64, pg_write64_insn, pg_write64_done\n"
	"pg_write64:\n"
	"movq $0, %rax\n"
	"pg_write64_insn: movq %rsi, (%rdi)\n"
	"pg_write64_done: ret\n"
	".globl pg_read8, pg_read8_insn, pg_read8_done\n"
	"pg_read8:\n"
	"pg_read8_insn: movzbl (%rdi), %eax\n"
	"pg_read8_done: ret\n");
extern char pg_read64_insn[], pg_read64_done[], pg_write64_insn[], pg_write64_done[];
extern char pg_read8_insn[], pg_read8_done[];
uint64_t pg_read64(uint64_t va);
uint64_t pg_write64(uint64_t va, uint64_t v); /* returns 0, or PG_SENTINEL if it faulted */
uint64_t pg_read8(uint64_t va);

/* What a faulting probe returns in RAX. */
#define PG_SENTINEL 0x5e5e5e5e5e5e5e5eull

/* How the handler resumes after recording a fault. */
enum pg_mode {
	PG_UNEXPECTED, /* no fault expected: report it, exit 1 */
	PG_SKIP,       /* a probe faulted: resume at its ret with RAX = PG_SENTINEL */
	PG_RET,        /* a call landed on code that faulted: pop the return address, RAX = PG_SENTINEL */
	PG_RESUME,     /* resume at pg_resume_rip (set by the test) */
	PG_FIX,        /* call pg_fixer(f), which repairs the cause; re-execute the instruction */
};

struct pg_fault {
	uint64_t n; /* faults seen since pg_expect() */
	uint64_t vector, error, cr2, rip, cs;
};
static volatile struct pg_fault pg_last;
static volatile enum pg_mode pg_mode;
static volatile uint64_t pg_resume_rip;
static void (*volatile pg_fixer)(struct rt_frame *f);

static __attribute__((unused)) void pg_trap(struct rt_frame *f)
{
	pg_last.n++;
	pg_last.vector = f->vector;
	pg_last.error = f->error;
	pg_last.cr2 = f->cr2;
	pg_last.rip = f->rip;
	pg_last.cs = f->cs;
	switch (pg_mode) {
	case PG_SKIP:
		if (f->rip == (uint64_t)(uintptr_t)pg_read64_insn)
			f->rip = (uint64_t)(uintptr_t)pg_read64_done;
		else if (f->rip == (uint64_t)(uintptr_t)pg_write64_insn)
			f->rip = (uint64_t)(uintptr_t)pg_write64_done;
		else if (f->rip == (uint64_t)(uintptr_t)pg_read8_insn)
			f->rip = (uint64_t)(uintptr_t)pg_read8_done;
		else
			break;
		f->rax = PG_SENTINEL;
		pg_mode = PG_UNEXPECTED;
		return;
	case PG_RET:
		if ((f->cs & 3) != 0)
			break;
		f->rip = *(uint64_t *)(uintptr_t)f->rsp;
		f->rsp += 8;
		f->rax = PG_SENTINEL;
		pg_mode = PG_UNEXPECTED;
		return;
	case PG_RESUME:
		f->rip = pg_resume_rip;
		pg_mode = PG_UNEXPECTED;
		return;
	case PG_FIX:
		if (pg_fixer) {
			pg_fixer(f);
			return;
		}
		break;
	case PG_UNEXPECTED:
		break;
	}
	rt_printf("FAIL unexpected exception %lu (#%s) error=0x%lx rip=0x%lx cr2=0x%lx\n", f->vector,
		  rt_exception_mnemonic((unsigned)f->vector), f->error, f->rip, f->cr2);
	rt_exit(RT_EXIT_FAIL);
}

/* Arms the handler for vector v (and records nothing so far). */
static __attribute__((unused)) void pg_expect(unsigned v, enum pg_mode mode)
{
	pg_last.n = 0;
	pg_last.vector = pg_last.error = pg_last.cr2 = pg_last.rip = pg_last.cs = ~0ull;
	pg_mode = mode;
	rt_set_handler(v, pg_trap);
}

/* Installs pg_trap (in PG_UNEXPECTED mode) on every exception vector: any stray fault is a FAIL. */
static __attribute__((unused)) void pg_catch_all(void)
{
	pg_mode = PG_UNEXPECTED;
	for (unsigned v = 0; v < 32; v++)
		rt_set_handler(v, pg_trap);
}

#endif
