/* SPDX-License-Identifier: MIT */
/*
 * pg-np: not-present pages, demand mapping, and the accessed and dirty bits (SDM Vol. 3A 4.7
 * "Page-Fault Exceptions", 4.8 "Accessed and Dirty Flags").
 *
 * A read of a not-present page is a #PF with error code 0, a write with W (0x2); CR2 = the linear
 * address accessed (for an access straddling two pages, the first byte of the missing page); the
 * saved RIP is the access itself, so a handler that maps the page (PTE write + INVLPG) and returns
 * re-executes it, and it completes with the expected value. The CPU sets A in every paging entry it
 * uses, and D in the PTE on a write, including when the translation was already cached clean.
 */
#include "rt.h"
#include "pg-common/pg.h"

#define V1 0x0123456789abcdefull
#define V2 0xa5a5a5a55a5a5a5aull
#define V3 0x8877665544332211ull
#define OFF 0x128   /* 8-aligned */
#define UOFF 0x123  /* not aligned */

#define P_READ 0     /* not present, then mapped on demand (read) */
#define P_WRITE 1    /* not present, then mapped on demand (write) */
#define P_COW 2      /* present read-only, made writable on demand */
#define P_SPLIT_A 3  /* present */
#define P_SPLIT_B 4  /* not present, then mapped on demand (straddling read) */
#define P_DIRTY 5    /* present, writable: D set by a write after a read cached it clean */

static uint8_t fr[4096] __attribute__((aligned(4096)));
static uint8_t fw[4096] __attribute__((aligned(4096)));
static uint8_t fc[4096] __attribute__((aligned(4096)));
static uint8_t fa[4096] __attribute__((aligned(4096)));
static uint8_t fb[4096] __attribute__((aligned(4096)));
static uint8_t fd[4096] __attribute__((aligned(4096)));

/* What the fault handler installs, and where. */
static volatile unsigned fix_page;
static volatile uint64_t fix_pte;

static void fixer(struct rt_frame *f)
{
	if (pg_last.n > 1) {
		rt_printf("FAIL the access faulted again after its page was mapped (error=0x%lx)\n", f->error);
		rt_exit(RT_EXIT_FAIL);
	}
	*pg_pte(fix_page) = fix_pte;
	invlpg((const volatile void *)(uintptr_t)pg_va(fix_page));
	/* return: the stub IRETQs to the faulting instruction, which runs again */
}

static void demand(unsigned page, uint64_t pte)
{
	fix_page = page;
	fix_pte = pte;
	pg_fixer = fixer;
	pg_expect(14, PG_FIX);
}

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

int guest_main(void)
{
	rt_printf("pg-np: not-present pages mapped on demand; accessed and dirty bits\n");
	pg_catch_all();
	pg_init();
	write_cr0(read_cr0() | CR0_WP);
	put64(fr + OFF, V1);
	put64(fc + OFF, V1);
	uint64_t v2 = V2, v3 = V3;
	memcpy(fa + 4096 - 4, &v2, 4); /* the straddling read gets the low half of V2 ... */
	memcpy(fb, &v3, 4);            /* ... then the low half of V3 */
	for (unsigned i = 0; i < 6; i++)
		pg_map(i, 0);
	pg_map(P_COW, pg_pa(fc) | PTE_P);
	pg_map(P_SPLIT_A, pg_pa(fa) | PTE_P | PTE_W);
	pg_map(P_DIRTY, pg_pa(fd) | PTE_P | PTE_W);

	/* Clear A in the upper levels (and flush their caches) so the walks below must set it. */
	pg_pml4()[PG_PML4_SLOT] &= ~PTE_A;
	pg_pdpt[0] &= ~PTE_A;
	pg_pd[0] &= ~PTE_A;
	pg_flush_all();

	rt_printf("read of a not-present page, mapped by the #PF handler\n");
	uint64_t va = pg_va(P_READ) + OFF;
	demand(P_READ, pg_pa(fr) | PTE_P | PTE_W);
	check("  the retried read returns the value", pg_read64(va), V1);
	check("  one #PF", pg_last.n == 1 && pg_last.vector == 14, 1);
	check("  error code 0 (read, not present)", pg_last.error, 0);
	check("  CR2 = the address read", pg_last.cr2 - PG_BASE, va - PG_BASE);
	check("  RIP = the load", pg_last.rip == (uint64_t)(uintptr_t)pg_read64_insn, 1);
	check("  PTE accessed", *pg_pte(P_READ) & PTE_A, PTE_A);
	check("  PTE not dirty", *pg_pte(P_READ) & PTE_D, 0);
	check("  PDE accessed", pg_pd[0] & PTE_A, PTE_A);
	check("  PDPTE accessed", pg_pdpt[0] & PTE_A, PTE_A);
	check("  PML4E accessed", pg_pml4()[PG_PML4_SLOT] & PTE_A, PTE_A);

	rt_printf("write to a not-present page, mapped by the #PF handler\n");
	va = pg_va(P_WRITE) + OFF;
	demand(P_WRITE, pg_pa(fw) | PTE_P | PTE_W);
	check("  the retried write completes", pg_write64(va, V2), 0);
	check("  one #PF", pg_last.n == 1 && pg_last.vector == 14, 1);
	check("  error code W (write, not present)", pg_last.error, PF_W);
	check("  CR2 = the address written", pg_last.cr2 - PG_BASE, va - PG_BASE);
	check("  RIP = the store", pg_last.rip == (uint64_t)(uintptr_t)pg_write64_insn, 1);
	check("  memory holds the value", get64(fw + OFF), V2);
	check("  PTE accessed", *pg_pte(P_WRITE) & PTE_A, PTE_A);
	check("  PTE dirty", *pg_pte(P_WRITE) & PTE_D, PTE_D);

	rt_printf("write to a read-only page (WP=1), made writable by the #PF handler\n");
	pg_mode = PG_UNEXPECTED;
	va = pg_va(P_COW) + OFF;
	check("  the page reads", pg_read64(va), V1);
	check("  PTE accessed, not dirty", *pg_pte(P_COW) & (PTE_A | PTE_D), PTE_A);
	demand(P_COW, pg_pa(fc) | PTE_P | PTE_W | PTE_A);
	check("  the retried write completes", pg_write64(va, V3), 0);
	check("  one #PF", pg_last.n == 1 && pg_last.vector == 14, 1);
	check("  error code P|W", pg_last.error, PF_P | PF_W);
	check("  CR2 = the address written", pg_last.cr2 - PG_BASE, va - PG_BASE);
	check("  memory holds the value", get64(fc + OFF), V3);
	check("  PTE dirty", *pg_pte(P_COW) & PTE_D, PTE_D);

	rt_printf("8-byte read straddling a present and a not-present page\n");
	va = pg_va(P_SPLIT_A) + 4096 - 4;
	demand(P_SPLIT_B, pg_pa(fb) | PTE_P | PTE_W);
	check("  the retried read returns both halves", pg_read64(va), (V2 & 0xffffffffull) | (V3 << 32));
	check("  one #PF", pg_last.n == 1 && pg_last.vector == 14, 1);
	check("  error code 0", pg_last.error, 0);
	check("  CR2 = the first byte of the missing page", pg_last.cr2 - PG_BASE, pg_va(P_SPLIT_B) - PG_BASE);
	check("  both PTEs accessed", (*pg_pte(P_SPLIT_A) & *pg_pte(P_SPLIT_B)) & PTE_A, PTE_A);

	rt_printf("unaligned read of a not-present page\n");
	pg_map(P_READ, 0);
	put64(fr + UOFF, V3);
	va = pg_va(P_READ) + UOFF;
	demand(P_READ, pg_pa(fr) | PTE_P);
	check("  the retried read returns the value", pg_read64(va), V3);
	check("  CR2 = the address read", pg_last.cr2 - PG_BASE, va - PG_BASE);

	rt_printf("write after a read cached the translation clean\n");
	va = pg_va(P_DIRTY) + OFF;
	pg_mode = PG_UNEXPECTED;
	check("  the read returns 0", pg_read64(va), 0);
	check("  PTE accessed, not dirty", *pg_pte(P_DIRTY) & (PTE_A | PTE_D), PTE_A);
	check("  the write completes", pg_write64(va, V1), 0);
	check("  PTE dirty", *pg_pte(P_DIRTY) & PTE_D, PTE_D);
	/* Software clears D (and flushes): the next write must set it again. */
	pg_map(P_DIRTY, pg_pa(fd) | PTE_P | PTE_W | PTE_A);
	check("  a read after clearing D returns the value", pg_read64(va), V1);
	check("  PTE still clean", *pg_pte(P_DIRTY) & PTE_D, 0);
	check("  the next write completes", pg_write64(va, V2), 0);
	check("  PTE dirty again", *pg_pte(P_DIRTY) & PTE_D, PTE_D);
	check("  memory holds the value", get64(fd + OFF), V2);

	return finish("pg-np");
}
