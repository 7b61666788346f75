/* SPDX-License-Identifier: MIT */
/*
 * What an exception handler finds on its stack, against the manuals' sentences (the oracle):
 *   - EFLAGS.RF in the pushed image (SDM Vol. 3 17.3.1.1): "For any fault-class exception except a
 *     debug exception generated in response to an instruction breakpoint, the value pushed for RF
 *     is 1"; a software interrupt pushes RF as 0 ("cleared at the start of the software
 *     interrupt"), also right after an IRET whose image had RF set (the instruction returned to
 *     completed, which clears RF).
 * The kvm-unit-tests test idt_test checks the first sentence for #GP and #UD.
 */
#include "emu_harness.h"

#define RES 0x100000ull /* per event: vector, error code (or ~0), pushed RFLAGS, pushed CS */

/* r15: where the handler resumes; rdi: the next result slot */
GUEST(ef, ".code64",
	"mov $0x100000, %edi\n"
	"lea 1f(%rip), %r15\n"
	"ud2\n"                                  /* #UD: fault, RF 1 */
	"1: lea 1f(%rip), %r15\n"
	"int3\n"                                 /* #BP: trap, RF 0 (after an IRET that had RF 1) */
	"1: lea 1f(%rip), %r15\n"
	"movabs $0x8000000000000000, %rax\n"
	"mov (%rax), %rax\n"                     /* #GP(0): non-canonical, fault, RF 1 */
	"1: lea 1f(%rip), %r15\n"
	"xor %ecx, %ecx\n"
	"div %ecx\n"                             /* #DE: fault, RF 1 */
	"1: lea 1f(%rip), %r15\n"
	"int $0x40\n"                            /* INT n: RF 0 */
	"1: mov $0x3f8, %dx\n"
	"out %al, %dx\n"
	"hlt\n"
	".globl ef_noerr\n"
	"ef_noerr:\n"                            /* vector in eax; frame: rip, cs, rflags */
	"mov %rax, (%rdi)\n"
	"movq $-1, 8(%rdi)\n"
	"mov 16(%rsp), %rax\n"
	"mov %rax, 16(%rdi)\n"
	"mov 8(%rsp), %rax\n"
	"mov %rax, 24(%rdi)\n"
	"mov %r15, (%rsp)\n"
	"add $32, %rdi\n"
	"iretq\n"
	".globl ef_err\n"
	"ef_err:\n"                              /* vector in eax; frame: error code, rip, cs, rflags */
	"mov %rax, (%rdi)\n"
	"pop %rax\n"
	"mov %rax, 8(%rdi)\n"
	"mov 16(%rsp), %rax\n"
	"mov %rax, 16(%rdi)\n"
	"mov 8(%rsp), %rax\n"
	"mov %rax, 24(%rdi)\n"
	"mov %r15, (%rsp)\n"
	"add $32, %rdi\n"
	"iretq\n"
	".globl ef_stubs\n"
	"ef_stubs:\n"                            /* 10 bytes per vector 0..31, then 0x40: mov $v, %eax; jmp */
	".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,64\n"
	".byte 0xb8\n.long \\v\n.byte 0xe9\n"
	".if \\v == 8 || (\\v >= 10 && \\v <= 14) || \\v == 17 || \\v == 21\n"
	".long ef_err - (. + 4)\n"
	".else\n"
	".long ef_noerr - (. + 4)\n"
	".endif\n"
	".endr\n");
extern const uint8_t ef_stubs[];

#define RF (1ull << 16)

struct ev { uint64_t vec, err, rflags, cs; };

static void setup(struct t_vm *t)
{
	t_init(t);
	t_long_mode(t);
	t_load(t, T_CODE, ef_start, ef_end);
	uint64_t stubs = T_CODE + (uint64_t)(ef_stubs - ef_start);
	for (int v = 0; v < 32; v++)
		t_gate(t, v, stubs + 10 * (uint64_t)v, 0, 0);
	t_gate(t, 0x40, stubs + 10 * 32, 0, 0);
	memset(t->ram + RES, 0xee, 0x1000);
}

static struct ev ev_at(struct t_vm *t, unsigned k)
{
	struct ev e;
	memcpy(&e, t->ram + RES + 32 * k, sizeof e);
	return e;
}

static void rf_pushed(void)
{
	struct t_vm t;
	setup(&t);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	static const struct { uint64_t vec; bool rf; const char *what; } want[] = {
		{ 6, true, "#UD (fault)" }, { 3, false, "INT3 (trap) after an IRET with RF in its image" },
		{ 13, true, "#GP (fault)" }, { 0, true, "#DE (fault)" }, { 0x40, false, "INT n" },
	};
	for (unsigned k = 0; k < sizeof want / sizeof want[0]; k++) {
		struct ev e = ev_at(&t, k);
		CHECK(e.vec == want[k].vec, "event %u: vector %llu, want %llu", k, (unsigned long long)e.vec,
		      (unsigned long long)want[k].vec);
		CHECK(!!(e.rflags & RF) == want[k].rf, "%s: pushed RFLAGS 0x%llx, RF should be %d", want[k].what,
		      (unsigned long long)e.rflags, want[k].rf);
	}
	t_fini(&t);
}

int main(void)
{
	rf_pushed();
	return t_result("emu_exc_frame");
}
