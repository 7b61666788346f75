/* SPDX-License-Identifier: MIT */
/*
 * sys-misc: the system instructions a small kernel uses, each with an exact expected result
 * (SDM Vol. 2 for each instruction; Vol. 3A ch. 6 for the exceptions). Nothing printed depends on the
 * CPU vendor, on addresses or on time. Checked:
 *   CPUID leaf 0 (max leaf >= 1, a printable 12-byte vendor string, not printed), leaf 1 TSC and MSR
 *   bits; RDTSC increases; EFER has LME and LMA; RDMSR/WRMSR of FS_BASE, GS_BASE, KERNEL_GS_BASE,
 *   with SWAPGS exchanging the last two, seen by RDMSR and by %fs-/%gs-relative loads; DIV by zero
 *   and IDIV INT64_MIN / -1 -> #DE with RIP at the instruction; a load from a non-canonical address
 *   -> #GP(0) with RIP at it; IRETQ to CPL 0 with chosen RFLAGS; LGDT/SGDT and LIDT/SIDT round trips
 *   (a #UD through a copied IDT); MOV to/from DR0-DR3 and DR7; CLFLUSH, WBINVD, MFENCE/LFENCE/SFENCE,
 *   PAUSE; NOPs of 1 to 11 bytes; REP MOVSB/MOVSQ/STOSB/STOSQ, REPE CMPSB, REPNE SCASB, with DF=0
 *   and DF=1, and REP with RCX = 0, checking memory, RSI, RDI, RCX and flags.
 * INT3 and INT n are sys-int's (the kvm engine cannot run them on a PVM host; this guest runs there).
 */
#include "rt.h"
#include "pg-common/pg.h"

#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define RFLAGS_CF 0x1ull
#define RFLAGS_ZF 0x40ull

struct __attribute__((packed)) dtr {
	uint16_t limit;
	uint64_t base;
};

static volatile uint64_t trap_count, trap_vector, trap_rip, trap_error;
static void on_trap(struct rt_frame *f)
{
	if (f->vector == 6)
		f->rip += 2; /* skip the ud2 */
	trap_count++;
	trap_vector = f->vector;
	trap_rip = f->rip;
	trap_error = f->error;
}

/* ---- CPUID, TSC, MSRs ------------------------------------------------------------------------------- */

static void test_cpuid_tsc(void)
{
	rt_printf("CPUID and RDTSC\n");
	struct rt_cpuid c0 = cpuid(0, 0);
	check("  CPUID.0: max basic leaf >= 1", c0.eax >= 1, 1);
	char v[12];
	memcpy(v, &c0.ebx, 4);
	memcpy(v + 4, &c0.edx, 4);
	memcpy(v + 8, &c0.ecx, 4);
	unsigned printable = 0;
	for (unsigned i = 0; i < 12; i++)
		printable += v[i] >= 0x20 && v[i] < 0x7f;
	check("  CPUID.0: the vendor string is 12 printable bytes", printable, 12);
	check("  CPUID.1:EDX has TSC and MSR", cpuid(1, 0).edx & 0x30, 0x30);
	check("  CPUID.80000000H: max extended leaf >= 0x80000001", cpuid(0x80000000, 0).eax >= 0x80000001, 1);
	uint64_t t1 = rdtsc();
	for (unsigned i = 0; i < 1000; i++)
		__asm__ volatile("" : : "r"(i)); /* a loop the compiler keeps */
	uint64_t t2 = rdtsc();
	check("  RDTSC increases", t2 > t1, 1);
	check("  EFER has LME and LMA", rdmsr(MSR_EFER) & 0x500, 0x500);
}

static volatile uint64_t fs_cell = 0xf5f5f5f5f5f5f5f5ull;
static volatile uint64_t gs_cell_a = 0x0a0a0a0a0a0a0a0aull;
static volatile uint64_t gs_cell_b = 0x0b0b0b0b0b0b0b0bull;

static uint64_t fs_load(void)
{
	uint64_t v;
	__asm__ volatile("movq %%fs:0, %0" : "=r"(v) : : "memory");
	return v;
}
static uint64_t gs_load(void)
{
	uint64_t v;
	__asm__ volatile("movq %%gs:0, %0" : "=r"(v) : : "memory");
	return v;
}
static void swapgs(void) { __asm__ volatile("swapgs" : : : "memory"); }

static void test_segment_bases(void)
{
	rt_printf("FS_BASE, GS_BASE, KERNEL_GS_BASE and SWAPGS\n");
	uint64_t a = pg_pa(&gs_cell_a), b = pg_pa(&gs_cell_b), f = pg_pa(&fs_cell);
	wrmsr(MSR_FS_BASE, f);
	wrmsr(MSR_GS_BASE, a);
	wrmsr(MSR_KERNEL_GS_BASE, b);
	check("  RDMSR FS_BASE = the value written", rdmsr(MSR_FS_BASE) == f, 1);
	check("  RDMSR GS_BASE = the value written", rdmsr(MSR_GS_BASE) == a, 1);
	check("  RDMSR KERNEL_GS_BASE = the value written", rdmsr(MSR_KERNEL_GS_BASE) == b, 1);
	check("  %fs:0 reads through FS_BASE", fs_load(), 0xf5f5f5f5f5f5f5f5ull);
	check("  %gs:0 reads through GS_BASE", gs_load(), 0x0a0a0a0a0a0a0a0aull);
	swapgs();
	check("  after SWAPGS: GS_BASE = the old KERNEL_GS_BASE", rdmsr(MSR_GS_BASE) == b, 1);
	check("  after SWAPGS: KERNEL_GS_BASE = the old GS_BASE", rdmsr(MSR_KERNEL_GS_BASE) == a, 1);
	check("  after SWAPGS: %gs:0 reads the other cell", gs_load(), 0x0b0b0b0b0b0b0b0bull);
	swapgs();
	check("  after a second SWAPGS: %gs:0 reads the first cell", gs_load(), 0x0a0a0a0a0a0a0a0aull);
	check("  and GS_BASE is back", rdmsr(MSR_GS_BASE) == a, 1);
	/* A large canonical value reads back exactly (all 64 bits kept). */
	wrmsr(MSR_KERNEL_GS_BASE, 0xffff800012345678ull);
	check("  KERNEL_GS_BASE keeps a high canonical value", rdmsr(MSR_KERNEL_GS_BASE), 0xffff800012345678ull);

	/* Not checked: WRMSR of a non-canonical base is #GP(0) on hardware (and under the kvm and
	 * emu engines), but QEMU 7.2 TCG accepts it (helper_wrmsr has no canonical check), so the
	 * guests' oracle cannot vouch for it. */
	wrmsr(MSR_FS_BASE, 0);
	wrmsr(MSR_GS_BASE, 0);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
}

/* ---- exceptions and software interrupts ----------------------------------------------------------- */

static void test_exceptions(void)
{
	rt_printf("#DE, #GP, IRETQ\n");
	uint64_t at, rax;
	pg_expect(0, PG_RESUME);
	__asm__ volatile("lea 2f(%%rip), %%rcx\n\t"
			 "movq %%rcx, %[res]\n\t"
			 "lea 1f(%%rip), %[at]\n\t"
			 "movl $1234, %%eax\n\t"
			 "xorl %%edx, %%edx\n\t"
			 "xorl %%ecx, %%ecx\n"
			 "1:	divq %%rcx\n"
			 "2:"
			 : [res] "=m"(pg_resume_rip), [at] "=&r"(at), "=&a"(rax)
			 :
			 : "rcx", "rdx", "memory");
	check("  DIV by zero: one #DE", pg_last.n == 1 && pg_last.vector == 0, 1);
	check("    RIP = the DIV", pg_last.rip == at, 1);
	check("    RAX unchanged", rax, 1234);

	pg_expect(0, PG_RESUME);
	__asm__ volatile("lea 2f(%%rip), %%rcx\n\t"
			 "movq %%rcx, %[res]\n\t"
			 "lea 1f(%%rip), %[at]\n\t"
			 "movabsq $0x8000000000000000, %%rax\n\t"
			 "cqto\n\t"
			 "movq $-1, %%rcx\n"
			 "1:	idivq %%rcx\n"
			 "2:"
			 : [res] "=m"(pg_resume_rip), [at] "=&r"(at)
			 :
			 : "rax", "rcx", "rdx", "memory");
	check("  IDIV INT64_MIN / -1: one #DE", pg_last.n == 1 && pg_last.vector == 0, 1);
	check("    RIP = the IDIV", pg_last.rip == at, 1);

	pg_expect(13, PG_RESUME);
	__asm__ volatile("lea 2f(%%rip), %%rcx\n\t"
			 "movq %%rcx, %[res]\n\t"
			 "lea 1f(%%rip), %[at]\n\t"
			 "movabsq $0x8000000000000000, %%rax\n"
			 "1:	movq (%%rax), %%rcx\n"
			 "2:"
			 : [res] "=m"(pg_resume_rip), [at] "=&r"(at)
			 :
			 : "rax", "rcx", "memory");
	check("  load from a non-canonical address: one #GP", pg_last.n == 1 && pg_last.vector == 13, 1);
	check("    error code 0", pg_last.error, 0);
	check("    RIP = the load", pg_last.rip == at, 1);
	pg_mode = PG_UNEXPECTED;

	/* IRETQ to CPL 0 with a hand-built frame: SS, RSP, RFLAGS, CS, RIP (SDM IRET, 64-bit mode). */
	uint64_t flags_in = 0x2 | 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x800, flags_out, rsp_before, rsp_after;
	__asm__ volatile("movq %%rsp, %[rb]\n\t"
			 "movq %%rsp, %%rax\n\t"
			 "pushq $0x10\n\t"
			 "pushq %%rax\n\t"
			 "pushq %[fi]\n\t"
			 "pushq $0x08\n\t"
			 "lea 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "iretq\n"
			 "1:	pushfq\n\t"
			 "popq %[fo]\n\t"
			 "movq %%rsp, %[ra]\n\t"
			 "pushq %[clean]\n\t"
			 "popfq"
			 : [fo] "=&r"(flags_out), [rb] "=&r"(rsp_before), [ra] "=&r"(rsp_after)
			 : [fi] "r"(flags_in), [clean] "r"((uint64_t)0x2)
			 : "rax", "memory", "cc");
	check("  IRETQ: RFLAGS from the frame", flags_out, flags_in);
	check("  IRETQ: RSP from the frame", rsp_after == rsp_before, 1);
}

/* ---- descriptor tables -------------------------------------------------------------------------- */

static uint64_t gdt_copy[8] __attribute__((aligned(16)));
static uint8_t idt_copy[4096] __attribute__((aligned(16)));

static void test_tables(void)
{
	rt_printf("LGDT/SGDT and LIDT/SIDT\n");
	struct dtr g0, g1, g2, i0, i1, i2;
	__asm__ volatile("sgdt %0" : "=m"(g0));
	check("  SGDT: the runtime's GDT has 4 entries", g0.limit, 31);
	memcpy(gdt_copy, (const void *)(uintptr_t)g0.base, 32);
	struct dtr gn = { 31, pg_pa(gdt_copy) };
	__asm__ volatile("lgdt %0" : : "m"(gn) : "memory");
	__asm__ volatile("sgdt %0" : "=m"(g1));
	check("  SGDT after LGDT: the new base", g1.base == gn.base, 1);
	check("  SGDT after LGDT: the new limit", g1.limit, 31);
	uint32_t ds;
	__asm__ volatile("movl $0x10, %%eax\n\tmovl %%eax, %%ds\n\tmovl %%ds, %0" : "=r"(ds) : : "rax", "memory");
	check("  a segment loads from the new GDT", ds, 0x10);
	__asm__ volatile("lgdt %0" : : "m"(g0) : "memory");
	__asm__ volatile("sgdt %0" : "=m"(g2));
	check("  restored", g2.base == g0.base && g2.limit == g0.limit, 1);

	__asm__ volatile("sidt %0" : "=m"(i0));
	check("  SIDT: 256 gates of 16 bytes", i0.limit, 4095);
	memcpy(idt_copy, (const void *)(uintptr_t)i0.base, 4096);
	struct dtr in = { 4095, pg_pa(idt_copy) };
	__asm__ volatile("lidt %0" : : "m"(in) : "memory");
	__asm__ volatile("sidt %0" : "=m"(i1));
	check("  SIDT after LIDT: the new base", i1.base == in.base, 1);
	check("  SIDT after LIDT: the new limit", i1.limit, 4095);
	/* An exception through the copy (UD2: the kvm engine on a PVM host cannot deliver INT n). */
	rt_set_handler(6, on_trap);
	trap_count = 0;
	__asm__ volatile("ud2" : : : "memory");
	check("  #UD through the copied IDT", trap_count == 1 && trap_vector == 6, 1);
	__asm__ volatile("lidt %0" : : "m"(i0) : "memory");
	__asm__ volatile("sidt %0" : "=m"(i2));
	check("  restored", i2.base == i0.base && i2.limit == i0.limit, 1);
}

/* ---- debug registers, cache and ordering instructions, NOPs ----------------------------------------- */

#define DEFINE_DR(n)                                                                               \
	static uint64_t read_dr##n(void)                                                           \
	{                                                                                          \
		uint64_t v;                                                                        \
		__asm__ volatile("mov %%dr" #n ", %0" : "=r"(v));                                  \
		return v;                                                                          \
	}                                                                                          \
	static void write_dr##n(uint64_t v) { __asm__ volatile("mov %0, %%dr" #n : : "r"(v) : "memory"); }
DEFINE_DR(0)
DEFINE_DR(1)
DEFINE_DR(2)
DEFINE_DR(3)
DEFINE_DR(7)

static void test_misc(void)
{
	rt_printf("debug registers\n");
	write_dr0(0x1000);
	write_dr1(0x2468ace0);
	write_dr2(0xffff800000001234ull);
	write_dr3(0x7ffffffff000ull);
	check("  DR0", read_dr0(), 0x1000);
	check("  DR1", read_dr1(), 0x2468ace0);
	check("  DR2", read_dr2(), 0xffff800000001234ull);
	check("  DR3", read_dr3(), 0x7ffffffff000ull);
	write_dr7(0);
	check("  DR7 = 0 reads 0x400 (bit 10 is fixed to 1)", read_dr7(), 0x400);
	/* R/W and LEN fields without any enable bit: no breakpoint is armed. */
	write_dr7(0x00d50400);
	check("  DR7 keeps R/W and LEN fields", read_dr7(), 0x00d50400);
	write_dr7(0x400);
	write_dr0(0);
	write_dr1(0);
	write_dr2(0);
	write_dr3(0);

	rt_printf("cache, ordering and spin-wait instructions\n");
	static volatile uint64_t line[8] __attribute__((aligned(64)));
	line[3] = 0x0123456789abcdefull;
	__asm__ volatile("clflush (%0)" : : "r"(&line[3]) : "memory");
	check("  CLFLUSH keeps the data", line[3], 0x0123456789abcdefull);
	__asm__ volatile("wbinvd" : : : "memory");
	check("  WBINVD keeps the data", line[3], 0x0123456789abcdefull);
	uint64_t r = 0x55;
	__asm__ volatile("mfence\n\tlfence\n\tsfence\n\tpause" : "+r"(r) : : "memory");
	check("  MFENCE, LFENCE, SFENCE, PAUSE run", r, 0x55);

	rt_printf("NOPs of 1 to 11 bytes\n");
	uint64_t a = 0x1111, b = 0x2222, c = 0;
	__asm__ volatile("movq $0x3333, %[c]\n\t"
			 ".byte 0x90\n\t"                                     /* 1 */
			 ".byte 0x66, 0x90\n\t"                               /* 2 */
			 ".byte 0x0f, 0x1f, 0x00\n\t"                         /* 3 */
			 ".byte 0x0f, 0x1f, 0x40, 0x00\n\t"                   /* 4 */
			 ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"             /* 5 */
			 ".byte 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"       /* 6 */
			 ".byte 0x0f, 0x1f, 0x80, 0, 0, 0, 0\n\t"             /* 7 */
			 ".byte 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0\n\t"       /* 8 */
			 ".byte 0x66, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0\n\t" /* 9 */
			 ".byte 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0\n\t"       /* 10 */
			 ".byte 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0\n\t" /* 11 */
			 ".byte 0x0f, 0x1f, 0x04, 0x24\n\t" /* nopl (%rsp) */
			 "addq %[a], %[c]\n\t"
			 "addq %[b], %[c]"
			 : [c] "+&r"(c)
			 : [a] "r"(a), [b] "r"(b)
			 : "memory");
	check("  the code around them ran, nothing else changed", c, 0x6666);
}

/* ---- string instructions -------------------------------------------------------------------------- */

struct sregs {
	uint64_t rsi, rdi, rcx, flags;
};

static uint8_t s_src[256] __attribute__((aligned(16)));
static uint8_t s_dst[256] __attribute__((aligned(16)));
static uint8_t s_exp[256] __attribute__((aligned(16)));

static void fill(uint8_t *p, unsigned n, uint8_t seed)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

#define STRING_OP(name, insn)                                                                          \
	static struct sregs name(uint64_t rsi, uint64_t rdi, uint64_t rcx, uint64_t rax, int df)       \
	{                                                                                              \
		struct sregs r;                                                                        \
		__asm__ volatile("testl %k[df], %k[df]\n\t"                                             \
				 "jz 1f\n\t"                                                           \
				 "std\n"                                                               \
				 "1:\t" insn "\n\t"                                                    \
				 "pushfq\n\t"                                                          \
				 "popq %[fl]\n\t"                                                      \
				 "cld"                                                                 \
				 : "+S"(rsi), "+D"(rdi), "+c"(rcx), [fl] "=&r"(r.flags)                \
				 : "a"(rax), [df] "r"(df)                                              \
				 : "memory", "cc");                                                    \
		r.rsi = rsi;                                                                           \
		r.rdi = rdi;                                                                           \
		r.rcx = rcx;                                                                           \
		return r;                                                                              \
	}
STRING_OP(rep_movsb, "rep movsb")
STRING_OP(rep_movsq, "rep movsq")
STRING_OP(rep_stosb, "rep stosb")
STRING_OP(rep_stosq, "rep stosq")
STRING_OP(repe_cmpsb, "repe cmpsb")
STRING_OP(repne_scasb, "repne scasb")

static uint64_t A(const void *p) { return (uint64_t)(uintptr_t)p; }

static void test_strings(void)
{
	rt_printf("string instructions\n");
	struct sregs r;

	fill(s_src, 256, 1);
	memset(s_dst, 0xee, 256);
	r = rep_movsb(A(s_src + 3), A(s_dst + 5), 37, 0, 0);
	memset(s_exp, 0xee, 256);
	memcpy(s_exp + 5, s_src + 3, 37);
	check("  REP MOVSB: 37 bytes copied, nothing else", memcmp(s_dst, s_exp, 256), 0);
	check("  REP MOVSB: RSI, RDI advanced by 37, RCX = 0",
	      r.rsi == A(s_src + 40) && r.rdi == A(s_dst + 42) && r.rcx == 0, 1);

	memset(s_dst, 0xee, 256);
	r = rep_movsq(A(s_src + 8), A(s_dst + 16), 5, 0, 0);
	memset(s_exp, 0xee, 256);
	memcpy(s_exp + 16, s_src + 8, 40);
	check("  REP MOVSQ: 5 quadwords copied", memcmp(s_dst, s_exp, 256), 0);
	check("  REP MOVSQ: RSI, RDI advanced by 40, RCX = 0",
	      r.rsi == A(s_src + 48) && r.rdi == A(s_dst + 56) && r.rcx == 0, 1);

	memset(s_dst, 0xee, 256);
	r = rep_stosb(0, A(s_dst + 1), 19, 0xab, 0);
	memset(s_exp, 0xee, 256);
	memset(s_exp + 1, 0xab, 19);
	check("  REP STOSB: 19 bytes of AL", memcmp(s_dst, s_exp, 256), 0);
	check("  REP STOSB: RDI advanced by 19, RCX = 0", r.rdi == A(s_dst + 20) && r.rcx == 0, 1);

	memset(s_dst, 0xee, 256);
	r = rep_stosq(0, A(s_dst + 8), 7, 0x0102030405060708ull, 0);
	memset(s_exp, 0xee, 256);
	for (unsigned i = 0; i < 7; i++) {
		uint64_t v = 0x0102030405060708ull;
		memcpy(s_exp + 8 + 8 * i, &v, 8);
	}
	check("  REP STOSQ: 7 quadwords of RAX", memcmp(s_dst, s_exp, 256), 0);
	check("  REP STOSQ: RDI advanced by 56, RCX = 0", r.rdi == A(s_dst + 64) && r.rcx == 0, 1);

	/* REPE CMPSB: equal for 10 bytes, then src 0x10 < dst 0x20 at index 10. */
	fill(s_src, 64, 9);
	memcpy(s_dst, s_src, 64);
	s_src[10] = 0x10;
	s_dst[10] = 0x20;
	r = repe_cmpsb(A(s_src), A(s_dst), 20, 0, 0);
	check("  REPE CMPSB: stops after the first difference (11 compared, RCX = 9)", r.rcx, 9);
	check("  REPE CMPSB: RSI, RDI past the difference", r.rsi == A(s_src + 11) && r.rdi == A(s_dst + 11), 1);
	check("  REPE CMPSB: ZF = 0, CF = 1 (0x10 - 0x20 borrows)", r.flags & (RFLAGS_ZF | RFLAGS_CF), RFLAGS_CF);
	r = repe_cmpsb(A(s_src), A(s_dst), 10, 0, 0);
	check("  REPE CMPSB over equal bytes: RCX = 0, ZF = 1", r.rcx == 0 && (r.flags & RFLAGS_ZF), 1);

	/* REPNE SCASB: the first 0x42 is at index 13. */
	memset(s_dst, 0x41, 64);
	s_dst[13] = 0x42;
	s_dst[20] = 0x42;
	r = repne_scasb(0, A(s_dst), 32, 0x42, 0);
	check("  REPNE SCASB: finds the byte at index 13 (RCX = 32 - 14)", r.rcx, 18);
	check("  REPNE SCASB: RDI just past it", r.rdi == A(s_dst + 14), 1);
	check("  REPNE SCASB: ZF = 1", r.flags & RFLAGS_ZF, RFLAGS_ZF);
	r = repne_scasb(0, A(s_dst), 13, 0x42, 0);
	check("  REPNE SCASB without a match: RCX = 0, ZF = 0", r.rcx == 0 && !(r.flags & RFLAGS_ZF), 1);

	/* DF = 1: an overlapping copy backwards (memmove to a higher address). */
	fill(s_dst, 64, 3);
	memcpy(s_exp, s_dst, 64);
	memmove(s_exp + 3, s_exp, 20);
	r = rep_movsb(A(s_dst + 19), A(s_dst + 22), 20, 0, 1);
	check("  STD; REP MOVSB backwards over an overlap = memmove", memcmp(s_dst, s_exp, 64), 0);
	check("  STD; REP MOVSB: RSI, RDI moved down by 20, RCX = 0",
	      r.rsi == A(s_dst) - 1 && r.rdi == A(s_dst + 2) && r.rcx == 0, 1);
	fill(s_src, 64, 5);
	memset(s_dst, 0xee, 64);
	r = rep_movsq(A(s_src + 32), A(s_dst + 40), 4, 0, 1);
	memset(s_exp, 0xee, 64);
	memcpy(s_exp + 16, s_src + 8, 32);
	check("  STD; REP MOVSQ: 4 quadwords ending at the start addresses", memcmp(s_dst, s_exp, 64), 0);
	check("  STD; REP MOVSQ: RSI, RDI moved down by 32", r.rsi == A(s_src) && r.rdi == A(s_dst + 8), 1);
	memset(s_dst, 0xee, 64);
	r = rep_stosb(0, A(s_dst + 30), 5, 0x5c, 1);
	memset(s_exp, 0xee, 64);
	memset(s_exp + 26, 0x5c, 5);
	check("  STD; REP STOSB: 5 bytes down from the start", memcmp(s_dst, s_exp, 64), 0);
	check("  STD; REP STOSB: RDI moved down by 5", r.rdi == A(s_dst + 25), 1);
	/* DF = 1 REPNE SCASB: search backwards from index 30 for 0x42 (at 20). */
	memset(s_dst, 0x41, 64);
	s_dst[13] = 0x42;
	s_dst[20] = 0x42;
	r = repne_scasb(0, A(s_dst + 30), 31, 0x42, 1);
	check("  STD; REPNE SCASB: finds index 20 first (RCX = 31 - 11)", r.rcx, 20);
	check("  STD; REPNE SCASB: RDI just below it", r.rdi == A(s_dst + 19), 1);

	/* RCX = 0: nothing happens, not even to RSI/RDI or flags. */
	memset(s_dst, 0xee, 64);
	r = rep_movsb(A(s_src), A(s_dst), 0, 0, 0);
	check("  REP MOVSB with RCX = 0: no change", r.rsi == A(s_src) && r.rdi == A(s_dst) && s_dst[0] == 0xee, 1);
	check("  DF is clear again", read_rflags() & 0x400, 0);
}

int guest_main(void)
{
	rt_printf("sys-misc: system instructions\n");
	pg_catch_all();
	test_cpuid_tsc();
	test_segment_bases();
	test_exceptions();
	test_tables();
	test_misc();
	test_strings();
	return finish("sys-misc");
}
