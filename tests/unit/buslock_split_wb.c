/* SPDX-License-Identifier: MIT */
/*
 * Seed: "Bus lock can be caused by split locked access to writeback(WB) memory".
 *
 * Every lockable instruction family (ALU reg and imm forms, INC/DEC/NEG/NOT, BTS/BTR/BTC, XADD,
 * CMPXCHG, XCHG with and without LOCK, CMPXCHG8B) at operand sizes 2, 4 and 8, each on data that
 * crosses a 64-byte line in WB memory: exactly one KVM_EXIT_X86_BUS_LOCK per instruction (Intel
 * flavour), RIP after it, attributed to it (rip, linear, phys, size, reason split, implicit for a
 * bare XCHG, disassembly). The host CPU is the oracle for the results: the same code runs natively
 * on a host buffer of the same layout, and the guest's memory and registers must match exactly (a
 * guest split lock is a host split lock on the same bytes). Detection off: the same guest runs to
 * HLT with no exit and the same results.
 */
#include "buslock_harness.h"

/* instruction, offset of its data from RDI, size, implicit (XCHG without LOCK) */
#define SPLIT_LIST(X)                                             \
	X("lock addw %ax, 0x3f(%rdi)", 0x3f, 2, 0)                \
	X("lock addl $0x12345678, 0x7e(%rdi)", 0x7e, 4, 0)        \
	X("lock addq %rbx, 0xbc(%rdi)", 0xbc, 8, 0)               \
	X("lock orw $0x5a5a, 0xff(%rdi)", 0xff, 2, 0)             \
	X("lock orl %eax, 0x13e(%rdi)", 0x13e, 4, 0)              \
	X("lock orq $-2, 0x17d(%rdi)", 0x17d, 8, 0)               \
	X("stc; lock adcw %bx, 0x3f(%rdi)", 0x3f, 2, 0)           \
	X("stc; lock adcl $7, 0x7d(%rdi)", 0x7d, 4, 0)            \
	X("stc; lock adcq %rax, 0xbb(%rdi)", 0xbb, 8, 0)          \
	X("stc; lock sbbw $3, 0xff(%rdi)", 0xff, 2, 0)            \
	X("stc; lock sbbl %ebx, 0x13f(%rdi)", 0x13f, 4, 0)        \
	X("stc; lock sbbq $-9, 0x17a(%rdi)", 0x17a, 8, 0)         \
	X("lock andw %ax, 0x1ff(%rdi)", 0x1ff, 2, 0)              \
	X("lock andl $0xf0f0f0f0, 0x23d(%rdi)", 0x23d, 4, 0)      \
	X("lock andq %rbx, 0x27c(%rdi)", 0x27c, 8, 0)             \
	X("lock subw $0x1111, 0x2bf(%rdi)", 0x2bf, 2, 0)          \
	X("lock subl %eax, 0x2fe(%rdi)", 0x2fe, 4, 0)             \
	X("lock subq $0x7fffffff, 0x33b(%rdi)", 0x33b, 8, 0)      \
	X("lock xorw %bx, 0x37f(%rdi)", 0x37f, 2, 0)              \
	X("lock xorl $-1, 0x3bd(%rdi)", 0x3bd, 4, 0)              \
	X("lock xorq %rax, 0x3f9(%rdi)", 0x3f9, 8, 0)             \
	X("lock incw 0x3f(%rdi)", 0x3f, 2, 0)                     \
	X("lock incl 0x7f(%rdi)", 0x7f, 4, 0)                     \
	X("lock incq 0xb9(%rdi)", 0xb9, 8, 0)                     \
	X("lock decw 0xff(%rdi)", 0xff, 2, 0)                     \
	X("lock decl 0x13d(%rdi)", 0x13d, 4, 0)                   \
	X("lock decq 0x17f(%rdi)", 0x17f, 8, 0)                   \
	X("lock negw 0x1ff(%rdi)", 0x1ff, 2, 0)                   \
	X("lock negl 0x23e(%rdi)", 0x23e, 4, 0)                   \
	X("lock negq 0x27b(%rdi)", 0x27b, 8, 0)                   \
	X("lock notw 0x2bf(%rdi)", 0x2bf, 2, 0)                   \
	X("lock notl 0x2fd(%rdi)", 0x2fd, 4, 0)                   \
	X("lock notq 0x33e(%rdi)", 0x33e, 8, 0)                   \
	X("lock btsw $9, 0x37f(%rdi)", 0x37f, 2, 0)               \
	X("lock btsl $17, 0x3be(%rdi)", 0x3be, 4, 0)              \
	X("lock btsq $40, 0x3fa(%rdi)", 0x3fa, 8, 0)              \
	X("lock btrw %cx, 0x43f(%rdi)", 0x43f, 2, 0)              \
	X("lock btrl $3, 0x47d(%rdi)", 0x47d, 4, 0)               \
	X("lock btrq %rcx, 0x4bc(%rdi)", 0x4bc, 8, 0)             \
	X("lock btcw $15, 0x4ff(%rdi)", 0x4ff, 2, 0)              \
	X("lock btcl %ecx, 0x53e(%rdi)", 0x53e, 4, 0)             \
	X("lock btcq $63, 0x579(%rdi)", 0x579, 8, 0)              \
	X("lock xaddw %ax, 0x5bf(%rdi)", 0x5bf, 2, 0)             \
	X("lock xaddl %ebx, 0x5fe(%rdi)", 0x5fe, 4, 0)            \
	X("lock xaddq %rdx, 0x63d(%rdi)", 0x63d, 8, 0)            \
	X("mov 0x67f(%rdi), %ax; lock cmpxchgw %bx, 0x67f(%rdi)", 0x67f, 2, 0) \
	X("lock cmpxchgl %ebx, 0x6bd(%rdi)", 0x6bd, 4, 0)         \
	X("mov 0x6fa(%rdi), %rax; lock cmpxchgq %rbx, 0x6fa(%rdi)", 0x6fa, 8, 0) \
	X("xchgw %ax, 0x73f(%rdi)", 0x73f, 2, 1)                  \
	X("xchgl %ebx, 0x77e(%rdi)", 0x77e, 4, 1)                 \
	X("xchgq 0x7bb(%rdi), %rdx", 0x7bb, 8, 1)                 \
	X("lock xchgw %bx, 0x7ff(%rdi)", 0x7ff, 2, 0)             \
	X("lock xchgl %eax, 0x83d(%rdi)", 0x83d, 4, 0)            \
	X("lock xchgq %rcx, 0x87c(%rdi)", 0x87c, 8, 0)            \
	X("mov 0x8bc(%rdi), %eax; mov 0x8c0(%rdi), %edx; lock cmpxchg8b 0x8bc(%rdi)", 0x8bc, 8, 0) \
	X("lock cmpxchg8b 0x8fd(%rdi)", 0x8fd, 8, 0)

#define ASM_OF(s, off, size, imp) s "\n\t"
#define INIT "movabs $0x0123456789abcdef, %rax\n\tmovabs $0xfedcba9876543210, %rbx\n\t" \
	     "mov $5, %ecx\n\tmovabs $0x1111222233334444, %rdx\n\t"
#define BODY INIT SPLIT_LIST(ASM_OF)

GUEST(split, ".code64", BODY "hlt\n");

/* The same code as a host function: void split_native(void *data, uint64_t regs_out[4]). */
__asm__(".text\n\t.globl split_native\nsplit_native:\n\t"
	"push %rbx\n\tpush %rsi\n\t" BODY
	"pop %rsi\n\tmov %rax, 0(%rsi)\n\tmov %rbx, 8(%rsi)\n\tmov %rcx, 16(%rsi)\n\tmov %rdx, 24(%rsi)\n\t"
	"pop %rbx\n\tret\n");
void split_native(void *data, uint64_t regs_out[4]);

struct row { const char *insn; unsigned off, size, implicit; };
#define ROW(s, off, size, imp) { s, off, size, imp },
static const struct row rows[] = { SPLIT_LIST(ROW) };
#define NROWS (sizeof rows / sizeof rows[0])

#define DATA_BYTES 0x1000

static void fill(uint8_t *p)
{
	for (unsigned k = 0; k < DATA_BYTES; k++)
		p[k] = (uint8_t)(k * 37 + 11);
}

static void run_guest(int detect, const uint8_t *expect, const uint64_t eregs[4])
{
	struct t_vm t;
	bl_init(&t, 0, detect ? BL_ENABLE : BL_OFF);
	bl_start(&t, split_start, split_end, B_DATA);
	fill(t.ram + B_DATA);
	unsigned n = 0;
	uint64_t prev_exit_rip = T_CODE;
	int r;
	while ((r = t_run(&t)) == KVM_EXIT_X86_BUS_LOCK) {
		CHECK(t.run->flags & KVM_RUN_X86_BUS_LOCK, "exit 33 without the flag");
		struct blvm_bus_lock_info info;
		CHECK_EQ(bl_info(&t, &info), 0);
		uint64_t rip = t_regs(&t).rip;
		if (n < NROWS) {
			const struct row *w = &rows[n];
			/* trap-like: RIP after the instruction; the info names the instruction itself */
			CHECK(info.rip > prev_exit_rip - 1 && info.rip < rip && rip - info.rip <= 15,
			      "#%u %s: info.rip 0x%llx exit rip 0x%llx", n, w->insn,
			      (unsigned long long)info.rip, (unsigned long long)rip);
			CHECK_EQ(info.linear, B_DATA + w->off);
			CHECK_EQ(info.phys, B_DATA + w->off);
			CHECK_EQ(info.size, w->size);
			CHECK_EQ(info.reason, BLVM_BUS_LOCK_SPLIT);
			CHECK_EQ(info.implicit, w->implicit);
			CHECK(strstr(info.disasm, w->implicit ? "xchg" : "lock ") == info.disasm,
			      "#%u disasm \"%s\" for %s", n, info.disasm, w->insn);
		}
		prev_exit_rip = rip;
		n++;
	}
	CHECK_EQ(r, KVM_EXIT_HLT);
	CHECK_EQ(t.run->flags, 0);
	CHECK_EQ(n, detect ? NROWS : 0);
	struct blvm_bus_lock_info info;
	CHECK_EQ(bl_info(&t, &info), -ENOENT); /* the HLT run reported no bus lock */
	/* results: exactly the host CPU's */
	CHECK(memcmp(t.ram + B_DATA, expect, DATA_BYTES) == 0, "guest memory differs from the host's");
	struct kvm_regs g = t_regs(&t);
	CHECK_EQ(g.rax, eregs[0]);
	CHECK_EQ(g.rbx, eregs[1]);
	CHECK_EQ(g.rcx, eregs[2]);
	CHECK_EQ(g.rdx, eregs[3]);
	t_fini(&t);
}

int main(void)
{
	static uint8_t host[DATA_BYTES] __attribute__((aligned(4096)));
	uint64_t regs[4];
	fill(host);
	split_native(host, regs);
	run_guest(1, host, regs);
	run_guest(0, host, regs);
	return t_result("Bus lock can be caused by split locked access to writeback(WB) memory");
}
