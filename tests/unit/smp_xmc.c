/* SPDX-License-Identifier: MIT */
/*
 * Cross-modifying code (SDM Vol. 3 9.1.3) on the emu engine: vCPU 0 patches a routine that vCPU 1
 * calls in a loop, one aligned 8-byte store per patch ("mov $V, %eax; ret; nop; nop", V = k times
 * 0x01010101, k = 1, 2, ...). blvm's guarantees, each checked here:
 *   - eventually: without any synchronisation the executing vCPU sees each new version (it loops
 *     until it does: a missed write would hang the test -- the harness has no timeout, the suite's
 *     runner has), in order, never an older one after a newer one;
 *   - never torn: every executed version is one of the written ones (all four bytes of V equal);
 *   - the SDM protocol: the writer stores the code, then a flag; the executor waits for the flag,
 *     executes CPUID (serialising), calls the routine and gets exactly the new version, every time.
 */
#include "smp_harness.h"

#define K1 120 /* phase 1 versions: 1..K1 */
#define K2 250 /* phase 2 versions: K1+1..K2 */

GUEST(xmc, ".code64",
	".set K1, 120\n .set K2, 250\n"
	"mov $0x20000, %r12\n"
	"test %esi, %esi\n jnz 20f\n"
	/* vCPU 0: the writer */
	"mov $1, %r8d\n"
	"1: call 90f\n"
	"2: pause\n cmp 0x40(%rdi), %r9d\n jne 2b\n"  /* until the executor reports it */
	"inc %r8d\n cmp $K1, %r8d\n jbe 1b\n"
	"3: call 90f\n"
	"mov %r9d, 0x80(%rdi)\n"                       /* the flag, after the code */
	"4: pause\n cmp 0x88(%rdi), %r9d\n jne 4b\n"
	"inc %r8d\n cmp $K2, %r8d\n jbe 3b\n"
	"hlt\n"
	/* patch version r8d: r9d = V; one aligned 8-byte store of b8 V c3 90 90 */
	"90: mov %r8d, %r9d\n imul $0x01010101, %r9d, %r9d\n"
	"mov %r9d, %eax\n shl $8, %rax\n or $0xb8, %rax\n"
	"mov $0x9090c30000000000, %rcx\n or %rcx, %rax\n"
	"mov %rax, (%r12)\n ret\n"
	/* vCPU 1: the executor */
	"20: xor %r10d, %r10d\n"
	"21: call *%r12\n"
	"mov %eax, %ecx\n rol $8, %ecx\n cmp %eax, %ecx\n jne 80f\n" /* torn */
	"cmp %r10d, %eax\n jb 80f\n"                                   /* older after newer */
	"mov %eax, %r10d\n mov %eax, 0x40(%rdi)\n"
	"cmp $(K1 * 0x01010101), %eax\n jne 21b\n"
	"mov $(K1 + 1), %r8d\n"
	"22: mov %r8d, %r9d\n imul $0x01010101, %r9d, %r9d\n"
	"23: pause\n cmp 0x80(%rdi), %r9d\n jne 23b\n"
	"cpuid\n"                                                      /* serialising */
	"call *%r12\n"
	"cmp %r9d, %eax\n jne 81f\n"
	"mov %eax, 0x88(%rdi)\n"
	"inc %r8d\n cmp $K2, %r8d\n jbe 22b\n"
	"hlt\n"
	"80: mov %eax, 0x48(%rdi)\n hlt\n"
	"81: mov %eax, 0x50(%rdi)\n mov %r9d, 0x54(%rdi)\n hlt\n");

static void run(int kick)
{
	struct s_vm s;
	s_init(&s, 2, BL_OFF, 0);
	s_start(&s, xmc_start, xmc_end);
	struct t_vm *t = &s.t[0];
	t_w64(t, 0x20000, 0x9090c300000000b8ull); /* mov $0, %eax; ret */
	s_run(&s, kick);
	CHECK_EQ(s.last_exit[0], KVM_EXIT_HLT);
	CHECK_EQ(s.last_exit[1], KVM_EXIT_HLT);
	CHECK(t_r32(t, S_DATA + 0x48) == 0, "phase 1: executed a torn or older version: eax 0x%x after 0x%x",
	      t_r32(t, S_DATA + 0x48), t_r32(t, S_DATA + 0x40));
	CHECK(t_r32(t, S_DATA + 0x50) == 0, "phase 2 (flag + CPUID): executed 0x%x, expected 0x%x",
	      t_r32(t, S_DATA + 0x50), t_r32(t, S_DATA + 0x54));
	CHECK_EQ(t_r32(t, S_DATA + 0x40), K1 * 0x01010101u);
	CHECK_EQ(t_r32(t, S_DATA + 0x88), K2 * 0x01010101u);
	s_fini(&s);
}

int main(void)
{
	run(0);
	run(1);
	return t_result("cross-modifying code: seen eventually, never torn, exactly after flag + CPUID");
}
