/* SPDX-License-Identifier: MIT */
/*
 * Instruction handlers of the emu engine and their selection at decode time (emu_select).
 *
 * Every handler has the one signature emu_fn (emu.h). Hot handlers are generated per operand size N
 * and per form (rr: register destination and source; rm: register destination, memory source; mr:
 * memory destination, register source; ri / mi: immediate source), and for the group-1 ALU and
 * INC/DEC/NEG/NOT per operation, so that nothing on their path switches on size, form or operation.
 * Rare instructions use one handler reading i->osz. Arithmetic and flags come from alu.h.
 * Inputs are read first, results committed last: a fault or an MMIO exit in the middle leaves the
 * architectural state as it was before the instruction (string instructions: as after the last
 * completed iteration).
 */
#include <sched.h>
#include <time.h>
#include <stdio.h>

#include "emu/emu.h"

#define ARGS struct emu_vcpu *c, const struct emu_insn *i
#define RSP_ c->r[EMU_RSP]

/* ---------------------------------------------------------------- stack */

/* A stack access that faulted on a non-canonical address: #SS(0), not #GP(0) (mmu.c noncanonical()) */
static int stack_fault(struct emu_vcpu *c, int st, uint64_t lin)
{
	if (st == EMU_ST_FAULT && c->exc_vec == EMU_V_GP && (c->efer & EFER_LMA) && !emu_canonical(lin))
		return emu_raise_err(c, EMU_V_SS, 0);
	return st;
}

int emu_push(struct emu_vcpu *c, unsigned size, uint64_t v)
{
	uint64_t sp = (c->r[EMU_RSP] - size) & c->sp_mask;
	int st = emu_wr(c, (c->sbase[EMU_SS] + sp) & c->lin_mask, size, v);
	if (unlikely(st))
		return stack_fault(c, st, (c->sbase[EMU_SS] + sp) & c->lin_mask);
	c->r[EMU_RSP] = (c->r[EMU_RSP] & ~c->sp_mask) | sp;
	return 0;
}

int emu_pop(struct emu_vcpu *c, unsigned size, uint64_t *v)
{
	uint64_t sp = c->r[EMU_RSP] & c->sp_mask;
	int st = emu_rd(c, (c->sbase[EMU_SS] + sp) & c->lin_mask, size, v);
	if (unlikely(st))
		return stack_fault(c, st, (c->sbase[EMU_SS] + sp) & c->lin_mask);
	c->r[EMU_RSP] = (c->r[EMU_RSP] & ~c->sp_mask) | ((sp + size) & c->sp_mask);
	return 0;
}

/* Raw effective address (LEA), no segment. */
static inline uint64_t ea_of(const struct emu_vcpu *c, const struct emu_insn *i)
{
	uint64_t ea = c->r[i->b] + (c->r[i->x] << i->sc) + (uint64_t)i->disp;
	if (i->flg & EMU_I_RIPREL)
		ea += c->rip + i->len;
	if (i->flg & EMU_I_ADDR32)
		ea = (uint32_t)ea;
	if (i->flg & EMU_I_ADDR16)
		ea = (uint16_t)ea;
	return ea;
}

#define TRY(x)                            \
	do {                              \
		int st_ = (x);            \
		if (unlikely(st_))        \
			return st_;       \
	} while (0)

#define T4(name) static emu_fn *const name##_t[4] = { name##_1, name##_2, name##_4, name##_8 }
/* handlers generated in two flavours (emu_lin / lin_flat); the unused register forms of the second
 * are dropped */
#define HFN static __attribute__((unused)) int

/* The linear address in 64-bit mode for ES/CS/SS/DS (base 0, no wrap) without RIP-relative or
 * 32-bit addressing: emu_lin() without its tests. Chosen at decode time (flat_of()). */
static inline __attribute__((always_inline)) uint64_t lin_flat(const struct emu_vcpu *c,
								 const struct emu_insn *i)
{
	return c->r[i->b] + (c->r[i->x] << i->sc) + (uint64_t)i->disp;
}

static unsigned sidx(unsigned n)
{
	return n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3;
}

/* ---------------------------------------------------------------- LAZY FLAGS */

/*
 * Most status flags are overwritten before anything reads them, so the hot ALU handlers only record
 * the operation (DESIGN.md, "Notes on the emu engine's speed"): kind and size in c->lf_k, operands and
 * result in lf_d/lf_s/lf_r, each shifted left by 64 - 8*size so that the operand's sign bit is bit 63.
 * In that form CF of a SUB is `d < s`, ZF `r == 0`, SF `(int64_t)r < 0`, L `(int64_t)d < (int64_t)s`
 * whatever the size, so Jcc/SETcc/CMOVcc after CMP/SUB/TEST/AND... decide without materialising.
 * emu_flags_sync() materialises with alu.h's own formulas (same bits as the eager path, undefined
 * flags included). Every reader of the status flags goes through emu_rflags()/emu_rflagsp(); the run
 * loop materialises at the end of every block, and handlers outside this file (system.c) only run as
 * the first instruction of a block (EMU_I_FIRST), so they see an exact c->rflags.
 */
enum {
	LF_NONE,  /* c->rflags is exact */
	LF_ADD,   /* ADD, ADC (r includes the carry in: alu.h's formula covers it), XADD */
	LF_SUB,   /* SUB, CMP, NEG (d = 0), CMPS, SCAS: CF = d < s */
	LF_SBB,   /* SBB: flags of SUB, but CF is not d < s */
	LF_LOGIC, /* AND OR XOR TEST: CF = OF = AF = 0 */
	LF_INC,   /* CF kept in c->rflags */
	LF_DEC,
	LF_SZPX,  /* shifts: CF, OF, AF given explicitly in lf_s; SF ZF PF from r */
	LF_OVR = 0x80, /* or'ed into a kind: CF and OF are lf_cfof (IMUL, ROL, ROR write only those) */
};
#define LF_SH(N) (64 - 8 * (N))

static inline void lazy_set(struct emu_vcpu *c, unsigned kind, unsigned n, uint64_t d, uint64_t s, uint64_t r)
{
	c->lf_d = d << LF_SH(n);
	c->lf_s = s << LF_SH(n);
	c->lf_r = r << LF_SH(n);
	c->lf_k = kind | (n << 8);
}

static inline void lazy_logic(struct emu_vcpu *c, unsigned n, uint64_t r)
{
	c->lf_r = r << LF_SH(n);
	c->lf_k = LF_LOGIC | (n << 8);
}

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
	default: return c->rflags;
	}
	if (c->lf_k & LF_OVR)
		f = (f & ~(EMU_CF | EMU_OF)) | c->lf_cfof;
	c->lf_k = LF_NONE;
	return c->rflags = (c->rflags & ~EMU_STATUS_FLAGS) | f;
}

/* CF and OF (only) become `bits`, the other status flags stay as they are, lazily. */
static inline void lazy_cfof(struct emu_vcpu *c, uint64_t bits)
{
	if (c->lf_k) {
		c->lf_cfof = (uint32_t)bits;
		c->lf_k |= LF_OVR;
	} else {
		c->rflags = (c->rflags & ~(EMU_CF | EMU_OF)) | bits;
	}
}

/* CF alone (ADC, SBB, INC/DEC keep it) without materialising the rest. */
static inline uint64_t lazy_cf(const struct emu_vcpu *c)
{
	uint64_t d = c->lf_d, s = c->lf_s, r = c->lf_r;
	if (c->lf_k & LF_OVR)
		return c->lf_cfof & EMU_CF;
	switch (c->lf_k & 0xff) {
	case LF_NONE: case LF_INC: case LF_DEC: return c->rflags & EMU_CF;
	case LF_ADD: return ((d & s) | ((d | s) & ~r)) >> 63;
	case LF_SUB: return d < s;
	case LF_SBB: return ((~d & s) | (~(d ^ s) & r)) >> 63;
	case LF_LOGIC: return 0;
	default: return c->lf_s & EMU_CF;
	}
}

/* Condition cc (as emu_cond) of the current flags; cc is a constant in the Jcc handlers. */
static inline int lazy_cond(struct emu_vcpu *c, unsigned cc)
{
	unsigned k = c->lf_k & 0xff;
	uint64_t d = c->lf_d, s = c->lf_s, r = c->lf_r;
	int t;
	if (k == LF_SUB) {
		switch ((cc >> 1) & 7) {
		case 0: t = (int)(((d ^ s) & (d ^ r)) >> 63); break;
		case 1: t = d < s; break;
		case 2: t = r == 0; break;
		case 3: t = d <= s; break;
		case 4: t = (int64_t)r < 0; break;
		case 6: t = (int64_t)d < (int64_t)s; break;
		case 7: t = (int64_t)d <= (int64_t)s; break;
		default: return emu_cond(cc, emu_flags_sync(c));
		}
		return t ^ (int)(cc & 1);
	}
	if (k == LF_LOGIC) {
		switch ((cc >> 1) & 7) {
		case 0: case 1: t = 0; break;
		case 2: case 3: t = r == 0; break;
		case 4: case 6: t = (int64_t)r < 0; break;
		case 7: t = (int64_t)r <= 0; break;
		default: return emu_cond(cc, emu_flags_sync(c));
		}
		return t ^ (int)(cc & 1);
	}
	if (k == LF_ADD) { /* ADD, ADC: CF is the carry out of the top bit (alu.h's formula) */
		uint64_t cf = ((d & s) | ((d | s) & ~r)) >> 63;
		switch ((cc >> 1) & 7) {
		case 1: t = (int)cf; break;
		case 2: t = r == 0; break;
		case 3: t = (int)cf | (r == 0); break;
		case 4: t = (int64_t)r < 0; break;
		default: return emu_cond(cc, emu_flags_sync(c));
		}
		return t ^ (int)(cc & 1);
	}
	if (k != LF_NONE) {
		switch ((cc >> 1) & 7) {
		case 2: t = r == 0; break;
		case 4: t = (int64_t)r < 0; break;
		default: return emu_cond(cc, emu_flags_sync(c));
		}
		return t ^ (int)(cc & 1);
	}
	return emu_cond(cc, c->rflags);
}

/* ---------------------------------------------------------------- trivial */

static int h_nop(ARGS)
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

/* MFENCE: a host MFENCE (seq_cst fence). LFENCE and SFENCE are NOPs (select_one): every guest load
 * and store is one host load or store in program order on a TSO host, and the engine has no
 * non-temporal or write-combining stores for SFENCE to order. */
static int h_mfence(ARGS)
{
	/* the instruction itself (a compiler barrier too); not __atomic_thread_fence, which gcc's
	 * ThreadSanitizer refuses and which may be a locked OR to the stack instead of MFENCE */
	__asm__ volatile("mfence" ::: "memory");
	return emu_next(c, i);
}

static int h_priv_nop(ARGS) /* WBINVD, INVD: CPL 0 only; no caches to write back */
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

static int h_pause(ARGS)
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

/* ---------------------------------------------------------------- MOV */

#define MOV_H(N, F, L)                                                                         \
	HFN h_mov_rr##F##_##N(ARGS)                                                    \
	{                                                                                \
		EMU_WR_##N(c, i->r, EMU_RD_##N(c, i->b));                                \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_mov_rm##F##_##N(ARGS)                                                    \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_rd##N(c, L(c, i), &v));                                    \
		EMU_WR_##N(c, i->r, v);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_mov_mr##F##_##N(ARGS)                                                    \
	{                                                                                \
		TRY(emu_wr##N(c, L(c, i), EMU_RD_##N(c, i->r)));                   \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_mov_ri##F##_##N(ARGS)                                                    \
	{                                                                                \
		EMU_WR_##N(c, i->r, i->imm);                                             \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_mov_mi##F##_##N(ARGS)                                                    \
	{                                                                                \
		TRY(emu_wr##N(c, L(c, i), i->imm));                                \
		return emu_next(c, i);                                                   \
	}
MOV_H(1, , emu_lin) MOV_H(2, , emu_lin) MOV_H(4, , emu_lin) MOV_H(8, , emu_lin)
MOV_H(1, _f, lin_flat) MOV_H(2, _f, lin_flat) MOV_H(4, _f, lin_flat) MOV_H(8, _f, lin_flat)
T4(h_mov_rr); T4(h_mov_rm); T4(h_mov_mr); T4(h_mov_ri); T4(h_mov_mi);
T4(h_mov_rm_f); T4(h_mov_mr_f); T4(h_mov_mi_f);

/* ---------------------------------------------------------------- group-1 ALU, TEST */

/* Group-1 result (TEST = 8 is AND); reads CF for ADC/SBB but records nothing. */
static inline uint64_t alu_res(const struct emu_vcpu *c, unsigned op, uint64_t d, uint64_t s)
{
	switch (op) {
	case EMU_ALU_ADD: return d + s;
	case EMU_ALU_OR: return d | s;
	case EMU_ALU_ADC: return d + s + lazy_cf(c);
	case EMU_ALU_SBB: return d - s - lazy_cf(c);
	case EMU_ALU_SUB: case EMU_ALU_CMP: return d - s;
	case EMU_ALU_XOR: return d ^ s;
	default: return d & s;
	}
}

/* Records the flags of a group-1 operation (committed with the result, after any fault). */
static inline void alu_rec(struct emu_vcpu *c, unsigned op, unsigned n, uint64_t d, uint64_t s, uint64_t r)
{
	switch (op) {
	case EMU_ALU_ADD: case EMU_ALU_ADC: lazy_set(c, LF_ADD, n, d, s, r); break;
	case EMU_ALU_SUB: case EMU_ALU_CMP: lazy_set(c, LF_SUB, n, d, s, r); break;
	case EMU_ALU_SBB: lazy_set(c, LF_SBB, n, d, s, r); break;
	default: lazy_logic(c, n, r); break;
	}
}

#define ALU_H(N, NAME, OP, WB, F, L)                                                           \
	HFN h_##NAME##_rr##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t d = EMU_RD_##N(c, i->r), s = EMU_RD_##N(c, i->b), v = alu_res(c, OP, d, s); \
		alu_rec(c, OP, N, d, s, v);                                              \
		if (WB)                                                                  \
			EMU_WR_##N(c, i->r, v);                                          \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_##NAME##_rm##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, L(c, i), &s));                                    \
		uint64_t d = EMU_RD_##N(c, i->r), v = alu_res(c, OP, d, s);              \
		alu_rec(c, OP, N, d, s, v);                                              \
		if (WB)                                                                  \
			EMU_WR_##N(c, i->r, v);                                          \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_##NAME##_ri##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t d = EMU_RD_##N(c, i->r), v = alu_res(c, OP, d, i->imm);         \
		alu_rec(c, OP, N, d, i->imm, v);                                         \
		if (WB)                                                                  \
			EMU_WR_##N(c, i->r, v);                                          \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_##NAME##_mr##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t d, lin = L(c, i);                                         \
		TRY(emu_rd##N(c, lin, &d));                                              \
		uint64_t s = EMU_RD_##N(c, i->r), v = alu_res(c, OP, d, s);              \
		if (WB)                                                                  \
			TRY(emu_wr##N(c, lin, v));                                       \
		alu_rec(c, OP, N, d, s, v);                                              \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_##NAME##_mi##F##_##N(ARGS)                                               \
	{                                                                                \
		uint64_t d, lin = L(c, i);                                         \
		TRY(emu_rd##N(c, lin, &d));                                              \
		uint64_t v = alu_res(c, OP, d, i->imm);                                  \
		if (WB)                                                                  \
			TRY(emu_wr##N(c, lin, v));                                       \
		alu_rec(c, OP, N, d, i->imm, v);                                         \
		return emu_next(c, i);                                                   \
	}
#define ALU_ALL(X) X(add, EMU_ALU_ADD, 1) X(or, EMU_ALU_OR, 1) X(adc, EMU_ALU_ADC, 1) \
	X(sbb, EMU_ALU_SBB, 1) X(and, EMU_ALU_AND, 1) X(sub, EMU_ALU_SUB, 1)              \
	X(xor, EMU_ALU_XOR, 1) X(cmp, EMU_ALU_CMP, 0) X(test, 8, 0)
#define ALU_SIZES(NAME, OP, WB) ALU_H(1, NAME, OP, WB, , emu_lin) ALU_H(2, NAME, OP, WB, , emu_lin) \
	ALU_H(4, NAME, OP, WB, , emu_lin) ALU_H(8, NAME, OP, WB, , emu_lin)
#define ALU_SIZES_F(NAME, OP, WB) ALU_H(1, NAME, OP, WB, _f, lin_flat) ALU_H(2, NAME, OP, WB, _f, lin_flat) \
	ALU_H(4, NAME, OP, WB, _f, lin_flat) ALU_H(8, NAME, OP, WB, _f, lin_flat)
ALU_ALL(ALU_SIZES)
ALU_ALL(ALU_SIZES_F)
#define ALU_ROW(NAME, OP, WB)                                                                   \
	{ { h_##NAME##_rr_1, h_##NAME##_rr_2, h_##NAME##_rr_4, h_##NAME##_rr_8 },               \
	  { h_##NAME##_rm_1, h_##NAME##_rm_2, h_##NAME##_rm_4, h_##NAME##_rm_8 },               \
	  { h_##NAME##_mr_1, h_##NAME##_mr_2, h_##NAME##_mr_4, h_##NAME##_mr_8 },               \
	  { h_##NAME##_ri_1, h_##NAME##_ri_2, h_##NAME##_ri_4, h_##NAME##_ri_8 },               \
	  { h_##NAME##_mi_1, h_##NAME##_mi_2, h_##NAME##_mi_4, h_##NAME##_mi_8 } },
enum { F_RR, F_RM, F_MR, F_RI, F_MI, F_NFORMS };
/* [op: EMU_ALU_* then TEST][form][size] */
static emu_fn *const alu_t[9][F_NFORMS][4] = { ALU_ALL(ALU_ROW) };
#define ALU_ROW_F(NAME, OP, WB)                                                                 \
	{ { h_##NAME##_rr_1, h_##NAME##_rr_2, h_##NAME##_rr_4, h_##NAME##_rr_8 },               \
	  { h_##NAME##_rm_f_1, h_##NAME##_rm_f_2, h_##NAME##_rm_f_4, h_##NAME##_rm_f_8 },       \
	  { h_##NAME##_mr_f_1, h_##NAME##_mr_f_2, h_##NAME##_mr_f_4, h_##NAME##_mr_f_8 },       \
	  { h_##NAME##_ri_1, h_##NAME##_ri_2, h_##NAME##_ri_4, h_##NAME##_ri_8 },               \
	  { h_##NAME##_mi_f_1, h_##NAME##_mi_f_2, h_##NAME##_mi_f_4, h_##NAME##_mi_f_8 } },
/* the same for 64-bit mode, a flat segment and no RIP-relative or 32-bit address (lin_flat) */
static emu_fn *const alu_f_t[9][F_NFORMS][4] = { ALU_ALL(ALU_ROW_F) };

/* Locked forms: the one locked path. Operation in i->op (emu_rmw_op), size in i->osz. */
static int h_lock_mr(ARGS)
{
	struct emu_rmw m = { .op = i->op, .size = i->osz, .src = emu_rdreg(c, i->osz, i->r), .rflags = emu_rflags(c) };
	TRY(emu_locked_rmw(c, i, emu_lin(c, i), &m));
	c->rflags = m.rflags;
	return emu_next(c, i);
}

static int h_lock_mi(ARGS)
{
	struct emu_rmw m = { .op = i->op, .size = i->osz, .src = i->imm, .rflags = emu_rflags(c) };
	TRY(emu_locked_rmw(c, i, emu_lin(c, i), &m));
	c->rflags = m.rflags;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- INC DEC NEG NOT */

/* INC DEC NEG NOT: result; un_rec records the flags (INC/DEC keep CF: it is fixed in rflags first). */
static inline uint64_t un_res(unsigned op, uint64_t d)
{
	return op == EMU_INC ? d + 1 : op == EMU_DEC ? d - 1 : op == EMU_NEG ? 0 - d : ~d;
}

static inline void un_rec(struct emu_vcpu *c, unsigned op, unsigned n, uint64_t d, uint64_t r)
{
	if (op == EMU_INC || op == EMU_DEC) {
		c->rflags = (c->rflags & ~EMU_CF) | lazy_cf(c);
		lazy_set(c, op == EMU_INC ? LF_INC : LF_DEC, n, d, 1, r);
	} else if (op == EMU_NEG) {
		lazy_set(c, LF_SUB, n, 0, d, r);
	}
}

#define UN_H(N, NAME, OP)                                                                \
	static int h_##NAME##_r_##N(ARGS)                                                \
	{                                                                                \
		uint64_t d = EMU_RD_##N(c, i->r), r = un_res(OP, d);                     \
		un_rec(c, OP, N, d, r);                                                  \
		EMU_WR_##N(c, i->r, r);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_##NAME##_m_##N(ARGS)                                                \
	{                                                                                \
		uint64_t d, lin = emu_lin(c, i);                                         \
		TRY(emu_rd##N(c, lin, &d));                                              \
		uint64_t r = un_res(OP, d);                                              \
		TRY(emu_wr##N(c, lin, r));                                               \
		un_rec(c, OP, N, d, r);                                                  \
		return emu_next(c, i);                                                   \
	}
#define UN_ALL(X) X(inc, EMU_INC) X(dec, EMU_DEC) X(neg, EMU_NEG) X(not, EMU_NOT)
#define UN_SIZES(NAME, OP) UN_H(1, NAME, OP) UN_H(2, NAME, OP) UN_H(4, NAME, OP) UN_H(8, NAME, OP)
UN_ALL(UN_SIZES)
#define UN_ROW(NAME, OP) { { h_##NAME##_r_1, h_##NAME##_r_2, h_##NAME##_r_4, h_##NAME##_r_8 }, \
			   { h_##NAME##_m_1, h_##NAME##_m_2, h_##NAME##_m_4, h_##NAME##_m_8 } },
static emu_fn *const un_t[4][2][4] = { UN_ALL(UN_ROW) };

/* ---------------------------------------------------------------- shifts and rotates */

/* SHL SHR SAR ROL ROR inline, bit for bit as alu.c's emu_shift (its comment gives the undefined
 * flags we reproduce); RCL/RCR go to emu_shift. Returns false when the masked count is 0 (nothing
 * changes, no flag either); else the result in *r and, in *fx, CF OF (and AF for shifts). */
static inline bool sh_calc(unsigned op, unsigned n, uint64_t d, uint64_t cnt, uint64_t *r, uint64_t *fx)
{
	const unsigned bits = 8 * n, top = bits - 1;
	const uint64_t m = emu_size_mask(n);
	unsigned k = (unsigned)cnt & (n == 8 ? 0x3f : 0x1f), t;
	uint64_t v, cf, of;
	if (!k)
		return false;
	switch (op) {
	case EMU_SHL: case EMU_SAL:
		v = (d << k) & m;
		cf = k <= bits ? (d >> (bits - k)) & 1 : 0;
		of = ((v >> top) ^ cf) & 1;
		*fx = cf | (of << 11) | EMU_AF;
		break;
	case EMU_SHR:
		v = d >> k;
		cf = (d >> (k - 1)) & 1;
		of = ((v >> top) ^ (v >> (top - 1))) & 1;
		*fx = cf | (of << 11) | EMU_AF;
		break;
	case EMU_SAR: {
		int64_t sd = (int64_t)emu_sign_extend(n, d);
		v = (uint64_t)(sd >> (k > top ? top : k)) & m;
		cf = (uint64_t)(sd >> (k - 1 > top ? top : k - 1)) & 1;
		*fx = cf | EMU_AF;
		break;
	}
	case EMU_ROL:
		t = k & top;
		v = t ? ((d << t) | (d >> (bits - t))) & m : d;
		cf = v & 1;
		*fx = cf | ((((v >> top) ^ cf) & 1) << 11);
		break;
	default: /* ROR */
		t = k & top;
		v = t ? ((d >> t) | (d << (bits - t))) & m : d;
		cf = v >> top;
		*fx = cf | ((((v >> top) ^ (v >> (top - 1))) & 1) << 11);
		break;
	}
	*r = v;
	return true;
}

/* Flags of sh_calc: shifts lazily (SF ZF PF from the result), rotates touch only CF and OF. */
static inline void sh_rec(struct emu_vcpu *c, unsigned op, unsigned n, uint64_t r, uint64_t fx)
{
	if (op == EMU_ROL || op == EMU_ROR) {
		lazy_cfof(c, fx);
	} else {
		c->lf_s = fx;
		c->lf_r = r << LF_SH(n);
		c->lf_k = LF_SZPX | (n << 8);
	}
}

#define SH_COUNT(c, i) (((i)->flg & EMU_I_CL) ? (uint8_t)(c)->r[EMU_RCX] : (i)->imm)
#define SH_H(N, NAME, OP)                                                                \
	static int h_##NAME##_r_##N(ARGS)                                                \
	{                                                                                \
		uint64_t r, fx, d = EMU_RD_##N(c, i->r);                                 \
		if (sh_calc(OP, N, d, SH_COUNT(c, i), &r, &fx))                          \
			sh_rec(c, OP, N, r, fx);                                         \
		else                                                                     \
			r = d; /* count 0: no flags, but a 32-bit destination is still   \
				  written, i.e. zero-extended (as the host does) */      \
		EMU_WR_##N(c, i->r, r);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_##NAME##_m_##N(ARGS)                                                \
	{                                                                                \
		uint64_t d, r, fx, lin = emu_lin(c, i);                                  \
		TRY(emu_rd##N(c, lin, &d));                                              \
		if (sh_calc(OP, N, d, SH_COUNT(c, i), &r, &fx)) {                        \
			TRY(emu_wr##N(c, lin, r));                                       \
			sh_rec(c, OP, N, r, fx);                                         \
		} else {                                                                 \
			TRY(emu_wr##N(c, lin, d)); /* a count of 0 still writes */      \
		}                                                                        \
		return emu_next(c, i);                                                   \
	}
#define SH_SIZES(NAME, OP) SH_H(1, NAME, OP) SH_H(2, NAME, OP) SH_H(4, NAME, OP) SH_H(8, NAME, OP)
SH_SIZES(shl, EMU_SHL) SH_SIZES(shr, EMU_SHR) SH_SIZES(sar, EMU_SAR) SH_SIZES(rol, EMU_ROL)
SH_SIZES(ror, EMU_ROR)

/* RCL RCR: through alu.c */
#define RC_H(N)                                                                          \
	static int h_rcx_r_##N(ARGS)                                                     \
	{                                                                                \
		EMU_WR_##N(c, i->r, emu_shift(i->op, N, EMU_RD_##N(c, i->r), SH_COUNT(c, i), emu_rflagsp(c))); \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_rcx_m_##N(ARGS)                                                     \
	{                                                                                \
		uint64_t d, f = emu_rflags(c), lin = emu_lin(c, i);                      \
		TRY(emu_rd##N(c, lin, &d));                                              \
		TRY(emu_wr##N(c, lin, emu_shift(i->op, N, d, SH_COUNT(c, i), &f)));      \
		c->rflags = f;                                                           \
		return emu_next(c, i);                                                   \
	}
RC_H(1) RC_H(2) RC_H(4) RC_H(8)
#define SH_ROW(NAME) { { h_##NAME##_r_1, h_##NAME##_r_2, h_##NAME##_r_4, h_##NAME##_r_8 }, \
		       { h_##NAME##_m_1, h_##NAME##_m_2, h_##NAME##_m_4, h_##NAME##_m_8 } }
/* [emu_shift_op][mem][size] */
static emu_fn *const shift_t[8][2][4] = { SH_ROW(rol), SH_ROW(ror), SH_ROW(rcx), SH_ROW(rcx),
					 SH_ROW(shl), SH_ROW(shr), SH_ROW(shl), SH_ROW(sar) };

/* SHLD/SHRD: op 0 = SHLD, 1 = SHRD; r = source register, b / memory = destination */
static int h_shxd_r(ARGS)
{
	unsigned n = i->osz;
	uint64_t cnt = (i->flg & EMU_I_CL) ? (uint8_t)c->r[EMU_RCX] : i->imm;
	uint64_t d = emu_rdreg(c, n, i->b), s = emu_rdreg(c, n, i->r);
	uint64_t *fp = emu_rflagsp(c);
	uint64_t v = i->op ? emu_shrd(n, d, s, cnt, fp) : emu_shld(n, d, s, cnt, fp);
	emu_wrreg(c, n, i->b, v);
	return emu_next(c, i);
}

static int h_shxd_m(ARGS)
{
	unsigned n = i->osz;
	uint64_t cnt = (i->flg & EMU_I_CL) ? (uint8_t)c->r[EMU_RCX] : i->imm;
	uint64_t d, f = emu_rflags(c), lin = emu_lin(c, i), s = emu_rdreg(c, n, i->r);
	TRY(emu_rd(c, lin, n, &d));
	uint64_t v = i->op ? emu_shrd(n, d, s, cnt, &f) : emu_shld(n, d, s, cnt, &f);
	TRY(emu_wr(c, lin, n, v));
	c->rflags = f;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- MUL IMUL DIV IDIV (one operand) */

enum { MD_MUL, MD_IMUL, MD_DIV, MD_IDIV };

static int muldiv(struct emu_vcpu *c, const struct emu_insn *i, unsigned n, uint64_t src)
{
	uint64_t m = emu_size_mask(n);
	uint64_t a = n == 1 ? (uint8_t)c->r[EMU_RAX] : c->r[EMU_RAX] & m;
	uint64_t hi = n == 1 ? (uint8_t)(c->r[EMU_RAX] >> 8) : c->r[EMU_RDX] & m;
	uint64_t q, r;
	struct emu_wide w;
	switch (i->op) {
	case MD_MUL:
	case MD_IMUL:
		w = i->op == MD_MUL ? emu_mul(n, a, src, emu_rflagsp(c)) : emu_imul1(n, a, src, emu_rflagsp(c));
		q = w.lo;
		r = w.hi;
		break;
	case MD_DIV:
		if (emu_div(n, hi, n == 1 ? (uint16_t)c->r[EMU_RAX] & 0xff : a, src, &q, &r))
			return emu_raise(c, EMU_V_DE);
		c->rflags = emu_div_flags(emu_rflags(c)); /* undefined (SDM "DIV"): the host's pattern */
		break;
	default:
		if (emu_idiv(n, hi, n == 1 ? (uint16_t)c->r[EMU_RAX] & 0xff : a, src, &q, &r))
			return emu_raise(c, EMU_V_DE);
		c->rflags = emu_div_flags(emu_rflags(c)); /* undefined (SDM "IDIV"): the host's pattern */
		break;
	}
	if (n == 1) {
		EMU_WR_2(c, EMU_RAX, (q & 0xff) | ((r & 0xff) << 8));
	} else {
		emu_wrreg(c, n, EMU_RAX, q);
		emu_wrreg(c, n, EMU_RDX, r);
	}
	return emu_next(c, i);
}

/* Two/three-operand IMUL inline: the truncated signed product; CF = OF = the product does not fit,
 * SF ZF AF PF unchanged (as alu.c's emu_imul, the AMD host). */
static inline uint64_t imul_n(struct emu_vcpu *c, unsigned n, uint64_t a, uint64_t b)
{
	uint64_t lo;
	bool ovf;
	if (n == 8) {
		__int128 p = (__int128)(int64_t)a * (int64_t)b;
		lo = (uint64_t)p;
		ovf = p != (__int128)(int64_t)lo;
	} else {
		int64_t p = (int64_t)emu_sign_extend(n, a) * (int64_t)emu_sign_extend(n, b);
		lo = (uint64_t)p & emu_size_mask(n);
		ovf = p != (int64_t)emu_sign_extend(n, lo);
	}
	lazy_cfof(c, ovf ? EMU_CF | EMU_OF : 0);
	return lo;
}

#define MD_H(N)                                                                          \
	static int h_muldiv_r_##N(ARGS)                                                  \
	{                                                                                \
		return muldiv(c, i, N, EMU_RD_##N(c, i->r));                             \
	}                                                                                \
	static int h_muldiv_m_##N(ARGS)                                                  \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &s));                                    \
		return muldiv(c, i, N, s);                                               \
	}                                                                                \
	static int h_imul2_rr_##N(ARGS)                                                  \
	{                                                                                \
		EMU_WR_##N(c, i->r, imul_n(c, N, EMU_RD_##N(c, i->r), EMU_RD_##N(c, i->b))); \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_imul2_rm_##N(ARGS)                                                  \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &s));                                    \
		EMU_WR_##N(c, i->r, imul_n(c, N, EMU_RD_##N(c, i->r), s));               \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_imul3_rr_##N(ARGS)                                                  \
	{                                                                                \
		EMU_WR_##N(c, i->r, imul_n(c, N, EMU_RD_##N(c, i->b), i->imm));          \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_imul3_rm_##N(ARGS)                                                  \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &s));                                    \
		EMU_WR_##N(c, i->r, imul_n(c, N, s, i->imm));                            \
		return emu_next(c, i);                                                   \
	}
MD_H(1) MD_H(2) MD_H(4) MD_H(8)
T4(h_muldiv_r); T4(h_muldiv_m); T4(h_imul2_rr); T4(h_imul2_rm); T4(h_imul3_rr); T4(h_imul3_rm);

/* ---------------------------------------------------------------- MOVZX MOVSX MOVSXD */

#define MOVX_H(S, D, F, L)                                                                     \
	HFN h_movzx_r##F##_##S##_##D(ARGS)                                             \
	{                                                                                \
		EMU_WR_##D(c, i->r, EMU_RD_##S(c, i->b));                                \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_movzx_m##F##_##S##_##D(ARGS)                                             \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_rd##S(c, L(c, i), &v));                                    \
		EMU_WR_##D(c, i->r, v);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_movsx_r##F##_##S##_##D(ARGS)                                             \
	{                                                                                \
		EMU_WR_##D(c, i->r, emu_sign_extend(S, EMU_RD_##S(c, i->b)));            \
		return emu_next(c, i);                                                   \
	}                                                                                \
	HFN h_movsx_m##F##_##S##_##D(ARGS)                                             \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_rd##S(c, L(c, i), &v));                                    \
		EMU_WR_##D(c, i->r, emu_sign_extend(S, v));                              \
		return emu_next(c, i);                                                   \
	}
#define MOVX_D(S) MOVX_H(S, 2, , emu_lin) MOVX_H(S, 4, , emu_lin) MOVX_H(S, 8, , emu_lin) \
	MOVX_H(S, 2, _f, lin_flat) MOVX_H(S, 4, _f, lin_flat) MOVX_H(S, 8, _f, lin_flat)
MOVX_D(1) MOVX_D(2) MOVX_D(4)
#define MOVX_ROW(K, F, S) { h_##K##_##F##_##S##_2, h_##K##_##F##_##S##_4, h_##K##_##F##_##S##_8 }
/* [sx][mem][src 1,2,4][dst 2,4,8] */
static emu_fn *const movx_t[2][2][3][3] = {
	{ { MOVX_ROW(movzx, r, 1), MOVX_ROW(movzx, r, 2), MOVX_ROW(movzx, r, 4) },
	  { MOVX_ROW(movzx, m, 1), MOVX_ROW(movzx, m, 2), MOVX_ROW(movzx, m, 4) } },
	{ { MOVX_ROW(movsx, r, 1), MOVX_ROW(movsx, r, 2), MOVX_ROW(movsx, r, 4) },
	  { MOVX_ROW(movsx, m, 1), MOVX_ROW(movsx, m, 2), MOVX_ROW(movsx, m, 4) } },
};
static emu_fn *const movx_f_t[2][3][3] = { /* [sx][src][dst], memory forms, lin_flat */
	{ MOVX_ROW(movzx, m_f, 1), MOVX_ROW(movzx, m_f, 2), MOVX_ROW(movzx, m_f, 4) },
	{ MOVX_ROW(movsx, m_f, 1), MOVX_ROW(movsx, m_f, 2), MOVX_ROW(movsx, m_f, 4) },
};

/* ---------------------------------------------------------------- LEA XCHG CMOV SETcc */

#define LEA_H(N)                                                                         \
	static int h_lea_##N(ARGS)                                                       \
	{                                                                                \
		EMU_WR_##N(c, i->r, ea_of(c, i));                                        \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_lea_f_##N(ARGS)                                                     \
	{                                                                                \
		EMU_WR_##N(c, i->r, c->r[i->b] + (c->r[i->x] << i->sc) + (uint64_t)i->disp); \
		return emu_next(c, i);                                                   \
	}
LEA_H(1) LEA_H(2) LEA_H(4) LEA_H(8)
T4(h_lea); T4(h_lea_f);

static int h_xchg_rr(ARGS)
{
	unsigned n = i->osz;
	uint64_t a = emu_rdreg(c, n, i->r), b = emu_rdreg(c, n, i->b);
	emu_wrreg(c, n, i->r, b);
	emu_wrreg(c, n, i->b, a);
	return emu_next(c, i);
}

/* XCHG with memory is locked whether or not it has the prefix (SDM "XCHG"). */
static int h_xchg_m(ARGS)
{
	struct emu_rmw m = { .op = EMU_RMW_XCHG, .size = i->osz, .src = emu_rdreg(c, i->osz, i->r),
			     .rflags = emu_rflags(c) };
	TRY(emu_locked_rmw(c, i, emu_lin(c, i), &m));
	emu_wrreg(c, i->osz, i->r, m.old);
	return emu_next(c, i);
}

#define CMOV_H(N)                                                                        \
	static int h_cmov_rr_##N(ARGS)                                                   \
	{                                                                                \
		uint64_t v = lazy_cond(c, i->op) ? EMU_RD_##N(c, i->b) : EMU_RD_##N(c, i->r); \
		EMU_WR_##N(c, i->r, v);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_cmov_rm_##N(ARGS)                                                   \
	{                                                                                \
		uint64_t s;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &s));                                    \
		EMU_WR_##N(c, i->r, lazy_cond(c, i->op) ? s : EMU_RD_##N(c, i->r));      \
		return emu_next(c, i);                                                   \
	}
CMOV_H(1) CMOV_H(2) CMOV_H(4) CMOV_H(8)
T4(h_cmov_rr); T4(h_cmov_rm);

static int h_setcc_r(ARGS)
{
	EMU_WR_1(c, i->r, lazy_cond(c, i->op));
	return emu_next(c, i);
}

static int h_setcc_m(ARGS)
{
	TRY(emu_wr1(c, emu_lin(c, i), lazy_cond(c, i->op)));
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- PUSH POP */

#define PUSHPOP_H(N)                                                                     \
	static int h_push_r_##N(ARGS)                                                    \
	{                                                                                \
		TRY(emu_push(c, N, EMU_RD_##N(c, i->r)));                                \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_push_i_##N(ARGS)                                                    \
	{                                                                                \
		TRY(emu_push(c, N, i->imm));                                             \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_push_m_##N(ARGS)                                                    \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_rd##N(c, emu_lin(c, i), &v));                                    \
		TRY(emu_push(c, N, v));                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_pop_r_##N(ARGS)                                                     \
	{                                                                                \
		uint64_t v;                                                              \
		TRY(emu_pop(c, N, &v));                                                  \
		EMU_WR_##N(c, i->r, v);                                                  \
		return emu_next(c, i);                                                   \
	}                                                                                \
	static int h_pop_m_##N(ARGS)                                                     \
	{                                                                                \
		uint64_t v, sp = RSP_;                                                   \
		TRY(emu_pop(c, N, &v));                                                  \
		int st = emu_wr##N(c, emu_lin(c, i), v);                                 \
		if (st) {                                                                \
			RSP_ = sp;                                                       \
			return st;                                                       \
		}                                                                        \
		return emu_next(c, i);                                                   \
	}
PUSHPOP_H(1) PUSHPOP_H(2) PUSHPOP_H(4) PUSHPOP_H(8)
T4(h_push_r); T4(h_push_i); T4(h_push_m); T4(h_pop_r); T4(h_pop_m);

static int h_pushf(ARGS)
{
	/* VM and RF are pushed as 0 (SDM "PUSHF") */
	TRY(emu_push(c, i->osz, emu_rflags(c) & ~(EMU_VM | EMU_RF)));
	return emu_next(c, i);
}

/* POPF (SDM "POPF"): at CPL 0 every writable flag; at CPL > 0 IOPL is kept, and IF too when
 * CPL > IOPL. VM/VIF/VIP are never set (no virtual-8086 mode). */
static int h_popf(ARGS)
{
	uint64_t v;
	TRY(emu_pop(c, i->osz, &v));
	uint64_t mask = EMU_FLAGS_WRITABLE & ~EMU_RF;
	if (c->cpl > 0)
		mask &= ~EMU_IOPL;
	if (c->cpl > ((c->rflags >> 12) & 3))
		mask &= ~EMU_IF;
	if (i->osz == 2)
		mask &= 0xffff;
	c->rflags = (emu_rflags(c) & ~mask) | (v & mask) | EMU_RF_FIXED;
	emu_ac_written(c);
	c->stop = EMU_ST_END; /* TF may have changed */
	if (c->rflags & EMU_IF)
		emu_irq_if_set(c);
	return emu_next(c, i);
}

static int h_push_sreg(ARGS)
{
	TRY(emu_push(c, i->osz, c->seg[i->op].selector));
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- branches */

/*
 * A taken branch: RIP = t and the block ends (c->last_i: see emu_next()). Block chaining: when
 * nothing asks for the run loop (c->stop: single-step, SMC, an exit...) and the jump cache has a
 * valid block at t (see emu_block_next(); not one that needs exact flags), its retired instructions
 * are counted and the next block runs right away, as a tail call. c->chain_left bounds the chain so
 * that the run loop still looks at kicks and other vCPUs' code writes often, and bounds the stack
 * where a handler could not make its dispatch a tail call.
 */
static inline int branch_to(struct emu_vcpu *c, const struct emu_insn *i, uint64_t t)
{
	c->rip = t;
	c->last_i = i;
	if (likely(!c->stop) && likely(c->chain_left > 0)) {
		uint64_t lin = emu_code_lin(c, t);
		const struct emu_jc *j = &c->jc[emu_jc_index(lin)];
		struct emu_block *b = j->b;
		if (likely(j->lin == lin && j->xep == c->xep && b->mode == c->mode && !b->flags_exact)) {
			c->chain_left--;
			__atomic_store_n(&c->icount, c->icount + i->idx + 1u, __ATOMIC_RELAXED);
			c->cur_b = b;
			c->cur_blin = lin;
			c->last_i = b->insn;
			return b->entry(c, b->insn);
		}
	}
	return EMU_ST_END;
}

/* The target of a near branch, checked before anything is committed: canonical in 64-bit mode;
 * else EIP, or IP with a 16-bit operand size (SDM "JMP": "IF OperandSize = 16 THEN EIP <- tempEIP
 * AND 0000FFFFH"). Once branch_to() runs, the status it returns may come from chained blocks
 * (an MMIO or I/O exit, a fault further on): a handler must not undo its own effects on it. */
static inline int branch_target(struct emu_vcpu *c, const struct emu_insn *i, uint64_t *t)
{
	if (c->mode64) {
		if (unlikely(!emu_canonical(*t)))
			return emu_raise_err(c, EMU_V_GP, 0);
	} else {
		*t = i->osz == 2 ? (uint16_t)*t : (uint32_t)*t;
	}
	return 0;
}

static inline int branch(struct emu_vcpu *c, const struct emu_insn *i, uint64_t t)
{
	TRY(branch_target(c, i, &t));
	return branch_to(c, i, t);
}

static int h_jmp_rel(ARGS)
{
	return branch_to(c, i, (c->rip + i->len + i->imm) & c->lin_mask);
}

/* Relative branches with a 16-bit operand size outside 64-bit mode (16-bit code, or 66 in 32-bit
 * code): IP wraps at 64 KiB. Separate handlers, chosen at decode time (rel_ip16()), so that the
 * 32/64-bit ones stay as they are. Condition or LOOP kind in i->op. */
static inline uint64_t rel_target16(const struct emu_vcpu *c, const struct emu_insn *i)
{
	return (uint16_t)(c->rip + i->len + i->imm);
}

static int h_jmp_rel16(ARGS)
{
	return branch_to(c, i, rel_target16(c, i));
}

static int h_jcc16(ARGS)
{
	if (lazy_cond(c, i->op))
		return branch_to(c, i, rel_target16(c, i));
	return emu_next(c, i);
}

/* Jcc does not end its block: not taken, execution goes on with the next decoded instruction
 * (a block is a run of fall-through paths, left at the first taken branch). */
#define JCC_H(CC)                                                                        \
	static int h_jcc_##CC(ARGS)                                                      \
	{                                                                                \
		if (lazy_cond(c, CC))                                                    \
			return branch_to(c, i, (c->rip + i->len + i->imm) & c->lin_mask); \
		return emu_next(c, i);                                                   \
	}
JCC_H(0) JCC_H(1) JCC_H(2) JCC_H(3) JCC_H(4) JCC_H(5) JCC_H(6) JCC_H(7)
JCC_H(8) JCC_H(9) JCC_H(10) JCC_H(11) JCC_H(12) JCC_H(13) JCC_H(14) JCC_H(15)
static emu_fn *const jcc_t[16] = { h_jcc_0, h_jcc_1, h_jcc_2, h_jcc_3, h_jcc_4, h_jcc_5, h_jcc_6,
				   h_jcc_7, h_jcc_8, h_jcc_9, h_jcc_10, h_jcc_11, h_jcc_12, h_jcc_13,
				   h_jcc_14, h_jcc_15 };

static inline uint64_t amask_of(unsigned asz)
{
	return asz == 8 ? ~0ull : asz == 4 ? 0xffffffffull : 0xffffull;
}

/* writes an address-size register (counter, index) as the CPU does: 32-bit writes zero-extend */
static inline void set_areg(struct emu_vcpu *c, int reg, unsigned asz, uint64_t v)
{
	if (asz == 8)
		c->r[reg] = v;
	else if (asz == 4)
		c->r[reg] = (uint32_t)v;
	else
		c->r[reg] = (c->r[reg] & ~0xffffull) | (v & 0xffff);
}

/* LOOP/LOOPE/LOOPNE (op 0/1/2) and JCXZ/JECXZ/JRCXZ (op 3); counter size in i->v */
static int h_loop(ARGS)
{
	uint64_t m = amask_of(i->v), cnt = c->r[EMU_RCX] & m;
	bool take;
	if (i->op == 3) {
		take = cnt == 0;
	} else {
		cnt = (cnt - 1) & m;
		set_areg(c, EMU_RCX, i->v, cnt);
		take = cnt != 0;
		if (i->op == 1)
			take = take && (emu_rflags(c) & EMU_ZF);
		else if (i->op == 2)
			take = take && !(emu_rflags(c) & EMU_ZF);
	}
	if (take)
		return branch_to(c, i, i->osz == 2 && !c->mode64 ? rel_target16(c, i) :
				       (c->rip + i->len + i->imm) & c->lin_mask);
	return emu_next(c, i); /* not taken: the block goes on */
}

static int h_call_rel(ARGS)
{
	uint64_t ret = c->rip + i->len;
	TRY(emu_push(c, i->osz, ret));
	return branch_to(c, i, (ret + i->imm) & c->lin_mask);
}

static int h_call_rel16(ARGS)
{
	TRY(emu_push(c, 2, c->rip + i->len));
	return branch_to(c, i, rel_target16(c, i));
}

static int h_call_r(ARGS)
{
	uint64_t t = emu_rdreg(c, i->osz, i->r);
	TRY(branch_target(c, i, &t));
	TRY(emu_push(c, i->osz, c->rip + i->len));
	return branch_to(c, i, t);
}

static int h_call_m(ARGS)
{
	uint64_t t;
	TRY(emu_rd(c, emu_lin(c, i), i->osz, &t));
	TRY(branch_target(c, i, &t));
	TRY(emu_push(c, i->osz, c->rip + i->len));
	return branch_to(c, i, t);
}

static int h_jmp_r(ARGS)
{
	return branch(c, i, emu_rdreg(c, i->osz, i->r));
}

static int h_jmp_m(ARGS)
{
	uint64_t t;
	TRY(emu_rd(c, emu_lin(c, i), i->osz, &t));
	return branch(c, i, t);
}

static int h_ret(ARGS)
{
	uint64_t t, sp = RSP_;
	TRY(emu_pop(c, i->osz, &t));
	int st = branch_target(c, i, &t);
	if (st) {
		RSP_ = sp;
		return st;
	}
	RSP_ = (RSP_ & ~c->sp_mask) | ((RSP_ + i->imm) & c->sp_mask);
	return branch_to(c, i, t);
}

static int h_ret_8(ARGS) /* the common near RET in 64-bit mode */
{
	uint64_t t;
	TRY(emu_rd8(c, c->r[EMU_RSP], &t));
	if (unlikely(!emu_canonical(t)))
		return emu_raise_err(c, EMU_V_GP, 0);
	c->r[EMU_RSP] += 8;
	return branch_to(c, i, t);
}

/* ---------------------------------------------------------------- bit operations */

/* BT/BTS/BTR/BTC (op = emu_bt_op); reg/imm bit offsets on registers and memory */
static int h_bt_rr(ARGS)
{
	unsigned n = i->osz;
	uint64_t v = emu_bt(i->op, n, emu_rdreg(c, n, i->b), emu_rdreg(c, n, i->r), emu_rflagsp(c));
	if (i->op != EMU_BT)
		emu_wrreg(c, n, i->b, v);
	return emu_next(c, i);
}

static int h_bt_ri(ARGS)
{
	unsigned n = i->osz;
	uint64_t v = emu_bt(i->op, n, emu_rdreg(c, n, i->b), i->imm, emu_rflagsp(c));
	if (i->op != EMU_BT)
		emu_wrreg(c, n, i->b, v);
	return emu_next(c, i);
}

static int bt_mem(struct emu_vcpu *c, const struct emu_insn *i, uint64_t lin, uint64_t bit)
{
	unsigned n = i->osz;
	if (i->flg & EMU_I_LOCK) {
		struct emu_rmw m = { .op = EMU_RMW_BTS + (i->op - EMU_BTS), .size = n, .src = bit,
				     .rflags = emu_rflags(c) };
		TRY(emu_locked_rmw(c, i, lin, &m));
		c->rflags = m.rflags;
		return emu_next(c, i);
	}
	uint64_t d, f = emu_rflags(c);
	TRY(emu_rd(c, lin, n, &d));
	uint64_t v = emu_bt(i->op, n, d, bit, &f);
	if (i->op != EMU_BT)
		TRY(emu_wr(c, lin, n, v));
	c->rflags = f;
	return emu_next(c, i);
}

static int h_bt_mr(ARGS)
{
	uint64_t off = emu_rdreg(c, i->osz, i->r);
	uint64_t lin = (emu_lin(c, i) + (uint64_t)emu_bt_mem_offset(i->osz, off)) & c->lin_mask;
	return bt_mem(c, i, lin, off);
}

static int h_bt_mi(ARGS)
{
	return bt_mem(c, i, emu_lin(c, i), i->imm);
}

/* BSF BSR TZCNT LZCNT POPCNT (op 0..4): dst register r, source b or memory */
static uint64_t bitscan(const struct emu_insn *i, uint64_t src, uint64_t old, uint64_t *f)
{
	switch (i->op) {
	case 0: return emu_bsf(i->osz, src, old, f);
	case 1: return emu_bsr(i->osz, src, old, f);
	case 2: return emu_tzcnt(i->osz, src, f);
	case 3: return emu_lzcnt(i->osz, src, f);
	default: return emu_popcnt(i->osz, src, f);
	}
}

/* BSF/BSR of a zero source leave the WHOLE destination register unchanged, also with a 32-bit
 * operand (no zero-extension of the upper half: AMD APM "BSF"; what the host does, alu.h). */
static int bitscan_wb(struct emu_vcpu *c, const struct emu_insn *i, uint64_t src)
{
	unsigned n = i->osz;
	uint64_t v = bitscan(i, src, emu_rdreg(c, n, i->r), emu_rflagsp(c));
	if (i->op > 1 || (src & emu_size_mask(n)))
		emu_wrreg(c, n, i->r, v);
	return emu_next(c, i);
}

static int h_bitscan_r(ARGS)
{
	return bitscan_wb(c, i, emu_rdreg(c, i->osz, i->b));
}

static int h_bitscan_m(ARGS)
{
	uint64_t s;
	TRY(emu_rd(c, emu_lin(c, i), i->osz, &s));
	return bitscan_wb(c, i, s);
}

/* BMI1 (op 0 ANDN, 1 BEXTR, 2 BLSI, 3 BLSMSK, 4 BLSR). ANDN r = ~v & E; BEXTR r = E, ctl v;
 * BLS* v = f(E). The E operand is b (register) or memory. */
static int bmi1(struct emu_vcpu *c, const struct emu_insn *i, uint64_t e)
{
	unsigned n = i->osz;
	uint64_t f = emu_rflags(c), vv = emu_rdreg(c, n, i->v), res;
	switch (i->op) {
	case 0: res = emu_andn(n, vv, e, &f); break;
	case 1: res = emu_bextr(n, e, vv, &f); break;
	case 2: res = emu_blsi(n, e, &f); break;
	case 3: res = emu_blsmsk(n, e, &f); break;
	default: res = emu_blsr(n, e, &f); break;
	}
	emu_wrreg(c, n, i->op >= 2 ? i->v : i->r, res);
	c->rflags = f;
	return emu_next(c, i);
}

static int h_bmi1_r(ARGS)
{
	return bmi1(c, i, emu_rdreg(c, i->osz, i->b));
}

static int h_bmi1_m(ARGS)
{
	uint64_t e;
	TRY(emu_rd(c, emu_lin(c, i), i->osz, &e));
	return bmi1(c, i, e);
}

static int h_bswap(ARGS)
{
	emu_wrreg(c, i->osz, i->r, emu_bswap(i->osz, emu_rdreg(c, i->osz, i->r)));
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- XADD CMPXCHG CMPXCHG8B/16B */

static int h_xadd_rr(ARGS)
{
	unsigned n = i->osz;
	uint64_t d = emu_rdreg(c, n, i->b), s = emu_rdreg(c, n, i->r);
	uint64_t sum = emu_alu(EMU_ALU_ADD, n, d, s, emu_rflagsp(c));
	emu_wrreg(c, n, i->r, d);
	emu_wrreg(c, n, i->b, sum);
	return emu_next(c, i);
}

static int h_xadd_m(ARGS)
{
	unsigned n = i->osz;
	uint64_t lin = emu_lin(c, i), s = emu_rdreg(c, n, i->r), d;
	if (i->flg & EMU_I_LOCK) {
		struct emu_rmw m = { .op = EMU_RMW_XADD, .size = n, .src = s, .rflags = emu_rflags(c) };
		TRY(emu_locked_rmw(c, i, lin, &m));
		c->rflags = m.rflags;
		d = m.old;
	} else {
		uint64_t f = emu_rflags(c);
		TRY(emu_rd(c, lin, n, &d));
		TRY(emu_wr(c, lin, n, emu_alu(EMU_ALU_ADD, n, d, s, &f)));
		c->rflags = f;
	}
	emu_wrreg(c, n, i->r, d);
	return emu_next(c, i);
}

static int h_cmpxchg_rr(ARGS)
{
	unsigned n = i->osz;
	uint64_t d = emu_rdreg(c, n, i->b), a = emu_rdreg(c, n, EMU_RAX);
	emu_alu(EMU_ALU_CMP, n, a, d, emu_rflagsp(c));
	if (c->rflags & EMU_ZF)
		emu_wrreg(c, n, i->b, emu_rdreg(c, n, i->r));
	else
		emu_wrreg(c, n, EMU_RAX, d);
	return emu_next(c, i);
}

static int h_cmpxchg_m(ARGS)
{
	unsigned n = i->osz;
	uint64_t lin = emu_lin(c, i), a = emu_rdreg(c, n, EMU_RAX), s = emu_rdreg(c, n, i->r), d;
	if (i->flg & EMU_I_LOCK) {
		struct emu_rmw m = { .op = EMU_RMW_CMPXCHG, .size = n, .src = s, .cmp = a, .rflags = emu_rflags(c) };
		TRY(emu_locked_rmw(c, i, lin, &m));
		c->rflags = m.rflags;
		d = m.old;
	} else {
		uint64_t f = emu_rflags(c);
		TRY(emu_rd(c, lin, n, &d));
		emu_alu(EMU_ALU_CMP, n, a, d, &f);
		/* the destination is always written (SDM "CMPXCHG") */
		TRY(emu_wr(c, lin, n, (f & EMU_ZF) ? s : d));
		c->rflags = f;
	}
	if (!(c->rflags & EMU_ZF))
		emu_wrreg(c, n, EMU_RAX, d);
	return emu_next(c, i);
}

/* CMPXCHG8B (osz 4) / CMPXCHG16B (osz 8): EDX:EAX / RDX:RAX against m64 / m128 */
static int h_cmpxchg_dw(ARGS)
{
	unsigned h = i->osz;
	uint64_t lin = emu_lin(c, i);
	uint64_t lo = emu_rdreg(c, h, EMU_RAX), hi = emu_rdreg(c, h, EMU_RDX);
	uint64_t nlo = emu_rdreg(c, h, EMU_RBX), nhi = emu_rdreg(c, h, EMU_RCX);
	uint64_t olo, ohi;
	bool eq;
	if (h == 8 && (lin & 15))
		return emu_raise_err(c, EMU_V_GP, 0);
	if (i->flg & EMU_I_LOCK) {
		struct emu_rmw m = { .op = EMU_RMW_CMPXCHG_DW, .size = 2 * h, .cmp = lo, .cmp_hi = hi,
				     .new_lo = nlo, .new_hi = nhi, .rflags = emu_rflags(c) };
		TRY(emu_locked_rmw(c, i, lin, &m));
		c->rflags = m.rflags;
		olo = m.old;
		ohi = m.old_hi;
		eq = c->rflags & EMU_ZF;
	} else {
		uint64_t buf[2] = { 0, 0 };
		TRY(emu_read_bytes(c, lin, buf, 2 * h, EMU_ACC_R));
		if (h == 4) {
			olo = (uint32_t)buf[0];
			ohi = buf[0] >> 32;
		} else {
			olo = buf[0];
			ohi = buf[1];
		}
		eq = olo == lo && ohi == hi;
		uint64_t w[2];
		if (h == 4) {
			w[0] = eq ? (nlo | (nhi << 32)) : buf[0];
		} else {
			w[0] = eq ? nlo : olo;
			w[1] = eq ? nhi : ohi;
		}
		TRY(emu_write_bytes(c, lin, w, 2 * h, EMU_ACC_W));
		uint64_t f = emu_rflags(c);
		c->rflags = eq ? (f | EMU_ZF) : (f & ~EMU_ZF);
	}
	if (!eq) {
		emu_wrreg(c, h, EMU_RAX, olo);
		emu_wrreg(c, h, EMU_RDX, ohi);
	}
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- misc data */

/* CBW/CWDE/CDQE (op 0) and CWD/CDQ/CQO (op 1) */
static int h_cext(ARGS)
{
	unsigned n = i->osz;
	if (i->op == 0) {
		emu_wrreg(c, n, EMU_RAX, emu_sign_extend(n / 2, c->r[EMU_RAX]));
	} else {
		uint64_t a = emu_rdreg(c, n, EMU_RAX);
		emu_wrreg(c, n, EMU_RDX, (a & emu_size_sign(n)) ? ~0ull : 0);
	}
	return emu_next(c, i);
}

/* flag instructions: op 0 CLC 1 STC 2 CMC 3 CLD 4 STD 5 CLI 6 STI 7 LAHF 8 SAHF 9 STAC 10 CLAC */
static int h_flagop(ARGS)
{
	uint64_t f = emu_rflags(c);
	unsigned iopl = (f >> 12) & 3;
	switch (i->op) {
	case 0: f &= ~EMU_CF; break;
	case 1: f |= EMU_CF; break;
	case 2: f ^= EMU_CF; break;
	case 3: f &= ~EMU_DF; break;
	case 4: f |= EMU_DF; break;
	case 5:
	case 6:
		if (c->cpl > iopl)
			return emu_raise_err(c, EMU_V_GP, 0);
		if (i->op == 6 && !(f & EMU_IF)) {
			/* STI that sets IF: interrupts stay blocked until after the next instruction
			 * (SDM Vol. 3 6.8.3); the block ends so the run loop sees the shadow */
			c->intr_shadow = true;
			c->stop = EMU_ST_END;
			c->rflags = f | EMU_IF;
			emu_irq_if_set(c);
			return emu_next(c, i);
		}
		f = i->op == 5 ? (f & ~EMU_IF) : (f | EMU_IF);
		break;
	case 7:
		EMU_WR_1(c, 1, (f & 0xd5) | 2); /* AH = SF:ZF:0:AF:0:PF:1:CF */
		return emu_next(c, i);
	case 9:
	case 10:
		/* SDM Vol. 2 "STAC", "CLAC": #UD "If the CPL > 0" (and where CPUID.(EAX=07H,ECX=0H):
		 * EBX.SMAP[bit 20] = 0: never, emu_cpuid advertises it); in real mode CPL is 0 */
		if (c->cpl > 0)
			return emu_raise(c, EMU_V_UD);
		c->rflags = i->op == 9 ? (f | EMU_AC) : (f & ~EMU_AC);
		emu_ac_written(c);
		return emu_next(c, i);
	default:
		f = (f & ~0xd5ull) | (((c->r[EMU_RAX] >> 8) & 0xd5)) | 2;
		break;
	}
	c->rflags = f;
	return emu_next(c, i);
}

static int h_enter(ARGS)
{
	unsigned n = i->osz, level = i->v & 31;
	uint64_t sp0 = RSP_, bp = c->r[EMU_RBP];
	int st = emu_push(c, n, bp);
	uint64_t frame = RSP_ & c->sp_mask;
	for (unsigned k = 1; !st && k < level; k++) {
		uint64_t v;
		bp = (bp - n) & c->sp_mask;
		st = emu_rd(c, (c->sbase[EMU_SS] + bp) & c->lin_mask, n, &v);
		if (st)
			st = stack_fault(c, st, (c->sbase[EMU_SS] + bp) & c->lin_mask);
		else
			st = emu_push(c, n, v);
	}
	if (!st && level)
		st = emu_push(c, n, frame);
	if (st) {
		RSP_ = sp0;
		return st;
	}
	emu_wrreg(c, n == 8 ? 8 : n, EMU_RBP, frame);
	RSP_ = (RSP_ & ~c->sp_mask) | ((RSP_ - i->imm) & c->sp_mask);
	return emu_next(c, i);
}

static int h_leave(ARGS)
{
	uint64_t sp0 = RSP_, v;
	RSP_ = (RSP_ & ~c->sp_mask) | (c->r[EMU_RBP] & c->sp_mask);
	int st = emu_pop(c, i->osz, &v);
	if (st) {
		RSP_ = sp0;
		return st;
	}
	emu_wrreg(c, i->osz, EMU_RBP, v);
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- string instructions */

/*
 * MOVS STOS LODS CMPS SCAS at each size, with REP/REPE/REPNE (SDM Vol. 2 "REP/REPE/REPZ/REPNE/REPNZ").
 * Interruptible: after each iteration RSI/RDI/RCX are committed, so a fault, an MMIO exit or a kick in
 * the middle leaves them consistent with RIP still at the instruction, which resumes where it stopped.
 * The address size (counter and index width) is in i->v.
 */
enum { S_MOVS, S_STOS, S_LODS, S_CMPS, S_SCAS };


/* Copies/fills k elements host-side, element by element in increasing address order, each load and
 * store ONE host access of the element's size (EMU_GLD/EMU_GST, emu.h): x86-TSO as one at a time. */
#define REP_FILL(T, D, S, K, V)                                                          \
	do {                                                                             \
		uint8_t *d_ = (D);                                                       \
		const uint8_t *s_ = (S);                                                 \
		for (uint64_t j_ = 0; j_ < (K); j_++)                                     \
			EMU_GST(T, d_ + j_ * sizeof(T),                                  \
				s_ ? EMU_GLD(T, s_ + j_ * sizeof(T)) : (T)(V));          \
	} while (0)

/*
 * REP MOVS / REP STOS, forward (DF = 0): the elements that lie in one 4 KiB page on each side whose
 * translation is in the TLB with the needed permission, done without translating each element. The
 * TLB holds only RAM (never MMIO) and never grants writing to a page with decoded code, so MMIO, SMC
 * detection and page faults all stay with the one-element path, which the caller takes when this
 * returns 0 (and which refills the TLB). Stops before an element would cross a page or wrap the
 * address size.
 */
static inline uint64_t rep_fast(struct emu_vcpu *c, const unsigned n, const int kind, uint64_t cnt,
				uint64_t slin, uint64_t dlin, uint64_t si, uint64_t di, uint64_t am)
{
	const struct emu_tlb_entry *ed = emu_tlbe(c, dlin);
	if (ed->tag_w != (dlin & ~0xfffull))
		return 0;
	uint64_t k = (0x1000 - (dlin & 0xfff)) / n;
	const uint8_t *src = NULL;
	if (kind == S_MOVS) {
		const struct emu_tlb_entry *es = emu_tlbe(c, slin);
		if (es->tag_r != (slin & ~0xfffull))
			return 0;
		uint64_t ks = (0x1000 - (slin & 0xfff)) / n;
		k = ks < k ? ks : k;
		src = (const uint8_t *)(uintptr_t)(slin + (uint64_t)es->addend);
		if (am != ~0ull && (am - si) / n < k)
			k = (am - si) / n;
	}
	if (am != ~0ull && (am - di) / n < k)
		k = (am - di) / n;
	k = cnt < k ? cnt : k;
	uint8_t *dst = (uint8_t *)(uintptr_t)(dlin + (uint64_t)ed->addend);
	uint64_t v = c->r[EMU_RAX];
	switch (n) {
	case 1: REP_FILL(uint8_t, dst, src, k, v); break;
	case 2: REP_FILL(uint16_t, dst, src, k, v); break;
	case 4: REP_FILL(uint32_t, dst, src, k, v); break;
	default: REP_FILL(uint64_t, dst, src, k, v); break;
	}
	return k;
}

/* A long string instruction stops between iterations (RIP at it, registers committed) for a kick
 * or for the VM-wide word (an exclusive section to park for, a new code epoch): the run loop acts
 * on either and the instruction resumes. */
static inline bool rep_interrupt(struct emu_vcpu *c)
{
	return atomic_load_explicit(&c->kick, memory_order_relaxed) ||
	       atomic_load_explicit(&c->vm->sync, memory_order_acquire) != c->seen_sync;
}

static inline int string_op(struct emu_vcpu *c, const struct emu_insn *i, const unsigned n, const int kind)
{
	const unsigned asz = i->v;
	const uint64_t am = amask_of(asz);
	const uint64_t step = (c->rflags & EMU_DF) ? (uint64_t)-(int64_t)n : n;
	const bool rep = i->flg & (EMU_I_REP | EMU_I_REPNE);
	uint64_t cnt = rep ? (c->r[EMU_RCX] & am) : 1;
	unsigned iter = 0;
	while (cnt) {
		uint64_t si = c->r[EMU_RSI] & am, di = c->r[EMU_RDI] & am, a = 0, b = 0;
		uint64_t slin = (c->sbase[i->seg] + si) & c->lin_mask, dlin = (c->sbase[EMU_ES] + di) & c->lin_mask;
		if ((kind == S_MOVS || kind == S_STOS) && rep && step == n && cnt > 1) {
			uint64_t k = rep_fast(c, n, kind, cnt, slin, dlin, si, di, am);
			if (k) {
				if (kind == S_MOVS)
					set_areg(c, EMU_RSI, asz, si + k * n);
				set_areg(c, EMU_RDI, asz, di + k * n);
				cnt -= k;
				set_areg(c, EMU_RCX, asz, cnt);
				if (cnt && unlikely(c->exit_pending || c->stop))
					return c->exit_pending ? EMU_ST_EXIT : (c->stop = 0, EMU_ST_EXIT);
				iter += (unsigned)k;
				if (unlikely(iter >= EMU_REP_KICK_CHECK)) {
					iter = 0;
					if (cnt && rep_interrupt(c))
						return EMU_ST_EXIT;
				}
				continue;
			}
		}
		switch (kind) {
		case S_MOVS:
			TRY(emu_rd(c, slin, n, &a));
			TRY(emu_wr(c, dlin, n, a));
			set_areg(c, EMU_RSI, asz, si + step);
			set_areg(c, EMU_RDI, asz, di + step);
			break;
		case S_STOS:
			TRY(emu_wr(c, dlin, n, c->r[EMU_RAX]));
			set_areg(c, EMU_RDI, asz, di + step);
			break;
		case S_LODS:
			TRY(emu_rd(c, slin, n, &a));
			emu_wrreg(c, n, EMU_RAX, a);
			set_areg(c, EMU_RSI, asz, si + step);
			break;
		case S_CMPS:
			TRY(emu_rd(c, slin, n, &a));
			TRY(emu_rd(c, dlin, n, &b));
			alu_rec(c, EMU_ALU_CMP, n, a, b, a - b);
			set_areg(c, EMU_RSI, asz, si + step);
			set_areg(c, EMU_RDI, asz, di + step);
			break;
		default:
			TRY(emu_rd(c, dlin, n, &b));
			a = c->r[EMU_RAX];
			alu_rec(c, EMU_ALU_CMP, n, a, b, a - b);
			set_areg(c, EMU_RDI, asz, di + step);
			break;
		}
		if (!rep)
			break;
		cnt--;
		set_areg(c, EMU_RCX, asz, cnt);
		if (kind == S_CMPS || kind == S_SCAS) {
			bool zf = !((a - b) & emu_size_mask(n));
			if ((i->flg & EMU_I_REPNE) ? zf : !zf)
				break;
		}
		if (cnt && unlikely(c->exit_pending || c->stop))
			return c->exit_pending ? EMU_ST_EXIT : (c->stop = 0, EMU_ST_EXIT);
		if (unlikely(++iter == EMU_REP_KICK_CHECK)) {
			iter = 0;
			if (cnt && rep_interrupt(c))
				return EMU_ST_EXIT;
		}
	}
	return emu_next(c, i);
}

#define STR_H(N)                                                                          \
	static int h_movs_##N(ARGS) { return string_op(c, i, N, S_MOVS); }                \
	static int h_stos_##N(ARGS) { return string_op(c, i, N, S_STOS); }                \
	static int h_lods_##N(ARGS) { return string_op(c, i, N, S_LODS); }                \
	static int h_cmps_##N(ARGS) { return string_op(c, i, N, S_CMPS); }                \
	static int h_scas_##N(ARGS) { return string_op(c, i, N, S_SCAS); }
STR_H(1) STR_H(2) STR_H(4) STR_H(8)
T4(h_movs); T4(h_stos); T4(h_lods); T4(h_cmps); T4(h_scas);

/* ---------------------------------------------------------------- I/O */

/* I/O permission: CPL <= IOPL (no TSS I/O bitmap: documented simplification). */
static int io_allowed(struct emu_vcpu *c)
{
	if (c->cpl > ((c->rflags >> 12) & 3))
		return emu_raise_err(c, EMU_V_GP, 0);
	return 0;
}

static void io_exit(struct emu_vcpu *c, int dir, uint16_t port, unsigned size)
{
	struct kvm_run *run = c->run;
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = dir;
	run->io.size = size;
	run->io.port = port;
	run->io.count = 1;
	run->io.data_offset = EMU_RUN_DATA_OFFSET;
	c->exit_pending = true;
	if (dir == KVM_EXIT_IO_IN)
		c->pio_wait = true;
}

static inline uint16_t io_port(const struct emu_vcpu *c, const struct emu_insn *i)
{
	return i->op ? (uint16_t)c->r[EMU_RDX] : (uint16_t)i->imm;
}

/* IN: exits; the next run() re-executes it with the monitor's data (KVM's complete_userspace_io). */
static int h_in(ARGS)
{
	TRY(io_allowed(c));
	uint16_t port = io_port(c, i);
	uint8_t d[4];
	if (unlikely(c->vm->irqchip) && emu_irq_pio(c, port, false, d, i->osz)) {
		uint32_t v = 0;
		memcpy(&v, d, i->osz);
		emu_wrreg(c, i->osz, EMU_RAX, v);
		return emu_next(c, i);
	}
	if (c->pio_valid && c->pio_port == port && c->pio_size == i->osz) {
		uint64_t v = 0;
		memcpy(&v, c->pio_data, i->osz);
		c->pio_valid = false;
		emu_wrreg(c, i->osz, EMU_RAX, v);
		return emu_next(c, i);
	}
	c->pio_port = port;
	c->pio_size = i->osz;
	io_exit(c, KVM_EXIT_IO_IN, port, i->osz);
	return EMU_ST_EXIT;
}

/* OUT: completes, then exits with the data in the run area. */
static int h_out(ARGS)
{
	TRY(io_allowed(c));
	uint16_t port = io_port(c, i);
	uint64_t v = c->r[EMU_RAX];
	if (unlikely(c->vm->irqchip) && emu_irq_pio(c, port, true, (uint8_t *)&v, i->osz))
		return emu_next(c, i); /* an interrupt it raises is seen at the block's end (kick word) */
	memcpy((uint8_t *)c->run + EMU_RUN_DATA_OFFSET, &v, i->osz);
	io_exit(c, KVM_EXIT_IO_OUT, port, i->osz);
	c->stop = EMU_ST_END;
	return emu_next(c, i);
}

/* INS/OUTS, with or without REP: ONE element per exit (count = 1; KVM may batch more — documented).
 * A REP instruction stays at its RIP until RCX reaches 0, each run() moving one element. */
static int h_ins(ARGS)
{
	TRY(io_allowed(c));
	unsigned asz = i->v, n = i->osz;
	uint64_t am = amask_of(asz);
	bool rep = i->flg & (EMU_I_REP | EMU_I_REPNE);
	if (rep && !(c->r[EMU_RCX] & am))
		return emu_next(c, i);
	uint16_t port = (uint16_t)c->r[EMU_RDX];
	if (!(c->pio_valid && c->pio_port == port && c->pio_size == n)) {
		c->pio_port = port;
		c->pio_size = n;
		io_exit(c, KVM_EXIT_IO_IN, port, n);
		return EMU_ST_EXIT;
	}
	uint64_t v = 0, di = c->r[EMU_RDI] & am;
	memcpy(&v, c->pio_data, n);
	TRY(emu_wr(c, (c->sbase[EMU_ES] + di) & c->lin_mask, n, v));
	c->pio_valid = false;
	set_areg(c, EMU_RDI, asz, di + ((c->rflags & EMU_DF) ? (uint64_t)-(int64_t)n : n));
	if (rep) {
		uint64_t cnt = ((c->r[EMU_RCX] & am) - 1) & am;
		set_areg(c, EMU_RCX, asz, cnt);
		if (cnt) {
			c->pio_port = port;
			c->pio_size = n;
			io_exit(c, KVM_EXIT_IO_IN, port, n);
			return EMU_ST_EXIT;
		}
	}
	return emu_next(c, i);
}

static int h_outs(ARGS)
{
	TRY(io_allowed(c));
	unsigned asz = i->v, n = i->osz;
	uint64_t am = amask_of(asz);
	bool rep = i->flg & (EMU_I_REP | EMU_I_REPNE);
	if (rep && !(c->r[EMU_RCX] & am))
		return emu_next(c, i);
	uint64_t v, si = c->r[EMU_RSI] & am;
	TRY(emu_rd(c, (c->sbase[i->seg] + si) & c->lin_mask, n, &v));
	uint16_t port = (uint16_t)c->r[EMU_RDX];
	memcpy((uint8_t *)c->run + EMU_RUN_DATA_OFFSET, &v, n);
	io_exit(c, KVM_EXIT_IO_OUT, port, n);
	set_areg(c, EMU_RSI, asz, si + ((c->rflags & EMU_DF) ? (uint64_t)-(int64_t)n : n));
	if (rep) {
		uint64_t cnt = ((c->r[EMU_RCX] & am) - 1) & am;
		set_areg(c, EMU_RCX, asz, cnt);
		if (cnt)
			return EMU_ST_EXIT;
	}
	c->stop = EMU_ST_END;
	return emu_next(c, i);
}

static int h_hlt(ARGS)
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

static int h_mov_r_sreg(ARGS)
{
	emu_wrreg(c, i->osz, i->r, c->seg[i->op].selector);
	return emu_next(c, i);
}

static int h_mov_m_sreg(ARGS)
{
	TRY(emu_wr2(c, emu_lin(c, i), c->seg[i->op].selector));
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
static int form2(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo, struct emu_insn *i)
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
static int form1(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *o, struct emu_insn *i)
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
static uint8_t src_seg(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo)
{
	for (unsigned k = 0; k < zi->operand_count; k++)
		if (zo[k].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    (zo[k].mem.base == ZYDIS_REGISTER_RSI || zo[k].mem.base == ZYDIS_REGISTER_ESI ||
		     zo[k].mem.base == ZYDIS_REGISTER_SI))
			return (uint8_t)(zo[k].mem.segment - ZYDIS_REGISTER_ES);
	return EMU_DS;
}

static int cc_of(ZydisMnemonic m, const ZydisMnemonic *list)
{
	for (int k = 0; k < 16; k++)
		if (list[k] == m)
			return k;
	return -1;
}

static const ZydisMnemonic jcc_m[16] = {
	ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB,
	ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
	ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP,
	ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE };
static const ZydisMnemonic setcc_m[16] = {
	ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
	ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
	ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
	ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE };
static const ZydisMnemonic cmov_m[16] = {
	ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVNB,
	ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
	ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
	ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE };

/* SDM Vol. 2 "LOCK": the prefix is allowed only on these, with a memory destination. */
static bool lockable(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_ADD: case ZYDIS_MNEMONIC_ADC: case ZYDIS_MNEMONIC_AND:
	case ZYDIS_MNEMONIC_BTC: case ZYDIS_MNEMONIC_BTR: case ZYDIS_MNEMONIC_BTS:
	case ZYDIS_MNEMONIC_CMPXCHG: case ZYDIS_MNEMONIC_CMPXCHG8B: case ZYDIS_MNEMONIC_CMPXCHG16B:
	case ZYDIS_MNEMONIC_DEC: case ZYDIS_MNEMONIC_INC: case ZYDIS_MNEMONIC_NEG: case ZYDIS_MNEMONIC_NOT:
	case ZYDIS_MNEMONIC_OR: case ZYDIS_MNEMONIC_SBB: case ZYDIS_MNEMONIC_SUB: case ZYDIS_MNEMONIC_XOR:
	case ZYDIS_MNEMONIC_XADD: case ZYDIS_MNEMONIC_XCHG:
		return true;
	default:
		return false;
	}
}

static int alu_index(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_ADD: return EMU_ALU_ADD;
	case ZYDIS_MNEMONIC_OR: return EMU_ALU_OR;
	case ZYDIS_MNEMONIC_ADC: return EMU_ALU_ADC;
	case ZYDIS_MNEMONIC_SBB: return EMU_ALU_SBB;
	case ZYDIS_MNEMONIC_AND: return EMU_ALU_AND;
	case ZYDIS_MNEMONIC_SUB: return EMU_ALU_SUB;
	case ZYDIS_MNEMONIC_XOR: return EMU_ALU_XOR;
	case ZYDIS_MNEMONIC_CMP: return EMU_ALU_CMP;
	case ZYDIS_MNEMONIC_TEST: return 8;
	default: return -1;
	}
}

/*
 * Fills i (fn and operands) for one decoded instruction. Returns 0, EMU_SEL_END, or EMU_SEL_BAD when
 * the operands are of a form the engine does not handle (the caller then makes it "unimplemented").
 */
/* A relative branch whose target wraps at 64 KiB: 16-bit operand size outside 64-bit mode (in
 * 64-bit mode 66 does not shrink near branches on Intel; the engine keeps RIP 64-bit there). */
static bool ip16(const struct emu_vcpu *c, const struct emu_insn *i)
{
	return c->mode != EMU_MODE_64 && i->osz == 2;
}

static int select_one(struct emu_vcpu *c, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		      struct emu_insn *i)
{
	ZydisMnemonic m = zi->mnemonic;
	unsigned osz = zi->operand_width / 8, nvis = zi->operand_count_visible;
	unsigned asz = zi->address_width / 8;
	int k, f;

	i->len = zi->length;
	i->mnem = (uint16_t)m;
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

	if ((i->flg & EMU_I_LOCK) && (!lockable(m) || zo[0].type != ZYDIS_OPERAND_TYPE_MEMORY)) {
		i->fn = emu_h_ud; /* SDM Vol. 2 "LOCK": #UD */
		return EMU_SEL_END;
	}
	unsigned si = sidx(i->osz);

	switch (m) {
	case ZYDIS_MNEMONIC_NOP: case ZYDIS_MNEMONIC_ENDBR64: case ZYDIS_MNEMONIC_ENDBR32:
	case ZYDIS_MNEMONIC_LFENCE: case ZYDIS_MNEMONIC_SFENCE: case ZYDIS_MNEMONIC_CLFLUSH:
	case ZYDIS_MNEMONIC_CLFLUSHOPT: case ZYDIS_MNEMONIC_PREFETCHNTA: case ZYDIS_MNEMONIC_PREFETCHT0:
	case ZYDIS_MNEMONIC_PREFETCHT1: case ZYDIS_MNEMONIC_PREFETCHT2: case ZYDIS_MNEMONIC_PREFETCHW:
		i->fn = h_nop;
		return 0;
	case ZYDIS_MNEMONIC_PAUSE:
		i->fn = h_pause;
		return 0;
	case ZYDIS_MNEMONIC_MFENCE:
		i->fn = h_mfence;
		return 0;
	case ZYDIS_MNEMONIC_WBINVD: case ZYDIS_MNEMONIC_INVD:
		i->fn = h_priv_nop;
		return 0;
	case ZYDIS_MNEMONIC_UD0: case ZYDIS_MNEMONIC_UD1: case ZYDIS_MNEMONIC_UD2:
		i->fn = emu_h_ud;
		return EMU_SEL_END;
	case ZYDIS_MNEMONIC_HLT:
		i->fn = h_hlt;
		return EMU_SEL_END;

	case ZYDIS_MNEMONIC_MOV: {
		ZydisRegisterClass c0 = zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER ? ZydisRegisterGetClass(zo[0].reg.value) : ZYDIS_REGCLASS_INVALID;
		ZydisRegisterClass c1 = zo[1].type == ZYDIS_OPERAND_TYPE_REGISTER ? ZydisRegisterGetClass(zo[1].reg.value) : ZYDIS_REGCLASS_INVALID;
		if (c0 == ZYDIS_REGCLASS_CONTROL || c0 == ZYDIS_REGCLASS_DEBUG) {
			i->op = (uint8_t)ZydisRegisterGetId(zo[0].reg.value);
			k = reg_of(&zo[1]);
			if (k < 0)
				return EMU_SEL_BAD;
			i->r = (uint8_t)k;
			i->fn = c0 == ZYDIS_REGCLASS_CONTROL ? emu_h_mov_cr_r : emu_h_mov_dr_r;
			return EMU_SEL_END;
		}
		if (c1 == ZYDIS_REGCLASS_CONTROL || c1 == ZYDIS_REGCLASS_DEBUG) {
			i->op = (uint8_t)ZydisRegisterGetId(zo[1].reg.value);
			k = reg_of(&zo[0]);
			if (k < 0)
				return EMU_SEL_BAD;
			i->r = (uint8_t)k;
			i->fn = c1 == ZYDIS_REGCLASS_CONTROL ? emu_h_mov_r_cr : emu_h_mov_r_dr;
			return 0;
		}
		if (c0 == ZYDIS_REGCLASS_SEGMENT) {
			i->op = (uint8_t)(zo[0].reg.value - ZYDIS_REGISTER_ES);
			f = form1(zi, &zo[1], i);
			if (f < 0)
				return EMU_SEL_BAD;
			i->fn = f ? emu_h_mov_sreg_m : emu_h_mov_sreg_r;
			i->osz = f ? 2 : i->osz;
			return 0;
		}
		if (c1 == ZYDIS_REGCLASS_SEGMENT) {
			i->op = (uint8_t)(zo[1].reg.value - ZYDIS_REGISTER_ES);
			f = form1(zi, &zo[0], i);
			if (f < 0)
				return EMU_SEL_BAD;
			i->fn = f ? h_mov_m_sreg : h_mov_r_sreg;
			return 0;
		}
		f = form2(zi, zo, i);
		switch (f) {
		case F_RR: i->fn = h_mov_rr_t[si]; return 0;
		case F_RM: i->fn = h_mov_rm_t[si]; return 0;
		case F_MR: i->fn = h_mov_mr_t[si]; return 0;
		case F_RI: i->fn = h_mov_ri_t[si]; return 0;
		case F_MI: i->fn = h_mov_mi_t[si]; return 0;
		default: return EMU_SEL_BAD;
		}
	}

	case ZYDIS_MNEMONIC_ADD: case ZYDIS_MNEMONIC_OR: case ZYDIS_MNEMONIC_ADC: case ZYDIS_MNEMONIC_SBB:
	case ZYDIS_MNEMONIC_AND: case ZYDIS_MNEMONIC_SUB: case ZYDIS_MNEMONIC_XOR: case ZYDIS_MNEMONIC_CMP:
	case ZYDIS_MNEMONIC_TEST:
		k = alu_index(m);
		f = form2(zi, zo, i);
		if (f < 0)
			return EMU_SEL_BAD;
		if (i->flg & EMU_I_LOCK) {
			i->op = (uint8_t)k;
			i->fn = f == F_MR ? h_lock_mr : h_lock_mi;
			return 0;
		}
		i->fn = alu_t[k][f][si];
		return 0;

	case ZYDIS_MNEMONIC_INC: case ZYDIS_MNEMONIC_DEC: case ZYDIS_MNEMONIC_NEG: case ZYDIS_MNEMONIC_NOT:
		k = m == ZYDIS_MNEMONIC_INC ? 0 : m == ZYDIS_MNEMONIC_DEC ? 1 : m == ZYDIS_MNEMONIC_NEG ? 2 : 3;
		f = form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		if (i->flg & EMU_I_LOCK) {
			i->op = (uint8_t)(EMU_RMW_INC + k);
			i->fn = h_lock_mi;
			return 0;
		}
		i->fn = un_t[k][f][si];
		return 0;

	case ZYDIS_MNEMONIC_ROL: case ZYDIS_MNEMONIC_ROR: case ZYDIS_MNEMONIC_RCL: case ZYDIS_MNEMONIC_RCR:
	case ZYDIS_MNEMONIC_SHL: case ZYDIS_MNEMONIC_SHR: case ZYDIS_MNEMONIC_SAR:
		i->op = m == ZYDIS_MNEMONIC_ROL ? EMU_ROL : m == ZYDIS_MNEMONIC_ROR ? EMU_ROR :
			m == ZYDIS_MNEMONIC_RCL ? EMU_RCL : m == ZYDIS_MNEMONIC_RCR ? EMU_RCR :
			m == ZYDIS_MNEMONIC_SHL ? EMU_SHL : m == ZYDIS_MNEMONIC_SHR ? EMU_SHR : EMU_SAR;
		f = form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		if (nvis < 2 || zo[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
			i->imm = nvis < 2 ? 1 : zo[1].imm.value.u;
		else if (zo[1].type == ZYDIS_OPERAND_TYPE_REGISTER && zo[1].reg.value == ZYDIS_REGISTER_CL)
			i->flg |= EMU_I_CL;
		else
			return EMU_SEL_BAD;
		i->fn = shift_t[i->op][f][si];
		return 0;

	case ZYDIS_MNEMONIC_SHLD: case ZYDIS_MNEMONIC_SHRD:
		i->op = m == ZYDIS_MNEMONIC_SHRD;
		f = form2(zi, zo, i);
		if (f == F_RR) {
			uint8_t t = i->r;
			i->r = i->b;
			i->b = t;
			i->fn = h_shxd_r;
		} else if (f == F_MR) {
			i->fn = h_shxd_m;
		} else {
			return EMU_SEL_BAD;
		}
		if (zo[2].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
			i->imm = zo[2].imm.value.u;
		else
			i->flg |= EMU_I_CL;
		return 0;

	case ZYDIS_MNEMONIC_MUL: case ZYDIS_MNEMONIC_DIV: case ZYDIS_MNEMONIC_IDIV:
	case ZYDIS_MNEMONIC_IMUL:
		if (m != ZYDIS_MNEMONIC_IMUL || nvis == 1) {
			i->op = m == ZYDIS_MNEMONIC_MUL ? MD_MUL : m == ZYDIS_MNEMONIC_IMUL ? MD_IMUL :
				m == ZYDIS_MNEMONIC_DIV ? MD_DIV : MD_IDIV;
			f = form1(zi, &zo[0], i);
			if (f < 0)
				return EMU_SEL_BAD;
			i->fn = f ? h_muldiv_m_t[si] : h_muldiv_r_t[si];
			return 0;
		}
		f = form2(zi, zo, i);
		if (nvis == 3) {
			i->imm = zo[2].imm.value.u;
			if (f == F_RR)
				i->fn = h_imul3_rr_t[si];
			else if (f == F_RM)
				i->fn = h_imul3_rm_t[si];
			else
				return EMU_SEL_BAD;
			return 0;
		}
		if (f == F_RR)
			i->fn = h_imul2_rr_t[si];
		else if (f == F_RM)
			i->fn = h_imul2_rm_t[si];
		else
			return EMU_SEL_BAD;
		return 0;

	case ZYDIS_MNEMONIC_MOVZX: case ZYDIS_MNEMONIC_MOVSX: case ZYDIS_MNEMONIC_MOVSXD: {
		unsigned ssz = zo[1].size / 8, dsz = zo[0].size / 8;
		f = form2(zi, zo, i);
		if ((f != F_RR && f != F_RM) || ssz > 4 || dsz < 2)
			return EMU_SEL_BAD;
		if (ssz >= dsz) { /* MOVSXD without REX.W, MOVZX r16, r/m16: a plain move */
			i->fn = f == F_RR ? h_mov_rr_t[sidx(dsz)] : h_mov_rm_t[sidx(dsz)];
			return 0;
		}
		i->fn = movx_t[m != ZYDIS_MNEMONIC_MOVZX][f == F_RM][sidx(ssz)][sidx(dsz) - 1];
		return 0;
	}

	case ZYDIS_MNEMONIC_LEA:
		if (zo[0].type != ZYDIS_OPERAND_TYPE_REGISTER || (k = reg_of(&zo[0])) < 0 ||
		    mem_of(zi, &zo[1], i))
			return EMU_SEL_BAD;
		i->r = (uint8_t)k;
		i->fn = h_lea_t[si];
		return 0;

	case ZYDIS_MNEMONIC_XCHG:
		f = form2(zi, zo, i);
		if (f == F_RR) {
			i->fn = h_xchg_rr;
		} else if (f == F_MR) {
			i->fn = h_xchg_m;
		} else if (f == F_RM) {
			i->fn = h_xchg_m; /* r is the register, memory the other */
		} else {
			return EMU_SEL_BAD;
		}
		return 0;

	case ZYDIS_MNEMONIC_XADD:
		f = form2(zi, zo, i);
		if (f == F_RR) {
			uint8_t t = i->r; /* form2 put dst in r, src in b: handlers want dst b, src r */
			i->r = i->b;
			i->b = t;
			i->fn = h_xadd_rr;
		} else if (f == F_MR) {
			i->fn = h_xadd_m;
		} else {
			return EMU_SEL_BAD;
		}
		return 0;

	case ZYDIS_MNEMONIC_CMPXCHG:
		f = form2(zi, zo, i);
		if (f == F_RR) {
			uint8_t t = i->r;
			i->r = i->b;
			i->b = t;
			i->fn = h_cmpxchg_rr;
		} else if (f == F_MR) {
			i->fn = h_cmpxchg_m;
		} else {
			return EMU_SEL_BAD;
		}
		return 0;

	case ZYDIS_MNEMONIC_CMPXCHG8B: case ZYDIS_MNEMONIC_CMPXCHG16B:
		if (mem_of(zi, &zo[0], i))
			return EMU_SEL_BAD;
		i->osz = m == ZYDIS_MNEMONIC_CMPXCHG8B ? 4 : 8;
		i->fn = h_cmpxchg_dw;
		return 0;

	case ZYDIS_MNEMONIC_PUSH:
		if (zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(zo[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
			i->op = (uint8_t)(zo[0].reg.value - ZYDIS_REGISTER_ES);
			i->fn = h_push_sreg;
			return 0;
		}
		if (zo[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			i->imm = zo[0].imm.value.u;
			i->fn = h_push_i_t[si];
			return 0;
		}
		f = form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->fn = f ? h_push_m_t[si] : h_push_r_t[si];
		return 0;

	case ZYDIS_MNEMONIC_POP:
		if (zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(zo[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
			i->op = (uint8_t)(zo[0].reg.value - ZYDIS_REGISTER_ES);
			i->fn = emu_h_pop_sreg;
			return 0;
		}
		f = form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->fn = f ? h_pop_m_t[si] : h_pop_r_t[si];
		return 0;

	case ZYDIS_MNEMONIC_PUSHF: case ZYDIS_MNEMONIC_PUSHFD: case ZYDIS_MNEMONIC_PUSHFQ:
		i->fn = h_pushf;
		return 0;
	case ZYDIS_MNEMONIC_POPF: case ZYDIS_MNEMONIC_POPFD: case ZYDIS_MNEMONIC_POPFQ:
		i->fn = h_popf;
		return EMU_SEL_END;

	case ZYDIS_MNEMONIC_JMP:
	case ZYDIS_MNEMONIC_CALL:
		if (zi->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
			if (zo[0].type == ZYDIS_OPERAND_TYPE_POINTER) {
				i->imm = zo[0].ptr.offset;
				i->v = 0;
				i->disp = zo[0].ptr.segment;
				i->fn = m == ZYDIS_MNEMONIC_JMP ? emu_h_ljmp_ptr : emu_h_lcall_ptr;
				return EMU_SEL_END;
			}
			if (mem_of(zi, &zo[0], i))
				return EMU_SEL_BAD;
			i->fn = m == ZYDIS_MNEMONIC_JMP ? emu_h_ljmp_m : emu_h_lcall_m;
			return EMU_SEL_END;
		}
		if (zo[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			i->imm = zo[0].imm.value.u;
			if (ip16(c, i))
				i->fn = m == ZYDIS_MNEMONIC_JMP ? h_jmp_rel16 : h_call_rel16;
			else
				i->fn = m == ZYDIS_MNEMONIC_JMP ? h_jmp_rel : h_call_rel;
			return EMU_SEL_END;
		}
		f = form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->fn = m == ZYDIS_MNEMONIC_JMP ? (f ? h_jmp_m : h_jmp_r) : (f ? h_call_m : h_call_r);
		return EMU_SEL_END;

	case ZYDIS_MNEMONIC_RET:
		if (zi->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
			i->imm = nvis ? zo[0].imm.value.u : 0;
			i->fn = emu_h_lret;
			return EMU_SEL_END;
		}
		i->imm = nvis ? zo[0].imm.value.u : 0;
		i->fn = (i->osz == 8 && !i->imm) ? h_ret_8 : h_ret;
		return EMU_SEL_END;

	case ZYDIS_MNEMONIC_LOOP: case ZYDIS_MNEMONIC_LOOPE: case ZYDIS_MNEMONIC_LOOPNE:
	case ZYDIS_MNEMONIC_JCXZ: case ZYDIS_MNEMONIC_JECXZ: case ZYDIS_MNEMONIC_JRCXZ:
		i->op = m == ZYDIS_MNEMONIC_LOOP ? 0 : m == ZYDIS_MNEMONIC_LOOPE ? 1 : m == ZYDIS_MNEMONIC_LOOPNE ? 2 : 3;
		i->v = (uint8_t)asz;
		i->imm = zo[0].imm.value.u;
		i->fn = h_loop;
		return 0;

	case ZYDIS_MNEMONIC_BT: case ZYDIS_MNEMONIC_BTS: case ZYDIS_MNEMONIC_BTR: case ZYDIS_MNEMONIC_BTC:
		i->op = m == ZYDIS_MNEMONIC_BT ? EMU_BT : m == ZYDIS_MNEMONIC_BTS ? EMU_BTS :
			m == ZYDIS_MNEMONIC_BTR ? EMU_BTR : EMU_BTC;
		f = form2(zi, zo, i);
		switch (f) {
		case F_RR: { uint8_t t = i->r; i->r = i->b; i->b = t; i->fn = h_bt_rr; return 0; }
		case F_RI: i->b = i->r; i->fn = h_bt_ri; return 0;
		case F_MR: i->fn = h_bt_mr; return 0;
		case F_MI: i->fn = h_bt_mi; return 0;
		default: return EMU_SEL_BAD;
		}

	case ZYDIS_MNEMONIC_BSF: case ZYDIS_MNEMONIC_BSR: case ZYDIS_MNEMONIC_TZCNT:
	case ZYDIS_MNEMONIC_LZCNT: case ZYDIS_MNEMONIC_POPCNT:
		i->op = m == ZYDIS_MNEMONIC_BSF ? 0 : m == ZYDIS_MNEMONIC_BSR ? 1 : m == ZYDIS_MNEMONIC_TZCNT ? 2 :
			m == ZYDIS_MNEMONIC_LZCNT ? 3 : 4;
		f = form2(zi, zo, i);
		if (f == F_RR)
			i->fn = h_bitscan_r;
		else if (f == F_RM)
			i->fn = h_bitscan_m;
		else
			return EMU_SEL_BAD;
		return 0;

	case ZYDIS_MNEMONIC_ANDN: case ZYDIS_MNEMONIC_BEXTR: case ZYDIS_MNEMONIC_BLSI:
	case ZYDIS_MNEMONIC_BLSMSK: case ZYDIS_MNEMONIC_BLSR: {
		const ZydisDecodedOperand *e;
		i->op = m == ZYDIS_MNEMONIC_ANDN ? 0 : m == ZYDIS_MNEMONIC_BEXTR ? 1 : m == ZYDIS_MNEMONIC_BLSI ? 2 :
			m == ZYDIS_MNEMONIC_BLSMSK ? 3 : 4;
		int d = reg_of(&zo[0]);
		if (d < 0)
			return EMU_SEL_BAD;
		if (i->op == 0) { /* ANDN r, vvvv, r/m */
			i->r = (uint8_t)d;
			i->v = (uint8_t)reg_of(&zo[1]);
			e = &zo[2];
		} else if (i->op == 1) { /* BEXTR r, r/m, vvvv */
			i->r = (uint8_t)d;
			i->v = (uint8_t)reg_of(&zo[2]);
			e = &zo[1];
		} else { /* BLS* vvvv, r/m */
			i->v = (uint8_t)d;
			e = &zo[1];
		}
		if (e->type == ZYDIS_OPERAND_TYPE_REGISTER) {
			i->b = (uint8_t)reg_of(e);
			i->fn = h_bmi1_r;
		} else if (!mem_of(zi, e, i)) {
			i->fn = h_bmi1_m;
		} else {
			return EMU_SEL_BAD;
		}
		return 0;
	}

	case ZYDIS_MNEMONIC_BSWAP:
		if ((k = reg_of(&zo[0])) < 0)
			return EMU_SEL_BAD;
		i->r = (uint8_t)k;
		i->fn = h_bswap;
		return 0;

	case ZYDIS_MNEMONIC_CBW: case ZYDIS_MNEMONIC_CWDE: case ZYDIS_MNEMONIC_CDQE:
		i->op = 0;
		i->fn = h_cext;
		return 0;
	case ZYDIS_MNEMONIC_CWD: case ZYDIS_MNEMONIC_CDQ: case ZYDIS_MNEMONIC_CQO:
		i->op = 1;
		i->fn = h_cext;
		return 0;

	case ZYDIS_MNEMONIC_CLC: i->op = 0; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_STC: i->op = 1; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_CMC: i->op = 2; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_CLD: i->op = 3; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_STD: i->op = 4; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_CLI: i->op = 5; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_STI: i->op = 6; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_LAHF: i->op = 7; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_SAHF: i->op = 8; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_STAC: i->op = 9; i->fn = h_flagop; return 0;
	case ZYDIS_MNEMONIC_CLAC: i->op = 10; i->fn = h_flagop; return 0;

	case ZYDIS_MNEMONIC_ENTER:
		i->imm = zo[0].imm.value.u & 0xffff;
		i->v = (uint8_t)zo[1].imm.value.u;
		i->fn = h_enter;
		return 0;
	case ZYDIS_MNEMONIC_LEAVE:
		i->fn = h_leave;
		return 0;

	case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSD: case ZYDIS_MNEMONIC_MOVSQ:
	case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_STOSD: case ZYDIS_MNEMONIC_STOSQ:
	case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_LODSW: case ZYDIS_MNEMONIC_LODSD: case ZYDIS_MNEMONIC_LODSQ:
	case ZYDIS_MNEMONIC_CMPSB: case ZYDIS_MNEMONIC_CMPSW: case ZYDIS_MNEMONIC_CMPSD: case ZYDIS_MNEMONIC_CMPSQ:
	case ZYDIS_MNEMONIC_SCASB: case ZYDIS_MNEMONIC_SCASW: case ZYDIS_MNEMONIC_SCASD: case ZYDIS_MNEMONIC_SCASQ: {
		if (zi->meta.category != ZYDIS_CATEGORY_STRINGOP)
			return EMU_SEL_BAD;
		i->v = (uint8_t)asz; /* SI/DI/CX with a 16-bit address size */
		i->seg = src_seg(zi, zo);
		switch (m) {
		case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSD: case ZYDIS_MNEMONIC_MOVSQ:
			i->fn = h_movs_t[si]; break;
		case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_STOSD: case ZYDIS_MNEMONIC_STOSQ:
			i->fn = h_stos_t[si]; break;
		case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_LODSW: case ZYDIS_MNEMONIC_LODSD: case ZYDIS_MNEMONIC_LODSQ:
			i->fn = h_lods_t[si]; break;
		case ZYDIS_MNEMONIC_CMPSB: case ZYDIS_MNEMONIC_CMPSW: case ZYDIS_MNEMONIC_CMPSD: case ZYDIS_MNEMONIC_CMPSQ:
			i->fn = h_cmps_t[si]; break;
		default:
			i->fn = h_scas_t[si]; break;
		}
		return 0;
	}

	case ZYDIS_MNEMONIC_IN: case ZYDIS_MNEMONIC_OUT: {
		const ZydisDecodedOperand *p = m == ZYDIS_MNEMONIC_IN ? &zo[1] : &zo[0];
		const ZydisDecodedOperand *d = m == ZYDIS_MNEMONIC_IN ? &zo[0] : &zo[1];
		i->osz = (uint8_t)(d->size / 8);
		if (p->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			i->op = 0;
			i->imm = p->imm.value.u & 0xff;
		} else {
			i->op = 1;
		}
		i->fn = m == ZYDIS_MNEMONIC_IN ? h_in : h_out;
		return 0;
	}
	case ZYDIS_MNEMONIC_INSB: case ZYDIS_MNEMONIC_INSW: case ZYDIS_MNEMONIC_INSD:
	case ZYDIS_MNEMONIC_OUTSB: case ZYDIS_MNEMONIC_OUTSW: case ZYDIS_MNEMONIC_OUTSD:
		i->v = (uint8_t)asz;
		i->osz = (m == ZYDIS_MNEMONIC_INSB || m == ZYDIS_MNEMONIC_OUTSB) ? 1 :
			 (m == ZYDIS_MNEMONIC_INSW || m == ZYDIS_MNEMONIC_OUTSW) ? 2 : 4;
		i->seg = src_seg(zi, zo);
		i->fn = (m == ZYDIS_MNEMONIC_INSB || m == ZYDIS_MNEMONIC_INSW || m == ZYDIS_MNEMONIC_INSD) ? h_ins : h_outs;
		return 0;

	/* system.c */
	case ZYDIS_MNEMONIC_INT: i->imm = zo[0].imm.value.u & 0xff; i->fn = emu_h_int; return EMU_SEL_END;
	case ZYDIS_MNEMONIC_INT3: i->fn = emu_h_int3; return EMU_SEL_END;
	case ZYDIS_MNEMONIC_INT1: i->fn = emu_h_int1; return EMU_SEL_END;
	case ZYDIS_MNEMONIC_INTO: i->fn = emu_h_into; return EMU_SEL_END;
	case ZYDIS_MNEMONIC_IRET: case ZYDIS_MNEMONIC_IRETD: case ZYDIS_MNEMONIC_IRETQ:
		i->osz = m == ZYDIS_MNEMONIC_IRETQ ? 8 : m == ZYDIS_MNEMONIC_IRETD ? 4 : 2;
		i->fn = emu_h_iret;
		return EMU_SEL_END;
	case ZYDIS_MNEMONIC_SYSCALL: i->fn = emu_h_syscall; return EMU_SEL_END;
	case ZYDIS_MNEMONIC_SYSRET: i->fn = emu_h_sysret; return EMU_SEL_END;
	case ZYDIS_MNEMONIC_CPUID: i->fn = emu_h_cpuid; return 0;
	case ZYDIS_MNEMONIC_RDTSC: i->fn = emu_h_rdtsc; return 0;
	case ZYDIS_MNEMONIC_RDTSCP: i->fn = emu_h_rdtscp; return 0;
	case ZYDIS_MNEMONIC_RDPID:
		if ((k = reg_of(&zo[0])) < 0)
			return EMU_SEL_BAD;
		i->r = (uint8_t)k;
		i->fn = emu_h_rdpid;
		return 0;
	case ZYDIS_MNEMONIC_RDMSR: i->fn = emu_h_rdmsr; return 0;
	case ZYDIS_MNEMONIC_WRMSR: i->fn = emu_h_wrmsr; return EMU_SEL_END;
	case ZYDIS_MNEMONIC_SWAPGS: i->fn = emu_h_swapgs; return 0;
	case ZYDIS_MNEMONIC_CLTS: i->fn = emu_h_clts; return EMU_SEL_END;
	case ZYDIS_MNEMONIC_INVLPG:
		if (mem_of(zi, &zo[0], i))
			return EMU_SEL_BAD;
		i->fn = emu_h_invlpg;
		return EMU_SEL_END;
	case ZYDIS_MNEMONIC_LGDT: case ZYDIS_MNEMONIC_LIDT: case ZYDIS_MNEMONIC_SGDT: case ZYDIS_MNEMONIC_SIDT:
		if (mem_of(zi, &zo[0], i))
			return EMU_SEL_BAD;
		i->fn = m == ZYDIS_MNEMONIC_LGDT ? emu_h_lgdt : m == ZYDIS_MNEMONIC_LIDT ? emu_h_lidt :
			m == ZYDIS_MNEMONIC_SGDT ? emu_h_sgdt : emu_h_sidt;
		return 0;
	case ZYDIS_MNEMONIC_LTR: case ZYDIS_MNEMONIC_LLDT: case ZYDIS_MNEMONIC_LMSW:
		f = form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->op = (uint8_t)f; /* 1: memory operand */
		i->fn = m == ZYDIS_MNEMONIC_LTR ? emu_h_ltr : m == ZYDIS_MNEMONIC_LLDT ? emu_h_lldt : emu_h_lmsw;
		return m == ZYDIS_MNEMONIC_LMSW ? EMU_SEL_END : 0;
	case ZYDIS_MNEMONIC_VERR: case ZYDIS_MNEMONIC_VERW:
		if (c->mode == 2 || !(c->cr0 & CR0_PE))
			return EMU_SEL_BAD; /* #UD in real mode (and 16-bit code is refused) */
		f = form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->op = (uint8_t)f;
		i->fn = m == ZYDIS_MNEMONIC_VERR ? emu_h_verr : emu_h_verw;
		return 0;
	case ZYDIS_MNEMONIC_STR: case ZYDIS_MNEMONIC_SLDT: case ZYDIS_MNEMONIC_SMSW:
		f = form1(zi, &zo[0], i);
		if (f < 0)
			return EMU_SEL_BAD;
		i->op = (uint8_t)f;
		i->fn = m == ZYDIS_MNEMONIC_STR ? emu_h_str : m == ZYDIS_MNEMONIC_SLDT ? emu_h_sldt : emu_h_smsw_r;
		return 0;

	default:
		if (zi->meta.category == ZYDIS_CATEGORY_COND_BR && (k = cc_of(m, jcc_m)) >= 0) {
			i->imm = zo[0].imm.value.u;
			i->op = (uint8_t)k;
			i->fn = ip16(c, i) ? h_jcc16 : jcc_t[k];
			return 0; /* not taken: the block goes on */
		}
		if ((k = cc_of(m, setcc_m)) >= 0) {
			i->op = (uint8_t)k;
			f = form1(zi, &zo[0], i);
			if (f < 0)
				return EMU_SEL_BAD;
			i->fn = f ? h_setcc_m : h_setcc_r;
			return 0;
		}
		if (emu_select_legacy(c, zi, zo, i) != EMU_SEL_BAD)
			return 0; /* legacy.c: none of them ends its block */
		if ((k = cc_of(m, cmov_m)) >= 0) {
			i->op = (uint8_t)k;
			f = form2(zi, zo, i);
			if (f == F_RR)
				i->fn = h_cmov_rr_t[si];
			else if (f == F_RM)
				i->fn = h_cmov_rm_t[si];
			else
				return EMU_SEL_BAD;
			return 0;
		}
		return EMU_SEL_BAD;
	}
}

/* The lin_flat flavour of i's handler when it has one and the operand allows it: LEA always (no
 * segment), memory operands in 64-bit mode with ES/CS/SS/DS (base 0, lin_mask ~0: emu.h). */
static emu_fn *flat_of(const struct emu_vcpu *c, const struct emu_insn *i)
{
	for (int k = 0; k < 4; k++)
		if (i->fn == h_lea_t[k])
			return h_lea_f_t[k];
	if (c->mode != 0 || i->seg > EMU_DS)
		return i->fn;
	for (int k = 0; k < 4; k++) {
		if (i->fn == h_mov_rm_t[k])
			return h_mov_rm_f_t[k];
		if (i->fn == h_mov_mr_t[k])
			return h_mov_mr_f_t[k];
		if (i->fn == h_mov_mi_t[k])
			return h_mov_mi_f_t[k];
	}
	for (int op = 0; op < 9; op++)
		for (int f = 0; f < F_NFORMS; f++)
			for (int k = 0; k < 4; k++)
				if (i->fn == alu_t[op][f][k])
					return alu_f_t[op][f][k];
	for (int sx = 0; sx < 2; sx++)
		for (int a = 0; a < 3; a++)
			for (int b = 0; b < 3; b++)
				if (i->fn == movx_t[sx][1][a][b])
					return movx_f_t[sx][a][b];
	return i->fn;
}

/* Handlers outside this file read and write c->rflags directly: they must begin a block, where no
 * lazy flags are pending (see LAZY FLAGS). */
static bool outside_handler(emu_fn *fn)
{
	static emu_fn *const sys[] = {
		emu_h_int, emu_h_int3, emu_h_int1, emu_h_into, emu_h_iret, emu_h_syscall, emu_h_sysret, emu_h_ljmp_ptr,
		emu_h_ljmp_m, emu_h_lcall_ptr, emu_h_lcall_m, emu_h_lret, emu_h_mov_sreg_r, emu_h_mov_sreg_m,
		emu_h_pop_sreg, emu_h_lgdt, emu_h_lidt, emu_h_sgdt, emu_h_sidt, emu_h_ltr, emu_h_lldt, emu_h_str,
		emu_h_sldt, emu_h_mov_cr_r, emu_h_mov_r_cr, emu_h_mov_dr_r, emu_h_mov_r_dr, emu_h_rdmsr,
		emu_h_wrmsr, emu_h_cpuid, emu_h_rdtsc, emu_h_rdtscp, emu_h_rdpid, emu_h_swapgs, emu_h_invlpg,
		emu_h_clts, emu_h_smsw_r, emu_h_lmsw, emu_h_verr, emu_h_verw, emu_h_unimpl,
	};
	for (size_t k = 0; k < sizeof sys / sizeof sys[0]; k++)
		if (fn == sys[k])
			return true;
	return false;
}

/*
 * Fills i (fn and operands) for one decoded instruction. Returns 0, EMU_SEL_END, or EMU_SEL_BAD when
 * the operands are of a form the engine does not handle (the caller then makes it "unimplemented").
 * i->flg gets EMU_I_FIRST when the instruction must begin its block.
 */
int emu_select(struct emu_vcpu *c, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
	       struct emu_insn *i)
{
	int sel = select_one(c, zi, zo, i);
	if (sel == EMU_SEL_BAD)
		sel = emu_fpu_select(c, zi, zo, i); /* x87, MMX, SSE..SSE4.2, XSAVE: fpu.c */
	if (sel != EMU_SEL_BAD && outside_handler(i->fn))
		i->flg |= EMU_I_FIRST;
	if (sel != EMU_SEL_BAD && !(i->flg & (EMU_I_RIPREL | EMU_I_ADDR32 | EMU_I_ADDR16)))
		i->fn = flat_of(c, i);
	return sel;
}
