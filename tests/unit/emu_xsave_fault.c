/* SPDX-License-Identifier: MIT */
/*
 * emu_xsave_fault: XSAVE whose area spans two pages, one of which cannot be written, leaves memory
 * as it was. XSAVE writes two places when RFBM[9] = 1: the legacy region and header (bytes 0-575)
 * and PKRU (state component 9, 8 bytes at offset 2688 of the standard format, SDM Vol. 1 13.4.3,
 * 13.5.7). A #PF on either raises the exception before the instruction completes (SDM Vol. 3 6.5:
 * a fault is reported "in such a way that the instruction can be restarted", and the engine's
 * rule, exec.h, is that a faulting instruction writes nothing), so neither place may change:
 *   - "ro": the legacy region's page is read-only (CR0.WP = 1), PKRU's page writable: #PF with
 *     P|W at the area, and PKRU's 8 bytes unchanged (before the fix, PKRU was written first);
 *   - "np": the area's last page (PKRU's) is not present: #PF with W at PKRU's slot, and the
 *     legacy region unchanged;
 *   - "rw": both writable: XSAVE completes, PKRU's slot holds PKRU and XSTATE_BV has bits 0, 1, 9.
 * Layout: the area at 0x201c00 (legacy region in page 0x201000, PKRU at 0x202680 in page
 * 0x202000), mapped by a 4 KiB page table at 0x30000 for 0x200000-0x3fffff (PD entry 1).
 */
#include "emu_harness.h"
#include "emu/emu.h"

#define OUT 0x100000ull /* error code, CR2, marker (1 = #PF handler ran, 2 = XSAVE completed) */
#define AREA 0x201c00ull
#define PKRU_SLOT (AREA + 2688)
#define PKRU_VAL 0x55555550u

GUEST(xf, ".code64",
	"mov %cr4, %rax\n or $0x440600, %rax\n mov %rax, %cr4\n"      /* OSFXSR OSXMMEXCPT OSXSAVE PKE */
	"xor %ecx, %ecx\n xor %edx, %edx\n mov $0x203, %eax\n xsetbv\n" /* XCR0: x87 SSE PKRU */
	"xor %ecx, %ecx\n xor %edx, %edx\n mov $0x55555550, %eax\n wrpkru\n"
	"mov $-1, %eax\n mov $-1, %edx\n mov $0x201c00, %edi\n xsave (%rdi)\n"
	"movq $2, 0x100010\n hlt\n"
	".globl xf_pf\n"
	"xf_pf:\n pop %rax\n mov %rax, 0x100000\n mov %cr2, %rax\n mov %rax, 0x100008\n"
	"movq $1, 0x100010\n hlt\n");
extern const uint8_t xf_pf[];

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t k = 0; k < n; k++)
		if (p[k] != v)
			return false;
	return true;
}

/* one run; pt_ro / pt_np: the 4 KiB page (index in the table) made read-only / not present */
static void one(const char *name, int pt_ro, int pt_np)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, xf_start, xf_end);
	t_gate(&t, 14, T_CODE + (uint64_t)(xf_pf - xf_start), 0, 0);
	t_w64(&t, T_PD + 8, 0x30000 | 3); /* supervisor, writable: PKRU's keys do not apply */
	for (uint64_t k = 0; k < 512; k++)
		t_w64(&t, 0x30000 + 8 * k, (0x200000 + (k << 12)) | 3);
	if (pt_ro >= 0)
		t_w64(&t, 0x30000 + 8 * (unsigned)pt_ro, (0x200000 + ((uint64_t)pt_ro << 12)) | 1);
	if (pt_np >= 0)
		t_w64(&t, 0x30000 + 8 * (unsigned)pt_np, 0);
	memset(t.ram + 0x201000, 0xaa, 0x2000);

	int ex = t_run(&t);
	CHECK(ex == KVM_EXIT_HLT, "%s: exit %d", name, ex);
	uint64_t mark = t_r64(&t, OUT + 16), err = t_r64(&t, OUT), cr2 = t_r64(&t, OUT + 8);
	const uint8_t *legacy = t.ram + AREA, *pk = t.ram + PKRU_SLOT;
	if (pt_ro >= 0) {
		CHECK(mark == 1 && err == 3 && cr2 == AREA, "%s: #PF P|W at %#llx expected: marker %llu error %#llx "
		      "CR2 %#llx", name, (unsigned long long)AREA, (unsigned long long)mark,
		      (unsigned long long)err, (unsigned long long)cr2);
		CHECK(all(pk, 8, 0xaa), "%s: XSAVE faulted on the legacy region but wrote PKRU's slot "
		      "(%02x %02x %02x %02x)", name, pk[0], pk[1], pk[2], pk[3]);
		CHECK(all(legacy, 576, 0xaa), "%s: the read-only legacy region changed", name);
	} else if (pt_np >= 0) {
		CHECK(mark == 1 && err == 2 && cr2 == PKRU_SLOT, "%s: #PF W at %#llx expected: marker %llu error "
		      "%#llx CR2 %#llx", name, (unsigned long long)PKRU_SLOT, (unsigned long long)mark,
		      (unsigned long long)err, (unsigned long long)cr2);
		CHECK(all(legacy, 576, 0xaa), "%s: XSAVE faulted on PKRU's page but wrote the legacy region",
		      name);
	} else {
		CHECK(mark == 2, "%s: XSAVE did not complete (marker %llu, error %#llx, CR2 %#llx)", name,
		      (unsigned long long)mark, (unsigned long long)err, (unsigned long long)cr2);
		CHECK_EQ(t_r64(&t, PKRU_SLOT), PKRU_VAL);
		CHECK_EQ(t_r64(&t, AREA + 512) & 0x203, 0x203);
		CHECK_EQ(t_r32(&t, AREA) & 0xffff, 0x37f); /* FCW after RESET */
	}
	t_fini(&t);
}

int main(void)
{
	{
		/* XSAVE is advertised only when the host has it (fpu.c: the host runs the unit) */
		struct t_vm t;
		t_init(&t);
		uint32_t o[4];
		emu_cpuid((struct emu_vcpu *)t.cpu, 1, 0, o);
		t_fini(&t);
		if (!(o[2] & (1u << 26))) {
			printf("skip: the host has no XSAVE, so the engine does not offer it\n");
			return 77;
		}
	}
	one("rw", -1, -1);
	one("ro", 1, -1);
	one("np", -1, 2);
	return t_result("emu_xsave_fault");
}
