/* SPDX-License-Identifier: MIT */
/*
 * What an exception handler finds on its stack, against the manuals' sentences (the oracle):
 *   - EFLAGS.RF in the pushed image (SDM Vol. 3 17.3.1.1): "For any fault-class exception except a
 *     debug exception generated in response to an instruction breakpoint, the value pushed for RF
 *     is 1"; a software interrupt pushes RF as 0 ("cleared at the start of the software
 *     interrupt"), also right after an IRET whose image had RF set (the instruction returned to
 *     completed, which clears RF).
 *   - #SS(0), not #GP(0), for a non-canonical address that references the SS segment (SDM Vol. 2,
 *     each instruction's "64-Bit Mode Exceptions": "#SS(0) If a memory address referencing the SS
 *     segment is in a non-canonical form"): an RSP or RBP base, PUSH and POP; other segments
 *     #GP(0). (An SS: override is not checked: in 64-bit mode the manual says the prefix is
 *     ignored, and Zydis decodes the operand's segment as DS.) #SS is delivered on IST 1, since RSP itself may be non-canonical.
 *   - the single-step trap of SYSCALL and SYSRET follows TF at the instruction's end (KVM and QEMU
 *     TCG; kvm-unit-tests x86/syscall.c "#DB is raised if TF is 1 at the *end* of syscall/
 *     sysret"): POPF sets TF, SYSCALL clears it through IA32_FMASK (no trap), SYSRETQ sets it from
 *     R11: the first #DB arrives in user mode (CS 0x2b) before the first user instruction.
 *   - LGDT/LIDT of a non-canonical base #GP(0), LLDT of a descriptor with one #GP(selector) (AMD
 *     APM Vol. 3 "LGDT", "LIDT", "LLDT": "The new ... base address was non-canonical").
 * The kvm-unit-tests tests idt_test (RF for #GP and #UD) and emulator (rsp- and rbp-based
 * accesses), syscall and la57 (its canonical-base checks, in 4-level mode too) check the same.
 */
#include "emu_harness.h"

#define RES 0x100000ull /* per event: vector, error code (or ~0), pushed RFLAGS, pushed CS */

/* r15: where the handler resumes, r14 the RSP it resumes with; rdi: the next result slot */
GUEST(ef, ".code64",
	"mov $0x100000, %edi\n"
	"mov %rsp, %r14\n"
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
	"1: lea 1f(%rip), %r15\n"
	"movabs $0x8000000000000000, %rcx\n"     /* non-canonical (bit 63 set, 47 clear) */
	"mov %rcx, %rax\n"
	"orq $0, (%rax)\n"                      /* DS: #GP(0) */
	"1: lea 1f(%rip), %r15\n"
	"orq $0, (%rsp,%rcx,1)\n"               /* RSP base: #SS(0) */
	"1: lea 1f(%rip), %r15\n"
	"orq $0, (%rbp,%rcx,1)\n"               /* RBP base: #SS(0) */
	"1: lea 1f(%rip), %r15\n"
	"mov (%rsp,%rcx,1), %rdx\n"             /* a read: #SS(0) */
	"1: lea 1f(%rip), %r15\n"
	"mov %rcx, %rsp\n"
	"push %rax\n"                           /* PUSH to a non-canonical RSP: #SS(0) */
	"1: lea 1f(%rip), %r15\n"
	"mov %rcx, %rsp\n"
	"pop %rax\n"                            /* POP: #SS(0) */
	"1: mov %r14, %rsp\n"
	"lea 1f(%rip), %r15\n"
	"movw $0xffff, 0x100800\n"
	"movabs $0xaaaaaaaaaaaaaaaa, %rax\n"
	"mov %rax, 0x100802\n"
	"lgdt 0x100800\n"                        /* non-canonical base: #GP(0) */
	"1: lea 1f(%rip), %r15\n"
	"lidt 0x100800\n"                        /* the same, the IDT kept */
	"1: lea 1f(%rip), %r15\n"
	"mov $0x40, %eax\n"
	"lldt %ax\n"                             /* an LDT descriptor with a non-canonical base: #GP(0x40) */
	"1:\n"
	"1: mov $0x3f8, %dx\n"
	"out %al, %dx\n"
	"hlt\n"
	".globl ef_noerr\n"
	"ef_noerr:\n"                            /* vector in eax; frame: rip, cs, rflags (TF cleared) */
	"mov %rax, (%rdi)\n"
	"movq $-1, 8(%rdi)\n"
	"mov 16(%rsp), %rax\n"
	"mov %rax, 16(%rdi)\n"
	"andq $~0x100, 16(%rsp)\n"
	"mov 8(%rsp), %rax\n"
	"mov %rax, 24(%rdi)\n"
	"mov %r15, (%rsp)\n"
	"mov %r14, 24(%rsp)\n"
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
	"mov %r14, 24(%rsp)\n"
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

/* loaded at SR_AT; uses ef's handlers (rdi: results, r15/r14: where they resume) */
#define SR_AT (T_CODE + 0x4000)
GUEST(sr, ".code64",
	"mov $0x100000, %edi\n"
	"mov %rsp, %r14\n"
	"lea 2f(%rip), %r15\n"                   /* a #DB resumes in user mode at 2: */
	"mov $0xc0000081, %ecx\n"                /* STAR: SYSCALL CS 0x08; SYSRETQ CS 0x28|3, SS 0x20|3 */
	"xor %eax, %eax\n"
	"mov $0x00180008, %edx\n"
	"wrmsr\n"
	"mov $0xc0000082, %ecx\n"                /* LSTAR */
	"lea 1f(%rip), %rax\n"
	"xor %edx, %edx\n"
	"wrmsr\n"
	"mov $0xc0000084, %ecx\n"                /* FMASK: TF */
	"mov $0x100, %eax\n"
	"wrmsr\n"
	"pushf\n"
	"orq $0x100, (%rsp)\n"
	"popf\n"                                 /* TF from the next instruction on */
	"syscall\n"                              /* clears TF: no trap */
	"1: movq $0x5c, (%rdi)\n"                /* a marker where a (wrong) trap's record would be */
	"add $32, %rdi\n"
	"lea 3f(%rip), %rcx\n"
	"mov $0x3102, %r11d\n"                   /* IOPL 3, TF */
	"sysretq\n"                              /* sets TF: trap before the instruction at 3: */
	"3: nop\n"
	"2: mov $0x3f8, %dx\n"
	"out %al, %dx\n"
	"jmp .\n");

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
	t_gate(t, 12, stubs + 10 * 12, 0, 1); /* #SS on IST 1: RSP may be the culprit */
	t_w64(t, T_TSS + 0x24, 0x70000);
	memset(t->ram + RES, 0xee, 0x1000);
	/* GDT 0x40: a 16-byte LDT descriptor (type 2, present) whose base 0xaaaaaaaa00000000 is not
	 * canonical */
	t_w64(t, T_GDT + 0x40, 0x000082000000ffffull);
	t_w64(t, T_GDT + 0x48, 0x00000000aaaaaaaaull);
	struct kvm_sregs sr;
	t->ops->get_sregs(t->cpu, &sr);
	sr.gdt.limit = 0x4f;
	t->ops->set_sregs(t->cpu, &sr);
}

static struct ev ev_at(struct t_vm *t, unsigned k)
{
	struct ev e;
	memcpy(&e, t->ram + RES + 32 * k, sizeof e);
	return e;
}

static void frames(void)
{
	struct t_vm t;
	setup(&t);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	static const struct { uint64_t vec; bool rf; const char *what; uint32_t err; } want[] = {
		{ 6, true, "#UD (fault)", 0 }, { 3, false, "INT3 (trap) after an IRET with RF in its image", 0 },
		{ 13, true, "#GP (fault)", 0 }, { 0, true, "#DE (fault)", 0 }, { 0x40, false, "INT n", 0 },
		{ 13, true, "non-canonical DS access", 0 }, { 12, true, "non-canonical RSP-based access", 0 },
		{ 12, true, "non-canonical RBP-based access", 0 },
		{ 12, true, "non-canonical RSP-based read", 0 }, { 12, true, "PUSH to a non-canonical RSP", 0 },
		{ 12, true, "POP from a non-canonical RSP", 0 },
		{ 13, true, "LGDT of a non-canonical base", 0 }, { 13, true, "LIDT of a non-canonical base", 0 },
		{ 13, true, "LLDT of a descriptor with a non-canonical base", 0x40 },
	};
	for (unsigned k = 0; k < sizeof want / sizeof want[0]; k++) {
		struct ev e = ev_at(&t, k);
		CHECK(e.vec == want[k].vec, "event %u, %s: vector %llu, want %llu", k, want[k].what,
		      (unsigned long long)e.vec, (unsigned long long)want[k].vec);
		if (want[k].vec == 12 || want[k].vec == 13)
			CHECK(e.err == want[k].err, "%s: error code 0x%llx, want 0x%x", want[k].what,
			      (unsigned long long)e.err, want[k].err);
		CHECK(e.cs == 0x08, "%s: pushed CS 0x%llx", want[k].what, (unsigned long long)e.cs);
		CHECK(!!(e.rflags & RF) == want[k].rf, "%s: pushed RFLAGS 0x%llx, RF should be %d", want[k].what,
		      (unsigned long long)e.rflags, want[k].rf);
	}
	t_fini(&t);
}

static void syscall_step(void)
{
	struct t_vm t;
	setup(&t);
	t_load(&t, SR_AT, sr_start, sr_end);
	struct kvm_regs r = t_regs(&t);
	r.rip = SR_AT;
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	struct ev e0 = ev_at(&t, 0), e1 = ev_at(&t, 1);
	CHECK(e0.vec == 0x5c, "SYSCALL that cleared TF trapped: first record vector %llu, CS 0x%llx",
	      (unsigned long long)e0.vec, (unsigned long long)e0.cs);
	CHECK(e1.vec == 1 && e1.cs == 0x2b, "after SYSRETQ set TF: vector %llu CS 0x%llx, want #DB (1) from CS 0x2b",
	      (unsigned long long)e1.vec, (unsigned long long)e1.cs);
	CHECK(e1.rflags & 0x100, "the #DB frame's RFLAGS 0x%llx has no TF", (unsigned long long)e1.rflags);
	t_fini(&t);
}

int main(void)
{
	frames();
	syscall_step();
	return t_result("emu_exc_frame");
}
