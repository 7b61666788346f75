/* SPDX-License-Identifier: MIT */
/*
 * Port I/O: IN OUT INS OUTS (the exit to the monitor, or the irqchip's ports).
 * The rules every handler follows, and where the other families are: exec.h.
 */
#include "emu/exec.h"

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
int h_in(ARGS)
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
int h_out(ARGS)
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

/*
 * INS/OUTS, with or without REP (SDM Vol. 2 "INS", "OUTS", "REP"). Each element goes where IN/OUT
 * would send it: the engine's 8259/8254 ports stay in the engine (emu_irq_pio), as KVM's in-kernel
 * devices take string I/O without an exit; an element for the monitor exits, ONE per exit (count
 * = 1; KVM may batch more -- documented). A REP instruction stays at its RIP until RCX reaches 0;
 * elements the engine takes go on in the same run, stopping between two (registers committed) for
 * a kick or the VM-wide word (rep_interrupt), a queued MMIO write, a served MMIO read or a stop
 * request, as the other string instructions do.
 */
static inline bool string_io_pause(struct emu_vcpu *c)
{
	return c->exit_pending || c->stop || c->mrc_n || rep_interrupt(c);
}

int h_ins(ARGS)
{
	TRY(io_allowed(c));
	unsigned asz = i->v, n = i->osz;
	uint64_t am = amask_of(asz);
	bool rep = i->flg & (EMU_I_REP | EMU_I_REPNE);
	uint16_t port = (uint16_t)c->r[EMU_RDX];
	for (;;) {
		if (rep && !(c->r[EMU_RCX] & am))
			return emu_next(c, i);
		uint64_t v = 0;
		bool engine = unlikely(c->vm->irqchip) && emu_irq_pio(c, port, false, (uint8_t *)&v, n);
		if (!engine) {
			if (!(c->pio_valid && c->pio_port == port && c->pio_size == n)) {
				c->pio_port = port;
				c->pio_size = n;
				io_exit(c, KVM_EXIT_IO_IN, port, n);
				return EMU_ST_EXIT;
			}
			memcpy(&v, c->pio_data, n);
		}
		uint64_t di = c->r[EMU_RDI] & am;
		TRY(emu_wr(c, emu_seg_lin(c, EMU_ES, di, n), n, v));
		if (!engine)
			c->pio_valid = false;
		set_areg(c, EMU_RDI, asz, di + ((c->rflags & EMU_DF) ? (uint64_t)-(int64_t)n : n));
		if (!rep)
			return emu_next(c, i);
		uint64_t cnt = ((c->r[EMU_RCX] & am) - 1) & am;
		set_areg(c, EMU_RCX, asz, cnt);
		if (!cnt)
			return emu_next(c, i);
		if (string_io_pause(c))
			return EMU_ST_EXIT; /* the next element when the instruction runs again */
	}
}

int h_outs(ARGS)
{
	TRY(io_allowed(c));
	unsigned asz = i->v, n = i->osz;
	uint64_t am = amask_of(asz);
	bool rep = i->flg & (EMU_I_REP | EMU_I_REPNE);
	uint16_t port = (uint16_t)c->r[EMU_RDX];
	for (;;) {
		if (rep && !(c->r[EMU_RCX] & am))
			return emu_next(c, i);
		uint64_t v, si = c->r[EMU_RSI] & am;
		TRY(emu_rd(c, emu_seg_lin(c, i->seg, si, n), n, &v));
		bool engine = unlikely(c->vm->irqchip) && emu_irq_pio(c, port, true, (uint8_t *)&v, n);
		if (!engine) {
			memcpy((uint8_t *)c->run + EMU_RUN_DATA_OFFSET, &v, n);
			io_exit(c, KVM_EXIT_IO_OUT, port, n);
		}
		set_areg(c, EMU_RSI, asz, si + ((c->rflags & EMU_DF) ? (uint64_t)-(int64_t)n : n));
		uint64_t cnt = 0;
		if (rep) {
			cnt = ((c->r[EMU_RCX] & am) - 1) & am;
			set_areg(c, EMU_RCX, asz, cnt);
		}
		if (!cnt) {
			if (!engine)
				c->stop = EMU_ST_END;
			return emu_next(c, i);
		}
		if (!engine || string_io_pause(c))
			return EMU_ST_EXIT; /* the next element when the instruction runs again */
	}
}

/* ---------------------------------------------------------------- selection (insn.def rows) */

/* IN OUT: port in DX (op 1) or imm8 (op 0); the row's handler */
int sel_inout(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	bool in = s->row->fn == h_in;
	const ZydisDecodedOperand *p = in ? &s->zo[1] : &s->zo[0];
	const ZydisDecodedOperand *d = in ? &s->zo[0] : &s->zo[1];
	i->osz = (uint8_t)(d->size / 8);
	if (p->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		i->op = 0;
		i->imm = p->imm.value.u & 0xff;
	} else {
		i->op = 1;
	}
	i->fn = s->row->fn;
	return 0;
}

/* INS OUTS (op: the element size); the row's handler */
int sel_insouts(struct emu_sel *s)
{
	struct emu_insn *i = s->i;
	i->v = (uint8_t)(s->zi->address_width / 8);
	i->osz = s->row->op;
	i->seg = emu_src_seg(s->zi, s->zo);
	i->fn = s->row->fn;
	return 0;
}
