/* SPDX-License-Identifier: MIT */
/*
 * IA32_ARCH_CAPABILITIES (MSR 0x10a) on the emu engine: CPUID.(EAX=7,ECX=0):EDX[29] advertises it
 * (SDM Vol. 2A CPUID); it reads the "not susceptible" bits of SDM Vol. 4 Table 2-2 that are true of a
 * CPU without speculative execution (RDCL_NO 0, SSB_NO 4, MDS_NO 5, PSCHANGE_MC_NO 6, TAA_NO 8,
 * SBDR_SSDP_NO 13, FBSDP_NO 14, PSDP_NO 15, BHI_NO 20, PBRSB_NO 24, GDS_NO 26, RFDS_NO 27, and
 * Linux's VMM-synthesized ITS_NO 62) and no bit that advertises a control the engine lacks
 * (IBRS_ALL 1, RSBA 2, TSX_CTRL 7, FB_CLEAR 17, RRSBA 19, ...); it is read-only: WRMSR #GPs.
 */
#include "emu_harness.h"

#define DATA 0x100000

GUEST(g, ".code64",
	"mov $7, %eax; xor %ecx, %ecx; cpuid; mov %edx, 0x100000\n"
	"mov $0x10a, %ecx; rdmsr; mov %eax, 0x100008; mov %edx, 0x10000c\n"
	"wrmsr\n"                                              /* #GP */
	"cli; hlt\n"
	".globl g_gp\ng_gp:\n"
	"incl 0x100010\n"
	"addq $2, 8(%rsp)\n"                                   /* skip the WRMSR */
	"add $8, %rsp\n"
	"iretq\n");
extern const uint8_t g_gp[];

int main(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, g_start, g_end);
	t_gate(&t, 13, T_CODE + (uint64_t)(g_gp - g_start), 0, 0);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK(t_r32(&t, DATA) & (1u << 29), "CPUID.7.0:EDX[29] ARCH_CAPABILITIES");
	uint64_t want = 0;
	for (unsigned b = 0; b < 64; b++)
		if (b == 0 || b == 4 || b == 5 || b == 6 || b == 8 || b == 13 || b == 14 || b == 15 || b == 20 ||
		    b == 24 || b == 26 || b == 27 || b == 62)
			want |= 1ull << b;
	CHECK_EQ(t_r64(&t, DATA + 8), want);
	CHECK_EQ(t_r32(&t, DATA + 0x10), 1);
	t_fini(&t);
	return t_result("emu_archcap");
}
