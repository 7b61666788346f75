/* SPDX-License-Identifier: MIT */
/*
 * The guest's own bus-lock detection, as KVM exposes it (issue 13; Intel flavour): OS bus-lock
 * detection, SDM Vol. 3B 18.3.1.6, one test per sentence of the model:
 *  - enumerated by CPUID.(EAX=7,ECX=0):ECX[24] (BUS_LOCK_DETECT) under --cpu=intel, not under amd;
 *  - enabled by IA32_DEBUGCTL bit 2; a bit that is not modelled (or BLD where not enumerated) #GPs,
 *    as KVM refuses bits outside vmx_get_supported_debugctl();
 *  - DEBUGCTL.BLD = 0: a split lock at CPL 3 raises nothing;
 *  - BLD = 1: a split lock at CPL 3 is followed by a #DB TRAP (RIP after the instruction, its effect
 *    done) with DR6.BLD (bit 11) CLEARED and DR6.BS clear; at CPL 0 nothing; an aligned lock
 *    nothing; a UC lock... (not here: the census covers UC detection);
 *  - with TF set on the same instruction: ONE #DB with both conditions (BS set, BLD cleared);
 *  - DR6.BLD is writable where the feature exists (MOV to DR6 of 0 reads back 0xffff07f0), fixed
 *    at 1 where not (0xffff0ff0), as KVM's kvm_dr6_fixed();
 *  - with the bus-lock VM exit on as well: the exit reaches the monitor first (the guest's #DB
 *    handler has not run, RIP after the instruction), the #DB is delivered at the next KVM_RUN.
 * Oracle: the SDM's sentences and what the guest's own handler records (DR6, saved RIP, count).
 */
#include "buslock_harness.h"

/* SDM Vol. 3 17.2.3 (DR6) and Table 6-1 (vectors): the test's own copies */
#define DB_VECTOR 1
#define DR6_BLD (1ull << 11)
#define DR6_BS (1ull << 14)

/* CPL-0 prologue: RAX = DEBUGCTL value to write (skipped when RSI = 0), then IRETQ to user code at
 * user_code with RFLAGS = RDX (IOPL 3 so that the user code may OUT to end). Data at RDI:
 *   0x3e  the split operand, 0x80 an aligned operand,
 *   0x200 #DB count, 0x208 DR6 at the #DB, 0x210 saved RIP, 0x218 saved CS,
 * A #GP (a refused WRMSR) has no gate: the guest triple-faults, KVM_EXIT_SHUTDOWN. */
GUEST(bld, ".code64",
	"test %rsi, %rsi\n"
	"jz 1f\n"
	"mov $0x1d9, %ecx\n"
	"xor %edx, %edx\n"
	"wrmsr\n"
	"1:\n"
	"test %r8, %r8\n"                        /* R8 != 0: stay at CPL 0 */
	"jnz bld_user\n"
	"push $0x23\n"                           /* SS: data dpl3 */
	"push $0x70000\n"                        /* user RSP */
	"push %r9\n"                             /* RFLAGS */
	"push $0x2b\n"                           /* CS: code64 dpl3 */
	"lea bld_user(%rip), %rax\n"
	"push %rax\n"
	"iretq\n"
	".globl bld_user\nbld_user:\n"
	"test %r10, %r10\n"
	"jnz 2f\n"
	"test %r11, %r11\n"                     /* R11 != 0: TF on for the locked instruction */
	"jz 4f\n"
	"pushf\n"
	"orl $0x100, (%rsp)\n"
	"popf\n"                                /* the trap follows the NEXT instruction */
	"4:\n"
	".globl bld_lock\nbld_lock:\n"
	"lock incl 0x3e(%rdi)\n"                 /* split: bytes 0x3e..0x41 */
	".globl bld_after\nbld_after:\n"
	"jmp 3f\n"
	"2:\n"
	"lock incl 0x80(%rdi)\n"                 /* aligned: no bus lock */
	"3:\n"
	"mov $0x3f8, %dx\n"
	"out %al, %dx\n"                         /* the end: an IO exit */
	"hlt\n"
	".globl bld_db\nbld_db:\n"               /* #DB: record DR6, RIP, CS; reset DR6; clear TF */
	"incl 0x200(%rdi)\n"
	"mov %dr6, %rax\n"
	"mov %rax, 0x208(%rdi)\n"
	"mov (%rsp), %rax\n"
	"mov %rax, 0x210(%rdi)\n"
	"mov 8(%rsp), %rax\n"
	"mov %rax, 0x218(%rdi)\n"
	"mov $0xffff0ff0, %eax\n"
	"mov %rax, %dr6\n"
	"andl $~0x100, 16(%rsp)\n"
	"iretq\n");
extern const uint8_t bld_lock[], bld_after[], bld_db[], bld_user[];

#define GA(sym) (T_CODE + (uint64_t)((sym) - bld_start))

struct outcome { int exit; unsigned db; uint64_t dr6, rip, cs; uint32_t split; };

/* debugctl < 0: no WRMSR. cpl0: the lock runs at CPL 0. aligned: the aligned lock instead. */
static struct outcome run_case(int amd, int how, long long debugctl, int cpl0, int aligned, int tf,
			       unsigned *exits33)
{
	struct t_vm t;
	bl_init(&t, amd, how);
	bl_start(&t, bld_start, bld_end, B_DATA);
	t_gate(&t, DB_VECTOR, GA(bld_db), 0, 0);
	struct kvm_regs r = t_regs(&t);
	r.rsi = debugctl >= 0;
	r.rax = debugctl >= 0 ? (uint64_t)debugctl : 0;
	r.r8 = cpl0;
	r.r9 = 0x3002; /* IOPL 3 */
	r.r10 = aligned;
	r.r11 = tf;
	t.ops->set_regs(t.cpu, &r);
	struct outcome o = { 0 };
	unsigned flags = 0;
	*exits33 = 0;
	o.exit = bl_run_counting(&t, exits33, &flags);
	o.db = t_r32(&t, B_DATA + 0x200);
	o.dr6 = t_r64(&t, B_DATA + 0x208);
	o.rip = t_r64(&t, B_DATA + 0x210);
	o.cs = t_r64(&t, B_DATA + 0x218);
	o.split = t_r32(&t, B_DATA + 0x3e);
	t_fini(&t);
	return o;
}

static void test_cpuid(void)
{
	for (int amd = 0; amd < 2; amd++) {
		struct t_vm t;
		bl_init(&t, amd, BL_OFF);
		GUEST(cpuid7, ".code64", "mov $7, %eax\nxor %ecx, %ecx\ncpuid\nmov $0x3f8, %dx\nout %al, %dx\nhlt\n");
		bl_start(&t, cpuid7_start, cpuid7_end, B_DATA);
		CHECK_EQ(t_run(&t), KVM_EXIT_IO);
		struct kvm_regs r = t_regs(&t);
		CHECK_EQ((r.rcx >> 24) & 1, (uint64_t)!amd);
		t_fini(&t);
	}
}

static void test_debugctl_bits(void)
{
	/* #GP for what is not modelled: a #GP makes the guest triple-fault here (no #GP gate), so the
	 * outcome is SHUTDOWN; a good write runs on to the IO exit. */
	unsigned e;
	CHECK_EQ(run_case(0, BL_OFF, 4, 1, 1, 0, &e).exit, KVM_EXIT_IO);       /* BLD: fine on Intel */
	CHECK_EQ(run_case(0, BL_OFF, 1, 1, 1, 0, &e).exit, KVM_EXIT_SHUTDOWN); /* LBR: not modelled */
	CHECK_EQ(run_case(0, BL_OFF, 2, 1, 1, 0, &e).exit, KVM_EXIT_SHUTDOWN); /* BTF: not modelled */
	CHECK_EQ(run_case(1, BL_OFF, 4, 1, 1, 0, &e).exit, KVM_EXIT_SHUTDOWN); /* BLD: not on AMD */
}

static void test_traps(void)
{
	unsigned e;
	/* BLD off: nothing */
	struct outcome o = run_case(0, BL_OFF, 0, 0, 0, 0, &e);
	CHECK_EQ(o.exit, KVM_EXIT_IO);
	CHECK_EQ(o.db, 0);
	CHECK_EQ(o.split, 1);
	/* BLD on, CPL 3, split: one #DB trap after the instruction, DR6.BLD cleared, BS clear */
	o = run_case(0, BL_OFF, 4, 0, 0, 0, &e);
	CHECK_EQ(o.exit, KVM_EXIT_IO);
	CHECK_EQ(o.db, 1);
	CHECK_EQ(o.split, 1);
	CHECK_EQ(o.rip, GA(bld_after));
	CHECK_EQ(o.cs, 0x2b);
	CHECK_EQ(o.dr6 & DR6_BLD, 0);
	CHECK_EQ(o.dr6 & DR6_BS, 0);
	CHECK_EQ(o.dr6 | DR6_BLD, 0xffff0ff0);
	/* CPL 0: nothing (the detection is for CPL > 0) */
	o = run_case(0, BL_OFF, 4, 1, 0, 0, &e);
	CHECK_EQ(o.db, 0);
	CHECK_EQ(o.split, 1);
	/* an aligned lock is no bus lock */
	o = run_case(0, BL_OFF, 4, 0, 1, 0, &e);
	CHECK_EQ(o.db, 0);
	/* TF on the same instruction: ONE #DB, BS and BLD both reported */
	o = run_case(0, BL_OFF, 4, 0, 0, 1, &e);
	CHECK_EQ(o.exit, KVM_EXIT_IO);
	CHECK_EQ(o.db, 1);
	CHECK_EQ(o.rip, GA(bld_after));
	CHECK_EQ(o.dr6 & DR6_BLD, 0);
	CHECK_EQ(o.dr6 & DR6_BS, DR6_BS);
	/* TF alone (BLD off): the single-step #DB, BLD stays 1 */
	o = run_case(0, BL_OFF, 0, 0, 0, 1, &e);
	CHECK_EQ(o.db, 1);
	CHECK_EQ(o.rip, GA(bld_after));
	CHECK_EQ(o.dr6 & DR6_BLD, DR6_BLD);
	CHECK_EQ(o.dr6 & DR6_BS, DR6_BS);
}

/* Both layers: the monitor's VM exit first, then the guest's #DB at the next KVM_RUN. */
static void test_with_vm_exit(void)
{
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, bld_start, bld_end, B_DATA);
	t_gate(&t, DB_VECTOR, GA(bld_db), 0, 0);
	struct kvm_regs r = t_regs(&t);
	r.rsi = 1;
	r.rax = 4;
	r.r9 = 0x3002;
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_X86_BUS_LOCK);
	CHECK(t.run->flags & KVM_RUN_X86_BUS_LOCK, "flag on the exit");
	CHECK_EQ(t_regs(&t).rip, GA(bld_after));  /* trap-like exit */
	CHECK_EQ(t_r32(&t, B_DATA + 0x200), 0);   /* the guest's #DB has not been delivered yet */
	CHECK_EQ(t_r32(&t, B_DATA + 0x3e), 1);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);          /* the #DB, then the rest of the guest */
	CHECK_EQ(t_r32(&t, B_DATA + 0x200), 1);
	CHECK_EQ(t_r64(&t, B_DATA + 0x210), GA(bld_after));
	CHECK_EQ(t_r64(&t, B_DATA + 0x208) & DR6_BLD, 0);
	t_fini(&t);
}

/* DR6.BLD writable with the feature, fixed at 1 without it (KVM's kvm_dr6_fixed()). */
static void test_dr6_write(void)
{
	GUEST(dr6w, ".code64", "xor %eax, %eax\nmov %rax, %dr6\nmov %dr6, %rbx\nmov $0x3f8, %dx\nout %al, %dx\nhlt\n");
	for (int amd = 0; amd < 2; amd++) {
		struct t_vm t;
		bl_init(&t, amd, BL_OFF);
		bl_start(&t, dr6w_start, dr6w_end, B_DATA);
		CHECK_EQ(t_run(&t), KVM_EXIT_IO);
		CHECK_EQ(t_regs(&t).rbx, amd ? 0xffff0ff0ull : 0xffff07f0ull);
		t_fini(&t);
	}
}

int main(void)
{
	test_cpuid();
	test_debugctl_bits();
	test_traps();
	test_with_vm_exit();
	test_dr6_write();
	return t_result("buslock_guest_db");
}
