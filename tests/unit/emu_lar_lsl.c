/* SPDX-License-Identifier: MIT */
/*
 * LAR and LSL (SDM Vol. 2A "LAR—Load Access Rights Byte", "LSL—Load Segment Limit") on every
 * kind of descriptor the manual distinguishes, in IA-32e mode (64-bit code, CPL 0 and 3) and in
 * legacy protected mode (32-bit code), with 16-, 32- and 64-bit destinations and a memory source:
 * - ZF = 1 and the destination loaded only for a visible descriptor (not null, within the table's
 *   limit, CPL <= DPL and RPL <= DPL unless conforming code) of a type valid for the instruction
 *   (Table 3-52 for LAR, Table 3-63 for LSL: the system types differ between protected mode and
 *   IA-32e mode); otherwise ZF = 0 and the destination unchanged; CF survives (only ZF changes);
 * - LAR's value: the descriptor's second doubleword AND FF00H (16-bit operand) or AND 00FxFF00H
 *   (32 and 64 bits, zero-extended); LSL's: the limit, in bytes (4-KByte units scaled when G = 1),
 *   truncated to the operand size; a 16-bit destination keeps the register's other bits;
 * - #UD in real-address mode ("The LAR instruction is not recognized in real-address mode"; the same
 *   for LSL, VERR and VERW).
 * The expected values are this file's table, worked out by hand from the descriptors' bytes.
 */
#include "emu_harness.h"
#include "emu/emu.h"

#define SELS 0x100000ull  /* the selectors, 16-bit each, 0xffff ends */
#define OUT 0x101000ull   /* per selector a 64-byte record (below) */
#define P8 0x1111111111111111ull /* what each destination holds before the instruction */
#define P9 0x2222222222222222ull
#define P10 0x3333333333333333ull

/* Record: [0] ZF after LAR, [1] ZF after LSL, [2] CF after both (set before each), [3] ZF after
 * LAR from memory; +8 LAR r64 (r32 in 32-bit code), +16 LAR r16 (the whole register), +24 LAR r32
 * (64-bit code), +32 LSL r64 (r32), +40 LSL r16, +48 LSL r32 (64-bit code), +56 LAR r32, m16. */
GUEST(ll64, ".code64",
	"mov $0x100000, %rsi\n"
	"mov $0x101000, %rdi\n"
	"1:\n"
	"movzwl (%rsi), %eax\n"
	"cmp $0xffff, %eax\n"
	"je 2f\n"
	"mov $0x1111111111111111, %r8\n"
	"mov $0x2222222222222222, %r9\n"
	"mov $0x3333333333333333, %r10\n"
	"stc\n"
	"lar %ax, %r8\n"
	"setz (%rdi)\n"
	"lar %ax, %r9w\n"
	"lar %ax, %r10d\n"
	"mov %r8, 8(%rdi)\n"
	"mov %r9, 16(%rdi)\n"
	"mov %r10, 24(%rdi)\n"
	"mov $0x1111111111111111, %r8\n"
	"mov $0x2222222222222222, %r9\n"
	"mov $0x3333333333333333, %r10\n"
	"lsl %ax, %r8\n"
	"setz 1(%rdi)\n"
	"lsl %ax, %r9w\n"
	"lsl %ax, %r10d\n"
	"setc 2(%rdi)\n"
	"mov %r8, 32(%rdi)\n"
	"mov %r9, 40(%rdi)\n"
	"mov %r10, 48(%rdi)\n"
	"mov $0x3333333333333333, %r10\n"
	"lar (%rsi), %r10d\n"
	"setz 3(%rdi)\n"
	"mov %r10, 56(%rdi)\n"
	"add $2, %rsi\n"
	"add $64, %rdi\n"
	"jmp 1b\n"
	"2:\n"
	"mov $0x3f8, %dx\n"
	"out %al, %dx\n"
	"hlt\n");

GUEST(ll32, ".code32",
	"mov $0x100000, %esi\n"
	"mov $0x101000, %edi\n"
	"1:\n"
	"movzwl (%esi), %eax\n"
	"cmp $0xffff, %eax\n"
	"je 2f\n"
	"mov $0x11111111, %ebx\n"
	"mov $0x22222222, %ecx\n"
	"stc\n"
	"lar %ax, %ebx\n"
	"setz (%edi)\n"
	"lar %ax, %cx\n"
	"mov %ebx, 8(%edi)\n"
	"mov %ecx, 16(%edi)\n"
	"mov $0x11111111, %ebx\n"
	"mov $0x22222222, %ecx\n"
	"lsl %ax, %ebx\n"
	"setz 1(%edi)\n"
	"lsl %ax, %cx\n"
	"setc 2(%edi)\n"
	"mov %ebx, 32(%edi)\n"
	"mov %ecx, 40(%edi)\n"
	"mov $0x33333333, %ebx\n"
	"lar (%esi), %ebx\n"
	"setz 3(%edi)\n"
	"mov %ebx, 56(%edi)\n"
	"add $2, %esi\n"
	"add $64, %edi\n"
	"jmp 1b\n"
	"2:\n"
	"hlt\n");

/* The descriptors the test adds after the harness's GDT (emu_harness.h: 0x08 code64, 0x10 data,
 * 0x18 code32, 0x20 data DPL 3, 0x28 code64 DPL 3, 0x30 64-bit TSS type 9 limit 0x67 base 0x8000,
 * 0x38 its upper half), from 0x40; the GDT's limit is 0xa7. */
static const uint64_t extra[] = {
	0x125a93345678bcdeull, /* 0x40 data RW DPL 0, base 0x12345678, limit 0xabcde, G 0, D 1, AVL 1 */
	0x00a19b0000002345ull, /* 0x48 code64 readable DPL 0, limit 0x12345, G 1 */
	0x0000820000000fffull, /* 0x50 LDT (type 2), limit 0xfff */
	0,                     /* 0x58 the LDT's upper half in IA-32e mode: type 0 */
	0x00008c0000080000ull, /* 0x60 call gate (type C: 32-bit / 64-bit) */
	0x00008e0000080000ull, /* 0x68 interrupt gate (type E): valid for neither */
	0x00cf73000000ffffull, /* 0x70 data DPL 3, not present (LAR/LSL do not check P), G 1 */
	0x0000810000000067ull, /* 0x78 available 16-bit TSS (type 1) */
	0x0000840000080000ull, /* 0x80 16-bit call gate (type 4) */
	0x0000850000080000ull, /* 0x88 task gate (type 5) */
	0x00af9f000000ffffull, /* 0x90 conforming readable code DPL 0, G 1 */
	0x0040d3000000ffffull, /* 0x98 data DPL 2, G 0 */
	0x0000830000000123ull, /* 0xa0 busy 16-bit TSS (type 3) */
};

/* lar: the 32-bit access rights (second doubleword AND 00F0FF00H); lsl: the limit in bytes.
 * Validity by mode (e: IA-32e, p: protected mode) from Tables 3-52 and 3-63; visibility at CPL 0
 * and CPL 3 (the selector's RPL counts). */
struct lcase {
	uint16_t sel;
	uint32_t lar, lsl;
	uint8_t lar_e, lsl_e, lar_p, lsl_p, vis0, vis3;
};
static const struct lcase cases[] = {
	{ 0x00, 0, 0, 0, 0, 0, 0, 0, 0 },                          /* null */
	{ 0x03, 0, 0, 0, 0, 0, 0, 0, 0 },                          /* null with RPL 3 */
	{ 0x04, 0, 0, 0, 0, 0, 0, 0, 0 },                          /* TI = 1 with no LDT */
	{ 0x08, 0x00a09b00, 0xffffffff, 1, 1, 1, 1, 1, 0 },        /* code64: DPL 0 < CPL 3 */
	{ 0x10, 0x00c09300, 0xffffffff, 1, 1, 1, 1, 1, 0 },
	{ 0x13, 0x00c09300, 0xffffffff, 1, 1, 1, 1, 0, 0 },        /* RPL 3 > DPL 0 */
	{ 0x23, 0x00c0f300, 0xffffffff, 1, 1, 1, 1, 1, 1 },        /* DPL 3 */
	{ 0x30, 0x00008900, 0x67, 1, 1, 1, 1, 1, 0 },              /* available 32/64-bit TSS */
	{ 0x38, 0, 0, 0, 0, 0, 0, 1, 0 },                          /* all zero: type 0 */
	{ 0x40, 0x00509300, 0xabcde, 1, 1, 1, 1, 1, 0 },
	{ 0x48, 0x00a09b00, 0x12345fff, 1, 1, 1, 1, 1, 0 },
	{ 0x50, 0x00008200, 0xfff, 0, 1, 1, 1, 1, 0 },             /* LDT: LAR not in IA-32e mode */
	{ 0x60, 0x00008c00, 0, 1, 0, 1, 0, 1, 0 },                 /* call gate: LAR only */
	{ 0x68, 0, 0, 0, 0, 0, 0, 1, 0 },                          /* interrupt gate */
	{ 0x73, 0x00c07300, 0xffffffff, 1, 1, 1, 1, 1, 1 },        /* not present */
	{ 0x78, 0x00008100, 0x67, 0, 0, 1, 1, 1, 0 },              /* 16-bit TSS: protected mode only */
	{ 0x80, 0x00008400, 0, 0, 0, 1, 0, 1, 0 },                 /* 16-bit call gate */
	{ 0x88, 0x00008500, 0, 0, 0, 1, 0, 1, 0 },                 /* task gate */
	{ 0x93, 0x00a09f00, 0xffffffff, 1, 1, 1, 1, 1, 1 },        /* conforming: no privilege check */
	{ 0x98, 0x0040d300, 0xffff, 1, 1, 1, 1, 1, 0 },            /* DPL 2: not at CPL 3 */
	{ 0x9b, 0x0040d300, 0xffff, 1, 1, 1, 1, 0, 0 },            /* RPL 3 > DPL 2 */
	{ 0xa0, 0x00008300, 0x123, 0, 0, 1, 1, 1, 0 },             /* busy 16-bit TSS */
	{ 0xa8, 0, 0, 0, 0, 0, 0, 0, 0 },                          /* beyond the limit: ZF = 0, no fault */
	{ 0xfff8, 0, 0, 0, 0, 0, 0, 0, 0 },
};
#define NCASES (sizeof cases / sizeof cases[0])

static uint64_t rec(struct t_vm *t, unsigned k, unsigned off) { return t_r64(t, OUT + 64 * k + off); }

static void setup(struct t_vm *t)
{
	memcpy(t->ram + T_GDT + 0x40, extra, sizeof extra);
	for (unsigned k = 0; k < NCASES; k++)
		memcpy(t->ram + SELS + 2 * k, &cases[k].sel, 2);
	memcpy(t->ram + SELS + 2 * NCASES, (uint16_t[]){ 0xffff }, 2);
}

/* 64-bit code: CPL 0 or 3 */
static void run64(int cpl)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	setup(&t);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	s.gdt.limit = 0xa7;
	if (cpl == 3) {
		t_seg(&s.cs, 0x28 | 3, 1, 1, 3);
		t_seg(&s.ds, 0x20 | 3, 0, 0, 3);
		s.es = s.fs = s.gs = s.ss = s.ds;
	}
	t.ops->set_sregs(t.cpu, &s);
	struct kvm_regs r = t_regs(&t);
	r.rflags = 0x3002; /* IOPL 3: the user-mode run ends with OUT */
	t.ops->set_regs(t.cpu, &r);
	t_load(&t, T_CODE, ll64_start, ll64_end);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	for (unsigned k = 0; k < NCASES; k++) {
		const struct lcase *e = &cases[k];
		bool vis = cpl ? e->vis3 : e->vis0, lar = vis && e->lar_e, lsl = vis && e->lsl_e;
		const uint8_t *o = t.ram + OUT + 64 * k;
		CHECK(o[0] == lar && o[1] == lsl && o[3] == lar,
		      "64-bit CPL %d selector 0x%x: LAR ZF %u (m16 %u), LSL ZF %u; expected %u, %u", cpl,
		      e->sel, o[0], o[3], o[1], lar, lsl);
		CHECK(o[2] == 1, "64-bit CPL %d selector 0x%x: CF changed", cpl, e->sel);
		CHECK(rec(&t, k, 8) == (lar ? e->lar : P8), "64-bit CPL %d 0x%x: LAR r64 0x%llx", cpl, e->sel,
		      (unsigned long long)rec(&t, k, 8));
		CHECK(rec(&t, k, 16) == (lar ? (P9 & ~0xffffull) | (e->lar & 0xff00) : P9),
		      "64-bit CPL %d 0x%x: LAR r16 0x%llx", cpl, e->sel, (unsigned long long)rec(&t, k, 16));
		/* a 32-bit destination loaded is zero-extended; one not loaded keeps at least its low half */
		CHECK(lar ? rec(&t, k, 24) == e->lar : (uint32_t)rec(&t, k, 24) == (uint32_t)P10,
		      "64-bit CPL %d 0x%x: LAR r32 0x%llx", cpl, e->sel, (unsigned long long)rec(&t, k, 24));
		CHECK(lar ? rec(&t, k, 56) == e->lar : (uint32_t)rec(&t, k, 56) == (uint32_t)P10,
		      "64-bit CPL %d 0x%x: LAR r32, m16 0x%llx", cpl, e->sel, (unsigned long long)rec(&t, k, 56));
		CHECK(rec(&t, k, 32) == (lsl ? e->lsl : P8), "64-bit CPL %d 0x%x: LSL r64 0x%llx", cpl, e->sel,
		      (unsigned long long)rec(&t, k, 32));
		CHECK(rec(&t, k, 40) == (lsl ? (P9 & ~0xffffull) | (e->lsl & 0xffff) : P9),
		      "64-bit CPL %d 0x%x: LSL r16 0x%llx", cpl, e->sel, (unsigned long long)rec(&t, k, 40));
		CHECK(lsl ? rec(&t, k, 48) == e->lsl : (uint32_t)rec(&t, k, 48) == (uint32_t)P10,
		      "64-bit CPL %d 0x%x: LSL r32 0x%llx", cpl, e->sel, (unsigned long long)rec(&t, k, 48));
	}
	t_fini(&t);
}

/* 32-bit code in legacy protected mode (EFER.LMA = 0), CPL 0: the protected-mode type columns */
static void run32(void)
{
	struct t_vm t;
	t_init(&t);
	t_prot32(&t);
	setup(&t);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	s.gdt.limit = 0xa7;
	t.ops->set_sregs(t.cpu, &s);
	t_load(&t, T_CODE, ll32_start, ll32_end);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	for (unsigned k = 0; k < NCASES; k++) {
		const struct lcase *e = &cases[k];
		bool lar = e->vis0 && e->lar_p, lsl = e->vis0 && e->lsl_p;
		const uint8_t *o = t.ram + OUT + 64 * k;
		CHECK(o[0] == lar && o[1] == lsl && o[3] == lar,
		      "32-bit selector 0x%x: LAR ZF %u (m16 %u), LSL ZF %u; expected %u, %u", e->sel, o[0],
		      o[3], o[1], lar, lsl);
		CHECK(o[2] == 1, "32-bit selector 0x%x: CF changed", e->sel);
		CHECK(t_r32(&t, OUT + 64 * k + 8) == (lar ? e->lar : 0x11111111u), "32-bit 0x%x: LAR r32 0x%x",
		      e->sel, t_r32(&t, OUT + 64 * k + 8));
		CHECK(t_r32(&t, OUT + 64 * k + 16) == (lar ? 0x22220000u | (e->lar & 0xff00) : 0x22222222u),
		      "32-bit 0x%x: LAR r16 0x%x", e->sel, t_r32(&t, OUT + 64 * k + 16));
		CHECK(t_r32(&t, OUT + 64 * k + 56) == (lar ? e->lar : 0x33333333u), "32-bit 0x%x: LAR r32, m16 0x%x",
		      e->sel, t_r32(&t, OUT + 64 * k + 56));
		CHECK(t_r32(&t, OUT + 64 * k + 32) == (lsl ? e->lsl : 0x11111111u), "32-bit 0x%x: LSL r32 0x%x",
		      e->sel, t_r32(&t, OUT + 64 * k + 32));
		CHECK(t_r32(&t, OUT + 64 * k + 40) == (lsl ? 0x22220000u | (e->lsl & 0xffff) : 0x22222222u),
		      "32-bit 0x%x: LSL r16 0x%x", e->sel, t_r32(&t, OUT + 64 * k + 40));
	}
	t_fini(&t);
}

/* Real mode: each of LAR, LSL, VERR, VERW raises #UD (vector 6 through the IVT); the handler
 * counts in BX and skips the 3-byte instruction. */
GUEST(rm, ".code16",
	"xor %bx, %bx\n"
	"lar %ax, %cx\n"
	"lsl %ax, %cx\n"
	"verr %ax\n"
	"verw %ax\n"
	"hlt\n"
	".fill 0x100 - (. - rm_start), 1, 0x90\n"
	"inc %bx\n"
	"push %bp\n"
	"mov %sp, %bp\n"
	"addw $3, 2(%bp)\n"
	"pop %bp\n"
	"iret\n");

static void run_real(void)
{
	struct t_vm t;
	t_init(&t);
	t_load(&t, T_CODE, rm_start, rm_end);
	memcpy(t.ram + 6 * 4, (uint16_t[]){ 0x100, T_CODE >> 4 }, 4); /* IVT[6] = 1000:0100 */
	emu_enter_real_mode_sipi((struct emu_vcpu *)t.cpu, T_CODE >> 12);
	struct kvm_regs r = t_regs(&t);
	r.rsp = 0x8000;
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_regs(&t).rbx & 0xffff, 4);
	t_fini(&t);
}

int main(void)
{
	run64(0);
	run64(3);
	run32();
	run_real();
	return t_result("emu_lar_lsl");
}
