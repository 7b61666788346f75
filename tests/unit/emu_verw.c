/* SPDX-License-Identifier: MIT */
/*
 * VERR and VERW (SDM Vol. 2B "VERR/VERW"), at CPL 0 and CPL 3, on every kind of descriptor the
 * manual distinguishes: null, beyond the table's limit, LDT with no LDT, system (TSS), readable and
 * execute-only code, conforming code, read-only and writable data, and privilege failures by DPL <
 * CPL and DPL < RPL. The expected ZF of each case is the test's own table, derived from the
 * manual's rules (oracle); CF set before each instruction must survive (only ZF changes).
 * Linux's MDS mitigation runs VERW on every return to user mode.
 */
#include "emu_harness.h"

#define SELS 0x100000ull  /* the selectors, 16-bit each */
#define OUT 0x101000ull   /* per selector: ZF after VERR, ZF after VERW, CF after VERW */

GUEST(vv, ".code64",
	"mov $0x100000, %rsi\n"
	"mov $0x101000, %rdi\n"
	"1:\n"
	"movzwl (%rsi), %eax\n"
	"cmp $0xffff, %eax\n"
	"je 2f\n"
	"stc\n"
	"verr %ax\n"
	"setz (%rdi)\n"
	"stc\n"
	"verw %ax\n"
	"setz 1(%rdi)\n"
	"setc 2(%rdi)\n"
	"add $2, %rsi\n"
	"add $4, %rdi\n"
	"jmp 1b\n"
	"2:\n"
	"mov $0x3f8, %dx\n"
	"out %al, %dx\n"
	"hlt\n");

struct vcase { uint16_t sel; uint8_t r0, w0, r3, w3; };
/* GDT of emu_harness.h (0x08 code64 DPL0 R, 0x10 data DPL0 RW, 0x18 code32 DPL0 R, 0x20 data DPL3 RW,
 * 0x28 code64 DPL3 R, 0x30/0x38 the 16-byte TSS) plus the test's 0x40 data DPL0 read-only, 0x48 code
 * DPL0 execute-only, 0x50 conforming code DPL0 readable, 0x58 data DPL2 RW; limit 0x5f. */
static const struct vcase cases[] = {
	{ 0x00, 0, 0, 0, 0 }, /* null */
	{ 0x03, 0, 0, 0, 0 }, /* null with RPL 3 */
	{ 0x08, 1, 0, 0, 0 }, /* readable code: VERR only; DPL 0 < CPL 3 */
	{ 0x10, 1, 1, 0, 0 }, /* writable data */
	{ 0x13, 0, 0, 0, 0 }, /* DPL 0 < RPL 3 */
	{ 0x18, 1, 0, 0, 0 },
	{ 0x20, 1, 1, 1, 1 }, /* DPL 3 */
	{ 0x23, 1, 1, 1, 1 },
	{ 0x2b, 1, 0, 1, 0 },
	{ 0x30, 0, 0, 0, 0 }, /* TSS: a system descriptor */
	{ 0x38, 0, 0, 0, 0 }, /* the TSS's upper half: S = 0 */
	{ 0x40, 1, 0, 0, 0 }, /* read-only data */
	{ 0x48, 0, 0, 0, 0 }, /* execute-only code */
	{ 0x50, 1, 0, 1, 0 }, /* conforming readable code: no privilege check for VERR */
	{ 0x53, 1, 0, 1, 0 },
	{ 0x58, 1, 1, 0, 0 }, /* DPL 2: fine at CPL 0, not at CPL 3 */
	{ 0x5a, 1, 1, 0, 0 },
	{ 0x5b, 0, 0, 0, 0 }, /* RPL 3 > DPL 2 */
	{ 0x60, 0, 0, 0, 0 }, /* beyond the GDT's limit: ZF = 0, no fault */
	{ 0xfff8, 0, 0, 0, 0 },
	{ 0x04, 0, 0, 0, 0 }, /* TI = 1 with no LDT */
};
#define NCASES (sizeof cases / sizeof cases[0])

static void run_at(int cpl)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	uint64_t extra[4] = { 0x00cf91000000ffffull,   /* 0x40 data, read-only, accessed */
			      0x00af99000000ffffull,   /* 0x48 code64, execute-only */
			      0x00af9f000000ffffull,   /* 0x50 code64, conforming, readable */
			      0x00cfd3000000ffffull }; /* 0x58 data DPL 2 RW */
	memcpy(t.ram + T_GDT + 0x40, extra, sizeof extra);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	s.gdt.limit = 0x5f;
	if (cpl == 3) {
		t_seg(&s.cs, 0x28 | 3, 1, 1, 3);
		t_seg(&s.ds, 0x20 | 3, 0, 0, 3);
		s.es = s.fs = s.gs = s.ss = s.ds;
	}
	t.ops->set_sregs(t.cpu, &s);
	struct kvm_regs r = t_regs(&t);
	r.rflags = 0x3002; /* IOPL 3: the user-mode run ends with OUT */
	t.ops->set_regs(t.cpu, &r);
	for (unsigned k = 0; k < NCASES; k++)
		memcpy(t.ram + SELS + 2 * k, &cases[k].sel, 2);
	memcpy(t.ram + SELS + 2 * NCASES, (uint16_t[]){ 0xffff }, 2);
	t_load(&t, T_CODE, vv_start, vv_end);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	for (unsigned k = 0; k < NCASES; k++) {
		const uint8_t *o = t.ram + OUT + 4 * k;
		unsigned er = cpl ? cases[k].r3 : cases[k].r0, ew = cpl ? cases[k].w3 : cases[k].w0;
		CHECK(o[0] == er && o[1] == ew, "CPL %d selector 0x%x: VERR ZF %u (expected %u), VERW ZF %u (expected %u)",
		      cpl, cases[k].sel, o[0], er, o[1], ew);
		CHECK(o[2] == 1, "CPL %d selector 0x%x: CF changed", cpl, cases[k].sel);
	}
	t_fini(&t);
}

int main(void)
{
	run_at(0);
	run_at(3);
	return t_result("emu_verw");
}
