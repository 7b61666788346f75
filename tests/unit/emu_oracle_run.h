/* SPDX-License-Identifier: MIT */
/*
 * Shared machinery of the whole-instruction oracles (emu_insn_oracle.c, emu_randprog.c): run a piece of
 * x86-64 code natively and in the emu engine on the same batch of input states, and collect both outputs.
 *
 * A "case" (struct ocase) is one input state: the 16 GPRs (RSP is never loaded: the code under test must
 * not use it), RFLAGS, the variant of the code to run, and a 512-byte memory window. Registers listed in a
 * pointer mask hold OFFSETS into that window in the input and are rebased on each side (host address of
 * the window natively, guest address in the engine); outputs are turned back into offsets, so that the
 * two sides compare equal without running at the same addresses.
 *
 * Native side: for every variant, prologue + code + epilogue is copied into an RWX page and called as a
 * function with the case pointer: the prologue loads RFLAGS (popfq) and the GPRs from the case, the
 * epilogue stores them back (pushfq) and clears DF for the C code. #DE arrives as SIGFPE and is caught
 * with sigsetjmp (the handler is SA_NODEFER, so no mask needs restoring); SIGILL/SIGSEGV/SIGBUS are
 * recorded too (as #UD/#GP), which only a broken test would produce.
 *
 * Engine side: blvm_engine_emu driven only through its ops (emu_harness.h): 64-bit long mode, a driver
 * loop at T_CODE (assembled at build time) walks the case table in guest RAM: loads the state exactly as
 * the native prologue does, jumps to the variant's code (which ends in `jmp *G_STORE`), stores the state
 * exactly as the native epilogue does, next case; HLT at the end. Every exception vector 0..31 has a
 * handler that records vector+1 in the case (0 = none) and continues with the next case, so a #DE (or an
 * engine #UD) costs one case, not the batch. One run() per batch.
 *
 * Guest-physical layout (besides emu_harness.h's): 0x7000 driver variables, 0x100000..0x400000 the case
 * table, slot 1 at 0x400000 (60 MiB) the variants' code, allocated upwards and never reused: the tests
 * write code from the host, behind the engine's self-modifying-code detection, so an address that was
 * ever decoded must never receive new bytes.
 */
#ifndef EMU_ORACLE_RUN_H
#define EMU_ORACLE_RUN_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

#include "emu_harness.h"
#include "emu/alu.h"

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

#ifndef MEMSZ /* a test may widen the window (emu_fpu_oracle.c: an FXSAVE image + operands) */
#define MEMSZ 512
#endif
#ifndef MID
#define MID 256 /* pointer registers usually point here */
#endif
#define OFF_FL 128
#define OFF_VAR 136
#define OFF_DE 144
#define OFF_MEM 160
#define STRIDE (OFF_MEM + MEMSZ)

struct ocase {
	uint64_t r[16];
	uint64_t fl;
	uint64_t var; /* variant index (host) / code address (guest) */
	uint64_t de;  /* 0, or exception vector + 1 */
	uint64_t pad;
	uint8_t mem[MEMSZ];
};
_Static_assert(sizeof(struct ocase) == STRIDE, "case layout");

static const char *const reg_names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
					   "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15" };

/* ------------------------------------------------------------------------------------------- random */

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}
static unsigned rndn(unsigned n) { return (unsigned)(rnd() % n); }

/* The input RFLAGS: bit 1, IF (ignored by popf at CPL3, harmless at CPL0: nothing is injected). */
#define BASE_FLAGS 0x202ull
/* What is compared: the six status flags and DF (which no tested instruction but the string ones may change). */
#define CMP_FLAGS (EMU_STATUS_FLAGS | EMU_DF)

/* ------------------------------------------------------------------------- state blobs (build time) */

#define S_(x) #x
#define S(x) S_(x)

/* Load RFLAGS and every GPR but RSP from the case at %rdi (RDI last). */
#define LOADS                                                                                          \
	"pushq " S(OFF_FL) "(%rdi)\n popfq\n"                                                        \
	"mov 0(%rdi),%rax\n mov 8(%rdi),%rcx\n mov 16(%rdi),%rdx\n mov 24(%rdi),%rbx\n"               \
	"mov 40(%rdi),%rbp\n mov 48(%rdi),%rsi\n mov 64(%rdi),%r8\n mov 72(%rdi),%r9\n"               \
	"mov 80(%rdi),%r10\n mov 88(%rdi),%r11\n mov 96(%rdi),%r12\n mov 104(%rdi),%r13\n"            \
	"mov 112(%rdi),%r14\n mov 120(%rdi),%r15\n mov 56(%rdi),%rdi\n"
/* With RFLAGS and the code's RDI pushed and the case pointer in %rdi: store them all. */
#define STORES                                                                                         \
	"mov %rax,0(%rdi)\n mov %rcx,8(%rdi)\n mov %rdx,16(%rdi)\n mov %rbx,24(%rdi)\n"               \
	"mov %rbp,40(%rdi)\n mov %rsi,48(%rdi)\n mov %r8,64(%rdi)\n mov %r9,72(%rdi)\n"               \
	"mov %r10,80(%rdi)\n mov %r11,88(%rdi)\n mov %r12,96(%rdi)\n mov %r13,104(%rdi)\n"            \
	"mov %r14,112(%rdi)\n mov %r15,120(%rdi)\n"                                                    \
	"pop %rax\n mov %rax,56(%rdi)\n pop %rax\n mov %rax," S(OFF_FL) "(%rdi)\n"

/* Native prologue/epilogue around the code: a function void f(struct ocase *). */
__asm__(".pushsection .rodata\n"
	".globl orc_pro_start\norc_pro_start:\n"
	"push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n push %rdi\n" LOADS
	".globl orc_pro_end\norc_pro_end:\n"
	".globl orc_epi_start\norc_epi_start:\n"
	"pushfq\n push %rdi\n mov 16(%rsp),%rdi\n" STORES
	"cld\n pop %rdi\n pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n ret\n"
	".globl orc_epi_end\norc_epi_end:\n"
	".popsection");
extern const uint8_t orc_pro_start[], orc_pro_end[], orc_epi_start[], orc_epi_end[];

#define G_CUR 0x7000   /* current case (guest address) */
#define G_END 0x7008   /* end of the table */
#define G_JMP 0x7010   /* the current case's code */
#define G_STORE 0x7018 /* address of drv_store, where every variant's code jumps back */
#define G_TABLE 0x100000ull
#define G_TABLE_END 0x400000ull
#define G_CODE 0x400000ull
#define G_CODE_SIZE (60ull << 20)

/* The guest driver. Handler for vector v at drv_vec + 16*v. */
GUEST(drv, ".code64",
      "drv_loop:\n"
      " mov " S(G_CUR) ",%rdi\n cmp " S(G_END) ",%rdi\n jae drv_done\n"
      " mov " S(OFF_VAR) "(%rdi),%rax\n mov %rax," S(G_JMP) "\n" LOADS
      " jmp *" S(G_JMP) "\n"
      "drv_store:\n pushfq\n push %rdi\n mov " S(G_CUR) ",%rdi\n" STORES
      "drv_next:\n addq $" S(STRIDE) "," S(G_CUR) "\n jmp drv_loop\n"
      "drv_done:\n hlt\n jmp drv_done\n"
      "drv_exc:\n pop %rax\n inc %rax\n mov " S(G_CUR) ",%rdi\n mov %rax," S(OFF_DE) "(%rdi)\n"
      " mov $" S(T_STACK) ",%rsp\n jmp drv_next\n"
      ".balign 16\ndrv_vec:\n"
      ".irp v,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
      ".balign 16\n pushq $\\v\n jmp drv_exc\n.endr\n");
__asm__(".pushsection .rodata\n.balign 8\n.globl drv_offs\ndrv_offs:\n"
	".quad drv_store - drv_start, drv_vec - drv_start\n.popsection");
extern const uint64_t drv_offs[2]; /* offsets of drv_store and drv_vec in the blob */

/* ----------------------------------------------------------------------------------------- the runner */

struct orc {
	struct t_vm t;
	uint8_t *code;      /* slot 1 host memory */
	uint64_t code_next; /* next free offset in slot 1 */
	uint8_t *rwx;       /* native stubs */
	size_t rwx_size;
	uint64_t instructions;
};

#define ORC_MAXVAR 4096
#define ORC_RWX_SIZE (4u << 20)

/* One batch: variants (code bytes) and cases. Outputs: nat[] and emu[] (pointer registers as offsets). */
struct batch {
	unsigned nvar;
	const uint8_t *vcode[ORC_MAXVAR];
	unsigned vlen[ORC_MAXVAR];
	uint64_t nat_end[ORC_MAXVAR], emu_end[ORC_MAXVAR]; /* address just past the code (RIP-relative LEA) */
	unsigned n;
	struct ocase *in, *nat, *emu;
	uint16_t *pmask; /* per case: registers holding offsets into mem */
};

/* called at the end of every orc_init (a new VM): a test's extra vCPU setup (CR4 bits...) */
static void (*orc_post_init)(struct t_vm *t);

static void orc_init(struct orc *o)
{
	t_init(&o->t);
	t_long_mode(&o->t);
	t_load(&o->t, T_CODE, drv_start, drv_end);
	for (int v = 0; v < 32; v++)
		t_gate(&o->t, v, T_CODE + drv_offs[1] + 16u * (unsigned)v, 0, 0);
	o->code = mmap(NULL, G_CODE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	o->rwx = mmap(NULL, ORC_RWX_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (o->code == MAP_FAILED || o->rwx == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	struct kvm_userspace_memory_region r = { .slot = 1, .guest_phys_addr = G_CODE, .memory_size = G_CODE_SIZE,
						  .userspace_addr = (uintptr_t)o->code };
	if (o->t.ops->set_user_memory_region(o->t.vm, &r)) {
		fprintf(stderr, "slot 1 failed\n");
		exit(1);
	}
	o->code_next = 0;
	if (orc_post_init)
		orc_post_init(&o->t);
}

static void orc_fini(struct orc *o)
{
	t_fini(&o->t);
	munmap(o->code, G_CODE_SIZE);
	munmap(o->rwx, ORC_RWX_SIZE);
}

static sigjmp_buf orc_jmp;
static volatile int orc_armed;

static void orc_sig(int sig)
{
	if (!orc_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	orc_armed = 0;
	siglongjmp(orc_jmp, sig);
}

static void orc_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = orc_sig;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

static void rebase(struct ocase *c, uint16_t pmask, uint64_t base)
{
	for (int k = 0; k < 16; k++)
		if (pmask >> k & 1)
			c->r[k] += base;
}

static void orc_native(struct orc *o, struct batch *b)
{
	size_t pro = (size_t)(orc_pro_end - orc_pro_start), epi = (size_t)(orc_epi_end - orc_epi_start);
	size_t off = 0;
	void (*fn[ORC_MAXVAR])(struct ocase *);
	for (unsigned v = 0; v < b->nvar; v++) {
		off = (off + 15) & ~(size_t)15;
		if (off + pro + b->vlen[v] + epi > ORC_RWX_SIZE) {
			fprintf(stderr, "native stub area full\n");
			exit(1);
		}
		uint8_t *p = o->rwx + off;
		memcpy(p, orc_pro_start, pro);
		memcpy(p + pro, b->vcode[v], b->vlen[v]);
		memcpy(p + pro + b->vlen[v], orc_epi_start, epi);
		fn[v] = (void (*)(struct ocase *))(void *)p;
		b->nat_end[v] = (uint64_t)(uintptr_t)(p + pro + b->vlen[v]);
		off += pro + b->vlen[v] + epi;
	}
	for (unsigned i = 0; i < b->n; i++) {
		struct ocase *c = &b->nat[i];
		*c = b->in[i];
		uint64_t base = (uint64_t)(uintptr_t)c->mem;
		rebase(c, b->pmask[i], base);
		void (*f)(struct ocase *) = fn[c->var];
		c->de = 0;
		/* ThreadSanitizer tracks signal delivery and needs the mask saved and restored by the jump. */
#if defined(__SANITIZE_THREAD__)
		int sig = sigsetjmp(orc_jmp, 1);
#else
		int sig = sigsetjmp(orc_jmp, 0);
#endif
		if (sig == 0) {
			orc_armed = 1;
			f(c);
			orc_armed = 0;
		} else {
			/* registers are not stored on an exception (the engine's handler does not either) */
			uint8_t mem[MEMSZ];
			memcpy(mem, c->mem, MEMSZ);
			*c = b->in[i];
			memcpy(c->mem, mem, MEMSZ);
			c->de = sig == SIGFPE ? 1 : sig == SIGILL ? 7 : 14;
			rebase(c, b->pmask[i], base);
		}
		rebase(c, b->pmask[i], -base);
	}
}

/* Returns 0, or -1 when the engine did not reach the driver's HLT. */
/* A batch's run that has not ended after ORC_RUN_LIMIT seconds (a program that loops forever:
 * a back end that lost a loop counter) is stopped by a kick and fails with its case, instead of
 * holding the test until tests/run.sh's TEST_TIMEOUT. Normal batches take milliseconds (seconds
 * under the sanitizers). */
#define ORC_RUN_LIMIT 120
struct orc_watch {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool done, fired;
	struct t_vm *t;
};

static void *orc_watchdog(void *arg)
{
	struct orc_watch *w = arg;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ORC_RUN_LIMIT;
	pthread_mutex_lock(&w->m);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cv, &w->m, &until) == ETIMEDOUT && !w->done) {
			w->fired = true;
			w->t->ops->kick(w->t->cpu);
			break;
		}
	pthread_mutex_unlock(&w->m);
	return NULL;
}

static int orc_engine(struct orc *o, struct batch *b)
{
	struct t_vm *t = &o->t;
	static const uint8_t back[7] = { 0xff, 0x24, 0x25, G_STORE & 0xff, G_STORE >> 8, 0, 0 }; /* jmp *G_STORE */
	uint64_t vaddr[ORC_MAXVAR];
	size_t need = 0;
	for (unsigned v = 0; v < b->nvar; v++)
		need += b->vlen[v] + sizeof back + 16;
	if (o->code_next + need > G_CODE_SIZE) {
		/* code addresses are never reused within one VM: start over with a fresh one */
		if (need > G_CODE_SIZE) {
			fprintf(stderr, "batch too large for the guest code area\n");
			exit(1);
		}
		t_fini(&o->t);
		munmap(o->code, G_CODE_SIZE);
		munmap(o->rwx, ORC_RWX_SIZE);
		uint64_t n = o->instructions;
		orc_init(o);
		o->instructions = n;
		t = &o->t;
	}
	for (unsigned v = 0; v < b->nvar; v++) {
		vaddr[v] = G_CODE + o->code_next;
		memcpy(o->code + o->code_next, b->vcode[v], b->vlen[v]);
		memcpy(o->code + o->code_next + b->vlen[v], back, sizeof back);
		b->emu_end[v] = vaddr[v] + b->vlen[v];
		o->code_next = (o->code_next + b->vlen[v] + sizeof back + 15) & ~15ull;
	}
	if (G_TABLE + (uint64_t)b->n * STRIDE > G_TABLE_END) {
		fprintf(stderr, "too many cases for one batch\n");
		exit(1);
	}
	for (unsigned i = 0; i < b->n; i++) {
		struct ocase c = b->in[i];
		rebase(&c, b->pmask[i], G_TABLE + (uint64_t)i * STRIDE + OFF_MEM);
		c.var = vaddr[c.var];
		c.de = 0;
		memcpy(t->ram + G_TABLE + (uint64_t)i * STRIDE, &c, sizeof c);
	}
	t_w64(t, G_CUR, G_TABLE);
	t_w64(t, G_END, G_TABLE + (uint64_t)b->n * STRIDE);
	t_w64(t, G_STORE, T_CODE + drv_offs[0]);
	struct kvm_regs r = { .rip = T_CODE, .rsp = T_STACK, .rflags = 2 };
	t->ops->set_regs(t->cpu, &r);
	int64_t before = t->ops->instructions(t->cpu);
	struct orc_watch w = { .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .t = t };
	pthread_t wt;
	bool watched = pthread_create(&wt, NULL, orc_watchdog, &w) == 0;
	int ex = t_run(t);
	if (watched) {
		pthread_mutex_lock(&w.m);
		w.done = true;
		pthread_cond_signal(&w.cv);
		pthread_mutex_unlock(&w.m);
		pthread_join(wt, NULL);
	}
	o->instructions += (uint64_t)(t->ops->instructions(t->cpu) - before);
	int ok = ex == KVM_EXIT_HLT && !w.fired;
	if (w.fired)
		fprintf(stderr, "engine: the batch's run did not end in %d s (a program that loops forever?), stopped "
			"at case %llu\n", ORC_RUN_LIMIT, (unsigned long long)((t_r64(t, G_CUR) - G_TABLE) / STRIDE));
	if (!ok) {
		struct kvm_regs rr = t_regs(t);
		fprintf(stderr, "engine: run ended with exit %d at rip %#llx (case %llu)\n", ex,
			(unsigned long long)rr.rip,
			(unsigned long long)((t_r64(t, G_CUR) - G_TABLE) / STRIDE));
	}
	for (unsigned i = 0; i < b->n; i++) {
		struct ocase *c = &b->emu[i];
		memcpy(c, t->ram + G_TABLE + (uint64_t)i * STRIDE, sizeof *c);
		c->var = b->in[i].var;
		rebase(c, b->pmask[i], -(G_TABLE + (uint64_t)i * STRIDE + OFF_MEM));
		if (c->de) { /* the driver's handler did not store the registers */
			uint8_t mem[MEMSZ];
			uint64_t de = c->de;
			memcpy(mem, c->mem, MEMSZ);
			*c = b->in[i];
			memcpy(c->mem, mem, MEMSZ);
			c->de = de;
		}
	}
	return ok ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------- encoding */

/* Zydis register for GPR idx at size bytes; hi = AH/CH/DH/BH (idx 0..3, size 1). */
static __attribute__((unused)) ZydisRegister zreg(unsigned size, int idx, int hi)
{
	switch (size) {
	case 1:
		if (hi)
			return (ZydisRegister)(ZYDIS_REGISTER_AH + idx);
		return (ZydisRegister)(idx < 4 ? ZYDIS_REGISTER_AL + idx : ZYDIS_REGISTER_AL + 4 + idx);
	case 2: return (ZydisRegister)(ZYDIS_REGISTER_AX + idx);
	case 4: return (ZydisRegister)(ZYDIS_REGISTER_EAX + idx);
	default: return (ZydisRegister)(ZYDIS_REGISTER_RAX + idx);
	}
}

/* Disassemble code (Intel syntax) into buf; multiple instructions separated by "; " */
static inline void disas(const uint8_t *code, unsigned len, char *buf, size_t n)
{
	size_t at = 0;
	buf[0] = 0;
	for (unsigned off = 0; off < len && at + 4 < n;) {
		ZydisDisassembledInstruction d;
		if (!ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, 0, code + off, len - off, &d))) {
			snprintf(buf + at, n - at, "%s(bad %02x)", off ? "; " : "", code[off]);
			return;
		}
		at += (size_t)snprintf(buf + at, n - at, "%s%s", off ? "; " : "", d.text);
		off += d.info.length;
	}
}

static void dump_flags(char *buf, uint64_t f)
{
	sprintf(buf, "%c%c%c%c%c%c%c", f & EMU_DF ? 'D' : '-', f & EMU_OF ? 'O' : '-', f & EMU_SF ? 'S' : '-',
		f & EMU_ZF ? 'Z' : '-', f & EMU_AF ? 'A' : '-', f & EMU_PF ? 'P' : '-', f & EMU_CF ? 'C' : '-');
}

/* Compare one case. skipreg: registers whose value is undefined (not compared); fmask: flags compared;
 * mem_lo..mem_hi: bytes of the window not compared (undefined result), empty when lo >= hi.
 * Returns 1 when they match. On mismatch and `print`, prints the input and both outputs. */
static int compare_case(const struct ocase *in, const struct ocase *nat, const struct ocase *emu, uint16_t skipreg,
			uint64_t fmask, unsigned mem_lo, unsigned mem_hi, uint16_t pmask, int print)
{
	int bad = nat->de != emu->de;
	uint16_t badreg = 0;
	if (!nat->de && !emu->de) {
		for (int k = 0; k < 16; k++)
			if (k != RSP && !(skipreg >> k & 1) && nat->r[k] != emu->r[k])
				badreg |= (uint16_t)(1u << k);
		bad |= badreg != 0;
		bad |= ((nat->fl ^ emu->fl) & fmask) != 0;
	}
	int badmem = -1;
	for (unsigned k = 0; k < MEMSZ; k++)
		if (nat->mem[k] != emu->mem[k] && !(k >= mem_lo && k < mem_hi)) {
			badmem = (int)k;
			break;
		}
	bad |= badmem >= 0;
	if (!bad || !print)
		return !bad;
	char fi[8], fn[8], fe[8], fm[8];
	dump_flags(fi, in->fl);
	dump_flags(fn, nat->fl);
	dump_flags(fe, emu->fl);
	fprintf(stderr, "    exception: host %s%llu, emu %s%llu\n", nat->de ? "#" : "none/", (unsigned long long)(nat->de ? nat->de - 1 : 0),
		emu->de ? "#" : "none/", (unsigned long long)(emu->de ? emu->de - 1 : 0));
	fprintf(stderr, "    flags in %s  host %s  emu %s  (compared %s)\n", fi, fn, fe,
		(dump_flags(fm, fmask), fm));
	for (int k = 0; k < 16; k++) {
		if (k == RSP)
			continue;
		int show = (badreg >> k & 1) || in->r[k] != nat->r[k] || in->r[k] != emu->r[k];
		if (show)
			fprintf(stderr, "    %-3s in %016" PRIx64 "  host %016" PRIx64 "  emu %016" PRIx64 "%s%s%s\n",
				reg_names[k], in->r[k], nat->r[k], emu->r[k], badreg >> k & 1 ? "  <--" : "",
				pmask >> k & 1 ? "  (offset into the window)" : "", skipreg >> k & 1 ? "  (undefined)" : "");
	}
	if (badmem >= 0) {
		unsigned lo = (unsigned)badmem & ~15u;
		for (unsigned row = lo; row < lo + 32 && row < MEMSZ; row += 16) {
			fprintf(stderr, "    mem[%3u-%3d] in  ", row, (int)row - MID);
			for (unsigned k = row; k < row + 16; k++)
				fprintf(stderr, "%02x", in->mem[k]);
			fprintf(stderr, "\n                   host");
			for (unsigned k = row; k < row + 16; k++)
				fprintf(stderr, "%02x", nat->mem[k]);
			fprintf(stderr, "\n                   emu ");
			for (unsigned k = row; k < row + 16; k++)
				fprintf(stderr, "%02x", emu->mem[k]);
			fprintf(stderr, "\n");
		}
	}
	return 0;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	return s && *s ? strtoull(s, NULL, 0) : dflt;
}

#if defined(__SANITIZE_ADDRESS__)
#define ORC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ORC_SANITIZED 1
#endif
#endif
#ifndef ORC_SANITIZED
#define ORC_SANITIZED 0
#endif

#endif
