/* SPDX-License-Identifier: MIT */
/*
 * x87, MMX, SSE..SSE4.2, FXSAVE/FXRSTOR, XSAVE family: the floating-point and SIMD unit of the emu
 * engine, run on the host's own unit.
 *
 * The host is an x86-64 CPU too, and the same operation on the same state gives the same bits, so a
 * compute instruction is executed by the host with the guest's state loaded:
 *
 *   - The guest's x87/MMX/SSE state is a 512-byte FXSAVE64 image in struct emu_fpu (fx), plus XCR0.
 *   - At decode time (emu_fpu_select) the instruction is re-encoded with Zydis's encoder for the host:
 *     its memory operand becomes [rdi] (the bounce buffer at the start of struct emu_fpu_ctx), its
 *     explicit general-purpose register operands become r8 / r9 (of the same size), everything else
 *     (xmm0-15, mm0-7, st0-7, implicit EAX/ECX/EDX, RFLAGS) is as the guest names it. The bytes plus a
 *     RET are a "stub", kept in an executable arena (a memfd mapped twice: written through an RW view,
 *     executed through an RX view; never writable and executable at once). Descriptors (struct
 *     fpu_desc: stub, memory size, which GPRs, CR0/CR4 checks) are shared by identical stubs.
 *   - At run time (h_fpu) the handler checks CR0.EM/TS/NE, CR4.OSFXSR and pending x87 exceptions, reads
 *     the memory operand through the ONE guest-memory path (emu_read_bytes: page faults before anything
 *     changes), copies the guest image into the working image with SSE exceptions masked, and calls the
 *     trampoline (fpu_tramp: FXRSTOR64 working image, load RAX/RCX/RDX/R8/R9/status flags, call the
 *     stub, store them, FXSAVE64, FNINIT and the host MXCSR back: the SysV ABI lets a call clobber every
 *     XMM register and the x87 stack, so nothing else of the host needs saving). Then exceptions are
 *     modelled (below), the memory destination is written through emu_write_bytes, and only then the
 *     image, GPRs and flags are committed.
 *   - Fast path (h_fpu_fast, fpu_tramp_fast): an SSE form without MMX operands, or a GPR-only form
 *     (CRC32, MOVBE, MOVNTI), touches no x87/MMX state, so its stub carries its own LDMXCSR (SSE
 *     exceptions masked), MOVDQA loads of the XMM registers it names from the guest image (r10) and
 *     MOVDQA stores of those it writes to ctx->xout (r11), and STMXCSR; no FXRSTOR/FXSAVE/FNINIT and
 *     no 512-byte copies. Measured here: 16.5 ns per PADDD instead of 195 ns (the full path's
 *     FXRSTOR64 alone is 66 ns, FNINIT 33 ns, FXSAVE64 24 ns).
 *
 * Exceptions (SDM Vol. 1 4.9, 8.4-8.7, 11.5; Vol. 3 6.15 #MF/#XM, 2.5 CR0/CR4):
 *   SSE: the host runs with every MXCSR exception masked (an unmasked one would be a host SIGFPE) and
 *   the flags cleared; the flags it raises are what this instruction detected. If one is unmasked in the
 *   guest's MXCSR, the destination stays unchanged (the working image is dropped, nothing is written to
 *   memory), MXCSR gets the pre-computation flags (IE, DE, ZE) when one of those is unmasked, else all
 *   raised flags (SDM Vol. 1 11.5.1: post-computation exceptions are signalled only when no unmasked
 *   pre-computation one was), and #XM (19) is raised if CR4.OSXMMEXCPT, else #UD.
 *   x87: the host runs with the guest's own control word. An x87 unmasked exception never traps inside
 *   the stub: it is only recorded (ES/B set, pending) and the hardware does the SDM's unmasked response
 *   itself (destination and TOP unchanged for invalid/zero-divide/denormal; re-biased result on a
 *   register destination for overflow/underflow; no store to memory) -- the following FXSAVE and FNINIT
 *   are non-waiting. A pending exception is delivered as #MF (16) at the next waiting x87 or MMX
 *   instruction (checked here before running it, so the host never sees it). With CR0.NE=0 the legacy
 *   FERR#/IGNNE# path is modelled as IGNNE# asserted: the instruction runs as if nothing were pending.
 *   Memory destinations of x87 stores are written only when no unmasked IE/DE/ZE/OE/UE came up.
 *
 * Not recorded: the x87 last-instruction / last-operand pointers and opcode (FIP, FDP, FOP; FCS, FDS):
 * they read as 0 (FXSAVE/XSAVE images, FNSTENV/FNSAVE environments), as AMD's FXSAVE stores them when
 * no exception is pending; the host's own values (addresses in blvm, its selectors) never reach the
 * guest.
 *
 * The table fpu_isa[] is the ONE place that says which Zydis ISA sets (and therefore mnemonics) run
 * here; emu_fpu_cpuid() advertises exactly those whose host support was found at first use.
 */
#include <cpuid.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <Zydis/Encoder.h>

#include "emu/emu.h"
#include "emu/xlate.h"

#define ARGS struct emu_vcpu *c, const struct emu_insn *i
#define TRY(x)                            \
	do {                              \
		int st_ = (x);            \
		if (unlikely(st_))        \
			return st_;       \
	} while (0)

#define EMU_V_MF 16
#define EMU_V_XM 19

/* FXSAVE image offsets (SDM Vol. 1 10.5.1, Table 10-2) */
#define FX_FCW 0
#define FX_FSW 2
#define FX_FTW 4
#define FX_FOP 6
#define FX_FIP 8
#define FX_FDP 16
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define FX_ST 32
#define FX_XMM 160
#define FX_XMM8 288
#define FX_END64 416
#define XSAVE_HDR 512
#define XSAVE_BYTES 576      /* legacy region and header: x87 and SSE (XCR0 bits 0-1) */
/* PKRU, state component 9 (SDM Vol. 1 13.5.7): 8 bytes, PKRU in the low 4, at its offset in the
 * standard format (CPUID.(EAX=0DH,ECX=9):EBX, Intel's 2688, as QEMU TCG gives both vendors); the
 * components between (AVX, MPX, AVX-512) are not supported, their bytes are never touched. */
#define XSAVE_PKRU 2688
#define XSAVE_PKRU_BYTES 8

#define MXCSR_MASK 0xffffu   /* FZ, RC, masks, DAZ, flags: the bits a guest may set */
#define MXCSR_RESET 0x1f80u
#define FSW_ES 0x80u
#define FSW_B 0x8000u
#define XCR0_X87 1u
#define XCR0_SSE 2u
#define XCR0_PKRU (1u << 9)
#define XCR0_SUPPORTED (XCR0_X87 | XCR0_SSE | XCR0_PKRU)

/* the status flags host and guest exchange around a stub (RFLAGS bits 0, 2, 4, 6, 7, 11) */
#define STATUS 0x8d5ull

/* kinds: what the checks before the instruction are (SDM Vol. 3 Table 2-2, 12-1, 13-?) */
enum { FK_X87, FK_MMX, FK_SSE, FK_INT };

/* ---------------------------------------------------------------- state and the trampoline */

struct emu_fpu_ctx {
	uint8_t buf[640];   /* the memory operand ([rdi] in a stub); FXSAVE/XSAVE images (576) */
	uint8_t fx[512];    /* the working image: FXRSTOR64'd before the stub, FXSAVE64'd after */
	uint64_t rax, rcx, rdx, g0, g1, fl;
	uint32_t host_mxcsr;
	uint32_t mxin, mxout;   /* fast path: MXCSR loaded by the stub, MXCSR it left */
	uint32_t pad;
	const uint8_t *img;     /* fast path: the guest image the stub loads XMM registers from (r10) */
	uint8_t xout[256] __attribute__((aligned(16))); /* fast path: XMM registers written (r11) */
};
#define CTX_FX 640
#define CTX_RAX 1152
#define CTX_RCX 1160
#define CTX_RDX 1168
#define CTX_G0 1176
#define CTX_G1 1184
#define CTX_FL 1192
#define CTX_HMX 1200
#define CTX_MXIN 1204
#define CTX_MXOUT 1208
#define CTX_IMG 1216
#define CTX_XOUT 1232
_Static_assert(offsetof(struct emu_fpu_ctx, fx) == CTX_FX, "ctx layout");
_Static_assert(offsetof(struct emu_fpu_ctx, rax) == CTX_RAX, "ctx layout");
_Static_assert(offsetof(struct emu_fpu_ctx, fl) == CTX_FL, "ctx layout");
_Static_assert(offsetof(struct emu_fpu_ctx, host_mxcsr) == CTX_HMX, "ctx layout");
_Static_assert(offsetof(struct emu_fpu_ctx, mxin) == CTX_MXIN, "ctx layout");
_Static_assert(offsetof(struct emu_fpu_ctx, mxout) == CTX_MXOUT, "ctx layout");
_Static_assert(offsetof(struct emu_fpu_ctx, img) == CTX_IMG, "ctx layout");
_Static_assert(offsetof(struct emu_fpu_ctx, xout) == CTX_XOUT, "ctx layout");

#define S_(x) #x
#define S(x) S_(x)
/* void fpu_tramp(struct emu_fpu_ctx *ctx, const void *stub). The stub writes only what its operands
 * name: RAX/RCX/RDX (implicit), R8/R9 (rewritten), RFLAGS, the x87/MMX/SSE state, [rdi]. */
__asm__(".text\n.p2align 4\n.type fpu_tramp,@function\nfpu_tramp:\n"
	"fxrstor64 " S(CTX_FX) "(%rdi)\n"
	"mov " S(CTX_RAX) "(%rdi),%rax\n mov " S(CTX_RCX) "(%rdi),%rcx\n mov " S(CTX_RDX) "(%rdi),%rdx\n"
	"mov " S(CTX_G0) "(%rdi),%r8\n mov " S(CTX_G1) "(%rdi),%r9\n"
	"pushq " S(CTX_FL) "(%rdi)\n popfq\n"
	"call *%rsi\n"
	"pushfq\n popq " S(CTX_FL) "(%rdi)\n"
	"mov %rax," S(CTX_RAX) "(%rdi)\n mov %rcx," S(CTX_RCX) "(%rdi)\n mov %rdx," S(CTX_RDX) "(%rdi)\n"
	"mov %r8," S(CTX_G0) "(%rdi)\n mov %r9," S(CTX_G1) "(%rdi)\n"
	"fxsave64 " S(CTX_FX) "(%rdi)\n"
	"fninit\n ldmxcsr " S(CTX_HMX) "(%rdi)\n"
	"ret\n.size fpu_tramp,.-fpu_tramp\n");
__attribute__((visibility("hidden"))) void fpu_tramp(struct emu_fpu_ctx *ctx, const void *stub);

/* The fast path (SSE forms without MMX operands, GPR-only forms): no FXRSTOR/FXSAVE (66 + 24 ns here)
 * and no FNINIT (33 ns). The stub itself loads MXCSR (ctx->mxin) and the XMM registers it names from
 * the guest image (r10), and stores the ones it writes to ctx->xout (r11) and MXCSR to ctx->mxout;
 * the x87/MMX state is not touched, and XMM registers are the caller's to clobber (SysV ABI). */
__asm__(".text\n.p2align 4\n.type fpu_tramp_fast,@function\nfpu_tramp_fast:\n"
	"mov " S(CTX_IMG) "(%rdi),%r10\n lea " S(CTX_XOUT) "(%rdi),%r11\n"
	"mov " S(CTX_RAX) "(%rdi),%rax\n mov " S(CTX_RCX) "(%rdi),%rcx\n mov " S(CTX_RDX) "(%rdi),%rdx\n"
	"mov " S(CTX_G0) "(%rdi),%r8\n mov " S(CTX_G1) "(%rdi),%r9\n"
	"pushq " S(CTX_FL) "(%rdi)\n popfq\n"
	"call *%rsi\n"
	"pushfq\n popq " S(CTX_FL) "(%rdi)\n"
	"mov %rax," S(CTX_RAX) "(%rdi)\n mov %rcx," S(CTX_RCX) "(%rdi)\n mov %rdx," S(CTX_RDX) "(%rdi)\n"
	"mov %r8," S(CTX_G0) "(%rdi)\n mov %r9," S(CTX_G1) "(%rdi)\n"
	"ldmxcsr " S(CTX_HMX) "(%rdi)\n"
	"ret\n.size fpu_tramp_fast,.-fpu_tramp_fast\n");
__attribute__((visibility("hidden"))) void fpu_tramp_fast(struct emu_fpu_ctx *ctx, const void *stub);

/* one decoded form's run-time description (shared by identical stubs) */
struct fpu_gpr { uint8_t off, size, rd, wr; };
struct fpu_desc {
	struct fpu_desc *next;  /* hash chain */
	const void *stub;       /* RX address */
	uint8_t code[112];      /* the stub's bytes (the key, with the fields below) */
	uint8_t clen;
	uint8_t kind;           /* FK_* */
	uint8_t waiting;        /* checks for a pending x87 exception (#MF) */
	uint8_t align;          /* memory operand alignment required (#GP(0)), 0 none */
	uint16_t msize;         /* memory operand bytes, 0 none */
	uint8_t mrd, mwr;       /* memory operand read / written */
	uint8_t flags_in, flags_out;
	uint8_t ng;
	struct fpu_gpr g[2];    /* explicit GPR operands (as r8, r9 in the stub) */
	uint8_t imp_wr;         /* implicit RAX(1) RCX(2) RDX(4) written */
	uint8_t fwait;          /* WAIT/FWAIT: #NM only when MP && TS */
	uint8_t sticky;         /* x87 computation: run with FSW's flags clear, then OR them back */
	uint8_t envload;        /* FLDCW FLDENV FRSTOR: load a new FCW/FSW */
	uint8_t envstore;       /* FNSTENV FNSAVE: their pointer fields are the host's (cleared) */
	uint16_t xwr;           /* fast path: XMM registers written */
};

#define FPU_CODE_BYTES (16u << 20)
#define FPU_HASH 1024

struct emu_fpu {
	struct emu_fpu_ctx ctx;        /* first: 64-byte aligned */
	uint8_t fx[512] __attribute__((aligned(64))); /* the guest's state: FXSAVE64 image */
	uint64_t xcr0;
	struct emu_fpu_ctx keep;       /* the first run's outputs while a second one probes (h_fpu) */
	struct emu_code_arena code;    /* the stubs (xlate.h: RW and RX views) */
	size_t code_used;
	struct fpu_desc *hash[FPU_HASH];
	struct fpu_desc *all;          /* chunks to free: every desc is linked here through next2 */
};

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void st16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* The x87 and SSE init state (SDM Vol. 1 13.6; Vol. 3 Table 10-1 for RESET/INIT: FCW 0x37f, FTW all
 * empty, MXCSR 0x1f80). */
static void x87_init(uint8_t *fx)
{
	memset(fx, 0, FX_MXCSR);
	memset(fx + FX_ST, 0, FX_XMM - FX_ST);
	st16(fx + FX_FCW, 0x37f);
}

void emu_fpu_reset(struct emu_vcpu *c)
{
	struct emu_fpu *f = c->fpu;
	c->pkru = 0; /* XSAVE-managed state: 0 at RESET, kept by INIT (as KVM's kvm_vcpu_reset) */
	memset(f->fx, 0, sizeof f->fx);
	x87_init(f->fx);
	st32(f->fx + FX_MXCSR, MXCSR_RESET);
	st32(f->fx + FX_MXCSR_MASK, MXCSR_MASK);
	f->xcr0 = XCR0_X87;
}

int emu_fpu_init(struct emu_vcpu *c)
{
	struct emu_fpu *f = aligned_alloc(64, (sizeof *f + 63) & ~(size_t)63);
	if (!f)
		return -1;
	memset(f, 0, sizeof *f);
	if (emu_code_arena_map(&f->code, FPU_CODE_BYTES, "blvm-emu-fpu")) {
		free(f);
		return -1;
	}
	uint32_t m;
	__asm__ volatile("stmxcsr %0" : "=m"(m));
	f->ctx.host_mxcsr = m;
	f->ctx.img = f->fx;
	c->fpu = f;
	emu_fpu_reset(c);
	return 0;
}

void emu_fpu_free(struct emu_vcpu *c)
{
	struct emu_fpu *f = c->fpu;
	if (!f)
		return;
	for (unsigned h = 0; h < FPU_HASH; h++)
		for (struct fpu_desc *d = f->hash[h], *n; d; d = n) {
			n = d->next;
			free(d);
		}
	emu_code_arena_unmap(&f->code);
	free(f);
	c->fpu = NULL;
}

/* ---------------------------------------------------------------- host support and CPUID */

/* CPUID.1 ECX/EDX bits this file implements, intersected with the host's (the host runs them). Read
 * once per process (pthread_once: vCPU threads may get here together). */
struct fpu_feat { uint32_t ecx1, edx1; };
static struct fpu_feat feat;
static pthread_once_t feat_once = PTHREAD_ONCE_INIT;

static void feat_read(void)
{
	unsigned a, b, cc, d;
	if (__get_cpuid(1, &a, &b, &cc, &d)) {
		/* EDX: FPU(0) MMX(23) FXSR(24) SSE(25) SSE2(26) */
		feat.edx1 = d & ((1u << 0) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26));
		/* ECX: SSE3(0) PCLMULQDQ(1) SSSE3(9) SSE4.1(19) SSE4.2(20) MOVBE(22) XSAVE(26); XSAVE
		 * is emulated in C, but only offered with a host that has it (and so FXSR, SSE2) */
		feat.ecx1 = cc & ((1u << 0) | (1u << 1) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 22) |
				  (1u << 26));
	}
}

static struct fpu_feat feat_get(void)
{
	pthread_once(&feat_once, feat_read);
	return feat;
}

void emu_fpu_cpuid(struct emu_vcpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	struct fpu_feat h = feat_get();
	switch (leaf) {
	case 1:
		out[3] |= h.edx1;
		out[2] |= h.ecx1;
		if ((h.ecx1 & (1u << 26)) && (c->cr4 & CR4_OSXSAVE))
			out[2] |= 1u << 27; /* OSXSAVE mirrors CR4.OSXSAVE */
		break;
	case 0x80000001:
		/* AMD duplicates FPU, MMX, FXSR here (APM Vol. 3 E.4.2) */
		if (c->vm->cfg.cpu_vendor_amd)
			out[3] |= h.edx1 & ((1u << 0) | (1u << 23) | (1u << 24));
		break;
	case 0xd:
		if (!(h.ecx1 & (1u << 26)))
			break;
		if (sub == 0) {
			/* SDM Vol. 1 13.2: supported XCR0 bits, size for the current XCR0, max size */
			out[0] = XCR0_SUPPORTED;
			out[1] = (c->fpu->xcr0 & XCR0_PKRU) ? XSAVE_PKRU + XSAVE_PKRU_BYTES : XSAVE_BYTES;
			out[2] = XSAVE_PKRU + XSAVE_PKRU_BYTES;
			out[3] = 0;
		} else if (sub == 1) {
			out[0] = 1; /* XSAVEOPT */
		} else if (sub == 9) {
			/* PKRU: size, offset; ECX 0 (a user state component, XCR0) */
			out[0] = XSAVE_PKRU_BYTES;
			out[1] = XSAVE_PKRU;
			out[2] = out[3] = 0;
		}
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------- checks before an instruction */

/* SDM Vol. 3 Table 2-2 (EM, MP, TS), 12-1 (MMX), 13-1 (SSE: OSFXSR); Vol. 1 8.6 (#MF, CR0.NE). */
static inline int fpu_check(struct emu_vcpu *c, const struct fpu_desc *d)
{
	uint64_t cr0 = c->cr0;
	switch (d->kind) {
	case FK_X87:
		if (d->fwait) {
			if ((cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
				return emu_raise(c, EMU_V_NM);
		} else if (cr0 & (CR0_EM | CR0_TS)) {
			return emu_raise(c, EMU_V_NM);
		}
		break;
	case FK_MMX:
		if (cr0 & CR0_EM)
			return emu_raise(c, EMU_V_UD);
		if (cr0 & CR0_TS)
			return emu_raise(c, EMU_V_NM);
		break;
	case FK_SSE:
		if ((cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
			return emu_raise(c, EMU_V_UD);
		if (cr0 & CR0_TS)
			return emu_raise(c, EMU_V_NM);
		break;
	default:
		return 0;
	}
	return 0;
}

/* An unmasked x87 exception is pending (SDM Vol. 1 8.1.3.1: ES is set when any unmasked exception
 * flag is; tested on the flags themselves so that a hand-made image cannot make the host trap). */
static inline bool x87_pending(const uint8_t *fx)
{
	uint16_t fsw = ld16(fx + FX_FSW), fcw = ld16(fx + FX_FCW);
	return (fsw & FSW_ES) || (fsw & ~fcw & 0x3f);
}

/* ---------------------------------------------------------------- the generic handler */

/* The GPR operands (RAX RCX RDX as they are, the explicit ones as r8/r9) and status flags, for a stub. */
static inline void fpu_load_gprs(struct emu_vcpu *c, const struct fpu_desc *d, uint64_t rfl)
{
	struct emu_fpu_ctx *x = &c->fpu->ctx;
	x->rax = c->r[EMU_RAX];
	x->rcx = c->r[EMU_RCX];
	x->rdx = c->r[EMU_RDX];
	if (d->ng > 0)
		x->g0 = d->g[0].size == 1 ? EMU_RD_1(c, d->g[0].off) : c->r[d->g[0].off];
	if (d->ng > 1)
		x->g1 = d->g[1].size == 1 ? EMU_RD_1(c, d->g[1].off) : c->r[d->g[1].off];
	x->fl = (rfl & STATUS) | 0x202;
}

/* Commits the GPRs and status flags a stub wrote. */
static inline void fpu_commit_gprs(struct emu_vcpu *c, const struct fpu_desc *d, uint64_t rfl)
{
	const struct emu_fpu_ctx *x = &c->fpu->ctx;
	if (d->imp_wr & 1)
		c->r[EMU_RAX] = x->rax;
	if (d->imp_wr & 2)
		c->r[EMU_RCX] = x->rcx;
	if (d->imp_wr & 4)
		c->r[EMU_RDX] = x->rdx;
	const uint64_t *gv[2] = { &x->g0, &x->g1 };
	for (unsigned k = 0; k < d->ng; k++) {
		if (!d->g[k].wr)
			continue;
		if (d->g[k].size == 1)
			EMU_WR_1(c, d->g[k].off, *gv[k]);
		else
			c->r[d->g[k].off] = *gv[k];
	}
	if (d->flags_out) {
		c->rflags = (rfl & ~STATUS) | (x->fl & STATUS);
		c->lf_k = 0;
	}
}

/* Loads the working image (MXCSR mx), the GPRs and flags into the context and runs the stub. */
static inline void fpu_run(struct emu_vcpu *c, const struct fpu_desc *d, uint32_t mx, bool ign, uint64_t rfl)
{
	struct emu_fpu *f = c->fpu;
	struct emu_fpu_ctx *x = &f->ctx;
	uint16_t fsw = ld16(f->fx + FX_FSW), fcw = ld16(f->fx + FX_FCW);
	memcpy(x->fx, f->fx, 512);
	st32(x->fx + FX_MXCSR, mx);
	if (ign) {
		st16(x->fx + FX_FCW, fcw | 0x3f);
		st16(x->fx + FX_FSW, fsw & ~(FSW_ES | FSW_B | 0x7fu));
	} else if (d->sticky) {
		st16(x->fx + FX_FSW, fsw & ~0x7fu); /* ES is clear: nothing unmasked is set */
	}
	fpu_load_gprs(c, d, rfl);
	fpu_tramp(x, d->stub);
}

static int h_fpu(ARGS)
{
	const struct fpu_desc *d = (const struct fpu_desc *)(uintptr_t)i->imm;
	struct emu_fpu *f = c->fpu;
	struct emu_fpu_ctx *x = &f->ctx;
	TRY(fpu_check(c, d));
	bool ign = false; /* CR0.NE=0 with an exception pending: IGNNE# (see the top) */
	if (d->waiting && x87_pending(f->fx)) {
		if (c->cr0 & CR0_NE)
			return emu_raise(c, EMU_V_MF);
		ign = true;
	}
	uint64_t lin = 0;
	if (d->msize) {
		lin = emu_lin(c, i);
		if (d->align && (lin & (d->align - 1u)))
			return emu_raise_err(c, EMU_V_GP, 0);
		if (d->mrd)
			TRY(emu_read_bytes(c, lin, x->buf, d->msize, EMU_ACC_R));
	}
	uint32_t mxcsr = ld32(f->fx + FX_MXCSR);
	uint16_t fsw = ld16(f->fx + FX_FSW), fcw = ld16(f->fx + FX_FCW);
	uint64_t rfl = d->flags_in || d->flags_out ? emu_rflags(c) : 0;
	/* the SSE exceptions masked, this instruction's flags clear */
	fpu_run(c, d, (mxcsr | 0x1f80u) & ~0x3fu, ign, rfl);

	/* exceptions */
	uint32_t nmx = ld32(x->fx + FX_MXCSR);
	uint32_t raised = nmx & 0x3f;
	bool store = d->mwr;
	if (d->kind == FK_SSE || d->kind == FK_MMX) {
		uint32_t unmasked = raised & ~(mxcsr >> 7) & 0x3f;
		/* An unmasked underflow is signalled for every tiny result, exact or not (SDM Vol. 1
		 * 4.9.1.5), a masked one only when also inexact: the all-masked run cannot tell an exact
		 * tiny result. A second run with FTZ (which flushes, and flags UE, every tiny result)
		 * does -- only when the guest unmasked UE. */
		if (!unmasked && !(mxcsr & 0x800) && !(raised & 0x10) && d->kind == FK_SSE && !d->mwr) {
			f->keep = *x;
			fpu_run(c, d, (mxcsr | 0x1f80u | 0x8000u) & ~0x3fu, ign, rfl);
			if (ld32(x->fx + FX_MXCSR) & 0x10)
				unmasked = 0x10, raised |= 0x10;
			*x = f->keep;
		}
		if (unlikely(unmasked)) {
			uint32_t pre = raised & 0x7; /* IE DE ZE */
			st32(f->fx + FX_MXCSR, mxcsr | ((pre & unmasked) ? pre : raised));
			return emu_raise(c, (c->cr4 & CR4_OSXMMEXCPT) ? EMU_V_XM : EMU_V_UD);
		}
	}
	uint16_t nfsw = ld16(x->fx + FX_FSW);
	if (d->sticky && !ign && (nfsw & ~fcw & 0x1f))
		store = false;  /* SDM Vol. 1 4.9.2, 8.5: no store on unmasked IE DE ZE OE UE */
	if (d->sticky || (ign && !d->envload)) {
		nfsw |= fsw & 0x7f;     /* sticky flags (and SF) */
		if (ign) {
			st16(x->fx + FX_FCW, fcw);
			nfsw |= fsw & (FSW_ES | FSW_B);
		}
		st16(x->fx + FX_FSW, nfsw);
	}
	if (d->envstore) {
		/* FIP, FCS+FOP, FDP, FDS of the 32-bit / 16-bit environment (SDM Vol. 1 Figures 8-9,
		 * 8-10): the host's addresses and selectors, not the guest's; 0 as in FXSAVE (top) */
		if (d->msize == 28 || d->msize == 108)
			memset(x->buf + 12, 0, 16);
		else
			memset(x->buf + 6, 0, 8);
	}
	if (store)
		TRY(emu_write_bytes(c, lin, x->buf, d->msize, EMU_ACC_W));

	/* commit */
	if (d->kind != FK_INT) {
		st32(x->fx + FX_MXCSR, (nmx & ~0x1f80u & ~0x3fu) | (mxcsr & 0x1f80u) | (mxcsr & 0x3f) | raised);
		st32(x->fx + FX_MXCSR_MASK, MXCSR_MASK);
		memset(x->fx + FX_FOP, 0, FX_MXCSR - FX_FOP); /* FOP FIP FDP: not recorded */
		memcpy(f->fx, x->fx, 512);
	}
	fpu_commit_gprs(c, d, rfl);
	return emu_next(c, i);
}

/* The fast path (fpu_tramp_fast): an SSE form without MMX operands, or a GPR-only form (CRC32,
 * MOVBE, MOVNTI). The guest image is only read by the stub; nothing is committed before the checks. */
static int h_fpu_fast(ARGS)
{
	const struct fpu_desc *d = (const struct fpu_desc *)(uintptr_t)i->imm;
	struct emu_fpu *f = c->fpu;
	struct emu_fpu_ctx *x = &f->ctx;
	TRY(fpu_check(c, d));
	uint64_t lin = 0;
	if (d->msize) {
		lin = emu_lin(c, i);
		if (d->align && (lin & (d->align - 1u)))
			return emu_raise_err(c, EMU_V_GP, 0);
		if (d->mrd)
			TRY(emu_read_bytes(c, lin, x->buf, d->msize, EMU_ACC_R));
	}
	uint32_t mxcsr = ld32(f->fx + FX_MXCSR);
	uint64_t rfl = d->flags_in || d->flags_out ? emu_rflags(c) : 0;
	uint32_t unmasked = 0;
	if (unlikely(!(mxcsr & 0x800)) && d->kind == FK_SSE && !d->mwr) {
		/* UE unmasked: the FTZ probe of h_fpu, run first (its outputs are dropped) */
		x->mxin = (mxcsr | 0x1f80u | 0x8000u) & ~0x3fu;
		fpu_load_gprs(c, d, rfl);
		fpu_tramp_fast(x, d->stub);
		if (x->mxout & 0x10)
			unmasked = 0x10;
	}
	x->mxin = (mxcsr | 0x1f80u) & ~0x3fu;
	fpu_load_gprs(c, d, rfl);
	fpu_tramp_fast(x, d->stub);
	uint32_t raised = 0;
	if (d->kind == FK_SSE) {
		raised = (x->mxout & 0x3f) | unmasked;
		unmasked |= raised & ~(mxcsr >> 7) & 0x3f;
		if (unlikely(unmasked)) {
			uint32_t pre = raised & 0x7; /* IE DE ZE: see h_fpu */
			st32(f->fx + FX_MXCSR, mxcsr | ((pre & unmasked) ? pre : raised));
			return emu_raise(c, (c->cr4 & CR4_OSXMMEXCPT) ? EMU_V_XM : EMU_V_UD);
		}
	}
	if (d->mwr)
		TRY(emu_write_bytes(c, lin, x->buf, d->msize, EMU_ACC_W));
	/* commit */
	for (unsigned m = d->xwr; m; m &= m - 1) {
		unsigned k = (unsigned)__builtin_ctz(m);
		memcpy(f->fx + FX_XMM + 16 * k, x->xout + 16 * k, 16);
	}
	if (raised)
		st32(f->fx + FX_MXCSR, mxcsr | raised);
	fpu_commit_gprs(c, d, rfl);
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- LDMXCSR, STMXCSR */

static int sse_check(struct emu_vcpu *c)
{
	if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
		return emu_raise(c, EMU_V_UD);
	if (c->cr0 & CR0_TS)
		return emu_raise(c, EMU_V_NM);
	return 0;
}

static int h_ldmxcsr(ARGS)
{
	uint64_t v;
	TRY(sse_check(c));
	TRY(emu_rd4(c, emu_lin(c, i), &v));
	if (v & ~(uint64_t)MXCSR_MASK)
		return emu_raise_err(c, EMU_V_GP, 0); /* SDM "LDMXCSR": reserved bits -> #GP(0) */
	st32(c->fpu->fx + FX_MXCSR, (uint32_t)v);
	return emu_next(c, i);
}

static int h_stmxcsr(ARGS)
{
	TRY(sse_check(c));
	TRY(emu_wr4(c, emu_lin(c, i), ld32(c->fpu->fx + FX_MXCSR)));
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- FXSAVE, FXRSTOR */

/* After loading an x87 image: ES and B as its flags and masks say (SDM Vol. 1 8.1.3). */
static void fsw_fix(uint8_t *fx)
{
	uint16_t fsw = ld16(fx + FX_FSW) & ~(FSW_ES | FSW_B);
	if (fsw & ~ld16(fx + FX_FCW) & 0x3f)
		fsw |= FSW_ES | FSW_B;
	st16(fx + FX_FSW, fsw);
}

/* bytes of XMM registers a save/restore covers: 16 registers in 64-bit mode, 8 otherwise */
static unsigned xmm_end(const struct emu_vcpu *c)
{
	return c->mode64 ? FX_END64 : FX_XMM8;
}

/* SDM Vol. 2 "FXSAVE": #NM on EM or TS; 16-byte alignment (#GP(0)). The image is read, updated and
 * written back whole, so that the bytes FXSAVE does not write (416-511; XMM8-15 outside 64-bit mode)
 * keep their values and a fault anywhere in the 512 bytes happens before any byte is written. With
 * CR4.OSFXSR=0, MXCSR and XMM are saved all the same (the SDM leaves it implementation-specific). */
/* The checks FXSAVE and FXRSTOR share, in the SDM's order (#NM, then #GP(0) for a misaligned
 * operand), and the 512-byte image read into f->ctx.buf at *lin. */
static int fx_image_read(struct emu_vcpu *c, const struct emu_insn *i, uint64_t *lin)
{
	if (c->cr0 & (CR0_EM | CR0_TS))
		return emu_raise(c, EMU_V_NM);
	*lin = emu_lin(c, i);
	if (*lin & 15)
		return emu_raise_err(c, EMU_V_GP, 0);
	return emu_read_bytes(c, *lin, c->fpu->ctx.buf, 512, EMU_ACC_R);
}

static int h_fxsave(ARGS)
{
	struct emu_fpu *f = c->fpu;
	uint8_t *m = f->ctx.buf;
	uint64_t lin;
	TRY(fx_image_read(c, i, &lin));
	memcpy(m, f->fx, xmm_end(c));
	TRY(emu_write_bytes(c, lin, m, 512, EMU_ACC_W));
	return emu_next(c, i);
}

static int h_fxrstor(ARGS)
{
	struct emu_fpu *f = c->fpu;
	uint8_t *m = f->ctx.buf;
	uint64_t lin;
	TRY(fx_image_read(c, i, &lin));
	bool sse = c->cr4 & CR4_OSFXSR;
	if (sse && (ld32(m + FX_MXCSR) & ~MXCSR_MASK))
		return emu_raise_err(c, EMU_V_GP, 0);
	memcpy(f->fx, m, FX_MXCSR);
	memcpy(f->fx + FX_ST, m + FX_ST, FX_XMM - FX_ST);
	if (sse) {
		memcpy(f->fx + FX_MXCSR, m + FX_MXCSR, 4);
		memcpy(f->fx + FX_XMM, m + FX_XMM, xmm_end(c) - FX_XMM);
	}
	f->fx[FX_FTW + 1] = 0;
	memset(f->fx + FX_FOP, 0, FX_MXCSR - FX_FOP);
	fsw_fix(f->fx);
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- XSAVE family (SDM Vol. 1 ch. 13) */

static int xsave_check(struct emu_vcpu *c, bool nm)
{
	if (!(c->cr4 & CR4_OSXSAVE))
		return emu_raise(c, EMU_V_UD);
	if (nm && (c->cr0 & CR0_TS))
		return emu_raise(c, EMU_V_NM);
	return 0;
}

static uint64_t rfbm(const struct emu_vcpu *c)
{
	return c->fpu->xcr0 & ((c->r[EMU_RDX] << 32) | (uint32_t)c->r[EMU_RAX]);
}

/* XSAVE and XSAVEOPT (standard form; SDM 13.7, 13.9). Every requested component is saved and
 * reported in use (XINUSE = 1): XSAVEOPT's init and modified optimisations are permitted, not
 * required. Read-modify-write of the whole 576 bytes, as FXSAVE above; PKRU (RFBM[9]) is written
 * at its own offset, 8 bytes, in another page when the area does not start in the first 1400
 * bytes of one. A faulting instruction writes nothing (exec.h): the legacy region's pages are
 * checked for writing before PKRU is written, and PKRU's write faults before it writes. */
static int h_xsave(ARGS)
{
	struct emu_fpu *f = c->fpu;
	uint8_t *m = f->ctx.buf;
	TRY(xsave_check(c, true));
	uint64_t lin = emu_lin(c, i);
	if (lin & 63)
		return emu_raise_err(c, EMU_V_GP, 0);
	TRY(emu_read_bytes(c, lin, m, XSAVE_BYTES, EMU_ACC_R));
	uint64_t rf = rfbm(c);
	if (rf & XCR0_X87) {
		memcpy(m, f->fx, FX_MXCSR);
		memcpy(m + FX_ST, f->fx + FX_ST, FX_XMM - FX_ST);
	}
	if (rf & XCR0_SSE) {
		memcpy(m + FX_MXCSR, f->fx + FX_MXCSR, 8);
		memcpy(m + FX_XMM, f->fx + FX_XMM, xmm_end(c) - FX_XMM);
	}
	if (rf & XCR0_PKRU) {
		uint64_t pk = c->pkru; /* bytes 4-7 of the component are 0 */
		TRY(emu_write_check(c, lin, XSAVE_BYTES));
		TRY(emu_write_bytes(c, (lin + XSAVE_PKRU) & c->lin_mask, &pk, XSAVE_PKRU_BYTES, EMU_ACC_W));
	}
	uint64_t bv = ld64(m + XSAVE_HDR);
	st64(m + XSAVE_HDR, (bv & ~rf) | rf);
	TRY(emu_write_bytes(c, lin, m, XSAVE_BYTES, EMU_ACC_W));
	return emu_next(c, i);
}

/* XRSTOR, standard form (SDM 13.8): #GP for a compacted header (XSAVEC is not advertised), header
 * bytes 8-23 not 0, XSTATE_BV bits outside XCR0, reserved MXCSR bits. */
static int h_xrstor(ARGS)
{
	struct emu_fpu *f = c->fpu;
	uint8_t *m = f->ctx.buf;
	TRY(xsave_check(c, true));
	uint64_t lin = emu_lin(c, i);
	if (lin & 63)
		return emu_raise_err(c, EMU_V_GP, 0);
	TRY(emu_read_bytes(c, lin, m, XSAVE_BYTES, EMU_ACC_R));
	uint64_t rf = rfbm(c), bv = ld64(m + XSAVE_HDR);
	if (ld64(m + XSAVE_HDR + 8) || ld64(m + XSAVE_HDR + 16) || (bv & ~f->xcr0))
		return emu_raise_err(c, EMU_V_GP, 0);
	if ((rf & XCR0_SSE) && (ld32(m + FX_MXCSR) & ~MXCSR_MASK))
		return emu_raise_err(c, EMU_V_GP, 0);
	uint32_t pkru = 0; /* PKRU's init value (SDM Vol. 1 13.6) */
	if ((rf & XCR0_PKRU) && (bv & XCR0_PKRU))
		TRY(emu_read_bytes(c, (lin + XSAVE_PKRU) & c->lin_mask, &pkru, 4, EMU_ACC_R));
	if (rf & XCR0_PKRU)
		emu_pk_written(c, EMU_TLB_PK_PKRU, pkru); /* nothing can fault after this */
	if (rf & XCR0_X87) {
		if (bv & XCR0_X87) {
			memcpy(f->fx, m, FX_MXCSR);
			memcpy(f->fx + FX_ST, m + FX_ST, FX_XMM - FX_ST);
			f->fx[FX_FTW + 1] = 0;
			memset(f->fx + FX_FOP, 0, FX_MXCSR - FX_FOP);
			fsw_fix(f->fx);
		} else {
			x87_init(f->fx);
		}
	}
	if (rf & XCR0_SSE) {
		memcpy(f->fx + FX_MXCSR, m + FX_MXCSR, 4);
		if (bv & XCR0_SSE)
			memcpy(f->fx + FX_XMM, m + FX_XMM, xmm_end(c) - FX_XMM);
		else
			memset(f->fx + FX_XMM, 0, xmm_end(c) - FX_XMM);
	}
	return emu_next(c, i);
}

static int h_xgetbv(ARGS)
{
	TRY(xsave_check(c, false));
	if ((uint32_t)c->r[EMU_RCX] != 0)
		return emu_raise_err(c, EMU_V_GP, 0);
	c->r[EMU_RAX] = (uint32_t)c->fpu->xcr0;
	c->r[EMU_RDX] = c->fpu->xcr0 >> 32;
	return emu_next(c, i);
}

/* SDM Vol. 2 "XSETBV": CPL 0, ECX 0, bit 0 set, only supported bits (bit 2 would need bit 1). */
static int h_xsetbv(ARGS)
{
	TRY(xsave_check(c, false));
	uint64_t v = (c->r[EMU_RDX] << 32) | (uint32_t)c->r[EMU_RAX];
	if (c->cpl || (uint32_t)c->r[EMU_RCX] != 0 || !(v & XCR0_X87) || (v & ~(uint64_t)XCR0_SUPPORTED))
		return emu_raise_err(c, EMU_V_GP, 0);
	c->fpu->xcr0 = v;
	return emu_next(c, i);
}

/* ---------------------------------------------------------------- selection at decode time */

/* THE table: the Zydis ISA sets that run here, and how they are checked. A form of these sets that is
 * not handled (encoder failure, an operand shape not foreseen) stays "unimplemented" (#UD), which the
 * enumeration test (tests/unit/emu_fpu_forms.c) reports. */
static const struct { ZydisISASet set; uint8_t kind; uint32_t ecx1, edx1; } fpu_isa[] = {
	{ ZYDIS_ISA_SET_X87, FK_X87, 0, 1u << 0 },
	{ ZYDIS_ISA_SET_FCMOV, FK_X87, 0, 1u << 0 },
	{ ZYDIS_ISA_SET_SSE3X87, FK_X87, 1u << 0, 0 },         /* FISTTP */
	{ ZYDIS_ISA_SET_PENTIUMMMX, FK_MMX, 0, 1u << 23 },
	{ ZYDIS_ISA_SET_SSE, FK_SSE, 0, 1u << 25 },
	{ ZYDIS_ISA_SET_SSEMXCSR, FK_SSE, 0, 1u << 25 },       /* LDMXCSR STMXCSR */
	{ ZYDIS_ISA_SET_SSE2, FK_SSE, 0, 1u << 26 },
	{ ZYDIS_ISA_SET_SSE2MMX, FK_SSE, 0, 1u << 26 },
	{ ZYDIS_ISA_SET_SSE3, FK_SSE, 1u << 0, 0 },
	{ ZYDIS_ISA_SET_SSSE3, FK_SSE, 1u << 9, 0 },
	{ ZYDIS_ISA_SET_SSSE3MMX, FK_SSE, 1u << 9, 0 },
	{ ZYDIS_ISA_SET_SSE4, FK_SSE, 1u << 19, 0 },
	{ ZYDIS_ISA_SET_SSE42, FK_SSE, 1u << 20, 0 },          /* CRC32 is FK_INT (below) */
	{ ZYDIS_ISA_SET_PCLMULQDQ, FK_SSE, 1u << 1, 0 },
	{ ZYDIS_ISA_SET_MOVBE, FK_INT, 1u << 22, 0 },
	{ ZYDIS_ISA_SET_FXSAVE, FK_X87, 0, 1u << 24 },
	{ ZYDIS_ISA_SET_FXSAVE64, FK_X87, 0, 1u << 24 },
	{ ZYDIS_ISA_SET_XSAVE, FK_X87, 1u << 26, 0 },
	{ ZYDIS_ISA_SET_XSAVEOPT, FK_X87, 1u << 26, 0 },
};

/* Non-waiting x87 instructions: they do not check for a pending exception (SDM Vol. 1 8.3.11, 8.6).
 * FLDCW, FLDENV and FRSTOR list no #MF in the SDM, but this (AMD) host raises it for them: they wait
 * here, as the host that runs them does. */
static bool x87_nowait(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_FNINIT: case ZYDIS_MNEMONIC_FNCLEX: case ZYDIS_MNEMONIC_FNSTSW:
	case ZYDIS_MNEMONIC_FNSTCW: case ZYDIS_MNEMONIC_FNSTENV: case ZYDIS_MNEMONIC_FNSAVE:
	case ZYDIS_MNEMONIC_FENI8087_NOP: case ZYDIS_MNEMONIC_FDISI8087_NOP: case ZYDIS_MNEMONIC_FSETPM287_NOP:
		return true;
	default:
		return false;
	}
}

/* x87 instructions that load a new control/status word: their FSW is not this instruction's flags */
static bool x87_loads_env(ZydisMnemonic m)
{
	return m == ZYDIS_MNEMONIC_FLDCW || m == ZYDIS_MNEMONIC_FLDENV || m == ZYDIS_MNEMONIC_FRSTOR;
}

/* legacy-SSE 16-byte memory operands that need not be aligned (SDM Vol. 1 11.4.1; SSE4.2 string ops) */
static bool unaligned_ok(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_MOVUPS: case ZYDIS_MNEMONIC_MOVUPD: case ZYDIS_MNEMONIC_MOVDQU:
	case ZYDIS_MNEMONIC_LDDQU: case ZYDIS_MNEMONIC_MASKMOVDQU: case ZYDIS_MNEMONIC_PCMPESTRI:
	case ZYDIS_MNEMONIC_PCMPESTRM: case ZYDIS_MNEMONIC_PCMPISTRI: case ZYDIS_MNEMONIC_PCMPISTRM:
		return true;
	default:
		return false;
	}
}

static int fpu_kind(const ZydisDecodedInstruction *zi, uint32_t *ecx1, uint32_t *edx1)
{
	for (size_t k = 0; k < sizeof fpu_isa / sizeof fpu_isa[0]; k++)
		if (fpu_isa[k].set == zi->meta.isa_set) {
			*ecx1 = fpu_isa[k].ecx1;
			*edx1 = fpu_isa[k].edx1;
			if (zi->mnemonic == ZYDIS_MNEMONIC_CRC32 || zi->mnemonic == ZYDIS_MNEMONIC_MOVNTI)
				return FK_INT; /* general-purpose registers only: no CR0/CR4 checks */
			if (zi->mnemonic == ZYDIS_MNEMONIC_FISTTP)
				return FK_X87; /* SSE3 by CPUID, an x87 instruction by its checks */
			return fpu_isa[k].kind;
		}
	return -1;
}

bool emu_fpu_advertised(const ZydisDecodedInstruction *zi)
{
	uint32_t e1, d1;
	if (fpu_kind(zi, &e1, &d1) < 0)
		return false;
	struct fpu_feat h = feat_get();
	return (e1 & h.ecx1) == e1 && (d1 & h.edx1) == d1;
}

static ZydisRegister host_gpr(unsigned slot, unsigned size)
{
	static const ZydisRegister r[2][4] = {
		{ ZYDIS_REGISTER_R8B, ZYDIS_REGISTER_R8W, ZYDIS_REGISTER_R8D, ZYDIS_REGISTER_R8 },
		{ ZYDIS_REGISTER_R9B, ZYDIS_REGISTER_R9W, ZYDIS_REGISTER_R9D, ZYDIS_REGISTER_R9 },
	};
	return r[slot][size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3];
}

static unsigned desc_hash(const struct fpu_desc *d)
{
	const uint8_t *p = (const uint8_t *)d + offsetof(struct fpu_desc, code);
	size_t n = sizeof *d - offsetof(struct fpu_desc, code);
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t k = 0; k < n; k++)
		h = (h ^ p[k]) * 0x100000001b3ull;
	return (unsigned)(h >> 32) & (FPU_HASH - 1);
}

/* The shared descriptor equal to t (stub written on first use), or NULL when the arena is full. */
static const struct fpu_desc *desc_get(struct emu_fpu *f, const struct fpu_desc *t)
{
	unsigned h = desc_hash(t);
	size_t off = offsetof(struct fpu_desc, code);
	for (struct fpu_desc *d = f->hash[h]; d; d = d->next)
		if (!memcmp((const uint8_t *)d + off, (const uint8_t *)t + off, sizeof *d - off))
			return d;
	size_t slot = (t->clen + 15u) & ~(size_t)15;
	if (f->code_used + slot > FPU_CODE_BYTES)
		return NULL;
	struct fpu_desc *d = malloc(sizeof *d);
	if (!d)
		return NULL;
	memcpy(d, t, sizeof *d); /* padding included: the key is compared with memcmp */
	memcpy(f->code.w + f->code_used, t->code, t->clen);
	d->stub = f->code.x + f->code_used;
	f->code_used += slot;
	d->next = f->hash[h];
	f->hash[h] = d;
	return d;
}

/* Appends `mn reg, [base + disp]` to a stub at code + at (reg >= 0: XMM reg loaded; reg <= -2: XMM
 * -2-reg stored; -1: a memory operand only, LDMXCSR/STMXCSR); SIZE_MAX on failure. */
static size_t stub_mem(uint8_t *code, size_t at, ZydisMnemonic mn, int reg, ZydisRegister base, int disp,
		       unsigned bits)
{
	if (at == SIZE_MAX)
		return at;
	ZydisEncoderRequest r;
	memset(&r, 0, sizeof r);
	r.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	r.mnemonic = mn;
	ZydisEncoderOperand mo;
	memset(&mo, 0, sizeof mo);
	mo.type = ZYDIS_OPERAND_TYPE_MEMORY;
	mo.mem.base = base;
	mo.mem.displacement = disp;
	mo.mem.size = (ZyanU16)(bits / 8);
	ZydisEncoderOperand ro;
	memset(&ro, 0, sizeof ro);
	ro.type = ZYDIS_OPERAND_TYPE_REGISTER;
	ro.reg.value = (ZydisRegister)(ZYDIS_REGISTER_XMM0 + (reg >= 0 ? reg : -2 - reg));
	if (reg == -1) {
		r.operand_count = 1;
		r.operands[0] = mo;
	} else {
		r.operand_count = 2;
		r.operands[reg >= 0 ? 0 : 1] = ro;
		r.operands[reg >= 0 ? 1 : 0] = mo;
	}
	uint8_t tmp[ZYDIS_MAX_INSTRUCTION_LENGTH];
	ZyanUSize len = sizeof tmp;
	if (ZYAN_FAILED(ZydisEncoderEncodeInstruction(&r, tmp, &len)) || at + len > sizeof ((struct fpu_desc *)0)->code)
		return SIZE_MAX;
	memcpy(code + at, tmp, len);
	return at + len;
}

int emu_fpu_select(struct emu_vcpu *c, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		   struct emu_insn *i)
{
	uint32_t e1, d1;
	int kind = fpu_kind(zi, &e1, &d1);
	ZydisMnemonic m = zi->mnemonic;
	if (kind < 0 || !emu_fpu_advertised(zi))
		return EMU_SEL_BAD;
	memset(i, 0, sizeof *i);
	i->len = zi->length;
	i->mnem = (uint16_t)m;
	i->osz = (uint8_t)(zi->operand_width / 8 ? zi->operand_width / 8 : 8);
	i->b = i->x = EMU_NOREG;
	i->seg = EMU_DS;

	/* the memory operand (explicit, or MASKMOVQ/MASKMOVDQU's implicit [rDI]) */
	int mem = -1;
	for (unsigned k = 0; k < zi->operand_count; k++)
		if (zo[k].type == ZYDIS_OPERAND_TYPE_MEMORY && zo[k].mem.type == ZYDIS_MEMOP_TYPE_MEM) {
			if (mem >= 0)
				return EMU_SEL_BAD;
			mem = (int)k;
		}
	if (mem >= 0 && emu_mem_operand(zi, &zo[mem], i))
		return EMU_SEL_BAD;

	emu_fn *special = NULL;
	switch (m) {
	case ZYDIS_MNEMONIC_LDMXCSR: special = h_ldmxcsr; break;
	case ZYDIS_MNEMONIC_STMXCSR: special = h_stmxcsr; break;
	case ZYDIS_MNEMONIC_FXSAVE: case ZYDIS_MNEMONIC_FXSAVE64: special = h_fxsave; break;
	case ZYDIS_MNEMONIC_FXRSTOR: case ZYDIS_MNEMONIC_FXRSTOR64: special = h_fxrstor; break;
	case ZYDIS_MNEMONIC_XSAVE: case ZYDIS_MNEMONIC_XSAVE64: case ZYDIS_MNEMONIC_XSAVEOPT:
	case ZYDIS_MNEMONIC_XSAVEOPT64: special = h_xsave; break;
	case ZYDIS_MNEMONIC_XRSTOR: case ZYDIS_MNEMONIC_XRSTOR64: special = h_xrstor; break;
	case ZYDIS_MNEMONIC_XGETBV: special = h_xgetbv; break;
	case ZYDIS_MNEMONIC_XSETBV: special = h_xsetbv; break;
	default: break;
	}
	if (special) {
		bool needs_mem = m != ZYDIS_MNEMONIC_XGETBV && m != ZYDIS_MNEMONIC_XSETBV;
		if (needs_mem != (mem >= 0))
			return EMU_SEL_BAD;
		i->fn = special;
		return 0;
	}
	if (zi->meta.isa_set == ZYDIS_ISA_SET_XSAVE || zi->meta.isa_set == ZYDIS_ISA_SET_XSAVEOPT ||
	    zi->meta.isa_set == ZYDIS_ISA_SET_FXSAVE || zi->meta.isa_set == ZYDIS_ISA_SET_FXSAVE64)
		return EMU_SEL_BAD;

	struct fpu_desc t;
	memset(&t, 0, sizeof t);
	t.kind = (uint8_t)kind;
	t.fwait = m == ZYDIS_MNEMONIC_FWAIT;
	t.waiting = (kind == FK_X87 && !x87_nowait(m)) || kind == FK_MMX;
	t.envload = x87_loads_env(m);
	t.envstore = m == ZYDIS_MNEMONIC_FNSTENV || m == ZYDIS_MNEMONIC_FNSAVE;
	bool mmx = false;
	uint16_t xrw = 0;
	t.sticky = kind == FK_X87 && t.waiting && !t.envload;
	ZydisEncoderRequest req;
	if (ZYAN_FAILED(ZydisEncoderDecodedInstructionToEncoderRequest(zi, zo, zi->operand_count_visible, &req)))
		return EMU_SEL_BAD;
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.prefixes = 0;
	req.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_NONE;
	if (mem >= 0) {
		const ZydisDecodedOperand *o = &zo[mem];
		t.msize = (uint16_t)(o->size / 8);
		t.mrd = (o->actions & ZYDIS_OPERAND_ACTION_MASK_READ) != 0;
		t.mwr = (o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
		if (m == ZYDIS_MNEMONIC_MASKMOVQ || m == ZYDIS_MNEMONIC_MASKMOVDQU)
			t.mrd = 1; /* the bytes not selected are written back as read */
		if (!t.msize || t.msize > sizeof c->fpu->ctx.buf)
			return EMU_SEL_BAD;
		if (kind == FK_SSE && t.msize == 16 && !unaligned_ok(m))
			t.align = 16;
		if (o->visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT) {
			ZydisEncoderOperand *eo = &req.operands[mem];
			eo->mem.base = ZYDIS_REGISTER_RDI;
			eo->mem.index = ZYDIS_REGISTER_NONE;
			eo->mem.scale = 0;
			eo->mem.displacement = 0;
		} else {
			req.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_64; /* [rdi] = the bounce buffer */
		}
	}
	for (unsigned k = 0; k < zi->operand_count; k++) {
		const ZydisDecodedOperand *o = &zo[k];
		if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		ZydisRegisterClass rc = ZydisRegisterGetClass(o->reg.value);
		if (rc == ZYDIS_REGCLASS_MMX && kind == FK_SSE)
			t.waiting = 1; /* SSE forms with MMX operands: x87-to-MMX transition, #MF */
		if (rc == ZYDIS_REGCLASS_MMX)
			mmx = true;
		if (rc == ZYDIS_REGCLASS_XMM) {
			unsigned k = (unsigned)(o->reg.value - ZYDIS_REGISTER_XMM0);
			xrw |= (uint16_t)(1u << k);
			if (o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)
				t.xwr |= (uint16_t)(1u << k);
		}
		if (rc == ZYDIS_REGCLASS_FLAGS || rc == ZYDIS_REGCLASS_IP)
			continue;
		if (rc != ZYDIS_REGCLASS_GPR8 && rc != ZYDIS_REGCLASS_GPR16 && rc != ZYDIS_REGCLASS_GPR32 &&
		    rc != ZYDIS_REGCLASS_GPR64)
			continue;
		unsigned size = o->size / 8;
		if (o->visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT) {
			if (t.ng == 2 || k >= req.operand_count)
				return EMU_SEL_BAD;
			int off = emu_gpr_id(o->reg.value, &size);
			if (off < 0)
				return EMU_SEL_BAD;
			t.g[t.ng] = (struct fpu_gpr){ (uint8_t)off, (uint8_t)size,
						      (o->actions & ZYDIS_OPERAND_ACTION_MASK_READ) != 0,
						      (o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0 };
			req.operands[k].reg.value = host_gpr(t.ng, size);
			t.ng++;
		} else {
			unsigned s2;
			int id = emu_gpr_id(o->reg.value, &s2);
			if (id < 0 || s2 == 1 || id > EMU_RDX)
				return EMU_SEL_BAD; /* only EAX/ECX/EDX are implicit operands here */
			if (o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)
				t.imp_wr |= (uint8_t)(id == EMU_RAX ? 1 : id == EMU_RCX ? 2 : 4);
		}
	}
	if (zi->cpu_flags) {
		t.flags_in = zi->cpu_flags->tested != 0;
		t.flags_out = (zi->cpu_flags->modified | zi->cpu_flags->set_0 | zi->cpu_flags->set_1 |
			       zi->cpu_flags->undefined) != 0;
	}
	/* the fast path (fpu_tramp_fast) for forms that touch no x87/MMX state */
	bool fast = (kind == FK_SSE && !mmx) || kind == FK_INT;
	if (!fast)
		t.xwr = 0;
	size_t at = 0;
	if (fast && kind == FK_SSE)
		at = stub_mem(t.code, at, ZYDIS_MNEMONIC_LDMXCSR, -1, ZYDIS_REGISTER_RDI, CTX_MXIN, 32);
	for (unsigned m = fast ? xrw : 0; m; m &= m - 1) {
		int k = __builtin_ctz(m);
		at = stub_mem(t.code, at, ZYDIS_MNEMONIC_MOVDQA, k, ZYDIS_REGISTER_R10, FX_XMM + 16 * k, 128);
	}
	ZyanUSize len = sizeof t.code - at;
	if (at == SIZE_MAX || ZYAN_FAILED(ZydisEncoderEncodeInstruction(&req, t.code + at, &len)))
		return EMU_SEL_BAD;
	at += len;
	for (unsigned m = t.xwr; m; m &= m - 1) {
		int k = __builtin_ctz(m);
		at = stub_mem(t.code, at, ZYDIS_MNEMONIC_MOVDQA, -2 - k, ZYDIS_REGISTER_R11, 16 * k, 128);
	}
	if (fast && kind == FK_SSE)
		at = stub_mem(t.code, at, ZYDIS_MNEMONIC_STMXCSR, -1, ZYDIS_REGISTER_RDI, CTX_MXOUT, 32);
	if (at == SIZE_MAX || at + 1 > sizeof t.code)
		return EMU_SEL_BAD;
	t.code[at++] = 0xc3; /* RET */
	t.clen = (uint8_t)at;
	const struct fpu_desc *d = desc_get(c->fpu, &t);
	if (!d)
		return EMU_SEL_BAD;
	i->imm = (uint64_t)(uintptr_t)d;
	i->fn = fast ? h_fpu_fast : h_fpu;
	return 0;
}
