/* SPDX-License-Identifier: MIT */
/*
 * UMIP against the manuals' sentences (kvm-unit-tests x86/umip.c checks the same under QEMU TCG,
 * tests/sh/kvm-unit-tests.sh):
 *   - SDM Vol. 3 2.5, CR4.UMIP (bit 11): "the SGDT, SIDT, SLDT, SMSW, and STR instructions cannot be
 *     executed if CPL > 0"; Vol. 2, each of them: #GP(0) "If CR4.UMIP = 1 and CPL > 0", so the
 *     memory operand is not written;
 *   - at CPL 0 with UMIP, and at CPL 3 without it, they run;
 *   - CPUID.(EAX=07H,ECX=0H):ECX[2] UMIP advertised, and MOV to CR4 accepts the bit.
 */
#include "emu_harness.h"

#define RES 0x100000ull /* per event: vector, error code (or ~0), RIP */
#define OUT 0x100800ull
#define USR 0x200000ull
#define USR_AT (USR + 0x1000)

/* The five instructions, with a register and a memory destination where they have one. Results at
 * %rsi: SGDT at 0, SIDT at 16, SLDT/SMSW/STR m16 at 32, 34, 36; registers (RBX: the handler keeps it) into 40.. (8 bytes each). */
#define FIVE                                                                                   \
	"mov $-1, %rax\n mov %rax, 0(%rsi)\n mov %rax, 8(%rsi)\n mov %rax, 16(%rsi)\n"           \
	"mov %rax, 24(%rsi)\n mov %rax, 32(%rsi)\n"                                              \
	"lea 1f(%rip), %r15\n sgdt 0(%rsi)\n"                                                    \
	"1: lea 1f(%rip), %r15\n sidt 16(%rsi)\n"                                                \
	"1: lea 1f(%rip), %r15\n sldt 32(%rsi)\n"                                                \
	"1: lea 1f(%rip), %r15\n smsw 34(%rsi)\n"                                                \
	"1: lea 1f(%rip), %r15\n str 36(%rsi)\n"                                                 \
	"1: lea 1f(%rip), %r15\n mov $-1, %rbx\n sldt %rbx\n"                                    \
	"1: mov %rbx, 40(%rsi)\n lea 1f(%rip), %r15\n mov $-1, %rbx\n smsw %rbx\n"               \
	"1: mov %rbx, 48(%rsi)\n lea 1f(%rip), %r15\n mov $-1, %rbx\n str %rbx\n"                \
	"1: mov %rbx, 56(%rsi)\n"

/* r15: where the handler resumes, r14 the RSP it resumes with; rdi: the next result slot */
GUEST(um, ".code64",
	"mov $0x100000, %edi\n"
	"mov %rsp, %r14\n"
	"mov $7, %eax\n xor %ecx, %ecx\n cpuid\n mov %ecx, 0x100800\n"
	"mov $0x200100, %esi\n" FIVE                           /* CPL 0, UMIP = 0 */
	"mov %cr4, %rax\n bts $11, %rax\n mov %rax, %cr4\n"
	"mov $0x200200, %esi\n" FIVE                           /* CPL 0, UMIP = 1 */
	"mov %cr4, %rax\n btr $11, %rax\n mov %rax, %cr4\n"
	"mov $0x2b, %eax\n mov %rax, 0x100808\n"               /* first to CPL 3 with UMIP = 0 */
	"2: mov %r14, %rsp\n"
	"push $0x23\n"                                         /* to CPL 3 at USR_AT */
	"push $0x203000\n"
	"push $0x3002\n"
	"push 0x100808\n"
	"push $0x201000\n"
	"iretq\n"
	".globl um_back\n"
	"um_back:\n"                                           /* INT 0x20 from CPL 3 */
	"mov %r14, %rsp\n"
	"cmpq $0, 0x100810\n"
	"jne 3f\n"
	"movq $1, 0x100810\n"
	"mov %cr4, %rax\n bts $11, %rax\n mov %rax, %cr4\n"    /* then with UMIP = 1 */
	"jmp 2b\n"
	"3: mov $0x3f8, %dx\n out %al, %dx\n hlt\n"
	".globl um_noerr\n"
	"um_noerr:\n"
	"mov %rax, (%rdi)\n"
	"movq $-1, 8(%rdi)\n"
	"mov (%rsp), %rax\n"
	"mov %rax, 16(%rdi)\n"
	"mov %r15, (%rsp)\n"
	"add $24, %rdi\n"
	"iretq\n"
	".globl um_err\n"
	"um_err:\n"
	"mov %rax, (%rdi)\n"
	"pop %rax\n"
	"mov %rax, 8(%rdi)\n"
	"mov (%rsp), %rax\n"
	"mov %rax, 16(%rdi)\n"
	"mov %r15, (%rsp)\n"
	"add $24, %rdi\n"
	"iretq\n"
	".globl um_stubs\n"
	"um_stubs:\n"
	".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	".byte 0xb8\n.long \\v\n.byte 0xe9\n"
	".if \\v == 8 || (\\v >= 10 && \\v <= 14) || \\v == 17 || \\v == 21\n"
	".long um_err - (. + 4)\n"
	".else\n"
	".long um_noerr - (. + 4)\n"
	".endif\n"
	".endr\n");
extern const uint8_t um_stubs[], um_back[];

/* at USR_AT, CPL 3: the results go to 0x200300 (UMIP = 0) or 0x200400 (UMIP = 1) */
GUEST(uu, ".code64",
	"mov $0x200300, %esi\n"
	"cmpq $0, 0x200000\n"
	"je 4f\n"
	"mov $0x200400, %esi\n"
	"4: movq $1, 0x200000\n" FIVE
	"int $0x20\n");

int main(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_w64(&t, T_PD, 0x83); /* 0-2 MiB supervisor-mode, 2-4 MiB user-mode */
	t_load(&t, T_CODE, um_start, um_end);
	t_load(&t, USR_AT, uu_start, uu_end);
	uint64_t stubs = T_CODE + (uint64_t)(um_stubs - um_start);
	for (int v = 0; v < 32; v++)
		t_gate(&t, v, stubs + 10 * (uint64_t)v, 0, 0);
	t_gate(&t, 0x20, T_CODE + (uint64_t)(um_back - um_start), 3, 0);
	/* SLDT's selector: an LDT at GDT 0x40 (kept in the sregs only: never used to load a segment) */
	struct kvm_sregs sr;
	t.ops->get_sregs(t.cpu, &sr);
	sr.ldt.selector = 0x40;
	sr.ldt.type = 2;
	sr.ldt.present = 1;
	sr.ldt.limit = 0xff;
	t.ops->set_sregs(t.cpu, &sr);
	memset(t.ram + RES, 0xee, 0x800);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	CHECK_EQ(t.run->io.port, 0x3f8);

	uint32_t ecx7 = t_r32(&t, OUT);
	CHECK(ecx7 & (1u << 2), "CPUID.(7,0):ECX = 0x%x: UMIP not advertised", ecx7);

	/* CPL 0 (UMIP 0 and 1) and CPL 3 with UMIP 0: every store happened, the same values */
	static const uint64_t at[] = { 0x200100, 0x200200, 0x200300 };
	for (unsigned k = 0; k < 3; k++) {
		uint64_t a = at[k];
		CHECK_EQ(t_r64(&t, a + 0) & 0xffff, 8 * 8 - 1);                    /* GDTR limit */
		CHECK_EQ(t_r64(&t, a + 2), T_GDT);                                 /* GDTR base */
		CHECK_EQ(t_r64(&t, a + 16) & 0xffff, 256 * 16 - 1);                /* IDTR limit */
		CHECK_EQ(t_r64(&t, a + 18), T_IDT);                                /* IDTR base */
		CHECK_EQ(t_r64(&t, a + 32) & 0xffffffffffffull, (0x30ull << 32) | (0x0033ull << 16) | 0x40);
		CHECK_EQ(t_r64(&t, a + 40), 0x40);                                 /* SLDT r64 */
		CHECK_EQ(t_r64(&t, a + 48), 0x80050033);                           /* SMSW r64: CR0 */
		CHECK_EQ(t_r64(&t, a + 56), 0x30);                                 /* STR r64 */
	}
	/* CPL 3 with UMIP 1: nothing stored, every one #GP(0) at its RIP */
	uint64_t a = 0x200400;
	for (unsigned k = 0; k < 5; k++)
		CHECK(t_r64(&t, a + 8 * k) == ~0ull, "UMIP, CPL 3: bytes %u-%u written: 0x%llx", 8 * k, 8 * k + 7,
		      (unsigned long long)t_r64(&t, a + 8 * k));
	for (unsigned k = 5; k < 8; k++)
		CHECK(t_r64(&t, a + 8 * k) == ~0ull, "UMIP, CPL 3: register %u written: 0x%llx", k - 5,
		      (unsigned long long)t_r64(&t, a + 8 * k));
	static const char *const what[] = { "SGDT m", "SIDT m", "SLDT m16", "SMSW m16", "STR m16",
					    "SLDT r64", "SMSW r64", "STR r64" };
	for (unsigned k = 0; k < 8; k++) {
		uint64_t vec = t_r64(&t, RES + 24 * k), err = t_r64(&t, RES + 24 * k + 8);
		CHECK(vec == 13 && err == 0, "%s at CPL 3 with UMIP: vector %llu error 0x%llx, want #GP(0)", what[k],
		      (unsigned long long)vec, (unsigned long long)err);
	}
	CHECK(t_r64(&t, RES + 24 * 8) == 0xeeeeeeeeeeeeeeeeull, "an event more than the 8 expected: vector 0x%llx",
	      (unsigned long long)t_r64(&t, RES + 24 * 8));
	t_fini(&t);
	return t_result("emu_umip");
}
