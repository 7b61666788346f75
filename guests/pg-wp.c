/* SPDX-License-Identifier: MIT */
/*
 * pg-wp: write protection at CPL 0 (SDM Vol. 3A 4.6.1 "Determination of Access Rights", 2.5 CR0.WP).
 * With CR0.WP = 1 a supervisor write to a read-only translation (R/W = 0 in the PTE or in any
 * upper-level entry; user or supervisor page alike) is a #PF with error code P|W (0x3), CR2 = the
 * written linear address, RIP = the store, nothing written and the PTE left clean (D = 0). With
 * CR0.WP = 0 the same writes succeed (and set D). A store straddling a writable and a read-only
 * page faults with CR2 = the first byte of the read-only page and leaves the read-only part alone.
 */
#include "rt.h"
#include "pg-common/pg.h"

#define OFF 0x238
#define OLD 0x0123456789abcdefull
#define NEW1 0xfeedfacecafef00dull
#define NEW2 0x1122334455667788ull

#define P_RO 0       /* frame f, read-only, supervisor */
#define P_RW 1       /* frame f, writable */
#define P_URO 2      /* frame u, read-only, user */
#define P_SPLIT_RW 3 /* frame g, writable */
#define P_SPLIT_RO 4 /* frame h, read-only */
#define P_PDE_RO PG_PAGES /* frame d, writable PTE under a read-only PDE */

static uint64_t f[512] __attribute__((aligned(4096)));
static uint64_t u[512] __attribute__((aligned(4096)));
static uint64_t g[512] __attribute__((aligned(4096)));
static uint64_t h[512] __attribute__((aligned(4096)));
static uint64_t d[512] __attribute__((aligned(4096)));

static volatile uint64_t *frame_word(uint64_t *frame) { return (volatile uint64_t *)&frame[OFF / 8]; }

/* A write through va that must fault with P|W; checks the fault and that nothing changed. */
static void expect_wp_fault(const char *what, uint64_t va, volatile uint64_t *backing, unsigned page)
{
	rt_printf("%s\n", what);
	pg_expect(14, PG_SKIP);
	check("  the write faults", pg_write64(va, NEW1), PG_SENTINEL);
	check("  one #PF", pg_last.n == 1 && pg_last.vector == 14, 1);
	check("  error code P|W", pg_last.error, PF_P | PF_W);
	check("  CR2 = the written address", pg_last.cr2 - PG_BASE, va - PG_BASE);
	check("  RIP = the store", pg_last.rip == (uint64_t)(uintptr_t)pg_write64_insn, 1);
	check("  memory unchanged", *backing, OLD);
	check("  PTE not dirty", *pg_pte(page) & PTE_D, 0);
}

/* The same write with CR0.WP = 0: it completes. */
static void expect_write_ok(const char *what, uint64_t va, volatile uint64_t *backing, unsigned page)
{
	rt_printf("%s\n", what);
	check("  the write completes", pg_write64(va, NEW2), 0);
	check("  memory holds the new value", *backing, NEW2);
	check("  PTE dirty", *pg_pte(page) & PTE_D, PTE_D);
	*backing = OLD;
}

int guest_main(void)
{
	rt_printf("pg-wp: read-only pages and CR0.WP at CPL 0\n");
	uint64_t cr0 = read_cr0();
	pg_catch_all();
	pg_init();
	*frame_word(f) = OLD;
	*frame_word(u) = OLD;
	*frame_word(d) = OLD;
	for (unsigned i = 0; i < 512; i++)
		g[i] = h[i] = OLD;

	pg_map(P_RO, pg_pa(f) | PTE_P);
	pg_map(P_RW, pg_pa(f) | PTE_P | PTE_W);
	pg_map(P_URO, pg_pa(u) | PTE_P | PTE_U);
	pg_map(P_SPLIT_RW, pg_pa(g) | PTE_P | PTE_W);
	pg_map(P_SPLIT_RO, pg_pa(h) | PTE_P);
	pg_pd[1] &= ~PTE_W;
	pg_flush_all();
	pg_map(P_PDE_RO, pg_pa(d) | PTE_P | PTE_W);

	write_cr0(cr0 | CR0_WP);
	check("CR0.WP = 1", read_cr0() & CR0_WP, CR0_WP);
	check("a read-only page reads", pg_read64(pg_va(P_RO) + OFF), OLD);
	expect_wp_fault("write to a read-only supervisor page, WP=1", pg_va(P_RO) + OFF, frame_word(f), P_RO);
	expect_wp_fault("write to a read-only user page at CPL 0, WP=1", pg_va(P_URO) + OFF, frame_word(u), P_URO);
	expect_wp_fault("write under a read-only PDE, WP=1", pg_va(P_PDE_RO) + OFF, frame_word(d), P_PDE_RO);
	check("a writable alias of the read-only frame writes", pg_write64(pg_va(P_RW) + OFF, NEW1), 0);
	check("  the read-only mapping sees it", pg_read64(pg_va(P_RO) + OFF), NEW1);
	*frame_word(f) = OLD;

	/* A store of 8 bytes at 0xffc in the writable page: 4 bytes on each side. */
	rt_printf("store straddling a writable and a read-only page, WP=1\n");
	uint64_t va = pg_va(P_SPLIT_RW) + 0xffc;
	pg_expect(14, PG_SKIP);
	check("  the write faults", pg_write64(va, NEW1), PG_SENTINEL);
	check("  error code P|W", pg_last.error, PF_P | PF_W);
	check("  CR2 = the first byte of the read-only page", pg_last.cr2 - PG_BASE, pg_va(P_SPLIT_RO) - PG_BASE);
	/* The writable page's part is not checked: the SDM does not say whether a store that
	 * faults on its second page has written its first part (hardware under KVM does). */
	check("  the read-only page's part is not written", h[0], OLD);
	g[511] = OLD;

	write_cr0(read_cr0() & ~CR0_WP);
	check("CR0.WP = 0", read_cr0() & CR0_WP, 0);
	expect_write_ok("write to a read-only supervisor page, WP=0", pg_va(P_RO) + OFF, frame_word(f), P_RO);
	expect_write_ok("write to a read-only user page at CPL 0, WP=0", pg_va(P_URO) + OFF, frame_word(u), P_URO);
	expect_write_ok("write under a read-only PDE, WP=0", pg_va(P_PDE_RO) + OFF, frame_word(d), P_PDE_RO);
	rt_printf("store straddling a writable and a read-only page, WP=0\n");
	check("  the write completes", pg_write64(va, NEW2), 0);
	check("  both parts are written", (g[511] >> 32) | (h[0] << 32), NEW2);

	/* WP=1 again: the pages written while WP=0 are read-only once more (no stale permission). */
	write_cr0(read_cr0() | CR0_WP);
	*frame_word(f) = OLD;
	pg_expect(14, PG_SKIP);
	check("WP=1 again: the read-only page faults again", pg_write64(pg_va(P_RO) + OFF, NEW1), PG_SENTINEL);
	check("  error code P|W", pg_last.error, PF_P | PF_W);
	check("  memory unchanged", *frame_word(f), OLD);

	write_cr0(cr0);
	return finish("pg-wp");
}
