/* SPDX-License-Identifier: MIT */
/*
 * Protection keys (PKU, and PKS of the Intel model) against the manuals' sentences (the oracle; the
 * host here has no PKU; kvm-unit-tests x86/pku.c and pks.c check the same under QEMU TCG,
 * tests/sh/kvm-unit-tests.sh):
 *   - SDM Vol. 3 4.6.2 "Protection Keys": with IA-32e paging the key is bits 62:59 of the leaf
 *     entry; a user-mode address's rights come from PKRU when CR4.PKE = 1, a supervisor-mode
 *     address's from IA32_PKRS when CR4.PKS = 1; "if ADi = 1, no data accesses are permitted";
 *     WDi = 1 denies user-mode writes, and supervisor-mode writes when CR0.WP = 1 ("If CR0.WP = 0,
 *     WDi does not affect supervisor-mode write accesses"); "Protection keys apply only to data
 *     accesses" (an instruction fetch from a page whose key has AD = 1 runs).
 *   - SDM Vol. 3 4.7: the #PF error code's PK (bit 5) is 1 for a data access that the key's rights
 *     deny, also when the access is a user-mode one to a supervisor-mode address (PKS).
 *   - SDM Vol. 2 "RDPKRU"/"WRPKRU": #UD if CR4.PKE = 0, #GP(0) if ECX != 0 (WRPKRU: or EDX != 0);
 *     RDPKRU clears EDX; both run at CPL 3.
 *   - SDM Vol. 4 IA32_PKRS (0x6E1): bits 63:32 reserved (#GP).
 *   - SDM Vol. 2 "CPUID" leaf 7 ECX: PKU (3), OSPKE (4) = CR4.PKE, PKS (31) on the Intel model;
 *     Vol. 1 13.5.7 / leaf 0xD: PKRU is XSAVE state component 9, 8 bytes at offset 2688 of the
 *     standard format; XSAVE stores it, XRSTOR loads it or (XSTATE_BV[9] = 0) its init value 0,
 *     and leaves it when RFBM[9] = 0.
 *   - the AMD model: PKU alike, no PKS (CPUID bit 31 clear, CR4.PKS and IA32_PKRS #GP).
 *   - the TLB: an entry filled while the key allowed the access does not outlive a WRPKRU, an
 *     XRSTOR or a WRMSR to IA32_PKRS that takes the right away.
 * Layout: 0-2 MiB supervisor-mode, key 0 (code, tables, stack, results, XSAVE area); 2-4 MiB a
 * user-mode page with key 1 (data at 0x200000, user code at USR_AT); 4-6 MiB the same physical
 * page as a supervisor-mode page with key 2.
 */
#include "emu_harness.h"

#define RES 0x100000ull /* per event: vector, error code (or ~0), CR2, faulting RIP */
#define OUT 0x100800ull
#define XSA 0x110000ull /* the XSAVE area */
#define USR 0x200000ull
#define USR_AT (USR + 0x1000)
#define SUP 0x400000ull

/* r15: where the handler resumes, r14 the RSP it resumes with; rdi: the next result slot */
GUEST(pk, ".code64",
	"mov $0x100000, %edi\n"
	"mov %rsp, %r14\n"
	"mov $7, %eax\n xor %ecx, %ecx\n cpuid\n mov %ecx, 0x100800\n"    /* leaf 7 ECX, CR4.PKE = 0 */
	"lea 1f(%rip), %r15\n xor %ecx, %ecx\n rdpkru\n"                 /* 0: #UD (PKE = 0) */
	"1: lea 1f(%rip), %r15\n xor %ecx, %ecx\n xor %edx, %edx\n wrpkru\n" /* 1: #UD */
	"1: mov %cr4, %rax\n or $0x1440000, %rax\n mov %rax, %cr4\n"      /* PKE PKS OSXSAVE */
	"mov $7, %eax\n xor %ecx, %ecx\n cpuid\n mov %ecx, 0x100804\n"    /* OSPKE now */
	"lea 1f(%rip), %r15\n mov $1, %ecx\n rdpkru\n"                   /* 2: #GP(0) */
	"1: lea 1f(%rip), %r15\n xor %ecx, %ecx\n mov $1, %edx\n wrpkru\n" /* 3: #GP(0) */
	"1: lea 1f(%rip), %r15\n mov $1, %ecx\n xor %edx, %edx\n wrpkru\n" /* 4: #GP(0) */
	"1: xor %ecx, %ecx\n xor %edx, %edx\n mov $0xdeadbeef, %eax\n wrpkru\n"
	"mov $-1, %rax\n mov $-1, %rdx\n rdpkru\n mov %rax, 0x100808\n mov %rdx, 0x100810\n"
	/* PKRU AD1 after the entries were filled with PKRU = 0 */
	"xor %eax, %eax\n wrpkru\n"
	"mov 0x200000, %rax\n movq $1, 0x200008\n"
	"mov $4, %eax\n wrpkru\n"
	"lea 1f(%rip), %r15\n mov 0x200000, %rax\n"                      /* 5: #PF 0x21 */
	"1: lea 1f(%rip), %r15\n movq $2, 0x200008\n"                    /* 6: #PF 0x23 */
	/* WD1: reads run, writes with CR0.WP = 1 do not, with WP = 0 they do */
	"1: mov $8, %eax\n wrpkru\n"
	"mov 0x200000, %rax\n"
	"lea 1f(%rip), %r15\n movq $3, 0x200008\n"                       /* 7: #PF 0x23 */
	"1: mov %cr0, %rax\n btr $16, %rax\n mov %rax, %cr0\n"
	"movq $4, 0x200008\n"                                             /* WP = 0: written */
	"bts $16, %rax\n mov %rax, %cr0\n"
	/* every key denied in PKRU: supervisor-mode pages do not care */
	"mov $-1, %eax\n wrpkru\n"
	"movl $5, 0x100818\n push %rax\n pop %rax\n"
	/* XSAVE component 9 */
	"mov $0x203, %eax\n xor %edx, %edx\n xsetbv\n"
	"mov $0xd, %eax\n xor %ecx, %ecx\n cpuid\n mov %eax, 0x10081c\n mov %ebx, 0x100820\n mov %ecx, 0x100824\n"
	"mov $0xd, %eax\n mov $9, %ecx\n cpuid\n mov %eax, 0x100828\n mov %ebx, 0x10082c\n"
	"xor %ecx, %ecx\n xor %edx, %edx\n mov $0x55555554, %eax\n wrpkru\n"
	"mov $0x110000, %ebx\n mov $0x203, %eax\n xsave (%rbx)\n"         /* PKRU at 0x110000 + 2688 */
	"mov 0x200(%rbx), %rax\n mov %rax, 0x100848\n"                /* XSTATE_BV */
	"xor %eax, %eax\n wrpkru\n mov 0x200000, %rax\n"                  /* filled with PKRU = 0 */
	"mov $0x203, %eax\n xrstor (%rbx)\n"                              /* PKRU = 0x55555554: AD1 */
	"lea 1f(%rip), %r15\n mov 0x200000, %rax\n"                      /* 8: #PF 0x21 */
	"1: xor %ecx, %ecx\n rdpkru\n mov %eax, 0x100830\n"
	"andq $~0x200, 0x200(%rbx)\n mov $0x203, %eax\n xor %edx, %edx\n xrstor (%rbx)\n" /* init: 0 */
	"rdpkru\n mov %eax, 0x100834\n mov 0x200000, %rax\n"
	"mov $8, %eax\n wrpkru\n mov $3, %eax\n xrstor (%rbx)\n"         /* RFBM[9] = 0: PKRU stays */
	"rdpkru\n mov %eax, 0x100838\n"
	"xor %eax, %eax\n wrpkru\n"
	/* PKS: the supervisor-mode alias at 0x400000 has key 2 */
	"mov 0x400000, %rax\n"                                            /* filled with PKRS = 0 */
	"mov $0x6e1, %ecx\n mov $0x10, %eax\n xor %edx, %edx\n wrmsr\n"   /* AD2 */
	"rdmsr\n mov %eax, 0x10083c\n mov %edx, 0x100840\n"
	"lea 1f(%rip), %r15\n mov 0x400000, %rax\n"                      /* 9: #PF 0x21 */
	"1: mov 0x200000, %rax\n"                                         /* user-mode page: PKRU's */
	"mov $0x20, %eax\n wrmsr\n"                                       /* WD2 */
	"mov 0x400000, %rax\n"
	"lea 1f(%rip), %r15\n movq $6, 0x400008\n"                       /* 10: #PF 0x23 */
	"1: mov %cr0, %rax\n btr $16, %rax\n mov %rax, %cr0\n"
	"movq $7, 0x400008\n"                                             /* WP = 0: written */
	"bts $16, %rax\n mov %rax, %cr0\n"
	"lea 1f(%rip), %r15\n mov $1, %edx\n wrmsr\n"                    /* 11: #GP(0), bits 63:32 */
	"1: mov $0x10, %eax\n xor %edx, %edx\n wrmsr\n"                  /* AD2 for CPL 3 */
	"xor %ecx, %ecx\n mov $4, %eax\n wrpkru\n"                        /* AD1 */
	"mov %r14, %rsp\n"
	"push $0x23\n"                           /* to CPL 3 at USR_AT: SS, RSP, RFLAGS (IOPL 3), CS, RIP */
	"push $0x203000\n"
	"push $0x3002\n"
	"push $0x2b\n"
	"push $0x201000\n"
	"iretq\n"
	".globl pk_noerr\n"
	"pk_noerr:\n"                            /* vector in eax; frame: rip, cs, rflags, rsp, ss */
	"mov %rax, (%rdi)\n"
	"movq $-1, 8(%rdi)\n"
	"movq $0, 16(%rdi)\n"
	"mov (%rsp), %rax\n"
	"mov %rax, 24(%rdi)\n"
	"mov %r15, (%rsp)\n"
	"mov %r14, 24(%rsp)\n"
	"add $32, %rdi\n"
	"iretq\n"
	".globl pk_err\n"
	"pk_err:\n"                              /* vector in eax; frame: error code, rip, ... */
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
	".globl pk_stubs\n"
	"pk_stubs:\n"                            /* 10 bytes per vector 0..31: mov $v, %eax; jmp */
	".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	".byte 0xb8\n.long \\v\n.byte 0xe9\n"
	".if \\v == 8 || (\\v >= 10 && \\v <= 14) || \\v == 17 || \\v == 21\n"
	".long pk_err - (. + 4)\n"
	".else\n"
	".long pk_noerr - (. + 4)\n"
	".endif\n"
	".endr\n");
extern const uint8_t pk_stubs[];

/* at USR_AT, CPL 3, in the user-mode page whose key 1 has AD = 1: fetching it is allowed. No stack
 * use: the stack page has key 1 too. */
GUEST(pu, ".code64",
	"mov %rsp, %r14\n"
	"lea 1f(%rip), %r15\n"
	"mov 0x200000, %rax\n"                   /* 12: #PF 0x25 (P U/S PK) */
	"1: lea 1f(%rip), %r15\n"
	"mov 0x400000, %rax\n"                   /* 13: supervisor-mode page, PKRS AD2: #PF 0x25 */
	"1: xor %ecx, %ecx\n xor %edx, %edx\n mov $8, %eax\n wrpkru\n" /* WD1, at CPL 3 */
	"mov 0x200000, %rax\n"
	"lea 1f(%rip), %r15\n"
	"movq $8, 0x200008\n"                    /* 14: #PF 0x27 (P W U/S PK), with CR0.WP = 1 or 0 */
	"1: rdpkru\n mov %eax, %r12d\n"
	"xor %eax, %eax\n wrpkru\n"
	"mov %r12, 0x200010\n"                   /* RDPKRU at CPL 3 read 8 */
	"mov $0x3f8, %dx\n"
	"out %al, %dx\n"
	"hlt\n");

/* The AMD model: PKU as on Intel, no PKS (CPUID.(7,0):ECX[31] = 0, so CR4.PKS is reserved and
 * IA32_PKRS absent: #GP). r13: the length of the instruction the #GP handler skips. */
GUEST(pa, ".code64",
	"mov $7, %eax\n xor %ecx, %ecx\n cpuid\n mov %ecx, 0x100000\n"
	"mov %cr4, %rax\n or $0x400000, %rax\n mov %rax, %cr4\n"       /* PKE: accepted */
	"xor %ecx, %ecx\n xor %edx, %edx\n mov $0xc, %eax\n wrpkru\n rdpkru\n mov %eax, 0x100004\n"
	"mov $3, %r13d\n"
	"mov %cr4, %rax\n or $0x1000000, %rax\n mov %rax, %cr4\n"      /* PKS: #GP */
	"mov $2, %r13d\n"
	"mov $0x6e1, %ecx\n xor %eax, %eax\n xor %edx, %edx\n wrmsr\n" /* #GP */
	"rdmsr\n"                                                        /* #GP */
	"mov %r12d, 0x100008\n"
	"mov $0x3f8, %dx\n out %al, %dx\n hlt\n"
	".globl pa_gp\npa_gp:\n"
	"inc %r12d\n"
	"add %r13, 8(%rsp)\n"
	"add $8, %rsp\n"
	"iretq\n");
extern const uint8_t pa_gp[];

static void amd_model(void)
{
	struct t_vm t;
	t_init(&t);
	/* t_init's VM is the Intel model: replace it by the AMD one (as emu_amd_pmc.c) */
	t.ops->vcpu_destroy(t.cpu);
	t.ops->vm_destroy(t.vm);
	char err[256];
	struct blvm_engine_config cfg = { .nr_vcpus = 1, .cpu_vendor_amd = 1 };
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)t.ram };
	if (t.ops->vm_create(&cfg, &t.vm, err, sizeof err) || t.ops->set_user_memory_region(t.vm, &r) ||
	    t.ops->vcpu_create(t.vm, 0, &t.cpu, &t.run)) {
		fprintf(stderr, "setup failed: %s\n", err);
		exit(1);
	}
	t_long_mode(&t);
	t_load(&t, T_CODE, pa_start, pa_end);
	t_gate(&t, 13, T_CODE + (uint64_t)(pa_gp - pa_start), 0, 0);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	uint32_t ecx7 = t_r32(&t, 0x100000);
	CHECK((ecx7 & 0x80000008) == 0x8, "AMD: CPUID.(7,0):ECX = 0x%x: PKU, no PKS", ecx7);
	CHECK_EQ(t_r32(&t, 0x100004), 0xc);  /* RDPKRU after WRPKRU */
	CHECK_EQ(t_r32(&t, 0x100008), 3);    /* MOV CR4 with PKS, WRMSR and RDMSR 0x6E1: #GP */
	t_fini(&t);
}

struct ev { uint64_t vec, err, cr2, rip; };

int main(void)
{
	amd_model();
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_w64(&t, T_PD, 0x83);                                /* 0-2 MiB: supervisor-mode, key 0 */
	t_w64(&t, T_PD + 8, USR | 0x87 | (1ull << 59));       /* 2-4 MiB: user-mode, key 1 */
	t_w64(&t, T_PD + 16, USR | 0x83 | (2ull << 59));      /* 4-6 MiB: supervisor-mode, key 2 */
	t_load(&t, T_CODE, pk_start, pk_end);
	t_load(&t, USR_AT, pu_start, pu_end);
	uint64_t stubs = T_CODE + (uint64_t)(pk_stubs - pk_start);
	for (int v = 0; v < 32; v++)
		t_gate(&t, v, stubs + 10 * (uint64_t)v, 0, 0);
	memset(t.ram + RES, 0xee, 0x800);
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	CHECK_EQ(t.run->io.port, 0x3f8);

	uint32_t ecx7 = t_r32(&t, OUT), ecx7_pke = t_r32(&t, OUT + 4);
	CHECK((ecx7 & 0x80000018) == 0x80000008, "CPUID.(7,0):ECX = 0x%x with CR4.PKE = 0: PKU, PKS, no OSPKE", ecx7);
	CHECK((ecx7_pke & 0x80000018) == 0x80000018, "CPUID.(7,0):ECX = 0x%x with CR4.PKE = 1: OSPKE", ecx7_pke);
	CHECK_EQ(t_r64(&t, OUT + 8), 0xdeadbeef);    /* RDPKRU: RAX = PKRU, zero-extended */
	CHECK_EQ(t_r64(&t, OUT + 16), 0);            /* RDPKRU: EDX = 0 */
	CHECK_EQ(t_r32(&t, OUT + 24), 5);            /* supervisor-mode page with PKRU = ~0 */
	CHECK_EQ(t_r32(&t, OUT + 28), 0x203);        /* leaf 0xD: XCR0 bits 0, 1, 9 */
	CHECK_EQ(t_r32(&t, OUT + 32), 2688 + 8);     /* size for XCR0 = 0x203 */
	CHECK_EQ(t_r32(&t, OUT + 36), 2688 + 8);     /* the largest size */
	CHECK_EQ(t_r32(&t, OUT + 40), 8);            /* component 9: size */
	CHECK_EQ(t_r32(&t, OUT + 44), 2688);         /* component 9: offset */
	CHECK_EQ(t_r64(&t, XSA + 2688), 0x55555554); /* XSAVE stored PKRU, bytes 4-7 zero */
	CHECK_EQ(t_r64(&t, OUT + 72), 0x203);        /* XSTATE_BV after XSAVE with RFBM 0x203 */
	CHECK_EQ(t_r32(&t, OUT + 48), 0x55555554);   /* XRSTOR loaded it */
	CHECK_EQ(t_r32(&t, OUT + 52), 0);            /* XSTATE_BV[9] = 0: the init value */
	CHECK_EQ(t_r32(&t, OUT + 56), 8);            /* RFBM[9] = 0: unchanged */
	CHECK_EQ(t_r32(&t, OUT + 60), 0x10);         /* RDMSR IA32_PKRS */
	CHECK_EQ(t_r32(&t, OUT + 64), 0);

	static const struct { uint64_t vec, err, cr2; const char *what; } want[] = {
		{ 6, ~0ull, 0, "RDPKRU with CR4.PKE = 0" },
		{ 6, ~0ull, 0, "WRPKRU with CR4.PKE = 0" },
		{ 13, 0, 0, "RDPKRU with ECX = 1" },
		{ 13, 0, 0, "WRPKRU with EDX = 1" },
		{ 13, 0, 0, "WRPKRU with ECX = 1" },
		{ 14, 0x21, USR, "supervisor read, user-mode page, AD1 set after the TLB fill" },
		{ 14, 0x23, USR + 8, "supervisor write, user-mode page, AD1 set after the TLB fill" },
		{ 14, 0x23, USR + 8, "supervisor write, user-mode page, WD1, CR0.WP = 1" },
		{ 14, 0x21, USR, "read after XRSTOR loaded PKRU with AD1 (TLB)" },
		{ 14, 0x21, SUP, "supervisor read, supervisor-mode page, PKRS AD2 (TLB)" },
		{ 14, 0x23, SUP + 8, "supervisor write, supervisor-mode page, PKRS WD2, CR0.WP = 1" },
		{ 13, 0, 0, "WRMSR IA32_PKRS with bits 63:32" },
		{ 14, 0x25, USR, "CPL 3 read, user-mode page, AD1 (its code runs from that page)" },
		{ 14, 0x25, SUP, "CPL 3 read, supervisor-mode page, PKRS AD2: PK with U/S" },
		{ 14, 0x27, USR + 8, "CPL 3 write, user-mode page, WD1" },
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
	CHECK_EQ(t_r64(&t, USR + 8), 7);     /* WP = 0 writes happened (4 through key 1, 7 through key 2) */
	CHECK_EQ(t_r64(&t, USR + 0x10), 8);  /* RDPKRU at CPL 3 */
	t_fini(&t);
	return t_result("emu_pku");
}
