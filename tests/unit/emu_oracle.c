/* SPDX-License-Identifier: MIT */
/*
 * The host CPU is the oracle: one straight-line-and-loops program runs natively (as a function) and
 * in the emu engine (as a guest), with RDI pointing at a scratch area in both; the program stores its
 * results and the defined flags there; the two scratch areas must be identical byte for byte.
 * It covers the decoded forms the hot paths specialise: ALU at all sizes and forms, INC/DEC/NEG/NOT,
 * shifts/rotates, SHLD/SHRD, MUL/IMUL/DIV/IDIV, MOVZX/MOVSX/MOVSXD, LEA, XCHG, XADD, CMPXCHG(8B/16B),
 * BT* on memory with offsets beyond the operand, BSF/BSR/POPCNT/LZCNT/TZCNT, BMI1, BSWAP, CBW..CQO,
 * SETcc/CMOVcc/Jcc/LOOP, PUSH/POP/ENTER/LEAVE, LAHF/SAHF, string instructions with REP at all sizes
 * and both directions.
 */
#include "emu_harness.h"

#define FL(off) "pushfq\n pop %rax\n and $0x8d5, %eax\n mov %rax, " #off "(%rdi)\n"
#define FLM(mask, off) "pushfq\n pop %rax\n and $" #mask ", %eax\n mov %rax, " #off "(%rdi)\n"

#define BODY \
	"xor %esi, %esi\n movabs $0x0123456789abcdef, %rax\n movabs $0xfedcba9876543210, %rbx\n" \
	"add %rbx, %rax\n mov %rax, 0x800(%rdi)\n" FL(0x808) \
	"movabs $0x7fffffffffffffff, %rax\n add $1, %rax\n mov %rax, 0x810(%rdi)\n" FL(0x818) \
	"mov $0x80, %al\n add %al, %al\n adc $0x7f, %al\n mov %rax, 0x820(%rdi)\n" FL(0x828) \
	"mov $0x1234, %cx\n sub $0x2345, %cx\n sbb %cx, %cx\n mov %rcx, 0x830(%rdi)\n" FL(0x838) \
	"movl $0xffffffff, 0x100(%rdi)\n addl $1, 0x100(%rdi)\n" FL(0x840) \
	"mov $0x55, %ah\n xor %ah, 0x101(%rdi)\n and $0x0f, %ah\n or %ah, 0x102(%rdi)\n" FL(0x848) \
	"cmpq $-1, 0x100(%rdi)\n" FL(0x850) \
	"movabs $0x8000000000000000, %rdx\n neg %rdx\n mov %rdx, 0x858(%rdi)\n" FL(0x860) \
	"decw 0x104(%rdi)\n incb 0x106(%rdi)\n notl 0x108(%rdi)\n negq 0x110(%rdi)\n" FL(0x868) \
	"mov $0x81, %bl\n shl $1, %bl\n" FL(0x870) "mov %rbx, 0x878(%rdi)\n" \
	"movabs $0xf00000000000000f, %rbx\n mov $5, %cl\n rol %cl, %rbx\n" FLM(0x1, 0x880) "mov %rbx, 0x888(%rdi)\n" \
	"sar $3, %rbx\n shr $1, %ebx\n rcr $1, %bx\n rcl $3, %rbx\n mov %rbx, 0x890(%rdi)\n" \
	"movabs $0x1122334455667788, %rcx\n shld $12, %rcx, %rbx\n shrd $4, %cx, %bx\n mov %rbx, 0x898(%rdi)\n" \
	"mov $7, %cl\n shlq %cl, 0x118(%rdi)\n sarl %cl, 0x120(%rdi)\n" \
	"movabs $0x123456789, %rax\n mov $0x987654321, %rcx\n mul %rcx\n mov %rax, 0x8a0(%rdi)\n mov %rdx, 0x8a8(%rdi)\n" FLM(0x801, 0x8b0) \
	"mov $-7, %rax\n mov $3, %r8\n cqo\n idiv %r8\n mov %rax, 0x8b8(%rdi)\n mov %rdx, 0x8c0(%rdi)\n" \
	"mov $1000, %ax\n mov $7, %cl\n div %cl\n mov %rax, 0x8c8(%rdi)\n" \
	"mov $-3, %eax\n imul $100000, %eax, %edx\n imul %edx, %eax\n mov %rax, 0x8d0(%rdi)\n mov %rdx, 0x8d8(%rdi)\n" \
	"imulw $-5, 0x100(%rdi), %si\n mov %rsi, 0x8e0(%rdi)\n" \
	"movsbq 0x101(%rdi), %rax\n movzwl 0x102(%rdi), %ecx\n movslq 0x104(%rdi), %rdx\n movsbw %al, %si\n" \
	"mov %rax, 0x8e8(%rdi)\n mov %rcx, 0x8f0(%rdi)\n mov %rdx, 0x8f8(%rdi)\n mov %rsi, 0x900(%rdi)\n" \
	"lea 0x7f(%rdi,%rcx,8), %rax\n sub %rdi, %rax\n mov %rax, 0x908(%rdi)\n lea -1(%ecx,%ecx,2), %eax\n mov %rax, 0x910(%rdi)\n" \
	"mov $0x42, %eax\n xchg %eax, 0x128(%rdi)\n xchg %ax, %cx\n mov %rax, 0x918(%rdi)\n mov %rcx, 0x920(%rdi)\n" \
	"mov $5, %edx\n lock xadd %edx, 0x130(%rdi)\n xadd %dx, %ax\n mov %rdx, 0x928(%rdi)\n mov %rax, 0x930(%rdi)\n" FL(0x938) \
	"mov 0x138(%rdi), %rax\n mov $0x77, %ecx\n lock cmpxchg %rcx, 0x138(%rdi)\n" FL(0x940) \
	"cmpxchg %rcx, 0x138(%rdi)\n" FL(0x948) "mov %rax, 0x950(%rdi)\n" \
	"mov 0x140(%rdi), %eax\n mov 0x144(%rdi), %edx\n mov $1, %ebx\n mov $2, %ecx\n lock cmpxchg8b 0x140(%rdi)\n" FL(0x958) \
	"lea 0x200(%rdi), %rsi\n and $-16, %rsi\n mov $9, %eax\n mov $9, %edx\n lock cmpxchg16b (%rsi)\n mov %rax, 0x960(%rdi)\n mov %rdx, 0x968(%rdi)\n" FL(0x970) \
	"mov $100, %ecx\n bts %rcx, 0x180(%rdi)\n mov $-9, %rcx\n lock btc %rcx, 0x1c0(%rdi)\n mov $37, %ecx\n btr %ecx, 0x180(%rdi)\n btl $3, 0x180(%rdi)\n" FLM(0x1, 0x978) \
	"mov $0x80, %eax\n bt $7, %eax\n bts $0, %ax\n lock btsw $12, 0x190(%rdi)\n mov %rax, 0x980(%rdi)\n" \
	"movabs $0x0000100000000800, %rax\n bsf %rax, %rcx\n bsr %rax, %rdx\n popcnt %rax, %rsi\n lzcnt %rax, %r8\n tzcnt %eax, %r9d\n" \
	"mov %rcx, 0x988(%rdi)\n mov %rdx, 0x990(%rdi)\n mov %rsi, 0x998(%rdi)\n mov %r8, 0x9a0(%rdi)\n mov %r9, 0x9a8(%rdi)\n" \
	"mov $0xf0f0, %ecx\n andn %rax, %rcx, %rdx\n mov $0x0804, %esi\n bextr %rsi, %rax, %r8\n blsi %rax, %r9\n blsr %rax, %r10\n blsmsk %rax, %r11\n" \
	"mov %rdx, 0x9b0(%rdi)\n mov %r8, 0x9b8(%rdi)\n mov %r9, 0x9c0(%rdi)\n mov %r10, 0x9c8(%rdi)\n mov %r11, 0x9d0(%rdi)\n" \
	"bswap %rax\n bswap %ecx\n mov %rax, 0x9d8(%rdi)\n mov %rcx, 0x9e0(%rdi)\n" \
	"mov $0x80, %eax\n cbw\n cwde\n cdqe\n mov %rax, 0x9e8(%rdi)\n cwd\n cdq\n cqo\n mov %rdx, 0x9f0(%rdi)\n" \
	"mov $5, %eax\n cmp $7, %eax\n setl %cl\n setb 0x1a0(%rdi)\n seta %dl\n cmovl %eax, %esi\n cmovge 0x100(%rdi), %r8\n" \
	"mov %rcx, 0x9f8(%rdi)\n mov %rdx, 0xa00(%rdi)\n mov %rsi, 0xa08(%rdi)\n mov %r8, 0xa10(%rdi)\n" \
	"xor %eax, %eax\n mov $10, %ecx\n 1: add %ecx, %eax\n loop 1b\n mov %rax, 0xa18(%rdi)\n" \
	"xor %eax, %eax\n mov $1, %ecx\n 2: inc %eax\n shl $1, %ecx\n jnc 2b\n mov %rax, 0xa20(%rdi)\n" \
	"push %rdi\n pushq $-2\n pop %rax\n pop %rdx\n mov %rax, 0xa28(%rdi)\n" \
	"enter $16, $0\n movq $3, -8(%rbp)\n mov -8(%rbp), %rax\n leave\n mov %rax, 0xa30(%rdi)\n" \
	"mov $0xd5, %ah\n sahf\n lahf\n mov %rax, 0xa38(%rdi)\n stc\n cmc\n" FL(0xa40) \
	"lea 0x300(%rdi), %rdx\n mov %rdx, %r12\n" \
	"mov %rdi, %r13\n mov %r12, %rdi\n mov $0xab, %al\n mov $37, %ecx\n rep stosb\n" \
	"mov %r12, %rsi\n lea 0x40(%r12), %rdi\n mov $5, %ecx\n rep movsq\n" \
	"lea 0x100(%r12), %rdi\n mov $7, %ecx\n movabs $0x1111222233334444, %rax\n rep stosw\n" \
	"std\n lea 0x1fc(%r12), %rdi\n mov $3, %ecx\n mov $0x55667788, %eax\n rep stosl\n cld\n" \
	"mov %r12, %rdi\n mov $0xab, %al\n mov $100, %ecx\n repe scasb\n mov %rcx, %r8\n" \
	"mov %r12, %rsi\n lea 0x40(%r12), %rdi\n mov $8, %ecx\n repe cmpsb\n mov %rcx, %r9\n" \
	"lea 0x100(%r12), %rsi\n lodsw\n lodsl\n mov %rax, %r10\n" \
	"mov %r13, %rdi\n mov %r8, 0xa48(%rdi)\n mov %r9, 0xa50(%rdi)\n mov %r10, 0xa58(%rdi)\n"

__asm__(".text\n.globl oracle_native\n.type oracle_native,@function\noracle_native:\n"
	"push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	BODY
	"pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n ret\n");
void oracle_native(uint8_t *scratch);

GUEST(oracle, ".code64", "mov $0x100000, %edi\n" BODY "hlt\n");

#define SCRATCH 0x4000

int main(void)
{
	static uint8_t native[SCRATCH] __attribute__((aligned(4096)));
	for (unsigned k = 0; k < SCRATCH; k++)
		native[k] = (uint8_t)(k * 7 + 3);

	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, oracle_start, oracle_end);
	memcpy(t.ram + 0x100000, native, SCRATCH);
	oracle_native(native);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	unsigned bad = 0;
	for (unsigned k = 0; k < SCRATCH; k += 8) {
		uint64_t a, b;
		memcpy(&a, native + k, 8);
		memcpy(&b, t.ram + 0x100000 + k, 8);
		if (a != b && bad++ < 20)
			fprintf(stderr, "offset 0x%x: native 0x%016llx emu 0x%016llx\n", k, (unsigned long long)a,
				(unsigned long long)b);
	}
	CHECK(bad == 0, "%u differing quadwords", bad);
	CHECK(t.ops->instructions(t.cpu) > 300, "instructions counted: %lld", (long long)t.ops->instructions(t.cpu));
	t_fini(&t);
	return t_result("emu_oracle");
}
