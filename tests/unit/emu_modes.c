/* SPDX-License-Identifier: MIT */
/*
 * emu engine modes and paging: the 32 -> 64-bit switch as a PVH guest does it (CR4.PAE, CR3,
 * EFER.LME, CR0.PG -> EFER.LMA, far jump to a 64-bit code segment), a 1 GiB page with its accessed
 * and dirty bits, KVM_GET_MSRS reading the GS bases the guest set with WRMSR and swapped with SWAPGS, #PF delivered through a 64-bit IDT gate with the architectural error code and CR2
 * (not present, NX, WP, U/S from CPL 3 after IRETQ), and a triple fault -> KVM_EXIT_SHUTDOWN.
 */
#include "emu_harness.h"

GUEST(pvh, ".code32",
	"mov $0x20, %eax\n"
	"mov %eax, %cr4\n"                       /* PAE */
	"mov $0x1000, %eax\n"
	"mov %eax, %cr3\n"
	"mov $0xc0000080, %ecx\n"
	"rdmsr\n"
	"or $0x100, %eax\n"                      /* EFER.LME */
	"wrmsr\n"
	"mov %cr0, %eax\n"
	"or $0x80000000, %eax\n"
	"mov %eax, %cr0\n"                       /* PG: LMA, compatibility mode */
	"mov %ebx, %edi\n"                       /* PVH start info pointer survives */
	"ljmp $0x08, $" GADDR(pvh, pvh64) "\n"
	".code64\n"
	"pvh64:\n"
	"mov $0x10, %eax\n"
	"mov %eax, %ds\n"
	"movabs $0x123456789abcdef0, %r15\n"
	"mov %r15, 0x100000\n"
	"hlt\n");

GUEST(gib, ".code64",
	"movabs $0x40100000, %rsi\n"             /* linear 1 GiB + 1 MiB: PDPT[1] -> phys 0 */
	"movq $0x5a5a, (%rsi)\n"
	"mov (%rsi), %rax\n"
	"hlt\n");

/* IA32_GS_BASE <- 0x1111000, IA32_KERNEL_GS_BASE <- 0x2222000, then SWAPGS exchanges them. */
GUEST(gsbase, ".code64",
	"mov $0xc0000101, %ecx\n" "mov $0x1111000, %eax\n" "xor %edx, %edx\n" "wrmsr\n"
	"mov $0xc0000102, %ecx\n" "mov $0x2222000, %eax\n" "wrmsr\n"
	"swapgs\n"
	"hlt\n");

/* #PF handler: error code -> r12, CR2 -> r13, saved CS -> r14, then HLT */
GUEST(pf, ".code64",
	"jmp pf_body\n"
	"pf_handler:\n"
	"pop %r12\n"
	"mov %cr2, %r13\n"
	"mov 8(%rsp), %r14\n"
	"hlt\n"
	"pf_body:\n"
	"cmp $1, %r8\n" "je pf_read\n"
	"cmp $2, %r8\n" "je pf_exec\n"
	"cmp $3, %r8\n" "je pf_write\n"
	/* 4: drop to CPL 3 with IRETQ, then read a supervisor page */
	"pushq $0x23\n"                          /* SS: data dpl3 | 3 */
	"pushq $0x70000\n"                       /* RSP */
	"pushq $2\n"                             /* RFLAGS */
	"pushq $0x2b\n"                          /* CS: code64 dpl3 | 3 */
	"pushq $" GADDR(pf, pf_read) "\n"
	"iretq\n"
	"pf_read: mov 0x200010, %rax\n" "hlt\n"
	"pf_exec: mov $0x200000, %eax\n" "jmp *%rax\n"
	"pf_write: movq $1, 0x200008\n" "hlt\n");

GUEST(triple, ".code64", "ud2\n");

/* 32-bit code in a segment whose base is not 0 (SDM Vol. 3 3.4.3: linear = CS.base + EIP): EIP
 * values seen by the code (CALL's return address) are offsets; fetches, taken branches and the
 * loop's block lookups use CS.base + EIP. */
GUEST(csbase, ".code32",
	"call 1f\n"
	"1: pop %eax\n"                          /* EIP of 1: (an offset, not linear) */
	"mov $5, %ecx\n"
	"xor %edx, %edx\n"
	"2: add %ecx, %edx\n"
	"dec %ecx\n"
	"jnz 2b\n"                               /* taken 4 times: branch_to and the jump cache */
	"jmp 3f\n"
	".fill 5000, 1, 0xcc\n"                  /* int3: executed if the jump lands at the wrong place */
	"3: mov $0x1234, %ebx\n"                 /* on the next page */
	"hlt\n");

static void pf_case(int kind, uint64_t pde1, uint64_t want_err, uint64_t want_cr2, uint64_t want_cs)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, pf_start, pf_end);
	t_w64(&t, T_PD + 8, pde1);
	t_gate(&t, 14, T_CODE + 2, 0, 0); /* pf_handler follows the 2-byte jmp */
	struct kvm_regs r = t_regs(&t);
	r.r8 = (uint64_t)kind;
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	r = t_regs(&t);
	CHECK(r.r12 == want_err, "case %d: error code 0x%llx, want 0x%llx", kind, (unsigned long long)r.r12,
	      (unsigned long long)want_err);
	CHECK(r.r13 == want_cr2, "case %d: cr2 0x%llx, want 0x%llx", kind, (unsigned long long)r.r13,
	      (unsigned long long)want_cr2);
	CHECK(r.r14 == want_cs, "case %d: saved cs 0x%llx", kind, (unsigned long long)r.r14);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	CHECK_EQ(s.cr2, want_cr2);
	if (kind == 4)
		CHECK_EQ(r.rsp, T_STACK - 5 * 8); /* stack switched to TSS.RSP0, error code popped */
	t_fini(&t);
}

int main(void)
{
	struct t_vm t;
	struct kvm_sregs s;

	/* 32 -> 64 */
	t_init(&t);
	t_prot32(&t);
	t_load(&t, T_CODE, pvh_start, pvh_end);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	struct kvm_regs r = t_regs(&t);
	CHECK_EQ(r.r15, 0x123456789abcdef0ull);
	CHECK_EQ(r.rdi, 0x6000);
	CHECK_EQ(t_r64(&t, 0x100000), 0x123456789abcdef0ull);
	t.ops->get_sregs(t.cpu, &s);
	CHECK_EQ(s.efer & 0x500, 0x500);
	CHECK_EQ(s.cs.l, 1);
	CHECK_EQ(s.cs.selector, 0x08);
	CHECK_EQ(s.ds.selector, 0x10);
	t_fini(&t);

	/* 32-bit code with CS.base = 0x3000: RIP (EIP) is T_CODE - 0x3000 */
	t_init(&t);
	t_prot32(&t);
	t_load(&t, T_CODE, csbase_start, csbase_end);
	t.ops->get_sregs(t.cpu, &s);
	s.cs.base = 0x3000;
	t.ops->set_sregs(t.cpu, &s);
	{
		struct kvm_regs rr = t_regs(&t);
		rr.rip = T_CODE - 0x3000;
		t.ops->set_regs(t.cpu, &rr);
	}
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	r = t_regs(&t);
	CHECK_EQ(r.rax, T_CODE - 0x3000 + 5);  /* the return address CALL pushed: an EIP */
	CHECK_EQ(r.rdx, 15);                   /* 5 + 4 + 3 + 2 + 1 */
	CHECK_EQ(r.rbx, 0x1234);
	CHECK_EQ(r.rip, (uint64_t)(T_CODE - 0x3000 + (csbase_end - csbase_start))); /* after HLT */
	t_fini(&t);

	/* 1 GiB page */
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, gib_start, gib_end);
	t_w64(&t, T_PDPT + 8, 0x83); /* 1 GiB page, RW, at phys 0, A and D clear */
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_regs(&t).rax, 0x5a5a);
	CHECK_EQ(t_r64(&t, 0x100000), 0x5a5a);
	CHECK_EQ(t_r64(&t, T_PDPT + 8), 0x83 | 0x20 | 0x40); /* accessed and dirty set */
	t_fini(&t);

	/* KVM_GET_MSRS: the values after SWAPGS (SDM Vol. 2B SWAPGS), in the caller's order; the count
	 * stops at the first MSR the vCPU does not have (0x12345678), as KVM's msr_io(). */
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, gsbase_start, gsbase_end);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	{
		struct { struct kvm_msrs h; struct kvm_msr_entry e[3]; } m = { .h.nmsrs = 3 };
		m.e[0].index = 0xc0000102; /* IA32_KERNEL_GS_BASE */
		m.e[1].index = 0xc0000101; /* IA32_GS_BASE */
		m.e[2].index = 0x12345678;
		CHECK_EQ(t.ops->get_msrs(t.cpu, &m.h), 2);
		CHECK_EQ(m.e[0].data, 0x1111000);
		CHECK_EQ(m.e[1].data, 0x2222000);
	}
	t_fini(&t);

	/* #PF: not present (read), NX (fetch), WP (supervisor write to read-only), U/S (CPL 3) */
	pf_case(1, 0, 0x0, 0x200010, 0x08);
	pf_case(2, 0x200000 | 0x87 | (1ull << 63), 0x11, 0x200000, 0x08);
	pf_case(3, 0x200000 | 0x85, 0x3, 0x200008, 0x08);
	pf_case(4, 0x200000 | 0x83, 0x5, 0x200010, 0x2b);

	/* triple fault: #UD with an empty IDT -> #GP -> #DF -> shutdown */
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, triple_start, triple_end);
	t.ops->get_sregs(t.cpu, &s);
	s.idt.limit = 0;
	t.ops->set_sregs(t.cpu, &s);
	CHECK_EQ(t_run(&t), KVM_EXIT_SHUTDOWN);
	t_fini(&t);

	return t_result("emu_modes");
}
