/* SPDX-License-Identifier: MIT */
/*
 * pg-1g: a 1 GiB page (SDM Vol. 3A 4.5.4, Table 4-16: a PDPTE with PS = 1 maps a 1 GiB page;
 * bits 29:13 are reserved and must be 0). PML4 slot 1 -> our PDPT, whose entry 0 maps virtual
 * 0x80_0000_0000 to physical 0. Values written through the runtime's identity map are read through
 * the 1 GiB page and the reverse, at offsets inside the first 2 MiB and well beyond (a 1 GiB page
 * is not a 2 MiB one); an 8-byte access straddles the 2 MiB boundary inside the page; code runs
 * through it; the PDPTE gets A and D; past the page is not present (#PF 0); a PDPTE with a
 * reserved address bit set is a reserved-bit #PF (P|RSVD = 0x9; P is not compared, QEMU 7.2 omits it).
 *
 * Skips (status 0) if CPUID.80000001H:EDX[26] (Page1GB) is clear.
 */
#include "rt.h"
#include "pg-common/pg.h"

#define BIG 0x8000000000ull /* PML4 slot 1 */
#define BIG_SLOT 1
#define GIB 0x40000000ull

static uint64_t pdpt1g[512] __attribute__((aligned(4096)));
static volatile uint64_t cell = 0x1111111111111111ull;
static uint8_t code[16] = { 0xb8, 0x0d, 0xf0, 0x1e, 0x00, 0xc3 }; /* mov $0x1ef00d, %eax; ret */

static inline volatile uint64_t *id_ptr(uint64_t pa) { return (volatile uint64_t *)(uintptr_t)pa; }
static inline volatile uint64_t *big_ptr(uint64_t pa) { return (volatile uint64_t *)(uintptr_t)(BIG + pa); }

/* Physical addresses beyond the first 2 MiB, inside the default 128 MiB (and any >= 64 MiB). */
static const uint64_t far_pa[] = { 0x200000, 0x2345678, 0x3fffff8 };

int guest_main(void)
{
	rt_printf("pg-1g: a 1 GiB page maps virtual 0x8000000000 to physical 0\n");
	struct rt_cpuid ext = cpuid(0x80000000, 0);
	if (ext.eax < 0x80000001 || !(cpuid(0x80000001, 0).edx & (1u << 26))) {
		rt_printf("pg-1g: skipped (no 1 GiB pages)\n");
		return RT_EXIT_OK;
	}
	pg_catch_all();
	check("RAM reaches 64 MiB", rt_ram_top_below_4g() >= 0x4000000, 1);
	pdpt1g[0] = 0 | PTE_P | PTE_W | PTE_PS;
	pg_pml4()[BIG_SLOT] = pg_pa(pdpt1g) | PTE_P | PTE_W;
	pg_flush_all();

	uint64_t pa = pg_pa(&cell);
	check("a variable written through the identity map reads through the 1 GiB page",
	      (*id_ptr(pa) = 0x0123456789abcdefull, *big_ptr(pa)), 0x0123456789abcdefull);
	check("written through the 1 GiB page, it reads through the identity map",
	      (*big_ptr(pa) = 0xfedcba9876543210ull, *id_ptr(pa)), 0xfedcba9876543210ull);
	check("PDPTE accessed and dirty", pdpt1g[0] & (PTE_A | PTE_D), PTE_A | PTE_D);

	for (unsigned i = 0; i < sizeof far_pa / sizeof far_pa[0]; i++) {
		uint64_t p = far_pa[i];
		uint64_t saved = *id_ptr(p);
		uint64_t v = 0x5a00000000000000ull ^ (p * 0x9e3779b97f4a7c15ull);
		*id_ptr(p) = v;
		rt_printf("physical offset 0x%lx, past the first 2 MiB\n", p);
		check("  identity-map write, 1 GiB-page read", *big_ptr(p), v);
		*big_ptr(p) = ~v;
		check("  1 GiB-page write, identity-map read", *id_ptr(p), ~v);
		*id_ptr(p) = saved;
	}

	rt_printf("8-byte access straddling the 2 MiB boundary inside the 1 GiB page\n");
	uint64_t b = 0x200000 - 4;
	uint64_t lo = *id_ptr(b - 4), hi = *id_ptr(b + 4);
	pg_expect(14, PG_UNEXPECTED);
	pg_write64(BIG + b, 0x8899aabbccddeeffull);
	check("  identity-map read of what the 1 GiB page wrote", *id_ptr(b), 0x8899aabbccddeeffull);
	*id_ptr(b) = 0x0011223344556677ull;
	check("  1 GiB-page read of what the identity map wrote", pg_read64(BIG + b), 0x0011223344556677ull);
	*id_ptr(b - 4) = lo;
	*id_ptr(b + 4) = hi;

	uint64_t (*fn)(void) = (uint64_t(*)(void))(uintptr_t)(BIG + pg_pa(code));
	RT_OPAQUE(fn);
	check("code runs through the 1 GiB page", fn() & 0xffffffff, 0x1ef00d);

	rt_printf("past the 1 GiB page (PDPTE 1 not present)\n");
	uint64_t va = BIG + GIB + 0x1238;
	pg_expect(14, PG_SKIP);
	check("  the read faults", pg_read64(va), PG_SENTINEL);
	check("  error code 0", pg_last.error, 0);
	check("  CR2 = the address read", pg_last.cr2 - BIG, va - BIG);

	rt_printf("a 1 GiB PDPTE with a reserved bit (bit 13) set\n");
	pdpt1g[0] = 0x2000 | PTE_P | PTE_W | PTE_PS;
	pg_flush_all();
	va = BIG + pa;
	pg_expect(14, PG_SKIP);
	check("  the read faults", pg_read64(va), PG_SENTINEL);
	/* The SDM's error code is P|RSVD (0x9); QEMU 7.2 TCG reports RSVD alone (0x8): P not compared. */
	check("  error code RSVD (P not compared)", pg_last.error & ~(uint64_t)PF_P, PF_RSVD);
	check("  CR2 = the address read", pg_last.cr2 - BIG, va - BIG);

	pg_mode = PG_UNEXPECTED;
	pdpt1g[0] = 0 | PTE_P | PTE_W | PTE_PS;
	pg_flush_all();
	check("restored, the 1 GiB page reads again", *big_ptr(pa), *id_ptr(pa));
	return finish("pg-1g");
}
