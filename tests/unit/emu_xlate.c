/* SPDX-License-Identifier: MIT */
/*
 * The emu engine's binary translator (src/emu/xlate.c, issue 16) against the interpreter, which is
 * the reference: the same guest code on two VMs, one with --translate=all (every block translated at
 * its first run), one with the interpreter, whatever BLVM_TRANSLATE says.
 *  - single-step (KVM_GUESTDBG_SINGLESTEP) through translated blocks: every step ends after ONE
 *    instruction with the same registers, RIP, RFLAGS and retired count (the stop request at block
 *    entry: a translation's entry runs its instruction 0 alone through its handler,
 *    emit_entry_stop, so no step runs native code), also over a JMP whose target the jump cache
 *    knows;
 *  - the same loop run whole: same state and count, and exactly the native instructions the
 *    translator's forms predict (native_instructions);
 *  - an exit in the middle of a block (an MMIO read after native instructions): RIP at the reading
 *    instruction, the native instructions' registers and flags committed, as in the interpreter;
 *  - memory forms run natively (the inline TLB path, issue 16 step b) against the interpreter: loads,
 *    stores, ALU and CMP/TEST sources in a loop (TLB hits after the first pass), page-crossing loads
 *    and stores (the slow path, with the guest's flags live in the host across it), an FS-relative
 *    load, a store into the block being run (a code page: the write generations), and a #GP from a
 *    non-canonical address mid-block (precise: RIP at the access, the registers before it);
 *  - CALL rel32 and RET native (emit_call_ret()), an LRETQ beside them (a far RET: its handler), the
 *    slow paths (a crossing slot, a non-canonical target: #GP with RIP at the RET), run whole and
 *    single-stepped (every CALL and RET ends its step) against the interpreter;
 *  - JMP r/m64 and CALL r/m64 native (emit_branch_ind()): a jump table, a crossing slot (the slow
 *    path), a non-canonical target (#GP before anything is committed), whole and single-stepped;
 *  - kick() during a loop of chained native taken branches: run() returns -EINTR (c->chain_left
 *    bounds the chain), RIP at the loop's top, the count exactly 3 per iteration, all native;
 *  - more blocks than the decode cache holds (8 MiB of decoded blocks): the caches are flushed and
 *    refilled, twice over, and the result is the one computed here.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "emu_harness.h"

GUEST(loop, ".code64",
	"mov $5, %ecx\n"
	"1: add $3, %eax\n"
	"xor %ebx, %eax\n"
	"nopw 0x12345(%rax,%rcx,8)\n"  /* a NOP (no access at all): no host instruction */
	"lea 7(%rax,%rcx,2), %rdx\n"
	"and $0x7ff, %edx\n"
	"cmp %rdx, %rax\n"
	"setb %bl\n"
	"dec %ecx\n"
	"jnz 1b\n"
	"hlt\n");
/* mov, then add xor nop lea and cmp setb dec jnz per iteration (taken or not, a relative branch of a
 * 64-bit block is native: emit_taken()) */
#define LOOP_NATIVE (1 + 5 * 9)

/* a loop that runs until kicked: every taken JNZ chains to the block itself without the run loop */
GUEST(spin, ".code64",
	"1: add $1, %eax\n"
	"test %eax, %eax\n"
	"jnz 1b\n"
	"hlt\n");

GUEST(mmio, ".code64",
	"mov $1, %eax\n"
	"add $2, %eax\n"
	"cmp $3, %eax\n"
	"mov $0xfee00030, %esi\n"     /* the LAPIC's page without an irqchip: MMIO */
	"mov (%rsi), %ecx\n"
	"hlt\n");

/* data at 0x20000 (not a code page); 0x20ffe..0x21001 crosses a page */
GUEST(memf, ".code64",
	"mov $0x20000, %esi\n"
	"mov $0x12345678, %eax\n"
	"mov $3, %ecx\n"
	"1: mov %eax, (%rsi)\n"
	"add (%rsi), %eax\n"
	"movzbl 1(%rsi), %edx\n"
	"movsbq 2(%rsi), %r11\n"
	"cmp %edx, 4(%rsi)\n"
	"adc 4(%rsi), %r11\n"
	"mov %edx, 0xffe(%rsi)\n"
	"sub 0xffe(%rsi), %eax\n"
	"add memf_k(%rip), %ebx\n"  /* RIP-relative: from c->rip (emit_rip_base) */
	"test %eax, 8(%rsi,%rcx,4)\n"
	"setnz %bl\n"
	"mov %ebx, 12(%rsi)\n"
	"movl $0x5a5a, 16(%rsi,%rcx,8)\n"
	"cmp $0x40000000, %eax\n"
	"mov 12(%rsi), %r8d\n"      /* no flags written: CMP's stay live across the TLB path */
	"mov 0xffc(%rsi), %r9\n"    /* ... and across a page-crossing slow path */
	"jb 2f\n"
	"add $1, %r14\n"            /* counts the CMPs above or equal */
	"2: mov %fs:8(%rsi), %r10\n"
	"dec %ecx\n"
	"jnz 1b\n"
	"lea 3f(%rip), %rdi\n"
	"movb $5, 2(%rdi)\n"        /* the immediate of the ADD below: a code page, the same block */
	"3: add $1, %eax\n"
	"mov $0xfffffff9, %r12d\n"
	"mov $0x1234000000000000, %r13\n"
	"add $7, %r12d\n"          /* 0 with CF ZF PF AF */
	".globl memf_fault\nmemf_fault: mov (%r13), %r14\n" /* #GP(0): non-canonical */
	"cmp $1, %eax\n"           /* ADD's flags are dead after the MOV (flags_dead_after()), but the */
	"hlt\n"                    /* #GP shows them: its slow path takes them back */
	".globl memf_gp\nmemf_gp: pop %r15\n" /* the error code */
	"pop %rbp\n"                /* the RIP of the fault */
	"hlt\n"
	"memf_k: .long 0x01000300\n");
extern const uint8_t memf_fault[], memf_gp[];

/* CALL rel32 and RET without their handlers (emit_call_ret()): an LRETQ first (REX.W CB: a far
 * RET, which Zydis names RET too; it pops RIP and CS, so RSP moves by 16 -- run as a near RET it
 * moved by 8 and left CS unloaded, and the Linux boot halted in startup_64), a loop of calls, a CALL
 * and a RET whose stack slot crosses 0x21000 (the slow path: the handlers), a RET to a non-canonical
 * address (#GP before anything is committed: RIP at the RET, RSP unchanged) */
GUEST(cr, ".code64",
	"mov $0x20800, %rsp\n"
	"mov %cs, %eax\n"
	"push %rax\n"
	"lea 3f(%rip), %rax\n"
	"push %rax\n"
	"lretq\n"
	"3: mov %rsp, %r11\n"
	"mov $3, %ecx\n"
	"1: call 2f\n"
	"add $1, %ebx\n"
	"dec %ecx\n"
	"jnz 1b\n"
	"mov $0x21004, %rsp\n"
	"call 2f\n"
	".globl cr_back\ncr_back: mov $0x20800, %rsp\n"
	"mov $0x1234000000000000, %rax\n"
	"push %rax\n"
	".globl cr_fault\ncr_fault: ret\n"
	"2: add $2, %eax\n"
	"ret\n"
	".globl cr_gp\ncr_gp: pop %r15\n" /* the error code */
	"pop %rbp\n"                 /* RIP */
	"pop %r14\n"                 /* CS */
	"pop %r13\n"                 /* RFLAGS */
	"pop %r12\n"                 /* RSP */
	"hlt\n");
extern const uint8_t cr_fault[], cr_gp[], cr_back[];

/* JMP r/m64 and CALL r/m64 without their handlers (emit_branch_ind()): a loop of CALL r64, CALL m64
 * (absolute) and JMP m64 (an index: a jump table), a JMP r64; a JMP m64 whose slot crosses 0x21000
 * (the slow path: the handler), then a CALL m64 to a non-canonical target (#GP before anything is
 * committed: RIP at the CALL, RSP unchanged, nothing pushed) */
GUEST(ind, ".code64",
	"mov $0x20800, %rsp\n"
	"lea 2f(%rip), %rsi\n"
	"mov %rsi, 0x20100\n"
	"lea 3f(%rip), %rdi\n"
	"mov %rdi, 0x20108\n"
	"mov $3, %ecx\n"
	"1: call *%rsi\n"
	"call *0x20100\n"
	"mov $1, %edx\n"
	"jmp *0x20100(,%rdx,8)\n"
	"3: dec %ecx\n"
	"jnz 1b\n"
	"lea 4f(%rip), %rdi\n"
	"jmp *%rdi\n"
	"4: lea 5f(%rip), %rax\n"
	"mov %rax, 0x20ffc\n"
	"jmp *0x20ffc\n"
	"5: mov $0x1234000000000000, %rax\n"
	"mov %rax, 0x20200\n"
	".globl ind_fault\nind_fault: call *0x20200\n"
	"2: add $2, %ebx\n"
	"ret\n"
	".globl ind_gp\nind_gp: pop %r15\n" /* the error code */
	"pop %rbp\n"                 /* RIP */
	"pop %r14\n"                 /* CS */
	"pop %r13\n"                 /* RFLAGS */
	"pop %r12\n"                 /* RSP */
	"hlt\n");
extern const uint8_t ind_fault[], ind_gp[];

/* PUSH/POP r64 as memory forms (stack_form()): a loop on the data page, PUSH RSP (the value before
 * the decrement), then a PUSH and a POP across 0x21000 (the slow path: the handlers) */
GUEST(stk, ".code64",
	"mov $0x20800, %rsp\n"
	"mov $3, %ecx\n"
	"1: push %rcx\n"
	"push %rsp\n"
	"pop %rax\n"
	"pop %rdx\n"
	"add %rdx, %rbx\n"
	"add %rax, %rbx\n"
	"dec %ecx\n"
	"jnz 1b\n"
	"mov $0x21004, %rsp\n"
	"push %rbx\n"
	"pop %rsi\n"
	"hlt\n");
#define MEMF_FS 0x100 /* FS base: %fs:8(%rsi) reads 0x20108 */

static void vm_init(struct t_vm *t, int backend)
{
	t_backend = backend;
	t_init(t);
	t_backend = -1;
	t_long_mode(t);
}

static void same_regs(struct t_vm *a, struct t_vm *b, const char *what, unsigned step)
{
	struct kvm_regs x = t_regs(a), y = t_regs(b);
	if (memcmp(&x, &y, sizeof x)) {
		CHECK(0, "%s, step %u: registers differ (rip %llx/%llx rax %llx/%llx rflags %llx/%llx)", what, step,
		      (unsigned long long)x.rip, (unsigned long long)y.rip, (unsigned long long)x.rax,
		      (unsigned long long)y.rax, (unsigned long long)x.rflags, (unsigned long long)y.rflags);
	}
	CHECK_EQ(a->ops->instructions(a->cpu), b->ops->instructions(b->cpu));
}

/* JMP rel, native at the start of its block, chaining (the jump cache knows its target from the
 * first pass) unless single-step asks for the run loop */
GUEST(jloop, ".code64",
	"mov $3, %ecx\n"
	"1: jmp 2f\n"
	"2: dec %ecx\n"
	"jnz 1b\n"
	"hlt\n");

static void singlestep_jmp(void)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP };
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, T_CODE, jloop_start, jloop_end);
		CHECK_EQ(t->ops->set_guest_debug(t->cpu, &dbg), 0);
	}
	unsigned steps = 0;
	for (;;) {
		int ex = t_run(&x), ei = t_run(&i);
		CHECK_EQ(ex, ei);
		steps++;
		same_regs(&x, &i, "single-step over JMP", steps);
		CHECK_EQ(x.ops->instructions(x.cpu), steps);
		if (ex != KVM_EXIT_DEBUG || steps > 100)
			break;
	}
	CHECK_EQ(steps, 1 + 3 * 3 + 1); /* mov, 3 x (jmp dec jnz), hlt */
	t_fini(&x);
	t_fini(&i);
}

static void singlestep(void)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP };
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, T_CODE, loop_start, loop_end);
		CHECK_EQ(t->ops->set_guest_debug(t->cpu, &dbg), 0);
	}
	unsigned steps = 0;
	for (;;) {
		int ex = t_run(&x), ei = t_run(&i);
		CHECK_EQ(ex, ei);
		steps++;
		same_regs(&x, &i, "single-step", steps);
		CHECK_EQ(x.ops->instructions(x.cpu), steps);
		if (ex != KVM_EXIT_DEBUG || steps > 100)
			break;
	}
	CHECK_EQ(steps, 1 + 5 * 9 + 1); /* mov, 5 x 9, hlt */
	CHECK_EQ(x.ops->native_instructions(x.cpu), 0); /* each step: instruction 0's handler */
	t_fini(&x);
	t_fini(&i);
}

static void whole(void)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	t_load(&x, T_CODE, loop_start, loop_end);
	t_load(&i, T_CODE, loop_start, loop_end);
	CHECK_EQ(t_run(&x), KVM_EXIT_HLT);
	CHECK_EQ(t_run(&i), KVM_EXIT_HLT);
	same_regs(&x, &i, "loop", 0);
	CHECK_EQ(x.ops->native_instructions(x.cpu), LOOP_NATIVE);
	CHECK_EQ(i.ops->native_instructions(i.cpu), -1);
	t_fini(&x);
	t_fini(&i);
}

static void mid_block_exit(void)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, T_CODE, mmio_start, mmio_end);
		CHECK_EQ(t_run(t), KVM_EXIT_MMIO);
		CHECK_EQ(t->run->mmio.phys_addr, 0xfee00030);
		struct kvm_regs r = t_regs(t);
		CHECK_EQ(r.rip, T_CODE + 5 + 3 + 3 + 5); /* at the read */
		CHECK_EQ(r.rax, 3);
		CHECK_EQ(r.rflags & 0x8d5, 0x44); /* CMP 3, 3: ZF PF */
		CHECK_EQ(t->ops->instructions(t->cpu), 4);
	}
	same_regs(&x, &i, "mmio", 0);
	CHECK_EQ(x.ops->native_instructions(x.cpu), 4);
	t_fini(&x);
	t_fini(&i);
}

static void mem_forms(void)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, T_CODE, memf_start, memf_end);
		t_gate(t, 13, T_CODE + (uint64_t)(memf_gp - memf_start), 0, 0);
		struct kvm_sregs sr;
		t->ops->get_sregs(t->cpu, &sr);
		sr.fs.base = MEMF_FS;
		t->ops->set_sregs(t->cpu, &sr);
		for (unsigned k = 0; k < 0x20; k++) /* what %fs:8(%rsi) and the first crossing read */
			t->ram[0x20100 + k] = (uint8_t)(0x11 * k + 3);
		t->ram[0x20ffc] = 0xa5;
		CHECK_EQ(t_run(t), KVM_EXIT_HLT);
		struct kvm_regs r = t_regs(t);
		CHECK_EQ(r.rbp, T_CODE + (uint64_t)(memf_fault - memf_start)); /* #GP at the access */
		CHECK_EQ(r.r15, 0);
		CHECK_EQ(r.r12, 0);       /* the instruction before it done */
		CHECK_EQ(r.rflags & 0x8d5, 0x55); /* and its flags (the #GP frame keeps them) */
		CHECK_EQ(r.r10, t_r64(t, 0x20108)); /* the FS base was added */
	}
	/* the translated run is the interpreter's: registers, count, memory (the SMC store included:
	 * the ADD ran with the new immediate 5 on both) */
	same_regs(&x, &i, "memory forms", 0);
	CHECK(!memcmp(x.ram + 0x20000, i.ram + 0x20000, 0x2000), "memory forms: the data pages differ");
	CHECK(!memcmp(x.ram + T_CODE, i.ram + T_CODE, (size_t)(memf_end - memf_start)),
	      "memory forms: the code differs");
	/* native: the 3 MOVs; per pass (3) the 15 memory and register forms whose access stays within
	 * its page (not the 3 crossing ones; the RIP-relative ADD included), JB, the ADD when JB is not
	 * taken (R14 times), JNZ; the RIP-relative LEA; after the SMC store (its slow path ends the
	 * block) ADD MOV MOV ADD; less the first store, a TLB miss (its slow path fills the entry for
	 * the rest) */
	CHECK(t_regs(&x).r14 == 1 || t_regs(&x).r14 == 2, "JB both taken and not (R14 %llu)", (unsigned long long)t_regs(&x).r14);
	CHECK_EQ(x.ops->native_instructions(x.cpu), 3 + 3 * 15 + 3 + t_regs(&x).r14 + 3 + 1 + 4 - 1 + 1);
	t_fini(&x);
	t_fini(&i);
}

static void stack_forms(void)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, T_CODE, stk_start, stk_end);
		CHECK_EQ(t_run(t), KVM_EXIT_HLT);
		struct kvm_regs r = t_regs(t);
		CHECK_EQ(r.rsp, 0x21004);
		CHECK_EQ(r.rax, 0x207f8);   /* PUSH RSP: RSP before the decrement */
		CHECK_EQ(r.rbx, 3 * 0x207f8 + 3 + 2 + 1);
		CHECK_EQ(r.rsi, r.rbx);     /* through the page crossing */
		CHECK_EQ(t_r64(t, 0x21000 - 4) & 0xffffffff, r.rbx & 0xffffffff);
	}
	same_regs(&x, &i, "stack forms", 0);
	CHECK(!memcmp(x.ram + 0x20000, i.ram + 0x20000, 0x2000), "stack forms: the data pages differ");
	/* native: the 2 MOVs, 8 per pass (3) less the first PUSH (a TLB miss: its slow path fills the
	 * entry), the MOV to RSP; not the crossing PUSH and POP */
	CHECK_EQ(x.ops->native_instructions(x.cpu), 2 + 3 * 8 - 1 + 1);
	t_fini(&x);
	t_fini(&i);
}

static void call_ret(void)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, T_CODE, cr_start, cr_end);
		t_gate(t, 13, T_CODE + (uint64_t)(cr_gp - cr_start), 0, 0);
		CHECK_EQ(t_run(t), KVM_EXIT_HLT);
		struct kvm_regs r = t_regs(t);
		CHECK_EQ(r.rax, 0x1234000000000000ull);
		CHECK_EQ(r.rbx, 3);
		CHECK_EQ(r.r11, 0x20800); /* after the LRETQ: RIP and CS popped */
		CHECK_EQ(r.r14, 0x08);    /* CS, as the LRETQ loaded it */
		CHECK_EQ(r.r15, 0);       /* #GP(0) */
		CHECK_EQ(r.rbp, T_CODE + (uint64_t)(cr_fault - cr_start));
		CHECK_EQ(r.r12, 0x207f8); /* RSP: the pushed value still on the stack */
		CHECK_EQ(t_r64(t, 0x20ffc), T_CODE + (uint64_t)(cr_back - cr_start)); /* the crossing CALL's */
	}
	same_regs(&x, &i, "call/ret", 0);
	CHECK(!memcmp(x.ram + 0x20000, i.ram + 0x20000, 0x2000), "call/ret: the data pages differ");
	/* native: MOV to RSP, the RIP-relative LEA, the second PUSH (the first misses the TLB: its
	 * slow path fills the entry), MOV MOV after the LRETQ (a handler: emu_h_lret); per pass (3) CALL
	 * ADD RET ADD DEC JNZ; MOV ADD after the crossing CALL (its RET crosses too: the handler); MOV
	 * MOV PUSH; the #GP handler's 5 POPs (the non-canonical RET: its handler) */
	CHECK_EQ(x.ops->native_instructions(x.cpu), 1 + 1 + 1 + 2 + 3 * 6 + 2 + 3 + 5);
	t_fini(&x);
	t_fini(&i);
}

/* single-step through the same guest: every native CALL and RET ends its step (emit_taken()'s stop
 * test, also after a RET whose target the jump cache knows from the pass before), the LRETQ and the
 * #GP delivery as in the interpreter */
/* Single-steps guest [start, end) with #GP's handler at gp on both back ends, comparing every
 * step; returns the number of steps (the last one is the exit that is not a #DB). */
static unsigned singlestep_both(const uint8_t *start, const uint8_t *end, const uint8_t *gp, const char *what)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP };
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, T_CODE, start, end);
		t_gate(t, 13, T_CODE + (uint64_t)(gp - start), 0, 0);
		CHECK_EQ(t->ops->set_guest_debug(t->cpu, &dbg), 0);
	}
	unsigned steps = 0;
	for (;;) {
		int ex = t_run(&x), ei = t_run(&i);
		CHECK_EQ(ex, ei);
		steps++;
		same_regs(&x, &i, what, steps);
		if (ex != KVM_EXIT_DEBUG || steps > 200)
			break;
	}
	t_fini(&x);
	t_fini(&i);
	return steps;
}

static void singlestep_call_ret(void)
{
	unsigned steps = singlestep_both(cr_start, cr_end, cr_gp, "single-step over CALL/RET");
	/* MOV MOV PUSH LEA PUSH LRETQ MOV MOV; 3 x (CALL ADD RET ADD DEC JNZ); MOV CALL ADD RET; MOV MOV
	 * PUSH; the RET's #GP (delivered: the step ends at the handler); 5 POPs; HLT (the exit) */
	CHECK_EQ(steps, 8 + 3 * 6 + 4 + 3 + 1 + 5 + 1);
}

/* the indirect branches run whole and single-stepped against the interpreter */
static void branch_ind(void)
{
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, T_CODE, ind_start, ind_end);
		t_gate(t, 13, T_CODE + (uint64_t)(ind_gp - ind_start), 0, 0);
		CHECK_EQ(t_run(t), KVM_EXIT_HLT);
		struct kvm_regs r = t_regs(t);
		CHECK_EQ(r.rbx, 3 * 2 * 2); /* two calls per pass */
		CHECK_EQ(r.rcx, 0);
		CHECK_EQ(r.r15, 0); /* #GP(0) */
		CHECK_EQ(r.rbp, T_CODE + (uint64_t)(ind_fault - ind_start));
		CHECK_EQ(r.r12, 0x20800); /* RSP: the faulting CALL pushed nothing */
	}
	same_regs(&x, &i, "indirect branches", 0);
	CHECK(!memcmp(x.ram + 0x20000, i.ram + 0x20000, 0x2000), "indirect branches: the data pages differ");
	/* native: MOV to RSP, the two RIP-relative LEAs and the store after the second (the store
	 * after the first misses the TLB: its slow path), MOV; per pass (3) CALL ADD RET CALL ADD RET
	 * MOV JMP DEC JNZ; LEA and JMP r64; LEA; the crossing slot's store and JMP: handlers; MOV MOV;
	 * the #GP handler's 5 POPs (the non-canonical CALL: its handler); the first pass's CALL r64 is
	 * the first block's */
	CHECK_EQ(x.ops->native_instructions(x.cpu), 5 + 3 * 10 + 2 + 1 + 2 + 5);
	t_fini(&x);
	t_fini(&i);

	unsigned steps = singlestep_both(ind_start, ind_end, ind_gp, "single-step over indirect branches");
	/* MOV LEA MOV LEA MOV MOV; 3 x 10; LEA JMP; LEA MOV JMP; MOV MOV; the CALL's #GP (delivered: the
	 * step ends at the handler); 5 POPs; HLT (the exit) */
	CHECK_EQ(steps, 6 + 3 * 10 + 2 + 3 + 2 + 1 + 5 + 1);
}

/* Kicks once the loop has run a few thousand instructions (the vCPU's count, read as the
 * statistics read it), or after 60 s: not after a fixed sleep, which a loaded host may spend before
 * the vCPU thread runs at all (the check below then saw 0 iterations). */
static void *kicker(void *arg)
{
	struct t_vm *t = arg;
	for (unsigned ms = 0; ms < 60000 && t->ops->instructions(t->cpu) < 3 * 2000; ms++)
		usleep(1000);
	t->ops->kick(t->cpu);
	return NULL;
}

static void kick_chained(void)
{
	struct t_vm x;
	vm_init(&x, 2);
	t_load(&x, T_CODE, spin_start, spin_end);
	pthread_t th;
	pthread_create(&th, NULL, kicker, &x);
	CHECK_EQ(x.ops->run(x.cpu), -EINTR);
	pthread_join(th, NULL);
	struct kvm_regs r = t_regs(&x);
	CHECK_EQ(r.rip, T_CODE);
	CHECK(r.rax > 1000, "the loop ran (%llu iterations)", (unsigned long long)r.rax);
	CHECK_EQ(x.ops->instructions(x.cpu), 3 * r.rax);
	CHECK_EQ(x.ops->native_instructions(x.cpu), 3 * r.rax);
	t_fini(&x);
}

/* NBLK blocks of `add $k, %eax; not %eax; jmp next`, run twice: more decoded blocks than the
 * 8 MiB decode arena holds (each takes 256 bytes there), so both caches flush and refill. */
#define NBLK 40000u
static uint32_t blk_imm(unsigned k) { return k * 2654435761u; }

static void refill(void)
{
	static uint8_t code[NBLK * 9 + 16];
	unsigned at = 0;
	code[at++] = 0xb9; /* mov $2, %ecx */
	memcpy(code + at, (uint32_t[]){ 2 }, 4);
	at += 4;
	unsigned top = at;
	for (unsigned k = 0; k < NBLK; k++) {
		code[at++] = 0x05; /* add $imm32, %eax */
		memcpy(code + at, (uint32_t[]){ blk_imm(k) }, 4);
		at += 4;
		code[at++] = 0xf7; /* not %eax */
		code[at++] = 0xd0;
		code[at++] = 0xeb; /* jmp .+2: a taken branch ends the block */
		code[at++] = 0x00;
	}
	code[at++] = 0xff; /* dec %ecx */
	code[at++] = 0xc9;
	code[at++] = 0x0f; /* jnz top */
	code[at++] = 0x85;
	memcpy(code + at, (int32_t[]){ (int32_t)top - (int32_t)(at + 4) }, 4);
	at += 4;
	code[at++] = 0xf4; /* hlt */
	uint32_t want = 0;
	for (int pass = 0; pass < 2; pass++)
		for (unsigned k = 0; k < NBLK; k++) {
			want = ~(want + blk_imm(k));
		}
	struct t_vm x;
	vm_init(&x, 2);
	t_load(&x, T_CODE, code, code + at);
	CHECK_EQ(t_run(&x), KVM_EXIT_HLT);
	struct kvm_regs r = t_regs(&x);
	CHECK_EQ(r.rax, want);
	CHECK_EQ(r.rcx, 0);
	CHECK_EQ(x.ops->instructions(x.cpu), 1 + 2 * (3 * NBLK + 2) + 1);
	CHECK_EQ(x.ops->native_instructions(x.cpu), 1 + 2 * (3 * NBLK + 2)); /* all but HLT */
	t_fini(&x);
}

/* A jump within its page keeps its chaining site across TLB flushes (emit_taken: same_page, the
 * code epoch), and must still go where the page is mapped now: the code at lin 0x500000 (PD[2], a
 * 2 MiB page) runs from frame F1, each time writing PD[2] and reloading CR3 before it jumps within
 * the page; the fourth time PD[2] points at frame F2, whose copy adds 100 instead of 1. By then the
 * jump's site is filled. MOV to CR3 is a block of its own (exec_mov.c: SEL_FIRST, EMU_SEL_END) and
 * flushes the TLB, so the jump after it is looked up with the new translation and runs from F2, in
 * both back ends: ebx = 3 * 1 + 3 * 100 (with TLB flushes leaving the jump cache valid: 6). */
GUEST(remap, ".code64",
	"mov %r10, %r11\n"
	"cmp $3, %ecx\n"
	"cmovae %r8, %r11\n"
	"mov %r11, (%r9)\n"
	"mov %cr3, %rax\n"
	"mov %rax, %cr3\n"
	"jmp 2f\n"
	".fill 32, 1, 0x90\n"
	"2: .byte 0x81, 0xc3\n"           /* add $imm32, %ebx */
	".globl remap_imm\nremap_imm: .long 1\n"
	"inc %ecx\n"
	"cmp $6, %ecx\n"
	"jne remap_start\n"
	"hlt\n");
extern const uint8_t remap_imm[];

/* A remap test's run (remap, strad): from rip with the page-table entry to write in r8, its address
 * in r9 (r10: remap's first entry), RCX and RBX 0, to HLT after six rounds that add up to 303. */
static void run_remap(struct t_vm *t, uint64_t rip, uint64_t r8, uint64_t r9, uint64_t r10)
{
	struct kvm_regs r = t_regs(t);
	r.rip = rip;
	r.r8 = r8;
	r.r9 = r9;
	r.r10 = r10;
	r.rcx = r.rbx = 0;
	t->ops->set_regs(t->cpu, &r);
	CHECK_EQ(t_run(t), KVM_EXIT_HLT);
	r = t_regs(t);
	CHECK_EQ(r.rbx, 303);
	CHECK_EQ(r.rcx, 6);
}

static void remap_same_page(void)
{
	const uint64_t f1 = 0x200000, f2 = 0, off = 0x100000, lin = 0x400000 + off;
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, f1 + off, remap_start, remap_end);
		t_load(t, f2 + off, remap_start, remap_end);
		uint32_t hundred = 100;
		memcpy(t->ram + f2 + off + (remap_imm - remap_start), &hundred, 4);
		t_w64(t, T_PD + 16, f1 | 0x87);
		run_remap(t, lin, f2 | 0x87, T_PD + 16, f1 | 0x87);
	}
	same_regs(&x, &i, "remap", 0);
	t_fini(&x);
	t_fini(&i);
}

/* An instruction that straddles two 4 KiB pages, run again after only its second linear page was
 * remapped (the first page unchanged): a CPU fetches the new bytes (SDM Vol. 3 4.10.4.1: MOV to CR3
 * invalidates the TLB entries), so a cached block found by its first page's guest-physical address
 * must not be used (QEMU's tb_htable_lookup compares the second page too), nor a chained direct
 * jump to it that the TLB flush left valid (same_page). Linear 0x400000 (PD[2] -> a page table at
 * 0x310000) maps X = 0x300000: this loop, and at 0x400ffe the bytes 81 c3 (ADD EBX, imm32); linear
 * 0x401000 maps Y1 = 0x301000 (imm32 1, then a jump back) for three rounds, Y2 = 0x302000 (imm32
 * 100) for three: EBX 303. */
GUEST(strad, ".code64",
	"1: cmp $3, %ecx\n"
	"jne 2f\n"
	"mov %r8, (%r9)\n"         /* round 3: PT[1] = Y2, and the TLB flushed */
	"mov %cr3, %rax\n"
	"mov %rax, %cr3\n"
	"2: jmp strad_add\n"       /* direct, within the page: its site (same_page) chains by round 2 */
	".globl strad_back\nstrad_back: inc %ecx\n"
	"cmp $6, %ecx\n"
	"jne 1b\n"
	"hlt\n"
	".fill 0xffe - (. - strad_start), 1, 0xcc\n"
	"strad_add: .byte 0x81, 0xc3\n"); /* ADD EBX, imm32: the imm32 in the next page */
extern const uint8_t strad_back[];

static void remap_straddle(void)
{
	const uint64_t x0 = 0x300000, y1 = 0x301000, y2 = 0x302000, pt = 0x310000, lin = 0x400000;
	struct t_vm x, i;
	vm_init(&x, 2);
	vm_init(&i, 0);
	for (struct t_vm *t = &x; t; t = t == &x ? &i : NULL) {
		t_load(t, x0, strad_start, strad_end);
		CHECK_EQ(strad_end - strad_start, 0x1000);
		const uint64_t yy[2] = { y1, y2 };
		for (unsigned q = 0; q < 2; q++) {
			uint8_t *p = t->ram + yy[q];
			uint32_t imm = q ? 100 : 1;
			uint64_t back = lin + (uint64_t)(strad_back - strad_start);
			memcpy(p, &imm, 4);
			p[4] = 0x48; /* mov $back, %rax */
			p[5] = 0xb8;
			memcpy(p + 6, &back, 8);
			p[14] = 0xff; /* jmp *%rax */
			p[15] = 0xe0;
		}
		t_w64(t, pt, x0 | 7);
		t_w64(t, pt + 8, y1 | 7);
		t_w64(t, T_PD + 16, pt | 7);
		run_remap(t, lin, y2 | 7, pt + 8, 0);
	}
	same_regs(&x, &i, "remap straddle", 0);
	t_fini(&x);
	t_fini(&i);
}

int main(void)
{
	remap_same_page();
	remap_straddle();
	singlestep();
	singlestep_jmp();
	whole();
	mid_block_exit();
	mem_forms();
	stack_forms();
	call_ret();
	singlestep_call_ret();
	branch_ind();
	kick_chained();
	refill();
	return t_result("emu_xlate");
}
