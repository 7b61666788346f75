/* SPDX-License-Identifier: MIT */
/*
 * sys-int: software interrupts and system calls (SDM Vol. 2A INT n/INT3, Vol. 2B SYSCALL, SYSRET;
 * Vol. 3A 6.12.1.1 "Protection of Exception- and Interrupt-Handler Procedures", 6.14 64-bit
 * interrupt delivery, 7.7 TSS RSP0). User routines run at CPL 3 in pages mapped with U=1 (the GDT,
 * TSS and trip machinery are pg-common/user.h's). Checked:
 *   - at CPL 0: INT3 -> #BP with RIP after the INT3; INT 0x41 through a DPL-0 gate, RIP after it,
 *     no error code;
 *   - SYSCALL (EFER.SCE, STAR, LSTAR, FMASK): the user code ran with CS = 0x2b; RCX = the instruction
 *     after SYSCALL, R11 = the user RFLAGS (DF set by the user), the kernel runs with CS = 0x08,
 *     SS = 0x10 from STAR[47:32] and RFLAGS with DF cleared by FMASK;
 *   - SYSRETQ: lands at RCX at CPL 3 with CS = STAR[63:48]+16 | 3 = 0x2b, SS = +8 | 3 = 0x23,
 *     RFLAGS = R11;
 *   - INT 0x80 at CPL 3 through a DPL-0 gate: #GP with the IDT bit and vector 0x80 as the error code,
 *     RIP at the INT; through a DPL-3 gate: the handler runs on TSS.RSP0 with the user's CS, SS, RSP and
 *     the RIP after the INT in its frame, and RAX comes back.
 */
#include "rt.h"
#include "pg-common/pg.h"
#include "pg-common/user.h"

#define P_UCODE 0  /* the user routines, P|U, read-only */
#define P_USTACK 1 /* user stack, P|W|U */
#define P_URO 2    /* user read-only data */
#define OFF 0x3f0
#define V_URO 0x6a09e667f3bcc908ull

#define STAR_SYSRET_BASE 0x18 /* SYSRETQ: CS = 0x18 + 16, SS = 0x18 + 8, both RPL 3 */
#define RFLAGS_DF 0x400ull

__asm__(".text\n"
	"	.balign 4096\n"
	".globl user_blob, u_sys, u_sys_end, u_int80, u_int80_insn, u_int80_end, u_land, u_land_ud\n"
	"user_blob:\n"
	"u_sys:	movq (%rdi), %rax\n"
	"	movl %cs, %edx\n"
	"	std\n" /* FMASK must clear it for the kernel; R11 must keep it */
	"	syscall\n"
	"u_sys_end:\n"
	"	ud2\n"
	"u_int80:	movq (%rdi), %rax\n"
	"u_int80_insn:	int $0x80\n"
	"u_int80_end:	ud2\n"
	"u_land:	movl %cs, %edx\n" /* SYSRETQ lands here */
	"	movl %ss, %ecx\n"
	"	pushfq\n"
	"	popq %rsi\n"
	"	movq %rsp, %rdi\n"
	"u_land_ud:	ud2\n"
	"	.balign 4096\n");
extern char user_blob[], u_sys[], u_sys_end[], u_int80[], u_int80_insn[], u_int80_end[], u_land[], u_land_ud[];

static uint8_t ustack[4096] __attribute__((aligned(4096)));
static uint64_t uro[512] __attribute__((aligned(4096)));

static uint64_t uva(const char *sym) { return pg_va(P_UCODE) + (uint64_t)(sym - user_blob); }
static uint64_t blob_off(uint64_t va) { return va - pg_va(P_UCODE); }
static uint64_t stack_off(uint64_t rsp) { return user_stack_top - rsp; }

/* #UD from the SYSRET landing: its registers tell what the user code saw. */
static volatile uint64_t land_cs, land_ss, land_flags, land_rsp;
static void on_ud(struct rt_frame *f)
{
	land_cs = f->rdx;
	land_ss = f->rcx;
	land_flags = f->rsi;
	land_rsp = f->rdi;
	user_ud(f);
}

static volatile uint64_t int80_count, int80_cs, int80_ss, int80_rip, int80_rsp, int80_on_kstack;
static void on_int80(struct rt_frame *f)
{
	int80_count++;
	int80_cs = f->cs;
	int80_ss = f->ss;
	int80_rip = f->rip;
	int80_rsp = f->rsp;
	uint64_t fa = (uint64_t)(uintptr_t)f;
	int80_on_kstack = fa >= (uint64_t)(uintptr_t)user_kstack && fa < (uint64_t)(uintptr_t)(user_kstack + sizeof user_kstack);
	user_leave(f);
}

static volatile uint64_t trap_count, trap_vector, trap_rip, trap_error;
static void on_trap(struct rt_frame *f)
{
	trap_count++;
	trap_vector = f->vector;
	trap_rip = f->rip;
	trap_error = f->error;
}

static void test_cpl0(void)
{
	rt_printf("INT3 and INT n at CPL 0\n");
	uint64_t after;
	rt_set_handler(3, on_trap);
	trap_count = 0;
	__asm__ volatile("int3\n1:\tlea 1b(%%rip), %0" : "=r"(after) : : "memory");
	check("  INT3: #BP once", trap_count == 1 && trap_vector == 3, 1);
	check("  INT3: RIP = the instruction after the INT3", trap_rip == after, 1);
	rt_set_handler(0x41, on_trap);
	trap_count = 0;
	__asm__ volatile("int $0x41\n1:\tlea 1b(%%rip), %0" : "=r"(after) : : "memory");
	check("  INT 0x41 (DPL-0 gate): the handler ran once", trap_count == 1 && trap_vector == 0x41, 1);
	check("  INT 0x41: RIP = the instruction after it", trap_rip == after, 1);
	check("  INT 0x41: no error code", trap_error, 0);
	rt_set_handler(0x41, NULL);
	rt_set_handler(3, pg_trap);
}

int guest_main(void)
{
	rt_printf("sys-int: INT3, INT n, SYSCALL, SYSRET between CPL 3 and CPL 0\n");
	pg_catch_all();
	test_cpl0();
	pg_init();
	user_load_tables();
	rt_set_handler(14, user_fault);
	rt_set_handler(13, user_fault);
	rt_set_handler(6, on_ud);
	rt_set_handler(0x80, on_int80);
	uro[OFF / 8] = V_URO;
	pg_map(P_UCODE, pg_pa(user_blob) | PTE_P | PTE_U);
	pg_map(P_USTACK, pg_pa(ustack) | PTE_P | PTE_W | PTE_U);
	pg_map(P_URO, pg_pa(uro) | PTE_P | PTE_U);
	user_stack_top = pg_va(P_USTACK) + 4096;

	struct rt_cpuid ext = cpuid(0x80000000, 0);
	check("CPUID.80000001H:EDX[11] SYSCALL", ext.eax >= 0x80000001 && (cpuid(0x80000001, 0).edx & (1u << 11)), 1);
	wrmsr(MSR_STAR, (uint64_t)SEL_KCODE << 32 | (uint64_t)STAR_SYSRET_BASE << 48);
	wrmsr(MSR_LSTAR, (uint64_t)(uintptr_t)syscall_entry);
	wrmsr(MSR_FMASK, 0x47700); /* TF IF DF IOPL AC */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	check("STAR reads back", rdmsr(MSR_STAR), (uint64_t)SEL_KCODE << 32 | (uint64_t)STAR_SYSRET_BASE << 48);
	check("LSTAR reads back", rdmsr(MSR_LSTAR) == (uint64_t)(uintptr_t)syscall_entry, 1);
	check("FMASK reads back", rdmsr(MSR_FMASK), 0x47700);
	check("EFER.SCE is set", rdmsr(MSR_EFER) & EFER_SCE, EFER_SCE);

	rt_printf("SYSCALL from CPL 3\n");
	user_reset();
	check("  RAX survives (the value the user read)", user_call(uva(u_sys), pg_va(P_URO) + OFF, 0), V_URO);
	check("  one SYSCALL, no fault", user_syscalls == 1 && pg_last.n == 0 && user_ud_count == 0, 1);
	check("  the user code ran with CS = 0x2b", user_sys_rdx, SEL_UCODE);
	check("  RCX = the instruction after SYSCALL", blob_off(user_sys_rcx), (uint64_t)(u_sys_end - user_blob));
	check("  R11 = the user RFLAGS (DF set)", user_sys_r11, 0x2 | RFLAGS_DF);
	check("  kernel CS = STAR[47:32]", user_sys_kcs, SEL_KCODE);
	check("  kernel SS = STAR[47:32] + 8", user_sys_kss, SEL_KDATA);
	check("  kernel RFLAGS = user RFLAGS & ~FMASK", user_sys_kflags, 0x2);

	rt_printf("SYSRETQ to CPL 3\n");
	user_reset();
	uint64_t flags = 0x2 | 0x1 | 0x800 | RFLAGS_DF; /* CF OF DF; IF stays clear */
	user_sysret(uva(u_land), flags);
	check("  it landed at RCX and came back through UD2", user_ud_count == 1 && pg_last.n == 0 &&
	      blob_off(user_ud_rip) == (uint64_t)(u_land_ud - user_blob), 1);
	check("  CS = STAR[63:48] + 16 | 3", land_cs, STAR_SYSRET_BASE + 16 + 3);
	check("  SS = STAR[63:48] + 8 | 3", land_ss, STAR_SYSRET_BASE + 8 + 3);
	check("  RFLAGS = R11", land_flags, flags);
	check("  RSP unchanged by SYSRET", stack_off(land_rsp), 0);
	check("  the #UD frame's CS", user_ud_cs, SEL_UCODE);

	rt_printf("INT 0x80 at CPL 3 through a DPL-0 gate\n");
	user_set_gate_dpl(0x80, 0);
	user_reset();
	check("  it faults", user_call(uva(u_int80), pg_va(P_URO) + OFF, 0), PG_SENTINEL);
	check("  #GP from CPL 3", pg_last.n == 1 && pg_last.vector == 13 && pg_last.cs == SEL_UCODE, 1);
	/* The error code names IDT entry 0x80 with the IDT bit: 0x80 << 3 | 2 = 0x402 (SDM 6.13).
	 * QEMU 7.2 TCG reports 0x80 << 4 | 2 = 0x802 in long mode (do_interrupt64: intno * 16 + 2),
	 * so both are accepted; the low three bits (IDT=1, EXT=0) must be exact. */
	check("  error code: IDT bit, entry 0x80 (0x402; QEMU says 0x802)",
	      pg_last.error == 0x402 || pg_last.error == 0x802, 1);
	check("  RIP = the INT", blob_off(pg_last.rip), (uint64_t)(u_int80_insn - user_blob));
	check("  the handler did not run", int80_count, 0);

	rt_printf("INT 0x80 at CPL 3 through a DPL-3 gate\n");
	user_set_gate_dpl(0x80, 3);
	user_reset();
	check("  RAX comes back", user_call(uva(u_int80), pg_va(P_URO) + OFF, 0), V_URO);
	check("  the handler ran once, no fault", int80_count == 1 && pg_last.n == 0, 1);
	check("  it ran on TSS.RSP0's stack", int80_on_kstack, 1);
	check("  frame CS = the user's", int80_cs, SEL_UCODE);
	check("  frame SS = the user's", int80_ss, SEL_UDATA);
	check("  frame RSP = the user's", stack_off(int80_rsp), 0);
	check("  frame RIP = after the INT", blob_off(int80_rip), (uint64_t)(u_int80_end - user_blob));
	user_set_gate_dpl(0x80, 0);

	return finish("sys-int");
}
