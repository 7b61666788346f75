/* SPDX-License-Identifier: MIT */
/*
 * emu_pte_rsvd: the reserved bits of paging-structure entries, bit by bit, against the SDM's entry
 * formats (SDM Vol. 3 4.4.2 Tables 4-8..4-11 for PAE paging, 4.5.4 Tables 4-14..4-20 for 4-level
 * paging; M = MAXPHYADDR, the guest's CPUID 0x80000008 EAX[7:0]):
 *   - PAE PDPTE: bits 2:1, 8:5 and 63:M reserved. The Intel model loads the four PDPTEs into
 *     registers at MOV to CR3 (and CR0/CR4), "If any of the PDPTEs sets both the P flag (bit 0)
 *     and any reserved bit, the MOV to CR instruction causes a general-protection exception
 *     (#GP(0)) and the PDPTEs are not loaded" (SDM Vol. 3 4.4.1), and a later change of the table
 *     in memory has no effect until the next load; the AMD model reads them at each walk (#PF
 *     with RSVD, as QEMU TCG and KVM under nested paging);
 *   - PAE PDE and PTE: 62:M reserved, bit 63 XD with IA32_EFER.NXE = 1, else reserved; a PDE that
 *     maps a 2-MByte page also 20:13;
 *   - 4-level PML4E, PDPTE, PDE, PTE: 51:M reserved, bits 62:52 ignored (62:59 the protection key
 *     of a leaf, ignored here: CR4.PKE = CR4.PKS = 0), bit 63 as with PAE; PS (bit 7) reserved in a
 *     PML4E; a PDPTE that maps a 1-GByte page also 29:13, a PDE that maps a 2-MByte page 20:13;
 *   - the AMD model (APM Vol. 2 5.3.3, the long-mode PML4E format: bits 8:7 MBZ): bit 8 of a PML4E
 *     and of a PML5E reserved too, exactly as KVM checks it for an AMD guest (arch/x86/kvm/mmu/mmu.c
 *     __reset_rsvds_bits_mask: nonleaf_bit8_rsvd in the level-5 and level-4 masks only; bit 8 of a
 *     non-leaf PDPTE stays ignored); 4-level and 5-level paging are swept for both models;
 *   - 5-level paging (CR4.LA57 = 1, Table 4-14): a PML5E as a PML4E, the others alike; a linear
 *     address is canonical in 57 bits (4.5.1): 0x00ff000000000000 maps through PML5E 255 with
 *     LA57 = 1 and is #GP(0) with LA57 = 0 (SDM Vol. 2 "MOV": #GP(0) for a non-canonical address).
 * "If the P flag is 1 and a reserved bit is set, the access causes a page-fault exception with the
 * RSVD flag (bit 3) and the P flag (bit 0) set in the error code" (SDM Vol. 3 4.7). Each case sets one
 * bit in one entry of an identity mapping (address bits M-1:12 and a non-leaf PS are skipped: they
 * name another table or page), flushes the TLB and reads one byte at CPL 0; the expected outcome is
 * computed here from the tables above, independently of mmu.c.
 */
#include "emu_harness.h"
#include "emu/emu.h"

enum { PML4E, PDPTE, PDPTE_1G, PDE, PDE_2M, PTE, PML5E };
static const char *const kind_name[] = { "PML4E", "PDPTE", "PDPTE (1 GiB page)", "PDE", "PDE (2 MiB page)",
					 "PTE", "PML5E" };

static uint64_t bits(unsigned hi, unsigned lo)
{
	return (hi >= 63 ? ~0ull : (1ull << (hi + 1)) - 1) & ~((1ull << lo) - 1);
}

/* The SDM's reserved bits of one entry; with amd, the APM's too */
static uint64_t reserved(bool pae, int kind, bool nxe, unsigned m, bool amd)
{
	uint64_t r = nxe ? 0 : 1ull << 63;
	if (pae) {
		if (kind == PDPTE)
			return bits(2, 1) | bits(8, 5) | bits(63, m);
		r |= bits(62, m);
	} else {
		r |= bits(51, m);
	}
	if (kind == PML4E || kind == PML5E)
		r |= 1ull << 7 | (amd ? 1ull << 8 : 0);
	if (kind == PDPTE_1G)
		r |= bits(29, 13);
	if (kind == PDE_2M)
		r |= bits(20, 13);
	return r;
}

/* One entry at gpa, one bit at a time; lin is an address it maps. */
static void sweep(struct t_vm *t, bool pae, bool nxe, unsigned m, int kind, uint64_t gpa, uint64_t lin,
		  unsigned *n)
{
	struct emu_vcpu *c = (struct emu_vcpu *)t->cpu;
	uint64_t e = t_r64(t, gpa);
	uint64_t rsvd = reserved(pae, kind, nxe, m, c->vm->cfg.cpu_vendor_amd);
	for (unsigned b = 1; b < 64; b++) {
		if (b >= 12 && b < m)
			continue; /* the address of the next table or of the page */
		if (b == 7 && kind != PML4E && kind != PML5E)
			continue; /* PS: another kind of entry (PDE_2M, PDPTE_1G are their own sweeps) */
		if ((e >> b) & 1)
			continue; /* already set: the entry's own flag */
		t_w64(t, gpa, e | (1ull << b));
		emu_tlb_flush(c);
		c->exc_vec = -1;
		uint8_t v;
		int st;
		bool want = (rsvd >> b) & 1;
		if (pae && kind == PDPTE && !c->vm->cfg.cpu_vendor_amd) {
			/* the Intel model: MOV to CR3 loads and checks them */
			st = emu_write_cr(c, 3, c->cr3);
			CHECK(want ? st == EMU_ST_FAULT && c->exc_vec == EMU_V_GP && c->exc_err == 0 : st == 0,
			      "PAE paging, NXE %d, Intel, PDPTE bit %u: MOV to CR3 %s, got status %d vector %d",
			      nxe, b, want ? "must #GP(0)" : "must load it", st, c->exc_vec);
			(*n)++;
			if (want)
				continue; /* not loaded: the old ones stay */
		}
		st = emu_read_bytes(c, lin, &v, 1, EMU_ACC_R);
		if (pae && kind == PDPTE && !c->vm->cfg.cpu_vendor_amd)
			want = false; /* loaded without a reserved bit */
		bool rsvd_pf = st == EMU_ST_FAULT && c->exc_vec == EMU_V_PF && c->exc_err == (PFE_P | PFE_RSVD) &&
			       c->exc_cr2 == lin;
		CHECK(want ? rsvd_pf : st == 0,
		      "%s model, %s paging, NXE %d, %s bit %u: %s, got status %d vector %d error %#x",
		      c->vm->cfg.cpu_vendor_amd ? "AMD" : "Intel",
		      pae ? "PAE" : (c->cr4 & CR4_LA57) ? "5-level" : "4-level", nxe, kind_name[kind], b,
		      want ? "reserved: #PF with P and RSVD expected" : "not reserved: the read should succeed",
		      st, c->exc_vec, (unsigned)c->exc_err);
		(*n)++;
	}
	t_w64(t, gpa, e);
	if (pae && kind == PDPTE && !c->vm->cfg.cpu_vendor_amd)
		CHECK(emu_write_cr(c, 3, c->cr3) == 0, "PAE, Intel: reloading the PDPTEs failed");
}

int main(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	struct emu_vcpu *c = (struct emu_vcpu *)t.cpu;
	uint32_t o[4];
	emu_cpuid(c, 0x80000008, 0, o);
	unsigned m = o[0] & 0xff;
	CHECK(m > 32 && m < 52, "MAXPHYADDR %u", m);
	unsigned n = 0;

	for (int k = 0; k < 4; k++) {
		const int nxe = k & 1, vendor = k >> 1; /* the Intel model, then the AMD model */
		c->vm->cfg.cpu_vendor_amd = vendor;
		/* 4-level: PML4 0x30000 -> PDPT 0x31000 -> PD 0x32000 -> PT 0x33000 -> 0x100000;
		 * PD[1] a 2 MiB page at 0x200000, PDPT[1] a 1 GiB page at 0 */
		memset(t.ram + 0x30000, 0, 0x4000);
		t_w64(&t, 0x30000, 0x31003);
		t_w64(&t, 0x31000, 0x32003);
		t_w64(&t, 0x31008, 0x83);
		t_w64(&t, 0x32000, 0x33003);
		t_w64(&t, 0x32008, 0x200083);
		t_w64(&t, 0x33000 + 8 * 0x100, 0x100003);
		struct kvm_sregs s;
		t.ops->get_sregs(t.cpu, &s);
		s.cr3 = 0x30000;
		s.efer = nxe ? 0xd01 : 0x501;
		t.ops->set_sregs(t.cpu, &s);
		sweep(&t, false, nxe, m, PML4E, 0x30000, 0x100000, &n);
		sweep(&t, false, nxe, m, PDPTE, 0x31000, 0x100000, &n);
		sweep(&t, false, nxe, m, PDPTE_1G, 0x31008, 0x40000000, &n);
		sweep(&t, false, nxe, m, PDE, 0x32000, 0x100000, &n);
		sweep(&t, false, nxe, m, PDE_2M, 0x32008, 0x200000, &n);
		sweep(&t, false, nxe, m, PTE, 0x33000 + 8 * 0x100, 0x100000, &n);

		/* PAE paging: both vendors in one round (their PDPTEs differ, the rest alike) */
		if (!vendor) {
			/* PAE (32-bit protected mode): PDPT at 0x20000 -> PD 0x21000 -> PT 0x22000 ->
			 * 0x100000; PD[1] a 2 MiB page at 0x200000 */
			memset(t.ram + 0x20000, 0, 0x3000);
			t_w64(&t, 0x20000, 0x21001);
			t_w64(&t, 0x21000, 0x22003);
			t_w64(&t, 0x21008, 0x200083);
			t_w64(&t, 0x22000 + 8 * 0x100, 0x100003);
			for (int amd = 0; amd < 2; amd++) {
				c->vm->cfg.cpu_vendor_amd = amd;
				t.ops->get_sregs(t.cpu, &s);
				t_seg(&s.cs, 0x18, 1, 0, 0);
				s.cr3 = 0x20000;
				s.efer = nxe ? 0x800 : 0;
				t.ops->set_sregs(t.cpu, &s); /* loads the Intel model's PDPTEs, as KVM's */
				CHECK(!(c->efer & EFER_LMA) && (c->cr4 & CR4_PAE),
				      "not PAE paging: EFER %#llx CR4 %#llx", (unsigned long long)c->efer,
				      (unsigned long long)c->cr4);
				sweep(&t, true, nxe, m, PDPTE, 0x20000, 0x100000, &n);
				sweep(&t, true, nxe, m, PDE, 0x21000, 0x100000, &n);
				sweep(&t, true, nxe, m, PDE_2M, 0x21008, 0x200000, &n);
				sweep(&t, true, nxe, m, PTE, 0x22000 + 8 * 0x100, 0x100000, &n);
				/* the PDPTE made not present in memory: the Intel model's register keeps it
				 * until MOV to CR3; the AMD model sees it at once (#PF, P = 0) */
				uint8_t v;
				t_w64(&t, 0x20000, 0);
				emu_tlb_flush(c);
				int st = emu_read_bytes(c, 0x100000, &v, 1, EMU_ACC_R);
				CHECK(amd ? st == EMU_ST_FAULT && c->exc_vec == EMU_V_PF && c->exc_err == 0 : st == 0,
				      "PAE, %s: a cleared PDPTE before MOV to CR3: status %d vector %d",
				      amd ? "AMD" : "Intel", st, c->exc_vec);
				CHECK(emu_write_cr(c, 3, 0x20000) == 0, "MOV to CR3 with a not-present PDPTE");
				emu_tlb_flush(c);
				st = emu_read_bytes(c, 0x100000, &v, 1, EMU_ACC_R);
				CHECK(st == EMU_ST_FAULT && c->exc_vec == EMU_V_PF && c->exc_err == 0,
				      "PAE, %s: a cleared PDPTE after MOV to CR3: status %d vector %d",
				      amd ? "AMD" : "Intel", st, c->exc_vec);
				t_w64(&t, 0x20000, 0x21001);
				CHECK(emu_write_cr(c, 3, 0x20000) == 0, "MOV to CR3 with the PDPTE back");
			}
		}
		c->vm->cfg.cpu_vendor_amd = vendor;

		/* 5-level: PML5 0x34000 -> the PML4 above; PML5E 255 -> the same PML4 (its PML4E 0:
		 * lin 0x00ff000000000000 + x maps what lin x maps with 4-level paging) */
		t_long_mode(&t);
		t.ops->get_sregs(t.cpu, &s);
		memset(t.ram + 0x34000, 0, 0x1000);
		t_w64(&t, 0x34000, 0x30003);
		t_w64(&t, 0x34000 + 8 * 255, 0x30003);
		uint64_t hi = 0x00ff000000000000ull;
		uint8_t v;
		s.cr3 = 0x30000;
		s.efer = nxe ? 0xd01 : 0x501;
		t.ops->set_sregs(t.cpu, &s);
		emu_tlb_flush(c);
		c->exc_vec = -1;
		int st = emu_read_bytes(c, hi + 0x100000, &v, 1, EMU_ACC_R);
		CHECK(st == EMU_ST_FAULT && c->exc_vec == EMU_V_GP && c->exc_err == 0,
		      "4-level: %#llx is not canonical: #GP(0) expected, got status %d vector %d",
		      (unsigned long long)(hi + 0x100000), st, c->exc_vec);
		s.cr3 = 0x34000;
		s.cr4 |= CR4_LA57;
		t.ops->set_sregs(t.cpu, &s);
		t.ram[0x100000] = 0x5a;
		emu_tlb_flush(c);
		st = emu_read_bytes(c, hi + 0x100000, &v, 1, EMU_ACC_R);
		CHECK(st == 0 && v == 0x5a, "5-level: %#llx should read 0x5a, got status %d vector %d",
		      (unsigned long long)(hi + 0x100000), st, c->exc_vec);
		sweep(&t, false, nxe, m, PML5E, 0x34000 + 8 * 255, hi + 0x100000, &n);
		sweep(&t, false, nxe, m, PML4E, 0x30000, hi + 0x100000, &n);
		sweep(&t, false, nxe, m, PTE, 0x33000 + 8 * 0x100, hi + 0x100000, &n);

		/* back to long mode for the next round */
		t_long_mode(&t);
	}
	c->vm->cfg.cpu_vendor_amd = 0;
	printf("emu_pte_rsvd: %u single-bit entries checked (MAXPHYADDR %u)\n", n, m);
	CHECK(n > 300, "only %u cases", n);
	t_fini(&t);
	return t_result("emu_pte_rsvd");
}
