/* SPDX-License-Identifier: MIT */
/*
 * emu_legacy_oracle: the host CPU is the oracle for the legacy integer forms that do not exist in
 * 64-bit mode (DAA DAS AAA AAS AAM AAD SALC PUSHA/PUSHAD POPA/POPAD XLAT ARPL, and 16-bit addressing
 * through 67 in 32-bit code: LEA, since the host cannot map the low 64 KiB). The host runs them in a 32-bit code segment of this very 64-bit process:
 * Linux's GDT has a flat 32-bit user code segment (__USER32_CS = 0x23), reached with a far CALL from a
 * 64-bit trampoline in memory below 4 GiB (MAP_32BIT), with a stack there too (compatibility mode
 * uses ESP). The engine runs the same bytes in 32-bit protected mode. Every case: the 8 GPRs (pointer
 * registers relative to their region), the status flags the SDM defines (the engine computes the
 * undefined ones of the BCD group as QEMU does, src/emu/legacy.c; processors differ there), and a
 * 4 KiB data region (the stack
 * of PUSHA/POPA, the table of XLAT) must match. 2000 random cases per form, fixed seed.
 * Skips (77) where the host cannot enter 32-bit code (no __USER32_CS, or not an x86-64 Linux).
 */
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu_harness.h"

#ifndef MAP_32BIT
#define MAP_32BIT 0x40
#endif

/* low memory layout (host), offsets from lo */
#define L_CODE64 0x0000  /* 64-bit trampoline */
#define L_STUB 0x0200    /* 32-bit stub: load state, the instruction, store state, LRET */
#define L_ST 0x1000      /* struct st */
#define L_STACK 0x2000   /* top of the stub's stack (lcall frame) */
#define L_DATA 0x4000    /* data region: DSZ bytes (stack of the instruction, XLAT table) */
#define DSZ 0x1000
#define E_DATA 0x20000   /* the data region in the engine's guest RAM */

struct st {
	uint32_t in[8], in_fl;
	uint32_t out[8], out_fl;
	uint32_t saved_esp;
	uint32_t farptr[2];
	uint64_t saved_rsp;
};

static uint8_t *lo;
#define ST ((struct st *)(lo + L_ST))
#define A(field) ((uint32_t)(uintptr_t)&ST->field)

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return p + 4;
}

/* 32-bit stub around the instruction bytes */
static void build_stub(const uint8_t *insn, unsigned len)
{
	uint8_t *p = lo + L_STUB;
	*p++ = 0x89; *p++ = 0x25; p = put32(p, A(saved_esp));      /* mov [saved_esp], esp */
	*p++ = 0xff; *p++ = 0x35; p = put32(p, A(in_fl));          /* push [in_fl] */
	*p++ = 0x9d;                                                 /* popfd */
	for (int r = 0; r < 8; r++) {                                /* mov r32, [in + 4r]; ESP last */
		int rr = r < 4 ? r : r == 7 ? 4 : r + 1;
		*p++ = 0x8b; *p++ = (uint8_t)(rr << 3 | 5); p = put32(p, A(in[rr]));
	}
	memcpy(p, insn, len);
	p += len;
	for (int r = 0; r < 8; r++) {
		*p++ = 0x89; *p++ = (uint8_t)(r << 3 | 5); p = put32(p, A(out[r]));
	}
	*p++ = 0x8b; *p++ = 0x25; p = put32(p, A(saved_esp));      /* mov esp, [saved_esp] */
	*p++ = 0x9c;                                                 /* pushfd (on the stub's stack) */
	*p++ = 0x8f; *p++ = 0x05; p = put32(p, A(out_fl));         /* pop [out_fl] */
	*p++ = 0xcb;                                                 /* lret */
}

/* 64-bit trampoline: callee-saved registers kept, DS/ES = 0x2b, RSP to the low stack, far call. */
static void build_tramp(void)
{
	uint8_t *p = lo + L_CODE64;
	*p++ = 0x53; *p++ = 0x55;                                     /* push rbx; push rbp */
	*p++ = 0x48; *p++ = 0x89; *p++ = 0x24; *p++ = 0x25; p = put32(p, A(saved_rsp)); /* mov [abs], rsp */
	*p++ = 0xbc; p = put32(p, (uint32_t)(uintptr_t)(lo + L_STACK)); /* mov esp, imm32 (zero-extends) */
	*p++ = 0xb8; p = put32(p, 0x2b);                               /* mov eax, 0x2b */
	*p++ = 0x8e; *p++ = 0xd8; *p++ = 0x8e; *p++ = 0xc0;           /* mov ds, eax; mov es, eax */
	*p++ = 0xff; *p++ = 0x1c; *p++ = 0x25; p = put32(p, A(farptr)); /* lcall [abs] (m16:32) */
	*p++ = 0x48; *p++ = 0x8b; *p++ = 0x24; *p++ = 0x25; p = put32(p, A(saved_rsp)); /* mov rsp, [abs] */
	*p++ = 0x5d; *p++ = 0x5b; *p++ = 0xc3;                         /* pop rbp; pop rbx; ret */
	ST->farptr[0] = (uint32_t)(uintptr_t)(lo + L_STUB);
	ST->farptr[1] = 0x23;
}

static void host_run(void)
{
	((void (*)(void))(void *)(lo + L_CODE64))();
}

static uint64_t rs = 0x243f6a8885a308d3ull;
static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 11);
}

struct form {
	const char *name;
	uint8_t b[8];
	unsigned len;
	int ptr;  /* a register holding an address into the data region (besides ESP), or -1 */
	uint16_t fmask; /* the status flags compared: those the SDM defines (0: all six) */
};

static const struct form forms[] = {
	{ "daa", { 0x27 }, 1, -1, 0xd5 },
	{ "das", { 0x2f }, 1, -1, 0xd5 },
	{ "aaa", { 0x37 }, 1, -1, 0x11 },
	{ "aas", { 0x3f }, 1, -1, 0x11 },
	{ "aam", { 0xd4, 0x0a }, 2, -1, 0xc4 },
	{ "aam 7", { 0xd4, 0x07 }, 2, -1, 0xc4 },
	{ "aam 0x53", { 0xd4, 0x53 }, 2, -1, 0xc4 },
	{ "aad", { 0xd5, 0x0a }, 2, -1, 0xc4 },
	{ "aad 7", { 0xd5, 0x07 }, 2, -1, 0xc4 },
	{ "aad 0xf3", { 0xd5, 0xf3 }, 2, -1, 0xc4 },
	{ "salc", { 0xd6 }, 1, -1, 0 },
	{ "pusha", { 0x66, 0x60 }, 2, -1, 0 },
	{ "pushad", { 0x60 }, 1, -1, 0 },
	{ "popa", { 0x66, 0x61 }, 2, -1, 0 },
	{ "popad", { 0x61 }, 1, -1, 0 },
	{ "xlat", { 0xd7 }, 1, 3, 0 },
	{ "arpl ax, cx", { 0x63, 0xc8 }, 2, -1, 0 },
	{ "arpl [ebx], dx", { 0x63, 0x13 }, 2, 3, 0 },
	{ "lds esi, [ebx] (selector 0x2b)", { 0xc5, 0x33 }, 2, 3, 0 },
	{ "cbw", { 0x66, 0x98 }, 2, -1, 0 },
	{ "cwd", { 0x66, 0x99 }, 2, -1, 0 },
	{ "lea ax, [bx+si+0x10] (67)", { 0x67, 0x66, 0x8d, 0x40, 0x10 }, 5, -1, 0 },
	{ "lea eax, [bx+si] (67)", { 0x67, 0x8d, 0x00 }, 3, -1, 0 },
	{ "lea eax, [bp+di-0x1234] (67)", { 0x67, 0x8d, 0x83, 0xcc, 0xed }, 5, -1, 0 },
};

/* One case's inputs: registers (pointer registers as offsets into the data region), flags, data. */
struct input {
	uint32_t r[8], fl;
	uint8_t data[DSZ];
};

static void gen(const struct form *f, struct input *in)
{
	for (int k = 0; k < 8; k++)
		in->r[k] = rnd();
	unsigned sh = rnd() % 4;
	if (sh == 1) /* BCD: small values, all AL/AH patterns matter */
		in->r[0] = (in->r[0] & ~0xffffu) | (rnd() & 0xffff);
	else if (sh == 2)
		in->r[0] = (in->r[0] & ~0xffu) | (rnd() % 0xa0);
	in->r[4] = 0x800;                      /* ESP: middle of the data region */
	if (f->ptr >= 0)
		in->r[f->ptr] = 0x900;
	if (f->b[0] == 0x67) {                 /* 16-bit addressing: BX BP SI DI below the region's end */
		in->r[3] = (in->r[3] & ~0xffffu) | (rnd() % 0x300);
		in->r[5] = (in->r[5] & ~0xffffu) | 0x1234u | (rnd() % 0x300);
		in->r[6] = (in->r[6] & ~0xffffu) | (rnd() % 0x300);
		in->r[7] = (in->r[7] & ~0xffffu) | (rnd() % 0x300);
	}
	in->fl = 0x202 | (rnd() & 0x8d5);
	for (unsigned k = 0; k < DSZ; k++)
		in->data[k] = (uint8_t)rnd();
	if (f->b[0] == 0xc5) {                 /* LDS: a selector the host accepts (__USER_DS) */
		in->data[0x904] = 0x2b;
		in->data[0x905] = 0;
	}
}

struct output {
	uint32_t r[8], fl;
	uint8_t data[DSZ];
};

int main(void)
{
	lo = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (lo == MAP_FAILED) {
		printf("emu_legacy_oracle: skip: no memory below 4 GiB (mmap MAP_32BIT)\n");
		return 77;
	}
	build_tramp();
	/* probe in a child: a host without __USER32_CS (or not Linux x86-64) faults */
	{
		static const uint8_t nop[] = { 0x90 };
		build_stub(nop, 1);
		pid_t pid = fork();
		if (pid == 0) {
			host_run();
			_exit(0);
		}
		int ws = 0;
		waitpid(pid, &ws, 0);
		if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
			if (getenv("EMU_ORACLE_VERBOSE"))
				fprintf(stderr, "probe: status 0x%x\n", ws);
			printf("emu_legacy_oracle: skip: the host cannot run 32-bit code (far call to 0x23 failed)\n");
			return 77;
		}
	}

	struct t_vm t;
	t_init(&t);
	t_prot32(&t);
	/* the LDS selector 0x2b must be a data segment for the engine too: GDT entry 5 */
	t_w64(&t, T_GDT + 0x28, 0x00cff3000000ffffull);
	const unsigned nf = sizeof forms / sizeof forms[0];
	for (unsigned f = 0; f < nf; f++) {
		memcpy(t.ram + T_CODE + 16 * f, forms[f].b, forms[f].len);
		t.ram[T_CODE + 16 * f + forms[f].len] = 0xf4;
	}
	const unsigned ncases = 2000;
	static struct input in;
	static struct output ho, eo;
	int fails = 0;
	for (unsigned f = 0; f < nf; f++) {
		const struct form *fm = &forms[f];
		build_stub(fm->b, fm->len);
		int ff = 0;
		for (unsigned n = 0; n < ncases; n++) {
			gen(fm, &in);
			/* host */
			uint32_t hb = (uint32_t)(uintptr_t)(lo + L_DATA);
			for (int k = 0; k < 8; k++)
				ST->in[k] = in.r[k] + ((k == 4 || k == fm->ptr) ? hb : 0);
			ST->in_fl = in.fl;
			memcpy(lo + L_DATA, in.data, DSZ);
			host_run();
			for (int k = 0; k < 8; k++)
				ho.r[k] = ST->out[k] - ((k == 4 || k == fm->ptr) ? hb : 0);
			uint32_t fmask = fm->fmask ? fm->fmask : 0x8d5;
			ho.fl = ST->out_fl & fmask;
			memcpy(ho.data, lo + L_DATA, DSZ);
			/* engine */
			struct kvm_regs r = { 0 };
			__u64 *g[8] = { &r.rax, &r.rcx, &r.rdx, &r.rbx, &r.rsp, &r.rbp, &r.rsi, &r.rdi };
			for (int k = 0; k < 8; k++)
				*g[k] = in.r[k] + ((k == 4 || k == fm->ptr) ? E_DATA : 0);
			r.rflags = in.fl;
			r.rip = T_CODE + 16 * f;
			t.ops->set_regs(t.cpu, &r);
			memcpy(t.ram + E_DATA, in.data, DSZ);
			int ex = t_run(&t);
			r = t_regs(&t);
			for (int k = 0; k < 8; k++)
				eo.r[k] = (uint32_t)*g[k] - ((k == 4 || k == fm->ptr) ? E_DATA : 0);
			eo.fl = (uint32_t)r.rflags & fmask;
			memcpy(eo.data, t.ram + E_DATA, DSZ);
			bool ok = ex == KVM_EXIT_HLT && !memcmp(ho.r, eo.r, sizeof ho.r) && ho.fl == eo.fl &&
				  !memcmp(ho.data, eo.data, DSZ);
			if (!ok && ff++ < 3) {
				fprintf(stderr, "%s: case %u: exit %d; in eax %08x flags %03x\n", fm->name, n, ex,
					in.r[0], in.fl & 0x8d5);
				for (int k = 0; k < 8; k++)
					if (ho.r[k] != eo.r[k])
						fprintf(stderr, "  r%d host %08x engine %08x\n", k, ho.r[k], eo.r[k]);
				if (ho.fl != eo.fl)
					fprintf(stderr, "  flags host %03x engine %03x\n", ho.fl, eo.fl);
				if (memcmp(ho.data, eo.data, DSZ))
					fprintf(stderr, "  data region differs\n");
			}
		}
		if (ff) {
			fprintf(stderr, "FAIL %s: %d of %u cases differ\n", fm->name, ff, ncases);
			fails++;
		}
	}
	t_fini(&t);
	if (fails) {
		fprintf(stderr, "emu_legacy_oracle: %d of %u forms differ\n", fails, nf);
		return 1;
	}
	printf("emu_legacy_oracle: ok (%u forms x %u cases against the host in a 32-bit code segment)\n", nf, ncases);
	return 0;
}
