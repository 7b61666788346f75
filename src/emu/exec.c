/* SPDX-License-Identifier: MIT */
/*
 * Instruction selection at decode time (emu_select: the row of insn.def, the family's select
 * function, the lin_flat variant, EMU_I_FIRST), the operand helpers every select function uses, the
 * stack helpers, lazy-flag materialisation, and the handlers of no family (NOP, fences, PAUSE,
 * HLT, #UD). The rules every handler follows, and where the families are: exec.h.
 */
#include <sched.h>
#include <time.h>
#include <stdio.h>

#include "emu/exec.h"

/* ---------------------------------------------------------------- stack */

/* Stack accesses check SS's limit outside 64-bit mode (emu_seg_lin: #SS(0) beyond it, SDM Vol. 3
 * 5.3) in a cold function of their own: the common path keeps the registers it had without the
 * test (bench/callgrind.sh: the call in its middle cost 6 host instructions per PUSH). */
static inline int push_at(struct emu_vcpu *c, unsigned size, uint64_t v, uint64_t sp, uint64_t lin)
{
	int st = emu_wr(c, lin, size, v);
	if (unlikely(st))
		return stack_fault(c, st, lin);
	c->r[EMU_RSP] = (c->r[EMU_RSP] & ~c->sp_mask) | sp;
	return 0;
}

static inline int pop_at(struct emu_vcpu *c, unsigned size, uint64_t *v, uint64_t sp, uint64_t lin)
{
	int st = emu_rd(c, lin, size, v);
	if (unlikely(st))
		return stack_fault(c, st, lin);
	c->r[EMU_RSP] = (c->r[EMU_RSP] & ~c->sp_mask) | ((sp + size) & c->sp_mask);
	return 0;
}

static __attribute__((noinline, cold)) int push_checked(struct emu_vcpu *c, unsigned size, uint64_t v,
							 uint64_t sp)
{
	return push_at(c, size, v, sp, emu_seg_lin_checked(c, EMU_SS, sp, size));
}

static __attribute__((noinline, cold)) int pop_checked(struct emu_vcpu *c, unsigned size, uint64_t *v,
							uint64_t sp)
{
	return pop_at(c, size, v, sp, emu_seg_lin_checked(c, EMU_SS, sp, size));
}

int emu_push(struct emu_vcpu *c, unsigned size, uint64_t v)
{
	uint64_t sp = (c->r[EMU_RSP] - size) & c->sp_mask;
	if (unlikely(c->seg_check & (1u << EMU_SS)))
		return push_checked(c, size, v, sp);
	return push_at(c, size, v, sp, (c->sbase[EMU_SS] + sp) & c->lin_mask);
}

int emu_pop(struct emu_vcpu *c, unsigned size, uint64_t *v)
{
	uint64_t sp = c->r[EMU_RSP] & c->sp_mask;
	if (unlikely(c->seg_check & (1u << EMU_SS)))
		return pop_checked(c, size, v, sp);
	return pop_at(c, size, v, sp, (c->sbase[EMU_SS] + sp) & c->lin_mask);
}

/* ---------------------------------------------------------------- lazy flags (exec.h) */

uint64_t emu_flags_sync(struct emu_vcpu *c)
{
	unsigned k = c->lf_k & 0x7f, n = (c->lf_k >> 8) & 0xff, sh = LF_SH(n);
	uint64_t d = c->lf_d >> sh, s = c->lf_s >> sh, r = c->lf_r >> sh, f;
	switch (k) {
	case LF_ADD: f = emu__flags_add(n, d, s, r); break;
	case LF_SUB: case LF_SBB: f = emu__flags_sub(n, d, s, r); break;
	case LF_LOGIC: f = emu_flags_szp(n, r); break;
	case LF_INC: f = (emu__flags_add(n, d, 1, r) & ~EMU_CF) | (c->rflags & EMU_CF); break;
	case LF_DEC: f = (emu__flags_sub(n, d, 1, r) & ~EMU_CF) | (c->rflags & EMU_CF); break;
	case LF_SZPX: f = c->lf_s | emu_flags_szp(n, r); break;
	case LF_HOST: f = ((r >> 8) & (EMU_SF | EMU_ZF | EMU_AF | EMU_PF | EMU_CF)) | ((r & 1) << 11); break;
	default: return c->rflags;
	}
	if (c->lf_k & LF_OVR)
		f = (f & ~(EMU_CF | EMU_OF)) | c->lf_cfof;
	c->lf_k = LF_NONE;
	return c->rflags = (c->rflags & ~EMU_STATUS_FLAGS) | f;
}

/* ---------------------------------------------------------------- trivial */

int emu_h_nop(ARGS)
{
	return emu_next(c, i);
}

int emu_h_ud(ARGS)
{
	(void)i;
	return emu_raise(c, EMU_V_UD);
}

int emu_h_unimpl(ARGS)
{
	return emu_unimplemented(c, i);
}

/* MFENCE: a host MFENCE (seq_cst fence). LFENCE and SFENCE are NOPs (their insn.def rows): every
 * guest load and store is one host load or store in program order on a TSO host, and the engine
 * has no non-temporal or write-combining stores for SFENCE to order. */
int h_mfence(ARGS)
{
	/* the instruction itself (a compiler barrier too); not __atomic_thread_fence, which gcc's
	 * ThreadSanitizer refuses and which may be a locked OR to the stack instead of MFENCE */
	__asm__ volatile("mfence" ::: "memory");
	return emu_next(c, i);
}

int h_priv_nop(ARGS) /* WBINVD, INVD: CPL 0 only; no caches to write back */
{
	if (c->cpl)
		return emu_raise_err(c, EMU_V_GP, 0);
	return emu_next(c, i);
}

/*
 * PAUSE. A vCPU spinning on a lock or a flag is burning a host CPU that another vCPU (or anything
 * else on the host) may need; the hardware lets the monitor see such loops: Intel's PAUSE-loop
 * exiting (SDM Vol. 3 25.1.3, "PAUSE-loop exiting": PLE_Gap, PLE_Window) and AMD's pause filter
 * (APM Vol. 2 15.14.4: a count of PAUSEs and a threshold between them). KVM handles that exit
 * inside the kernel (kvm_vcpu_on_spin(): yield the host CPU), never in user space. The emu engine
 * does the same with AMD's model in guest instructions: PAUSEs at most EMU_PLE_GAP instructions
 * apart belong to one loop, and every EMU_PLE_COUNT of them (KVM's default pause_filter_count) the
 * vCPU thread yields the host CPU. With a free host CPU sched_yield() returns at once.
 *
 * A loop that is still spinning after EMU_PLE_SLEEP_AFTER_NS is not waiting for a lock holder on
 * another CPU but for something slow: typically a vCPU the guest parks until it has work (the
 * runtime's secondary vCPUs). Yielding would still take a whole host CPU whenever one is free, so
 * from then on the vCPU sleeps per detection, as KVM's halt polling gives up polling and sleeps:
 * EMU_PLE_SLEEP_NS first, doubling while the loop goes on up to EMU_PLE_SLEEP_MAX_NS, so that a vCPU
 * idle for long wakes ~1000 times a second, not ~10000 (each wake-up takes the host CPU from
 * whatever runs there, another vCPU of the VM included). It sleeps outside the exclusive-section
 * protocol (state OUT, like a vCPU in the monitor): another vCPU's contained bus lock does not wait
 * for it, and it cannot run guest code again while such a section is held (emu_vcpu_enter). Once
 * sleeping, the loop sleeps again every EMU_PLE_COUNT_SLEEPING PAUSEs (3000 would still spin ~3/4
 * of the time between sleeps). The cost is one sleep of wake-up latency (at most 1 ms) for a loop
 * that has already waited a millisecond or more.
 *
 * A loop that reads the TSC (RDTSC, RDTSCP, RDMSR of IA32_TIME_STAMP_COUNTER: emu_tsc() sets
 * ple_read_tsc) between two detections is a delay: it waits for a time, not for another CPU, and
 * a sleep would overshoot it. Linux's udelay() (delay_tsc: rdtsc, PAUSE, until the cycles have
 * passed) inside a polling loop counted in iterations (the i8042 driver's 10000 x udelay(50)
 * = 500 ms) became 10000 x ~1.1 ms, one sleep per udelay. Such a loop only yields, as KVM's
 * kvm_vcpu_on_spin() does: it costs a host CPU for the delay's length, as on the hardware.
 */
#define EMU_PLE_GAP 128
#define EMU_PLE_COUNT 3000
#define EMU_PLE_SLEEP_AFTER_NS 1000000ull
#define EMU_PLE_SLEEP_NS 50000l
#define EMU_PLE_SLEEP_MAX_NS 1000000l
#define EMU_PLE_COUNT_SLEEPING 16

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pause_loop_exit(struct emu_vcpu *c)
{
	uint64_t t = monotonic_ns();
	if (!c->ple_since)
		c->ple_since = t;
	if (c->ple_read_tsc || t - c->ple_since < EMU_PLE_SLEEP_AFTER_NS) {
		c->ple_read_tsc = false;
		c->ple_sleep_ns = 0; /* a delay loop: back to one yield per EMU_PLE_COUNT PAUSEs */
		sched_yield();
		return;
	}
	c->ple_sleeps++;
	long ns = c->ple_sleep_ns ? c->ple_sleep_ns * 2 : EMU_PLE_SLEEP_NS;
	c->ple_sleep_ns = ns < EMU_PLE_SLEEP_MAX_NS ? ns : EMU_PLE_SLEEP_MAX_NS;
	emu_vcpu_leave(c);
	struct timespec ts = { .tv_sec = 0, .tv_nsec = c->ple_sleep_ns };
	nanosleep(&ts, NULL); /* a signal (a kick) may cut it short: the caller looks at its kick next */
	emu_vcpu_enter(c);
}

int h_pause(ARGS)
{
	__builtin_ia32_pause();
	uint64_t now = c->icount + i->idx; /* exact: icount holds the blocks before this one */
	if (now - c->ple_last <= EMU_PLE_GAP) {
		if (++c->ple_count >= (c->ple_sleep_ns ? EMU_PLE_COUNT_SLEEPING : EMU_PLE_COUNT)) {
			c->ple_count = 0;
			pause_loop_exit(c);
		}
	} else {
		c->ple_count = 0;
		c->ple_since = 0;
		c->ple_sleep_ns = 0;
		c->ple_read_tsc = false;
	}
	c->ple_last = now;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- HLT */

int h_hlt(ARGS)
{
	if (c->cpl)
		return emu_raise_err(c, EMU_V_GP, 0);
	if (c->lapic) {
		/* with the irqchip the vCPU sleeps in run() until an interrupt (IF = 1), an NMI or INIT;
		 * KVM_EXIT_HLT only when the whole VM is dead (irqchip.c) */
		c->halted = true;
		atomic_fetch_or(&c->kick, EMU_KICK_EVENT);
		c->stop = EMU_ST_END;
		return emu_next(c, i);
	}
	c->run->exit_reason = KVM_EXIT_HLT;
	c->exit_pending = true;
	c->stop = EMU_ST_END;
	return emu_next(c, i);
}

/* ================================================================ selection at decode time */

static int gpr_id(ZydisRegister r, unsigned *size)
{
	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR8: {
		int k = r - ZYDIS_REGISTER_AL;
		*size = 1;
		if (k < 4)
			return k * 8;
		if (k < 8)
			return (k - 4) * 8 + 1; /* AH CH DH BH */
		return (k - 4) * 8;             /* SPL BPL SIL DIL R8B..R15B */
	}
	case ZYDIS_REGCLASS_GPR16: *size = 2; return ZydisRegisterGetId(r);
	case ZYDIS_REGCLASS_GPR32: *size = 4; return ZydisRegisterGetId(r);
	case ZYDIS_REGCLASS_GPR64: *size = 8; return ZydisRegisterGetId(r);
	default: return -1;
	}
}

static int reg_of(const ZydisDecodedOperand *o)
{
	unsigned s;
	if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
		return -1;
	return gpr_id(o->reg.value, &s);
}

static int mem_of(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *o, struct emu_insn *i)
{
	unsigned s;
	if (o->type != ZYDIS_OPERAND_TYPE_MEMORY)
		return -1;
	i->b = i->x = EMU_NOREG;
	i->sc = 0;
	if (o->mem.base == ZYDIS_REGISTER_RIP || o->mem.base == ZYDIS_REGISTER_EIP) {
		i->flg |= EMU_I_RIPREL;
	} else if (o->mem.base != ZYDIS_REGISTER_NONE) {
		int b = gpr_id(o->mem.base, &s);
		if (b < 0)
			return -1;
		i->b = (uint8_t)b;
	}
	if (o->mem.index != ZYDIS_REGISTER_NONE) {
		int x = gpr_id(o->mem.index, &s);
		if (x < 0)
			return -1;
		i->x = (uint8_t)x;
		i->sc = o->mem.scale == 8 ? 3 : o->mem.scale == 4 ? 2 : o->mem.scale == 2 ? 1 : 0;
	}
	i->disp = o->mem.disp.has_displacement ? o->mem.disp.value : 0;
	if (zi->machine_mode == ZYDIS_MACHINE_MODE_LONG_64 && zi->address_width == 32)
		i->flg |= EMU_I_ADDR32;
	if (zi->address_width == 16)
		i->flg |= EMU_I_ADDR16; /* base and index are 16-bit registers (BX BP SI DI) */
	if (o->mem.segment >= ZYDIS_REGISTER_ES && o->mem.segment <= ZYDIS_REGISTER_GS)
		i->seg = (uint8_t)(o->mem.segment - ZYDIS_REGISTER_ES);
	else
		i->seg = EMU_DS;
	/* the bytes the access covers, for the segment-limit check outside 64-bit mode (emu_lin) */
	i->asz = (uint16_t)(o->size / 8);
	if (zi->machine_mode != ZYDIS_MACHINE_MODE_LONG_64)
		i->flg |= EMU_I_SEG;
	return 0;
}

/* For the selectors in other files (legacy.c): a GPR operand's r[] index (byte registers: offset),
 * and a memory operand into i's b/x/sc/disp/seg/flags. */
int emu_gpr_operand(const ZydisDecodedOperand *o)
{
	return reg_of(o);
}

/* A GPR by Zydis register: its r[] index (byte registers: offset) and size; -1 if not a GPR. */
int emu_gpr_id(ZydisRegister r, unsigned *size)
{
	return gpr_id(r, size);
}

int emu_mem_operand(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *o, struct emu_insn *i)
{
	return mem_of(zi, o, i);
}

/* Classifies operands 0 and 1 into a form and fills r/b/memory/imm. */
int emu_form2(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo, struct emu_insn *i)
{
	const ZydisDecodedOperand *a = &zo[0], *b = &zo[1];
	if (a->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		int r = reg_of(a);
		if (r < 0)
			return -1;
		i->r = (uint8_t)r;
		if (b->type == ZYDIS_OPERAND_TYPE_REGISTER) {
			int s = reg_of(b);
			if (s < 0)
				return -1;
			i->b = (uint8_t)s;
			return F_RR;
		}
		if (b->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			i->imm = b->imm.value.u;
			return F_RI;
		}
		if (b->type == ZYDIS_OPERAND_TYPE_MEMORY)
			return mem_of(zi, b, i) ? -1 : F_RM;
		return -1;
	}
	if (a->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		if (mem_of(zi, a, i))
			return -1;
		if (b->type == ZYDIS_OPERAND_TYPE_REGISTER) {
			int s = reg_of(b);
			if (s < 0)
				return -1;
			i->r = (uint8_t)s;
			return F_MR;
		}
		if (b->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			i->imm = b->imm.value.u;
			return F_MI;
		}
	}
	return -1;
}

/* One operand: register (-> r) or memory; returns 0 reg, 1 mem, -1 other. */
int emu_form1(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *o, struct emu_insn *i)
{
	if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		int r = reg_of(o);
		if (r < 0)
			return -1;
		i->r = (uint8_t)r;
		return 0;
	}
	return mem_of(zi, o, i) ? -1 : 1;
}

/* The source segment of a string instruction (DS or the override): the segment of its [rSI]
 * operand, whatever the address size. */
uint8_t emu_src_seg(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo)
{
	for (unsigned k = 0; k < zi->operand_count; k++)
		if (zo[k].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    (zo[k].mem.base == ZYDIS_REGISTER_RSI || zo[k].mem.base == ZYDIS_REGISTER_ESI ||
		     zo[k].mem.base == ZYDIS_REGISTER_SI))
			return (uint8_t)(zo[k].mem.segment - ZYDIS_REGISTER_ES);
	return EMU_DS;
}

/* ---------------------------------------------------------------- selection (insn.def rows) */

/* Rows that need nothing of the operands: the row's handler and operation. */
int sel_fn(struct emu_sel *s)
{
	s->i->op = s->row->op;
	s->i->fn = s->row->fn;
	return 0;
}

/* Rows whose only operand is memory (INVLPG, LGDT...): the row's handler. */
int sel_mem(struct emu_sel *s)
{
	if (mem_of(s->zi, &s->zo[0], s->i))
		return EMU_SEL_BAD;
	s->i->fn = s->row->fn;
	return 0;
}

/* Rows with one r/m operand (LTR, LLDT, LMSW, STR, SLDT, SMSW): i->op = 1 for a memory operand. */
int sel_rm(struct emu_sel *s)
{
	int f = emu_form1(s->zi, &s->zo[0], s->i);
	if (f < 0)
		return EMU_SEL_BAD;
	s->i->op = (uint8_t)f;
	s->i->fn = s->row->fn;
	return 0;
}

/* VERR, VERW: one r/m16 operand. Their #UD in real mode is the handler's (system.c): blocks are
 * cached per decode mode, which real mode and 16-bit protected mode share. */
int sel_verx(struct emu_sel *s)
{
	return sel_rm(s);
}

/* LAR, LSL r, r/m16: i->r the destination, i->b or the memory operand the selector (i->op = 1). */
int sel_lar_lsl(struct emu_sel *s)
{
	int f = emu_form2(s->zi, s->zo, s->i);
	if (f != F_RR && f != F_RM)
		return EMU_SEL_BAD;
	s->i->op = f == F_RM;
	s->i->fn = s->row->fn;
	return 0;
}

int sel_int(struct emu_sel *s)
{
	s->i->imm = s->zo[0].imm.value.u & 0xff;
	s->i->fn = s->row->fn;
	return 0;
}

int sel_iret(struct emu_sel *s)
{
	s->i->osz = s->row->op;
	s->i->fn = s->row->fn;
	return 0;
}

int sel_rdpid(struct emu_sel *s)
{
	int k = reg_of(&s->zo[0]);
	if (k < 0)
		return EMU_SEL_BAD;
	s->i->r = (uint8_t)k;
	s->i->fn = s->row->fn;
	return 0;
}

int sel_legacy(struct emu_sel *s)
{
	return emu_select_legacy(s->c, s->zi, s->zo, s->i) == EMU_SEL_BAD ? EMU_SEL_BAD : 0;
}

/* ---------------------------------------------------------------- the table and emu_select */

const struct emu_feature_bit emu_features[FEAT_COUNT] = {
#define EMU_FEAT_ROW(N, L, R, B) [FEAT_##N] = { #N, L, R, B },
	EMU_FEATURES(EMU_FEAT_ROW)
#undef EMU_FEAT_ROW
};

static const struct emu_row rows[ZYDIS_MNEMONIC_MAX_VALUE + 1] = {
#define INSN(M, SEL, FN, OP, FLAGS, FEAT) \
	[ZYDIS_MNEMONIC_##M] = { .sel = SEL, .fn = FN, .op = OP, .flags = FLAGS, .feature = FEAT },
#include "emu/insn.def"
#undef INSN
};

bool emu_feature_advertised(struct emu_vcpu *c, unsigned f)
{
	uint32_t o[4];
	if (f == FEAT_NONE || f >= FEAT_COUNT)
		return f == FEAT_NONE;
	emu_cpuid(c, emu_features[f].leaf, 0, o);
	return (o[emu_features[f].reg] >> emu_features[f].bit) & 1;
}

const struct emu_row *emu_insn_row(ZydisMnemonic m)
{
	static const struct emu_row none;
	return (unsigned)m <= ZYDIS_MNEMONIC_MAX_VALUE ? &rows[m] : &none;
}

/*
 * Fills i (fn and operands) for one decoded instruction from its row of insn.def (then fpu.c's
 * table). Returns 0, EMU_SEL_END, or EMU_SEL_BAD when the operands are of a form the engine does not
 * handle (the caller then makes it "unimplemented"). i->flg gets EMU_I_FIRST when the instruction
 * must begin its block; i->fn is the row's lin_flat variant when the operand allows it.
 */
int emu_select(struct emu_vcpu *c, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
	       struct emu_insn *i)
{
	const struct emu_row *row = emu_insn_row(zi->mnemonic);
	unsigned osz = zi->operand_width / 8;

	i->len = zi->length;
	i->mnem = (uint16_t)zi->mnemonic;
	i->osz = (uint8_t)(osz ? osz : 8);
	i->b = i->x = EMU_NOREG;
	i->r = 0;
	i->seg = EMU_DS;
	if (zi->attributes & ZYDIS_ATTRIB_HAS_LOCK)
		i->flg |= EMU_I_LOCK;
	if (zi->attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
		i->flg |= EMU_I_REP;
	if (zi->attributes & ZYDIS_ATTRIB_HAS_REPNE)
		i->flg |= EMU_I_REPNE;
	if (zi->attributes & ZYDIS_ATTRIB_HAS_REX && (zi->raw.rex.W))
		i->flg |= EMU_I_W;

	if ((i->flg & EMU_I_LOCK) && (!(row->flags & R_LOCK) || zo[0].type != ZYDIS_OPERAND_TYPE_MEMORY)) {
		i->fn = emu_h_ud; /* SDM Vol. 2 "LOCK": #UD */
		return EMU_SEL_END;
	}
	/* An instruction the guest's CPUID does not enumerate raises #UD (each such instruction's
	 * "#UD If CPUID.(...).FEATURE[bit n] = 0" in SDM Vol. 2), as it does on the named part that
	 * lacks it: CPUID advertises exactly what runs. Hints (R_HINT) run as a NOP either way. */
	if (row->feature != FEAT_NONE && !(row->flags & R_HINT) && !emu_feature_advertised(c, row->feature)) {
		i->fn = emu_h_ud;
		return EMU_SEL_END;
	}
	struct emu_sel s = { .c = c, .zi = zi, .zo = zo, .i = i, .row = row, .flat = NULL };
	int sel = row->sel ? row->sel(&s) : EMU_SEL_BAD;
	if (sel == EMU_SEL_BAD)
		return emu_fpu_select(c, zi, zo, i); /* x87, MMX, SSE..SSE4.2, XSAVE: fpu.c */
	if ((row->flags & R_FIRST) || (sel & SEL_FIRST))
		i->flg |= EMU_I_FIRST;
	if ((row->flags & R_END) || (sel & EMU_SEL_END))
		sel = EMU_SEL_END;
	else
		sel = 0;
	/* the lin_flat variant: LEA always (no segment), memory operands in 64-bit mode with
	 * ES/CS/SS/DS (base 0, lin_mask ~0: emu.h), neither RIP-relative nor 32/16-bit addressing */
	if (s.flat && (row->flags & R_FLAT) && !(i->flg & (EMU_I_RIPREL | EMU_I_ADDR32 | EMU_I_ADDR16)) &&
	    ((row->flags & R_FLATANY) || (c->mode == 0 && i->seg <= EMU_DS)))
		i->fn = s.flat;
	return sel;
}
