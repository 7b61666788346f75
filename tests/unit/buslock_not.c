/* SPDX-License-Identifier: MIT */
/*
 * What is NOT a bus lock (docs/DESIGN.md "Bus-lock semantics"): aligned locked accesses to WB memory
 * at every size (CMPXCHG16B included), a locked byte at the last byte of a line, locked accesses
 * that end exactly at a line boundary, and unlocked misaligned accesses that do cross a line
 * (plain RMW, MOV, a register-register XCHG). With detection enabled, in both flavours: zero exits,
 * and the results are right.
 */
#include "buslock_harness.h"

GUEST(none, ".code64",
	"mov $1, %eax\n"
	"lock addb %al, 0x3f(%rdi)\n"            /* last byte of a line */
	"lock addw %ax, 0x3e(%rdi)\n"            /* ends at the boundary */
	"lock addl %eax, 0x3c(%rdi)\n"
	"lock addq %rax, 0x38(%rdi)\n"
	"lock xaddl %eax, 0x40(%rdi)\n"
	"xchg %eax, 0x44(%rdi)\n"
	"lock cmpxchg8b 0x48(%rdi)\n"
	"xor %eax, %eax\n xor %edx, %edx\n mov $3, %ebx\n xor %ecx, %ecx\n"
	"lock cmpxchg16b 0x50(%rdi)\n"
	"addl $5, 0xbe(%rdi)\n"                  /* unlocked, split */
	"movq $-1, 0xfc(%rdi)\n"
	"incq 0x13d(%rdi)\n"
	"xchg %eax, %ebx\n"
	"hlt\n");

static void run(int amd)
{
	struct t_vm t;
	bl_init(&t, amd, BL_ENABLE);
	bl_start(&t, none_start, none_end, B_DATA);
	unsigned n = 0, flags = 0;
	CHECK_EQ(bl_run_counting(&t, &n, &flags), KVM_EXIT_HLT);
	CHECK_EQ(n, 0);
	CHECK_EQ(flags, 0);
	CHECK_EQ(t.ram[B_DATA + 0x3f], 1);
	CHECK_EQ(t.ram[B_DATA + 0x3e], 1);
	CHECK_EQ(t.ram[B_DATA + 0x3c], 1);
	CHECK_EQ(t_r64(&t, B_DATA + 0x50), 3);      /* cmpxchg16b: 0:0 matched, RCX:RBX written */
	CHECK_EQ(t_r32(&t, B_DATA + 0xbe), 5);
	CHECK_EQ(t_r64(&t, B_DATA + 0xfc), ~0ull);
	CHECK_EQ(t_r64(&t, B_DATA + 0x13d), 1);
	t_fini(&t);
}

int main(void)
{
	run(0);
	run(1);
	return t_result("aligned locked WB and unlocked misaligned accesses are not bus locks");
}
