/* SPDX-License-Identifier: MIT */
/*
 * emu_fpu_state: the system side of the FPU/SIMD unit, as guest programs, against the manuals:
 *  - CPUID leaf 1 (FPU MMX FXSR SSE SSE2 / SSE3 SSSE3 SSE4.1 SSE4.2 XSAVE; OSXSAVE follows CR4.OSXSAVE)
 *    and leaf 0xD (XCR0 bits 0, 1 and 9 (PKRU, tests/unit/emu_pku.c); 576 bytes with XCR0 = 1, 2696
 *    at most; XSAVEOPT) -- SDM Vol. 2 "CPUID", Vol. 1 13.2;
 *  - CR4.OSFXSR=0: SSE #UD, x87 fine; CR4.OSXSAVE=0: XGETBV #UD (SDM Vol. 3 Table 2-2, 13-1);
 *  - CR0.TS=1: x87, SSE, FXSAVE, XSAVE #NM; WAIT #NM only with MP; XGETBV runs; CLTS clears TS;
 *  - CR0.EM=1: x87 and FXSAVE #NM, MMX and SSE #UD (SDM Vol. 3 Table 12-1);
 *  - an unmasked SSE exception: #XM with CR4.OSXMMEXCPT (#UD without), destination unchanged, the
 *    flag set in MXCSR (SDM Vol. 1 11.5.2); masked: the default result; LDMXCSR reserved bits #GP;
 *  - an unmasked x87 exception stays pending (FNSTSW sees ES, B, ZE) and is delivered as #MF at the
 *    NEXT waiting x87 instruction, with RIP there (SDM Vol. 1 8.6); FNCLEX clears it;
 *  - FXSAVE/FXRSTOR round trip (x87 stack, TOP, XMM), 16-byte alignment #GP;
 *  - XSETBV/XGETBV (bit 0 required, not bit 2, ECX=0), XSAVE header XSTATE_BV, XRSTOR of the init
 *    state (XSTATE_BV=0: XMM zero, FCW 0x37f) and back, XRSTOR header checks, 64-byte alignment;
 *  - the same engine path in 32-bit protected mode (mode32()).
 * The exception handler logs (vector, RIP) and skips the faulting instruction by its length in r13.
 */
#include "emu_harness.h"

#define R 0x100000ull   /* fault count, log of 16-byte (vector, rip) entries */
#define RES 0x100400ull /* result slots (r15) */
#define FXA 0x101000ull
#define XSA 0x102000ull

/* F(insn): an instruction expected to fault; r13 = its length */
#define F(insn) "mov $(9f-8f),%r13\n8: " insn "\n9:\n"

GUEST(fs, ".code64",
	"jmp fs_body\n"
	"h6: mov $6,%r12\n jmp hc\n"
	"h7: mov $7,%r12\n jmp hc\n"
	"h13: add $8,%rsp\n mov $13,%r12\n jmp hc\n"
	"h16: mov $16,%r12\n jmp hc\n"
	"h19: mov $19,%r12\n jmp hc\n"
	"hc: mov 0x100000,%r11\n shl $4,%r11\n mov %r12,0x100008(%r11)\n mov (%rsp),%r12\n"
	" mov %r12,0x100010(%r11)\n incq 0x100000\n add %r13,(%rsp)\n iretq\n"
	".balign 16\nones: .float 1.0, 2.0, 3.0, 4.0\n"
	"fs_body:\n"
	"mov $0x100400,%r15\n"
	/* A: CPUID */
	"mov $1,%eax\n cpuid\n mov %ecx,0(%r15)\n mov %edx,4(%r15)\n"
	"mov $0xd,%eax\n xor %ecx,%ecx\n cpuid\n mov %eax,8(%r15)\n mov %ebx,12(%r15)\n mov %ecx,16(%r15)\n"
	"mov $0xd,%eax\n mov $1,%ecx\n cpuid\n mov %eax,20(%r15)\n"
	/* B: OSFXSR=0, OSXSAVE=0 */
	F("xorps %xmm0,%xmm0")
	"xor %ecx,%ecx\n"
	F("xgetbv")
	"fld1\n fstpl 24(%r15)\n"
	/* C: enable OSFXSR OSXMMEXCPT OSXSAVE */
	"mov %cr4,%rax\n or $0x40600,%rax\n mov %rax,%cr4\n"
	"mov $1,%eax\n cpuid\n mov %ecx,32(%r15)\n"
	/* D: TS (MP is set) */
	"mov $0x101000,%rsi\n mov $0x102000,%rdi\n"
	"mov %cr0,%rax\n or $8,%rax\n mov %rax,%cr0\n"
	F("addps %xmm1,%xmm0")
	F("fld1")
	F("fwait")
	F("fxsave (%rsi)")
	"xor %ecx,%ecx\n xgetbv\n mov %eax,36(%r15)\n"
	"mov $3,%eax\n xor %edx,%edx\n"
	F("xsave (%rdi)")
	"mov %cr0,%rax\n and $~2,%rax\n mov %rax,%cr0\n fwait\n" /* MP=0: WAIT runs */
	"clts\n mov %cr0,%rax\n or $2,%rax\n mov %rax,%cr0\n"
	/* E: EM */
	"mov %cr0,%rax\n or $4,%rax\n mov %rax,%cr0\n"
	F("fld1")
	F("paddb %mm1,%mm0")
	F("addps %xmm1,%xmm0")
	F("fxsave (%rsi)")
	"mov %cr0,%rax\n and $~4,%rax\n mov %rax,%cr0\n"
	/* F: #XM */
	"movaps ones(%rip),%xmm1\n xorps %xmm2,%xmm2\n"
	"movl $0x1d80,40(%r15)\n ldmxcsr 40(%r15)\n"
	F("divps %xmm2,%xmm1")
	"stmxcsr 44(%r15)\n movups %xmm1,48(%r15)\n"
	"mov %cr4,%rax\n and $~0x400,%rax\n mov %rax,%cr4\n"
	F("divps %xmm2,%xmm1")
	"mov %cr4,%rax\n or $0x400,%rax\n mov %rax,%cr4\n"
	"movl $0x1f80,40(%r15)\n ldmxcsr 40(%r15)\n"
	"divps %xmm2,%xmm1\n movups %xmm1,64(%r15)\n stmxcsr 80(%r15)\n"
	"movl $0x10000,40(%r15)\n"
	F("ldmxcsr 40(%r15)")
	/* G: #MF at the next waiting x87 instruction */
	"fninit\n movw $0x37b,84(%r15)\n fldcw 84(%r15)\n"
	"fld1\n fldz\n .byte 0xde, 0xf9\n" /* FDIVP ST(1), ST(0): 1 / 0, ZE unmasked */
	"fnstsw %ax\n mov %ax,86(%r15)\n"
	"lea mf_at(%rip),%rax\n mov %rax,88(%r15)\n"
	"mov $(9f-8f),%r13\nmf_at:\n8: fld1\n9:\n"
	"fnclex\n fld1\n fnstsw 96(%r15)\n"
	"movl $0xaaaaaaaa,172(%r15)\n fld1\n fnstenv 160(%r15)\n fldcw 160(%r15)\n"
	/* H: FXSAVE round trip */
	"fninit\n fld1\n fldpi\n movaps ones(%rip),%xmm3\n fxsave (%rsi)\n"
	"fninit\n xorps %xmm3,%xmm3\n fxrstor (%rsi)\n fxsave 0x200(%rsi)\n"
	F("fxsave 8(%rsi)")
	/* I: XSAVE */
	"mov $3,%eax\n xor %edx,%edx\n xor %ecx,%ecx\n xsetbv\n xgetbv\n mov %eax,100(%r15)\n"
	"mov $3,%eax\n xor %edx,%edx\n xsave (%rdi)\n"
	"movq $0,0x200(%rdi)\n xrstor (%rdi)\n movups %xmm3,112(%r15)\n fnstcw 128(%r15)\n"
	"movq $3,0x200(%rdi)\n xrstor (%rdi)\n movups %xmm3,144(%r15)\n"
	"movq $4,0x200(%rdi)\n"
	F("xrstor (%rdi)")
	"movq $3,0x200(%rdi)\n movq $1,0x208(%rdi)\n"
	F("xrstor (%rdi)")
	"movq $0,0x208(%rdi)\n"
	"xor %eax,%eax\n"
	F("xsetbv")
	"mov $7,%eax\n"
	F("xsetbv")
	"mov $1,%ecx\n mov $3,%eax\n"
	F("xsetbv")
	"xor %ecx,%ecx\n"
	F("xsave 8(%rdi)")
	"hlt\n");
__asm__(".pushsection .rodata\n.balign 8\nfs_offs: .quad h6 - fs_start, h7 - fs_start, h13 - fs_start, "
	"h16 - fs_start, h19 - fs_start\n.popsection");
extern const uint64_t fs_offs[5];

static uint32_t r32(struct t_vm *t, uint64_t off) { return t_r32(t, RES + off); }

/* 32-bit protected mode (the forms are re-encoded for the 64-bit host): SSE with GPR and memory
 * operands, MASKMOVDQU's implicit [EDI], x87 loads/stores, FXSAVE (XMM0-7 only: bytes 288-415 keep
 * their contents). */
GUEST(f32, ".code32",
	"mov %cr4,%eax\n or $0x600,%eax\n mov %eax,%cr4\n"
	"mov $0x100400,%ebx\n"
	"movups 0x100(%ebx),%xmm0\n addps %xmm0,%xmm0\n cvttss2si %xmm0,%eax\n mov %eax,0(%ebx)\n"
	"movd %xmm0,%ecx\n mov %ecx,4(%ebx)\n pextrw $1,%xmm0,%edx\n mov %edx,8(%ebx)\n"
	"mov $7,%esi\n cvtsi2sd %esi,%xmm1\n movsd %xmm1,16(%ebx)\n"
	"pcmpeqb %xmm2,%xmm2\n lea 0x40(%ebx),%edi\n movdqu 0x110(%ebx),%xmm3\n maskmovdqu %xmm3,%xmm2\n"
	"flds 0x100(%ebx)\n fadd %st(0),%st(0)\n fistpl 24(%ebx)\n"
	"movl $0xaaaaaaaa,0x1000+300(%ebx)\n fxsave 0x1000(%ebx)\n"
	"hlt\n");
static void mode32(void)
{
	struct t_vm t;
	t_init(&t);
	t_prot32(&t);
	t_load(&t, T_CODE, f32_start, f32_end);
	static const float in[4] = { 3.25f, -1.5f, 0.0f, 100.0f };
	memcpy(t.ram + RES + 0x100, in, 16);
	static const uint8_t mask[16] = { 0x80, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80 };
	memcpy(t.ram + RES + 0x110, mask, 16);
	memset(t.ram + RES + 0x40, 0x11, 16);
	int ex = t_run(&t);
	CHECK_EQ(ex, KVM_EXIT_HLT);
	CHECK_EQ(r32(&t, 0), 6);              /* (int)6.5 */
	CHECK_EQ(r32(&t, 4), 0x40d00000);     /* 6.5f */
	CHECK_EQ(r32(&t, 8), 0x40d0);
	CHECK_EQ(t_r64(&t, RES + 16), 0x401c000000000000ull); /* 7.0 */
	CHECK_EQ(t_r32(&t, RES + 0x40), 0x11ff11ff);          /* bytes 0 and 2 stored, 1 and 3 kept */
	CHECK_EQ(t_r32(&t, RES + 0x4c), 0xff111111);
	CHECK_EQ(r32(&t, 24), 6);             /* 6.5 rounded to nearest even */
	CHECK_EQ(t_r32(&t, RES + 0x1000 + 160), 0x40d00000); /* XMM0 in the FXSAVE image */
	CHECK_EQ(t_r32(&t, RES + 0x1000 + 300), 0xaaaaaaaa); /* XMM8-15 area untouched */
	t_fini(&t);
}

int main(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, fs_start, fs_end);
	static const int vecs[5] = { 6, 7, 13, 16, 19 };
	for (int k = 0; k < 5; k++)
		t_gate(&t, vecs[k], T_CODE + fs_offs[k], 0, 0);
	int ex = t_run(&t);
	CHECK_EQ(ex, KVM_EXIT_HLT);

	/* the faults, in order */
	static const int want[] = { 6, 6,                  /* B: xorps, xgetbv */
				    7, 7, 7, 7, 7,         /* D: addps fld1 fwait fxsave xsave */
				    7, 6, 6, 7,            /* E: fld1 paddb addps fxsave */
				    19, 6, 13,             /* F: divps #XM, divps #UD, ldmxcsr #GP */
				    16,                    /* G: fld1 #MF */
				    13,                    /* H: fxsave misaligned */
				    13, 13, 13, 13, 13, 13 /* I: xrstor x2, xsetbv x3, xsave misaligned */ };
	unsigned n = (unsigned)t_r64(&t, R), nw = sizeof want / sizeof want[0];
	CHECK_EQ(n, nw);
	for (unsigned k = 0; k < n && k < nw; k++)
		CHECK(t_r64(&t, R + 8 + 16 * k) == (uint64_t)want[k], "fault %u: vector %llu, expected %d", k,
		      (unsigned long long)t_r64(&t, R + 8 + 16 * k), want[k]);

	/* A: CPUID */
	CHECK((r32(&t, 4) & 0x07800001) == 0x07800001, "leaf 1 EDX %#x", r32(&t, 4));
	CHECK((r32(&t, 0) & 0x04180201) == 0x04180201, "leaf 1 ECX %#x", r32(&t, 0));
	CHECK((r32(&t, 0) & (1u << 27 | 1u << 28)) == 0, "leaf 1 ECX %#x: OSXSAVE/AVX", r32(&t, 0));
	CHECK_EQ(r32(&t, 8), 0x203);
	CHECK_EQ(r32(&t, 12), 576);
	CHECK_EQ(r32(&t, 16), 2688 + 8);
	CHECK_EQ(r32(&t, 20) & 1, 1);
	CHECK_EQ(t_r64(&t, RES + 24), 0x3ff0000000000000ull); /* fld1 with OSFXSR=0 */
	CHECK(r32(&t, 32) & (1u << 27), "OSXSAVE after CR4.OSXSAVE: ECX %#x", r32(&t, 32));
	CHECK_EQ(r32(&t, 36), 1); /* XCR0 after reset */

	/* F: #XM left xmm1 as it was and set ZE; masked: +inf in every lane */
	CHECK_EQ(r32(&t, 44), 0x1d84);
	CHECK_EQ(r32(&t, 48), 0x3f800000);
	CHECK_EQ(r32(&t, 60), 0x40800000);
	for (int k = 0; k < 4; k++)
		CHECK_EQ(r32(&t, 64 + 4 * k), 0x7f800000);
	CHECK_EQ(r32(&t, 80), 0x1f84);

	/* G: pending after FDIVRP (ES B ZE), #MF at mf_at, cleared by FNCLEX */
	uint16_t sw = (uint16_t)r32(&t, 86);
	CHECK((sw & 0x80bf) == 0x8084, "FSW after the unmasked divide %#x", sw);
	uint64_t mf_at = t_r64(&t, RES + 88);
	for (unsigned k = 0; k < n && k < nw; k++)
		if (want[k] == 16)
			CHECK_EQ(t_r64(&t, R + 16 + 16 * k), mf_at);
	CHECK_EQ(r32(&t, 96) & 0x80bf, 0);
	/* FNSTENV after FLD1: the pointer fields hold no host address or selector (0) */
	for (int k = 12; k < 28; k += 4)
		CHECK_EQ(r32(&t, 160 + k), 0);

	/* H: FXSAVE -> FXRSTOR -> FXSAVE gives the same image (bytes 0-463) */
	CHECK(!memcmp(t.ram + FXA, t.ram + FXA + 0x200, 464), "FXSAVE round trip differs");
	CHECK_EQ(t_r32(&t, FXA) & 0xffff, 0x37f);              /* FCW */
	CHECK_EQ((t_r32(&t, FXA) >> 16 >> 11) & 7, 6);          /* TOP after two loads */
	CHECK_EQ(t_r32(&t, FXA + 4) & 0xff, 0xc0);              /* abridged FTW: ST0 ST1 (regs 6, 7) */
	CHECK_EQ(t_r32(&t, FXA + 160 + 48), 0x3f800000);        /* XMM3 */
	CHECK_EQ(t_r32(&t, FXA + 24), 0x1f84);                  /* MXCSR */

	/* I: XSAVE / XRSTOR */
	CHECK_EQ(r32(&t, 100), 3);
	CHECK_EQ(t_r64(&t, XSA + 512) & 3, 3); /* set by XSAVE (then rewritten by the guest) */
	for (int k = 0; k < 4; k++)
		CHECK_EQ(r32(&t, 112 + 4 * k), 0); /* init state */
	CHECK_EQ(r32(&t, 128) & 0xffff, 0x37f);
	CHECK_EQ(r32(&t, 144), 0x3f800000);
	CHECK_EQ(r32(&t, 156), 0x40800000);
	t_fini(&t);
	mode32();
	return t_result("emu_fpu_state");
}
