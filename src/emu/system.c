/* SPDX-License-Identifier: MIT */
/*
 * System architecture of the emu engine: exceptions and their delivery through the IDT (SDM Vol. 3
 * ch. 6), double and triple faults, far transfers and segment loads (Vol. 3 ch. 3, 5), control,
 * debug and model-specific registers, CPUID, SYSCALL/SYSRET.
 *
 * Real-address mode (SDM Vol. 3 ch. 20): segment loads set base = selector << 4 and keep the hidden
 * limit and attributes; far transfers, IRET and interrupts (through the IVT) as the SDM's real-mode
 * pseudocode; CR0.PE switches both ways; INIT and SIPI states (emu_init_state, emu_enter_real_mode_sipi).
 * 16-bit interrupt and trap gates push 16-bit frames; a 16-bit TSS is not supported (no task switches
 * at all), nor is virtual-8086 mode (EFLAGS.VM = 1 is an internal error).
 *
 * Segment limits (outside 64-bit mode): data and stack accesses through emu_seg_lin() (emu.h;
 * c->seg_check from seg_checks() here), code fetch in decode.c, far-transfer targets here.
 * Simplifications (documented, all invisible to the guests we run): segment types are not checked
 * on access (a write through a read-only or code segment); no task switches, call gates; returning to an outer privilege level does not null
 * DS/ES/FS/GS; I/O permission is CPL <= IOPL without the TSS bitmap. Descriptor accessed bits and the TSS busy bit
 * are locked byte updates (SDM Vol. 3 9.1.2.1), bus locks when the table is uncacheable.
 */
#include <stdio.h>
#include <x86intrin.h>

#include "emu/emu.h"
#include "emu/irq.h"

#define ARGS struct emu_vcpu *c, const struct emu_insn *i
#define TRY(x)                            \
	do {                              \
		int st_ = (x);            \
		if (unlikely(st_))        \
			return st_;       \
	} while (0)

/* ---------------------------------------------------------------- raising */

static int has_error_code(int vec)
{
	return vec == EMU_V_DF || (vec >= EMU_V_TS && vec <= EMU_V_PF) || vec == 17 || vec == 21;
}

int emu_raise_err(struct emu_vcpu *c, int vec, uint32_t err)
{
	c->exc_vec = vec;
	c->exc_err = err;
	c->exc_has_err = has_error_code(vec);
	c->exc_soft = false;
	return EMU_ST_FAULT;
}

int emu_raise(struct emu_vcpu *c, int vec)
{
	return emu_raise_err(c, vec, 0);
}

int emu_raise_pf(struct emu_vcpu *c, uint64_t lin, uint32_t err)
{
	c->exc_cr2 = lin;
	return emu_raise_err(c, EMU_V_PF, err);
}

int emu_internal_error(struct emu_vcpu *c, const char *what)
{
	fprintf(stderr, "blvm: emu: internal error at rip 0x%llx: %s\n", (unsigned long long)c->rip, what);
	struct kvm_run *run = c->run;
	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->internal.ndata = 1;
	run->internal.data[0] = c->rip;
	c->exit_pending = true;
	return EMU_ST_EXIT;
}

int emu_unimplemented(struct emu_vcpu *c, const struct emu_insn *i)
{
	unsigned m = i->mnem;
	if (!(c->unimpl_seen[m / 64] & (1ull << (m % 64)))) {
		c->unimpl_seen[m / 64] |= 1ull << (m % 64);
		const char *s = ZydisMnemonicGetString((ZydisMnemonic)m);
		fprintf(stderr, "blvm: emu: unimplemented instruction %s at rip 0x%llx\n", s ? s : "?",
			(unsigned long long)c->rip);
	}
	return emu_raise(c, EMU_V_UD);
}

/* ---------------------------------------------------------------- mode */

/* An expand-down data segment (SDM Vol. 3 3.4.5.1: type bit 2 of a data segment, E). */
static bool expand_down(const struct kvm_segment *s)
{
	return s->s && !(s->type & 8) && (s->type & 4);
}

/* Which segments need their limit checked (c->seg_check, emu_seg_lin): none in 64-bit mode (SDM
 * Vol. 3 5.3.1); outside it every one but the flat ones (expand-up with a limit of 4 GiB - 1, the
 * common 32-bit case, where no access can exceed the limit). The decoder cuts blocks at CS's limit
 * (decode.c): when CS becomes or stops being checked, or a checked CS changes base or limit (a far
 * transfer, a mode change), the jump cache, which is keyed by linear address only, goes (c->xep),
 * so that every block is checked against the new CS in emu_block_get() before it runs or is
 * chained to. */
static void seg_checks(struct emu_vcpu *c)
{
	uint8_t m = 0;
	if (!c->mode64)
		for (int s = 0; s < EMU_NSEG; s++) {
			const struct kvm_segment *g = &c->seg[s];
			if (g->limit != 0xffffffffu || expand_down(g) || (g->unusable && (c->cr0 & CR0_PE)))
				m |= (uint8_t)(1u << s);
		}
	c->seg_check = m;
	bool cs = m & (1u << EMU_CS);
	if (cs != c->cs_seen || (cs && (c->seg[EMU_CS].base != c->cs_seen_base ||
					c->seg[EMU_CS].limit != c->cs_seen_limit))) {
		c->cs_seen = cs;
		c->cs_seen_base = c->seg[EMU_CS].base;
		c->cs_seen_limit = c->seg[EMU_CS].limit;
		emu_xep_bump(c);
	}
}

/* Whether the size bytes at offset off lie within segment g's limit (SDM Vol. 3 5.3: expand-up
 * [0, limit], expand-down (limit, 0xFFFF or 0xFFFFFFFF as D/B says]). */
static bool seg_fits(const struct kvm_segment *g, uint64_t off, unsigned size)
{
	uint64_t last = off + (size ? size : 1) - 1;
	if (expand_down(g))
		return off > g->limit && last <= (g->db ? 0xffffffffull : 0xffffull);
	return last <= g->limit;
}

uint64_t emu_seg_lin_checked(const struct emu_vcpu *c, unsigned seg, uint64_t off, unsigned size)
{
	const struct kvm_segment *g = &c->seg[seg];
	/* a null selector: #GP(0) on any access (SDM Vol. 3 3.4.2) */
	bool ok = !(g->unusable && (c->cr0 & CR0_PE)) && seg_fits(g, off, size);
	if (likely(ok))
		return (c->sbase[seg] + off) & c->lin_mask;
	return seg == EMU_SS ? EMU_LIN_LIMIT_SS : EMU_LIN_LIMIT_GP;
}

/* Decode mode, CPL, effective bases and address widths from CR0, EFER, EFLAGS.VM and the segment
 * registers. Real mode (CR0.PE = 0) is CPL 0 (SDM Vol. 3 20.1); its code size is CS.D as it is in
 * the descriptor cache (0 after RESET, INIT/SIPI and in any well-formed return to real mode, SDM
 * Vol. 3 10.9.2: a real-mode far jump keeps CS's hidden attributes). */
void emu_update_mode(struct emu_vcpu *c)
{
	uint8_t old_cpl = c->cpl;
	c->mode64 = (c->efer & EFER_LMA) && c->seg[EMU_CS].l;
	c->mode = (c->rflags & EMU_VM) ? EMU_MODE_V86 : c->mode64 ? EMU_MODE_64 :
		  !c->seg[EMU_CS].db ? EMU_MODE_16 : (c->efer & EFER_LMA) ? EMU_MODE_C32 : EMU_MODE_L32;
	c->lin_mask = c->mode64 ? ~0ull : 0xffffffffull;
	c->sp_mask = c->mode64 ? ~0ull : c->seg[EMU_SS].db ? 0xffffffffull : 0xffffull;
	for (int s = 0; s < EMU_NSEG; s++) {
		uint64_t b = c->seg[s].base;
		if (c->mode64)
			c->sbase[s] = s >= EMU_FS ? b : 0;
		else
			c->sbase[s] = (uint32_t)b;
	}
	c->cpl = (c->cr0 & CR0_PE) ? c->seg[EMU_SS].dpl : 0;
	/* TLB entries carry the permissions of the CPL they were filled at; the jump cache's validity
	 * is per user/supervisor mode through bit 0 of the exec epoch (struct emu_jc) */
	if (c->cpl != old_cpl)
		emu_tlb_flush_perms(c);
	c->xep = (c->xep & ~1u) | (c->cpl == 3);
	emu_ac_written(c); /* the callers that load EFLAGS (IRET, SYSCALL, SYSRET, ...) come here */
	seg_checks(c);
}

/* ---------------------------------------------------------------- descriptors */

static void desc_to_seg(const uint8_t d[8], uint16_t sel, struct kvm_segment *s)
{
	memset(s, 0, sizeof *s);
	s->selector = sel;
	s->base = d[2] | (d[3] << 8) | ((uint32_t)d[4] << 16) | ((uint32_t)d[7] << 24);
	uint32_t limit = d[0] | (d[1] << 8) | ((uint32_t)(d[6] & 0xf) << 16);
	s->g = (d[6] >> 7) & 1;
	s->limit = s->g ? (limit << 12) | 0xfff : limit;
	s->type = d[5] & 0xf;
	s->s = (d[5] >> 4) & 1;
	s->dpl = (d[5] >> 5) & 3;
	s->present = (d[5] >> 7) & 1;
	s->avl = (d[6] >> 4) & 1;
	s->l = (d[6] >> 5) & 1;
	s->db = (d[6] >> 6) & 1;
}

/* Reads the 8-byte descriptor of sel (GDT or LDT); *addr = its linear address. */
static int read_desc(struct emu_vcpu *c, uint16_t sel, uint8_t d[8], uint64_t *addr)
{
	uint64_t base = (sel & 4) ? c->ldt.base : c->gdt.base;
	uint32_t limit = (sel & 4) ? c->ldt.limit : c->gdt.limit;
	uint32_t off = sel & ~7u;
	if (off + 7 > limit)
		return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
	*addr = base + off;
	return emu_read_bytes(c, *addr, d, 8, EMU_ACC_SYS);
}

static int set_accessed(struct emu_vcpu *c, uint8_t d[8], uint64_t addr)
{
	if (d[5] & 1)
		return 0;
	TRY(emu_cpu_locked_or8(c, addr + 5, 1, (uint8_t)(d[5] | 1)));
	d[5] |= 1;
	return 0;
}

/* Loads a data segment register (or SS) checking against privilege level cpl (SDM "MOV", "POP"). */
static int load_data_seg(struct emu_vcpu *c, int s, uint16_t sel, unsigned cpl)
{
	struct kvm_segment n;
	if ((sel & ~3) == 0) {
		if (s == EMU_SS && !((c->efer & EFER_LMA) && cpl < 3 && (sel & 3) == cpl))
			return emu_raise_err(c, EMU_V_GP, 0);
		memset(&n, 0, sizeof n);
		n.selector = sel;
		if (s == EMU_SS) { /* 64-bit mode null SS: keeps the CPL in its DPL */
			n.type = 3;
			n.s = 1;
			n.present = 1;
			n.db = 1;
			n.dpl = (uint8_t)cpl;
		} else {
			n.unusable = 1;
		}
		c->seg[s] = n;
		return 0;
	}
	uint8_t d[8];
	uint64_t addr;
	TRY(read_desc(c, sel, d, &addr));
	desc_to_seg(d, sel, &n);
	if (!n.s)
		return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
	if (s == EMU_SS) {
		if ((n.type & 0xa) != 2 || (sel & 3) != cpl || n.dpl != cpl)
			return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
		if (!n.present)
			return emu_raise_err(c, EMU_V_SS, sel & 0xfffc);
	} else {
		if ((n.type & 0xa) == 0x8) /* execute-only code */
			return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
		if (!n.present)
			return emu_raise_err(c, EMU_V_NP, sel & 0xfffc);
	}
	TRY(set_accessed(c, d, addr));
	n.type |= 1;
	c->seg[s] = n;
	return 0;
}

/* A segment load in real mode (SDM Vol. 3 20.1.1, 20.1.2): selector and base = selector << 4; the
 * limit and the attributes keep what the descriptor cache holds, as the hardware does (a limit of
 * 4 GiB loaded in protected mode stays: "unreal mode"). */
static void real_seg(struct emu_vcpu *c, int s, uint16_t sel)
{
	c->seg[s].selector = sel;
	c->seg[s].base = (uint32_t)sel << 4;
}

static bool real_mode(const struct emu_vcpu *c)
{
	return !(c->cr0 & CR0_PE);
}

int emu_load_seg(struct emu_vcpu *c, int s, uint16_t sel)
{
	if (s == EMU_CS)
		return emu_raise(c, EMU_V_UD);
	if (real_mode(c)) {
		real_seg(c, s, sel);
		emu_update_mode(c);
		return 0;
	}
	TRY(load_data_seg(c, s, sel, c->cpl));
	emu_update_mode(c);
	return 0;
}

/* Reads and checks a code segment for a far transfer to privilege new_cpl; fills *cs. */
static int read_code_seg(struct emu_vcpu *c, uint16_t sel, struct kvm_segment *cs, unsigned *new_cpl,
			 bool ret)
{
	if ((sel & ~3) == 0)
		return emu_raise_err(c, EMU_V_GP, 0);
	uint8_t d[8];
	uint64_t addr;
	TRY(read_desc(c, sel, d, &addr));
	desc_to_seg(d, sel, cs);
	if (!cs->s || !(cs->type & 8))
		return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
	unsigned rpl = sel & 3;
	bool conforming = cs->type & 4;
	if (ret) {
		if (rpl < c->cpl || (conforming ? cs->dpl > rpl : cs->dpl != rpl))
			return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
		*new_cpl = rpl;
	} else {
		if (conforming ? cs->dpl > c->cpl : (cs->dpl != c->cpl || rpl > c->cpl))
			return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
		*new_cpl = c->cpl;
	}
	if (!cs->present)
		return emu_raise_err(c, EMU_V_NP, sel & 0xfffc);
	if ((c->efer & EFER_LMA) && cs->l && cs->db)
		return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
	TRY(set_accessed(c, d, addr));
	cs->type |= 1;
	cs->selector = (uint16_t)((sel & ~3) | *new_cpl);
	return 0;
}

static uint64_t rip_for(const struct emu_vcpu *c, const struct kvm_segment *cs, uint64_t off)
{
	return ((c->efer & EFER_LMA) && cs->l) ? off : (uint32_t)off;
}

/* A protected-mode far transfer's target offset beyond the new CS's limit (not to 64-bit code):
 * #GP(0) at the transfer, nothing changed (SDM "JMP", "CALL", "RET", "IRET": "IF instruction
 * pointer not within code segment limit THEN #GP(0)") */
static bool beyond_limit(const struct emu_vcpu *c, const struct kvm_segment *cs, uint64_t off)
{
	return !((c->efer & EFER_LMA) && cs->l) && (uint32_t)off > cs->limit;
}

/* A far transfer to sel:off in real mode: no descriptor, the offset checked against the CS limit the
 * cache keeps (SDM "JMP", "CALL", "RET", "IRET": real-address mode, #GP(0) beyond the limit). */
static int real_far_target(struct emu_vcpu *c, uint16_t sel, uint64_t off)
{
	if (off > c->seg[EMU_CS].limit)
		return emu_raise_err(c, EMU_V_GP, 0);
	real_seg(c, EMU_CS, sel);
	c->rip = off;
	emu_update_mode(c);
	return EMU_ST_END;
}

int emu_far_jump(struct emu_vcpu *c, uint16_t sel, uint64_t off)
{
	struct kvm_segment cs;
	unsigned cpl;
	if (real_mode(c))
		return real_far_target(c, sel, off);
	TRY(read_code_seg(c, sel, &cs, &cpl, false));
	if (((c->efer & EFER_LMA) && cs.l && !emu_canonical(c, off)) || beyond_limit(c, &cs, off))
		return emu_raise_err(c, EMU_V_GP, 0);
	c->seg[EMU_CS] = cs;
	c->rip = rip_for(c, &cs, off);
	emu_update_mode(c);
	return EMU_ST_END;
}

int emu_h_ljmp_ptr(ARGS)
{
	return emu_far_jump(c, (uint16_t)i->disp, i->imm);
}

/* m16:16 / m16:32 / m16:64: offset first, then the selector */
static int read_farptr(struct emu_vcpu *c, const struct emu_insn *i, uint16_t *sel, uint64_t *off)
{
	uint64_t lin = emu_lin(c, i), s;
	TRY(emu_rd(c, lin, i->osz, off));
	TRY(emu_rd2(c, (lin + i->osz) & c->lin_mask, &s));
	*sel = (uint16_t)s;
	return 0;
}

int emu_h_ljmp_m(ARGS)
{
	uint16_t sel;
	uint64_t off;
	TRY(read_farptr(c, i, &sel, &off));
	return emu_far_jump(c, sel, off);
}

static int far_call(struct emu_vcpu *c, const struct emu_insn *i, uint16_t sel, uint64_t off)
{
	struct kvm_segment cs;
	unsigned cpl;
	uint64_t sp = c->r[EMU_RSP];
	if (!real_mode(c)) {
		TRY(read_code_seg(c, sel, &cs, &cpl, false));
		if (beyond_limit(c, &cs, off))
			return emu_raise_err(c, EMU_V_GP, 0);
	} else if (off > c->seg[EMU_CS].limit) {
		return emu_raise_err(c, EMU_V_GP, 0);
	}
	int st = emu_push(c, i->osz, c->seg[EMU_CS].selector);
	if (!st)
		st = emu_push(c, i->osz, c->rip + i->len);
	if (st) {
		c->r[EMU_RSP] = sp;
		return st;
	}
	if (real_mode(c))
		return real_far_target(c, sel, off);
	c->seg[EMU_CS] = cs;
	c->rip = rip_for(c, &cs, off);
	emu_update_mode(c);
	return EMU_ST_END;
}

int emu_h_lcall_ptr(ARGS)
{
	return far_call(c, i, (uint16_t)i->disp, i->imm);
}

int emu_h_lcall_m(ARGS)
{
	uint16_t sel;
	uint64_t off;
	TRY(read_farptr(c, i, &sel, &off));
	return far_call(c, i, sel, off);
}

/* Far RET (SDM "RET", protected-mode and IA-32e far returns). */
int emu_h_lret(ARGS)
{
	unsigned n = i->osz;
	uint64_t sp0 = c->r[EMU_RSP], off, sel, nsp = 0, nss = 0;
	int st = emu_pop(c, n, &off);
	if (!st)
		st = emu_pop(c, n, &sel);
	struct kvm_segment cs;
	unsigned cpl = 0;
	if (!st && real_mode(c)) {
		c->r[EMU_RSP] = (c->r[EMU_RSP] & ~c->sp_mask) | ((c->r[EMU_RSP] + i->imm) & c->sp_mask);
		st = real_far_target(c, (uint16_t)sel, off);
		if (st < 0)
			c->r[EMU_RSP] = sp0;
		return st;
	}
	if (!st)
		st = read_code_seg(c, (uint16_t)sel, &cs, &cpl, true);
	if (!st && beyond_limit(c, &cs, off))
		st = emu_raise_err(c, EMU_V_GP, 0);
	if (!st && cpl > c->cpl) {
		c->r[EMU_RSP] += i->imm;
		st = emu_pop(c, n, &nsp);
		if (!st)
			st = emu_pop(c, n, &nss);
	}
	if (st) {
		c->r[EMU_RSP] = sp0;
		return st;
	}
	if (cpl > c->cpl) {
		struct kvm_segment ss_save = c->seg[EMU_SS];
		st = load_data_seg(c, EMU_SS, (uint16_t)nss, cpl);
		if (st) {
			c->seg[EMU_SS] = ss_save;
			c->r[EMU_RSP] = sp0;
			return st;
		}
		c->r[EMU_RSP] = nsp;
	}
	c->r[EMU_RSP] += i->imm;
	c->seg[EMU_CS] = cs;
	c->rip = rip_for(c, &cs, off);
	emu_update_mode(c);
	return EMU_ST_END;
}

/* MOV SS / POP SS: interrupts (and NMIs) wait until after the next instruction (SDM Vol. 3 6.8.3),
 * and so do debug exceptions: with TF, no single-step trap follows the MOV SS itself; the next one
 * comes after the instruction after it (SDM Vol. 3 6.8.3, kvm-unit-tests x86/debug.c "MOVSS
 * blocking"; the run loop reads c->db_shadow, engine.c) */
static void ss_shadow(struct emu_vcpu *c, const struct emu_insn *i)
{
	if (i->op == EMU_SS) {
		c->intr_shadow = true;
		c->db_shadow = !!(c->rflags & EMU_TF);
		c->stop = EMU_ST_END;
	}
}

int emu_h_mov_sreg_r(ARGS)
{
	TRY(emu_load_seg(c, i->op, (uint16_t)c->r[i->r]));
	ss_shadow(c, i);
	return emu_next(c, i);
}

int emu_h_mov_sreg_m(ARGS)
{
	uint64_t v;
	TRY(emu_rd2(c, emu_lin(c, i), &v));
	TRY(emu_load_seg(c, i->op, (uint16_t)v));
	ss_shadow(c, i);
	return emu_next(c, i);
}

int emu_h_pop_sreg(ARGS)
{
	uint64_t v, sp = c->r[EMU_RSP];
	TRY(emu_pop(c, i->osz, &v));
	int st = emu_load_seg(c, i->op, (uint16_t)v);
	if (st) {
		c->r[EMU_RSP] = sp;
		return st;
	}
	ss_shadow(c, i);
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- descriptor tables */

static int cpl0(struct emu_vcpu *c)
{
	return c->cpl ? emu_raise_err(c, EMU_V_GP, 0) : 0;
}

static int load_dtable(struct emu_vcpu *c, const struct emu_insn *i, struct emu_dtable *t)
{
	TRY(cpl0(c));
	uint8_t b[10] = { 0 };
	unsigned n = c->mode64 ? 10 : 6;
	TRY(emu_read_bytes(c, emu_lin(c, i), b, n, EMU_ACC_R));
	uint64_t base = 0;
	memcpy(&base, b + 2, n - 2);
	if (i->osz == 2)
		base &= 0xffffff; /* 16-bit operand size: a 24-bit base (SDM "LGDT/LIDT") */
	if (c->mode64 && !emu_canonical_base(base))
		return emu_raise_err(c, EMU_V_GP, 0); /* APM Vol. 3 "LGDT"/"LIDT": "The new GDT [IDT] base
							 address was non-canonical"; KVM's emulator too */
	t->limit = (uint16_t)(b[0] | (b[1] << 8));
	t->base = base;
	return emu_next(c, i);
}

/* UMIP (SDM Vol. 3 2.5 CR4.UMIP; Vol. 2 "SGDT", "SIDT", "SLDT", "SMSW", "STR": #GP(0) "If CR4.UMIP =
 * 1 and CPL > 0"): those five instructions are denied to user-mode code. Checked first, before the
 * operand is written (the instructions' "Protected Mode Exceptions"). */
static int umip_denied(struct emu_vcpu *c)
{
	return (c->cr4 & CR4_UMIP) && c->cpl ? emu_raise_err(c, EMU_V_GP, 0) : 0;
}

static int store_dtable(struct emu_vcpu *c, const struct emu_insn *i, const struct emu_dtable *t)
{
	TRY(umip_denied(c));
	uint8_t b[10];
	unsigned n = c->mode64 ? 10 : 6;
	b[0] = (uint8_t)t->limit;
	b[1] = (uint8_t)(t->limit >> 8);
	memcpy(b + 2, &t->base, 8);
	TRY(emu_write_bytes(c, emu_lin(c, i), b, n, EMU_ACC_W));
	return emu_next(c, i);
}

int emu_h_lgdt(ARGS) { return load_dtable(c, i, &c->gdt); }
int emu_h_lidt(ARGS) { return load_dtable(c, i, &c->idt); }
int emu_h_sgdt(ARGS) { return store_dtable(c, i, &c->gdt); }
int emu_h_sidt(ARGS) { return store_dtable(c, i, &c->idt); }

static int sel_operand(struct emu_vcpu *c, const struct emu_insn *i, uint16_t *sel)
{
	uint64_t v;
	if (i->op)
		TRY(emu_rd2(c, emu_lin(c, i), &v));
	else
		v = c->r[i->r];
	*sel = (uint16_t)v;
	return 0;
}

/* System descriptor (TSS, LDT): 16 bytes in IA-32e mode (SDM Vol. 3 7.2.3). */
static int load_sys_seg(struct emu_vcpu *c, uint16_t sel, struct kvm_segment *s, int want_type)
{
	if (sel & 4)
		return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
	uint8_t d[16] = { 0 };
	uint64_t addr;
	TRY(read_desc(c, sel, d, &addr));
	if (c->efer & EFER_LMA)
		TRY(emu_read_bytes(c, addr + 8, d + 8, 8, EMU_ACC_SYS));
	desc_to_seg(d, sel, s);
	if (c->efer & EFER_LMA)
		s->base |= (uint64_t)(d[8] | (d[9] << 8) | (d[10] << 16) | ((uint32_t)d[11] << 24)) << 32;
	if (s->s || (want_type == 9 ? (s->type & 0xd) != 9 : s->type != 2))
		return emu_raise_err(c, EMU_V_GP, sel & 0xfffc);
	if (!s->present)
		return emu_raise_err(c, EMU_V_NP, sel & 0xfffc);
	if ((c->efer & EFER_LMA) && !emu_canonical_base(s->base))
		return emu_raise_err(c, EMU_V_GP, sel & 0xfffc); /* APM Vol. 3 "LLDT"/"LTR": "The new LDT
								  [TSS] base address was non-canonical" */
	if (want_type == 9) { /* mark busy */
		TRY(emu_cpu_locked_or8(c, addr + 5, 2, (uint8_t)(d[5] | 2)));
		d[5] |= 2;
		s->type |= 2;
	}
	return 0;
}

int emu_h_ltr(ARGS)
{
	uint16_t sel;
	TRY(cpl0(c));
	TRY(sel_operand(c, i, &sel));
	if ((sel & ~3) == 0)
		return emu_raise_err(c, EMU_V_GP, 0);
	struct kvm_segment s;
	TRY(load_sys_seg(c, sel, &s, 9));
	c->tr = s;
	return emu_next(c, i);
}

int emu_h_lldt(ARGS)
{
	uint16_t sel;
	TRY(cpl0(c));
	TRY(sel_operand(c, i, &sel));
	if ((sel & ~3) == 0) {
		memset(&c->ldt, 0, sizeof c->ldt);
		c->ldt.selector = sel;
		c->ldt.unusable = 1;
		return emu_next(c, i);
	}
	struct kvm_segment s;
	TRY(load_sys_seg(c, sel, &s, 2));
	c->ldt = s;
	return emu_next(c, i);
}

static int store_sel(struct emu_vcpu *c, const struct emu_insn *i, uint16_t v)
{
	if (i->op)
		TRY(emu_wr2(c, emu_lin(c, i), v));
	else
		emu_wrreg(c, i->osz, i->r, v);
	return emu_next(c, i);
}

int emu_h_str(ARGS)
{
	TRY(umip_denied(c));
	return store_sel(c, i, c->tr.selector);
}

/*
 * The descriptor a LAR, LSL, VERR or VERW selector names (SDM Vol. 2 "LAR" operation: "IF
 * Offset(SRC) > descriptor table limit THEN ZF := 0"; the description: the selector is not null).
 * *found = false, and no fault, for a null selector, one beyond its table's limit or in an unusable
 * LDT; faults come only from reading the descriptor (#PF, #GP on a non-canonical table).
 */
static int probe_desc(struct emu_vcpu *c, uint16_t sel, uint8_t d[8], bool *found)
{
	uint32_t limit = (sel & 4) ? (c->ldt.unusable ? 0 : c->ldt.limit) : c->gdt.limit;
	*found = (sel & ~3) != 0 && (sel | 7u) <= limit && !((sel & 4) && c->ldt.unusable);
	if (!*found)
		return 0;
	uint64_t addr;
	return read_desc(c, sel, d, &addr);
}

/* The privilege check of LAR, LSL, VERR and VERW: a conforming code segment is visible at every
 * CPL, any other descriptor when CPL <= DPL and RPL <= DPL. */
static bool desc_visible(const struct emu_vcpu *c, uint16_t sel, const uint8_t d[8])
{
	unsigned dpl = (d[5] >> 5) & 3;
	bool conforming = (d[5] & 0x10) && (d[5] & 0xc) == 0xc;
	return conforming || (dpl >= c->cpl && dpl >= (sel & 3u));
}

/* "This instruction is not recognized in real-address mode" (#UD): VERR, VERW, LAR, LSL. */
static int not_in_real_mode(struct emu_vcpu *c)
{
	return (c->cr0 & CR0_PE) ? 0 : emu_raise(c, EMU_V_UD);
}

/*
 * VERR / VERW (SDM Vol. 2B "VERR/VERW"): ZF = 1 when the segment sel names is readable (VERR) or
 * writable (VERW) at the current privilege level, else ZF = 0; no other flag changes. A system
 * descriptor or a failed privilege check is ZF = 0, not a fault. Linux's MDS mitigation executes
 * VERW on every return to user mode (mds_clear_cpu_buffers).
 */
static int verify_seg(struct emu_vcpu *c, const struct emu_insn *i, bool write)
{
	uint16_t sel;
	TRY(not_in_real_mode(c));
	TRY(sel_operand(c, i, &sel));
	uint8_t d[8];
	bool found, ok = false;
	TRY(probe_desc(c, sel, d, &found));
	if (found && (d[5] & 0x10) && desc_visible(c, sel, d)) {
		unsigned type = d[5] & 0xf;
		bool code = type & 8;
		ok = write ? (!code && (type & 2)) : (!code || (type & 2));
	}
	uint64_t *f = emu_rflagsp(c);
	*f = ok ? (*f | EMU_ZF) : (*f & ~EMU_ZF);
	return emu_next(c, i);
}

int emu_h_verr(ARGS) { return verify_seg(c, i, false); }
int emu_h_verw(ARGS) { return verify_seg(c, i, true); }

/*
 * LAR / LSL (SDM Vol. 2A "LAR", "LSL"): for a visible descriptor of a type valid for the
 * instruction, ZF = 1 and the destination gets the access rights (LAR: the descriptor's second
 * doubleword AND FF00H with a 16-bit operand, AND 00FxFF00H with 32 and 64 bits, zero-extended) or
 * the limit in bytes (LSL: scaled by G, truncated to the operand size); otherwise ZF = 0 and the
 * destination is unchanged. No other flag changes. Valid system types (Tables 3-52 and 3-63):
 * protected mode LAR 1 2 3 4 5 9 B C, LSL 1 2 3 9 B; IA-32e mode (EFER.LMA) LAR 9 B C, LSL 2 9 B.
 * Code and data segments are valid for both.
 */
static int load_desc_field(struct emu_vcpu *c, const struct emu_insn *i, bool lsl)
{
	static const uint16_t valid[2][2] = {
		/* [IA-32e][lsl] */
		{ 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 5 | 1u << 9 | 1u << 0xb | 1u << 0xc,
		  1u << 1 | 1u << 2 | 1u << 3 | 1u << 9 | 1u << 0xb },
		{ 1u << 9 | 1u << 0xb | 1u << 0xc, 1u << 2 | 1u << 9 | 1u << 0xb },
	};
	uint64_t v;
	TRY(not_in_real_mode(c));
	if (i->op)
		TRY(emu_rd2(c, emu_lin(c, i), &v));
	else
		v = c->r[i->b];
	uint16_t sel = (uint16_t)v;
	uint8_t d[8];
	bool found, ok = false;
	TRY(probe_desc(c, sel, d, &found));
	if (found && desc_visible(c, sel, d))
		ok = (d[5] & 0x10) || (valid[!!(c->efer & EFER_LMA)][lsl] >> (d[5] & 0xf) & 1);
	if (ok) {
		uint32_t hi = d[4] | d[5] << 8 | d[6] << 16 | (uint32_t)d[7] << 24;
		if (lsl) {
			v = d[0] | d[1] << 8 | (d[6] & 0xfu) << 16;
			if (d[6] & 0x80) /* G: 4-KByte units */
				v = v << 12 | 0xfff;
		} else {
			v = hi & (i->osz == 2 ? 0xff00u : 0x00f0ff00u);
		}
		emu_wrreg(c, i->osz, i->r, v);
	}
	uint64_t *f = emu_rflagsp(c);
	*f = ok ? (*f | EMU_ZF) : (*f & ~EMU_ZF);
	return emu_next(c, i);
}

int emu_h_lar(ARGS) { return load_desc_field(c, i, false); }
int emu_h_lsl(ARGS) { return load_desc_field(c, i, true); }
int emu_h_sldt(ARGS)
{
	TRY(umip_denied(c));
	return store_sel(c, i, c->ldt.selector);
}
/* SMSW: a memory destination takes CR0[15:0]; a register one CR0 at the operand size (the SDM
 * leaves r32's bits 31:16 undefined; processors and QEMU store CR0's, which the KVM test suite's
 * realmode test expects). */
int emu_h_smsw_r(ARGS)
{
	TRY(umip_denied(c));
	if (!i->op) {
		emu_wrreg(c, i->osz, i->r, c->cr0);
		return emu_next(c, i);
	}
	return store_sel(c, i, (uint16_t)c->cr0);
}

int emu_h_lmsw(ARGS)
{
	uint16_t v;
	TRY(cpl0(c));
	TRY(sel_operand(c, i, &v));
	/* LMSW loads PE MP EM TS and cannot clear PE (SDM "LMSW") */
	uint64_t cr0 = (c->cr0 & ~0xeull) | (v & 0xf) | (c->cr0 & CR0_PE);
	TRY(emu_write_cr(c, 0, cr0));
	return emu_next(c, i);
}

int emu_h_clts(ARGS)
{
	TRY(cpl0(c));
	c->cr0 &= ~CR0_TS;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- control and debug registers */

int emu_write_cr(struct emu_vcpu *c, int cr, uint64_t v)
{
	switch (cr) {
	case 0: {
		if (v >> 32)
			return emu_raise_err(c, EMU_V_GP, 0);
		v |= CR0_ET;
		if ((v & CR0_PG) && !(v & CR0_PE))
			return emu_raise_err(c, EMU_V_GP, 0);
		if ((v & CR0_NW) && !(v & CR0_CD))
			return emu_raise_err(c, EMU_V_GP, 0);
		uint64_t efer = c->efer;
		/* IA-32e mode activation (SDM Vol. 3 9.8.5): PG set with LME and PAE -> LMA */
		if ((v & CR0_PG) && !(c->cr0 & CR0_PG) && (efer & EFER_LME)) {
			if (!(c->cr4 & CR4_PAE))
				return emu_raise_err(c, EMU_V_GP, 0);
			efer |= EFER_LMA;
		}
		if (!(v & CR0_PG) && (c->cr0 & CR0_PG) && (efer & EFER_LMA)) {
			if (c->mode64)
				return emu_raise_err(c, EMU_V_GP, 0);
			efer &= ~EFER_LMA;
		}
		/* SDM Vol. 3 4.4.1: the PDPTEs are loaded when PAE paging would be in use after a
		 * MOV to CR0 that modifies CD, NW or PG; #GP(0) for a reserved bit (Intel model) */
		if (!c->vm->cfg.cpu_vendor_amd && emu_pae_paging(v, c->cr4, efer) &&
		    ((v ^ c->cr0) & (CR0_CD | CR0_NW | CR0_PG)) && emu_load_pdptes(c, c->cr3, true))
			return emu_raise_err(c, EMU_V_GP, 0);
		c->cr0 = v;
		c->efer = efer;
		emu_tlb_flush(c);
		emu_update_mode(c);
		c->stop = EMU_ST_END;
		return 0;
	}
	case 2:
		c->cr2 = v;
		return 0;
	case 3:
		if (c->mode64 ? (v >> EMU_PHYS_BITS) != 0 : (v >> 32) != 0)
			return emu_raise_err(c, EMU_V_GP, 0);
		/* with PAE paging, from the table at the new CR3 (SDM Vol. 3 4.4.1) */
		if (!c->vm->cfg.cpu_vendor_amd && emu_pae_paging(c->cr0, c->cr4, c->efer) &&
		    emu_load_pdptes(c, v, true))
			return emu_raise_err(c, EMU_V_GP, 0);
		c->cr3 = v;
		emu_tlb_flush(c);
		c->stop = EMU_ST_END;
		return 0;
	case 4: {
		/* A bit the model does not advertise is reserved: #GP (SDM Vol. 3 2.5; SMEP and SMAP
		 * with CPUID.(EAX=07H,ECX=0H):EBX[7] and [20], UMIP, PKE and PKS with ECX[2], [3] and
		 * [31], emu_cpuid) */
		uint64_t ok = CR4_PSE | CR4_PAE | CR4_PGE | CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT |
			      CR4_DE | CR4_TSD | (1ull << 0) | (1ull << 1) | (1ull << 6) | CR4_OSXSAVE |
			      CR4_SMEP | CR4_SMAP | CR4_UMIP | CR4_PKE | CR4_LA57;
		if (!c->vm->cfg.cpu_vendor_amd)
			ok |= CR4_PKS;
		if (v & ~ok)
			return emu_raise_err(c, EMU_V_GP, 0);
		if ((c->efer & EFER_LMA) && !(v & CR4_PAE))
			return emu_raise_err(c, EMU_V_GP, 0);
		/* SDM Vol. 2 "MOV (Control Registers)": #GP(0) "If an attempt is made to change
		 * CR4.LA57" in 64-bit mode; the paging mode changes only with paging off (4.1.1) */
		if ((c->efer & EFER_LMA) && ((v ^ c->cr4) & CR4_LA57))
			return emu_raise_err(c, EMU_V_GP, 0);
		/* a MOV to CR4 that modifies PAE, PGE, PSE or SMEP with PAE paging after it loads the
		 * PDPTEs (SDM Vol. 3 4.4.1) */
		if (!c->vm->cfg.cpu_vendor_amd && emu_pae_paging(c->cr0, v, c->efer) &&
		    ((v ^ c->cr4) & (CR4_PAE | CR4_PGE | CR4_PSE | CR4_SMEP)) && emu_load_pdptes(c, c->cr3, true))
			return emu_raise_err(c, EMU_V_GP, 0);
		c->cr4 = v;
		emu_tlb_flush(c);
		c->stop = EMU_ST_END;
		return 0;
	}
	case 8:
		if (v >> 4)
			return emu_raise_err(c, EMU_V_GP, 0);
		emu_irq_set_cr8(c, v);
		return 0;
	default:
		return emu_raise(c, EMU_V_UD);
	}
}

int emu_h_mov_cr_r(ARGS)
{
	TRY(cpl0(c));
	uint64_t v = c->mode64 ? c->r[i->r] : (uint32_t)c->r[i->r];
	TRY(emu_write_cr(c, i->op, v));
	return emu_next(c, i);
}

int emu_h_mov_r_cr(ARGS)
{
	TRY(cpl0(c));
	uint64_t v;
	switch (i->op) {
	case 0: v = c->cr0; break;
	case 2: v = c->cr2; break;
	case 3: v = c->cr3; break;
	case 4: v = c->cr4; break;
	case 8: v = emu_irq_get_cr8(c); break;
	default: return emu_raise(c, EMU_V_UD);
	}
	c->r[i->r] = c->mode64 ? v : (uint32_t)v;
	return emu_next(c, i);
}

/* General detect (SDM Vol. 3 17.2.4, 17.3.1.2): with DR7.GD set, a MOV to or from a debug
 * register is a #DB fault instead, DR6.BD set and DR7.GD cleared so that the handler can use them
 * (KVM clears it on delivery of the #DB). */
static int general_detect(struct emu_vcpu *c)
{
	if (!(c->dr[7] & DR7_GD))
		return 0;
	emu_dr6_db(c, DR6_BD);
	c->dr[7] &= ~DR7_GD;
	return emu_raise(c, EMU_V_DB);
}

static int dr_index(struct emu_vcpu *c, int n)
{
	if (n == 4 || n == 5) {
		if (c->cr4 & CR4_DE)
			return -1;
		return n + 2;
	}
	return n > 7 ? -1 : n;
}

int emu_h_mov_dr_r(ARGS)
{
	TRY(cpl0(c));
	int n = dr_index(c, i->op);
	if (n < 0)
		return emu_raise(c, EMU_V_UD);
	TRY(general_detect(c));
	uint64_t v = c->mode64 ? c->r[i->r] : (uint32_t)c->r[i->r];
	if (n >= 6 && (v >> 32))
		return emu_raise_err(c, EMU_V_GP, 0);
	/* DR6/DR7 fixed bits (SDM Vol. 3 17.2.3, 17.2.4), as KVM's kvm_dr6_fixed(): B0-B3, BD, BS, BT
	 * writable; BLD (bit 11) too where OS bus-lock detection exists; RTM (bit 16) fixed at 1 (no
	 * RTM) */
	if (n == 6) {
		uint64_t vol = 0xe00f | (emu_bus_lock_detect_exposed(c) ? DR6_BLD : 0);
		v = (v & vol) | (0xffff0ff0 & ~vol);
	}
	else if (n == 7)
		v = (v & ~0xd800ull) | 0x400;
	c->dr[n] = v;
	if (n == 7)
		emu_dr7_written(c);
	return emu_next(c, i);
}

int emu_h_mov_r_dr(ARGS)
{
	TRY(cpl0(c));
	int n = dr_index(c, i->op);
	if (n < 0)
		return emu_raise(c, EMU_V_UD);
	TRY(general_detect(c));
	c->r[i->r] = c->mode64 ? c->dr[n] : (uint32_t)c->dr[n];
	return emu_next(c, i);
}

int emu_h_invlpg(ARGS)
{
	TRY(cpl0(c));
	/* the linear address as formed, whatever the segment's limit: INVLPG raises no limit fault
	 * (SDM Vol. 2 "INVLPG", protected-mode exceptions) and must drop that page's entry */
	struct emu_insn at = *i;
	at.flg &= (uint16_t)~EMU_I_SEG;
	emu_tlb_flush_page(c, emu_lin(c, &at));
	c->stop = EMU_ST_END;
	return emu_next(c, i);
}

int emu_h_swapgs(ARGS)
{
	if (!c->mode64)
		return emu_raise(c, EMU_V_UD);
	TRY(cpl0(c));
	uint64_t t = c->seg[EMU_GS].base;
	c->seg[EMU_GS].base = c->kernel_gs_base;
	c->kernel_gs_base = t;
	c->sbase[EMU_GS] = c->seg[EMU_GS].base;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- MSRs, TSC */

/* The guest TSC: the VM's virtual clock (CLOCK_MONOTONIC, irqchip.c) at 1 GHz plus the vCPU's
 * offset: invariant (CPUID 0x80000007 EDX[8]), of a frequency CPUID 0x15/0x16 state exactly, and
 * the clock the LAPIC timer and the PIT run on. */
uint64_t emu_tsc(struct emu_vcpu *c)
{
	c->ple_read_tsc = true; /* a PAUSE loop that reads the TSC waits for a time (exec.c h_pause) */
	return emu_vtime_ns() + c->tsc_offset;
}

static bool pat_valid(uint64_t v)
{
	for (int k = 0; k < 8; k++) {
		unsigned t = (v >> (8 * k)) & 0xff;
		if (t != 0 && t != 1 && t != 4 && t != 5 && t != 6 && t != 7)
			return false;
	}
	return true;
}

/* Fixed-range MTRR MSRs (SDM Vol. 3 12.11.2.2): 0x250, 0x258, 0x259, 0x268-0x26f -> index 0..10 */
static int mtrr_fixed_index(uint32_t msr)
{
	if (msr == MSR_MTRR_FIX64K_00000) return 0;
	if (msr == MSR_MTRR_FIX16K_80000 || msr == MSR_MTRR_FIX16K_A0000) return 1 + (int)(msr - 0x258);
	if (msr >= MSR_MTRR_FIX4K_C0000 && msr <= MSR_MTRR_FIX4K_F8000) return 3 + (int)(msr - 0x268);
	return -1;
}

static bool mtrr_type_ok(unsigned t) { return t == 0 || t == 1 || t == 4 || t == 5 || t == 6; }

/*
 * IA32_ARCH_CAPABILITIES (SDM Vol. 4 Table 2-2; CPUID.(EAX=7,ECX=0):EDX[29]): the "not susceptible"
 * bits of the speculative-execution and stale-data issues, all true of this CPU, which executes no
 * instruction speculatively and has no fill, store or load-port buffers to sample: RDCL_NO (rogue
 * data cache load), SSB_NO, MDS_NO, PSCHANGE_MC_NO, TAA_NO, SBDR_SSDP_NO, FBSDP_NO, PSDP_NO, BHI_NO,
 * PBRSB_NO, GDS_NO, RFDS_NO, and ITS_NO (bit 62, which VMMs synthesize: Linux's msr-index.h), as
 * KVM reports them where the host is not affected (kvm_get_arch_capabilities). Without it Linux
 * took the CPU for a vulnerable Ivy Bridge: page-table isolation (a CR3 switch, here a TLB and jump
 * cache flush, at every kernel entry and exit), VERW on every return to user mode, and ITS return
 * thunks. No bit advertises a control (IBRS_ALL, TSX_CTRL, FB_CLEAR, ...): none is implemented.
 */
#define EMU_ARCH_CAPABILITIES                                                                          \
	((1ull << 0) | (1ull << 4) | (1ull << 5) | (1ull << 6) | (1ull << 8) | (1ull << 13) | (1ull << 14) | \
	 (1ull << 15) | (1ull << 20) | (1ull << 24) | (1ull << 26) | (1ull << 27) | (1ull << 62))

/* The MSRs of the platform a stock kernel reads (issue 12), with KVM's values (arch/x86/kvm/x86.c,
 * mtrr.c). The MTRRs are stored and returned; the engine's memory types come from PAT alone (the
 * MTRRs' default type is WB, as the firmware leaves it on a PC and KVM's guests effectively see). */
static int platform_rdmsr(struct emu_vcpu *c, uint32_t msr, uint64_t *v)
{
	const bool amd = c->vm->cfg.cpu_vendor_amd;
	int k = mtrr_fixed_index(msr);
	if (k >= 0) {
		*v = c->mtrr_fixed[k];
		return 0;
	}
	if (msr >= MSR_MTRR_PHYSBASE0 && msr < MSR_MTRR_PHYSBASE0 + 2 * EMU_MTRR_VAR) {
		*v = c->mtrr_var[msr - MSR_MTRR_PHYSBASE0];
		return 0;
	}
	switch (msr) {
	case MSR_MISC_ENABLE: *v = c->misc_enable; return 0;
	case MSR_ARCH_CAPABILITIES: *v = EMU_ARCH_CAPABILITIES; return 0; /* read-only: a write #GPs */
	case MSR_MTRRCAP: *v = 0x500 | EMU_MTRR_VAR; return 0; /* WC, fixed ranges, 8 variable (KVM) */
	case MSR_MTRR_DEF_TYPE: *v = c->mtrr_def_type; return 0;
	case MSR_PLATFORM_ID: if (amd) return -1; *v = 0; return 0;
	case MSR_BIOS_SIGN_ID: *v = 0x100000000ull; return 0; /* KVM's default microcode revision */
	case MSR_FEATURE_CONTROL: if (amd) return -1; *v = c->feature_control; return 0;
	case MSR_K7_HWCR:
		/* TscFreqSel (bit 24): the TSC counts at the P0 frequency, as the invariant TSC does here
		 * (Linux's bsp_init_amd() warns "TSC doesn't count with P0 frequency" without it) */
		if (!amd) return -1;
		*v = EMU_HWCR_TSCFREQSEL;
		return 0;
	case MSR_K7_EVNTSEL0 ... MSR_K7_PERFCTR3:
		/* the legacy performance counters every AMD64 CPU has (APM Vol. 2 13.2.1, PerfEvtSel0-3 and
		 * PerfCtr0-3 at C001_0000h-7h, not enumerated by CPUID): as KVM without a vPMU, they read 0
		 * and ignore writes (kvm_get_msr_common/kvm_set_msr_common); kvm-unit-tests' pmu_init()
		 * clears them at start on every AMD model without PerfCtrExtCore */
		if (!amd) return -1;
		*v = 0;
		return 0;
	case MSR_AMD64_NB_CFG:
		/* Linux's amd_bus.c sets its EnableCf8ExtCfg bit (46) on every AMD family 10H and later
		 * (the Genoa model's 19H): read 0, writes ignored, as KVM (kvm_get_msr_common /
		 * kvm_set_msr_common); the platform's extended configuration space is not CF8-reached */
		if (!amd) return -1;
		*v = 0;
		return 0;
	default: return 1;
	}
}

static int platform_wrmsr(struct emu_vcpu *c, uint32_t msr, uint64_t v)
{
	const bool amd = c->vm->cfg.cpu_vendor_amd;
	int k = mtrr_fixed_index(msr);
	if (k >= 0) {
		for (int b = 0; b < 8; b++)
			if (!mtrr_type_ok((v >> (8 * b)) & 0xff))
				return -1;
		c->mtrr_fixed[k] = v;
		return 0;
	}
	if (msr >= MSR_MTRR_PHYSBASE0 && msr < MSR_MTRR_PHYSBASE0 + 2 * EMU_MTRR_VAR) {
		bool base = !((msr - MSR_MTRR_PHYSBASE0) & 1);
		uint64_t rsvd = ~((1ull << EMU_PHYS_BITS) - 1) | (base ? 0xf00 : 0x7ff);
		if ((v & rsvd) || (base && !mtrr_type_ok(v & 0xff)))
			return -1;
		c->mtrr_var[msr - MSR_MTRR_PHYSBASE0] = v;
		return 0;
	}
	switch (msr) {
	case MSR_MISC_ENABLE: c->misc_enable = v; return 0; /* stored as KVM does */
	case MSR_MTRR_DEF_TYPE:
		if ((v & ~0xcffull) || !mtrr_type_ok(v & 0xff))
			return -1;
		c->mtrr_def_type = v;
		return 0;
	case MSR_BIOS_SIGN_ID: return 0; /* a guest write is ignored (KVM: host-initiated only) */
	case MSR_FEATURE_CONTROL:
		/* only the lock bit exists (no VMX/SMX); locked: every write #GPs (SDM Vol. 3 23.7) */
		if (amd || (c->feature_control & 1) || (v & ~1ull))
			return -1;
		c->feature_control = v;
		return 0;
	case MSR_K7_HWCR:
		return !amd || v != EMU_HWCR_TSCFREQSEL ? -1 : 0; /* read-only: nothing else is implemented */
	case MSR_K7_EVNTSEL0 ... MSR_K7_PERFCTR3: return amd ? 0 : -1; /* see platform_rdmsr() */
	case MSR_AMD64_NB_CFG: return amd ? 0 : -1;                      /* see platform_rdmsr() */
	default: return 1;
	}
}

int emu_rdmsr(struct emu_vcpu *c, uint32_t msr, uint64_t *v)
{
	int r = emu_irq_rdmsr(c, msr, v); /* IA32_APIC_BASE, TSC_DEADLINE, x2APIC (irqchip.c) */
	if (r <= 0)
		return r;
	r = platform_rdmsr(c, msr, v);
	if (r <= 0)
		return r;
	switch (msr) {
	case MSR_TSC: *v = emu_tsc(c); return 0;
	case MSR_TSC_ADJUST: *v = c->tsc_adjust; return 0;
	case MSR_APIC_BASE: *v = c->apic_base; return 0;
	case MSR_DEBUGCTL: *v = c->debugctl; return 0;
	case MSR_SYSENTER_CS: *v = c->sysenter_cs; return 0;
	case MSR_SYSENTER_ESP: *v = c->sysenter_esp; return 0;
	case MSR_SYSENTER_EIP: *v = c->sysenter_eip; return 0;
	case MSR_PAT: *v = c->pat; return 0;
	case MSR_EFER: *v = c->efer; return 0;
	case MSR_STAR: *v = c->star; return 0;
	case MSR_LSTAR: *v = c->lstar; return 0;
	case MSR_CSTAR: *v = c->cstar; return 0;
	case MSR_SFMASK: *v = c->sfmask; return 0;
	case MSR_FS_BASE: *v = c->seg[EMU_FS].base; return 0;
	case MSR_GS_BASE: *v = c->seg[EMU_GS].base; return 0;
	case MSR_KERNEL_GS_BASE: *v = c->kernel_gs_base; return 0;
	case MSR_TSC_AUX: *v = c->tsc_aux; return 0;
	case MSR_PKRS: if (c->vm->cfg.cpu_vendor_amd) return -1; *v = c->pkrs; return 0;
	default: return -1;
	}
}

int emu_wrmsr(struct emu_vcpu *c, uint32_t msr, uint64_t v)
{
	int r = emu_irq_wrmsr(c, msr, v);
	if (r <= 0)
		return r;
	r = platform_wrmsr(c, msr, v);
	if (r <= 0)
		return r;
	switch (msr) {
	case MSR_TSC: {
		/* SDM Vol. 3 17.17.3: a WRMSR that adds X to the TSC adds X to IA32_TSC_ADJUST too */
		uint64_t offset = v - emu_vtime_ns();
		c->tsc_adjust += offset - c->tsc_offset;
		c->tsc_offset = offset;
		return 0;
	}
	case MSR_TSC_ADJUST:
		/* ... and one that adds X to IA32_TSC_ADJUST adds X to the TSC (ibid.) */
		c->tsc_offset += v - c->tsc_adjust;
		c->tsc_adjust = v;
		return 0;
	case MSR_APIC_BASE: return 0; /* no local APIC is modelled: writes are ignored */
	case MSR_DEBUGCTL:
		/* Only what is modelled may be set, as KVM refuses bits outside
		 * vmx_get_supported_debugctl(): BLD where CPUID advertises BUS_LOCK_DETECT. */
		if (v & ~(emu_bus_lock_detect_exposed(c) ? DEBUGCTL_BLD : 0))
			return -1;
		c->debugctl = v;
		emu_bus_lock_controls(c);
		return 0;
	case MSR_SYSENTER_CS: c->sysenter_cs = v & 0xffff; return 0;
	case MSR_SYSENTER_ESP: if (!emu_canonical_base(v)) return -1; c->sysenter_esp = v; return 0;
	case MSR_SYSENTER_EIP: if (!emu_canonical_base(v)) return -1; c->sysenter_eip = v; return 0;
	case MSR_PAT:
		if (!pat_valid(v))
			return -1;
		c->pat = v;
		emu_tlb_flush(c);
		return 0;
	case MSR_EFER: {
		if (v & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
			return -1;
		/* LME cannot change while paging is on; LMA is read-only (SDM Vol. 3 9.8.5) */
		if ((c->cr0 & CR0_PG) && ((v ^ c->efer) & EFER_LME))
			return -1;
		v = (v & ~EFER_LMA) | (c->efer & EFER_LMA);
		c->efer = v;
		emu_tlb_flush(c);
		return 0;
	}
	case MSR_STAR: c->star = v; return 0;
	case MSR_LSTAR: if (!emu_canonical_base(v)) return -1; c->lstar = v; return 0;
	case MSR_CSTAR: if (!emu_canonical_base(v)) return -1; c->cstar = v; return 0;
	case MSR_SFMASK: c->sfmask = v & 0xffffffff; return 0;
	case MSR_FS_BASE:
		if (!emu_canonical_base(v)) return -1;
		c->seg[EMU_FS].base = v;
		emu_update_mode(c);
		return 0;
	case MSR_GS_BASE:
		if (!emu_canonical_base(v)) return -1;
		c->seg[EMU_GS].base = v;
		emu_update_mode(c);
		return 0;
	case MSR_KERNEL_GS_BASE: if (!emu_canonical_base(v)) return -1; c->kernel_gs_base = v; return 0;
	case MSR_TSC_AUX: if (v >> 32) return -1; c->tsc_aux = v; return 0;
	case MSR_PKRS:
		/* SDM Vol. 4 Table 2-2 IA32_PKRS: bits 31:0 the rights of the 16 keys, 63:32 reserved
		 * (#GP); exists where CPUID.(EAX=07H,ECX=0H):ECX[31] (the Intel model) */
		if (c->vm->cfg.cpu_vendor_amd || (v >> 32))
			return -1;
		emu_pk_written(c, EMU_TLB_PK_PKRS, v);
		return 0;
	default: return -1;
	}
}

int emu_h_rdmsr(ARGS)
{
	TRY(cpl0(c));
	uint64_t v;
	if (emu_rdmsr(c, (uint32_t)c->r[EMU_RCX], &v))
		return emu_raise_err(c, EMU_V_GP, 0);
	c->r[EMU_RAX] = (uint32_t)v;
	c->r[EMU_RDX] = v >> 32;
	return emu_next(c, i);
}

int emu_h_wrmsr(ARGS)
{
	TRY(cpl0(c));
	uint64_t v = (uint32_t)c->r[EMU_RAX] | (c->r[EMU_RDX] << 32);
	if (emu_wrmsr(c, (uint32_t)c->r[EMU_RCX], v))
		return emu_raise_err(c, EMU_V_GP, 0);
	c->stop = EMU_ST_END;
	return emu_next(c, i);
}

int emu_h_rdtsc(ARGS)
{
	if ((c->cr4 & CR4_TSD) && c->cpl)
		return emu_raise_err(c, EMU_V_GP, 0);
	uint64_t t = emu_tsc(c);
	c->r[EMU_RAX] = (uint32_t)t;
	c->r[EMU_RDX] = t >> 32;
	return emu_next(c, i);
}

int emu_h_rdtscp(ARGS)
{
	if ((c->cr4 & CR4_TSD) && c->cpl)
		return emu_raise_err(c, EMU_V_GP, 0);
	uint64_t t = emu_tsc(c);
	c->r[EMU_RAX] = (uint32_t)t;
	c->r[EMU_RDX] = t >> 32;
	c->r[EMU_RCX] = (uint32_t)c->tsc_aux;
	return emu_next(c, i);
}

int emu_h_rdpid(ARGS)
{
	c->r[i->r] = c->mode64 ? c->tsc_aux : (uint32_t)c->tsc_aux;
	return emu_next(c, i);
}

/* SDM Vol. 2 "RDPKRU": #UD "If CR4.PKE = 0"; #GP(0) "If ECX != 0"; EAX := PKRU, EDX := 0. At any CPL. */
int emu_h_rdpkru(ARGS)
{
	if (!(c->cr4 & CR4_PKE))
		return emu_raise(c, EMU_V_UD);
	if ((uint32_t)c->r[EMU_RCX])
		return emu_raise_err(c, EMU_V_GP, 0);
	c->r[EMU_RAX] = c->pkru;
	c->r[EMU_RDX] = 0;
	return emu_next(c, i);
}

/* SDM Vol. 2 "WRPKRU": #UD "If CR4.PKE = 0"; #GP(0) "If ECX != 0" or "If EDX != 0"; PKRU := EAX.
 * The TLB's data rights that depend on PKRU go (emu_pk_written): the next access is checked with
 * the new value, in this block already. */
int emu_h_wrpkru(ARGS)
{
	if (!(c->cr4 & CR4_PKE))
		return emu_raise(c, EMU_V_UD);
	if ((uint32_t)c->r[EMU_RCX] || (uint32_t)c->r[EMU_RDX])
		return emu_raise_err(c, EMU_V_GP, 0);
	emu_pk_written(c, EMU_TLB_PK_PKRU, (uint32_t)c->r[EMU_RAX]);
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- CPUID */

/*
 * The two CPU models are real parts: a guest kernel chooses errata workarounds and quirks by
 * family/model/stepping, so the signature (CPUID.1:EAX) names a part that has every feature the
 * model advertises; the model advertises a subset of the part's features, exactly those the
 * engine implements. Signature and brand string are those of QEMU's named model of the part
 * (target/i386/cpu.c builtin_x86_defs[], qemu commit 0048035a87), which is also where the part's
 * feature words below come from (tests/unit/emu_cpu_model.c holds them and checks every bit):
 *  --cpu=intel  Sapphire Rapids (4th Gen Xeon Scalable), family 6 model 8FH stepping 4, QEMU's
 *               "SapphireRapids" ("Intel Xeon Processor (SapphireRapids)");
 *  --cpu=amd    Genoa (EPYC 9004, Zen 4), family 19H model 11H stepping 0, QEMU's "EPYC-Genoa"
 *               ("AMD EPYC-Genoa Processor").
 * Advertised, and on both parts (QEMU's tables): leaf 1 FPU TSC MSR PAE CX8 APIC PGE CMOV PAT CLFSH
 * MMX FXSR SSE SSE2, SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT XSAVE (the FPU ones:
 * emu_fpu_cpuid, as the host has them); leaf 7 BMI1 SMEP SMAP CLFLUSHOPT, UMIP PKU LA57 RDPID;
 * 8000_0001H LAHF_LM ABM(LZCNT) 3DNowPrefetch(PREFETCHW), SYSCALL NX Page1GB RDTSCP LM; 0DH XSAVEOPT
 * and XCR0 x87 SSE PKRU; the invariant TSC (8000_0007H:EDX[8]: both parts have it, QEMU's named
 * models leave it out as not migratable). Sapphire Rapids only: x2APIC and TSC-deadline (QEMU's
 * table), TSC_ADJUST (its -v3), ARCH_CAPABILITIES, BUS_LOCK_DETECT, and PKS (not in QEMU's table:
 * "Protection Keys Supervisor (PKS) is a feature which can be found on: Sapphire Rapids (and
 * later)", the PKS series' Documentation/core-api/protection-keys.rst); the Genoa model offers
 * no bus-lock #DB (AMD's Bus Lock Detect arrived with Zen 5, family 1AH). The AMD model's x2APIC,
 * TSC-deadline, TSC_ADJUST and ARCH_CAPABILITIES are the hypervisor's, as KVM gives them to every
 * guest whatever the host ("KVM emulates x2apic in software irrespective of host support", "TSC_ADJUST
 * and ARCH_CAPABILITIES are emulated in software": arch/x86/kvm/cpuid.c kvm_set_cpu_caps();
 * the TSC-deadline timer is its LAPIC's, KVM_CAP_TSC_DEADLINE_TIMER), like HYPERVISOR (1:ECX[31])
 * and the mirrors of CR4 (OSXSAVE, OSPKE). 0BH: one thread per core, nr_vcpus cores;
 * 4000_0000H/1: blvm's leaves. The cache leaves (2 and 4 on Intel, 8000_0005H/6H) describe the
 * part's caches as QEMU's cache models of it do (spr_caches, genoa_caches below).
 */
#define EMU_CPUID_SIG_INTEL 0x000806f4u /* stepping 4, model 0FH + extended 8, family 6 */
#define EMU_CPUID_SIG_AMD 0x00a10f10u   /* stepping 0, model 1 + extended 1, family 0FH + extended 0AH */
/* The parts' caches, as QEMU's cache models of them (all 64-byte lines, one partition):
 * "SapphireRapids-v4" xeon_spr_cache_info (read from a Sapphire Rapids SP: qemu commit "i386/cpu:
 * Introduce cache model for SapphireRapids") and "EPYC-Genoa" epyc_genoa_cache_info. */
struct emu_cache { uint8_t type, level, ways; uint32_t sets, kib; bool package, complex; };
#define CACHE_DATA 1
#define CACHE_INSN 2
#define CACHE_UNIFIED 3
static const struct emu_cache spr_caches[4] = {
	{ CACHE_DATA, 1, 12, 64, 48, false, false },
	{ CACHE_INSN, 1, 8, 64, 32, false, false },
	{ CACHE_UNIFIED, 2, 16, 2048, 2048, false, false },
	{ CACHE_UNIFIED, 3, 15, 65536, 60 * 1024, true, true }, /* shared by the package's cores */
};
static const struct emu_cache genoa_caches[4] = {
	{ CACHE_DATA, 1, 8, 64, 32, false, false },
	{ CACHE_INSN, 1, 8, 64, 32, false, false },
	{ CACHE_UNIFIED, 2, 8, 2048, 1024, false, false },
	{ CACHE_UNIFIED, 3, 16, 32768, 32 * 1024, true, false },
};

/* The associativity encoding of 8000_0006H (SDM Vol. 2 CPUID; APM Vol. 3 E.4.5): 8 ways 6, 16 ways 8 */
static uint32_t assoc_code(unsigned ways)
{
	return ways == 16 ? 8 : ways == 8 ? 6 : ways == 4 ? 4 : ways == 2 ? 2 : ways == 1 ? 1 : 0;
}

void emu_cpuid(struct emu_vcpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	const bool amd = c->vm->cfg.cpu_vendor_amd;
	const unsigned nv = c->vm->cfg.nr_vcpus ? c->vm->cfg.nr_vcpus : 1;
	unsigned shift = 0; /* the APIC ID bits of the cores in the package: one thread per core */
	while ((1u << shift) < nv)
		shift++;
	uint32_t a = 0, b = 0, cc = 0, d = 0;
	const uint32_t edx1 = (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) | (1u << 13) | (1u << 15) |
			      (1u << 16) | (1u << 19);
	switch (leaf) {
	case 0:
		a = amd ? 0xd : 0x16; /* up to XSAVE's 0xd; Intel: up to the TSC and frequency leaves */
		if (amd) {
			b = 0x68747541; d = 0x69746e65; cc = 0x444d4163; /* AuthenticAMD */
		} else {
			b = 0x756e6547; d = 0x49656e69; cc = 0x6c65746e; /* GenuineIntel */
		}
		break;
	case 1:
		a = amd ? EMU_CPUID_SIG_AMD : EMU_CPUID_SIG_INTEL;
		b = (8u << 8) | ((nv & 0xff) << 16) | ((c->id & 0xff) << 24);
		cc = (1u << 13) | (1u << 23) | (1u << 31);
		d = edx1;
		if (c->lapic) {
			/* the irqchip's LAPIC: x2APIC, TSC-deadline; APIC while IA32_APIC_BASE.EN (SDM Vol. 2
			 * CPUID: "APIC On-Chip") */
			cc |= (1u << 21) | (1u << 24);
			if (c->apic_base & (1u << 11))
				d |= 1u << 9;
		}
		break;
	case 7:
		if (sub == 0) {
			/* IA32_TSC_ADJUST (bit 1), as KVM advertises it to both vendors' guests: with the
			 * invariant TSC it tells Linux (check_system_tsc_reliable) that the TSC needs no
			 * clocksource watchdog, which would otherwise judge it against a jiffies count
			 * that a slow CPU's late ticks make lag. BMI1 (bit 3). SMEP (bit 7) and SMAP (bit
			 * 20, with STAC/CLAC): mmu.c walk(). */
			b = (1u << 1) | (1u << 3) | (1u << 7) | (1u << 20);
			d = 1u << 29; /* IA32_ARCH_CAPABILITIES (platform_rdmsr) */
			/* UMIP (bit 2: umip_denied), PKU (bit 3: mmu.c walk, RDPKRU/WRPKRU, XSAVE component
			 * 9), OSPKE (bit 4) mirroring CR4.PKE; the Intel model's PKS (bit 31: IA32_PKRS) */
			cc = (1u << 2) | (1u << 3);
			cc |= 1u << 16; /* LA57: 5-level paging (mmu.c walk, EMU_LIN_BITS) */
			if (c->cr4 & CR4_PKE)
				cc |= 1u << 4;
			if (!amd)
				cc |= 1u << 31;
			/* CLFLUSHOPT (EBX[23]) and RDPID (ECX[22]), APM Vol. 3 E.3.6 (Fn0000_0007_EBX/
			 * ECX): the AMD model's; #UD on the Intel model (emu_select) */
			if (amd) {
				b |= 1u << 23;
				cc |= 1u << 22;
			}
			if (emu_bus_lock_detect_exposed(c))
				cc |= 1u << 24; /* BUS_LOCK_DETECT: OS bus-lock detection (#DB) */
		}
		break;
	case 2:
		/* Intel: one descriptor, FFH, "CPUID leaf 2 does not report cache descriptor
		 * information, use CPUID leaf 4" (SDM Vol. 2 Table 3-12); AL = 1. Reserved on AMD. */
		if (!amd)
			a = 0xff01;
		break;
	case 4:
		/* Intel's deterministic cache parameters (SDM Vol. 2 CPUID leaf 04H), sub-leaf n the n-th
		 * cache, then type 0; EAX[31:26] the core IDs of the package less 1 and EAX[25:14] the
		 * logical processors sharing the cache less 1, as leaf 0BH counts them (QEMU's
		 * encode_cache_cpuid4). Reserved on AMD (its caches: 8000_0005H/6H). */
		if (!amd && sub < 4) {
			const struct emu_cache *k = &spr_caches[sub];
			a = k->type | (uint32_t)k->level << 5 | 1u << 8 /* self-initialising */ |
			    (k->package ? ((1u << shift) - 1) << 14 : 0) | ((1u << shift) - 1) << 26;
			b = 63u | (uint32_t)(k->ways - 1) << 22;
			cc = k->sets - 1;
			d = k->complex ? 1u << 2 : 0;
		}
		break;
	case 0xb: {
		if (sub == 0) {
			a = 0; b = 1; cc = (1u << 8) | 0;
		} else if (sub == 1) {
			a = shift; b = nv; cc = (2u << 8) | 1;
		} else {
			cc = sub & 0xff;
		}
		d = c->id;
		break;
	}
	case 0x15:
		/* TSC / crystal ratio and crystal Hz: the TSC and the APIC bus both run at 1 GHz
		 * (irq.h EMU_TSC_HZ); Linux's native_calibrate_tsc() then skips the PIT */
		if (!amd) {
			a = 1; b = 1; cc = 1000000000u;
		}
		break;
	case 0x16:
		if (!amd) {
			a = 1000; b = 1000; cc = 1000; /* base, maximum and bus MHz */
		}
		break;
	case 0x80000007:
		d = 1u << 8; /* invariant TSC */
		break;
	case 0x40000000:
		a = 0x40000001;
		b = 0x6d766c62; cc = 0x6d766c62; d = 0x6d766c62; /* "blvmblvmblvm" */
		break;
	case 0x40000001:
		a = nv;
		b = 1;
		break;
	case 0x80000000:
		a = 0x80000008;
		if (amd) {
			b = 0x68747541; d = 0x69746e65; cc = 0x444d4163;
		}
		break;
	case 0x80000001:
		cc = (1u << 0) | (1u << 5);
		/* 3DNowPrefetch (ECX[8], APM Vol. 3 E.4.2: PREFETCH/PREFETCHW) on the AMD model; Intel
		 * enumerates PRFCHW from Broadwell on, and PREFETCHW's exceptions (SDM Vol. 2) name no
		 * CPUID condition: the Intel model runs it as a NOP without the bit (insn.def R_HINT) */
		if (amd)
			cc |= 1u << 8;
		d = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29);
		if (amd)
			d |= edx1 & 0x0183f3ff;
		break;
	case 0x80000002: case 0x80000003: case 0x80000004: {
		/* the part's name, QEMU's model_id (zero-padded to 48 bytes) */
		static const char brand[2][48] = { "Intel Xeon Processor (SapphireRapids)", "AMD EPYC-Genoa Processor" };
		uint32_t w[4];
		memcpy(w, brand[amd] + 16 * (leaf - 0x80000002), 16);
		a = w[0]; b = w[1]; cc = w[2]; d = w[3];
		break;
	}
	case 0x80000005:
		/* AMD's L1 caches (APM Vol. 3 E.4.4): ECX data, EDX instruction, each size KiB[31:24]
		 * ways[23:16] lines per tag[15:8] line size[7:0]; the TLB words (EAX, EBX) 0. Reserved on
		 * Intel. */
		if (amd) {
			cc = genoa_caches[0].kib << 24 | (uint32_t)genoa_caches[0].ways << 16 | 1u << 8 | 64;
			d = genoa_caches[1].kib << 24 | (uint32_t)genoa_caches[1].ways << 16 | 1u << 8 | 64;
		}
		break;
	case 0x80000006: {
		/* L2 in ECX: size KiB[31:16], associativity code[15:12], lines per tag[11:8], line size
		 * (both vendors, SDM and APM E.4.5); AMD's L3 in EDX: size in 512 KiB units[31:18] */
		const struct emu_cache *k = amd ? genoa_caches : spr_caches;
		cc = k[2].kib << 16 | assoc_code(k[2].ways) << 12 | (amd ? 1u << 8 : 0) | 64;
		if (amd)
			d = (k[3].kib / 512) << 18 | assoc_code(k[3].ways) << 12 | 1u << 8 | 64;
		break;
	}
	case 0x80000008:
		a = EMU_PHYS_BITS | (EMU_LIN_BITS << 8);
		/* AMD: NC, the package's threads less 1, and ApicIdCoreIdSize (APM Vol. 3 E.4.7), as
		 * leaf 0BH counts them */
		if (amd)
			cc = (nv - 1) | shift << 12;
		break;
	default:
		break;
	}
	out[0] = a;
	out[1] = b;
	out[2] = cc;
	out[3] = d;
	emu_fpu_cpuid(c, leaf, sub, out); /* FPU MMX FXSR SSE..SSE4.2 XSAVE: leaf 1 bits, leaf 0xD */
}

int emu_h_cpuid(ARGS)
{
	uint32_t o[4];
	emu_cpuid(c, (uint32_t)c->r[EMU_RAX], (uint32_t)c->r[EMU_RCX], o);
	c->r[EMU_RAX] = o[0];
	c->r[EMU_RBX] = o[1];
	c->r[EMU_RCX] = o[2];
	c->r[EMU_RDX] = o[3];
	/* Serialising (SDM Vol. 3 9.3): the block ends here, so the next instruction is found by the
	 * run loop, which acts on other vCPUs' code writes (the cross-modifying-code protocol of SDM
	 * Vol. 3 9.1.3: observe the writer's flag, serialise, execute the new code). */
	c->stop = EMU_ST_END;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- SYSCALL / SYSRET */

static void flat_seg(struct kvm_segment *s, uint16_t sel, int code, int l, unsigned dpl)
{
	memset(s, 0, sizeof *s);
	s->selector = sel;
	s->limit = 0xffffffff;
	s->g = 1;
	s->s = 1;
	s->present = 1;
	s->dpl = (uint8_t)dpl;
	s->type = code ? 0xb : 0x3;
	s->l = (uint8_t)l;
	s->db = !l;
}

/* The single-step trap of SYSCALL and SYSRET follows TF as the instruction leaves it, not as it
 * found it: a SYSCALL whose IA32_FMASK clears TF is not trapped, a SYSRET that sets TF from R11 traps
 * before the first instruction it returns to (as KVM and QEMU TCG do: "#DB is raised if TF is 1 at
 * the *end* of syscall/sysret", kvm-unit-tests x86/syscall.c). The run loop skips its own trap,
 * decided by TF at the start, for these two (engine.c, after the block). */
static int step_trap_at_end(struct emu_vcpu *c)
{
	if (c->rflags & EMU_TF) {
		emu_dr6_db(c, DR6_BS); /* single-step (SDM Vol. 3 17.2.3) */
		c->exc_vec = EMU_V_DB;
		c->exc_has_err = false;
		c->exc_err = 0;
		c->exc_soft = false;
	}
	return EMU_ST_END;
}

/* SDM Vol. 2 "SYSCALL" (IA-32e mode only here; legacy-mode SYSCALL is AMD-only) */
int emu_h_syscall(ARGS)
{
	if (!(c->efer & EFER_LMA) || !(c->efer & EFER_SCE))
		return emu_raise(c, EMU_V_UD);
	uint16_t sel = (uint16_t)(c->star >> 32);
	c->r[EMU_RCX] = c->rip + i->len;
	c->r[11] = c->rflags & ~EMU_RF;
	c->rflags &= ~(c->sfmask | EMU_RF);
	c->rflags |= EMU_RF_FIXED;
	flat_seg(&c->seg[EMU_CS], sel & 0xfffc, 1, 1, 0);
	flat_seg(&c->seg[EMU_SS], (sel + 8) & 0xfffc, 0, 0, 0);
	c->rip = c->mode64 ? c->lstar : c->cstar;
	emu_update_mode(c);
	return step_trap_at_end(c);
}

int emu_h_sysret(ARGS)
{
	if (!(c->efer & EFER_SCE) || !(c->efer & EFER_LMA) || !c->mode64)
		return emu_raise(c, EMU_V_UD);
	TRY(cpl0(c));
	uint16_t sel = (uint16_t)(c->star >> 48);
	bool to64 = i->flg & EMU_I_W;
	if (to64 && !emu_canonical(c, c->r[EMU_RCX]))
		return emu_raise_err(c, EMU_V_GP, 0);
	if (to64)
		flat_seg(&c->seg[EMU_CS], (uint16_t)((sel + 16) | 3), 1, 1, 3);
	else
		flat_seg(&c->seg[EMU_CS], (uint16_t)(sel | 3), 1, 0, 3);
	flat_seg(&c->seg[EMU_SS], (uint16_t)((sel + 8) | 3), 0, 0, 3);
	c->rflags = (c->r[11] & EMU_FLAGS_WRITABLE & ~EMU_RF) | EMU_RF_FIXED;
	c->rip = to64 ? c->r[EMU_RCX] : (uint32_t)c->r[EMU_RCX];
	emu_update_mode(c);
	if (c->rflags & EMU_IF)
		emu_irq_if_set(c);
	return step_trap_at_end(c);
}

/* ---------------------------------------------------------------- INT n, INT3, INTO, IRET */

static int soft_int(struct emu_vcpu *c, const struct emu_insn *i, int vec)
{
	c->rip += i->len; /* trap-like: the pushed RIP is the next instruction */
	c->exc_soft_len = i->len;
	c->exc_vec = vec;
	c->exc_has_err = false;
	c->exc_err = 0;
	c->exc_soft = true;
	return EMU_ST_END;
}

int emu_h_int(ARGS) { return soft_int(c, i, (int)i->imm); }
int emu_h_int3(ARGS) { return soft_int(c, i, EMU_V_BP); }

/* INT1 (ICEBP, F1): a #DB trap after the instruction, delivered as a hardware exception would be
 * (no gate-DPL check; SDM Vol. 3 6.12.1.1 and "INT n/INTO/INT3/INT1"). */
int emu_h_int1(ARGS)
{
	c->rip += i->len;
	emu_dr6_db(c, 0); /* no condition bit: DR6 = ACTIVE_LOW with BD/BS/BT as they were */
	emu_raise(c, EMU_V_DB); /* pending; the instruction itself completed */
	return EMU_ST_END;
}

int emu_h_into(ARGS)
{
	if (c->mode64)
		return emu_raise(c, EMU_V_UD);
	if (!(c->rflags & EMU_OF))
		return emu_next(c, i);
	return soft_int(c, i, EMU_V_OF);
}

/* SDM Vol. 2 "IRET/IRETD/IRETQ": real-address mode, protected mode and IA-32e mode (no task return,
 * no return to virtual-8086 mode). */
int emu_h_iret(ARGS)
{
	unsigned n = i->osz;
	uint64_t sp0 = c->r[EMU_RSP], nip = 0, sel = 0, fl = 0, nsp = 0, nss = 0;
	int st = emu_pop(c, n, &nip);
	if (!st)
		st = emu_pop(c, n, &sel);
	if (!st)
		st = emu_pop(c, n, &fl);
	/* RF from the image suppresses an instruction breakpoint at the instruction returned to and is
	 * cleared once that one completes (SDM Vol. 3 17.3.1.1). The run loop does both only while
	 * DR7 enables an instruction breakpoint (engine.c insn_breakpoint()); otherwise RF is not
	 * loaded, so that a later event pushes RF as the SDM says for it, not a stale 1 (deliver()) */
	if (!c->insn_bp)
		fl &= ~EMU_RF;
	if (!st && real_mode(c)) {
		/* EFLAGS <- (tempEFLAGS AND 257FD5H) OR (EFLAGS AND 1A0000H): VM, VIF, VIP stay; with a
		 * 16-bit operand size only FLAGS[15:0] */
		uint64_t mask = EMU_FLAGS_WRITABLE & (n == 2 ? 0xffff : ~0ull);
		uint64_t fl0 = c->rflags;
		c->rflags = (c->rflags & ~mask) | (fl & mask) | EMU_RF_FIXED;
		st = real_far_target(c, (uint16_t)sel, nip);
		if (st < 0) {
			c->rflags = fl0;
			c->r[EMU_RSP] = sp0;
		}
		return st;
	}
	if (!st && n == 4 && (fl & EMU_VM) && c->cpl == 0 && !(c->efer & EFER_LMA))
		return emu_internal_error(c, "virtual-8086 mode is not implemented (IRET to EFLAGS.VM = 1)");
	unsigned cpl = 0;
	struct kvm_segment cs;
	if (!st)
		st = read_code_seg(c, (uint16_t)sel, &cs, &cpl, true);
	bool pop_stack = c->mode64 || cpl > c->cpl;
	if (!st && pop_stack) {
		st = emu_pop(c, n, &nsp);
		if (!st)
			st = emu_pop(c, n, &nss);
	}
	if (st) {
		c->r[EMU_RSP] = sp0;
		return st;
	}
	if ((c->mode64 && cs.l && !emu_canonical(c, nip)) || beyond_limit(c, &cs, nip)) {
		c->r[EMU_RSP] = sp0;
		return emu_raise_err(c, EMU_V_GP, 0);
	}
	if (pop_stack) {
		struct kvm_segment ss_save = c->seg[EMU_SS];
		st = load_data_seg(c, EMU_SS, (uint16_t)nss, cpl);
		if (!st && (nss & ~3) == 0 && !cs.l) /* null SS only for a return to 64-bit code */
			st = emu_raise_err(c, EMU_V_GP, 0);
		if (st) {
			c->seg[EMU_SS] = ss_save;
			c->r[EMU_RSP] = sp0;
			return st;
		}
		c->r[EMU_RSP] = (cs.l && (c->efer & EFER_LMA)) ? nsp : (c->seg[EMU_SS].db ? (uint32_t)nsp : nsp);
	}
	uint64_t mask = EMU_FLAGS_WRITABLE;
	if (c->cpl > 0)
		mask &= ~EMU_IOPL;
	if (c->cpl > ((c->rflags >> 12) & 3))
		mask &= ~EMU_IF;
	if (n == 2)
		mask &= 0xffff;
	c->rflags = (c->rflags & ~mask) | (fl & mask) | EMU_RF_FIXED;
	c->seg[EMU_CS] = cs;
	c->rip = rip_for(c, &cs, nip);
	emu_update_mode(c);
	if (unlikely(c->nmi_blocked)) {
		c->nmi_blocked = false; /* IRET ends NMI blocking (SDM Vol. 3 6.7.1): look for the next */
		atomic_fetch_or(&c->kick, EMU_KICK_EVENT);
	}
	if (c->rflags & EMU_IF)
		emu_irq_if_set(c);
	return EMU_ST_END;
}

/* ---------------------------------------------------------------- delivery */

static uint32_t idt_err(int vec, bool soft)
{
	return ((uint32_t)vec << 3) | 2 | (soft ? 0 : 1);
}

/* Real-address mode delivery (SDM Vol. 3 20.1.4): the IVT at IDTR.base holds 4-byte IP:CS
 * vectors; FLAGS, CS and IP are pushed (16 bits each, no error code), IF, TF and AC cleared. */
static int deliver_real(struct emu_vcpu *c, int vec, bool soft)
{
	uint8_t g[4];
	if ((uint64_t)vec * 4 + 3 > c->idt.limit)
		return emu_raise_err(c, EMU_V_GP, idt_err(vec, soft));
	TRY(emu_read_bytes(c, (c->idt.base + (uint64_t)vec * 4) & 0xffffffff, g, 4, EMU_ACC_SYS));
	uint16_t ip = (uint16_t)(g[0] | (g[1] << 8)), sel = (uint16_t)(g[2] | (g[3] << 8));
	uint64_t sp0 = c->r[EMU_RSP];
	int st = emu_push(c, 2, c->rflags);
	if (!st)
		st = emu_push(c, 2, c->seg[EMU_CS].selector);
	if (!st)
		st = emu_push(c, 2, c->rip);
	if (st) {
		c->r[EMU_RSP] = sp0;
		return st;
	}
	c->rflags &= ~(EMU_IF | EMU_TF | EMU_AC | EMU_RF);
	real_seg(c, EMU_CS, sel);
	c->rip = ip;
	emu_update_mode(c);
	return 0;
}

/* Fault-class exceptions (SDM Vol. 3 6.15, each vector's "Exception Class"): #DE #BR #UD #NM #TS #NP
 * #SS #GP #PF #MF #AC #XM #VE #CP. #DB is a fault only for instruction breakpoints and general
 * detect, which this engine does not raise; #DF and #MC are aborts. */
static bool fault_class(int vec)
{
	return vec == EMU_V_DE || vec == 5 || vec == EMU_V_UD || vec == EMU_V_NM ||
	       (vec >= EMU_V_TS && vec <= EMU_V_PF) || vec == 16 || vec == 17 || vec == 19 || vec == 20 ||
	       vec == 21;
}

/* Delivers one event through the IDT (the IVT in real mode). Returns 0, EMU_ST_FAULT (a new
 * exception is pending) or EMU_ST_EXIT (internal error). rf: push EFLAGS.RF as 1 (SDM Vol. 3
 * 17.3.1.1: "For any fault-class exception except a debug exception generated in response to an
 * instruction breakpoint, the value pushed for RF is 1"), so that IRET back to the faulting
 * instruction does not hit an instruction breakpoint on it again. */
static int deliver(struct emu_vcpu *c, int vec, bool has_err, uint32_t err, bool soft, bool rf)
{
	if (real_mode(c))
		return deliver_real(c, vec, soft);
	const bool lm = c->efer & EFER_LMA;
	const unsigned gsz = lm ? 16 : 8;
	uint8_t g[16] = { 0 };
	if ((uint64_t)vec * gsz + gsz - 1 > c->idt.limit)
		return emu_raise_err(c, EMU_V_GP, idt_err(vec, soft));
	TRY(emu_read_bytes(c, c->idt.base + (uint64_t)vec * gsz, g, gsz, EMU_ACC_SYS));
	unsigned type = g[5] & 0x1f, dpl = (g[5] >> 5) & 3;
	/* 16-bit interrupt (6) and trap (7) gates, legacy protected mode only (SDM Vol. 3 6.11, 6.12.1:
	 * a 16-bit offset, 16-bit frame entries); in IA-32e mode they are invalid (6.14.1) */
	const bool g16 = !lm && (type == 6 || type == 7);
	if (type != 0xe && type != 0xf && !g16) {
		if (!lm && type == 5)
			return emu_internal_error(c, "task gates are not implemented");
		return emu_raise_err(c, EMU_V_GP, idt_err(vec, soft));
	}
	if (soft && dpl < c->cpl)
		return emu_raise_err(c, EMU_V_GP, idt_err(vec, soft));
	if (!(g[5] & 0x80))
		return emu_raise_err(c, EMU_V_NP, idt_err(vec, soft));
	uint16_t sel = (uint16_t)(g[2] | (g[3] << 8));
	uint64_t off = g[0] | (g[1] << 8) | (g16 ? 0 : ((uint32_t)g[6] << 16) | ((uint32_t)g[7] << 24));
	if (lm)
		off |= (uint64_t)(g[8] | (g[9] << 8) | (g[10] << 16) | ((uint32_t)g[11] << 24)) << 32;
	unsigned ist = lm ? g[4] & 7 : 0;

	if ((sel & ~3) == 0)
		return emu_raise_err(c, EMU_V_GP, soft ? 0 : 1);
	uint8_t d[8];
	uint64_t daddr;
	TRY(read_desc(c, sel, d, &daddr));
	struct kvm_segment cs;
	desc_to_seg(d, sel, &cs);
	if (!cs.s || !(cs.type & 8) || cs.dpl > c->cpl || (lm && (!cs.l || cs.db)))
		return emu_raise_err(c, EMU_V_GP, (sel & 0xfffc) | (soft ? 0 : 1));
	if (!cs.present)
		return emu_raise_err(c, EMU_V_NP, (sel & 0xfffc) | (soft ? 0 : 1));
	unsigned ncpl = (cs.type & 4) ? c->cpl : cs.dpl;
	cs.selector = (uint16_t)((sel & ~3) | ncpl);
	cs.type |= 1;

	uint64_t fl = c->rflags | (rf ? EMU_RF : 0);
	uint64_t old_cs = c->seg[EMU_CS].selector, old_ss = c->seg[EMU_SS].selector, old_rsp = c->r[EMU_RSP];
	struct kvm_segment ss = c->seg[EMU_SS];
	uint64_t frame[6];
	unsigned nf = 0, w;
	uint64_t rsp, ssbase, ssmask = ~0ull;

	if (lm) {
		/* 64-bit delivery (SDM Vol. 3 6.14): SS:RSP always pushed, RSP aligned to 16 */
		rsp = old_rsp;
		if (ncpl < c->cpl || ist) {
			uint64_t t;
			uint64_t where = ist ? 0x24 + 8 * (ist - 1) : 4 + 8 * ncpl;
			TRY(emu_read_bytes(c, c->tr.base + where, &t, 8, EMU_ACC_SYS));
			rsp = t;
		}
		if (ncpl < c->cpl) {
			memset(&ss, 0, sizeof ss);
			ss.selector = (uint16_t)ncpl;
			ss.type = 3; ss.s = 1; ss.present = 1; ss.db = 1;
			ss.dpl = (uint8_t)ncpl;
		}
		rsp &= ~15ull;
		w = 8;
		frame[nf++] = old_ss;
		frame[nf++] = old_rsp;
		ssbase = 0;
	} else {
		w = g16 ? 2 : 4;
		rsp = (uint32_t)old_rsp;
		ssbase = (uint32_t)c->seg[EMU_SS].base;
		if (ncpl < c->cpl) {
			uint8_t t[8];
			TRY(emu_read_bytes(c, c->tr.base + 4 + 8 * ncpl, t, 8, EMU_ACC_SYS));
			uint32_t esp;
			memcpy(&esp, t, 4);
			uint16_t nss = (uint16_t)(t[4] | (t[5] << 8));
			struct kvm_segment save = c->seg[EMU_SS];
			int st = load_data_seg(c, EMU_SS, nss, ncpl);
			ss = c->seg[EMU_SS];
			c->seg[EMU_SS] = save;
			if (st)
				return st == EMU_ST_FAULT ? emu_raise_err(c, EMU_V_TS, nss & 0xfffc) : st;
			rsp = esp;
			ssbase = (uint32_t)ss.base;
			frame[nf++] = old_ss;
			frame[nf++] = (uint32_t)old_rsp;
		}
		ssmask = ss.db ? 0xffffffff : 0xffff; /* the stack's B bit: ESP or SP (SDM Vol. 3 6.12.1) */
	}
	frame[nf++] = fl;
	frame[nf++] = old_cs;
	frame[nf++] = c->rip;
	if (has_err)
		frame[nf++] = err;

	/* lowest address first: err, rip, cs, rflags, [rsp, ss] */
	uint8_t buf[48];
	for (unsigned k = 0; k < nf; k++) {
		uint64_t v = frame[nf - 1 - k];
		memcpy(buf + k * w, &v, w);
	}
	uint64_t nrsp = (rsp - nf * w) & ssmask;
	/* Protected mode: the frame within the stack's limit, else #SS with the new SS's selector
	 * (a stack switch) or 0, and EXT (SDM Vol. 2 "INT n/INTO/INT3/INT1" pseudocode: "#SS(EXT)",
	 * "#SS(error_code(NewSS, 0, EXT))"). IA-32e mode checks no limit; a flat stack has none to
	 * check (the frame may wrap at 4 GiB there, push by push). */
	if (!lm && (ss.limit != 0xffffffffu || expand_down(&ss)) && !seg_fits(&ss, nrsp, nf * w))
		return emu_raise_err(c, EMU_V_SS, (ncpl < c->cpl ? (ss.selector & 0xfffc) : 0) | (soft ? 0 : 1));
	/* The frame is written with the new privilege, as a supervisor-mode access of the delivery
	 * itself (EMU_ACC_SYS: U/S = 0 in a #PF error code, #GP for a non-canonical address): under
	 * SMAP it never reaches a user-mode page, whatever EFLAGS.AC. (QEMU TCG lets AC = 1 at CPL < 3
	 * through here, cpu_mmu_index_kernel; a kernel stack in a user-mode page only shows it.) */
	TRY(emu_write_bytes(c, (ssbase + nrsp) & (lm ? ~0ull : 0xffffffffull), buf, nf * w,
			    ncpl < 3 ? EMU_ACC_SYS : 0));
	nrsp |= rsp & ~ssmask; /* a 16-bit stack changes SP only */

	if (vec == EMU_V_PF && !soft)
		c->cr2 = c->exc_cr2;
	c->seg[EMU_CS] = cs;
	c->seg[EMU_SS] = ss;
	c->r[EMU_RSP] = nrsp;
	c->rflags &= ~(EMU_TF | EMU_NT | EMU_RF | EMU_VM);
	if (type == 0xe || type == 6) /* interrupt gates; trap gates keep IF */
		c->rflags &= ~EMU_IF;
	c->rip = lm ? off : (uint32_t)off;
	emu_update_mode(c);
	return 0;
}

/* SDM Vol. 3 6.15, "Interrupt 8—Double Fault Exception", Table 6-5. */
static int exc_class(int v)
{
	if (v == EMU_V_PF)
		return 2;
	if (v == EMU_V_DE || (v >= EMU_V_TS && v <= EMU_V_GP))
		return 1;
	if (v == EMU_V_DF)
		return 3;
	return 0;
}

int emu_deliver_pending(struct emu_vcpu *c)
{
	int vec = c->exc_vec;
	bool has_err = c->exc_has_err, soft = c->exc_soft, ext = c->exc_ext;
	uint32_t err = c->exc_err;
	uint64_t cr2 = c->exc_cr2;
	c->exc_vec = -1;
	c->exc_ext = false;
	/* A delivery resumed after an exit (a gate read from MMIO, a bus-lock exit: below) continues
	 * its chain, whose last entry is this event again; any other starts a new one. */
	if (c->sd_resume && c->sd_n)
		c->sd_n--;
	else
		c->sd_n = 0;
	c->sd_resume = false;
	for (;;) {
		c->exc_cr2 = cr2;
		if (c->sd_n < EMU_SD_MAX)
			c->sd_ev[c->sd_n++] = (uint16_t)(vec | (soft ? EMU_EV_SOFT : 0) | (ext ? EMU_EV_EXT : 0));
		unsigned level_reads = c->mrc_pos; /* MMIO read completions this level starts at */
		int st = deliver(c, vec, has_err, err, soft, !soft && !ext && fault_class(vec));
		if (st == 0)
			return 0;
		if (st == EMU_ST_EXIT && c->mrc_wait) {
			/* A gate, descriptor or TSS read from MMIO (an IDT outside RAM): the monitor answers it,
			 * all ones where nothing is there as on hardware, and this event's delivery is redone
			 * with the answer, as mmio_read's re-execution protocol does for an instruction. The
			 * event stays pending (dropping it skipped int3 and looped ud2 forever); completions
			 * of the levels already faulted are dropped, since their faults are done. */
			memmove(c->mrc, c->mrc + level_reads, (c->mrc_n - level_reads) * sizeof *c->mrc);
			c->mrc_n -= level_reads;
			c->exc_vec = vec;
			c->exc_has_err = has_err;
			c->exc_err = err;
			c->exc_soft = soft;
			c->exc_ext = ext;
			c->exc_cr2 = cr2;
			c->sd_resume = true;
			return -1;
		}
		if (st == EMU_ST_EXIT && c->exit_reason == SVM_EXIT_BUS_LOCK) {
			/* fault-like bus-lock exit during delivery (a locked update of a descriptor or page
			 * table in UC memory): the event is still to be delivered on the next run */
			c->exc_vec = vec;
			c->exc_has_err = has_err;
			c->exc_err = err;
			c->exc_soft = soft;
			c->exc_ext = ext;
			c->exc_cr2 = cr2;
			c->sd_resume = true;
			return -1;
		}
		if (st != EMU_ST_FAULT || c->exc_vec < 0)
			return -1; /* internal error: run is filled */
		if (soft) {
			/* A fault while delivering INT n/INT3/INTO (e.g. #GP for a gate DPL below CPL) is a
			 * fault of the INT instruction: its saved RIP points at the INT (SDM Vol. 3 6.12.1.1). */
			c->rip -= c->exc_soft_len;
		}
		int nv = c->exc_vec;
		c->exc_vec = -1;
		int a = exc_class(vec), b = exc_class(nv);
		if (a == 3) {
			/* For the report (engine.c emu_shutdown_info): the event #DF's delivery raised, and
			 * the instruction at RIP, the one that faulted first (or, for an interrupt, the next). */
			if (c->sd_n < EMU_SD_MAX)
				c->sd_ev[c->sd_n++] = (uint16_t)nv;
			c->sd_nbytes = (uint8_t)emu_peek_insn(c, emu_code_lin(c, c->rip), c->sd_bytes);
			c->sd_mode = c->mode;
			c->run->exit_reason = KVM_EXIT_SHUTDOWN; /* triple fault */
			c->exit_pending = true;
			return -1;
		}
		if ((a == 1 && b == 1) || (a == 2 && b >= 1)) {
			vec = EMU_V_DF;
			err = 0;
			has_err = true;
		} else {
			vec = nv;
			err = c->exc_err;
			has_err = c->exc_has_err;
			cr2 = c->exc_cr2;
		}
		soft = false;
		ext = false;
	}
}

/* ---------------------------------------------------------------- INIT, SIPI */

static void real_mode_seg(struct kvm_segment *s, uint16_t sel, uint64_t base, uint8_t type)
{
	memset(s, 0, sizeof *s);
	s->selector = sel;
	s->base = base;
	s->limit = 0xffff;
	s->type = type;
	s->s = 1;
	s->present = 1;
}

/*
 * The processor state after INIT (SDM Vol. 3 10.1.1, Table 10-1, "INIT" column): real mode, CS:IP
 * F000:FFF0 with CS.base FFFF0000, the other segments 0 with limit FFFF, GDTR/IDTR base 0 limit
 * FFFF, CR0 60000010, EFLAGS 2, EDX the family/model/stepping (CPUID.1:EAX), the other GPRs 0,
 * DR6/DR7 at their reset values, EFER 0. What INIT leaves unchanged stays: MSRs (PAT, APIC base...),
 * TSC. The pending event and the monitor-visible state of an exit are dropped.
 */
void emu_init_state(struct emu_vcpu *c)
{
	uint32_t id[4];
	emu_cpuid(c, 1, 0, id);
	memset(c->r, 0, sizeof c->r);
	c->r[EMU_RDX] = id[0];
	c->rip = 0xfff0;
	c->rflags = EMU_RF_FIXED;
	c->lf_k = 0;
	real_mode_seg(&c->seg[EMU_CS], 0xf000, 0xffff0000, 0xb);
	for (int s = 0; s < EMU_NSEG; s++)
		if (s != EMU_CS)
			real_mode_seg(&c->seg[s], 0, 0, 3);
	real_mode_seg(&c->tr, 0, 0, 0xb);
	c->tr.s = 0;
	real_mode_seg(&c->ldt, 0, 0, 2);
	c->ldt.s = 0;
	c->gdt = (struct emu_dtable){ 0, 0xffff };
	c->idt = (struct emu_dtable){ 0, 0xffff };
	c->cr0 = CR0_ET | CR0_NW | CR0_CD;
	c->cr2 = c->cr3 = c->cr4 = c->cr8 = c->efer = 0;
	memset(c->dr, 0, sizeof c->dr);
	c->dr[6] = 0xffff0ff0;
	c->dr[7] = 0x400;
	emu_dr7_written(c);
	c->exc_vec = -1;
	c->sd_resume = false; /* a delivery INIT dropped is not resumed */
	emu_tlb_flush(c);
	emu_xep_bump(c); /* and every code epoch: a new CPU */
	emu_update_mode(c);
}

/*
 * A Startup IPI with vector `vector` received in the wait-for-SIPI state (SDM Vol. 3 10.4.4.1,
 * "Typical BSP Initialization Sequence"; 10.4.3 / Table 10-1): the INIT state, then real mode at
 * CS selector vector << 8, CS.base vector << 12, IP 0: the trampoline at physical vector * 4 KiB.
 */
void emu_enter_real_mode_sipi(struct emu_vcpu *c, uint8_t vector)
{
	emu_init_state(c);
	c->seg[EMU_CS].selector = (uint16_t)(vector << 8);
	c->seg[EMU_CS].base = (uint64_t)vector << 12;
	c->rip = 0;
	emu_update_mode(c);
}
