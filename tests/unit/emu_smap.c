/* SPDX-License-Identifier: MIT */
/*
 * SMEP, SMAP, STAC and CLAC against the manuals' sentences (the oracle; kvm-unit-tests x86/smap.c
 * checks the same under QEMU TCG, tests/sh/kvm-unit-tests.sh):
 *   - SDM Vol. 3 4.6.1 "Determination of Access Rights", supervisor-mode accesses to user-mode
 *     addresses: "If CR4.SMAP = 1 ... If EFLAGS.AC = 1 and the access is explicit, data may be
 *     read from [written to] any user-mode address ...; If EFLAGS.AC = 0 or the access is implicit,
 *     data may not be read from [written to] any user-mode address." "If CR4.SMEP = 1, instructions
 *     may not be fetched from any user-mode address." Implicit: "accesses to the ... LDT to load a
 *     segment descriptor ... regardless of CPL".
 *   - user-mode accesses (CPL 3) are unaffected: they may read and write user-mode pages.
 *   - SDM Vol. 3 4.7, the #PF error code: P (bit 0), W/R (1), U/S (2) "the access causing the
 *     page-fault exception was a user-mode access" (an implicit access at CPL 3 is not), I/D (4) for
 *     an instruction fetch "if CR4.SMEP = 1" (or PAE/4-level paging with NXE).
 *   - SDM Vol. 2 "STAC"/"CLAC": set / clear EFLAGS.AC, no other flag; #UD "If the CPL > 0".
 *   - both with IA32_EFER.NXE = 1 and 0 (I/D then set by SMEP alone).
 *   - the TLB: an entry filled while AC = 1 does not outlive CLAC or a POPF that clears AC.
 *   - the jump cache (struct emu_jc): code the kernel ran does not run at CPL 3 from its entry.
 *   - CPUID.(EAX=07H,ECX=0H):EBX[7] SMEP and [20] SMAP advertised, and MOV to CR4 accepts both.
 * Layout: the first 2 MiB supervisor-mode (code, tables, stack, results), 0x200000-0x3fffff one
 * user-mode 2 MiB page (data at 0x200000, user code at USR_AT, user stack below 0x203000).
 */
#include "emu_harness.h"

#define RES 0x100000ull /* per event: vector, error code (or ~0), CR2, faulting RIP */
#define OUT 0x100800ull /* CPUID.7.EBX, RFLAGS after STC+STAC, after CLAC */
#define USR 0x200000ull
#define USR_AT (USR + 0x1000)

/* r15: where the handler resumes, r14 the RSP it resumes with; rdi: the next result slot */
GUEST(sm, ".code64",
	"mov $0x100000, %edi\n"
	"mov %rsp, %r14\n"
	"mov %cr4, %rax\n"
	"or $0x300000, %rax\n"                   /* SMEP | SMAP */
	"mov %rax, %cr4\n"
	"mov $7, %eax\n"
	"xor %ecx, %ecx\n"
	"cpuid\n"
	"mov %ebx, 0x100800\n"
	"stc\n"
	"stac\n"
	"pushf\n"
	"pop %rax\n"
	"mov %rax, 0x100808\n"                   /* AC and CF */
	"clac\n"
	"pushf\n"
	"pop %rax\n"
	"mov %rax, 0x100810\n"                   /* CF only */
	"lea 1f(%rip), %r15\n"
	"mov 0x200000, %rax\n"                   /* 0: read, AC = 0: #PF 0x1 */
	"1: lea 1f(%rip), %r15\n"
	"movq $1, 0x200000\n"                    /* 1: write, AC = 0: #PF 0x3 */
	"1: lea 1f(%rip), %r15\n"
	"stac\n"
	"mov 0x200000, %rax\n"                   /* explicit with AC = 1: allowed */
	"movq $0x42, 0x200008\n"
	"clac\n"
	"mov 0x200008, %rax\n"                   /* 2: the entry filled with AC = 1 is gone: #PF 0x1 */
	"1: lea 1f(%rip), %r15\n"
	"stac\n"
	"movq $0x43, 0x200008\n"
	"pushf\n"
	"andq $~0x40000, (%rsp)\n"
	"popf\n"                                 /* AC = 0 by POPF */
	"movq $0x44, 0x200008\n"                 /* 3: #PF 0x3, 0x43 stays */
	"1: lea 1f(%rip), %r15\n"
	"mov $0x40, %eax\n"
	"lldt %ax\n"                             /* the LDT lies in the user-mode page */
	"stac\n"
	"mov $0x0c, %eax\n"
	"mov %ax, %fs\n"                         /* 4: implicit read of LDT entry 1 with AC = 1: #PF 0x1 */
	"1: lea 1f(%rip), %r15\n"
	"clac\n"
	"mov $0x201000, %eax\n"
	"call *%rax\n"                           /* 5: fetch from a user-mode page: #PF 0x11 */
	"1: lea 1f(%rip), %r15\n"
	"stac\n"
	"mov $0x201000, %eax\n"
	"call *%rax\n"                           /* 6: AC does not matter to SMEP: #PF 0x11 */
	"1: clac\n"
	"lea sm_stubs+140(%rip), %r13\n"         /* #PF's stub, run at CPL 0 (events 0-6): for event 11 */
	"mov %r14, %rsp\n"
	"push $0x23\n"                           /* to CPL 3 at USR_AT: SS, RSP, RFLAGS (IOPL 3), CS, RIP */
	"push $0x203000\n"
	"push $0x3002\n"
	"push $0x2b\n"
	"push $0x201000\n"
	"iretq\n"
	".globl sm_noerr\n"
	"sm_noerr:\n"                            /* vector in eax; frame: rip, cs, rflags, rsp, ss */
	"mov %rax, (%rdi)\n"
	"movq $-1, 8(%rdi)\n"
	"movq $0, 16(%rdi)\n"
	"mov (%rsp), %rax\n"
	"mov %rax, 24(%rdi)\n"
	"mov %r15, (%rsp)\n"
	"mov %r14, 24(%rsp)\n"
	"add $32, %rdi\n"
	"iretq\n"
	".globl sm_err\n"
	"sm_err:\n"                              /* vector in eax; frame: error code, rip, ... */
	"mov %rax, (%rdi)\n"
	"pop %rax\n"
	"mov %rax, 8(%rdi)\n"
	"mov %cr2, %rax\n"
	"mov %rax, 16(%rdi)\n"
	"mov (%rsp), %rax\n"
	"mov %rax, 24(%rdi)\n"
	"mov %r15, (%rsp)\n"
	"mov %r14, 24(%rsp)\n"
	"add $32, %rdi\n"
	"iretq\n"
	".globl sm_stubs\n"
	"sm_stubs:\n"                            /* 10 bytes per vector 0..31: mov $v, %eax; jmp */
	".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	".byte 0xb8\n.long \\v\n.byte 0xe9\n"
	".if \\v == 8 || (\\v >= 10 && \\v <= 14) || \\v == 17 || \\v == 21\n"
	".long sm_err - (. + 4)\n"
	".else\n"
	".long sm_noerr - (. + 4)\n"
	".endif\n"
	".endr\n");
extern const uint8_t sm_stubs[];

/* at USR_AT, CPL 3 */
GUEST(us, ".code64",
	"mov %rsp, %r14\n"
	"lea 1f(%rip), %r15\n"
	"mov 0x200000, %rax\n"                   /* a user-mode access to a user-mode page: allowed */
	"movq $0x55, 0x200010\n"
	"mov 0x100000, %rax\n"                   /* 7: supervisor-mode page: #PF 0x5 */
	"1: lea 1f(%rip), %r15\n"
	"stac\n"                                 /* 8: #UD at CPL 3 */
	"1: lea 1f(%rip), %r15\n"
	"clac\n"                                 /* 9: #UD at CPL 3 */
	"1: lea 1f(%rip), %r15\n"
	"pushf\n"
	"orq $0x40000, (%rsp)\n"
	"popf\n"                                 /* AC = 1 at CPL 3 */
	"mov $0x0f, %eax\n"
	"mov %ax, %fs\n"                         /* 10: implicit, supervisor-mode: #PF 0x1 (no U/S) */
	"1: lea 1f(%rip), %r15\n"
	"call *%r13\n"                           /* 11: fetch from a supervisor-mode page the kernel ran:
						   * #PF 0x15, not its jump-cache entry */
	"1: mov $0x3f8, %dx\n"
	"out %al, %dx\n"
	"hlt\n");

struct ev { uint64_t vec, err, cr2, rip; };

static void setup(struct t_vm *t, bool nxe)
{
	t_init(t);
	t_long_mode(t);
	/* AM off: AC = 1 at CPL 3 must not turn on alignment checking here */
	struct kvm_sregs sr;
	t->ops->get_sregs(t->cpu, &sr);
	sr.cr0 &= ~(1ull << 18);
	sr.gdt.limit = 0x4f;
	if (!nxe)
		sr.efer &= ~(1ull << 11); /* I/D of a fetch fault then comes from CR4.SMEP alone */
	t->ops->set_sregs(t->cpu, &sr);
	t_w64(t, T_PD, 0x83);              /* 0-2 MiB: supervisor-mode (U/S = 0) */
	t_w64(t, T_PD + 8, USR | 0x87);    /* 2-4 MiB: user-mode */
	t_load(t, T_CODE, sm_start, sm_end);
	t_load(t, USR_AT, us_start, us_end);
	uint64_t stubs = T_CODE + (uint64_t)(sm_stubs - sm_start);
	for (int v = 0; v < 32; v++)
		t_gate(t, v, stubs + 10 * (uint64_t)v, 0, 0);
	memset(t->ram + RES, 0xee, 0x1000);
	/* GDT 0x40: an LDT descriptor (type 2, present, limit 0xff) whose base is the user-mode page */
	t_w64(t, T_GDT + 0x40, 0x00008200000000ffull | (USR << 16));
	t_w64(t, T_GDT + 0x48, 0);
}

static void run(bool nxe)
{
	struct t_vm t;
	setup(&t, nxe);
	fprintf(stderr, "IA32_EFER.NXE = %d\n", nxe);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	CHECK_EQ(t.run->io.port, 0x3f8);

	uint32_t ebx7 = t_r32(&t, OUT);
	CHECK(ebx7 & (1u << 7), "CPUID.(7,0):EBX = 0x%x: SMEP not advertised", ebx7);
	CHECK(ebx7 & (1u << 20), "CPUID.(7,0):EBX = 0x%x: SMAP not advertised", ebx7);
	uint64_t f1 = t_r64(&t, OUT + 8), f2 = t_r64(&t, OUT + 16);
	CHECK((f1 & 0x40001) == 0x40001, "RFLAGS after STC; STAC: 0x%llx (AC and CF)", (unsigned long long)f1);
	CHECK((f2 & 0x40001) == 0x1, "RFLAGS after CLAC: 0x%llx (CF only)", (unsigned long long)f2);

	const uint64_t stub14 = T_CODE + (uint64_t)(sm_stubs - sm_start) + 140;
	const struct { uint64_t vec, err, cr2; const char *what; } want[] = {
		{ 14, 0x1, USR, "supervisor read of a user-mode page, AC = 0" },
		{ 14, 0x3, USR, "supervisor write of a user-mode page, AC = 0" },
		{ 14, 0x1, USR + 8, "read after CLAC of a page read and written with AC = 1 (TLB)" },
		{ 14, 0x3, USR + 8, "write after POPF cleared AC (TLB)" },
		{ 14, 0x1, USR + 8, "implicit read (LDT descriptor) with AC = 1" },
		{ 14, 0x11, USR_AT, "supervisor fetch from a user-mode page, SMEP" },
		{ 14, 0x11, USR_AT, "supervisor fetch from a user-mode page, SMEP, AC = 1" },
		{ 14, 0x5, RES, "CPL 3 read of a supervisor-mode page" },
		{ 6, ~0ull, 0, "STAC at CPL 3" },
		{ 6, ~0ull, 0, "CLAC at CPL 3" },
		{ 14, 0x1, USR + 8, "implicit read (LDT descriptor) at CPL 3 with AC = 1" },
		{ 14, 0x15, stub14, "CPL 3 fetch from a supervisor-mode page run at CPL 0 before (jump cache)" },
	};
	const unsigned n = sizeof want / sizeof want[0];
	for (unsigned k = 0; k < n; k++) {
		struct ev e;
		memcpy(&e, t.ram + RES + 32 * k, sizeof e);
		CHECK(e.vec == want[k].vec, "event %u, %s: vector %llu, want %llu", k, want[k].what,
		      (unsigned long long)e.vec, (unsigned long long)want[k].vec);
		CHECK(e.err == want[k].err, "event %u, %s: error code 0x%llx, want 0x%llx", k, want[k].what,
		      (unsigned long long)e.err, (unsigned long long)want[k].err);
		if (want[k].vec == 14)
			CHECK(e.cr2 == want[k].cr2, "event %u, %s: CR2 0x%llx, want 0x%llx", k, want[k].what,
			      (unsigned long long)e.cr2, (unsigned long long)want[k].cr2);
	}
	uint64_t extra;
	memcpy(&extra, t.ram + RES + 32 * n, 8);
	CHECK(extra == 0xeeeeeeeeeeeeeeeeull, "an event more than the %u expected: vector 0x%llx", n,
	      (unsigned long long)extra);
	CHECK_EQ(t_r64(&t, USR + 8), 0x43);  /* the write with AC = 1 happened, the one after POPF not */
	CHECK_EQ(t_r64(&t, USR + 0x10), 0x55); /* CPL 3 wrote its own page */
	t_fini(&t);
}

int main(void)
{
	run(true);
	run(false);
	return t_result("emu_smap");
}
