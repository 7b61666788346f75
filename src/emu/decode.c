/* SPDX-License-Identifier: MIT */
/*
 * Decoding with Zydis into blocks of struct emu_insn, and the per-vCPU decode cache keyed by
 * (guest-physical address, decode mode), validated by per-page write generations (see emu.h).
 * Zydis is called only here, only when a block is (re)decoded: never on the hot path.
 */
#include <stdio.h>
#include <stdlib.h>

#include "emu/emu.h"
#include "emu/xlate.h"

#define EMU_BLOCK_COPY 1024 /* > EMU_BLOCK_MAX * 15 */
_Static_assert(EMU_BLOCK_COPY > EMU_BLOCK_MAX * 15, "a block fits in the copy");

int emu_h_sentinel(struct emu_vcpu *c, const struct emu_insn *i)
{
	(void)c;
	(void)i;
	return EMU_ST_SENTINEL;
}

/* An instruction not wholly within CS's limit (decode_block): #GP(0) (SDM Vol. 3 5.3) */
static int h_cs_limit(struct emu_vcpu *c, const struct emu_insn *i)
{
	(void)i;
	return emu_raise_err(c, EMU_V_GP, 0);
}

int emu_decoder_init(struct emu_vcpu *c)
{
	if (ZYAN_FAILED(ZydisDecoderInit(&c->dec64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)) ||
	    ZYAN_FAILED(ZydisDecoderInit(&c->dec32, ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_STACK_WIDTH_32)) ||
	    ZYAN_FAILED(ZydisDecoderInit(&c->decl32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32)) ||
	    ZYAN_FAILED(ZydisDecoderInit(&c->dec16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16)))
		return -1;
	c->arena = malloc(EMU_ARENA_BYTES);
	if (c->vm->cfg.translate && emu_xlate_init(c))
		return -1;
	emu_bcache_flush(c);
	return c->arena ? 0 : -1;
}

/* gpa ~0 equals no TLB entry's gpa | offset, so an empty jump-cache entry never matches */
struct emu_block emu_jc_none = { .gpa = ~0ull, .gpa2 = ~0ull };

void emu_bcache_flush(struct emu_vcpu *c)
{
	memset(c->bcache, 0, sizeof c->bcache);
	for (unsigned k = 0; k < EMU_JC_SIZE; k++)
		c->jc[k] = (struct emu_jc){ ~0ull, &emu_jc_none, 0, 0xff };
	emu_xep_bump(c);
	c->arena_used = 0;
	emu_xlate_flush(c); /* translations live as long as their blocks */
}

static unsigned bucket(uint64_t gpa, unsigned mode)
{
	uint64_t h = (gpa ^ (gpa >> 13) ^ ((uint64_t)mode << 7)) * 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 40) & (EMU_BCACHE_BUCKETS - 1);
}

static bool block_valid(struct emu_vcpu *c, const struct emu_block *b)
{
	(void)c;
	if (atomic_load_explicit(b->genp, memory_order_acquire) != b->gen)
		return false;
	return !b->genp2 || atomic_load_explicit(b->genp2, memory_order_acquire) == b->gen2;
}

/* The decoder of decode mode `mode` (emu_update_mode): 16-bit code (CS.D = 0: real mode, 16-bit
 * protected mode) decodes with 16-bit default operand and address sizes, 66/67 switching to 32. */
const ZydisDecoder *emu_decoder(const struct emu_vcpu *c, unsigned mode)
{
	switch (mode) {
	case 0: return &c->dec64;
	case 1: return &c->dec32;
	case 2: return &c->decl32; /* legacy protected mode, 32-bit code */
	default: return &c->dec16;
	}
}

/* Where an instruction fetch from linear lin goes: the TLB's entry, else the walk (whose fault is
 * the fetch's); code in MMIO is an internal error. 0, or that status. */
static int fetch_at(struct emu_vcpu *c, uint64_t lin, uint64_t *gpa, uint8_t **hva)
{
	const struct emu_tlb_entry *e = emu_tlbe(c, lin);
	if (likely(e->tag_x == (lin & ~0xfffull))) {
		*gpa = e->gpa | (lin & 0xfff);
		*hva = (uint8_t *)(uintptr_t)(lin + (uint64_t)e->addend);
		return 0;
	}
	int s = emu_fetch_xlat(c, lin, gpa, hva);
	if (!s && !*hva)
		s = emu_internal_error(c, "instruction fetch from MMIO");
	return s;
}

/* Decodes a block starting at linear emu_code_lin(c, c->rip) = guest-physical gpa (host hva). */
static struct emu_block *decode_block(struct emu_vcpu *c, uint64_t gpa, const uint8_t *hva, int *st)
{
	size_t need = sizeof(struct emu_block) + (EMU_BLOCK_MAX + 1) * sizeof(struct emu_insn) +
		      EMU_BLOCK_COPY; /* the block's bytes are kept (emu_block_bytes) */
	if (c->arena_used + need > EMU_ARENA_BYTES || (c->xl && !emu_xlate_room(c)))
		emu_bcache_flush(c); /* full: flush everything and refill */
	struct emu_block *b = (struct emu_block *)(c->arena + c->arena_used);

	uint8_t buf[0x1000 + 16];
	unsigned off = gpa & 0xfff, avail = 0x1000 - off;
	/* mark and read the generation before copying the bytes: a write after the copy is then seen */
	b->gpa = gpa;
	b->gpa2 = ~0ull;
	b->mode = c->mode;
	b->gen = emu_mark_code(c, gpa);
	b->genp = emu_page_gen_ptr(c->vm, gpa);
	b->gen2 = 0;
	b->genp2 = NULL;
	b->hva = hva;
	b->hva2 = NULL;
	/* Only what a block can hold (EMU_BLOCK_MAX instructions of at most 15 bytes), not the whole
	 * rest of the page; aligned stores of other vCPUs are seen whole (no torn instruction). */
	unsigned ncopy = avail < EMU_BLOCK_COPY ? avail : EMU_BLOCK_COPY;
	emu_guest_copy_in(buf, hva, ncopy);

	const ZydisDecoder *dec = emu_decoder(c, c->mode);
	unsigned pos = 0, n = 0;
	bool second = false;
	/* A checked CS (emu_seg_lin): the bytes up to its limit are all the block may decode (SDM
	 * Vol. 3 5.3: fetching beyond it is #GP(0)); emu_block_get() made sure RIP is within it. */
	uint64_t lim = (c->seg_check & (1u << EMU_CS)) ? (uint64_t)c->seg[EMU_CS].limit - c->rip + 1 : ~0ull;
	b->lim_cut = 0;
	while (n < EMU_BLOCK_MAX) {
		ZydisDecodedInstruction zi;
		ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
		unsigned have = lim < ncopy ? (unsigned)lim : ncopy;
		ZyanStatus zs = ZydisDecoderDecodeFull(dec, buf + pos, have - pos, &zi, zo);
		if (zs == ZYDIS_STATUS_NO_MORE_DATA && lim <= ncopy) {
			/* the limit: the block ends before the instruction that crosses it, or that
			 * instruction, first, raises #GP(0) (nothing beyond the limit is fetched) */
			b->lim_cut = 1;
			if (n > 0)
				break;
			struct emu_insn *i = &b->insn[n++];
			memset(i, 0, sizeof *i);
			i->len = 1;
			i->fn = h_cs_limit;
			break;
		}
		if (zs == ZYDIS_STATUS_NO_MORE_DATA && ncopy < avail)
			break; /* the copy's end (n > 0: it holds more than EMU_BLOCK_MAX - 1 instructions) */
		if (zs == ZYDIS_STATUS_NO_MORE_DATA && !second && avail - pos < 15) {
			if (n > 0)
				break; /* the straddling instruction starts the next block */
			uint64_t lin2 = ((emu_code_lin(c, c->rip) & ~0xfffull) + 0x1000) & c->lin_mask, gpa2;
			uint8_t *hva2;
			int s = fetch_at(c, lin2, &gpa2, &hva2);
			if (s) {
				*st = s;
				return NULL;
			}
			second = true;
			b->gpa2 = gpa2 & ~0xfffull;
			b->gen2 = emu_mark_code(c, gpa2);
			b->genp2 = emu_page_gen_ptr(c->vm, gpa2);
			b->hva2 = hva2;
			emu_guest_copy_in(buf + avail, hva2, 16);
			avail += 16;
			ncopy = avail;
			continue;
		}
		struct emu_insn *i = &b->insn[n++];
		memset(i, 0, sizeof *i);
		i->idx = (uint8_t)(n - 1);
		int sel;
		if (ZYAN_FAILED(zs)) {
			/* undefined opcode, LOCK where it is not allowed, too long: #UD (SDM Vol. 2 2.4, "LOCK") */
			i->len = 1;
			i->fn = emu_h_ud;
			sel = EMU_SEL_END;
		} else {
			sel = emu_select(c, &zi, zo, i);
			if (sel == EMU_SEL_BAD) {
				memset(i, 0, sizeof *i);
				i->len = zi.length;
				i->mnem = (uint16_t)zi.mnemonic;
				i->fn = emu_h_unimpl;
				sel = EMU_SEL_END;
			}
		}
		if ((i->flg & EMU_I_FIRST) && n > 1) {
			n--; /* it begins the next block (lazy flags: exec.c) */
			break;
		}
		pos += i->len;
		if (sel == EMU_SEL_END || pos >= 0x1000 - off)
			break;
	}
	struct emu_insn *s = &b->insn[n];
	memset(s, 0, sizeof *s);
	s->fn = emu_h_sentinel;
	b->n = (uint16_t)n;
	b->flags_exact = n && (b->insn[0].flg & EMU_I_FIRST);
	b->entry = c->xl ? emu_xlate_cold : b->insn[0].fn; /* translated once hot (xlate.c) */
	b->chain = c->xl ? emu_xlate_chain_stub(c) : NULL;
	b->heat = 0;
	/* the bytes decoded now: compared with memory once per run (block_seen), and what the
	 * translator translates */
	memcpy(emu_block_bytes(b), buf, pos);
	b->nbytes = (uint16_t)pos;
	b->run_seq = c->run_seq;
	c->arena_used += (sizeof(struct emu_block) + (n + 1) * sizeof(struct emu_insn) + pos + 63) & ~(size_t)63;
	return b;
}

/*
 * Whether block b may run in this run(): memory still holds the bytes it was decoded from. Write
 * generations see every store the GUEST makes; the HOST (the monitor, which owns guest RAM:
 * KVM_SET_USER_MEMORY_REGION) writes it directly, unseen. KVM keeps no decoded code, so after a
 * monitor wrote a new program and calls KVM_RUN again the guest runs the new bytes. So every run()
 * moves c->run_seq and the exec epoch c->xep (no jump-cache entry, no chaining: every block comes
 * through emu_block_get), and a block first met in a run compares its kept bytes with memory once.
 * That costs nothing on the hot path (bench/callgrind.sh: 31.4 host instructions per guest
 * instruction before and after) and one compare per block per exit (the exit-bound `flood` guest:
 * ~500 host instructions more per exit, on ~1400). A host write while the vCPU runs is seen at its
 * next run(): what SDM Vol. 3 8.1.3 asks of cross-modifying code (the writer tells the executing
 * processor, which serialises: here, the exit and run() a monitor needs to tell its vCPU anything).
 */
static bool block_seen(struct emu_vcpu *c, struct emu_block *b)
{
	if (!block_valid(c, b))
		return false;
	unsigned n1 = 0x1000 - (unsigned)(b->gpa & 0xfff);
	if (n1 > b->nbytes)
		n1 = b->nbytes;
	const uint8_t *ref = emu_block_bytes(b);
	if (!emu_guest_same(b->hva, ref, n1) || (n1 < b->nbytes && !emu_guest_same(b->hva2, ref + n1, b->nbytes - n1)))
		return false;
	b->run_seq = c->run_seq;
	return true;
}

/*
 * Whether block b, found by the guest-physical address of its first byte, is the one to run at
 * linear address lin: a block whose first instruction straddles into the next page (such an
 * instruction starts its block, decode_block) is only if that page still translates to the block's
 * second page -- a remap of the next page alone, the first unchanged, must fetch the new bytes
 * (QEMU's tb_htable_lookup compares both pages too). *gpa2: that page's translation once made (1:
 * not yet). 1: it is; 0: it is not; -1: translating the page faulted, *st set, as the fetch of the
 * block's instruction 0 would.
 */
static int second_page_is(struct emu_vcpu *c, const struct emu_block *b, uint64_t lin, uint64_t *gpa2, int *st)
{
	if (b->gpa2 == ~0ull)
		return 1;
	if (*gpa2 == 1) {
		uint8_t *hva2;
		int s = fetch_at(c, ((lin & ~0xfffull) + 0x1000) & c->lin_mask, gpa2, &hva2);
		if (s) {
			*st = s;
			return -1;
		}
	}
	return *gpa2 == b->gpa2;
}

enum { FIT_FAULT = -1, FIT_OTHER, FIT_OK, FIT_STALE };

/* What a cached block of the looked-up guest-physical address and mode is for linear address lin:
 * FIT_OK to run; FIT_OTHER, another second page (second_page_is); FIT_STALE, cut at a CS limit,
 * beyond the checked CS's, or its bytes changed; FIT_FAULT, *st set. */
static int block_fits(struct emu_vcpu *c, struct emu_block *b, uint64_t lin, bool cs_checked, uint64_t *gpa2,
		      int *st)
{
	int sp = second_page_is(c, b, lin, gpa2, st);
	if (sp <= 0)
		return sp < 0 ? FIT_FAULT : FIT_OTHER;
	bool in_limit = !b->lim_cut && (!cs_checked || c->rip + b->nbytes - 1 <= c->seg[EMU_CS].limit);
	if (likely(in_limit) && likely(b->run_seq == c->run_seq ? block_valid(c, b) : block_seen(c, b)))
		return FIT_OK;
	return FIT_STALE;
}

/* The block at RIP: from the cache if still valid, else decoded now. NULL with *st set on a fetch
 * fault or an internal error. */
struct emu_block *emu_block_get(struct emu_vcpu *c, int *st)
{
	uint64_t gpa;
	uint8_t *hva;
	if (unlikely(c->mode == EMU_MODE_V86)) {
		/* no block has this mode: the jump cache never gets here first */
		*st = emu_internal_error(c, "virtual-8086 mode is not implemented");
		return NULL;
	}
	/* A checked CS (emu_seg_lin; the jump cache was emptied when it was loaded): RIP within its
	 * limit before anything is fetched (#GP(0), SDM Vol. 3 5.3), and a cached block only if it
	 * lies within the limit and was not cut by another one */
	bool cs_checked = c->seg_check & (1u << EMU_CS);
	if (unlikely(cs_checked) && c->rip > c->seg[EMU_CS].limit) {
		*st = emu_raise_err(c, EMU_V_GP, 0);
		return NULL;
	}
	uint64_t lin = emu_code_lin(c, c->rip);
	int s = fetch_at(c, lin, &gpa, &hva);
	if (s) {
		*st = s;
		return NULL;
	}
	unsigned h = bucket(gpa, c->mode);
	struct emu_block **pp = &c->bcache[h];
	struct emu_jc *j = &c->jc[emu_jc_index(lin)];
	/* The jump cache's own block for this linear address first, though its epoch has moved: the
	 * same guest-physical address and mode make it the block the hash chain would give (or one as
	 * good: unlinked only when invalid or cut, which the same tests below catch), and it is alive
	 * (the decode-cache flush empties the jump cache). Three in four lookups of a Linux boot are
	 * such a block after an epoch moved (a TLB flush, a run entry), and walking the chain to it cost
	 * a cache miss or two each (perf: 80 % of this function's samples). */
	struct emu_block *jb = j->b;
	uint64_t gpa2 = 1;
	if (j->lin == lin && jb->gpa == gpa && jb->mode == c->mode) {
		int fit = block_fits(c, jb, lin, cs_checked, &gpa2, st);
		if (fit == FIT_FAULT)
			return NULL;
		if (fit == FIT_OK) {
			*j = (struct emu_jc){ lin, jb, c->xep, emu_jc_chain_mode(jb) };
			return jb;
		}
	}
	for (struct emu_block *b = *pp; b; pp = &b->next, b = b->next) {
		if (b->gpa == gpa && b->mode == c->mode) {
			int fit = block_fits(c, b, lin, cs_checked, &gpa2, st);
			if (fit == FIT_FAULT)
				return NULL;
			if (fit == FIT_OTHER)
				continue; /* the same first page, another second one: another block */
			if (fit == FIT_OK) {
				*j = (struct emu_jc){ lin, b, c->xep, emu_jc_chain_mode(b) };
				return b;
			}
			*pp = b->next; /* stale: unlink (its arena space is reclaimed at the next flush) */
			break;
		}
	}
	struct emu_block *b = decode_block(c, gpa, hva, st);
	if (!b)
		return NULL;
	/* The jump cache is validated by the exec epoch, not by generations: its entry must carry the
	 * epoch of the moment the generation was read (now: decode_block acts on no code epoch), so that
	 * a write another vCPU committed after that read -- and whose code epoch the check below may
	 * act on -- invalidates it. With the epoch after the check, a block decoded from the old bytes
	 * would stay in the jump cache for good. */
	uint32_t xep_at_gen = c->xep;
	/* Its page may just have become a code page: drop this vCPU's write permissions now, before the
	 * block runs, so that a write to it takes the slow path (SMC detection); the other vCPUs did
	 * the same before their next block (emu_mark_code). At a block boundary: may park. */
	if (atomic_load_explicit(&c->vm->sync, memory_order_acquire) != c->seen_sync)
		emu_sync_slow(c);
	b->next = c->bcache[h];
	c->bcache[h] = b;
	*j = (struct emu_jc){ lin, b, xep_at_gen, emu_jc_chain_mode(b) };
	return b;
}
