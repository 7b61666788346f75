/* SPDX-License-Identifier: MIT */
/*
 * emu engine: segment limits outside 64-bit mode (SDM Vol. 3 5.3 "Limit Checking", Vol. 1 3.4.5,
 * Vol. 3 20.1.1 for real mode). The oracle is the SDM's text, case by case:
 *   - an access whose bytes are not all within [0, limit] (expand-up) or (limit, 0xFFFF or
 *     0xFFFFFFFF as D/B says] (expand-down) raises #SS(0) through SS (stack instructions, memory
 *     operands with SS, the EBP-based ones by default) and #GP(0) through any other segment, as a
 *     fault: EIP at the instruction, ESP as before it (a string instruction: the registers as after
 *     its last completed iteration);
 *   - a near JMP/Jcc/CALL/RET/LOOP or a far JMP whose target offset is beyond (the new) CS's limit:
 *     #GP(0) at the branch, ESP and ECX as before it; code running
 *     into the end of CS: #GP(0) at the instruction that crosses the limit, the ones before it done;
 *   - real mode: the same against the limit the descriptor cache holds (0xFFFF after RESET: a word
 *     at offset 0xFFFF faults, vector 13 / 12 without an error code; 4 GiB - 1 kept: "unreal mode");
 *   - a null (unusable) data segment: #GP(0) on any access (SDM Vol. 3 3.4.2);
 *   - an event's frame that does not fit in SS: #SS(EXT), here a triple fault in the end;
 *   - 64-bit mode checks no limit (SDM Vol. 3 5.3.1), nor does INVLPG (SDM Vol. 2 "INVLPG": it
 *     drops the entry of the linear address formed beyond DS's limit).
 * Protected-mode cases run at CPL 3, so that the exception switches to the flat ring-0 stack of
 * the 32-bit TSS (a fault through a limited SS cannot be delivered on that SS). Handlers record
 * the vector, the error code, the faulting EIP and the user ESP at R_* (through SS: flat at CPL 0).
 * Every fault case fails without the limit checks (the access, push or jump completes).
 */
#include "emu_harness.h"

#define T_HND 0xf000          /* handlers (ring 0, 32-bit; and the real-mode ones) */
#define R_VEC 0x7000
#define R_ERR 0x7004
#define R_EIP 0x7008
#define R_ESP 0x700c
#define T_TSS32 0x8000
#define USER_ESP 0x70000

/* 32-bit ring-0 handlers: with an error code (12, 13) and without (6, the end marker ud2); any
 * other vector: 0xee. The user's ESP is in the frame after EIP, CS, EFLAGS. */
#define HANDLER_ERR(v)                                                                           \
	".globl h" #v "\nh" #v ":\n"                                                             \
	"movl $" #v ", %ss:0x7000\n"                                                            \
	"mov (%esp), %eax\n" "mov %eax, %ss:0x7004\n"                                            \
	"mov 4(%esp), %eax\n" "mov %eax, %ss:0x7008\n"                                           \
	"mov 16(%esp), %eax\n" "mov %eax, %ss:0x700c\n"                                          \
	"hlt\n"
GUEST(hnd, ".code32",
	HANDLER_ERR(12) HANDLER_ERR(13)
	".globl h6\nh6:\n"
	"movl $6, %ss:0x7000\n"
	"mov (%esp), %eax\n" "mov %eax, %ss:0x7008\n"
	"mov 12(%esp), %eax\n" "mov %eax, %ss:0x700c\n"
	"hlt\n"
	".globl hx\nhx:\n"
	"movl $0xee, %ss:0x7000\n"
	"hlt\n"
	/* real mode (IVT): no error code; IP at (%sp) */
	".code16\n"
	".globl r12\nr12:\n" "movw $12, %ss:0x7000\n" "jmp rcommon\n"
	".globl r13\nr13:\n" "movw $13, %ss:0x7000\n" "jmp rcommon\n"
	".globl rx\nrx:\n" "movw $0xee, %ss:0x7000\n" "jmp rcommon\n"
	".globl r6\nr6:\n" "movw $6, %ss:0x7000\n"
	"rcommon:\n" "mov %sp, %bp\n" "mov (%bp), %ax\n" "mov %ax, %ss:0x7008\n" "hlt\n");
extern const uint8_t h6[], h12[], h13[], hx[], r6[], r12[], r13[], rx[];
#define HADDR(l) (T_HND + (uint32_t)((l) - hnd_start))

/* F(name): the label of the instruction expected to fault (or the ud2 that ends a passing case) */
#define F(n) ".globl " #n "_f\n" #n "_f:\n"
#define CASE32(n, body) GUEST(n, ".code32", body); extern const uint8_t n##_f[]
#define CASE16(n, body) GUEST(n, ".code16", body); extern const uint8_t n##_f[]

/* DS expand-up, limit 0xfff: a dword at 0xffc is the last one in; at 0xffd it crosses */
CASE32(ds_up, "mov 0xffc, %eax\n" "movb 0xfff, %al\n" F(ds_up) "mov 0xffd, %eax\n" "ud2\n");
/* SS limit 0xffff: [EBP+disp] is SS-relative (#SS), as is an explicit SS: override */
CASE32(ss_mem, "xor %ebp, %ebp\n" "mov 0xfffc(%ebp), %eax\n" F(ss_mem) "mov 0xfffd(%ebp), %eax\n" "ud2\n");
CASE32(ss_ovr, "mov %ss:0xfffc, %eax\n" F(ss_ovr) "mov %ss:0x10000, %al\n" "ud2\n");
/* ES limit 0xfff through an override; DS (flat) at the same offset is fine */
CASE32(es_ovr, "mov 0x1000, %eax\n" F(es_ovr) "mov %es:0x1000, %eax\n" "ud2\n");
/* DS expand-down, limit 0xfff, B = 1: (0xfff, 0xffffffff] (base 1 MiB: the top offsets wrap to RAM) */
CASE32(down32, "mov 0x1000, %eax\n" "movb 0xffffffff, %al\n" "mov 0xfffffffc, %eax\n" F(down32)
	"mov 0xffe, %eax\n" "ud2\n");
CASE32(down32_top, F(down32_top) "mov 0xfffffffd, %eax\n" "ud2\n");
/* expand-down, B = 0: (0xfff, 0xffff] */
CASE32(down16, "mov 0xfffc, %eax\n" F(down16) "mov 0xfffd, %eax\n" "ud2\n");
/* a null DS (unusable: loaded with selector 0 in protected mode): any access is #GP(0), SS works */
CASE32(ds_null, "mov %ss:0x1000, %eax\n" F(ds_null) "mov 0x1000, %eax\n" "ud2\n");
/* PUSH / POP against SS expand-up limit 0xfff */
CASE32(push_up, "push %eax\n" "mov $0x1002, %esp\n" F(push_up) "push %eax\n" "ud2\n");
CASE32(pop_up, "pop %eax\n" F(pop_up) "pop %eax\n" "ud2\n");
/* SS expand-down limit 0x5fff: the stack may grow down to 0x6000 */
CASE32(push_down, "push %eax\n" "push %eax\n" F(push_down) "push %eax\n" "ud2\n");
/* a stack access with a memory operand: PUSH [mem] through a limited DS is #GP, not #SS */
CASE32(push_mem, F(push_mem) "pushl 0xffd\n" "ud2\n");
/* REP MOVSB crossing ES's limit 0x10fff: 16 bytes move, then #GP(0) with the registers there */
CASE32(rep_es, "cld\n" F(rep_es) "rep movsb\n" "ud2\n");
/* REP MOVSD whose source crosses DS's limit 0x20007: two dwords, then #GP(0) */
CASE32(rep_ds, "cld\n" F(rep_ds) "rep movsl\n" "ud2\n");
/* LODS through an SS: override: #SS */
CASE32(lods_ss, "cld\n" "lodsw %ss:(%esi), %ax\n" F(lods_ss) "lodsw %ss:(%esi), %ax\n" "ud2\n");
/* BT with a register bit offset: the dword accessed is at 0xff0 + 0x1000 */
CASE32(bt_reg, "mov $0x20, %eax\n" "bt %eax, 0xff0\n" "mov $0x8000, %eax\n" F(bt_reg) "bt %eax, 0xff0\n"
	"ud2\n");
/* a far JMP to selector 0x33 (limit 0x10fff): within, then beyond */
CASE32(ljmp, "ljmp $0x33, $" GADDR(ljmp, ljmp_in) "\n" "ud2\n"
	"ljmp_in:\n" F(ljmp) "ljmp $0x33, $0x11000\n" "ud2\n");
/* near branches to an offset beyond CS's limit (T_CODE + 0xfff): #GP(0) at the branch, with
 * ESP (CALL, RET) and ECX (LOOP) as before it */
CASE32(nb_jmp, F(nb_jmp) "jmp 1f\n" ".skip 0x1000, 0x90\n" "1: ud2\n");
CASE32(nb_jz, "xor %eax, %eax\n" F(nb_jz) "jz 1f\n" ".skip 0x1000, 0x90\n" "1: ud2\n");
CASE32(nb_call, F(nb_call) "call 1f\n" ".skip 0x1000, 0x90\n" "1: ud2\n");
CASE32(nb_jmpr, "mov $0x11000, %ebx\n" F(nb_jmpr) "jmp *%ebx\n" "ud2\n");
CASE32(nb_ret, "push $0x11000\n" F(nb_ret) "ret\n" "ud2\n");
CASE32(nb_loop, "mov $5, %ecx\n" F(nb_loop) "loop 1f\n" ".skip 16, 0x90\n" "1: ud2\n");
/* code running into the end of CS: two INCs run, the MOV (5 bytes) crosses the limit */
CASE32(cs_end, "inc %ecx\n" "inc %ecx\n" F(cs_end) "mov $1, %edx\n" "ud2\n");
/* 16-bit protected mode: a word at 0xfff crosses DS's limit; PUSH with SP = 0x1001 crosses SS's */
CASE16(pm16_ds, "mov 0xffe, %ax\n" F(pm16_ds) "mov 0xfff, %ax\n" "ud2\n");
CASE16(pm16_push, "push %ax\n" "mov $0x1001, %sp\n" F(pm16_push) "push %ax\n" "ud2\n");
/* real mode, limits 0xffff: a word at 0xffff through DS (13) and through SS ([BP+disp]: 12). Not
 * a PUSH: the interrupt's own pushes would fault the same way (a double fault) */
CASE16(real_ds, "mov 0xfffe, %ax\n" F(real_ds) "mov 0xffff, %ax\n" "ud2\n");
CASE16(real_ss, "xor %bp, %bp\n" "mov 0xfffe(%bp), %ax\n" F(real_ss) "mov 0xffff(%bp), %ax\n" "ud2\n");
/* real mode with DS's limit 4 GiB - 1 kept ("unreal mode"): a 32-bit offset reaches 0x12340 */
CASE16(unreal, "mov $0x12340, %esi\n" "addr32 mov (%esi), %edx\n" F(unreal) "ud2\n");
/* INVLPG through DS (base 0x300000, limit 0xfff) at offset 0x1000: no limit check, it drops the
 * entry of linear 0x301000, whose PTE (PAE: at 0x22000 + 8 * 0x101) now maps physical 0x302000 */
GUEST(invlpg, ".code32",
	"mov %es:0x301000, %eax\n"
	"movl $0x302003, %es:0x22808\n"
	"invlpg 0x1000\n"
	"mov %es:0x301000, %eax\n"
	"hlt\n");
/* an exception whose frame does not fit in SS (CPL 0, no stack switch) */
GUEST(frame, ".code32", "ud2\n");
/* 64-bit mode: no limit at all (DS's cache says 0xfff) */
GUEST(long64, ".code64", "mov 0x100000, %eax\n" "hlt\n");

static void wr32(struct t_vm *t, uint64_t gpa, uint32_t v) { memcpy(t->ram + gpa, &v, 4); }

static void gate32(struct t_vm *t, int vec, uint32_t handler)
{
	uint64_t g = (handler & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((uint64_t)(handler >> 16) << 48);
	t_w64(t, T_IDT + 8 * (uint64_t)vec, g);
}

static void seg(struct kvm_segment *s, uint16_t sel, unsigned type, uint32_t limit, int db, int dpl)
{
	memset(s, 0, sizeof *s);
	s->selector = sel;
	s->type = (uint8_t)type;
	s->limit = limit;
	s->g = limit > 0xfffff;
	s->s = 1;
	s->present = 1;
	s->db = (uint8_t)db;
	s->dpl = (uint8_t)dpl;
}

/* 32-bit protected mode, paging off, CPL 3, flat segments; ring-0 handlers through a 32-bit IDT
 * and TSS. The case then narrows segments in *s and registers in *r before they are set. */
static void pm_setup(struct t_vm *t, const uint8_t *start, const uint8_t *end, struct kvm_sregs *s,
		     struct kvm_regs *r)
{
	t_init(t);
	uint64_t gdt[8] = { 0,
			    0x00cf9b000000ffffull,   /* 0x08 code32 dpl0 */
			    0x00cf93000000ffffull,   /* 0x10 data dpl0 */
			    0x00cffb000000ffffull,   /* 0x18 code32 dpl3 */
			    0x00cff3000000ffffull,   /* 0x20 data dpl3 */
			    0, 
			    0x0041fb0000000fffull,   /* 0x30 code32 dpl3, limit 0x10fff (byte granular) */
			    0 };
	gdt[5] = 0x67 | ((uint64_t)T_TSS32 << 16) | (0x89ull << 40); /* 0x28 32-bit TSS */
	memcpy(t->ram + T_GDT, gdt, sizeof gdt);
	wr32(t, T_TSS32 + 4, 0x7f000); /* ESP0 */
	wr32(t, T_TSS32 + 8, 0x10);    /* SS0 */
	t_load(t, T_HND, hnd_start, hnd_end);
	for (int v = 0; v < 32; v++)
		gate32(t, v, HADDR(hx));
	gate32(t, 6, HADDR(h6));
	gate32(t, 12, HADDR(h12));
	gate32(t, 13, HADDR(h13));
	t_load(t, T_CODE, start, end);
	wr32(t, R_VEC, 0x5555);
	t->ops->get_sregs(t->cpu, s);
	seg(&s->cs, 0x1b, 0xb, 0xffffffff, 1, 3);
	seg(&s->ds, 0x23, 0x3, 0xffffffff, 1, 3);
	s->es = s->fs = s->gs = s->ss = s->ds;
	memset(&s->tr, 0, sizeof s->tr);
	s->tr.selector = 0x28;
	s->tr.base = T_TSS32;
	s->tr.limit = 0x67;
	s->tr.type = 0xb;
	s->tr.present = 1;
	s->gdt.base = T_GDT;
	s->gdt.limit = sizeof gdt - 1;
	s->idt.base = T_IDT;
	s->idt.limit = 32 * 8 - 1;
	s->cr0 = 0x11; /* PE ET */
	s->cr4 = 0;
	s->efer = 0;
	*r = (struct kvm_regs){ .rip = T_CODE, .rsp = USER_ESP, .rflags = 2 };
}

struct outcome { uint32_t vec, err, eip, esp; struct kvm_regs r; };

static struct outcome finish(struct t_vm *t, const struct kvm_sregs *s, const struct kvm_regs *r)
{
	t->ops->set_sregs(t->cpu, s);
	t->ops->set_regs(t->cpu, r);
	struct outcome o;
	int e = t_run(t);
	CHECK_EQ(e, KVM_EXIT_HLT);
	o.r = t_regs(t);
	if (e != KVM_EXIT_HLT)
		fprintf(stderr, "exit %d rip 0x%llx rsp 0x%llx mmio 0x%llx\n", e, (unsigned long long)o.r.rip, (unsigned long long)o.r.rsp, (unsigned long long)t->run->mmio.phys_addr);
	o.vec = t_r32(t, R_VEC);
	o.err = t_r32(t, R_ERR);
	o.eip = t_r32(t, R_EIP);
	o.esp = t_r32(t, R_ESP);
	return o;
}

/* The fault a case expects: vector, error code (0), EIP at its F() label, and the user's ESP. */
static void expect(const char *name, const struct outcome *o, uint32_t vec, uint32_t eip, uint32_t esp)
{
	CHECK(o->vec == vec, "%s: vector %u, want %u", name, o->vec, vec);
	if (vec != 6)
		CHECK(o->err == 0, "%s: error code 0x%x, want 0", name, o->err);
	CHECK(o->eip == eip, "%s: eip 0x%x, want 0x%x", name, o->eip, eip);
	if (esp)
		CHECK(o->esp == esp, "%s: esp 0x%x, want 0x%x", name, o->esp, esp);
}

#define AT(n) (T_CODE + (uint32_t)(n##_f - n##_start))

/* One protected-mode case: segment `which` gets (type, limit, db); regs from the initialiser. */
struct pcase {
	const char *name;
	const uint8_t *start, *end;
	uint32_t f;
	int which;              /* EMU_ES.. EMU_GS (0 ES, 1 CS, 2 SS, 3 DS), -1: none */
	unsigned type;
	uint32_t limit, base;   /* base: offsets near 4 GiB wrap into RAM (linear addresses are 32-bit) */
	int db;
	uint32_t vec, esp;
	uint64_t rsi, rdi, rcx, rsp;
	bool code16, unusable;
};

#define PC(n, ...) { .name = #n, .start = n##_start, .end = n##_end, .f = AT(n), __VA_ARGS__ }

static void run_pcase(const struct pcase *c, struct outcome *out)
{
	struct t_vm t;
	struct kvm_sregs s;
	struct kvm_regs r;
	pm_setup(&t, c->start, c->end, &s, &r);
	struct kvm_segment *sg[] = { &s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs };
	if (c->which >= 0) {
		struct kvm_segment *g = sg[c->which];
		g->type = (uint8_t)c->type;
		g->limit = c->limit;
		g->g = c->limit > 0xfffff;
		g->db = (uint8_t)c->db;
		g->base = c->base;
		g->unusable = c->unusable;
	}
	if (c->code16)
		s.cs.db = 0;
	r.rsi = c->rsi;
	r.rdi = c->rdi;
	r.rcx = c->rcx;
	if (c->rsp)
		r.rsp = c->rsp;
	struct outcome o = finish(&t, &s, &r);
	expect(c->name, &o, c->vec, c->f, c->esp);
	if (out)
		*out = o;
	t_fini(&t);
}

enum { ES_ = 0, CS_ = 1, SS_ = 2, DS_ = 3 };

static void protected_cases(void)
{
	const struct pcase cases[] = {
		PC(ds_up, .which = DS_, .type = 3, .limit = 0xfff, .db = 1, .vec = 13),
		PC(ss_mem, .which = SS_, .type = 3, .limit = 0xffff, .db = 1, .vec = 12, .rsp = 0x8000),
		PC(ss_ovr, .which = SS_, .type = 3, .limit = 0xffff, .db = 1, .vec = 12, .rsp = 0x8000),
		PC(es_ovr, .which = ES_, .type = 3, .limit = 0xfff, .db = 1, .vec = 13),
		PC(ds_null, .which = DS_, .type = 3, .limit = 0xffffffff, .db = 1, .vec = 13, .unusable = true),
		PC(down32, .which = DS_, .type = 7, .limit = 0xfff, .db = 1, .vec = 13, .base = 0x100000),
		PC(down32_top, .which = DS_, .type = 7, .limit = 0xfff, .db = 1, .vec = 13, .base = 0x100000),
		PC(down16, .which = DS_, .type = 7, .limit = 0xfff, .db = 0, .vec = 13),
		PC(push_up, .which = SS_, .type = 3, .limit = 0xfff, .db = 1, .vec = 12, .rsp = 0x1000, .esp = 0x1002),
		PC(pop_up, .which = SS_, .type = 3, .limit = 0xfff, .db = 1, .vec = 12, .rsp = 0xffc, .esp = 0x1000),
		PC(push_down, .which = SS_, .type = 7, .limit = 0x5fff, .db = 1, .vec = 12, .rsp = 0x6008,
		   .esp = 0x6000),
		PC(push_mem, .which = DS_, .type = 3, .limit = 0xfff, .db = 1, .vec = 13, .esp = USER_ESP),
		PC(pm16_ds, .which = DS_, .type = 3, .limit = 0xfff, .db = 0, .vec = 13, .code16 = true),
		PC(pm16_push, .which = SS_, .type = 3, .limit = 0xfff, .db = 0, .vec = 12, .rsp = 0x1000,
		   .esp = 0x1001, .code16 = true),
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
		run_pcase(&cases[k], NULL);

	const struct pcase near[] = {
		PC(nb_jmp, .which = CS_, .type = 0xb, .limit = T_CODE + 0xfff, .db = 1, .vec = 13, .esp = USER_ESP),
		PC(nb_jz, .which = CS_, .type = 0xb, .limit = T_CODE + 0xfff, .db = 1, .vec = 13, .esp = USER_ESP),
		PC(nb_call, .which = CS_, .type = 0xb, .limit = T_CODE + 0xfff, .db = 1, .vec = 13, .esp = USER_ESP),
		PC(nb_jmpr, .which = CS_, .type = 0xb, .limit = T_CODE + 0xfff, .db = 1, .vec = 13, .esp = USER_ESP),
		PC(nb_ret, .which = CS_, .type = 0xb, .limit = T_CODE + 0xfff, .db = 1, .vec = 13,
		   .esp = USER_ESP - 4),
		/* the limit ends within the NOPs between LOOP and its target */
		PC(nb_loop, .which = CS_, .type = 0xb, .limit = AT(nb_loop) + 2 + 8, .db = 1, .vec = 13,
		   .esp = USER_ESP),
	};
	for (size_t k = 0; k < sizeof near / sizeof near[0]; k++) {
		struct outcome o;
		run_pcase(&near[k], &o);
		if (near[k].start == nb_loop_start)
			CHECK_EQ(o.r.rcx, 5);
	}

	/* strings: the registers after the last completed iteration */
	struct outcome o;
	struct pcase rep_es_c = PC(rep_es, .which = ES_, .type = 3, .limit = 0x10fff, .db = 1, .vec = 13,
				   .rsi = 0x20000, .rdi = 0x10ff0, .rcx = 0x20);
	run_pcase(&rep_es_c, &o);
	CHECK_EQ(o.r.rdi, 0x11000);
	CHECK_EQ(o.r.rsi, 0x20010);
	CHECK_EQ(o.r.rcx, 0x10);
	struct pcase rep_ds_c = PC(rep_ds, .which = DS_, .type = 3, .limit = 0x20007, .db = 1, .vec = 13,
				   .rsi = 0x20000, .rdi = 0x30000, .rcx = 4);
	run_pcase(&rep_ds_c, &o);
	CHECK_EQ(o.r.rsi, 0x20008);
	CHECK_EQ(o.r.rdi, 0x30008);
	CHECK_EQ(o.r.rcx, 2);
	struct pcase lods_c = PC(lods_ss, .which = SS_, .type = 3, .limit = 0xfff, .db = 1, .vec = 12,
				 .rsi = 0xffe, .rsp = 0x800);
	run_pcase(&lods_c, &o);
	CHECK_EQ(o.r.rsi, 0x1000);
	struct pcase bt_c = PC(bt_reg, .which = DS_, .type = 3, .limit = 0xfff, .db = 1, .vec = 13);
	run_pcase(&bt_c, NULL);

	/* far JMP: CS becomes selector 0x33 (limit 0x10fff) at the first; the second's target is beyond */
	struct pcase lj = PC(ljmp, .which = -1, .vec = 13);
	run_pcase(&lj, &o);
	struct t_vm t;
	struct kvm_sregs s;
	struct kvm_regs r;

	/* The frame of an exception delivered at CPL 0 on SS expand-down, limit 0xfff: with ESP =
	 * 0x100c the 12 bytes of #UD's frame fit (the handler runs); with 0x1003 they do not: #SS(EXT)
	 * (SDM Vol. 2 "INT n": "IF current stack does not have room ... #SS(EXT)"), whose own frame
	 * does not fit either: #DF (two contributory exceptions, SDM Vol. 3 Table 6-5), whose frame
	 * does not fit: a triple fault, shutdown (6.15 "Interrupt 8"). */
	for (int k = 0; k < 2; k++) {
		pm_setup(&t, frame_start, frame_end, &s, &r);
		seg(&s.cs, 0x08, 0xb, 0xffffffff, 1, 0);
		seg(&s.ss, 0x10, 0x7, 0xfff, 1, 0);
		r.rsp = k ? 0x1003 : 0x100c;
		t.ops->set_sregs(t.cpu, &s);
		t.ops->set_regs(t.cpu, &r);
		int e = t_run(&t);
		CHECK(e == (k ? KVM_EXIT_SHUTDOWN : KVM_EXIT_HLT), "frame %d: exit %d", k, e);
		CHECK_EQ(t_r32(&t, R_VEC), k ? 0x5555 : 6); /* no handler ran at all */
		t_fini(&t);
	}

	/* code running into CS's end: limit = the MOV's second byte */
	pm_setup(&t, cs_end_start, cs_end_end, &s, &r);
	s.cs.limit = AT(cs_end) + 1;
	s.cs.g = 0;
	o = finish(&t, &s, &r);
	expect("cs_end", &o, 13, AT(cs_end), USER_ESP);
	CHECK_EQ(o.r.rcx, 2);
	/* the same bytes with a limit past them: the block cut at the old limit is not reused */
	s.cs.limit = 0xffffffff;
	s.cs.g = 1;
	r.rip = AT(cs_end);
	r.rsp = USER_ESP;
	o = finish(&t, &s, &r);
	expect("cs_end_after", &o, 6, AT(cs_end) + 5, USER_ESP);
	CHECK_EQ(o.r.rdx, 1);
	/* RIP beyond the limit before anything is fetched */
	s.cs.limit = AT(cs_end) - 1;
	s.cs.g = 0;
	r.rip = AT(cs_end);
	o = finish(&t, &s, &r);
	expect("cs_beyond", &o, 13, AT(cs_end), USER_ESP);
	t_fini(&t);
}

/* Real mode: the IVT at 0, handlers at T_HND (CS 0x0f00), code at CS 0x1000 (IP 0) */
static void real_case(const char *name, const uint8_t *start, const uint8_t *end, uint32_t f, uint32_t vec,
		      uint32_t ds_limit, struct outcome *out)
{
	struct t_vm t;
	t_init(&t);
	t_load(&t, T_HND, hnd_start, hnd_end);
	t_load(&t, T_CODE, start, end);
	for (int v = 0; v < 32; v++)
		wr32(&t, 4 * (uint64_t)v, 0x0f000000u | (uint32_t)(rx - hnd_start));
	wr32(&t, 4 * 6, 0x0f000000u | (uint32_t)(r6 - hnd_start));
	wr32(&t, 4 * 12, 0x0f000000u | (uint32_t)(r12 - hnd_start));
	wr32(&t, 4 * 13, 0x0f000000u | (uint32_t)(r13 - hnd_start));
	wr32(&t, R_VEC, 0x5555);
	t_w64(&t, 0x12340, 0x89abcdef);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	struct kvm_segment *all[] = { &s.es, &s.ss, &s.ds, &s.fs, &s.gs };
	for (unsigned k = 0; k < 5; k++) {
		seg(all[k], 0, 3, 0xffff, 0, 0);
		all[k]->s = 1;
	}
	s.ds.limit = ds_limit;
	s.ds.g = ds_limit > 0xfffff;
	seg(&s.cs, 0x1000, 0xb, 0xffff, 0, 0);
	s.cs.base = T_CODE;
	s.idt.base = 0;
	s.idt.limit = 0x3ff;
	s.cr0 = 0x10;
	s.efer = 0;
	t.ops->set_sregs(t.cpu, &s);
	struct kvm_regs r = { .rip = 0, .rsp = 0x7ff0, .rflags = 2 };
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	struct outcome o = { .vec = t_r32(&t, R_VEC) & 0xffff, .eip = t_r32(&t, R_EIP) & 0xffff, .r = t_regs(&t) };
	CHECK(o.vec == vec, "%s: vector %u, want %u", name, o.vec, vec);
	CHECK(o.eip == f - T_CODE, "%s: ip 0x%x, want 0x%x", name, o.eip, f - T_CODE);
	if (out)
		*out = o;
	t_fini(&t);
}

int main(void)
{
	protected_cases();

	real_case("real_ds", real_ds_start, real_ds_end, AT(real_ds), 13, 0xffff, NULL);
	real_case("real_ss", real_ss_start, real_ss_end, AT(real_ss), 12, 0xffff, NULL);
	struct outcome o;
	real_case("unreal", unreal_start, unreal_end, AT(unreal), 6, 0xffffffff, &o);
	CHECK_EQ(o.r.rdx, 0x89abcdef);
	real_case("unreal_off", unreal_start, unreal_end, AT(unreal) - 4, 13, 0xffff, NULL);

	/* INVLPG beyond DS's limit: PAE paging with 4 KiB pages only (a large page in the TLB makes
	 * INVLPG drop everything), CPL 0 */
	{
		struct t_vm t;
		t_init(&t);
		t_prot32(&t);
		t_load(&t, T_CODE, invlpg_start, invlpg_end);
		t_w64(&t, 0x20000, 0x21001);
		t_w64(&t, 0x21000, 0x23003);
		t_w64(&t, 0x21008, 0x22003);
		for (uint64_t k = 0; k < 512; k++) {
			t_w64(&t, 0x23000 + 8 * k, (k << 12) | 3);
			t_w64(&t, 0x22000 + 8 * k, (0x200000 + (k << 12)) | 3);
		}
		wr32(&t, 0x301000, 0xaaaa);
		wr32(&t, 0x302000, 0xbbbb);
		struct kvm_sregs s;
		t.ops->get_sregs(t.cpu, &s);
		s.cr3 = 0x20000;
		s.cr4 |= 0x20; /* PAE */
		s.cr0 |= 0x80000000u;
		s.ds.base = 0x300000;
		s.ds.limit = 0xfff;
		s.ds.g = 0;
		t.ops->set_sregs(t.cpu, &s);
		CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
		CHECK_EQ(t_regs(&t).rax, 0xbbbb);
		t_fini(&t);
	}

	/* 64-bit mode: DS's cached limit 0xfff is ignored */
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, long64_start, long64_end);
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	s.ds.limit = 0xfff;
	s.ds.g = 0;
	t.ops->set_sregs(t.cpu, &s);
	t_w64(&t, 0x100000, 0x1234);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_regs(&t).rax, 0x1234);
	t_fini(&t);
	return t_result("emu_seglim");
}
