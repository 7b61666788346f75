/* SPDX-License-Identifier: MIT */
/*
 * pg-nx: the execute-disable bit (SDM Vol. 3A 4.6.2 "Determination of Access Rights", 4.7 "Page-Fault
 * Exceptions"). With EFER.NXE = 1, an instruction fetch from a page whose translation has XD (bit 63)
 * set in any level is a #PF with error code P|I/D (0x11), CR2 = the fetched linear address and the
 * saved RIP = the faulting instruction; from a not-present page it is I/D alone (0x10). Reads from an
 * NX page are allowed. The same code through an executable mapping runs and returns its value.
 * An instruction that starts on an executable page and ends on an NX page faults with CR2 = the
 * first byte of the NX page and RIP = the instruction's start.
 *
 * Skips (status 0) if CPUID.80000001H:EDX[20] says there is no NX.
 */
#include "rt.h"
#include "pg-common/pg.h"

#define VALUE 0x1234abcdu
#define CODE_OFF 0x40    /* the routine's offset in its page */
#define SPLIT_OFF 0xffe  /* a routine whose first instruction straddles two pages */

/* Test pages (pg_va indexes). */
#define P_EXEC 0       /* code frame, executable */
#define P_NX 1         /* the same frame, NX */
#define P_ABSENT 2     /* not present */
#define P_SPLIT_A 3    /* frame a, executable */
#define P_SPLIT_B 4    /* frame b, NX, then executable */
#define P_PDE_NX PG_PAGES /* first page of the second table, whose PDE has NX */

static uint8_t code[4096] __attribute__((aligned(4096)));
static uint8_t split_a[4096] __attribute__((aligned(4096)));
static uint8_t split_b[4096] __attribute__((aligned(4096)));

typedef uint64_t (*fn_t)(void);

/* Calls the code at va; a fault there comes back as PG_SENTINEL (PG_RET pops the return address). */
static uint64_t call_at(uint64_t va)
{
	fn_t fn = (fn_t)(uintptr_t)va;
	RT_OPAQUE(fn);
	pg_expect(14, PG_RET);
	uint64_t r = fn();
	pg_mode = PG_UNEXPECTED;
	return r;
}

/* Jumps (no call) to va; a fault there resumes after the jump. Returns the faults seen. */
static uint64_t jump_to(uint64_t va)
{
	pg_expect(14, PG_RESUME);
	__asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
			 "movq %%rcx, %[res]\n\t"
			 "jmp *%[t]\n"
			 "1:"
			 : [res] "=m"(pg_resume_rip)
			 : [t] "r"(va)
			 : "rcx", "memory");
	pg_mode = PG_UNEXPECTED;
	return pg_last.n;
}

/* mov $VALUE, %eax; ret */
static void put_routine(uint8_t *p)
{
	p[0] = 0xb8;
	p[1] = (uint8_t)VALUE;
	p[2] = (uint8_t)(VALUE >> 8);
	p[3] = (uint8_t)(VALUE >> 16);
	p[4] = (uint8_t)(VALUE >> 24);
	p[5] = 0xc3;
}

int guest_main(void)
{
	rt_printf("pg-nx: execute-disable pages (EFER.NXE, PTE/PDE bit 63)\n");
	struct rt_cpuid ext = cpuid(0x80000000, 0);
	if (ext.eax < 0x80000001 || !(cpuid(0x80000001, 0).edx & (1u << 20))) {
		rt_printf("pg-nx: skipped (no NX)\n");
		return RT_EXIT_OK;
	}
	uint64_t efer = rdmsr(MSR_EFER);
	if (!(efer & EFER_NXE))
		wrmsr(MSR_EFER, efer | EFER_NXE);
	check("EFER.NXE is set", rdmsr(MSR_EFER) & EFER_NXE, EFER_NXE);

	pg_catch_all();
	pg_init();
	put_routine(code + CODE_OFF);
	/* The split routine: b8 at 0xffe, its immediate continues on the next page, then ret. */
	uint8_t whole[6];
	put_routine(whole);
	memcpy(split_a + SPLIT_OFF, whole, 2);
	memcpy(split_b, whole + 2, 4);

	pg_map(P_EXEC, pg_pa(code) | PTE_P);
	pg_map(P_NX, pg_pa(code) | PTE_P | PTE_NX);
	pg_map(P_ABSENT, 0);
	pg_map(P_SPLIT_A, pg_pa(split_a) | PTE_P);
	pg_map(P_SPLIT_B, pg_pa(split_b) | PTE_P | PTE_NX);
	pg_map(P_PDE_NX, pg_pa(code) | PTE_P);

	/* 1. Executable mapping: the routine runs. */
	check("call into an executable page returns its value", call_at(pg_va(P_EXEC) + CODE_OFF), VALUE);

	/* 2. The same frame mapped NX: fetch fault. */
	uint64_t target = pg_va(P_NX) + CODE_OFF;
	check("call into an NX page faults", call_at(target), PG_SENTINEL);
	check("  one #PF", pg_last.n == 1 && pg_last.vector == 14, 1);
	check("  error code P|I/D", pg_last.error, PF_P | PF_ID);
	check("  CR2 = the target", pg_last.cr2 - PG_BASE, target - PG_BASE);
	check("  RIP = the target", pg_last.rip - PG_BASE, target - PG_BASE);
	check("reading an NX page is allowed", pg_read64(pg_va(P_NX) + CODE_OFF) & 0xffffffffffffull,
	      0xc300000000b8ull | (uint64_t)VALUE << 8);

	/* 3. A jump (no return address pushed) into the NX page. */
	check("jmp into an NX page faults once", jump_to(target), 1);
	check("  error code P|I/D", pg_last.error, PF_P | PF_ID);
	check("  CR2 = the target", pg_last.cr2 - PG_BASE, target - PG_BASE);

	/* 4. Not present: I/D alone. */
	target = pg_va(P_ABSENT) + CODE_OFF;
	check("call into a not-present page faults", call_at(target), PG_SENTINEL);
	check("  error code I/D", pg_last.error, PF_ID);
	check("  CR2 = the target", pg_last.cr2 - PG_BASE, target - PG_BASE);

	/* 5. NX in the page directory entry, not in the PTE. */
	pg_pd[1] |= PTE_NX;
	pg_flush_all();
	target = pg_va(P_PDE_NX) + CODE_OFF;
	check("call into a page whose PDE has NX faults", call_at(target), PG_SENTINEL);
	check("  error code P|I/D", pg_last.error, PF_P | PF_ID);
	check("  CR2 = the target", pg_last.cr2 - PG_BASE, target - PG_BASE);
	pg_pd[1] &= ~PTE_NX;
	pg_flush_all();
	check("the same call after clearing the PDE's NX returns", call_at(target), VALUE);

	/* 6. An instruction straddling an executable page and an NX page. */
	target = pg_va(P_SPLIT_A) + SPLIT_OFF;
	check("an instruction ending on an NX page faults", call_at(target), PG_SENTINEL);
	check("  error code P|I/D", pg_last.error, PF_P | PF_ID);
	check("  CR2 = the first byte of the NX page", pg_last.cr2 - PG_BASE, pg_va(P_SPLIT_B) - PG_BASE);
	check("  RIP = the instruction's start", pg_last.rip - PG_BASE, target - PG_BASE);
	pg_map(P_SPLIT_B, pg_pa(split_b) | PTE_P);
	check("the straddling routine runs once both pages are executable", call_at(target), VALUE);

	/* 7. Back to the NX mapping after it ran executable elsewhere: still faults (no stale TLB). */
	check("the NX page still faults", call_at(pg_va(P_NX) + CODE_OFF), PG_SENTINEL);
	pg_map(P_NX, pg_pa(code) | PTE_P);
	check("after clearing its NX bit (INVLPG) it runs", call_at(pg_va(P_NX) + CODE_OFF), VALUE);

	return finish("pg-nx");
}
