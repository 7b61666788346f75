/* SPDX-License-Identifier: MIT */
/*
 * The one guest-memory access path of the emu engine: software TLB, page walk (SDM Vol. 3 ch. 4),
 * MMIO exits with KVM's completion semantics, self-modifying-code detection, and emu_locked_rmw().
 * See emu.h for the design.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>

#include "emu/emu.h"

struct emu_xlat {
	uint64_t gpa;
	uint8_t *hva;     /* NULL: MMIO */
	uint8_t memtype;
};

/* ---------------------------------------------------------------- slots */

struct emu_slot *emu_slot_of(struct emu_vm *vm, uint64_t gpa)
{
	for (unsigned k = 0; k < vm->nslots; k++) {
		struct emu_slot *s = &vm->slots[k];
		if (s->size && gpa - s->gpa < s->size)
			return s;
	}
	return NULL;
}

uint8_t *emu_phys_ptr(struct emu_vm *vm, uint64_t gpa, uint64_t len)
{
	struct emu_slot *s = emu_slot_of(vm, gpa);
	if (!s || len > s->size - (gpa - s->gpa))
		return NULL;
	return s->hva + (gpa - s->gpa);
}

uint32_t emu_page_gen(struct emu_vm *vm, uint64_t gpa)
{
	struct emu_slot *s = emu_slot_of(vm, gpa);
	if (!s)
		return 0;
	return atomic_load_explicit(&s->page_gen[(gpa - s->gpa) >> 12], memory_order_acquire);
}

_Atomic uint32_t *emu_page_gen_ptr(struct emu_vm *vm, uint64_t gpa)
{
	struct emu_slot *s = emu_slot_of(vm, gpa);
	return s ? &s->page_gen[(gpa - s->gpa) >> 12] : NULL;
}

/*
 * Marks the page of gpa as holding decoded code and returns its write generation; the caller copies
 * the bytes afterwards (decode.c), so a write after that copy is seen as a new generation.
 *
 * When the page BECOMES a code page, every other vCPU may hold a writable TLB entry for it, through
 * which it would write without the slow path (no new generation: the block decoded here would stay
 * valid with stale bytes). So the transition happens inside the exclusive section: every other vCPU
 * is at a block boundary (its earlier writes are visible to the copy), and before its next block it
 * sees the new code epoch and drops its TLB's write permissions (a later write takes the slow path).
 *
 * A writer clears the mark before it stores and bumps the generation after (smc_write, smc_commit).
 * If that raced with this marking, the mark reads 0 after the generation was read: mark again (else
 * this block would be valid at the new generation while the page is unmarked and writable).
 */
uint32_t emu_mark_code(struct emu_vcpu *c, uint64_t gpa)
{
	struct emu_slot *s = emu_slot_of(c->vm, gpa);
	if (!s)
		return 0;
	uint64_t pg = (gpa - s->gpa) >> 12;
	for (;;) {
		if (!atomic_load_explicit(&s->page_code[pg], memory_order_acquire)) {
			emu_stw_begin(c);
			if (!atomic_exchange_explicit(&s->page_code[pg], 1, memory_order_acq_rel))
				atomic_fetch_add_explicit(&c->vm->sync, EMU_SYNC_EPOCH, memory_order_acq_rel);
			emu_stw_end(c);
		}
		uint32_t g = atomic_load_explicit(&s->page_gen[pg], memory_order_acquire);
		if (atomic_load_explicit(&s->page_code[pg], memory_order_acquire))
			return g;
	}
}

/* A write to a page blocks were decoded from (found by the slow path: the TLB never grants writing
 * to a code page): the mark goes until code is decoded there again, the current block ends after
 * this instruction, and once the instruction's store is done (emu_smc_commit, called by every writer)
 * the page gets a new generation (its blocks are stale) and the code epoch moves (every vCPU's jump
 * cache goes at its next block boundary). Bumping AFTER the store matters with several vCPUs: a
 * vCPU that sees the new generation (acquire) and decodes again sees the new bytes. */
static void smc_write(struct emu_vcpu *c, struct emu_slot *s, uint64_t gpa)
{
	uint64_t pg = (gpa - s->gpa) >> 12;
	if (atomic_load_explicit(&s->page_code[pg], memory_order_relaxed)) {
		atomic_store_explicit(&s->page_code[pg], 0, memory_order_release);
		if (c->smc_n == sizeof c->smc_gen / sizeof c->smc_gen[0])
			emu_smc_commit(c);
		c->smc_gen[c->smc_n++] = &s->page_gen[pg];
		c->stop = EMU_ST_END;
	}
}

void emu_smc_commit(struct emu_vcpu *c)
{
	for (unsigned k = 0; k < c->smc_n; k++)
		atomic_fetch_add_explicit(c->smc_gen[k], 1, memory_order_acq_rel);
	if (c->smc_n)
		atomic_fetch_add_explicit(&c->vm->sync, EMU_SYNC_EPOCH, memory_order_acq_rel);
	c->smc_n = 0;
}

#define SMC_COMMIT(c) do { if (unlikely((c)->smc_n)) emu_smc_commit(c); } while (0)

/* ---------------------------------------------------------------- SMP: the exclusive section */

/*
 * "Stop the world" for what cannot be one host atomic instruction: a contained bus lock (split or
 * UC locked operation without a host bus lock, BLVM_CAP_BUS_LOCK_CONTAIN), a locked operation split
 * across two guest pages that are not adjacent on the host, and a page becoming a code page.
 *
 * Protocol (Dekker-style on seq_cst atomics):
 *   owner:  state = OUT; lock stw_lock; sync += 1; wait until every other vCPU's state != RUN;
 *           ... exclusive work ...; sync -= 1; unlock; enter (below).
 *   enter:  loop { state = RUN; if (!(sync & STW)) go; state = OUT; wait until !(sync & STW) }
 *   park:   at a block boundary when sync & STW: state = PARKED; wait until !(sync & STW); enter.
 * Either the owner sees a vCPU's RUN (and waits for it to park or leave run()), or the vCPU sees the
 * request (and does not start). A vCPU outside run() is OUT: it may sleep in the monitor as long as
 * it likes, and cannot re-enter guest execution while a section is held. A would-be owner waits for
 * stw_lock as OUT, so two vCPUs containing at once serialise without deadlock. Blocks end at
 * instruction boundaries and are bounded (EMU_BLOCK_MAX, EMU_CHAIN_MAX chained), string instructions
 * look at vm->sync every EMU_REP_KICK_CHECK iterations, exits leave run(): every RUN vCPU parks
 * promptly. A kicked vCPU still parks first (the section is short), then sees its kick.
 * With one vCPU the section is empty: nobody else can touch guest memory.
 */
static inline void cpu_relax_n(unsigned *n)
{
	if (++*n < 64)
		__builtin_ia32_pause();
	else
		sched_yield(); /* more vCPU threads than host cores: let the one we wait for run */
}

void emu_vcpu_enter(struct emu_vcpu *c)
{
	struct emu_vm *vm = c->vm;
	for (;;) {
		atomic_store_explicit(&c->state, EMU_CS_RUN, memory_order_seq_cst);
		if (likely(!(atomic_load_explicit(&vm->sync, memory_order_seq_cst) & EMU_SYNC_STW)))
			return;
		atomic_store_explicit(&c->state, EMU_CS_OUT, memory_order_seq_cst);
		unsigned n = 0;
		while (atomic_load_explicit(&vm->sync, memory_order_acquire) & EMU_SYNC_STW)
			cpu_relax_n(&n);
	}
}

void emu_vcpu_leave(struct emu_vcpu *c)
{
	atomic_store_explicit(&c->state, EMU_CS_OUT, memory_order_release);
}

void emu_stw_begin(struct emu_vcpu *c)
{
	struct emu_vm *vm = c->vm;
	c->stw_held = atomic_load_explicit(&vm->nvcpus, memory_order_acquire) > 1;
	if (!c->stw_held)
		return;
	atomic_store_explicit(&c->state, EMU_CS_OUT, memory_order_seq_cst);
	pthread_mutex_lock(&vm->stw_lock);
	atomic_fetch_add_explicit(&vm->sync, 1, memory_order_seq_cst);
	for (unsigned k = 0; k < EMU_MAX_VCPUS; k++) {
		struct emu_vcpu *o = vm->vcpus[k];
		if (!o || o == c)
			continue;
		unsigned n = 0;
		while (atomic_load_explicit(&o->state, memory_order_seq_cst) == EMU_CS_RUN)
			cpu_relax_n(&n);
	}
}

void emu_stw_end(struct emu_vcpu *c)
{
	struct emu_vm *vm = c->vm;
	if (!c->stw_held)
		return;
	c->stw_held = false;
	atomic_fetch_sub_explicit(&vm->sync, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&vm->stw_lock);
	emu_vcpu_enter(c);
}

void emu_sync_slow(struct emu_vcpu *c)
{
	struct emu_vm *vm = c->vm;
	for (;;) {
		uint64_t s = atomic_load_explicit(&vm->sync, memory_order_acquire);
		if (s & EMU_SYNC_STW) {
			/* park: everything this vCPU wrote is visible to the owner (release) */
			atomic_store_explicit(&c->state, EMU_CS_PARKED, memory_order_seq_cst);
			unsigned n = 0;
			while (atomic_load_explicit(&vm->sync, memory_order_acquire) & EMU_SYNC_STW)
				cpu_relax_n(&n);
			emu_vcpu_enter(c);
			continue;
		}
		if (s != c->seen_sync) {
			/* a page became code, or code was written: no write may bypass the slow path now,
			 * and the jump cache (not validated by generations) goes */
			emu_tlb_drop_writes(c);
			emu_xep_bump(c);
			c->seen_sync = s;
		}
		return;
	}
}

/* ---------------------------------------------------------------- TLB */

void emu_tlb_flush_perms(struct emu_vcpu *c)
{
	for (unsigned k = 0; k < EMU_TLB_SIZE; k++)
		c->tlb[k].tag_r = c->tlb[k].tag_w = c->tlb[k].tag_x = 1;
	c->tlb_has_large = false;
	c->tlb_ac_n = 0;
	c->tlb_pk = 0;
}

void emu_tlb_flush(struct emu_vcpu *c)
{
	emu_tlb_flush_perms(c);
	emu_xep_bump_tlb(c); /* the jump cache's translations go with the TLB */
}

void emu_tlb_flush_page(struct emu_vcpu *c, uint64_t lin)
{
	/* An INVLPG inside a large page invalidates the whole large page (SDM Vol. 3 4.10.4.1); our
	 * entries are 4 KiB pieces of it, so flush everything once a large page was entered. */
	if (c->tlb_has_large) {
		emu_tlb_flush(c);
		return;
	}
	struct emu_tlb_entry *e = emu_tlbe(c, lin);
	e->tag_r = e->tag_w = e->tag_x = 1;
	emu_xep_bump_tlb(c); /* the jump cache's translations go with the TLB */
}

void emu_tlb_drop_writes(struct emu_vcpu *c)
{
	for (unsigned k = 0; k < EMU_TLB_SIZE; k++)
		c->tlb[k].tag_w = 1;
}

/* EFLAGS.AC is 0 with SMAP: the data tags of the entries filled while AC was 1 for a user-mode page
 * at CPL < 3 go (their instruction-fetch tags do not depend on AC). An entry refilled since for
 * another page merely misses once. */
void emu_tlb_drop_ac(struct emu_vcpu *c)
{
	if (c->tlb_ac_n > EMU_TLB_AC_MAX) {
		for (unsigned k = 0; k < EMU_TLB_SIZE; k++)
			c->tlb[k].tag_r = c->tlb[k].tag_w = 1;
	} else {
		for (unsigned k = 0; k < c->tlb_ac_n; k++)
			c->tlb[c->tlb_ac[k]].tag_r = c->tlb[c->tlb_ac[k]].tag_w = 1;
	}
	c->tlb_ac_n = 0;
}

/*
 * A new PKRU (WRPKRU, XRSTOR) or IA32_PKRS (WRMSR). The TLB caches rights with the key register's
 * value at the fill (walk() checks the key, a hit does not: no cost on the fast path), so when the
 * value changes and some entry's data rights were computed with it, every data tag goes; the
 * instruction-fetch tags stay (keys never apply to fetches, SDM Vol. 3 4.6.2). Dropping them all
 * rather than remembering which entries were keyed: with CR4.PKE every user-mode page is keyed
 * (key 0 at least), and a key register changes seldom (Linux: on a switch to a task with another
 * PKRU), while CPL changes flush the whole TLB anyway.
 */
void emu_pk_written(struct emu_vcpu *c, unsigned which, uint64_t v)
{
	bool same;
	if (which == EMU_TLB_PK_PKRU) {
		same = c->pkru == (uint32_t)v;
		c->pkru = (uint32_t)v;
	} else {
		same = c->pkrs == v;
		c->pkrs = v;
	}
	if (same || !(c->tlb_pk & which))
		return;
	for (unsigned k = 0; k < EMU_TLB_SIZE; k++)
		c->tlb[k].tag_r = c->tlb[k].tag_w = 1;
	c->tlb_pk = 0;
	c->tlb_ac_n = 0; /* their data tags are gone too */
}

/* ---------------------------------------------------------------- page walk */

struct walk {
	uint64_t gpa;
	bool r_ok, w_ok, x_ok, dirty, large;
	bool ac;          /* r_ok / w_ok hold only while EFLAGS.AC = 1 (SMAP) */
	uint8_t pk;       /* r_ok / w_ok hold only for this PKRU / IA32_PKRS (EMU_TLB_PK_*) */
	uint8_t memtype;
};

static int walk_fault(struct emu_vcpu *c, uint64_t lin, unsigned acc, uint32_t err)
{
	bool user = !(acc & EMU_ACC_SYS) && c->cpl == 3;
	if (acc & EMU_ACC_W)
		err |= PFE_W;
	if (user)
		err |= PFE_U;
	/* I/D (SDM Vol. 3 4.7): an instruction fetch with CR4.SMEP = 1, or with PAE or 4-level paging
	 * (the only ones modelled) and IA32_EFER.NXE = 1 */
	if ((acc & EMU_ACC_X) && ((c->efer & EFER_NXE) || (c->cr4 & CR4_SMEP)))
		err |= PFE_I;
	return emu_raise_pf(c, lin, err);
}

static uint8_t pat_type(const struct emu_vcpu *c, uint64_t e, bool large)
{
	unsigned idx = ((e >> 3) & 1) | (((e >> 4) & 1) << 1) | (((e >> (large ? 12 : 7)) & 1) << 2);
	if (c->cr0 & CR0_CD)
		return EMU_MT_UC;
	return (uint8_t)((c->pat >> (8 * idx)) & 7);
}

/* Memory type of a paging structure: from PCD/PWT of CR3 (the top-level table) or of the entry that
 * references it, the PAT bit taken as 0 (SDM Vol. 3 4.9.2, 11.12.3). */
static uint8_t ps_type(const struct emu_vcpu *c, uint64_t cr3_or_entry)
{
	return pat_type(c, cr3_or_entry & 0x18, false);
}

static inline bool mt_uncacheable(uint8_t mt)
{
	return mt == EMU_MT_UC || mt == EMU_MT_UCM;
}

/* Reserved bits of a PAE PDPTE below MAXPHYADDR and at 63 (SDM Vol. 3 Table 4-8: 63:M, 8:5, 2:1) */
#define PDPTE_RSVD ((1ull << 63) | 0x1e6ull)

int emu_load_pdptes(struct emu_vcpu *c, uint64_t cr3, bool check)
{
	uint64_t e[4] = { 0 };
	const uint64_t rsvd = PDPTE_RSVD | (~((1ull << EMU_PHYS_BITS) - 1) & ~(1ull << 63));
	const uint8_t *p = emu_phys_ptr(c->vm, cr3 & 0xffffffe0ull, 32);
	for (unsigned k = 0; k < 4; k++) {
		if (p)
			memcpy(&e[k], p + 8 * k, 8);
		if (check && (e[k] & 1) && (e[k] & rsvd))
			return -1;
	}
	memcpy(c->pdpte, e, sizeof e);
	return 0;
}

/* SDM Vol. 3 4.5 (4-level and 5-level) and 4.4 (PAE). Permissions are the AND of R/W and U/S and the OR of XD
 * over every level; A is set on every level and D on the leaf, with host atomics (locked updates the
 * CPU makes itself), only once the access is allowed. */
static int walk(struct emu_vcpu *c, uint64_t lin, unsigned acc, struct walk *w)
{
	const uint64_t addr_mask = ((1ull << EMU_PHYS_BITS) - 1) & ~0xfffull;
	/* Reserved bits above the address, M = MAXPHYADDR (CPUID 0x80000008 EAX[7:0]): 51:M with
	 * 4-level paging, whose bits 62:52 are ignored (SDM Vol. 3 Tables 4-15..4-20; 62:59 the
	 * protection key of a leaf); 62:M with PAE paging (Tables 4-9..4-11), 63:M in a PAE PDPTE
	 * (Table 4-8). Bit 63 is XD with IA32_EFER.NXE = 1, else reserved. */
	uint64_t rsvd = ~((1ull << EMU_PHYS_BITS) - 1) & 0x000fffffffffffffull;
	if (!(c->efer & EFER_LMA))
		rsvd |= 0x7ff0000000000000ull;
	if (!(c->efer & EFER_NXE))
		rsvd |= 1ull << 63;
	uint64_t *ent[5];
	uint64_t val[5], epa[5];
	uint8_t emt[5];   /* memory type of the table holding ent[k] (for the A/D bus-lock check) */
	int levels, n = 0;
	uint64_t table;
	uint8_t tmt;
	bool rw = true, us = true, xd = false;
	unsigned key = 0;

	if (c->efer & EFER_LMA) {
		levels = (c->cr4 & CR4_LA57) ? 5 : 4; /* 5-level paging: the PML5 at CR3 (SDM Vol. 3 4.5) */
		table = c->cr3 & addr_mask;
		tmt = ps_type(c, c->cr3);
	} else if (c->cr4 & CR4_PAE) {
		/* PAE: the PDPTE of the linear address (SDM Vol. 3 4.4.1). The Intel model's from its
		 * PDPTE registers, loaded (and checked: #GP(0)) at MOV to CR0/CR3/CR4; the AMD model's
		 * from CR3[31:5] at each walk, where a reserved bit is #PF with RSVD (as QEMU and KVM
		 * under nested paging). */
		uint64_t e;
		if (c->vm->cfg.cpu_vendor_amd) {
			uint64_t pa = (c->cr3 & 0xffffffe0ull) + ((lin >> 30) & 3) * 8;
			uint64_t *p = (uint64_t *)emu_phys_ptr(c->vm, pa, 8);
			if (!p)
				return emu_internal_error(c, "PAE PDPTE outside RAM");
			e = __atomic_load_n(p, __ATOMIC_ACQUIRE);
		} else {
			e = c->pdpte[(lin >> 30) & 3];
		}
		if (!(e & 1))
			return walk_fault(c, lin, acc, 0);
		if (e & (rsvd | PDPTE_RSVD))
			return walk_fault(c, lin, acc, PFE_P | PFE_RSVD);
		levels = 2;
		table = e & addr_mask;
		tmt = ps_type(c, e);
	} else {
		return emu_internal_error(c, "32-bit (non-PAE) paging is not implemented");
	}

	for (int lvl = levels; lvl >= 1; lvl--) {
		unsigned shift = 12 + 9 * (lvl - 1);
		uint64_t pa = table + ((lin >> shift) & 511) * 8;
		uint64_t *p = (uint64_t *)emu_phys_ptr(c->vm, pa, 8);
		if (!p)
			return emu_internal_error(c, "page table outside RAM");
		uint64_t e = __atomic_load_n(p, __ATOMIC_ACQUIRE);
		ent[n] = p;
		epa[n] = pa;
		emt[n] = tmt;
		val[n++] = e;
		if (!(e & 1))
			return walk_fault(c, lin, acc, 0);
		uint64_t r = rsvd;
		bool leaf = lvl == 1;
		if (lvl >= 4) {
			/* PS is reserved in a PML5E and a PML4E (SDM Vol. 3 Tables 4-14, 4-15); the AMD
			 * model also reserves bit 8 there (APM Vol. 2 5.3.3, the long-mode PML4E
			 * format: bits 8:7 MBZ; a PML5E alike). As KVM models it for an AMD guest
			 * (mmu.c __reset_rsvds_bits_mask: nonleaf_bit8_rsvd in rsvd_bits_mask[0][4]
			 * and [0][3] only): a non-leaf PDPE's bit 8 stays ignored. */
			r |= 0x80;
			if (c->vm->cfg.cpu_vendor_amd)
				r |= 0x100;
		}
		if ((lvl == 3 || lvl == 2) && (e & 0x80)) {
			leaf = true;
			r |= (lvl == 3 ? 0x3fffe000ull : 0x1fe000ull); /* reserved bits of 1 GiB / 2 MiB pages */
		}
		if (e & r)
			return walk_fault(c, lin, acc, PFE_P | PFE_RSVD);
		rw = rw && (e & 2);
		us = us && (e & 4);
		xd = xd || ((c->efer & EFER_NXE) && (e >> 63));
		if (leaf) {
			uint64_t page_mask = (1ull << shift) - 1;
			w->gpa = ((e & addr_mask & ~page_mask) | (lin & page_mask)) & ~0xfffull;
			w->large = lvl > 1;
			w->memtype = pat_type(c, e, w->large);
			key = (e >> 59) & 15; /* protection key: bits 62:59 of the leaf (SDM Vol. 3 4.5) */
			break;
		}
		table = e & addr_mask;
		tmt = ps_type(c, e);
	}

	/*
	 * Access rights, SDM Vol. 3 4.6.1 "Determination of Access Rights". A user-mode access (CPL 3,
	 * not implicit) needs U/S = 1 in every entry (us). A supervisor-mode access -- CPL < 3, or an
	 * implicit one (EMU_ACC_SYS: "accesses to the GDT or LDT to load a segment descriptor; accesses
	 * to the IDT when delivering an interrupt or exception; and accesses to the TSS ... regardless of
	 * CPL") -- to a user-mode address (us):
	 *  - SMAP, data: "If CR4.SMAP = 1 ... If EFLAGS.AC = 1 and the access is explicit, data may be
	 *    read from [written to] any user-mode address ...; If EFLAGS.AC = 0 or the access is
	 *    implicit, data may not be read from [written to] any user-mode address."
	 *  - SMEP, fetch: "If CR4.SMEP = 1, instructions may not be fetched from any user-mode address."
	 * Writes also need R/W = 1 in every entry unless a supervisor-mode access with CR0.WP = 0. These
	 * depend on CPL, CR0, CR4 and EFER (each change flushes the TLB) and on EFLAGS.AC: an entry
	 * whose data rights exist only because AC = 1 is remembered (w->ac) and dropped when AC is
	 * cleared (emu_ac_written).
	 */
	bool user = !(acc & EMU_ACC_SYS) && c->cpl == 3;
	bool wp = user || (c->cr0 & CR0_WP);
	bool smap = !user && us && (c->cr4 & CR4_SMAP);
	w->ac = smap && !(acc & EMU_ACC_SYS) && (c->rflags & EMU_AC);
	w->r_ok = user ? us : (!smap || w->ac);
	w->w_ok = w->r_ok && (rw || !wp);
	w->x_ok = !xd && (user ? us : !(us && (c->cr4 & CR4_SMEP)));

	/*
	 * Protection keys, SDM Vol. 3 4.6.2, with 4-level paging only ("IA-32e paging"): the key of a
	 * user-mode address (us) is looked up in PKRU when CR4.PKE = 1, that of a supervisor-mode
	 * address in IA32_PKRS when CR4.PKS = 1; for key i, "if ADi = 1, no data accesses are
	 * permitted"; "if WDi = 1, permission may be denied to certain data write accesses": user-mode
	 * writes always, supervisor-mode writes when CR0.WP = 1 ("if CR0.WP = 0, WDi does not affect
	 * supervisor-mode write accesses"). "Protection keys apply only to data accesses": never to
	 * instruction fetches. The rights so computed depend on the register: w->pk (emu_pk_written).
	 */
	bool pk_r = false, pk_w = false;
	if (c->efer & EFER_LMA) {
		uint64_t reg = 0;
		if (us && (c->cr4 & CR4_PKE)) {
			reg = c->pkru;
			w->pk = EMU_TLB_PK_PKRU;
		} else if (!us && (c->cr4 & CR4_PKS)) {
			reg = c->pkrs;
			w->pk = EMU_TLB_PK_PKRS;
		}
		bool ad = (reg >> (2 * key)) & 1, wd = (reg >> (2 * key + 1)) & 1;
		pk_r = ad;
		pk_w = ad || (wd && wp);
		w->r_ok = w->r_ok && !pk_r;
		w->w_ok = w->w_ok && !pk_w;
	}
	if (!((acc & EMU_ACC_X) ? w->x_ok : (acc & EMU_ACC_W) ? w->w_ok : w->r_ok)) {
		/* PK (bit 5, SDM Vol. 3 4.7): a data access that the key's rights deny, whatever else
		 * denied it too */
		bool pk = !(acc & EMU_ACC_X) && ((acc & EMU_ACC_W) ? pk_w : pk_r);
		return walk_fault(c, lin, acc, PFE_P | (pk ? PFE_PK : 0));
	}

	/* The A/D updates are locked updates the CPU makes itself (SDM Vol. 3 9.1.2.1): a bus lock when
	 * the paging structure is uncacheable. The check runs only when a bit actually has to be set. */
	for (int k = 0; k < n; k++)
		if (!(val[k] & 0x20)) {
			if (unlikely(c->bus_lock_detect) && mt_uncacheable(emt[k])) {
				int st = emu_bus_lock(c, lin, epa[k], 8, BLVM_BUS_LOCK_UC, true);
				if (st)
					return st;
			}
			__atomic_fetch_or(ent[k], 0x20, __ATOMIC_SEQ_CST);
		}
	w->dirty = (val[n - 1] & 0x40) != 0;
	if ((acc & EMU_ACC_W) && !w->dirty) {
		if (unlikely(c->bus_lock_detect) && mt_uncacheable(emt[n - 1]) && (val[n - 1] & 0x20)) {
			/* (when A was set just above, A and D are one locked update) */
			int st = emu_bus_lock(c, lin, epa[n - 1], 8, BLVM_BUS_LOCK_UC, true);
			if (st)
				return st;
		}
		__atomic_fetch_or(ent[n - 1], 0x40, __ATOMIC_SEQ_CST);
		w->dirty = true;
	}
	return 0;
}

/* A non-canonical linear address in IA-32e mode. SDM Vol. 2, each instruction's "64-Bit Mode
 * Exceptions": #SS(0) "If a memory address referencing the SS segment is in a non-canonical form",
 * #GP(0) for the other segments. An access does not carry its segment: the data operand's is in
 * the instruction at RIP (its memory operand's segment, SS for an RSP or RBP base); the stack
 * instructions' own accesses say SS in emu_push()/emu_pop(). Code fetches and the implicit system
 * accesses (descriptor tables, delivery) are #GP. A rare path: the block is walked to RIP. */
static int noncanonical(struct emu_vcpu *c, unsigned acc)
{
	const struct emu_block *b = c->cur_b;
	if (!(acc & (EMU_ACC_X | EMU_ACC_SYS)) && b) {
		uint64_t pos = c->cur_blin, at = emu_code_lin(c, c->rip);
		for (unsigned k = 0; k < b->n; pos = (pos + b->insn[k++].len) & c->lin_mask)
			if (pos == at)
				return emu_raise_err(c, b->insn[k].seg == EMU_SS ? EMU_V_SS : EMU_V_GP, 0);
	}
	return emu_raise_err(c, EMU_V_GP, 0);
}

/* Translates one linear address (any byte of a page) for one access kind, fills the TLB. */
static int xlat(struct emu_vcpu *c, uint64_t lin, unsigned acc, struct emu_xlat *x)
{
	uint64_t page = lin & ~0xfffull;
	if (!(acc & EMU_ACC_SYS)) {
		struct emu_tlb_entry *e = emu_tlbe(c, lin);
		uint64_t tag = (acc & EMU_ACC_W) ? e->tag_w : (acc & EMU_ACC_X) ? e->tag_x : e->tag_r;
		if (tag == page) {
			x->gpa = e->gpa | (lin & 0xfff);
			x->hva = (uint8_t *)(uintptr_t)(lin + (uint64_t)e->addend);
			x->memtype = e->memtype;
			return 0;
		}
	}
	if (unlikely(lin > 0xffffffffull) && !c->mode64 && (lin >> 61 == 2 || lin >> 61 == 3))
		return emu_raise_err(c, lin >> 61 == 3 ? EMU_V_SS : EMU_V_GP, 0); /* EMU_LIN_LIMIT_*: emu.h */
	if ((c->efer & EFER_LMA) && !emu_canonical(c, lin))
		return noncanonical(c, acc);

	struct walk w = { 0 };
	if (c->cr0 & CR0_PG) {
		int st = walk(c, lin, acc, &w);
		if (st)
			return st;
	} else {
		w.gpa = page;
		w.r_ok = w.w_ok = w.x_ok = w.dirty = true;
		w.large = false;
		w.memtype = (c->cr0 & CR0_CD) ? EMU_MT_UC : EMU_MT_WB;
	}

	struct emu_slot *s = emu_slot_of(c->vm, w.gpa);
	x->gpa = w.gpa | (lin & 0xfff);
	if (!s || ((acc & EMU_ACC_W) && (s->flags & KVM_MEM_READONLY))) {
		x->hva = NULL;
		x->memtype = EMU_MT_UC;
		return 0;
	}
	uint8_t *hpage = s->hva + (w.gpa - s->gpa);
	x->hva = hpage + (lin & 0xfff);
	x->memtype = w.memtype;
	if (acc & EMU_ACC_W)
		smc_write(c, s, w.gpa);
	if (acc & EMU_ACC_SYS)
		return 0;

	struct emu_tlb_entry *e = emu_tlbe(c, lin);
	bool code = atomic_load_explicit(&s->page_code[(w.gpa - s->gpa) >> 12], memory_order_relaxed);
	e->tag_r = w.r_ok ? page : 1;
	e->tag_w = (w.w_ok && w.dirty && !code && !(s->flags & KVM_MEM_READONLY)) ? page : 1;
	e->tag_x = w.x_ok ? page : 1;
	c->tlb_pk |= w.pk;
	if (w.ac) {
		/* valid only while EFLAGS.AC = 1 (SMAP); too many: all go at the next CLAC */
		if (c->tlb_ac_n < EMU_TLB_AC_MAX)
			c->tlb_ac[c->tlb_ac_n++] = (uint8_t)(e - c->tlb);
		else
			c->tlb_ac_n = EMU_TLB_AC_MAX + 1; /* every data tag goes */
	}
	e->addend = (int64_t)((uint64_t)(uintptr_t)hpage - page);
	e->gpa = w.gpa;
	e->memtype = w.memtype;
	e->large = w.large;
	if (w.large)
		c->tlb_has_large = true;
	return 0;
}

int emu_fetch_xlat(struct emu_vcpu *c, uint64_t lin, uint64_t *gpa, uint8_t **hva)
{
	struct emu_xlat x;
	int st = xlat(c, lin, EMU_ACC_X, &x);
	if (st)
		return st;
	*gpa = x.gpa;
	*hva = x.hva;
	return 0;
}

/* ---------------------------------------------------------------- MMIO */

static int mmio_read(struct emu_vcpu *c, uint64_t gpa, uint8_t *buf, unsigned len)
{
	if (c->vm->irqchip && emu_irq_mmio(c, gpa, false, buf, len))
		return 0; /* the LAPIC or I/O APIC, in the engine (irqchip.c) */
	if (c->mrc_pos < c->mrc_n) {
		struct emu_mmio_rc *rc = &c->mrc[c->mrc_pos++];
		if (rc->gpa != gpa || rc->len != len)
			return emu_internal_error(c, "MMIO read completion does not match the re-executed access");
		memcpy(buf, rc->data, len);
		return 0;
	}
	if (c->exit_pending)
		return emu_internal_error(c, "MMIO read after an MMIO write in one instruction");
	if (c->mrc_n == EMU_MMIO_RC)
		return emu_internal_error(c, "too many MMIO reads in one instruction");
	struct emu_mmio_rc *rc = &c->mrc[c->mrc_n++];
	rc->gpa = gpa;
	rc->len = len;
	struct kvm_run *run = c->run;
	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = len;
	run->mmio.is_write = 0;
	memset(run->mmio.data, 0, sizeof run->mmio.data);
	c->mrc_wait = true;
	c->exit_pending = true;
	return EMU_ST_EXIT;
}

static int mmio_write(struct emu_vcpu *c, uint64_t gpa, const uint8_t *buf, unsigned len)
{
	if (c->vm->irqchip && emu_irq_mmio(c, gpa, true, (uint8_t *)buf, len))
		return 0;
	if (c->mwq_n == EMU_MMIO_WQ)
		return emu_internal_error(c, "too many MMIO writes in one instruction");
	struct emu_mmio_wq *q = &c->mwq[c->mwq_n++];
	q->gpa = gpa;
	q->len = len;
	memset(q->data, 0, sizeof q->data);
	memcpy(q->data, buf, len);
	c->exit_pending = true;
	c->stop = EMU_ST_END;
	return 0;
}

/* ---------------------------------------------------------------- generic access */

/* Translates [lin, lin+size) (at most two pages) for one access kind: all pages before any byte moves. */
static int xlat_range(struct emu_vcpu *c, uint64_t lin, unsigned size, unsigned acc, struct emu_xlat x[2],
		      unsigned n[2])
{
	unsigned off = lin & 0xfff;
	int st = xlat(c, lin, acc, &x[0]);
	if (st)
		return st;
	if (off + size <= 0x1000) {
		n[0] = size;
		n[1] = 0;
		return 0;
	}
	n[0] = 0x1000 - off;
	n[1] = size - n[0];
	return xlat(c, (lin + n[0]) & c->lin_mask, acc, &x[1]);
}

void emu_guest_copy_in(void *dst, const uint8_t *src, unsigned n)
{
	if (!n)
		return;
	uint8_t *d = dst;
	uintptr_t a = (uintptr_t)src & ~(uintptr_t)7;
	unsigned skip = (unsigned)((uintptr_t)src - a);
	if (skip) { /* the head: part of the first aligned quadword */
		uint64_t q = EMU_GLD(uint64_t, a);
		unsigned take = 8 - skip < n ? 8 - skip : n;
		memcpy(d, (const uint8_t *)&q + skip, take);
		d += take, n -= take, a += 8;
	}
	for (; n >= 8; a += 8, d += 8, n -= 8) {
		uint64_t q = EMU_GLD(uint64_t, a);
		memcpy(d, &q, 8);
	}
	if (n) { /* the tail: the start of the last aligned quadword */
		uint64_t q = EMU_GLD(uint64_t, a);
		memcpy(d, &q, n);
	}
}

bool emu_guest_same(const uint8_t *src, const uint8_t *ref, unsigned n)
{
	/* the loads emu_guest_copy_in makes (aligned quadwords), each compared as it comes */
	if (!n)
		return true;
	uintptr_t a = (uintptr_t)src & ~(uintptr_t)7;
	unsigned skip = (unsigned)((uintptr_t)src - a);
	uint64_t q, r;
	if (skip) {
		q = EMU_GLD(uint64_t, a);
		unsigned take = 8 - skip < n ? 8 - skip : n;
		if (memcmp((const uint8_t *)&q + skip, ref, take))
			return false;
		ref += take, n -= take, a += 8;
	}
	for (; n >= 8; a += 8, ref += 8, n -= 8) {
		q = EMU_GLD(uint64_t, a);
		memcpy(&r, ref, 8);
		if (q != r)
			return false;
	}
	if (n) {
		q = EMU_GLD(uint64_t, a);
		return memcmp(&q, ref, n) == 0;
	}
	return true;
}

/* Guest RAM <-> buffer for accesses that are not one load or store of 1, 2, 4 or 8 bytes in one page
 * (page-crossing pieces, descriptor tables, 16-byte operands, MMIO-adjacent splits). Reads load every
 * aligned quadword they touch (emu_guest_copy_in); writes store exactly their bytes as the fewest
 * naturally aligned pieces of 8, 4, 2, 1 bytes in increasing address order (no byte is written
 * twice, as memcpy's overlapping tail stores would: another vCPU's store in between would be
 * overwritten by a duplicate of an older one). Like the hardware's, such an access is not atomic
 * as a whole (SDM Vol. 3 9.1.1: only aligned accesses up to 8 bytes, and unaligned ones within a
 * cache line, are guaranteed atomic). */
static void guest_copy_out(uint8_t *dst, const uint8_t *src, unsigned n)
{
	while (n) {
		uintptr_t a = (uintptr_t)dst;
		if (n >= 8 && !(a & 7)) {
			uint64_t v;
			memcpy(&v, src, 8);
			EMU_GST(uint64_t, dst, v);
			dst += 8, src += 8, n -= 8;
		} else if (n >= 4 && !(a & 3)) {
			uint32_t v;
			memcpy(&v, src, 4);
			EMU_GST(uint32_t, dst, v);
			dst += 4, src += 4, n -= 4;
		} else if (n >= 2 && !(a & 1)) {
			uint16_t v;
			memcpy(&v, src, 2);
			EMU_GST(uint16_t, dst, v);
			dst += 2, src += 2, n -= 2;
		} else {
			EMU_GST(uint8_t, dst, *src);
			dst++, src++, n--;
		}
	}
}

static int read_piece(struct emu_vcpu *c, const struct emu_xlat *x, uint8_t *buf, unsigned n)
{
	if (x->hva) {
		emu_guest_copy_in(buf, x->hva, n);
		return 0;
	}
	for (unsigned k = 0; k < n; k += 8) {
		int st = mmio_read(c, x->gpa + k, buf + k, n - k < 8 ? n - k : 8);
		if (st)
			return st;
	}
	return 0;
}

static int write_piece(struct emu_vcpu *c, const struct emu_xlat *x, const uint8_t *buf, unsigned n)
{
	if (x->hva) {
		guest_copy_out(x->hva, buf, n);
		return 0;
	}
	for (unsigned k = 0; k < n; k += 8) {
		int st = mmio_write(c, x->gpa + k, buf + k, n - k < 8 ? n - k : 8);
		if (st)
			return st;
	}
	return 0;
}

int emu_read_bytes(struct emu_vcpu *c, uint64_t lin, void *buf, unsigned size, unsigned acc)
{
	struct emu_xlat x[2];
	unsigned n[2];
	int st = xlat_range(c, lin, size, acc & ~EMU_ACC_W, x, n);
	if (st)
		return st;
	st = read_piece(c, &x[0], buf, n[0]);
	if (!st && n[1])
		st = read_piece(c, &x[1], (uint8_t *)buf + n[0], n[1]);
	return st;
}

int emu_write_bytes(struct emu_vcpu *c, uint64_t lin, const void *buf, unsigned size, unsigned acc)
{
	struct emu_xlat x[2];
	unsigned n[2];
	int st = xlat_range(c, lin, size, acc | EMU_ACC_W, x, n);
	if (!st) {
		st = write_piece(c, &x[0], buf, n[0]);
		if (!st && n[1])
			st = write_piece(c, &x[1], (const uint8_t *)buf + n[0], n[1]);
	}
	SMC_COMMIT(c);
	return st;
}

int emu_write_check(struct emu_vcpu *c, uint64_t lin, unsigned size)
{
	struct emu_xlat x[2];
	unsigned n[2];
	return xlat_range(c, lin, size, EMU_ACC_W, x, n);
}

/* A plain access is one host load or store of its size when it lies in one page of RAM (x86-TSO,
 * EMU_GLD/EMU_GST in emu.h); page-crossing or MMIO accesses go piece by piece. */
int emu_read_slow(struct emu_vcpu *c, uint64_t lin, unsigned size, uint64_t *v)
{
	struct emu_xlat x;
	if ((lin & 0xfff) + size <= 0x1000) {
		int st = xlat(c, lin, EMU_ACC_R, &x);
		if (st)
			return st;
		if (x.hva) {
			switch (size) {
			case 1: *v = EMU_GLD(uint8_t, x.hva); return 0;
			case 2: *v = EMU_GLD(uint16_t, x.hva); return 0;
			case 4: *v = EMU_GLD(uint32_t, x.hva); return 0;
			default: *v = EMU_GLD(uint64_t, x.hva); return 0;
			}
		}
	}
	uint64_t t = 0;
	int st = emu_read_bytes(c, lin, &t, size, EMU_ACC_R);
	if (!st)
		*v = t;
	return st;
}

int emu_write_slow(struct emu_vcpu *c, uint64_t lin, unsigned size, uint64_t v)
{
	struct emu_xlat x;
	if ((lin & 0xfff) + size <= 0x1000) {
		int st = xlat(c, lin, EMU_ACC_W, &x);
		if (st) {
			SMC_COMMIT(c);
			return st;
		}
		if (x.hva) {
			switch (size) {
			case 1: EMU_GST(uint8_t, x.hva, v); break;
			case 2: EMU_GST(uint16_t, x.hva, v); break;
			case 4: EMU_GST(uint32_t, x.hva, v); break;
			default: EMU_GST(uint64_t, x.hva, v); break;
			}
			SMC_COMMIT(c);
			return 0;
		}
	}
	return emu_write_bytes(c, lin, &v, size, EMU_ACC_W);
}

/* ---------------------------------------------------------------- bus locks (issue 4) */

/* emu.h. For the bus-lock report and a triple fault's (system.c). */
unsigned emu_peek_insn(struct emu_vcpu *c, uint64_t lrip, uint8_t bytes[15])
{
	unsigned got = 0;
	while (got < 15) {
		uint64_t a = (lrip + got) & c->lin_mask;
		unsigned chunk = 0x1000 - (unsigned)(a & 0xfff);
		if (chunk > 15 - got)
			chunk = 15 - got;
		const struct emu_tlb_entry *e = emu_tlbe(c, a);
		const uint8_t *p = NULL;
		if (e->tag_x == (a & ~0xfffull)) {
			p = (const uint8_t *)(uintptr_t)(a + (uint64_t)e->addend);
		} else {
			int vec = c->exc_vec, soft = c->exc_soft, has = c->exc_has_err;
			uint32_t err = c->exc_err;
			uint64_t cr2 = c->exc_cr2;
			bool ep = c->exit_pending;
			struct emu_xlat x;
			if (xlat(c, a, EMU_ACC_X, &x) == 0)
				p = x.hva;
			c->exc_vec = vec, c->exc_soft = soft, c->exc_has_err = has, c->exc_err = err;
			c->exc_cr2 = cr2, c->exit_pending = ep;
		}
		if (!p)
			break;
		emu_guest_copy_in(bytes + got, p, chunk);
		got += chunk;
	}
	return got;
}

/* The instruction's bytes for the report; decoded again only when asked for. */
static void capture_insn(struct emu_vcpu *c, uint64_t lrip)
{
	c->bl_nbytes = (uint8_t)emu_peek_insn(c, lrip, c->bl_bytes);
	c->bl_mode = c->mode;
}

static void record_bus_lock(struct emu_vcpu *c, uint64_t lin, uint64_t gpa, unsigned size, unsigned reason,
			    bool implicit)
{
	uint64_t lrip = emu_code_lin(c, c->rip);
	memset(&c->bl, 0, sizeof c->bl);
	c->bl.rip = lrip;
	c->bl.linear = lin;
	c->bl.phys = gpa;
	c->bl.size = (uint8_t)size;
	c->bl.reason = (uint8_t)reason;
	c->bl.implicit = implicit;
	capture_insn(c, lrip);
}

/*
 * The CPU model of both flavours, called where a bus lock is about to be taken (only when
 * c->bus_lock_detect: a VM-exit control or the guest's DEBUGCTL.BLD is on, emu_bus_lock_controls).
 * Instruction c->rip, data lin / gpa.
 *
 * VMX (secondary control bit 30): the lock is taken; the VM exit is trap-like, after the
 * instruction, so the block is ended here and the run loop delivers exit 74 after it, or a
 * higher-priority exit of the same instruction (MMIO, an intercepted #DB) carries bit 26 instead.
 * One exit per instruction however many locks it takes; the first is the one attributed.
 *
 * SVM (INTERCEPT_BUSLOCK, APM "Bus Lock Threshold"): before the lock, a counter above 0 lets it
 * through and decrements; at 0 the instruction does not execute and #VMEXIT(BUSLOCK) 0xa5 is
 * fault-like, RIP at the instruction. The caller has changed nothing yet (emu_locked_rmw: only
 * translations; the walker: before the A/D update), so returning EMU_ST_EXIT aborts it cleanly.
 */
/* The guest's own OS bus-lock detection (SDM Vol. 3B 18.3.1.6): with IA32_DEBUGCTL.BLD, a bus lock
 * taken at CPL > 0 makes a #DB trap follow the instruction (the run loop raises it). Implicit
 * locks of the instruction (A/D updates on an uncacheable paging structure) count: the instruction
 * acquired a bus lock. */
static inline void guest_bus_lock_trap(struct emu_vcpu *c)
{
	if ((c->debugctl & DEBUGCTL_BLD) && c->cpl > 0) {
		c->bld_trap = true;
		c->stop = EMU_ST_END;
	}
}

int emu_bus_lock(struct emu_vcpu *c, uint64_t lin, uint64_t gpa, unsigned size, unsigned reason,
		 bool implicit)
{
	if (c->intercept_buslock) {
		/* A write already queued for MMIO by this instruction cannot be undone: let it through. */
		if (c->bus_lock_counter || c->mwq_n) {
			if (c->bus_lock_counter)
				c->bus_lock_counter--;
			c->bus_locks++;
			guest_bus_lock_trap(c);
			return 0;
		}
		record_bus_lock(c, lin, gpa, size, reason, implicit);
		c->exit_reason = SVM_EXIT_BUS_LOCK;
		c->run->exit_reason = KVM_EXIT_X86_BUS_LOCK; /* completed by the kernel layer (engine.c) */
		c->exit_pending = true;
		return EMU_ST_EXIT;
	}
	if (c->secondary_exec_control & VMX_SECONDARY_EXEC_BUS_LOCK_DETECTION) {
		if (!c->bus_lock_detected) {
			c->bus_lock_detected = true;
			c->bus_locks++;
			record_bus_lock(c, lin, gpa, size, reason, implicit);
			c->stop = EMU_ST_END; /* the exit follows this instruction */
		}
	}
	guest_bus_lock_trap(c);
	return 0;
}

/* A locked byte OR the CPU makes itself on a descriptor (accessed bit) or TSS descriptor (busy bit). */
int emu_cpu_locked_or8(struct emu_vcpu *c, uint64_t lin, uint8_t bits, uint8_t nv)
{
	struct emu_xlat x;
	int st = xlat(c, lin, EMU_ACC_W | EMU_ACC_SYS, &x);
	if (st)
		return st;
	if (unlikely(c->bus_lock_detect) && (!x.hva || mt_uncacheable(x.memtype))) {
		st = emu_bus_lock(c, lin, x.gpa, 1, BLVM_BUS_LOCK_UC, true);
		if (st) {
			SMC_COMMIT(c);
			return st;
		}
	}
	if (!x.hva)
		st = write_piece(c, &x, &nv, 1);
	else
		__atomic_fetch_or(x.hva, bits, __ATOMIC_SEQ_CST);
	SMC_COMMIT(c);
	return st;
}

/* ---------------------------------------------------------------- locked read-modify-write */

static bool host_cas16(uint8_t *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
	bool ok;
	uint64_t a = *lo, d = *hi;
	__asm__ volatile("lock cmpxchg16b (%[p])"
			 : "=@ccz"(ok), "+a"(a), "+d"(d) : [p] "r"(p), "b"(nlo), "c"(nhi) : "memory");
	*lo = a;
	*hi = d;
	return ok;
}

/*
 * The guest's locked instruction as the same host instruction on the same bytes: `lock add` for
 * `lock add`, `xchg` for `xchg`, and so on, so that the host bus sees exactly what the guest asked
 * for (a split `lock addl` holds the bus as long as it does natively; a read followed by a
 * `lock cmpxchg` costs a native split-lock loop about 12 % of its rate) and nothing is retried.
 * Returns the host's RFLAGS after the instruction; *old gets the operand's previous value for
 * XADD, XCHG and CMPXCHG (the others do not return it). The caller keeps only the flags the
 * instruction writes (locked_flags_written). RFLAGS is read with PUSHF after moving RSP past the
 * red zone (the System V ABI lets the compiler keep data in the 128 bytes below RSP); LEA leaves
 * the flags alone. ADC/SBB take the guest's CF in through BT.
 */
#define PUSHF_TO(f) "lea -128(%%rsp), %%rsp\n\tpushfq\n\tpopq %[" f "]\n\tlea 128(%%rsp), %%rsp"
/* One locked instruction with a register source (ADC/SBB: CF from the guest first, through BT) or
 * with the memory operand alone, RFLAGS after it into f. */
#define LK_SRC(PRE, INSN, SFX, MOD)                                                                           \
	__asm__ volatile(PRE INSN SFX " %" MOD "[v], (%[p])\n\t" PUSHF_TO("f")                                \
			 : [f] "=r"(f) : [v] "r"(v), [p] "r"(p), [cf] "r"(cf) : "memory", "cc")
#define LK_DST(INSN, SFX)                                                                                     \
	__asm__ volatile(INSN SFX " (%[p])\n\t" PUSHF_TO("f") : [f] "=r"(f) : [p] "r"(p) : "memory", "cc")
#define HOST_LOCKED(N, T, SFX, MOD)                                                                           \
	static uint64_t host_locked_##N(unsigned op, void *p, uint64_t src, uint64_t cmp, uint64_t cf,        \
					uint64_t *old)                                                        \
	{                                                                                                     \
		T v = (T)src, a = (T)cmp;                                                                     \
		uint64_t f = 0;                                                                               \
		switch (op) {                                                                                 \
		case EMU_RMW_ADD: LK_SRC("", "lock add", SFX, MOD); break;                                    \
		case EMU_RMW_OR: LK_SRC("", "lock or", SFX, MOD); break;                                      \
		case EMU_RMW_AND: LK_SRC("", "lock and", SFX, MOD); break;                                    \
		case EMU_RMW_SUB: LK_SRC("", "lock sub", SFX, MOD); break;                                    \
		case EMU_RMW_XOR: LK_SRC("", "lock xor", SFX, MOD); break;                                    \
		case EMU_RMW_ADC: LK_SRC("bt $0, %[cf]\n\t", "lock adc", SFX, MOD); break;                    \
		case EMU_RMW_SBB: LK_SRC("bt $0, %[cf]\n\t", "lock sbb", SFX, MOD); break;                    \
		case EMU_RMW_INC: LK_DST("lock inc", SFX); break;                                             \
		case EMU_RMW_DEC: LK_DST("lock dec", SFX); break;                                             \
		case EMU_RMW_NEG: LK_DST("lock neg", SFX); break;                                             \
		case EMU_RMW_NOT: LK_DST("lock not", SFX); break; /* no flags: f is discarded */              \
		case EMU_RMW_XCHG: /* locked without the prefix (SDM "XCHG") */                              \
			__asm__ volatile("xchg" SFX " %" MOD "[v], (%[p])" : [v] "+r"(v) : [p] "r"(p) : "memory"); \
			*old = v;                                                                             \
			break;                                                                                \
		case EMU_RMW_XADD: __asm__ volatile("lock xadd" SFX " %" MOD "[v], (%[p])\n\t" PUSHF_TO("f")  \
						    : [f] "=r"(f), [v] "+r"(v) : [p] "r"(p) : "memory", "cc"); \
			*old = v;                                                                             \
			break;                                                                                \
		case EMU_RMW_CMPXCHG: /* RAX in, the memory's old value out (equal to it on success) */      \
			__asm__ volatile("lock cmpxchg" SFX " %" MOD "[v], (%[p])\n\t" PUSHF_TO("f")          \
					 : [f] "=r"(f), "+a"(a) : [v] "r"(v), [p] "r"(p) : "memory", "cc");   \
			*old = a;                                                                             \
			break;                                                                                \
		}                                                                                             \
		return f;                                                                                     \
	}
HOST_LOCKED(1, uint8_t, "b", "b")
HOST_LOCKED(2, uint16_t, "w", "w")
HOST_LOCKED(4, uint32_t, "l", "k")
HOST_LOCKED(8, uint64_t, "q", "q")

/* BTS/BTR/BTC have no byte form; the bit number is already within the operand. */
#define HOST_LOCKED_BT(N, T, SFX, MOD)                                                                        \
	static uint64_t host_locked_bt_##N(unsigned op, void *p, uint64_t bit)                                 \
	{                                                                                                     \
		T v = (T)bit;                                                                                 \
		uint64_t f, cf = 0;                                                                           \
		if (op == EMU_RMW_BTS)                                                                        \
			LK_SRC("", "lock bts", SFX, MOD);                                                     \
		else if (op == EMU_RMW_BTR)                                                                   \
			LK_SRC("", "lock btr", SFX, MOD);                                                     \
		else                                                                                          \
			LK_SRC("", "lock btc", SFX, MOD);                                                     \
		return f;                                                                                     \
	}
HOST_LOCKED_BT(2, uint16_t, "w", "w")
HOST_LOCKED_BT(4, uint32_t, "l", "k")
HOST_LOCKED_BT(8, uint64_t, "q", "q")

/* The status flags each locked instruction writes (SDM, the instructions' "Flags Affected"); the
 * others keep the guest's values. BT*: CF only, OF/SF/AF/PF are undefined and the emu engine
 * leaves them unchanged (emu_bt), so the host's values are not taken. Logical ops clear AF on
 * the host as in emu_alu (undefined in the SDM; what Intel and AMD hardware do). */
static uint64_t locked_flags_written(unsigned op)
{
	switch (op) {
	case EMU_RMW_INC: case EMU_RMW_DEC: return EMU_STATUS_FLAGS & ~EMU_CF;
	case EMU_RMW_BTS: case EMU_RMW_BTR: case EMU_RMW_BTC: return EMU_CF;
	case EMU_RMW_NOT: case EMU_RMW_XCHG: return 0;
	default: return EMU_STATUS_FLAGS;
	}
}

/* One host locked instruction for the guest's; flags merged into m->rflags, m->old where defined. */
static void host_locked(struct emu_rmw *m, uint8_t *p)
{
	uint64_t old = 0, hf, cf = m->rflags & EMU_CF, bit = m->src & (8 * m->size - 1);
	bool bt = m->op == EMU_RMW_BTS || m->op == EMU_RMW_BTR || m->op == EMU_RMW_BTC;
	switch (m->size) {
	case 1: hf = host_locked_1(m->op, p, m->src, m->cmp, cf, &old); break;
	case 2: hf = bt ? host_locked_bt_2(m->op, p, bit) : host_locked_2(m->op, p, m->src, m->cmp, cf, &old); break;
	case 4: hf = bt ? host_locked_bt_4(m->op, p, bit) : host_locked_4(m->op, p, m->src, m->cmp, cf, &old); break;
	default: hf = bt ? host_locked_bt_8(m->op, p, bit) : host_locked_8(m->op, p, m->src, m->cmp, cf, &old); break;
	}
	uint64_t w = locked_flags_written(m->op);
	m->rflags = (m->rflags & ~w) | (hf & w);
	m->old = old;
}

/* New value of the memory operand from its old value; flags into *f. */
static uint64_t rmw_compute(const struct emu_rmw *m, uint64_t old, uint64_t *f)
{
	unsigned sz = m->size;
	switch (m->op) {
	case EMU_RMW_ADD: case EMU_RMW_OR: case EMU_RMW_ADC: case EMU_RMW_SBB:
	case EMU_RMW_AND: case EMU_RMW_SUB: case EMU_RMW_XOR:
		return emu_alu((enum emu_alu_op)m->op, sz, old, m->src, f);
	case EMU_RMW_INC: return emu_unary(EMU_INC, sz, old, f);
	case EMU_RMW_DEC: return emu_unary(EMU_DEC, sz, old, f);
	case EMU_RMW_NEG: return emu_unary(EMU_NEG, sz, old, f);
	case EMU_RMW_NOT: return emu_unary(EMU_NOT, sz, old, f);
	case EMU_RMW_BTS: return emu_bt(EMU_BTS, sz, old, m->src, f);
	case EMU_RMW_BTR: return emu_bt(EMU_BTR, sz, old, m->src, f);
	case EMU_RMW_BTC: return emu_bt(EMU_BTC, sz, old, m->src, f);
	case EMU_RMW_XCHG: return m->src;
	case EMU_RMW_XADD: return emu_alu(EMU_ALU_ADD, sz, old, m->src, f);
	case EMU_RMW_CMPXCHG:
		emu_alu(EMU_ALU_CMP, sz, m->cmp, old, f);
		return (old & emu_size_mask(sz)) == (m->cmp & emu_size_mask(sz)) ? m->src : old;
	default:
		return old;
	}
}

/*
 * Every locked read-modify-write of the guest comes here (SDM Vol. 3 9.1.2): the LOCK-prefixed forms
 * and XCHG with a memory operand. It knows the instruction, the linear address, the guest-physical
 * address(es), the size, whether the access splits a 64-byte line and the memory type: this is where
 * bus-lock detection (issue 4) hooks in. RAM that is contiguous on the host is updated by ONE host
 * locked instruction on the same bytes (a guest split lock is a host split lock); MMIO is read and
 * written through exits, non-atomically, as KVM's emulator does. What cannot be one host locked
 * instruction -- a contained bus lock (BLVM_CAP_BUS_LOCK_CONTAIN), a split across two guest pages that
 * are not adjacent on the host -- is a plain read-compute-write inside the VM's exclusive section
 * (emu_stw_begin: every other vCPU is held at a block boundary), so it is atomic with respect to
 * everything the other vCPUs do, their host-atomic locked operations on the same bytes included.
 */
static int locked_rmw(struct emu_vcpu *c, const struct emu_insn *i, uint64_t lin, struct emu_rmw *m,
		      const struct emu_xlat x[2], const unsigned n[2]);

int emu_locked_rmw(struct emu_vcpu *c, const struct emu_insn *i, uint64_t lin, struct emu_rmw *m)
{
	unsigned size = m->size;
	if (m->op == EMU_RMW_CMPXCHG_DW && size == 16 && (lin & 15))
		return emu_raise_err(c, EMU_V_GP, 0);
	struct emu_xlat x[2];
	unsigned n[2];
	/* A locked operation needs write permission even when it does not end up writing (SDM "CMPXCHG":
	 * the processor always writes). */
	int st = xlat_range(c, lin, size, EMU_ACC_W, x, n);
	if (!st)
		st = locked_rmw(c, i, lin, m, x, n);
	SMC_COMMIT(c); /* after the store: see smc_write */
	return st;
}

static int locked_rmw(struct emu_vcpu *c, const struct emu_insn *i, uint64_t lin, struct emu_rmw *m,
		      const struct emu_xlat x[2], const unsigned n[2])
{
	unsigned size = m->size;
	int st;
	bool mmio = !x[0].hva || (n[1] && !x[1].hva);
	/* A split lock crosses a 64-byte line (CMPXCHG16B is 16-aligned: never); any lock on UC, UC- or
	 * MMIO is a bus lock (SDM Vol. 3 9.1.2.2; Linux Documentation/arch/x86/buslock.rst). Other
	 * cacheable types (WT, WP) behave as WB here; WC is not modelled (MTRRs neither). */
	bool split = (lin & (EMU_CACHE_LINE - 1)) + size > EMU_CACHE_LINE;
	bool uc = mmio || mt_uncacheable(x[0].memtype) || (n[1] && mt_uncacheable(x[1].memtype));
	if (unlikely(split || uc) && !(c->mrc_pos < c->mrc_n)) {
		/* Once per instruction: not again when it re-executes to consume MMIO read data (the
		 * first execution's exit, the MMIO read, carried the bus lock; KVM: the EPT-misconfig
		 * exit with bit 26 is the one that reaches user space as KVM_EXIT_MMIO + flag). */
		c->locked_split += !uc;
		c->locked_uc += uc;
		if (c->bus_lock_detect) {
			st = emu_bus_lock(c, lin, x[0].gpa, size, uc ? BLVM_BUS_LOCK_UC : BLVM_BUS_LOCK_SPLIT,
					  !(i->flg & EMU_I_LOCK));
			if (st)
				return st; /* SVM: fault-like exit, nothing done */
		}
	}
	if (!(c->mrc_pos < c->mrc_n))
		c->locked_rmw++;

	/* The execution strategy of a bus lock: a host locked instruction on the same bytes (a guest
	 * split lock is a host split lock), unless the VM contains bus locks (BLVM_CAP_BUS_LOCK_CONTAIN):
	 * then the generic path below performs it as a plain read-compute-write inside the VM-wide
	 * exclusive section (emu_stw_begin/emu_stw_end), so the host bus is never locked. */
	bool contained = unlikely(split || uc) && !mmio &&
			 atomic_load_explicit(&c->vm->bus_lock_contain, memory_order_relaxed);
	uint64_t f = m->rflags;
	if (!mmio && !contained && (!n[1] || x[1].hva == x[0].hva + n[0])) {
		uint8_t *p = x[0].hva;
		if (m->op == EMU_RMW_CMPXCHG_DW) {
			uint64_t lo = m->cmp, hi = m->cmp_hi;
			bool ok;
			if (size == 16) {
				ok = host_cas16(p, &lo, &hi, m->new_lo, m->new_hi);
			} else {
				/* CMPXCHG8B as one 8-byte `lock cmpxchg` on the same bytes: the same atomic
				 * compare-and-exchange of EDX:EAX with the quadword, ZF alike. */
				uint64_t e;
				uint64_t hf = host_locked_8(EMU_RMW_CMPXCHG, p,
							    (m->new_lo & 0xffffffff) | (m->new_hi << 32),
							    (m->cmp & 0xffffffff) | (m->cmp_hi << 32), 0, &e);
				ok = hf & EMU_ZF;
				lo = (uint32_t)e;
				hi = e >> 32;
			}
			m->old = lo;
			m->old_hi = hi;
			m->rflags = ok ? (f | EMU_ZF) : (f & ~EMU_ZF);
			return 0;
		}
		host_locked(m, p);
		return 0;
	}

	/* MMIO, host-discontiguous or contained: read, compute, write; RAM inside the exclusive section.
	 * Nothing of this instruction has touched memory yet, so it may wait for the section as OUT. */
	bool take = !mmio;
	if (take)
		emu_stw_begin(c);
	uint8_t buf[16] = { 0 };
	st = read_piece(c, &x[0], buf, n[0]);
	if (!st && n[1])
		st = read_piece(c, &x[1], buf + n[0], n[1]);
	if (!st) {
		uint64_t old, nv, nhi = 0;
		memcpy(&old, buf, 8);
		if (m->op == EMU_RMW_CMPXCHG_DW) {
			uint64_t ohi = 0;
			if (size == 16)
				memcpy(&ohi, buf + 8, 8);
			else {
				ohi = old >> 32;
				old = (uint32_t)old;
			}
			bool eq = old == (size == 16 ? m->cmp : (uint32_t)m->cmp) &&
				  ohi == (size == 16 ? m->cmp_hi : (uint32_t)m->cmp_hi);
			m->old = old;
			m->old_hi = ohi;
			m->rflags = eq ? (f | EMU_ZF) : (f & ~EMU_ZF);
			if (size == 16) {
				nv = eq ? m->new_lo : old;
				nhi = eq ? m->new_hi : ohi;
				memcpy(buf, &nv, 8);
				memcpy(buf + 8, &nhi, 8);
			} else {
				nv = eq ? ((m->new_lo & 0xffffffff) | (m->new_hi << 32)) : (old | (ohi << 32));
				memcpy(buf, &nv, 8);
			}
		} else {
			old &= emu_size_mask(size);
			nv = rmw_compute(m, old, &f);
			m->old = old;
			m->rflags = f;
			memcpy(buf, &nv, 8);
		}
		st = write_piece(c, &x[0], buf, n[0]);
		if (!st && n[1])
			st = write_piece(c, &x[1], buf + n[0], n[1]);
	}
	if (take)
		emu_stw_end(c);
	return st;
}
