/* SPDX-License-Identifier: MIT */
/*
 * emu engine: real mode and 16-bit code.
 *
 *   sipi     a vCPU put in the state of a Startup IPI (emu_enter_real_mode_sipi, SDM Vol. 3 10.4.4 and
 *            Table 10-1) runs a Linux-like trampoline at vector << 12: real mode -> LGDT -> CR0.PE ->
 *            32-bit protected mode -> PAE, CR3, EFER.LME, CR0.PG -> 64-bit mode -> a marker in memory;
 *   prog     a real-mode program: 16-bit addressing, string instructions with SI/DI/CX, INT n and #DE
 *            through an IVT it sets up, IRET, far CALL/RET, a 16-bit protected-mode segment and back
 *            to real mode (PE off), a 4 GiB data limit kept in real mode ("unreal mode"), IP wrapping;
 *   ea16     every 16-bit ModRM addressing form (mod 0/1/2 x rm 0..7) on random BX BP SI DI and
 *            displacements: LEA and a byte load against an independent table of SDM Vol. 2 Table 2-1
 *            (base + index + disp mod 64 KiB; SS for the BP forms, DS for the others);
 *   pm16     16-bit protected mode: 16-bit interrupt and trap gates, 16-bit frames and IRET;
 *   retchain a RET chained into a block that exits to the monitor keeps its stack pointer update;
 *   v86      EFLAGS.VM = 1 is refused with an internal error;
 *   int1     INT1 (F1, ICEBP) in real mode: vector 1 through the IVT, trap-like (SDM Vol. 2A "INT
 *            n/INTO/INT3/INT1": the pushed IP is the next instruction's), FLAGS pushed, IF/TF
 *            cleared. Not compared with QEMU: QEMU 7.2's TCG raises #UD for F1 (no WANT_ICEBP).
 */
#include "emu_harness.h"
#include "emu/emu.h"

/* --- the SIPI trampoline (at vector 0x10: CS = 0x1000, base 0x10000 = T_CODE, IP 0) */
GUEST(tramp, ".code16",
	"cli\n"
	"mov %cs, %ax\n"
	"mov %ax, %ds\n"
	"mov %ax, %ss\n"
	"mov $0x1000, %sp\n"
	"lgdtl (tr_gdtr - tramp_start)\n"
	"mov %cr0, %eax\n"
	"or $1, %eax\n"
	"mov %eax, %cr0\n"                       /* PE: 16-bit protected mode with the real-mode CS */
	"ljmpl $0x18, $(0x10000 + tr32 - tramp_start)\n"
	".code32\n"
	"tr32:\n"
	"mov $0x10, %eax\n"
	"mov %eax, %ds\n"
	"mov %eax, %es\n"
	"mov %eax, %ss\n"
	"mov $0x80000, %esp\n"
	"mov $0x20, %eax\n"
	"mov %eax, %cr4\n"                       /* PAE */
	"mov $0x1000, %eax\n"
	"mov %eax, %cr3\n"
	"mov $0xc0000080, %ecx\n"
	"rdmsr\n"
	"or $0x100, %eax\n"                      /* EFER.LME */
	"wrmsr\n"
	"mov %cr0, %eax\n"
	"or $0x80000000, %eax\n"
	"mov %eax, %cr0\n"
	"ljmp $0x08, $(0x10000 + tr64 - tramp_start)\n"
	".code64\n"
	"tr64:\n"
	"movabs $0x5049535f4f4b2121, %rax\n"
	"mov %rax, 0x100000\n"
	"mov %esp, %ebx\n"
	"hlt\n"
	"tr_gdtr: .word 63\n"
	".long 0x500\n");

/*
 * --- the real-mode program. Loaded at T_CODE and entered at CS = 0x1000, IP 0. Data at DS = 0x2000
 * (linear 0x20000), stack at SS = 0x3000 SP 0 (wraps to 0xfffe on the first push). Results are
 * words at DS:0x100.. (R(n) = 0x100 + 2n); the C side checks them.
 */
#define R(n) "(0x100 + 2 * " #n ")"
GUEST(prog, ".code16",
	"mov $0x2000, %ax\n"
	"mov %ax, %ds\n"
	"mov %ax, %es\n"
	"mov $0x3000, %ax\n"
	"mov %ax, %ss\n"
	"xor %sp, %sp\n"
	/* IVT at 0: vector 0x40 -> int40, vector 0 (#DE) -> de */
	"xor %ax, %ax\n"
	"mov %ax, %fs\n"
	"movw $(int40 - prog_start), %fs:(0x40 * 4)\n"
	"movw $0x1000, %fs:(0x40 * 4 + 2)\n"
	"movw $(de - prog_start), %fs:0\n"
	"movw $0x1000, %fs:2\n"
	/* 1. 16-bit addressing: [bx+si+disp8], [bp+di] (SS), [di+disp16], wrap of bx+si at 64 KiB */
	"mov $0x10, %bx\n"
	"mov $0x20, %si\n"
	"movw $0x1234, 0x35\n"                   /* DS:0x35 */
	"mov 5(%bx,%si), %ax\n"
	"mov %ax, " R(0) "\n"
	"mov $0x40, %bp\n"
	"mov $0x2, %di\n"
	"movw $0x5678, %ss:0x42\n"
	"mov (%bp,%di), %ax\n"                   /* SS is the default segment with BP */
	"mov %ax, " R(1) "\n"
	"mov $0xfff0, %bx\n"
	"mov $0x0018, %si\n"
	"movw $0x9abc, 0x8\n"
	"mov (%bx,%si), %ax\n"                   /* 0xfff0 + 0x18 = 0x10008 -> 0x0008 */
	"mov %ax, " R(2) "\n"
	/* 2. REP MOVSB, REP STOSW, REPE CMPSB with SI/DI/CX */
	"cld\n"
	"mov $0x200, %si\n"
	"movl $0x64636261, 0x200\n"              /* "abcd" */
	"mov $0x300, %di\n"
	"mov $4, %cx\n"
	"rep movsb\n"
	"mov %di, " R(3) "\n"                    /* 0x304 */
	"mov 0x302, %ax\n"
	"mov %ax, " R(4) "\n"                    /* "cd" */
	"mov $0x400, %di\n"
	"mov $0xbeef, %ax\n"
	"mov $3, %cx\n"
	"rep stosw\n"
	"mov 0x404, %ax\n"
	"mov %ax, " R(5) "\n"
	"mov $0x200, %si\n"
	"mov $0x300, %di\n"
	"mov $4, %cx\n"
	"repe cmpsb\n"
	"mov %cx, " R(6) "\n"                    /* 0: all equal */
	/* 3. INT 0x40 through the IVT; the handler returns a value and sees IF cleared */
	"sti\n"
	"mov $7, %ax\n"
	"int $0x40\n"
	"mov %ax, " R(7) "\n"                    /* 7 * 3 */
	"pushf\n"
	"pop %ax\n"
	"and $0x200, %ax\n"
	"mov %ax, " R(8) "\n"                    /* IRET restored IF */
	/* 4. #DE through the IVT: the handler skips the 2-byte DIV */
	"xor %cx, %cx\n"
	"mov $1, %ax\n"
	"div %cl\n"
	"mov %dx, " R(9) "\n"                    /* set by the handler */
	/* 5. far call / far return; a near call with a 16-bit return address */
	"lcall $0x1000, $(farfn - prog_start)\n"
	"mov %ax, " R(10) "\n"
	"call nearfn\n"
	"ret_here:\n"
	"mov %ax, " R(11) "\n"
	"movw $(ret_here - prog_start), " R(20) "\n"
	/* 6. PUSH/POP with SP wrapping (SS.B = 0) */
	"mov %sp, " R(12) "\n"                   /* 0 again */
	/* 7. into 16-bit protected mode (GDT at DS:0x800), load a 4 GiB data segment, back to real mode */
	"lgdt %cs:(gdtr16 - prog_start)\n"
	"cli\n"
	"mov %cr0, %eax\n"
	"or $1, %eax\n"
	"mov %eax, %cr0\n"
	"ljmp $0x08, $(pm16 - prog_start)\n"     /* 16-bit code segment, base 0x10000 */
	"pm16:\n"
	"mov $0x10, %ax\n"
	"mov %ax, %gs\n"                         /* base 0, limit 4 GiB */
	"mov %cr0, %eax\n"
	"and $0xfe, %al\n"
	"mov %eax, %cr0\n"
	"ljmp $0x1000, $(rm2 - prog_start)\n"
	"rm2:\n"
	"xor %ax, %ax\n"
	"mov %ax, %gs\n"                         /* base 0; the 4 GiB limit stays */
	"mov $0x200000, %ebx\n"
	"movl $0x11223344, %gs:(%ebx)\n"         /* beyond 1 MiB with a 32-bit address */
	"mov %gs:(%ebx), %eax\n"
	"mov %ax, " R(13) "\n"
	"smsw %ax\n"
	"and $1, %ax\n"
	"mov %ax, " R(14) "\n"                   /* PE is 0 */
	/* 8. 32-bit operand size in 16-bit code: PUSHL/POPL, 66 ADD, MOVZX, LEA with 32-bit result */
	"mov $0x12345678, %eax\n"
	"pushl %eax\n"
	"popl %edx\n"
	"shr $16, %edx\n"
	"mov %dx, " R(15) "\n"                   /* 0x1234 */
	"mov $0xfffe, %bx\n"
	"mov $0x0004, %si\n"
	"lea 0x10(%bx,%si), %eax\n"              /* 16-bit address size: 0x10012 -> 0x0012 */
	"mov %eax, " R(16) "\n"                  /* and R(17) = 0 */
	/* 9. LOOP with CX, JCXZ */
	"mov $5, %cx\n"
	"xor %ax, %ax\n"
	"1: add %cx, %ax\n"
	"loop 1b\n"
	"jcxz 2f\n"
	"mov $0xdead, %ax\n"
	"2: mov %ax, " R(18) "\n"                /* 15 */
	"hlt\n"
	/* handlers and functions */
	"int40:\n"
	"mov $3, %dx\n"
	"mul %dx\n"
	"pushf\n"
	"pop %dx\n"
	"and $0x200, %dx\n"
	"mov %dx, " R(19) "\n"                   /* 0: delivery cleared IF */
	"iret\n"
	"de:\n"
	"mov $0xd0, %dx\n"
	"push %bp\n"
	"mov %sp, %bp\n"
	"addw $2, 2(%bp)\n"                      /* the saved IP: past the DIV */
	"pop %bp\n"
	"iret\n"
	"farfn:\n"
	"mov %cs, %ax\n"
	"lret\n"
	"nearfn:\n"
	"mov %sp, %bp\n"
	"mov (%bp), %ax\n"                       /* the return address: a 16-bit IP */
	"ret\n"
	"gdtr16: .word 23\n"
	".long 0x20800\n");

/* results written by prog: words at linear 0x20100 + 2n */
static uint16_t res(struct t_vm *t, int n)
{
	uint16_t v;
	memcpy(&v, t->ram + 0x20100 + 2 * n, 2);
	return v;
}

static void test_sipi(void)
{
	struct t_vm t;
	t_init(&t);
	t_tables(&t); /* GDT at 0x500 (0x08 code64, 0x10 data, 0x18 code32), page tables at 0x1000 */
	t_load(&t, T_CODE, tramp_start, tramp_end);
	emu_enter_real_mode_sipi((struct emu_vcpu *)t.cpu, T_CODE >> 12);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	/* the SIPI state as the monitor sees it (SDM Vol. 3 10.4.3, Table 10-1) */
	CHECK_EQ(s.cs.selector, 0x1000);
	CHECK_EQ(s.cs.base, 0x10000);
	CHECK_EQ(s.cs.limit, 0xffff);
	CHECK_EQ(s.ds.base, 0);
	CHECK_EQ(s.ss.limit, 0xffff);
	CHECK_EQ(s.cr0, 0x60000010);
	CHECK_EQ(s.efer, 0);
	CHECK_EQ(t_regs(&t).rip, 0);
	CHECK_EQ(t_regs(&t).rflags, 2);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_r64(&t, 0x100000), 0x5049535f4f4b2121ull);
	t.ops->get_sregs(t.cpu, &s);
	CHECK_EQ(s.cs.l, 1);
	CHECK_EQ(s.efer & 0x500, 0x500);
	CHECK_EQ(s.cr0 & 0x80000001, 0x80000001);
	CHECK_EQ(t_regs(&t).rbx, 0x80000);
	t_fini(&t);
}

static void test_prog(void)
{
	struct t_vm t;
	t_init(&t);
	t_load(&t, T_CODE, prog_start, prog_end);
	/* GDT for step 7 at linear 0x20800: 0x08 16-bit code base 0x10000 limit 0xffff, 0x10 data 4 GiB */
	uint64_t gdt[3] = { 0, 0x00009b010000ffffull, 0x008f93000000ffffull };
	memcpy(t.ram + 0x20800, gdt, sizeof gdt);
	emu_enter_real_mode_sipi((struct emu_vcpu *)t.cpu, T_CODE >> 12);
	int ex = t_run(&t);
	CHECK_EQ(ex, KVM_EXIT_HLT);
	if (ex != KVM_EXIT_HLT)
		fprintf(stderr, "prog: exit %d at rip 0x%llx\n", ex, (unsigned long long)t_regs(&t).rip);
	CHECK_EQ(res(&t, 0), 0x1234);
	CHECK_EQ(res(&t, 1), 0x5678);
	CHECK_EQ(res(&t, 2), 0x9abc);
	CHECK_EQ(res(&t, 3), 0x304);
	CHECK_EQ(res(&t, 4), 0x6463);
	CHECK_EQ(res(&t, 5), 0xbeef);
	CHECK_EQ(res(&t, 6), 0);
	CHECK_EQ(res(&t, 7), 21);
	CHECK_EQ(res(&t, 8), 0x200);
	CHECK_EQ(res(&t, 9), 0xd0);
	CHECK_EQ(res(&t, 10), 0x1000);
	CHECK_EQ(res(&t, 11), res(&t, 20)); /* the 16-bit return address CALL pushed */
	CHECK(res(&t, 20) != 0, "ret_here");
	CHECK_EQ(res(&t, 12), 0);
	CHECK_EQ(res(&t, 13), 0x3344);
	CHECK_EQ(t_r32(&t, 0x200000), 0x11223344);
	CHECK_EQ(res(&t, 14), 0);
	CHECK_EQ(res(&t, 15), 0x1234);
	CHECK_EQ(res(&t, 16), 0x12);
	CHECK_EQ(res(&t, 17), 0);
	CHECK_EQ(res(&t, 18), 15);
	CHECK_EQ(res(&t, 19), 0);
	t_fini(&t);
}

/* SDM Vol. 2 Table 2-1, the 16-bit ModRM forms, written out independently of the engine: base and
 * index register numbers (-1: none) and whether SS is the default segment. */
static const struct { int base, index; bool ss; } t21[8] = {
	{ 3, 6, false },  /* [BX+SI] */
	{ 3, 7, false },  /* [BX+DI] */
	{ 5, 6, true },   /* [BP+SI] */
	{ 5, 7, true },   /* [BP+DI] */
	{ 6, -1, false }, /* [SI] */
	{ 7, -1, false }, /* [DI] */
	{ 5, -1, true },  /* [BP] (mod 00: disp16 alone, DS) */
	{ 3, -1, false }, /* [BX] */
};

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* the byte stored at linear address a of the two 64 KiB segments */
static uint8_t pat(uint32_t a)
{
	return (uint8_t)((a * 2654435761u) >> 13);
}

#define EA_DS 0x2000
#define EA_SS 0x3000
static void test_ea16(void)
{
	struct t_vm t;
	t_init(&t);
	for (uint32_t a = EA_DS << 4; a < (EA_SS << 4) + 0x10000; a++)
		t.ram[a] = pat(a);
	/* form f = mod * 8 + rm at T_CODE + 32 f: 66 8D /r (LEA EAX), 8A /r (MOV CL), HLT */
	int16_t disp[24];
	for (int f = 0; f < 24; f++) {
		unsigned mod = (unsigned)f / 8, rm = (unsigned)f % 8;
		uint8_t *p = t.ram + T_CODE + 32 * f;
		disp[f] = (int16_t)rnd();
		if (mod == 1)
			disp[f] = (int8_t)disp[f];
		for (int k = 0; k < 2; k++) {
			if (k == 0)
				*p++ = 0x66, *p++ = 0x8d, *p++ = (uint8_t)(mod << 6 | 0 << 3 | rm);
			else
				*p++ = 0x8a, *p++ = (uint8_t)(mod << 6 | 1 << 3 | rm);
			if (mod == 1)
				*p++ = (uint8_t)disp[f];
			else if (mod == 2 || rm == 6)
				*p++ = (uint8_t)disp[f], *p++ = (uint8_t)(disp[f] >> 8);
		}
		*p = 0xf4;
		if (mod == 0 && rm != 6)
			disp[f] = 0;
	}
	emu_enter_real_mode_sipi((struct emu_vcpu *)t.cpu, T_CODE >> 12);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	s.ds.selector = EA_DS;
	s.ds.base = EA_DS << 4;
	s.ss.selector = EA_SS;
	s.ss.base = EA_SS << 4;
	t.ops->set_sregs(t.cpu, &s);
	int bad = 0;
	for (int n = 0; n < 1000; n++) {
		for (int f = 0; f < 24; f++) {
			unsigned mod = (unsigned)f / 8, rm = (unsigned)f % 8;
			uint64_t g[8];
			struct kvm_regs r = t_regs(&t);
			for (int k = 0; k < 8; k++)
				g[k] = rnd();
			g[4] = r.rsp;
			r.rax = g[0]; r.rcx = g[1]; r.rdx = g[2]; r.rbx = g[3];
			r.rbp = g[5]; r.rsi = g[6]; r.rdi = g[7];
			r.rip = 32 * (uint64_t)f;
			t.ops->set_regs(t.cpu, &r);
			if (t_run(&t) != KVM_EXIT_HLT) {
				bad++;
				continue;
			}
			r = t_regs(&t);
			uint32_t ea;
			bool ss;
			if (mod == 0 && rm == 6) {
				ea = (uint16_t)disp[f];
				ss = false;
			} else {
				uint32_t sum = (uint16_t)g[t21[rm].base] + (uint32_t)(uint16_t)disp[f];
				if (t21[rm].index >= 0)
					sum += (uint16_t)g[t21[rm].index];
				ea = sum & 0xffff;
				ss = t21[rm].ss;
			}
			uint8_t want = pat(((ss ? EA_SS : EA_DS) << 4) + ea);
			if (r.rax != ea || (uint8_t)r.rcx != want || (r.rcx & ~0xffull) != (g[1] & ~0xffull)) {
				if (bad++ < 5)
					fprintf(stderr, "ea16 mod %u rm %u: lea 0x%llx want 0x%x, load 0x%llx want 0x%x\n",
						mod, rm, (unsigned long long)r.rax, ea, (unsigned long long)r.rcx & 0xff,
						want);
			}
		}
	}
	CHECK_EQ(bad, 0);
	t_fini(&t);
}

/* 16-bit protected mode: CS.D = 0 code, a 16-bit interrupt gate (type 6: IF cleared) and a 16-bit
 * trap gate (type 7: IF kept) push 16-bit FLAGS/CS/IP on a 16-bit stack (SP only changes: ESP's
 * upper half stays), IRET with a 16-bit operand size returns (SDM Vol. 3 6.11, 6.12.1). */
GUEST(pm16, ".code16",
	"sti\n"
	"mov $5, %ax\n"
	"int $0x30\n"
	"pm_ret:\n"
	"mov %ax, 0x10\n"
	"xor %cl, %cl\n"
	"div %cl\n"                             /* #DE through the trap gate: skips the DIV */
	"mov %sp, 0x12\n"
	"mov %esp, 0x14\n"
	"movw $(pm_ret - pm16_start), 0x18\n"
	"hlt\n"
	"pm_int30:\n"
	"mov %sp, %bp\n"
	"mov (%bp), %bx\n mov %bx, 0x0\n"     /* IP */
	"mov 2(%bp), %bx\n mov %bx, 0x2\n"    /* CS */
	"mov 4(%bp), %bx\n mov %bx, 0x4\n"    /* FLAGS */
	"pushf\n pop %bx\n mov %bx, 0x6\n"   /* IF cleared by the interrupt gate */
	"add %ax, %ax\n"
	"iret\n"
	"pm_de:\n"
	"pushf\n pop %bx\n mov %bx, 0x8\n"   /* IF kept by the trap gate */
	"mov %sp, %bp\n"
	"addw $2, (%bp)\n"
	"iret\n"
	"pm_end:\n");

static void gate16(struct t_vm *t, uint64_t idt, int vec, uint16_t off, int type)
{
	uint8_t *g = t->ram + idt + 8 * vec;
	memset(g, 0, 8);
	g[0] = (uint8_t)off;
	g[1] = (uint8_t)(off >> 8);
	g[2] = 0x08;
	g[5] = (uint8_t)(0x80 | type);
}

static void test_pm16(void)
{
	struct t_vm t;
	t_init(&t);
	t_load(&t, T_CODE, pm16_start, pm16_end);
	/* GDT at 0x600: 0x08 16-bit code base 0x10000, 0x10 data base 0x20000, 0x18 16-bit stack 0x30000 */
	uint64_t gdt[4] = { 0, 0x00009b010000ffffull, 0x000093020000ffffull, 0x000093030000ffffull };
	memcpy(t.ram + 0x600, gdt, sizeof gdt);
	/* the handlers' offsets: the blob is assembled from pm16_start, so find them by their code */
	const uint8_t *h30 = NULL, *hde = NULL;
	for (const uint8_t *p = pm16_start; p + 4 < pm16_end; p++) {
		if (!h30 && p[0] == 0x89 && p[1] == 0xe5 && p[2] == 0x8b && p[3] == 0x5e)
			h30 = p; /* mov %sp,%bp; mov (%bp),%bx */
		if (!hde && p[0] == 0x9c && p[1] == 0x5b && p[2] == 0x89 && p[3] == 0x1e && p[4] == 0x08)
			hde = p; /* pushf; pop %bx; mov %bx,0x8 */
	}
	CHECK(h30 && hde, "handlers found");
	if (!h30 || !hde) {
		t_fini(&t);
		return;
	}
	gate16(&t, 0x700, 0x30, (uint16_t)(h30 - pm16_start), 6);
	gate16(&t, 0x700, 0, (uint16_t)(hde - pm16_start), 7);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	struct kvm_segment cs = { .base = 0x10000, .limit = 0xffff, .selector = 0x08, .type = 0xb, .present = 1, .s = 1 };
	struct kvm_segment ds = { .base = 0x20000, .limit = 0xffff, .selector = 0x10, .type = 0x3, .present = 1, .s = 1 };
	struct kvm_segment ss = ds;
	ss.base = 0x30000;
	ss.selector = 0x18;
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = ds;
	s.ss = ss;
	s.gdt.base = 0x600;
	s.gdt.limit = sizeof gdt - 1;
	s.idt.base = 0x700;
	s.idt.limit = 0x800 - 1;
	s.cr0 = 0x11;
	s.efer = 0;
	s.cr4 = 0;
	t.ops->set_sregs(t.cpu, &s);
	struct kvm_regs r = { .rip = 0, .rsp = 0x12341000, .rflags = 2 };
	t.ops->set_regs(t.cpu, &r);
	int ex = t_run(&t);
	CHECK_EQ(ex, KVM_EXIT_HLT);
	uint16_t w[16];
	memcpy(w, t.ram + 0x20000, sizeof w);
	CHECK_EQ(w[0], w[0xc]);           /* IP pushed: after INT 0x30 */
	CHECK_EQ(w[1], 0x08);             /* CS */
	CHECK_EQ(w[2] & 0x200, 0x200);    /* FLAGS pushed with IF (STI) */
	CHECK_EQ(w[3] & 0x200, 0);        /* interrupt gate: IF cleared */
	CHECK_EQ(w[4] & 0x200, 0x200);    /* trap gate: IF kept */
	CHECK_EQ(w[8], 10);               /* the handler doubled AX */
	CHECK_EQ(w[9], 0x1000);           /* SP back */
	CHECK_EQ(w[10] | (uint32_t)w[11] << 16, 0x12341000); /* ESP's upper half untouched */
	t_fini(&t);
}

/* A RET that chains into a block ending in an I/O exit (branch_to(), exec.c): the exit's status
 * comes back through the RET's handler, which must not undo its stack pointer update (it did: the
 * KVM test suite's realmode test lost its return addresses in print_serial's polling loop). */
GUEST(retchain, ".code32",
	"mov $3, %ecx\n"
	"1: push $" GADDR(retchain, 2f) "\n"
	"ret\n"
	"2: in $0x10, %al\n"                   /* an exit: the 2nd and 3rd time in a chained block */
	"dec %ecx\n"
	"jnz 1b\n"
	"hlt\n");

static void test_ret_chain(void)
{
	struct t_vm t;
	t_init(&t);
	t_prot32(&t);
	t_load(&t, T_CODE, retchain_start, retchain_end);
	for (int k = 0; k < 3; k++) {
		CHECK_EQ(t_run(&t), KVM_EXIT_IO);
		CHECK_EQ(t_regs(&t).rsp, T_STACK); /* the RET popped what the PUSH pushed */
	}
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_regs(&t).rsp, T_STACK);
	t_fini(&t);
}

static void test_v86(void)
{
	struct t_vm t;
	t_init(&t);
	t_prot32(&t);
	t.ram[T_CODE] = 0xf4;
	struct kvm_regs r = t_regs(&t);
	r.rflags |= 0x20000;
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_INTERNAL_ERROR);
	t_fini(&t);
}

GUEST(int1, ".code16",
	"mov $0x1234, %ax\n"
	"mov $0x0201, %dx\n"
	"push %dx\n popf\n"      /* IF CF */
	".byte 0xf1\n"
	"hlt\n"
	".fill 0x100 - (. - int1_start), 1, 0x90\n"
	"pop %bx\n pop %cx\n pop %dx\n"  /* IP CS FLAGS */
	"pushf\n pop %si\n"
	"hlt\n");

static void test_int1(void)
{
	struct t_vm t;
	t_init(&t);
	t_load(&t, T_CODE, int1_start, int1_end);
	memcpy(t.ram + 1 * 4, (uint16_t[]){ 0x100, T_CODE >> 4 }, 4); /* IVT[1] = 1000:0100 */
	emu_enter_real_mode_sipi((struct emu_vcpu *)t.cpu, T_CODE >> 12);
	struct kvm_regs r = t_regs(&t);
	r.rsp = 0x8000;
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	r = t_regs(&t);
	CHECK_EQ(r.rbx & 0xffff, 3 + 3 + 2 + 1); /* MOV, MOV, PUSH POPF, F1: the HLT after F1 */
	CHECK_EQ(r.rcx & 0xffff, T_CODE >> 4);
	CHECK_EQ(r.rdx & 0xfff, 0x203);          /* IF, CF as before F1 (bit 1 always 1) */
	CHECK_EQ(r.rsi & 0x300, 0);              /* IF and TF cleared by the delivery */
	CHECK_EQ(r.rsp & 0xffff, 0x8000);       /* three words pushed, three popped */
	CHECK_EQ(r.rax & 0xffff, 0x1234);
	CHECK_EQ(r.rip, 0x100 + 6);              /* after the handler's HLT: one delivery */
	t_fini(&t);
}

int main(void)
{
	test_sipi();
	test_prog();
	test_ea16();
	test_pm16();
	test_ret_chain();
	test_v86();
	test_int1();
	return t_result("emu_realmode");
}
