/* SPDX-License-Identifier: MIT */
/*
 * pg-us: user/supervisor protection from CPL 3 (SDM Vol. 3A 4.6 "Access Rights", 4.7 "Page-Fault
 * Exceptions").
 *
 * The guest installs its own GDT with DPL-3 segments and a TSS whose RSP0 is a kernel stack
 * (pg-common/user.h), and enters CPL 3 by IRETQ at small user routines mapped with U=1. Each routine
 * does one access and ends with UD2, whose #UD handler takes the CPU back to CPL 0; a fault comes back
 * through the #PF/#GP handler, which checks it came from CPL 3 (CS = 0x2b). Checked, with CR2 and the
 * saved RIP exact:
 *   - user read of a user page, user write of a user writable page work (D set);
 *   - read of a supervisor page (U=0 in the PTE, or only in the PDE) -> #PF P|U (0x5);
 *   - read / write of a not-present page -> U (0x4) / W|U (0x6);
 *   - write to a user read-only page -> P|W|U (0x7), also with CR0.WP = 0 (WP only relaxes CPL 0);
 *     write to a supervisor page -> 0x7;
 *   - fetch from a supervisor page or from an NX user page -> P|U|I/D (0x15; 0x5 without EFER.NXE);
 *   - HLT at CPL 3 -> #GP(0) with RIP at the HLT.
 * SYSCALL, SYSRET and INT n from CPL 3 are sys-user's.
 */
#include "rt.h"
#include "pg-common/pg.h"
#include "pg-common/user.h"

#define P_UCODE 0   /* the user routines, P|U, read-only, executable */
#define P_USTACK 1  /* user stack, P|W|U */
#define P_SUPER 2   /* supervisor data, P|W */
#define P_ABSENT 3  /* not present */
#define P_URO 4     /* user read-only data, P|U */
#define P_URW 5     /* user writable data, P|W|U */
#define P_SCODE 6   /* the user routines mapped supervisor-only */
#define P_UNX 7     /* the user routines mapped user, NX */
#define P_PDE_S PG_PAGES /* user PTE under a supervisor PDE */

#define OFF 0x2a8
#define V_SUPER 0x5555aaaa5555aaaaull
#define V_URO 0x0badc0de0badc0deull
#define V_URW 0x1234567887654321ull

/*
 * The user routines, in a page of their own mapped at pg_va(P_UCODE) with U=1. Each does one thing
 * and ends with UD2: the #UD handler (user_ud) takes the CPU back to CPL 0, RAX = the result.
 */
__asm__(".text\n"
	"	.balign 4096\n"
	".globl user_blob, u_read, u_read_ud, u_write, u_call, u_hlt\n"
	"user_blob:\n"
	"u_read:	movq (%rdi), %rax\n"
	"u_read_ud:	ud2\n"
	"u_write:	movq %rsi, (%rdi)\n"
	"	xorl %eax, %eax\n"
	"	ud2\n"
	"u_call:	movq %rdi, %rax\n" /* call a0 with RDI = a1 */
	"	movq %rsi, %rdi\n"
	"	call *%rax\n"
	"	ud2\n"
	"u_hlt:	hlt\n"
	"	ud2\n"
	"	.balign 4096\n");
extern char user_blob[], u_read[], u_read_ud[], u_write[], u_call[], u_hlt[];

static uint8_t ustack[4096] __attribute__((aligned(4096)));
static uint64_t super[512] __attribute__((aligned(4096)));
static uint64_t uro[512] __attribute__((aligned(4096)));
static uint64_t urw[512] __attribute__((aligned(4096)));

/* User VA of a routine in user_blob. */
static uint64_t uva(const char *sym) { return pg_va(P_UCODE) + (uint64_t)(sym - user_blob); }
/* A user-VA offset inside the blob, for printing and comparing without addresses. */
static uint64_t blob_off(uint64_t va) { return va - pg_va(P_UCODE); }

/* A user access that must fault with #PF error `err` at cr2 (RIP = the routine's first byte). */
static void expect_pf(const char *what, uint64_t entry, uint64_t a0, uint64_t a1, uint64_t err, uint64_t cr2,
		      uint64_t rip)
{
	rt_printf("%s\n", what);
	user_reset();
	check("  it faults", user_call(entry, a0, a1), PG_SENTINEL);
	check("  one #PF from CPL 3", pg_last.n == 1 && pg_last.vector == 14 && pg_last.cs == SEL_UCODE, 1);
	check("  error code", pg_last.error, err);
	check("  CR2 = the address", pg_last.cr2 - PG_BASE, cr2 - PG_BASE);
	check("  RIP = the faulting instruction", pg_last.rip - PG_BASE, rip - PG_BASE);
	check("  the routine did not finish", user_ud_count, 0);
}

int guest_main(void)
{
	rt_printf("pg-us: user/supervisor pages and faults from CPL 3\n");
	pg_catch_all();
	pg_init();
	user_load_tables();
	uint64_t nxe = rdmsr(MSR_EFER) & EFER_NXE;
	rt_set_handler(14, user_fault);
	rt_set_handler(13, user_fault);
	rt_set_handler(6, user_ud);

	super[OFF / 8] = V_SUPER;
	uro[OFF / 8] = V_URO;
	pg_map(P_UCODE, pg_pa(user_blob) | PTE_P | PTE_U);
	pg_map(P_USTACK, pg_pa(ustack) | PTE_P | PTE_W | PTE_U);
	pg_map(P_SUPER, pg_pa(super) | PTE_P | PTE_W);
	pg_map(P_ABSENT, 0);
	pg_map(P_URO, pg_pa(uro) | PTE_P | PTE_U);
	pg_map(P_URW, pg_pa(urw) | PTE_P | PTE_W | PTE_U);
	pg_map(P_SCODE, pg_pa(user_blob) | PTE_P);
	pg_map(P_UNX, pg_pa(user_blob) | PTE_P | PTE_U | (nxe ? PTE_NX : 0));
	pg_pd[1] &= ~PTE_U;
	pg_flush_all();
	pg_map(P_PDE_S, pg_pa(uro) | PTE_P | PTE_U);
	user_stack_top = pg_va(P_USTACK) + 4096;

	rt_printf("user read of a user read-only page\n");
	user_reset();
	check("  the value", user_call(uva(u_read), pg_va(P_URO) + OFF, 0), V_URO);
	check("  no fault; the routine's UD2 came from CPL 3 (CS = 0x2b)", pg_last.n == 0 && user_ud_count == 1 &&
	      user_ud_cs == SEL_UCODE, 1);
	check("  #UD RIP = the UD2", blob_off(user_ud_rip), (uint64_t)(u_read_ud - user_blob));

	rt_printf("user write to a user writable page\n");
	user_reset();
	check("  the write completes", user_call(uva(u_write), pg_va(P_URW) + OFF, V_URW), 0);
	check("  no fault", pg_last.n == 0 && user_ud_count == 1, 1);
	check("  memory holds the value", urw[OFF / 8], V_URW);
	check("  PTE dirty", *pg_pte(P_URW) & PTE_D, PTE_D);

	expect_pf("user read of a supervisor page", uva(u_read), pg_va(P_SUPER) + OFF, 0, PF_P | PF_U,
		  pg_va(P_SUPER) + OFF, uva(u_read));
	expect_pf("user read of a user PTE under a supervisor PDE", uva(u_read), pg_va(P_PDE_S) + OFF, 0,
		  PF_P | PF_U, pg_va(P_PDE_S) + OFF, uva(u_read));
	expect_pf("user read of a not-present page", uva(u_read), pg_va(P_ABSENT) + OFF, 0, PF_U,
		  pg_va(P_ABSENT) + OFF, uva(u_read));
	expect_pf("user write to a not-present page", uva(u_write), pg_va(P_ABSENT) + OFF, 1, PF_W | PF_U,
		  pg_va(P_ABSENT) + OFF, uva(u_write));
	expect_pf("user write to a user read-only page (CR0.WP=1)", uva(u_write), pg_va(P_URO) + OFF, 1,
		  PF_P | PF_W | PF_U, pg_va(P_URO) + OFF, uva(u_write));
	check("  memory unchanged", uro[OFF / 8], V_URO);
	uint64_t cr0 = read_cr0();
	write_cr0(cr0 & ~CR0_WP);
	expect_pf("user write to a user read-only page (CR0.WP=0: WP only relaxes CPL 0)", uva(u_write),
		  pg_va(P_URO) + OFF, 1, PF_P | PF_W | PF_U, pg_va(P_URO) + OFF, uva(u_write));
	write_cr0(cr0 | CR0_WP);
	check("  memory unchanged", uro[OFF / 8], V_URO);
	expect_pf("user write to a supervisor page", uva(u_write), pg_va(P_SUPER) + OFF, 1, PF_P | PF_W | PF_U,
		  pg_va(P_SUPER) + OFF, uva(u_write));
	check("  memory unchanged", super[OFF / 8], V_SUPER);

	uint64_t id = nxe ? PF_ID : 0;
	uint64_t target = pg_va(P_SCODE) + (uint64_t)(u_read - user_blob);
	expect_pf("user call into a supervisor page", uva(u_call), target, 0, PF_P | PF_U | id, target, target);
	target = pg_va(P_UNX) + (uint64_t)(u_read - user_blob);
	if (nxe)
		expect_pf("user call into an NX user page", uva(u_call), target, 0, PF_P | PF_U | PF_ID, target, target);
	else
		rt_printf("user call into an NX user page: skipped (no NX)\n");

	rt_printf("user call into executable user code\n");
	user_reset();
	check("  the value", user_call(uva(u_call), uva(u_read), pg_va(P_URO) + OFF), V_URO);
	check("  no fault; it finished at the callee's UD2", pg_last.n == 0 && user_ud_count == 1 &&
	      blob_off(user_ud_rip) == (uint64_t)(u_read_ud - user_blob), 1);

	rt_printf("supervisor access to the user pages from CPL 0 (no SMAP)\n");
	check("  read", pg_read64(pg_va(P_URO) + OFF), V_URO);

	rt_printf("HLT at CPL 3\n");
	user_reset();
	check("  it faults", user_call(uva(u_hlt), 0, 0), PG_SENTINEL);
	check("  #GP from CPL 3", pg_last.n == 1 && pg_last.vector == 13 && pg_last.cs == SEL_UCODE, 1);
	check("  error code 0", pg_last.error, 0);
	check("  RIP = the HLT", blob_off(pg_last.rip), (uint64_t)(u_hlt - user_blob));

	return finish("pg-us");
}
