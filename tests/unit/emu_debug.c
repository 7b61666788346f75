/* SPDX-License-Identifier: MIT */
/*
 * Debug exceptions (SDM Vol. 3 17.2.3 "Debug Status Register (DR6)", 17.3.1.4 "Single-Step
 * Exception Condition"), as KVM delivers them (kvm_deliver_exception_payload(), the contract the
 * emu engine keeps): DR6 at each #DB is the previous DR6 with B0-B3 cleared, the active-low bits
 * (BLD 11, RTM 16) set to 1 and the condition's bit set. The cases are kvm-unit-tests x86/debug.c's
 * (whose expected values they are):
 *   step   TF set by POPF traps after the next instruction (the one-instruction delay), then after
 *          each one, the POPF that clears TF included: three #DBs at start, start + 1, start + 2,
 *          each with DR6 = FFFF4FF0H, after the guest wrote 0 to DR6 (FFFF07F0H on the Intel model:
 *          BLD is writable where OS bus-lock detection is exposed, as KVM's kvm_dr6_fixed());
 *   int1   INT1 (F1): a trap-like #DB with no condition bit, DR6 = FFFF0FF0H after DR6 = 0;
 *   hw_bp  an instruction breakpoint in DR2 enabled by DR7.G2 (17.3.1.1): a #DB fault before the
 *          instruction (the pushed RIP is its address), DR6 = FFFF0FF4H; the handler sets RF in the
 *          image, so the instruction then runs once (one #DB); with DR6.BS and B1 set by software
 *          before, the next hit reports FFFF4FF4H (B1 cleared, BS kept);
 *   movss  TF set by POPF, then MOV SS: MOV SS blocks its own single-step trap (SDM Vol. 3 6.8.3),
 *          so the #DBs come after the instruction after it and then as in "step";
 *   gd     DR7.GD = 1 (17.2.4): MOV to DR6 is a #DB fault at the MOV, DR6 = FFFF2FF0H (BD), DR7.GD
 *          cleared, and the MOV runs when the handler returns.
 */
#include "emu_harness.h"

#define REC 0x100000ull /* per #DB: the pushed RIP, DR6 */

GUEST(dbg, ".code64",
	"mov $0x100000, %r15\n"
	"xor %eax, %eax\n mov %rax, %dr6\n mov %dr6, %r13\n"
	"pushf\n pop %rax\n or $0x100, %rax\n push %rax\n popf\n and $~0x100, %rax\n"
	"1: push %rax\n popf\n lea 1b(%rip), %rbx\n"
	"xor %eax, %eax\n mov %rax, %dr6\n"
	".byte 0xf1\n"
	"2: lea 2b(%rip), %rcx\n"
	"lea 3f(%rip), %rax\n mov %rax, %dr2\n mov $0x420, %eax\n mov %rax, %dr7\n" /* G2, R/W2 = 00 */
	"3: nop\n"
	"mov $0x4002, %eax\n mov %rax, %dr6\n"
	"lea 4f(%rip), %rax\n mov %rax, %dr2\n"
	"4: nop\n"
	"mov $0x400, %eax\n mov %rax, %dr7\n"
	"lea 3b(%rip), %rdx\n lea 4b(%rip), %rsi\n"
	"xor %eax, %eax\n mov %rax, %dr6\n"
	"pushf\n pop %rax\n or $0x100, %rax\n push %rax\n mov %ss, %r8w\n popf\n mov %r8w, %ss\n"
	"and $~0x100, %rax\n"
	"6: push %rax\n popf\n lea 6b(%rip), %rdi\n"
	"xor %eax, %eax\n mov %rax, %dr6\n mov $0x2400, %eax\n mov %rax, %dr7\n"
	"7: mov %rax, %dr6\n"
	"lea 7b(%rip), %rbp\n mov %dr7, %r9\n mov %dr6, %r10\n"
	"hlt\n"
	".fill 0x100 - (. - dbg_start), 1, 0x90\n"
	/* #DB handler: record the pushed RIP and DR6; RF in the image for a breakpoint (B0-B3) */
	"mov (%rsp), %r14\n mov %r14, (%r15)\n mov %dr6, %r14\n mov %r14, 8(%r15)\n add $16, %r15\n"
	"test $0xf, %r14b\n jz 5f\n orl $0x10000, 16(%rsp)\n"
	"5: iretq\n");

int main(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_gate(&t, 1, T_CODE + 0x100, 0, 0);
	t_load(&t, T_CODE, dbg_start, dbg_end);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	struct kvm_regs r = t_regs(&t);
	CHECK_EQ(r.r13, 0xffff07f0);         /* DR6 after MOV DR6, 0: BLD writable (Intel model) */
	CHECK_EQ(r.r15, REC + 10 * 16);      /* 3 single steps, INT1, 2 breakpoints, 3 single steps, GD */
	uint64_t start = r.rbx;
	for (unsigned k = 0; k < 3; k++) {
		CHECK(t_r64(&t, REC + 16 * k) == start + k, "step %u: #DB at 0x%llx, want 0x%llx", k,
		      (unsigned long long)t_r64(&t, REC + 16 * k), (unsigned long long)(start + k));
		CHECK(t_r64(&t, REC + 16 * k + 8) == 0xffff4ff0, "step %u: DR6 0x%llx, want 0xffff4ff0", k,
		      (unsigned long long)t_r64(&t, REC + 16 * k + 8));
	}
	CHECK_EQ(t_r64(&t, REC + 48), r.rcx);      /* INT1: trap-like, after F1 */
	CHECK_EQ(t_r64(&t, REC + 56), 0xffff0ff0); /* no condition bit; BLD and RTM back to 1 */
	CHECK_EQ(t_r64(&t, REC + 64), r.rdx);      /* DR2: a fault, before the instruction */
	CHECK_EQ(t_r64(&t, REC + 72), 0xffff0ff4); /* B2 */
	CHECK_EQ(t_r64(&t, REC + 80), r.rsi);
	CHECK_EQ(t_r64(&t, REC + 88), 0xffff4ff4); /* B2, B1 cleared, BS kept */
	for (unsigned k = 0; k < 3; k++) {
		CHECK(t_r64(&t, REC + 96 + 16 * k) == r.rdi + k, "movss %u: #DB at 0x%llx, want 0x%llx", k,
		      (unsigned long long)t_r64(&t, REC + 96 + 16 * k), (unsigned long long)(r.rdi + k));
		CHECK_EQ(t_r64(&t, REC + 104 + 16 * k), 0xffff4ff0);
	}
	CHECK_EQ(t_r64(&t, REC + 144), r.rbp);     /* GD: a fault at the MOV */
	CHECK_EQ(t_r64(&t, REC + 152), 0xffff2ff0); /* BD */
	CHECK_EQ(r.r9, 0x400);                     /* GD cleared */
	CHECK_EQ(r.r10, 0xffff27f0);               /* the MOV ran after: DR6 = 2400H and the fixed bits */
	t_fini(&t);
	return t_result("emu_debug");
}
