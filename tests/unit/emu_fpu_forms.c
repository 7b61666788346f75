/* SPDX-License-Identifier: MIT */
/*
 * emu_fpu_forms: every x87 / MMX / SSE..SSE4.2 / FXSR / XSAVE (and PCLMULQDQ, MOVBE) instruction form
 * Zydis knows (emu_fpu_enum.h: found by decoding the opcode maps) must get a handler from the engine's
 * selector (emu_select) when CPUID advertises its feature -- not emu_h_unimpl, not #UD -- and must
 * fall to "unimplemented" when it does not. Forms deliberately left out are listed below with the
 * reason, and their feature must not be advertised.
 *
 * Oracle: Zydis's own ISA-set information for each decoded encoding; CPUID leaf 1 as the engine
 * reports it (through emu_fpu_advertised, the same table the selector uses) and as the guest reads it.
 */
#include "emu_harness.h"
#include "emu_fpu_enum.h"
#include "emu/emu.h"

/* forms deliberately not handled: none. (MONITOR/MWAIT are ISA set MONITOR, not SSE3, in Zydis; the
 * engine does not advertise CPUID.1:ECX[3].) */
static const char *const left_out[] = { NULL };

struct st {
	struct emu_vcpu *c;
	unsigned enc, ok, notadv, bad;
	char seen_bad[64][96];
	unsigned nseen;
	unsigned per_set[ZYDIS_ISA_SET_MAX_VALUE + 1];
};

static void cb(const uint8_t *b, unsigned len, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
	       void *arg)
{
	struct st *s = arg;
	struct emu_insn i[2];
	memset(i, 0, sizeof i);
	s->enc++;
	int sel = emu_select(s->c, zi, zo, &i[0]);
	bool handled = sel != EMU_SEL_BAD && i[0].fn != emu_h_unimpl && i[0].fn != emu_h_ud;
	bool adv = emu_fpu_advertised(zi);
	char name[96];
	fe_form_name(zi, zo, name, sizeof name);
	for (unsigned k = 0; left_out[k]; k++)
		if (!strcmp(left_out[k], name))
			return;
	if (handled && adv) {
		s->ok++;
		s->per_set[zi->meta.isa_set]++;
		return;
	}
	if (!adv && !handled) {
		s->notadv++;
		return;
	}
	s->bad++;
	for (unsigned k = 0; k < s->nseen; k++)
		if (!strcmp(s->seen_bad[k], name))
			return;
	if (s->nseen < 64)
		snprintf(s->seen_bad[s->nseen++], sizeof s->seen_bad[0], "%s", name);
	char hex[48] = "";
	for (unsigned k = 0; k < len && k < 15; k++)
		sprintf(hex + 3 * k, "%02x ", b[k]);
	fprintf(stderr, "FAIL %s (%s): %s, CPUID %s\n", name, hex, handled ? "handled" : "no handler",
		adv ? "advertises it" : "does not advertise it");
}

int main(void)
{
	struct t_vm t;
	t_init(&t);
	static struct st s;
	s.c = (struct emu_vcpu *)t.cpu;
	fe_enumerate(cb, &s);
	printf("emu_fpu_forms: %u encodings of the x87/MMX/SSE..SSE4.2/FXSR/XSAVE sets: %u with a handler, "
	       "%u not advertised (and not handled), %u wrong\n", s.enc, s.ok, s.notadv, s.bad);
	for (unsigned k = 0; k <= ZYDIS_ISA_SET_MAX_VALUE; k++)
		if (s.per_set[k])
			printf("  %-12s %5u encodings handled\n", ZydisISASetGetString((ZydisISASet)k), s.per_set[k]);
	CHECK(s.bad == 0, "%u encodings without a handler or advertised wrongly", s.bad);
	/* CPUID as the guest sees it: the leaf-1 bits of what is handled */
	uint32_t o[4];
	emu_cpuid(s.c, 1, 0, o);
	CHECK((o[3] & 0x07800001u) == 0x07800001u, "leaf 1 EDX %#x: FPU MMX FXSR SSE SSE2", o[3]);
	CHECK((o[2] & 0x00180201u) == 0x00180201u, "leaf 1 ECX %#x: SSE3 SSSE3 SSE4.1 SSE4.2", o[2]);
	CHECK((o[2] & (1u << 28)) == 0, "leaf 1 ECX %#x: AVX must stay off", o[2]);
	CHECK((o[2] & (1u << 27)) == 0, "leaf 1 ECX %#x: OSXSAVE with CR4.OSXSAVE=0", o[2]);
	t_fini(&t);
	return t_result("emu_fpu_forms");
}
