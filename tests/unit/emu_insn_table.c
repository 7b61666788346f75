/* SPDX-License-Identifier: MIT */
/*
 * emu_insn_table: the integer instruction table (src/emu/insn.def) against Zydis and CPUID.
 *
 * Every encoding of the one-byte, 0F, 0F 38, 0F 3A and VEX 0F 38 maps (prefixes none/66/F2/F3/67/REX.W,
 * every register ModRM byte and each reg field with a memory operand, with and without LOCK) is decoded by
 * Zydis in 64-bit and 32-bit code, and every decoded mnemonic with a row goes through emu_select:
 *   - every row is reached and gets a real handler for at least one form (not NULL, not
 *     "unimplemented"): a row cannot name a mnemonic the engine does not run;
 *   - R_LOCK: the row's mnemonic is one Zydis accepts LOCK on (Zydis's tables follow the SDM's
 *     "LOCK" list) and its LOCK forms have a memory destination that the instruction reads and
 *     writes (a read-modify-write), and emu_select gives them a handler; a row without R_LOCK has
 *     no encoding Zydis decodes with LOCK;
 *   - R_END forms, and every form of Zydis's branch categories but Jcc (JMP, CALL, RET, INT, IRET,
 *     SYSCALL, SYSRET), end their block (emu_select returns EMU_SEL_END); R_FIRST forms, and every form
 *     whose handler is one of system.c's (emu.h), begin their block (EMU_I_FIRST);
 *   - R_FLAT: a [rax] form in 64-bit mode gets a handler (the lin_flat variant) other than its
 *     RIP-relative twin's iff the row says R_FLAT; with an FS operand too iff the operand is an
 *     address computation (Zydis AGEN: LEA), where no segment base applies;
 *   - sel_fn-style rows name their handler, the others do not;
 *   - FEATURE: the maps are decoded under both vendors' CPUID (emu_cpuid, Intel and AMD models);
 *     a row's forms run (a handler other than #UD) under a vendor iff that vendor's CPUID sets the
 *     row's bit, or the row says R_HINT (a hint that runs as a NOP either way): an instruction that
 *     runs without its feature bit fails, and so does one whose advertised bit gives only #UD.
 * Oracle: Zydis's decoder (mnemonic, LOCK acceptance, operand actions) and the CPUID bit positions
 * of the SDM's CPUID table (insn.h EMU_FEATURES).
 */
#include "emu_harness.h"
#include "emu/insn.h"

/* system.c's handlers (emu.h): they read c->rflags as is and so must begin a block */
static emu_fn *const sys_handlers[] = {
	emu_h_int, emu_h_int3, emu_h_int1, emu_h_into, emu_h_iret, emu_h_syscall, emu_h_sysret, emu_h_ljmp_ptr,
	emu_h_ljmp_m, emu_h_lcall_ptr, emu_h_lcall_m, emu_h_lret, emu_h_mov_sreg_r, emu_h_mov_sreg_m,
	emu_h_pop_sreg, emu_h_lgdt, emu_h_lidt, emu_h_sgdt, emu_h_sidt, emu_h_ltr, emu_h_lldt, emu_h_str,
	emu_h_sldt, emu_h_mov_cr_r, emu_h_mov_r_cr, emu_h_mov_dr_r, emu_h_mov_r_dr, emu_h_rdmsr,
	emu_h_wrmsr, emu_h_cpuid, emu_h_rdtsc, emu_h_rdtscp, emu_h_rdpid, emu_h_swapgs, emu_h_invlpg,
	emu_h_clts, emu_h_smsw_r, emu_h_lmsw, emu_h_verr, emu_h_verw,
};

static bool is_sys(emu_fn *fn)
{
	for (size_t k = 0; k < sizeof sys_handlers / sizeof sys_handlers[0]; k++)
		if (sys_handlers[k] == fn)
			return true;
	return false;
}

struct st {
	struct emu_vcpu *c;
	unsigned decoded, selected;
	bool handled[ZYDIS_MNEMONIC_MAX_VALUE + 1];   /* a row's form got a handler */
	bool zy_lock[ZYDIS_MNEMONIC_MAX_VALUE + 1];   /* Zydis decoded it with LOCK */
	bool flat[ZYDIS_MNEMONIC_MAX_VALUE + 1];      /* a memory form got a lin_flat variant */
	bool ran[2][ZYDIS_MNEMONIC_MAX_VALUE + 1];    /* [AMD] a form got a handler other than #UD */
	unsigned fails;
};

/* The oracle for FEATURE: the bit at the SDM's CPUID position (insn.h EMU_FEATURES) as the guest
 * reads it (emu_cpuid under the VM's vendor) */
static bool cpuid_has(struct emu_vcpu *c, unsigned f)
{
	uint32_t o[4];
	emu_cpuid(c, emu_features[f].leaf, 0, o);
	return (o[emu_features[f].reg & 3] >> emu_features[f].bit) & 1;
}

static void fail(struct st *s, const uint8_t *b, unsigned len, const char *what, ZydisMnemonic m)
{
	if (s->fails++ >= 40)
		return;
	char hex[64] = "";
	for (unsigned k = 0; k < len && k < 15; k++)
		sprintf(hex + 3 * k, "%02x ", b[k]);
	fprintf(stderr, "FAIL %s (%s): %s\n", ZydisMnemonicGetString(m), hex, what);
	t_failures++;
}

/* emu_select on a copy of the decoded form whose memory operand is changed by `how`: 1 the base
 * becomes RIP (RIP-relative: never lin_flat), 2 the segment becomes FS (lin_flat only for R_FLATANY) */
static emu_fn *reselect(struct st *s, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo, int how)
{
	ZydisDecodedOperand z[ZYDIS_MAX_OPERAND_COUNT];
	memcpy(z, zo, sizeof z);
	for (unsigned k = 0; k < zi->operand_count; k++)
		if (z[k].type == ZYDIS_OPERAND_TYPE_MEMORY) {
			if (how == 1)
				z[k].mem.base = ZYDIS_REGISTER_RIP;
			else
				z[k].mem.segment = ZYDIS_REGISTER_FS;
		}
	struct emu_insn i[2];
	memset(i, 0, sizeof i);
	return emu_select(s->c, zi, z, &i[0]) == EMU_SEL_BAD ? NULL : i[0].fn;
}

/* The R_FLAT column: in 64-bit mode, a [rax] form's handler differs from its RIP-relative twin's
 * (its lin_flat variant) only if the row has R_FLAT; with an FS operand it still differs iff the
 * operand is an address computation only (Zydis AGEN: LEA uses no segment, SDM Vol. 2 "LEA"). */
static void flat_check(struct st *s, const uint8_t *b, unsigned len, const ZydisDecodedInstruction *zi,
		       const ZydisDecodedOperand *zo, emu_fn *fn)
{
	const struct emu_row *row = emu_insn_row(zi->mnemonic);
	bool mem = false, agen = false;
	for (unsigned k = 0; k < zi->operand_count; k++)
		if (zo[k].type == ZYDIS_OPERAND_TYPE_MEMORY && zo[k].mem.type != ZYDIS_MEMOP_TYPE_MIB &&
		    zo[k].mem.base == ZYDIS_REGISTER_RAX && zo[k].mem.segment == ZYDIS_REGISTER_DS) {
			mem = true;
			agen |= zo[k].mem.type == ZYDIS_MEMOP_TYPE_AGEN;
		}
	if (s->c->mode != EMU_MODE_64 || !mem || (zi->attributes & ZYDIS_ATTRIB_HAS_LOCK))
		return;
	emu_fn *rip = reselect(s, zi, zo, 1), *fs = reselect(s, zi, zo, 2);
	if (!rip || !fs)
		return;
	if (fn != rip) {
		s->flat[zi->mnemonic] = true;
		if (!(row->flags & R_FLAT))
			fail(s, b, len, "a lin_flat variant without R_FLAT", zi->mnemonic);
		if ((fs != rip) != agen)
			fail(s, b, len, agen ? "an address computation without lin_flat under FS" :
				"lin_flat (no segment base) with an FS operand", zi->mnemonic);
	}
}

static void one(struct st *s, const ZydisDecoder *dec, unsigned mode, const uint8_t *b, unsigned len)
{
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(dec, b, len, &zi, zo)))
		return;
	s->decoded++;
	const struct emu_row *row = emu_insn_row(zi.mnemonic);
	bool lock = zi.attributes & ZYDIS_ATTRIB_HAS_LOCK;
	if (lock)
		s->zy_lock[zi.mnemonic] = true;
	if (!row->sel)
		return;
	if (lock) {
		/* a locked form: memory destination, read and written */
		if (zo[0].type != ZYDIS_OPERAND_TYPE_MEMORY || (zo[0].actions & ZYDIS_OPERAND_ACTION_MASK_READ) == 0 ||
		    (zo[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) == 0)
			fail(s, b, len, "Zydis accepts LOCK on a form that is not a memory read-modify-write", zi.mnemonic);
		if (!(row->flags & R_LOCK))
			fail(s, b, len, "Zydis accepts LOCK but the row has no R_LOCK", zi.mnemonic);
	}
	struct emu_insn i[2];
	memset(i, 0, sizeof i);
	s->c->mode = (uint8_t)mode;
	int sel = emu_select(s->c, &zi, zo, &i[0]);
	if (sel == EMU_SEL_BAD || i[0].fn == emu_h_unimpl || !i[0].fn)
		return; /* a form of the mnemonic this table does not handle (or fpu.c's: MOVSD xmm) */
	if (i[0].fn != emu_h_ud && row->feature != FEAT_NONE && row->feature < FEAT_COUNT) {
		bool amd = s->c->vm->cfg.cpu_vendor_amd;
		s->ran[amd][zi.mnemonic] = true;
		if (!(row->flags & R_HINT) && !cpuid_has(s->c, row->feature))
			fail(s, b, len, amd ? "runs although the AMD model's CPUID does not set its feature" :
				"runs although the Intel model's CPUID does not set its feature", zi.mnemonic);
	}
	if (lock && i[0].fn == emu_h_ud)
		fail(s, b, len, "a LOCK form Zydis accepts raises #UD", zi.mnemonic);
	if (i[0].fn != emu_h_ud || !lock)
		s->handled[zi.mnemonic] = true;
	s->selected++;
	if ((row->flags & R_END) && sel != EMU_SEL_END)
		fail(s, b, len, "R_END row, but the form does not end its block", zi.mnemonic);
	switch (zi.meta.category) {
	case ZYDIS_CATEGORY_UNCOND_BR: case ZYDIS_CATEGORY_CALL: case ZYDIS_CATEGORY_RET:
	case ZYDIS_CATEGORY_INTERRUPT: case ZYDIS_CATEGORY_SYSCALL: case ZYDIS_CATEGORY_SYSRET:
		/* BOUND is INTERRUPT for Zydis: it raises #BR as any fault, or goes on */
		if (sel != EMU_SEL_END && zi.mnemonic != ZYDIS_MNEMONIC_BOUND)
			fail(s, b, len, "a branch that does not end its block", zi.mnemonic);
		break;
	default:
		break;
	}
	flat_check(s, b, len, &zi, zo, i[0].fn);
	if ((row->flags & R_FIRST) && !(i[0].flg & EMU_I_FIRST) && i[0].fn != emu_h_ud)
		fail(s, b, len, "R_FIRST row, but the form does not begin its block", zi.mnemonic);
	if (is_sys(i[0].fn) && !(i[0].flg & EMU_I_FIRST))
		fail(s, b, len, "a system.c handler that does not begin its block", zi.mnemonic);
}

/* Each opcode of a map with prefixes, every register ModRM byte (mod 3: also the 0F 01 forms such
 * as CLAC, RDTSCP) and each reg field with a memory operand ([rax] / [eax]), followed by enough
 * zero bytes for any immediate or displacement. */
static void map(struct st *s, const ZydisDecoder *dec, unsigned mode, const uint8_t *esc, unsigned nesc)
{
	static const uint8_t pfx[][2] = { { 0 }, { 0x66 }, { 0xf2 }, { 0xf3 }, { 0x67 }, { 0x48 },
					  { 0x66, 0x48 } };
	static const unsigned npfx[] = { 0, 1, 1, 1, 1, 1, 2 };
	for (unsigned lock = 0; lock < 2; lock++)
		for (unsigned p = 0; p < 7; p++) {
			if (mode != EMU_MODE_64 && p >= 5)
				continue; /* 48 is DEC eAX outside 64-bit mode */
			for (unsigned op = 0; op < 256; op++)
				for (unsigned m = 0; m < 72; m++) {
					uint8_t b[16] = { 0 };
					unsigned n = 0;
					if (lock)
						b[n++] = 0xf0;
					for (unsigned k = 0; k < npfx[p]; k++)
						b[n++] = pfx[p][k];
					for (unsigned k = 0; k < nesc; k++)
						b[n++] = esc[k];
					b[n++] = (uint8_t)op;
					b[n++] = (uint8_t)(m < 64 ? 0xc0 | m : (m & 7) << 3);
					one(s, dec, mode, b, sizeof b);
				}
		}
}

/* VEX 0F 38 (BMI1): C4 RXB.map W.vvvv.L.pp opcode ModRM */
static void vex0f38(struct st *s, const ZydisDecoder *dec, unsigned mode)
{
	for (unsigned w = 0; w < 2; w++)
		for (unsigned op = 0; op < 256; op++)
			for (unsigned m = 0; m < 16; m++) {
				uint8_t b[16] = { 0xc4, 0xe2, (uint8_t)(w << 7 | 0x78), (uint8_t)op,
						  (uint8_t)((m < 8 ? 0xc0 : 0x00) | (m & 7) << 3) };
				one(s, dec, mode, b, sizeof b);
			}
}

int main(void)
{
	struct t_vm t;
	t_init(&t);
	static struct st s;
	s.c = (struct emu_vcpu *)t.cpu;
	s.c->cr0 |= CR0_PE; /* VERR/VERW: protected mode */

	static const uint8_t e0f[] = { 0x0f }, e0f38[] = { 0x0f, 0x38 }, e0f3a[] = { 0x0f, 0x3a };
	struct { ZydisMachineMode zm; ZydisStackWidth sw; unsigned mode; } modes[] = {
		{ ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64, EMU_MODE_64 },
		{ ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_STACK_WIDTH_32, EMU_MODE_C32 },
	};
	for (unsigned k = 0; k < 4; k++) {
		s.c->vm->cfg.cpu_vendor_amd = k >= 2; /* FEATURE: each vendor's CPUID */
		ZydisDecoder dec;
		ZydisDecoderInit(&dec, modes[k & 1].zm, modes[k & 1].sw);
		map(&s, &dec, modes[k & 1].mode, NULL, 0);
		map(&s, &dec, modes[k & 1].mode, e0f, 1);
		map(&s, &dec, modes[k & 1].mode, e0f38, 2);
		map(&s, &dec, modes[k & 1].mode, e0f3a, 2);
		vex0f38(&s, &dec, modes[k & 1].mode);
	}
	s.c->vm->cfg.cpu_vendor_amd = 0;

	/* per row: reached with a handler; LOCK as Zydis has it; columns consistent */
	unsigned nrows = 0, nlock = 0, nfirst = 0, nend = 0, nflat = 0, nfeat = 0;
	for (unsigned m = 0; m <= ZYDIS_MNEMONIC_MAX_VALUE; m++) {
		const struct emu_row *r = emu_insn_row((ZydisMnemonic)m);
		const char *name = ZydisMnemonicGetString((ZydisMnemonic)m);
		if (!r->sel)
			continue;
		nrows++;
		nlock += !!(r->flags & R_LOCK);
		nfirst += !!(r->flags & R_FIRST);
		nend += !!(r->flags & R_END);
		nflat += !!(r->flags & R_FLAT);
		nfeat += r->feature != FEAT_NONE;
		CHECK(s.handled[m], "%s: a row, but no encoding of it got a handler", name);
		CHECK(!!(r->flags & R_LOCK) == s.zy_lock[m], "%s: R_LOCK %d, Zydis decodes it with LOCK: %d", name,
		      !!(r->flags & R_LOCK), s.zy_lock[m]);
		CHECK(!(r->flags & R_FLATANY) || (r->flags & R_FLAT), "%s: R_FLATANY without R_FLAT", name);
		CHECK(!!(r->flags & R_FLAT) == s.flat[m], "%s: R_FLAT %d, a memory form got a lin_flat variant: %d",
		      name, !!(r->flags & R_FLAT), s.flat[m]);
		bool named = r->sel == sel_fn || r->sel == sel_mem || r->sel == sel_rm || r->sel == sel_int ||
			     r->sel == sel_iret || r->sel == sel_rdpid || r->sel == sel_verx || r->sel == sel_lar_lsl ||
			     r->sel == sel_inout ||
			     r->sel == sel_insouts;
		CHECK(named == (r->fn != NULL), "%s: the HANDLER column is %s but its select function %s",
		      name, r->fn ? "set" : "NOFN", named ? "installs it" : "picks its own");
		CHECK(r->feature < FEAT_COUNT, "%s: feature %u", name, r->feature);
		CHECK(!(r->flags & R_HINT) || r->feature != FEAT_NONE, "%s: R_HINT without a feature", name);
		if (r->feature == FEAT_NONE || r->feature >= FEAT_COUNT)
			continue;
		const struct emu_feature_bit *f = &emu_features[r->feature];
		static const char *const regs[] = { "EAX", "EBX", "ECX", "EDX" };
		for (int amd = 0; amd < 2; amd++) {
			uint32_t o[4];
			s.c->vm->cfg.cpu_vendor_amd = amd;
			emu_cpuid(s.c, f->leaf, 0, o);
			bool adv = (o[f->reg] >> f->bit) & 1;
			bool runs = adv || (r->flags & R_HINT);
			CHECK(s.ran[amd][m] == runs, "%s: CPUID %#x %s[%u] (%s) is %s under %s%s, but its forms %s",
			      name, f->leaf, regs[f->reg & 3], f->bit, f->name, adv ? "set" : "clear",
			      amd ? "AMD" : "Intel", (r->flags & R_HINT) ? " (R_HINT)" : "",
			      s.ran[amd][m] ? "run" : "raise #UD");
		}
		s.c->vm->cfg.cpu_vendor_amd = 0;
	}
	printf("emu_insn_table: %u rows (%u R_LOCK, %u R_END, %u R_FIRST, %u R_FLAT, %u with a CPUID feature); "
	       "%u encodings decoded, %u selected by a row\n", nrows, nlock, nend, nfirst, nflat, nfeat, s.decoded,
	       s.selected);
	CHECK(nrows > 200, "only %u rows", nrows);
	t_fini(&t);
	return t_result("emu_insn_table");
}
