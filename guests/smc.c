/* SPDX-License-Identifier: MIT */
/*
 * smc: self-modifying code (SDM Vol. 3A 11.6 "Self-Modifying Code": a write to a code location that
 * is cached or prefetched invalidates it, by physical address; on one CPU no serialising instruction
 * is needed, a branch to the new code is enough, and x86 even detects stores into the instruction
 * stream just ahead of the one executing).
 *
 * The identity map is writable and executable everywhere, so code can live in .data. Checked:
 *   1. `mov $1, %eax; ret` copied into a buffer returns 1; its immediate rewritten -> 2;
 *   2. 1000 rewrites with different immediates, every third also changing the instruction shape
 *      (`mov $imm, %eax; not %eax; ret`), each call returning the new result;
 *   3. a store into the immediate of the very next instruction, then falling into it, in
 *      straight-line code (no branch in between): the new immediate is what executes;
 *   4. a store into the ModRM byte of the next instruction (inc <-> dec) the same way;
 *   5. rewriting through a different virtual alias of the code page (our own page tables), then
 *      calling through the identity map: detection is by physical address.
 */
#include "rt.h"
#include "pg-common/pg.h"

#define ITERS 1000

/* Code we call in .data: sized for the longest shape (5 + 2 + 1 bytes). */
static uint8_t code[64] __attribute__((aligned(64))) = { 0xc3 };

typedef uint32_t (*fn_t)(void);
static uint32_t call_code(const volatile uint8_t *p)
{
	fn_t fn = (fn_t)(uintptr_t)p;
	RT_OPAQUE(fn);
	return fn();
}

/* mov $imm, %eax; ret */
static void put_mov(volatile uint8_t *p, uint32_t imm)
{
	p[0] = 0xb8;
	p[1] = (uint8_t)imm;
	p[2] = (uint8_t)(imm >> 8);
	p[3] = (uint8_t)(imm >> 16);
	p[4] = (uint8_t)(imm >> 24);
	p[5] = 0xc3;
}
/* mov $imm, %eax; not %eax; ret */
static void put_mov_not(volatile uint8_t *p, uint32_t imm)
{
	put_mov(p, imm);
	p[5] = 0xf7;
	p[6] = 0xd0;
	p[7] = 0xc3;
}

/*
 * In .data (writable and executable through the identity map):
 *   smc_ahead(v): stores v into the immediate of the next instruction, then executes it.
 *   smc_modrm(m): EAX = 100; stores m into the ModRM byte of the next instruction (0xc0 = inc %eax,
 *                 0xc8 = dec %eax), then executes it.
 */
__asm__(".section .data.smc, \"aw\"\n"
	".balign 64\n"
	".globl smc_ahead, smc_modrm\n"
	"smc_ahead:\n"
	"	movl %edi, 1f+1(%rip)\n"
	"1:	movl $0, %eax\n"
	"	ret\n"
	".balign 64\n"
	"smc_modrm:\n"
	"	movl $100, %eax\n"
	"	movb %dil, 2f+1(%rip)\n"
	"2:	incl %eax\n"
	"	ret\n"
	".previous\n");
uint32_t smc_ahead(uint32_t v);
uint32_t smc_modrm(uint32_t modrm);

int guest_main(void)
{
	rt_printf("smc: self-modifying code\n");
	pg_catch_all();

	rt_printf("a routine copied into .data, then its immediate rewritten\n");
	put_mov(code, 1);
	check("  mov $1, %eax; ret returns 1", call_code(code), 1);
	code[1] = 2;
	check("  after rewriting the immediate byte it returns 2", call_code(code), 2);

	rt_printf("%u rewrites with different immediates and shapes\n", ITERS);
	unsigned bad = 0;
	uint32_t first_got = 0, first_want = 0, first_i = 0;
	for (uint32_t i = 0; i < ITERS; i++) {
		uint32_t imm = i * 0x9e3779b9u + 7, want;
		if (i % 3 == 2) {
			put_mov_not(code, imm);
			want = ~imm;
		} else {
			put_mov(code, imm);
			want = imm;
		}
		uint32_t got = call_code(code);
		if (got != want && bad++ == 0) {
			first_got = got;
			first_want = want;
			first_i = i;
		}
	}
	if (bad)
		rt_printf("  first mismatch at iteration %u: got=0x%x want=0x%x\n", first_i, first_got, first_want);
	check("  rewrites that returned the wrong value", bad, 0);

	rt_printf("a store into the next instruction's immediate, then falling into it\n");
	bad = 0;
	for (uint32_t i = 0; i < 16; i++) {
		uint32_t v = 0x1234567u * (i + 1) ^ 0xa5a5a5a5u;
		if (smc_ahead(v) != v)
			bad++;
	}
	check("  of 16 patches, the old immediate ran", bad, 0);

	rt_printf("a store into the next instruction's ModRM byte (inc <-> dec), then falling into it\n");
	check("  patched to dec: 100 - 1", smc_modrm(0xc8), 99);
	check("  patched back to inc: 100 + 1", smc_modrm(0xc0), 101);
	check("  dec again", smc_modrm(0xc8), 99);

	rt_printf("a rewrite through another virtual alias of the code's page\n");
	pg_init();
	uint64_t page = pg_pa(code) & ~0xfffull;
	pg_map(0, page | PTE_P | PTE_W | PTE_NX);
	volatile uint8_t *alias = (volatile uint8_t *)(uintptr_t)(pg_va(0) + (pg_pa(code) & 0xfff));
	put_mov(code, 0x11111111);
	check("  the identity mapping runs the original", call_code(code), 0x11111111);
	put_mov(alias, 0x22222222);
	check("  after a write through the alias it runs the new code", call_code(code), 0x22222222);
	alias[1] = 0x33;
	check("  and after a one-byte write through the alias", call_code(code), 0x22222233);

	return finish("smc");
}
