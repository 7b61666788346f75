/* SPDX-License-Identifier: MIT */
/*
 * The binary translator of the emu engine (issue 16, step a): a decoded block (decode.c) becomes
 * host code that runs it, attached to the block as b->entry, so that everything that invalidates a
 * block (write generations, the decode-cache flush, the jump cache's exec epoch) invalidates its
 * translation too, and the run loop and block chaining (branch_to() in exec_branch.c) run it in place of
 * the interpreter's first handler with the same signature and the same statuses.
 *
 * A translated block is a sequence of two kinds of pieces, in guest order:
 *
 *   - a RUN of instructions executed by their handlers: consecutive decoded instructions (copies of
 *     the block's struct emu_insn, terminated by an entry whose handler xl_yield returns EMU_ST_OK)
 *     called once, threaded exactly as the interpreter runs them: emu_next() tail-calls the next one,
 *     and the terminator comes back with 0. Any other status (a taken branch, a fault, an exit, a
 *     stop request) leaves the block with it, c->last_i and RIP set by the handler as in the
 *     interpreter. A run that reaches the end of the block is the block's own instructions, ending
 *     with its sentinel. Memory accesses, locked instructions (the bus-lock path), control transfers
 *     and system instructions are always handlers: ONE guest-memory path, ONE exit path.
 *   - a NATIVE instruction: an integer instruction with only register and immediate operands
 *     (native_form(): the mnemonic and the operand kinds) re-encoded by Zydis's encoder with host
 *     registers. The guest registers it names are loaded from c->r[] (rbx holds c in translated code)
 *     into host scratch registers, the instruction runs, the registers it writes are stored back
 *     whole (the host's partial-register semantics are the guest's). It cannot fault, so a run of
 *     native instructions adds its lengths to RIP once, before the next run or the block's end.
 *   - a native MEMORY FORM (step b, mem_form()): a load, a store or an ALU/CMP/TEST source in 64-bit
 *     mode, its memory operand replaced by [rax], the host address the interpreter's inline TLB hit
 *     test computes (emit_tlb()). When that test fails, an out-of-line slow path (after the block's
 *     end) makes the state exact (flags, RIP, the native count), runs the instruction's handler alone
 *     -- a miss, MMIO, a page crossing, a code page, a fault: exactly the interpreter -- and comes
 *     back with the fast path's state (RIP and the count as if still pending, the flags reloaded
 *     where the fast path has them in the host).
 *
 *   - a TAKEN RELATIVE BRANCH of a 64-bit block (JMP rel, a native Jcc's taken side; step b):
 *     RIP set to the target, then emit_taken(), branch_to()'s rule in host code: chained to the
 *     target's translation or handlers by a tail jump through the jump cache, or back to the run
 *     loop with EMU_ST_END (stop request, chain used up, no valid entry).
 *
 * Status flags: ONE representation stays the truth between pieces, the interpreter's (exec.h, LAZY
 * FLAGS: c->rflags, exact when c->lf_k is 0). The translator tracks at translation time where the
 * guest's status flags are: in the context (c->rflags/lazy) and/or in the host's RFLAGS. A native
 * instruction that reads flags, or writes only some (INC/DEC keep CF, ROL/ROR only CF and OF), first
 * loads them into the host (emu_flags_sync() when lazy, then SAHF and an ADD for OF); one that writes
 * all six leaves them in the host only. Before a run or the block's end the host's flags are stored
 * into c->rflags (PUSHFQ) with lf_k = 0. Flags the SDM leaves undefined are the host's: the
 * interpreter produces the AMD host's values (alu.c), so forms with undefined flags are re-emitted
 * only on an AMD host, except AND/OR/XOR/TEST's AF (cleared by both vendors).
 *
 * What stays exact: the retired-instruction count (the block boundaries are the interpreter's; a
 * stop request at block entry -- single-step, TF -- runs the translation's instruction 0 through its
 * handler alone, whose emu_next() ends the block with c->last_i set: emit_entry_stop), precise exceptions (native instructions do not fault;
 * RIP is exact whenever a handler runs), interrupts and kicks (seen at the same block boundaries).
 *
 * Code lives in a bounded arena (struct emu_code_arena, W^X), data (the runs' copies) in a bounded
 * array; decode.c flushes the whole decode cache, and with it both, when one more block might not
 * fit (emu_xlate_room()), so a translation never runs out of room: running out is an internal error.
 */
#include <cpuid.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <Zydis/Encoder.h>

#include "emu/emu.h"
#include "emu/exec.h"
#include "emu/xlate.h"

#define XL_LF_HOST (LF_HOST | 8u << 8) /* exec.h: a host flags record, size 8 (no shift) */

/* ---------------------------------------------------------------- the code arena (W^X) */

int emu_code_arena_map(struct emu_code_arena *a, size_t size, const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size)) {
		close(fd);
		return -1;
	}
	void *w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	void *x = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	close(fd);
	if (w == MAP_FAILED || x == MAP_FAILED) {
		if (w != MAP_FAILED)
			munmap(w, size);
		if (x != MAP_FAILED)
			munmap(x, size);
		return -1;
	}
	a->w = w;
	a->x = x;
	a->size = size;
	return 0;
}

void emu_code_arena_unmap(struct emu_code_arena *a)
{
	if (!a->size)
		return;
	munmap(a->w, a->size);
	munmap((void *)a->x, a->size);
	a->size = 0;
}

/* ---------------------------------------------------------------- translator state */

/* Blocks run fewer times than this stay with their handlers: translating costs about as much as
 * running a block a few dozen times (Zydis decodes and encodes every instruction again), and most
 * blocks of a boot run only a few times. Measured on the Linux boot (vmlinux, 1 vCPU; perf, share of
 * the run in the translator's functions / share of retired instructions native): after 32 runs
 * 18.8 % / 96.9 %, after 128 12.8 % / 95.5 %, after 512 7.8 % / 93.6 %. 128: the issue's 95 %. */
#define XL_HOT 128

#define XL_CODE_BYTES (16u << 20)
#define XL_DATA_INSNS ((8u << 20) / sizeof(struct emu_insn))
#define XL_INSN_CODE 512u   /* host bytes one guest instruction may need at most (slow path included) */
#define XL_BLOCK_CODE 256u  /* ... and one block beyond them (prologue, stop path, end) */
#define XL_EXIT_AT 0u       /* the shared epilogue at the arena's start: pop rbx; ret */
#define XL_CHAIN_AT 2u      /* the chain stub (emu_xlate_chain_stub) */
#define XL_FLAGS_IN_AT 16u  /* the flags-in stub (flags_in_stub) */
#define XL_CODE_START 256u

/* Encodings already made (emit()): the translator emits the same few hundred host instructions
 * (context loads and stores, the flag and TLB sequences) over and over, and Zydis's encoder costs
 * about a thousand host instructions each -- on the Linux boot, with most blocks translated once,
 * the encoder was most of the translation cost. Keyed by the whole request, compared exactly, or
 * by its template (memo_template: the same request with a displacement or a 64-bit immediate
 * replaced by its size class's representative); requests with a relative target are not kept
 * (their bytes depend on where they go). 4096 slots (1.7 MB per vCPU, touched as used): on the
 * Linux boot, Zydis's encoder ran 745000 times with 1024 slots and no templates, 473000 with 4096,
 * 309000 with 4096 and templates (uprobe on ZydisEncoderEncodeInstructionAbsolute). */
/* guest registers of a native instruction, in the order they got host registers from host_pool */
struct xl_map {
	int guest[4];
	bool wr[4];
	bool rd[4];       /* loaded from c->r[] first: read, or written only in part (emit_native) */
	unsigned n;
	unsigned pool0;   /* first host_pool entry used (memory forms leave rcx, rdx, rsi, rdi to the TLB path) */
	ZydisEncoderOperand mem; /* memory forms: the guest's address with host registers */
	unsigned mem_size;       /* ... its access size in bytes, and whether it is written */
	bool mem_write;
	bool riprel;             /* the address is RIP-relative (base RIP: emit_rip_base()) */
	uint64_t rip_next;       /* emit_native: the instruction's end, from c->rip (RIP-relative) */
};

/* a native instruction's host encoding, made once by native_form() for emit_native() */
struct xl_enc {
	struct xl_map mp;
	uint8_t buf[2 * ZYDIS_MAX_INSTRUCTION_LENGTH + 2]; /* one instruction; two for PUSH/POP */
	uint8_t len;
	ZydisEncoderRequest req[2]; /* the same, as requests (emit_native re-encodes them with the */
	uint8_t nreq;               /* host registers of the register cache, struct xl_cache) */
};

#define XL_MEMO 4096u
#define XL_KEY_OPS 3u
/* A request as the memo keys it (key_of(), key_of_ops()): the fields the encoder reads for the
 * requests the translator makes -- legacy encodings (no EVEX/MVEX feature set), at most XL_KEY_OPS
 * operands, and of each operand the fields of its type only (Zydis's ZydisEncoderOperand: register:
 * the register; memory: base, index, scale, displacement, size; immediate: the value). 64 bytes,
 * hashed and compared whole (unused operands zero): the 400-byte request itself, hashed and compared,
 * made the memo's lookup ~95 ns, 8 % of a Linux boot (perf, emit_req and its memcmp/memcpy). */
struct xl_key_op {
	uint64_t v;       /* memory: the displacement; immediate: the value */
	uint16_t r, x;    /* register: the register; memory: base and index */
	uint16_t size;    /* memory: the access size */
	uint8_t type, scale;
};
struct xl_key {
	uint64_t prefixes;
	uint16_t mnemonic;
	uint8_t n, mode, enc, btype, bwidth, hints; /* hints: address size | operand size << 4 */
	struct xl_key_op op[XL_KEY_OPS];
};
_Static_assert(sizeof(struct xl_key) == 64, "the memo's key is one cache line, hashed as 8 words");
_Static_assert(ZYDIS_MNEMONIC_MAX_VALUE <= 0xffff && ZYDIS_REGISTER_MAX_VALUE <= 0xffff &&
	       ZYDIS_MACHINE_MODE_MAX_VALUE <= 0xff && ZYDIS_ENCODABLE_ENCODING_MAX_VALUE <= 0xff &&
	       ZYDIS_BRANCH_TYPE_MAX_VALUE <= 0xff && ZYDIS_BRANCH_WIDTH_MAX_VALUE <= 0xff &&
	       ZYDIS_ADDRESS_SIZE_HINT_MAX_VALUE < 16 && ZYDIS_OPERAND_SIZE_HINT_MAX_VALUE < 16 &&
	       ZYDIS_OPERAND_TYPE_MAX_VALUE <= 0xff, "struct xl_key's fields hold Zydis's values");
struct xl_memo {
	struct xl_key key;
	uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
	uint8_t len;              /* 0: empty */
	uint8_t f_off, f_size;    /* a template (emit_req): the field its request's value goes into */
};

/* A taken branch's own memory of the jump-cache entry it last chained through (emit_taken): the
 * target's linear address, its block, the exec epoch it was valid in. A new site matches nothing:
 * a non-canonical address and an epoch 2^31 away. */
struct xl_site {
	uint64_t lin;
	struct emu_block *b;
	uint32_t xep;
};
#define XL_SITES (1u << 17)

struct emu_xlate {
	struct emu_code_arena code;
	struct xl_site *sites;
	size_t sites_used;
	struct xl_memo memo[XL_MEMO];
	ZydisEncoderRequest *memo_req; /* BLVM_XLATE_CHECK: struct xb */
	size_t code_used;
	struct emu_insn *data;
	size_t data_used;           /* struct emu_insn entries */
	uint32_t hot;               /* runs of a block before it is translated (XL_HOT; 1: --translate=all) */
	bool host_amd;              /* undefined flags of the host are the interpreter's (alu.c) */
	FILE *dump;                 /* BLVM_XLATE_DUMP: every translation written there (bench/xlate-annotate.py) */
	/* the block being translated, decoded again */
	ZydisDecodedInstruction zi[EMU_BLOCK_MAX];
	ZydisDecodedOperand zo[EMU_BLOCK_MAX][ZYDIS_MAX_OPERAND_COUNT];
	bool nat[EMU_BLOCK_MAX];
	struct xl_enc enc[EMU_BLOCK_MAX];
};

/* a branch's handler, run by its slow path, went on in the block: the fast path's tests and the
 * handler's disagree */
static int xl_disagree(struct emu_vcpu *c)
{
	return emu_internal_error(c, "translator: a branch and its handler disagree");
}

/* the terminator of a run: back to the translated code */
static int xl_yield(struct emu_vcpu *c, const struct emu_insn *i)
{
	(void)c;
	(void)i;
	return EMU_ST_OK;
}

static bool write_stubs(struct emu_xlate *x);

int emu_xlate_init(struct emu_vcpu *c)
{
	struct emu_xlate *x = calloc(1, sizeof *x);
	if (!x)
		return -1;
	x->data = calloc(XL_DATA_INSNS, sizeof *x->data);
	x->sites = calloc(XL_SITES, sizeof *x->sites);
	if (!x->data || !x->sites || emu_code_arena_map(&x->code, XL_CODE_BYTES, "blvm-emu-xlate")) {
		free(x->sites);
		free(x->data);
		free(x);
		return -1;
	}
	x->code.w[XL_EXIT_AT] = 0x5b;     /* pop rbx: the one register translated code keeps */
	x->code.w[XL_EXIT_AT + 1] = 0xc3; /* ret */
	/* A translated branch enters a translated block past its prologue (push rbx; mov rbx, rdi),
	 * RBX and the stack being what the prologue made them already; any other block through this
	 * stub, RSI = b->insn: the arguments of b->entry(c, b->insn), RBX given back, a tail call.
	 * mov rdi, rbx; pop rbx; jmp [rsi + disp8] */
	static const uint8_t stub[] = { 0x48, 0x89, 0xdf, 0x5b, 0xff, 0x66,
					(uint8_t)(int8_t)((int)offsetof(struct emu_block, entry) -
							  (int)offsetof(struct emu_block, insn)) };
	_Static_assert(XL_CHAIN_AT + sizeof stub <= XL_CODE_START, "the stubs fit before the code");
	_Static_assert(offsetof(struct emu_block, insn) - offsetof(struct emu_block, entry) <= 128, "disp8");
	memcpy(x->code.w + XL_CHAIN_AT, stub, sizeof stub);
	unsigned a, b, cc, d;
	x->host_amd = __get_cpuid(0, &a, &b, &cc, &d) && b == 0x68747541u; /* "AuthenticAMD" */
	x->code_used = XL_CODE_START;
	x->hot = c->vm->cfg.translate == 2 ? 1 : XL_HOT;
	/* BLVM_XLATE_CHECK (the tests): every memo hit checked against the encoder (memo_check()) */
	const char *check = getenv("BLVM_XLATE_CHECK");
	if ((check && *check && strcmp(check, "0") != 0 && !(x->memo_req = calloc(XL_MEMO, sizeof *x->memo_req))) ||
	    !write_stubs(x)) {
		emu_code_arena_unmap(&x->code);
		free(x->memo_req);
		free(x->sites);
		free(x->data);
		free(x);
		return -1;
	}
	/* A developer's aid (as QEMU's -d in_asm,out_asm): each block's guest and host bytes, for
	 * bench/xlate-annotate.py to disassemble beside callgrind's per-instruction counts. */
	const char *dump = getenv("BLVM_XLATE_DUMP");
	if (dump && *dump && !(x->dump = fopen(dump, "a")))
		fprintf(stderr, "blvm: BLVM_XLATE_DUMP=%s: %s (no dump)\n", dump, strerror(errno));
	c->xl = x;
	return 0;
}

void emu_xlate_free(struct emu_vcpu *c)
{
	struct emu_xlate *x = c->xl;
	if (!x)
		return;
	emu_code_arena_unmap(&x->code);
	if (x->dump)
		fclose(x->dump);
	free(x->memo_req);
	free(x->sites);
	free(x->data);
	free(x);
	c->xl = NULL;
}

void emu_xlate_flush(struct emu_vcpu *c)
{
	if (!c->xl)
		return;
	c->xl->code_used = XL_CODE_START;
	c->xl->data_used = 0;
	c->xl->sites_used = 0;
}

const void *emu_xlate_chain_stub(const struct emu_vcpu *c)
{
	return c->xl->code.x + XL_CHAIN_AT;
}

int emu_xlate_room(const struct emu_vcpu *c)
{
	const struct emu_xlate *x = c->xl;
	return x->code_used + XL_BLOCK_CODE + EMU_BLOCK_MAX * XL_INSN_CODE <= x->code.size &&
	       x->data_used + 2 * (EMU_BLOCK_MAX + 1) + 2 <= XL_DATA_INSNS && x->sites_used + EMU_BLOCK_MAX <= XL_SITES;
}

uint64_t emu_xlate_native(const struct emu_vcpu *c)
{
	return c->xl ? __atomic_load_n(&c->xl_native, __ATOMIC_RELAXED) : 0;
}

/* ---------------------------------------------------------------- emitting with Zydis's encoder */

struct xb {
	struct xl_memo *memo;
	ZydisEncoderRequest *memo_req; /* BLVM_XLATE_CHECK: the request each memo slot was filled with */
	uint8_t *w;        /* where the block's code is written (RW view) */
	uint64_t x;        /* its address in the RX view (relative branches) */
	uint64_t arena;    /* the arena's RX address: its stubs (XL_EXIT_AT, XL_FLAGS_IN_AT) */
	size_t at, cap;
	bool bad;
};

static ZydisEncoderOperand R(ZydisRegister r)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof o);
	o.type = ZYDIS_OPERAND_TYPE_REGISTER;
	o.reg.value = r;
	return o;
}

static ZydisEncoderOperand I(uint64_t v)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof o);
	o.type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
	o.imm.u = v;
	return o;
}

/* [rbx + off]: a field of struct emu_vcpu */
static ZydisEncoderOperand C(size_t off, unsigned size)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof o);
	o.type = ZYDIS_OPERAND_TYPE_MEMORY;
	o.mem.base = ZYDIS_REGISTER_RBX;
	o.mem.displacement = (ZyanI64)off;
	o.mem.size = (ZyanU16)size;
	return o;
}

static void build_req(ZydisEncoderRequest *r, ZydisMnemonic m, unsigned n, const ZydisEncoderOperand *ops)
{
	memset(r, 0, sizeof *r);
	r->machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	r->mnemonic = m;
	r->operand_count = (ZyanU8)n;
	for (unsigned k = 0; k < n; k++)
		r->operands[k] = ops[k];
}

/* One operand of a key; false for an operand the memo does not keep (a pointer, an is4 register). */
static bool key_op(struct xl_key_op *k, const ZydisEncoderOperand *o)
{
	switch (o->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		if (o->reg.is4)
			return false;
		k->r = (uint16_t)o->reg.value;
		break;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		k->r = (uint16_t)o->mem.base;
		k->x = (uint16_t)o->mem.index;
		k->scale = o->mem.scale;
		k->v = (uint64_t)o->mem.displacement;
		k->size = o->mem.size;
		break;
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		k->v = o->imm.u;
		break;
	default:
		return false;
	}
	k->type = (uint8_t)o->type;
	return true;
}

/* The key of build_req(r, m, n, ops): the operands, 64-bit mode, every other field zero. */
static bool key_of_ops(struct xl_key *k, ZydisMnemonic m, unsigned n, const ZydisEncoderOperand *ops)
{
	memset(k, 0, sizeof *k);
	if (n > XL_KEY_OPS)
		return false;
	k->mnemonic = (uint16_t)m;
	k->n = (uint8_t)n;
	k->mode = ZYDIS_MACHINE_MODE_LONG_64;
	for (unsigned q = 0; q < n; q++)
		if (!key_op(&k->op[q], &ops[q]))
			return false;
	return true;
}

/* The key of any request; false where the memo does not keep it. */
static bool key_of(struct xl_key *k, const ZydisEncoderRequest *rq)
{
	static const ZydisEncoderRequest zero;
	if (!key_of_ops(k, rq->mnemonic, rq->operand_count, rq->operands) ||
	    memcmp(&rq->evex, &zero.evex, sizeof zero.evex) || memcmp(&rq->mvex, &zero.mvex, sizeof zero.mvex))
		return false;
	k->mode = (uint8_t)rq->machine_mode;
	k->enc = (uint8_t)rq->allowed_encodings;
	k->prefixes = rq->prefixes;
	k->btype = (uint8_t)rq->branch_type;
	k->bwidth = (uint8_t)rq->branch_width;
	k->hints = (uint8_t)(rq->address_size_hint | rq->operand_size_hint << 4);
	return true;
}

/* A key's slot: FNV-1a over its 8 words in four independent lanes (one chain of multiplies was most
 * of a lookup's time), folded by MurmurHash3's fmix64, which brings a difference in any bit down to
 * the index (the multiplies carry it only upwards: without the fold most register-only requests of
 * a Linux boot shared one slot). */
static size_t memo_index(const struct xl_key *k)
{
	uint64_t w[8];
	memcpy(w, k, sizeof w);
	uint64_t h[4] = { 0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x9e3779b97f4a7c15ull, 0x7f4a7c159e3779b9ull };
	for (unsigned l = 0; l < 4; l++)
		h[l] = (((h[l] ^ w[l]) * 0x100000001b3ull) ^ w[l + 4]) * 0x100000001b3ull;
	uint64_t hh = h[0] ^ ((h[1] << 21) | (h[1] >> 43)) ^ ((h[2] << 42) | (h[2] >> 22)) ^ h[3] * 0x9e3779b97f4a7c15ull;
	hh ^= hh >> 33;
	hh *= 0xff51afd7ed558ccdull;
	hh ^= hh >> 33;
	hh *= 0xc4ceb9fe1a85ec53ull;
	hh ^= hh >> 33;
	return hh & (XL_MEMO - 1);
}

/*
 * A request's template (emit_req): the same request with its one variable value -- a memory
 * operand's displacement, or the immediate of a MOV r64, imm64 -- replaced by a representative of
 * its size class, for which the encoder picks the same form: ModRM.mod with no displacement, disp8
 * or disp32 (SDM Vol. 2 2.1.5; a displacement of 0 stays exact: with RBP or R13 as base it is a
 * disp8), and REX.W B8+r io for an immediate that needs all 64 bits. One encoding then serves
 * every value of the class with the field overwritten: on a Linux boot most requests that missed
 * the memo were context and TLB-path accesses at different offsets and host pointers, each
 * encoded once by Zydis (~1000 host instructions). Returns the field's size in bytes (0 where the
 * request has no such value), the value in l->v and its operand in l->opk, the template in l->key.
 */
static const uint64_t memo_rep[2][3] = { { 0x11, 0x11111111, 0x1111111111111111ull },
					  { (uint64_t)-0x12, (uint64_t)-0x22222222, 0xeeeeeeeeeeeeeeeeull } };
struct xl_lookup {
	struct xl_key key;     /* the request's key, or its template */
	struct xl_memo *mo;    /* its slot; NULL: the memo does not keep it */
	uint64_t v;            /* a template's value, */
	unsigned fsize, opk;   /* its size (0: no template) and operand */
};

static unsigned rep_class(unsigned fsize)
{
	return fsize == 1 ? 0 : fsize == 4 ? 1 : 2;
}

static void memo_template(struct xl_lookup *l)
{
	struct xl_key *k = &l->key;
	l->fsize = 0;
	for (unsigned q = 0; q < k->n; q++) {
		struct xl_key_op *o = &k->op[q];
		if (o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->v) {
			int64_t d = (int64_t)o->v;
			unsigned size = d == (int8_t)d ? 1 : d == (int32_t)d ? 4 : 0;
			if (!size)
				return;
			l->fsize = size;
		} else if (o->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && k->mnemonic == ZYDIS_MNEMONIC_MOV && q == 1 &&
			   k->op[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
			   ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, (ZydisRegister)k->op[0].r) == 64 &&
			   o->v >> 32 && o->v >> 32 != 0xffffffffu) {
			l->fsize = 8;
		} else {
			continue;
		}
		l->v = o->v;
		l->opk = q;
		o->v = memo_rep[0][rep_class(l->fsize)];
		return;
	}
}

/* A request's template field set to v (the operand l->opk of memo_template()). */
static void set_field(ZydisEncoderRequest *r, unsigned opk, uint64_t v)
{
	ZydisEncoderOperand *o = &r->operands[opk];
	if (o->type == ZYDIS_OPERAND_TYPE_MEMORY)
		o->mem.displacement = (ZyanI64)v;
	else
		o->imm.u = v;
}

/* The memo's lookup of l->key (made by the caller; false: the memo does not keep it): true when
 * the encoding was there and is now in the block. */
static bool memo_hit(struct xb *e, struct xl_lookup *l, bool keyed)
{
	l->mo = NULL;
	if (!keyed || !e->memo)
		return false;
	memo_template(l);
	struct xl_memo *mo = &e->memo[memo_index(&l->key)];
	l->mo = mo;
	if (!mo->len || mo->f_size != l->fsize || memcmp(&mo->key, &l->key, sizeof l->key))
		return false;
	uint8_t *out = e->w + e->at;
	memcpy(out, mo->bytes, ZYDIS_MAX_INSTRUCTION_LENGTH); /* e->cap leaves room for the longest */
	for (unsigned q = 0; q < l->fsize; q++)
		out[mo->f_off + q] = (uint8_t)(l->v >> (8 * q));
	return true;
}

/* BLVM_XLATE_CHECK: a memo hit (its bytes at out) checked against the request it stands for. The
 * encoder's own bytes are made whenever the request is not the one that filled the slot (but for
 * the template's value) or is a template: a difference means a field the key leaves out mattered,
 * or a template's field was found wrong, and aborts. */
static void memo_check(struct xb *e, const struct xl_lookup *l, const ZydisEncoderRequest *rq, bool relative)
{
	size_t slot = (size_t)(l->mo - e->memo);
	ZydisEncoderRequest r = *rq;
	if (l->fsize)
		set_field(&r, l->opk, memo_rep[0][rep_class(l->fsize)]);
	if (!l->fsize && !memcmp(&r, &e->memo_req[slot], sizeof r))
		return;
	uint8_t ref[ZYDIS_MAX_INSTRUCTION_LENGTH];
	ZyanUSize len = ZYDIS_MAX_INSTRUCTION_LENGTH;
	r = *rq;
	ZyanStatus st = relative ? ZydisEncoderEncodeInstruction(&r, ref, &len)
				 : ZydisEncoderEncodeInstructionAbsolute(&r, ref, &len, e->x + e->at);
	if (ZYAN_FAILED(st) || len != l->mo->len || memcmp(ref, e->w + e->at, len)) {
		fprintf(stderr, "blvm: BLVM_XLATE_CHECK: the memo's bytes differ from the encoder's (mnemonic %d, "
				"template size %u, value %#" PRIx64 ")\n", (int)rq->mnemonic, l->fsize, l->v);
		abort();
	}
}

/* A request the memo did not have: encoded, and kept in l->mo if there is one (a template only
 * where its field is found). relative: ZydisEncoderEncodeInstruction, the immediate being the
 * displacement itself (jump_fwd); else absolute, at the request's place in the block. */
static void memo_miss(struct xb *e, const struct xl_lookup *l, const ZydisEncoderRequest *rq, bool relative)
{
	ZyanUSize len = ZYDIS_MAX_INSTRUCTION_LENGTH;
	ZydisEncoderRequest r = *rq; /* the encoder takes a mutable request */
	ZyanStatus st = relative ? ZydisEncoderEncodeInstruction(&r, e->w + e->at, &len)
				 : ZydisEncoderEncodeInstructionAbsolute(&r, e->w + e->at, &len, e->x + e->at);
	if (ZYAN_FAILED(st)) {
		e->bad = true;
		return;
	}
	struct xl_memo *mo = l->mo;
	if (mo && l->fsize) {
		/* the template: the field is where the encodings of two representatives differ (all of
		 * its bytes, nothing else), and the actual value written there must give the encoder's
		 * own bytes for the actual request; else no template (a value equal to a representative
		 * alone would not say where the field is: its bytes may also be a ModRM or SIB byte).
		 * One positive, one negative: a field wider than the class (a displacement without a
		 * base is always disp32) then differs in more bytes than the class has. */
		uint8_t t[2][ZYDIS_MAX_INSTRUCTION_LENGTH];
		ZyanUSize tlen[2] = { ZYDIS_MAX_INSTRUCTION_LENGTH, ZYDIS_MAX_INSTRUCTION_LENGTH };
		unsigned ci = rep_class(l->fsize);
		bool ok = true;
		for (unsigned w = 0; w < 2 && ok; w++) {
			ZydisEncoderRequest r2 = *rq;
			set_field(&r2, l->opk, memo_rep[w][ci]);
			ok = ZYAN_SUCCESS(ZydisEncoderEncodeInstructionAbsolute(&r2, t[w], &tlen[w], e->x + e->at)) &&
			     tlen[w] == len;
		}
		unsigned off = 0, ndiff = 0;
		for (unsigned q = 0; ok && q < len; q++)
			if (t[0][q] != t[1][q]) {
				if (!ndiff++)
					off = q;
				ok = q == off + ndiff - 1; /* contiguous */
			}
		ok = ok && ndiff == l->fsize;
		if (ok) {
			uint8_t u[ZYDIS_MAX_INSTRUCTION_LENGTH];
			memcpy(u, t[0], len);
			for (unsigned q = 0; q < l->fsize; q++)
				u[off + q] = (uint8_t)(l->v >> (8 * q));
			ok = !memcmp(u, e->w + e->at, len);
		}
		mo->len = 0;
		if (ok) {
			mo->key = l->key;
			memcpy(mo->bytes, t[0], len);
			mo->f_off = (uint8_t)off;
			mo->f_size = (uint8_t)l->fsize;
			mo->len = (uint8_t)len;
		}
	} else if (mo) {
		mo->key = l->key;
		mo->len = (uint8_t)len;
		mo->f_size = 0;
		memcpy(mo->bytes, e->w + e->at, len);
	}
	if (mo && mo->len && e->memo_req) {
		ZydisEncoderRequest *kept = &e->memo_req[mo - e->memo];
		*kept = *rq;
		if (l->fsize)
			set_field(kept, l->opk, memo_rep[0][rep_class(l->fsize)]);
	}
	e->at += len;
}

static bool room(struct xb *e)
{
	if (e->bad || e->at + ZYDIS_MAX_INSTRUCTION_LENGTH > e->cap)
		e->bad = true;
	return !e->bad;
}

/* A JMP, CALL or Jcc to an immediate target: its bytes depend on where they go (emit_req, emit) */
static bool relative_target(ZydisMnemonic m, unsigned n, const ZydisEncoderOperand *ops)
{
	bool branch = m == ZYDIS_MNEMONIC_JMP || m == ZYDIS_MNEMONIC_CALL || (m >= ZYDIS_MNEMONIC_JB && m <= ZYDIS_MNEMONIC_JZ);
	for (unsigned k = 0; branch && k < n; k++)
		if (ops[k].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
			return true;
	return false;
}

/* One host instruction from its encoder request (the memo: struct xl_memo). The request's unused
 * operand slots must be zero (build_req(), ZydisEncoderDecodedInstructionToEncoderRequest()). */
static void emit_req(struct xb *e, const ZydisEncoderRequest *rq)
{
	bool rel = relative_target(rq->mnemonic, rq->operand_count, rq->operands);
	if (!room(e))
		return;
	/* a relative target's bytes depend on where they go: never kept */
	struct xl_lookup l;
	if (memo_hit(e, &l, !rel && key_of(&l.key, rq))) {
		if (e->memo_req)
			memo_check(e, &l, rq, false);
		e->at += l.mo->len;
		return;
	}
	memo_miss(e, &l, rq, false);
}

/* One host instruction: mnemonic m, operands ops[n], everything else the encoder's defaults. */
static void emit(struct xb *e, ZydisMnemonic m, unsigned n, const ZydisEncoderOperand *ops)
{
	if (!room(e))
		return;
	struct xl_lookup l;
	ZydisEncoderRequest r;
	bool rel = relative_target(m, n, ops);
	if (memo_hit(e, &l, !rel && key_of_ops(&l.key, m, n, ops))) {
		if (e->memo_req) {
			build_req(&r, m, n, ops);
			memo_check(e, &l, &r, false);
		}
		e->at += l.mo->len;
		return;
	}
	build_req(&r, m, n, ops);
	memo_miss(e, &l, &r, false);
}

#define E0(e, m) emit(e, ZYDIS_MNEMONIC_##m, 0, NULL)
#define E1(e, m, a) emit(e, ZYDIS_MNEMONIC_##m, 1, (ZydisEncoderOperand[]){ a })
#define E2(e, m, a, b) emit(e, ZYDIS_MNEMONIC_##m, 2, (ZydisEncoderOperand[]){ a, b })

#define OFF_R(g) (offsetof(struct emu_vcpu, r) + 8u * (g))

/* A forward jump whose target is set later: short (rel8, xl_land) or near (rel32, land_near). Returns
 * the offset just past it: the displacement is the 1 or 4 bytes before. */
static size_t jump_fwd(struct xb *e, ZydisMnemonic m, bool near)
{
	if (!room(e))
		return 0;
	ZydisEncoderRequest r;
	memset(&r, 0, sizeof r);
	r.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	r.mnemonic = m;
	r.branch_type = near ? ZYDIS_BRANCH_TYPE_NEAR : ZYDIS_BRANCH_TYPE_SHORT;
	if (near)
		r.branch_width = ZYDIS_BRANCH_WIDTH_32;
	r.operand_count = 1;
	r.operands[0] = I(0);
	/* encoded relative, displacement 0: the same bytes wherever it goes, so the memo keeps it
	 * (marked in the key's encodings byte, which no request of the absolute kind has: those with
	 * a relative target are never kept). 305000 of a Linux boot's 670000 encoder calls were these. */
	struct xl_lookup l;
	bool keyed = key_of(&l.key, &r);
	l.key.enc |= 0x80;
	if (memo_hit(e, &l, keyed)) {
		if (e->memo_req)
			memo_check(e, &l, &r, true);
		e->at += l.mo->len;
	} else {
		memo_miss(e, &l, &r, true);
	}
	return e->bad ? 0 : e->at;
}

/* A jump to a known host address: always near (rel32: the arena is smaller than 2 GiB), made by
 * jump_fwd() (the memo's bytes, not an encoding per jump) and its displacement written here. */
static void jump_to(struct xb *e, ZydisMnemonic m, uint64_t target)
{
	size_t after = jump_fwd(e, m, true);
	if (e->bad)
		return;
	int64_t d = (int64_t)(target - (e->x + after));
	int32_t d32 = (int32_t)d;
	if (d != d32) {
		e->bad = true;
		return;
	}
	memcpy(e->w + after - 4, &d32, 4);
}

static void land_near(struct xb *e, size_t after)
{
	if (e->bad)
		return;
	int32_t d = (int32_t)(e->at - after);
	memcpy(e->w + after - 4, &d, 4);
}

static void land(struct xb *e, size_t after)
{
	if (e->bad)
		return;
	size_t d = e->at - after;
	if (d > 127) {
		e->bad = true;
		return;
	}
	e->w[after - 1] = (uint8_t)d;
}

/* ---------------------------------------------------------------- status flags between pieces */

#define XL_STATUS (ZYDIS_CPUFLAG_CF | ZYDIS_CPUFLAG_PF | ZYDIS_CPUFLAG_AF | ZYDIS_CPUFLAG_ZF | \
		   ZYDIS_CPUFLAG_SF | ZYDIS_CPUFLAG_OF)
_Static_assert(XL_STATUS == EMU_STATUS_FLAGS, "Zydis's flag bits are RFLAGS's");

struct xl_flags {
	bool ctx;   /* c->rflags (with the lazy record) holds the guest's status flags */
	bool host;  /* the host's RFLAGS holds them */
};

/*
 * The guest's status flags into the host's RFLAGS (a shared stub, called: each use is one CALL):
 * from flags_out()'s own record (LF_HOST) directly, else with c->rflags made exact on the way
 * (emu_flags_sync(), the caller-saved registers kept around it: the register cache among them).
 * Clobbers RAX and RDX. Written once per arena (emu_xlate_init); RSP is 16-byte aligned at the
 * CALL, as everywhere in translated code (the block's PUSH RBX), so 8 pushes and 8 bytes more
 * align the inner call. It was ~20 host instructions at every use, the cache reload twice in it.
 */
static void flags_in_stub(struct xb *e)
{
	static const ZydisRegister saved[] = { ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_RSI,
					       ZYDIS_REGISTER_RDI, ZYDIS_REGISTER_R8,  ZYDIS_REGISTER_R9,
					       ZYDIS_REGISTER_R10, ZYDIS_REGISTER_R11 };
	E2(e, MOV, R(ZYDIS_REGISTER_EAX), C(offsetof(struct emu_vcpu, lf_k), 4));
	E2(e, CMP, R(ZYDIS_REGISTER_EAX), I(XL_LF_HOST));
	size_t h = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, false);
	E2(e, MOVZX, R(ZYDIS_REGISTER_EAX), C(offsetof(struct emu_vcpu, lf_r), 2));
	E2(e, ADD, R(ZYDIS_REGISTER_AL), I(0x7f)); /* OF: AL is 1 or 0 */
	E0(e, SAHF);
	E0(e, RET);
	land(e, h);
	E2(e, TEST, R(ZYDIS_REGISTER_EAX), R(ZYDIS_REGISTER_EAX));
	size_t j = jump_fwd(e, ZYDIS_MNEMONIC_JZ, false);
	for (unsigned q = 0; q < sizeof saved / sizeof *saved; q++)
		E1(e, PUSH, R(saved[q]));
	E2(e, SUB, R(ZYDIS_REGISTER_RSP), I(8));
	E2(e, MOV, R(ZYDIS_REGISTER_RDI), R(ZYDIS_REGISTER_RBX));
	E2(e, MOV, R(ZYDIS_REGISTER_RAX), I((uintptr_t)emu_flags_sync));
	E1(e, CALL, R(ZYDIS_REGISTER_RAX));
	E2(e, ADD, R(ZYDIS_REGISTER_RSP), I(8));
	for (unsigned q = sizeof saved / sizeof *saved; q-- > 0;)
		E1(e, POP, R(saved[q]));
	land(e, j);
	E2(e, MOV, R(ZYDIS_REGISTER_RAX), C(offsetof(struct emu_vcpu, rflags), 8));
	/* OF (bit 11) -> bit 7 of DL; 0x80 + 0x80 overflows, 0 + 0x80 does not */
	E2(e, MOV, R(ZYDIS_REGISTER_EDX), R(ZYDIS_REGISTER_EAX));
	E2(e, SHR, R(ZYDIS_REGISTER_EDX), I(4));
	E2(e, AND, R(ZYDIS_REGISTER_DL), I((uint64_t)-0x80)); /* imm8 0x80, as Zydis spells it */
	E2(e, ADD, R(ZYDIS_REGISTER_DL), I((uint64_t)-0x80));
	/* SF ZF AF PF CF from bits 7..0 (SAHF leaves OF alone) */
	E2(e, MOV, R(ZYDIS_REGISTER_AH), R(ZYDIS_REGISTER_AL));
	E0(e, SAHF);
	E0(e, RET);
}

/* the stubs that are code (the others are bytes: emu_xlate_init), between XL_FLAGS_IN_AT and
 * XL_CODE_START */
static bool write_stubs(struct emu_xlate *x)
{
	struct xb e = { .memo = x->memo, .memo_req = x->memo_req, .w = x->code.w + XL_FLAGS_IN_AT,
			.x = (uintptr_t)(x->code.x + XL_FLAGS_IN_AT), .arena = (uintptr_t)x->code.x,
			.cap = XL_CODE_START - XL_FLAGS_IN_AT };
	flags_in_stub(&e);
	return !e.bad;
}

/* guest status flags into the host's RFLAGS: flags_in_stub() */
static void flags_in(struct xb *e, struct xl_flags *f)
{
	jump_to(e, ZYDIS_MNEMONIC_CALL, e->arena + XL_FLAGS_IN_AT);
	f->ctx = f->host = true;
}

/* the host's status flags into c->rflags, the lazy record cleared */
static void flags_out(struct xb *e, struct xl_flags *f)
{
	if (f->ctx)
		return;
	/* As a lazy record of their own (exec.h LF_HOST): LAHF and SETO, stored as they are; whoever
	 * reads them next decodes them (emu_flags_sync(), or flags_in() straight back into the host).
	 * Not PUSHFQ: ~3.5 ns against ~0.9 ns for this, measured in a loop on this project's AMD host,
	 * and it stalls on the flags written just before. */
	E0(e, LAHF);
	E1(e, SETO, R(ZYDIS_REGISTER_AL));
	E2(e, MOV, C(offsetof(struct emu_vcpu, lf_r), 2), R(ZYDIS_REGISTER_AX));
	E2(e, MOV, C(offsetof(struct emu_vcpu, lf_k), 4), I(XL_LF_HOST));
	f->ctx = true;
	f->host = false;
}

/*
 * The host's status flags kept in DI (AH from LAHF: SF ZF AF PF CF; AL = OF) while the TLB path
 * changes them, and given back from AX (ADD AL, 0x7F overflows exactly when AL is 1; SAHF the rest).
 * Not PUSHFQ/POPFQ: POPFQ is microcoded, on this project's AMD host a PUSHFQ/POPFQ pair costs about
 * 15 ns, this whole sequence under 2 ns (measured in a loop of each).
 */
static void flags_save(struct xb *e)
{
	E0(e, LAHF);
	E1(e, SETO, R(ZYDIS_REGISTER_AL));
	E2(e, MOV, R(ZYDIS_REGISTER_EDI), R(ZYDIS_REGISTER_EAX));
}

static void flags_restore(struct xb *e)
{
	E2(e, ADD, R(ZYDIS_REGISTER_AL), I(0x7f));
	E0(e, SAHF);
}

/* Before a run or the block's end: flags into the context, RIP past the native instructions since
 * the last run, and their count. */
static void sync_out(struct xb *e, struct xl_flags *f, uint64_t *rip_delta, unsigned *nat)
{
	flags_out(e, f);
	if (*rip_delta) {
		E2(e, ADD, C(offsetof(struct emu_vcpu, rip), 8), I(*rip_delta));
		f->host = false;
	}
	if (*nat) {
		E2(e, ADD, C(offsetof(struct emu_vcpu, xl_native), 8), I(*nat));
		f->host = false;
	}
	*rip_delta = 0;
	*nat = 0;
}

/* ---------------------------------------------------------------- which forms are native */

/* A guest GPR named by a Zydis register: index into c->r[] (0..15) and width; -1 for anything else
 * (AH..BH included: the host registers the translator uses have no high-byte form). */
static int gpr_of(ZydisRegister r, unsigned *w)
{
	if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL)
		return *w = 1, (int)(r - ZYDIS_REGISTER_AL);
	if (r >= ZYDIS_REGISTER_SPL && r <= ZYDIS_REGISTER_R15B)
		return *w = 1, 4 + (int)(r - ZYDIS_REGISTER_SPL);
	if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W)
		return *w = 2, (int)(r - ZYDIS_REGISTER_AX);
	if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D)
		return *w = 4, (int)(r - ZYDIS_REGISTER_EAX);
	if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15)
		return *w = 8, (int)(r - ZYDIS_REGISTER_RAX);
	return -1;
}

/* host register number h (0..15) at width w */
static ZydisRegister host_reg(unsigned h, unsigned w)
{
	switch (w) {
	case 1: return h < 4 ? (ZydisRegister)(ZYDIS_REGISTER_AL + h) : (ZydisRegister)(ZYDIS_REGISTER_SPL + h - 4);
	case 2: return (ZydisRegister)(ZYDIS_REGISTER_AX + h);
	case 4: return (ZydisRegister)(ZYDIS_REGISTER_EAX + h);
	default: return (ZydisRegister)(ZYDIS_REGISTER_RAX + h);
	}
}

/* Scratch registers for guest registers (caller-saved; not RBX, which holds c, nor RSP). */
static const unsigned host_pool[] = { 1 /* rcx */, 2 /* rdx */, 6 /* rsi */, 7 /* rdi */,
				      8, 9, 10, 11 };
/* (not RAX: XCHG EAX, EAX encodes as 90, a NOP that does not zero-extend) */

/*
 * The register cache of a stretch of native instructions: guest GPRs kept in host registers from
 * one native instruction to the next, instead of a load and a store through c->r[] around each
 * (a store and the load of the next instruction made every dependent pair wait for store
 * forwarding). Translation-time state: which guest register each host register of cache_pool holds
 * and whether it is newer than c->r[] (dirty). The pool is what nothing between two native
 * instructions touches: not rax, rcx, rdx (the TLB path, flags_out), rdi (flags_save), rbx (c).
 * Written back (dirty ones to c->r[]) on every path that leaves the stretch -- a handler run, a
 * branch, the block's end, a side exit (a taken Jcc), a memory form's slow path,
 * emu_flags_sync()'s call (caller-saved registers) -- and dropped where the code after a merge
 * point cannot know it. Zeroed = empty (entries hold index + 1).
 */
#define XL_NCACHE 5
static const unsigned cache_pool[XL_NCACHE] = { 6 /* rsi */, 8, 9, 10, 11 };

struct xl_cache {
	uint8_t slot_of[16];      /* guest GPR -> its slot + 1, or 0 */
	uint8_t guest[XL_NCACHE]; /* slot -> guest GPR + 1, or 0 */
	bool dirty[XL_NCACHE];
	uint32_t used[XL_NCACHE]; /* when last used (clock): the least recently used goes first */
	uint32_t clock;
};

static ZydisRegister cache_reg(unsigned slot, unsigned w)
{
	return host_reg(cache_pool[slot], w);
}

/* the dirty guest registers to c->r[]; the cache keeps them (a side exit: the code after goes on) */
static void cache_writeback(struct xb *e, const struct xl_cache *k)
{
	for (unsigned s = 0; s < XL_NCACHE; s++)
		if (k->guest[s] && k->dirty[s])
			E2(e, MOV, C(OFF_R(k->guest[s] - 1u), 8), R(cache_reg(s, 8)));
}

/* every cached guest register from c->r[] again (after a call that may change them or the host's) */
static void cache_reload(struct xb *e, const struct xl_cache *k)
{
	for (unsigned s = 0; s < XL_NCACHE; s++)
		if (k->guest[s])
			E2(e, MOV, R(cache_reg(s, 8)), C(OFF_R(k->guest[s] - 1u), 8));
}

/* written back and emptied: what follows reads c->r[] */
static void cache_flush(struct xb *e, struct xl_cache *k)
{
	cache_writeback(e, k);
	memset(k, 0, sizeof *k);
}

/* The slot of guest register g, loaded from c->r[] when load and not cached yet; a slot in pinned
 * (the instruction's other registers) is never evicted. */
static unsigned cache_get(struct xb *e, struct xl_cache *k, unsigned g, bool load, unsigned pinned)
{
	if (k->slot_of[g]) {
		unsigned s = k->slot_of[g] - 1u;
		k->used[s] = ++k->clock;
		return s;
	}
	unsigned s = XL_NCACHE;
	for (unsigned q = 0; q < XL_NCACHE && s == XL_NCACHE; q++)
		if (!k->guest[q])
			s = q;
	if (s == XL_NCACHE) {
		for (unsigned q = 0; q < XL_NCACHE; q++)
			if (!(pinned & 1u << q) && (s == XL_NCACHE || k->used[q] < k->used[s]))
				s = q;
		if (k->dirty[s])
			E2(e, MOV, C(OFF_R(k->guest[s] - 1u), 8), R(cache_reg(s, 8)));
		k->slot_of[k->guest[s] - 1u] = 0;
	}
	k->guest[s] = (uint8_t)(g + 1);
	k->slot_of[g] = (uint8_t)(s + 1);
	k->dirty[s] = false;
	k->used[s] = ++k->clock;
	if (load)
		E2(e, MOV, R(cache_reg(s, 8)), C(OFF_R(g), 8));
	return s;
}

static bool cond_mnemonic(ZydisMnemonic m)
{
	return (m >= ZYDIS_MNEMONIC_CMOVB && m <= ZYDIS_MNEMONIC_CMOVZ) ||
	       (m >= ZYDIS_MNEMONIC_SETB && m <= ZYDIS_MNEMONIC_SETZ && m != ZYDIS_MNEMONIC_SETSSBSY);
}

/* The natively re-emitted mnemonics (issue 16 step a: the hot integer forms). The operand kinds are
 * checked by native_form(): registers and immediates only (LEA: its address, no access). */
static bool native_mnemonic(ZydisMnemonic m, bool *shift)
{
	*shift = false;
	switch (m) {
	case ZYDIS_MNEMONIC_MOV: case ZYDIS_MNEMONIC_MOVZX: case ZYDIS_MNEMONIC_MOVSX:
	case ZYDIS_MNEMONIC_MOVSXD: case ZYDIS_MNEMONIC_LEA: case ZYDIS_MNEMONIC_XCHG:
	case ZYDIS_MNEMONIC_BSWAP: case ZYDIS_MNEMONIC_NOP:
	case ZYDIS_MNEMONIC_ADD: case ZYDIS_MNEMONIC_OR: case ZYDIS_MNEMONIC_ADC: case ZYDIS_MNEMONIC_SBB:
	case ZYDIS_MNEMONIC_AND: case ZYDIS_MNEMONIC_SUB: case ZYDIS_MNEMONIC_XOR: case ZYDIS_MNEMONIC_CMP:
	case ZYDIS_MNEMONIC_TEST: case ZYDIS_MNEMONIC_INC: case ZYDIS_MNEMONIC_DEC: case ZYDIS_MNEMONIC_NEG:
	case ZYDIS_MNEMONIC_NOT: case ZYDIS_MNEMONIC_IMUL:
		return true;
	case ZYDIS_MNEMONIC_SHL: case ZYDIS_MNEMONIC_SHR: case ZYDIS_MNEMONIC_SAR:
	case ZYDIS_MNEMONIC_ROL: case ZYDIS_MNEMONIC_ROR:
		*shift = true;
		return true;
	default:
		return cond_mnemonic(m);
	}
}

/* Jcc (not JrCXZ, LOOP): the opposite condition, or NONE */
static ZydisMnemonic jcc_inverse(ZydisMnemonic m)
{
	static const ZydisMnemonic pairs[][2] = {
		{ ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO }, { ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB },
		{ ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ }, { ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE },
		{ ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS }, { ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP },
		{ ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL }, { ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE },
	};
	for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
		if (pairs[k][0] == m)
			return pairs[k][1];
		if (pairs[k][1] == m)
			return pairs[k][0];
	}
	return ZYDIS_MNEMONIC_INVALID;
}

static bool logic_mnemonic(ZydisMnemonic m)
{
	return m == ZYDIS_MNEMONIC_AND || m == ZYDIS_MNEMONIC_OR || m == ZYDIS_MNEMONIC_XOR ||
	       m == ZYDIS_MNEMONIC_TEST;
}

static bool flags_reg(ZydisRegister r)
{
	return r == ZYDIS_REGISTER_FLAGS || r == ZYDIS_REGISTER_EFLAGS || r == ZYDIS_REGISTER_RFLAGS;
}

/* A shift or rotate by CL. The host's count register is CL too (host_pool[0] is RCX: native_encode()
 * gives the guest's RCX to it); a masked count of 0 changes no flag (SDM "SAL/SAR/SHL/SHR", "RCL/RCR/
 * ROL/ROR": "If the count is 0, the flags are not affected"), so the guest's flags are loaded into the
 * host first, as for an instruction that reads them: after it, the host has them either way. */
static bool shift_by_cl(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo)
{
	bool shift;
	return native_mnemonic(zi->mnemonic, &shift) && shift && zi->operand_count_visible == 2 &&
	       zo[1].type == ZYDIS_OPERAND_TYPE_REGISTER && zo[1].reg.value == ZYDIS_REGISTER_CL;
}

/*
 * A memory form run natively (issue 16 step b): one memory operand, only read (MOV/MOVZX/MOVSX/MOVSXD
 * loads, an ALU or TEST/CMP source) or only written (MOV stores), 64-bit addressing from GPRs (no
 * RIP-relative, no 67 prefix) in 64-bit mode. Its access is the interpreter's inline TLB hit
 * (emu_rdN/emu_wrN, emu.h), exactly: the entry's tag_r/tag_w compared with the page (of the last
 * byte: a page crossing misses), then one host access at linear + addend; anything else (a miss, MMIO, a code page
 * -- mmu.c never gives those a write tag, so SMC stays with the write generations --, a page
 * crossing, a fault) runs the instruction's own handler, out of line, with the state made exact
 * first. Read-modify-write forms (two tags, the bus-lock path for LOCK), conditional ones (CMOVcc)
 * and implicit stack accesses stay handlers.
 */
static bool mem_mnemonic(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_MOV: case ZYDIS_MNEMONIC_MOVZX: case ZYDIS_MNEMONIC_MOVSX:
	case ZYDIS_MNEMONIC_MOVSXD:
	case ZYDIS_MNEMONIC_ADD: case ZYDIS_MNEMONIC_OR: case ZYDIS_MNEMONIC_ADC: case ZYDIS_MNEMONIC_SBB:
	case ZYDIS_MNEMONIC_AND: case ZYDIS_MNEMONIC_SUB: case ZYDIS_MNEMONIC_XOR: case ZYDIS_MNEMONIC_CMP:
	case ZYDIS_MNEMONIC_TEST: case ZYDIS_MNEMONIC_IMUL:
		return true;
	default:
		return false;
	}
}

static bool mem_form(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo)
{
	int nmem = 0;
	if (!mem_mnemonic(zi->mnemonic) || zi->address_width != 64 || zi->machine_mode != ZYDIS_MACHINE_MODE_LONG_64)
		return false;
	for (unsigned k = 0; k < zi->operand_count_visible; k++) {
		const ZydisDecodedOperand *o = &zo[k];
		unsigned w;
		if (o->type != ZYDIS_OPERAND_TYPE_MEMORY)
			continue;
		nmem++;
		if (o->mem.type != ZYDIS_MEMOP_TYPE_MEM ||
		    (o->actions != ZYDIS_OPERAND_ACTION_READ && o->actions != ZYDIS_OPERAND_ACTION_WRITE))
			return false;
		if (o->mem.base == ZYDIS_REGISTER_RIP && o->mem.index == ZYDIS_REGISTER_NONE)
			; /* RIP-relative: the address from c->rip (emit_rip_base) */
		else if ((o->mem.base != ZYDIS_REGISTER_NONE && (gpr_of(o->mem.base, &w) < 0 || w != 8)) ||
			 (o->mem.index != ZYDIS_REGISTER_NONE && (gpr_of(o->mem.index, &w) < 0 || w != 8)))
			return false; /* EIP-relative, or a vector index */
		if (o->size != 8 && o->size != 16 && o->size != 32 && o->size != 64)
			return false;
	}
	return nmem == 1;
}


static bool map_reg_as(struct xl_map *mp, ZydisRegister *reg, bool write, bool load);

static bool map_reg(struct xl_map *mp, ZydisRegister *reg, bool write)
{
	return map_reg_as(mp, reg, write, true);
}

/* load false: the instruction writes the whole register without reading it (a 32- or 64-bit
 * destination: the host's 32-bit writes zero-extend as the guest's), so c->r[] is not read first */
static bool map_reg_as(struct xl_map *mp, ZydisRegister *reg, bool write, bool load)
{
	unsigned w;
	int g = gpr_of(*reg, &w), h = -1;
	if (g < 0)
		return false;
	for (unsigned q = 0; q < mp->n; q++)
		if (mp->guest[q] == g)
			h = (int)q;
	if (h < 0) {
		if (mp->n == 4)
			return false;
		mp->guest[mp->n] = g;
		h = (int)mp->n++;
	}
	mp->wr[h] |= write;
	mp->rd[h] |= load;
	*reg = host_reg(host_pool[mp->pool0 + h], w);
	return true;
}

/* The guest instruction as an encoder request for the host with the guest registers replaced by
 * host scratch registers (the same register twice gets the same host register), encoded into buf. */
static bool native_encode(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo, struct xl_map *mp,
			  uint8_t *buf, ZyanUSize *len, ZydisEncoderRequest *out)
{
	ZydisEncoderRequest req;
	bool memop = mem_form(zi, zo);
	memset(mp, 0, sizeof *mp);
	mp->pool0 = memop ? 4 : 0;
	if (ZYAN_FAILED(ZydisEncoderDecodedInstructionToEncoderRequest(zi, zo, zi->operand_count_visible, &req)))
		return false;
	if (shift_by_cl(zi, zo)) {
		/* the guest's RCX to the host's RCX (host_pool[0]), first */
		ZydisRegister cl = ZYDIS_REGISTER_CL;
		if (memop || !map_reg(mp, &cl, false) || cl != ZYDIS_REGISTER_CL)
			return false;
	}
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	for (unsigned k = 0; k < req.operand_count; k++) {
		ZydisEncoderOperand *o = &req.operands[k];
		bool write = zo[k].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE;
		if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
			bool whole = (zo[k].actions & ~(unsigned)ZYDIS_OPERAND_ACTION_WRITE) == 0 && zo[k].size >= 32;
			if (!map_reg_as(mp, &o->reg.value, write, !whole))
				return false;
		} else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY) {
			if (o->mem.base == ZYDIS_REGISTER_RIP && o->mem.index == ZYDIS_REGISTER_NONE)
				mp->riprel = true; /* stays RIP here: emit_native/emit_tlb */
			else if ((o->mem.base != ZYDIS_REGISTER_NONE && !map_reg(mp, &o->mem.base, false)) ||
				 (o->mem.index != ZYDIS_REGISTER_NONE && !map_reg(mp, &o->mem.index, false)))
				return false;
			if (memop) {
				/* the access itself: [rax], the host address the TLB path computed */
				mp->mem = *o;
				mp->mem_size = zo[k].size / 8;
				mp->mem_write = write;
				o->mem.base = ZYDIS_REGISTER_RAX;
				o->mem.index = ZYDIS_REGISTER_NONE;
				o->mem.scale = 0;
				o->mem.displacement = 0;
			}
		}
	}
	req.prefixes &= ~(ZydisInstructionAttributes)ZYDIS_ATTRIB_HAS_SEGMENT;
	for (unsigned k = req.operand_count; k < ZYDIS_ENCODER_MAX_OPERANDS; k++)
		memset(&req.operands[k], 0, sizeof req.operands[k]); /* emit_req()'s memo compares them */
	*out = req;
	return ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, buf, len));
}

static bool jmp_rel64(unsigned mode, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		      const struct emu_insn *i);

/* CALL rel32 and RET (C3) in 64-bit mode, operand size 64: emit_call_ret(). Near only: Zydis names
 * the far forms CALL and RET too (CB, REX.W CB = LRETQ, which also pops CS: emu_h_lret); Linux's
 * secondary_startup_64 reloads CS with an LRETQ, and taken for a near RET it halted the boot. */
static bool call_ret64(unsigned mode, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		       const struct emu_insn *i)
{
	if (mode != EMU_MODE_64 || i->fn == emu_h_ud || i->fn == emu_h_unimpl || i->osz != 8 ||
	    (zi->attributes & ZYDIS_ATTRIB_HAS_OPERANDSIZE) || zi->meta.branch_type != ZYDIS_BRANCH_TYPE_NEAR)
		return false;
	if (zi->mnemonic == ZYDIS_MNEMONIC_CALL)
		return zi->operand_count_visible == 1 && zo[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
		       zo[0].imm.is_relative;
	return zi->mnemonic == ZYDIS_MNEMONIC_RET && zi->operand_count_visible == 0 && !i->imm;
}

/* JMP r/m64 and CALL r/m64 (FF /4, FF /2) in 64-bit mode, near, operand size 64; a memory operand
 * addressed from GPRs (no RIP-relative, no 67 prefix): emit_branch_ind(). */
static bool branch_ind64(unsigned mode, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
			 const struct emu_insn *i)
{
	unsigned w;
	if (mode != EMU_MODE_64 || i->fn == emu_h_ud || i->fn == emu_h_unimpl || i->osz != 8 ||
	    (zi->attributes & ZYDIS_ATTRIB_HAS_OPERANDSIZE) || zi->meta.branch_type != ZYDIS_BRANCH_TYPE_NEAR ||
	    (zi->mnemonic != ZYDIS_MNEMONIC_JMP && zi->mnemonic != ZYDIS_MNEMONIC_CALL) || zi->operand_count_visible != 1)
		return false;
	if (zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER)
		return gpr_of(zo[0].reg.value, &w) >= 0 && w == 8;
	return zo[0].type == ZYDIS_OPERAND_TYPE_MEMORY && !(i->flg & (EMU_I_RIPREL | EMU_I_ADDR32)) &&
	       (zo[0].mem.base == ZYDIS_REGISTER_NONE || gpr_of(zo[0].mem.base, &w) >= 0) &&
	       (zo[0].mem.index == ZYDIS_REGISTER_NONE || gpr_of(zo[0].mem.index, &w) >= 0);
}

/* PUSH r64 and POP r64 in 64-bit mode (no 66 prefix; not POP RSP): a memory form (emit_native) on
 * [RSP - 8] or [RSP], SS's base being 0 in 64-bit mode (SDM Vol. 1 3.4.2.1) as emu_push()/emu_pop()
 * (exec.c) compute it. The access, then RSP moved by LEA (no flag changes); PUSH RSP stores the value
 * before the decrement (SDM "PUSH"): both are the same host register. A miss, a fault (#SS, #PF), a
 * page crossing: the handler, out of line, exactly. */
static bool stack_form(unsigned mode, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		       const struct emu_insn *i)
{
	unsigned w;
	if (mode != EMU_MODE_64 || (zi->mnemonic != ZYDIS_MNEMONIC_PUSH && zi->mnemonic != ZYDIS_MNEMONIC_POP) ||
	    zi->operand_width != 64 || zi->operand_count_visible != 1 || zo[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
	    i->fn == emu_h_ud || i->fn == emu_h_unimpl || (i->flg & (EMU_I_LOCK | EMU_I_FIRST)))
		return false;
	int g = gpr_of(zo[0].reg.value, &w);
	return g >= 0 && w == 8 && !(zi->mnemonic == ZYDIS_MNEMONIC_POP && g == EMU_RSP);
}

static bool stack_encode(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo, struct xl_enc *out)
{
	bool push = zi->mnemonic == ZYDIS_MNEMONIC_PUSH;
	struct xl_map *mp = &out->mp;
	memset(mp, 0, sizeof *mp);
	mp->pool0 = 4; /* rax, rcx, rdx: the TLB path's */
	ZydisRegister v = zo[0].reg.value, sp = ZYDIS_REGISTER_RSP;
	if (!map_reg_as(mp, &v, !push, push) || !map_reg(mp, &sp, true))
		return false;
	memset(&mp->mem, 0, sizeof mp->mem);
	mp->mem.type = ZYDIS_OPERAND_TYPE_MEMORY;
	mp->mem.mem.base = sp;
	mp->mem.mem.displacement = push ? -8 : 0;
	mp->mem.mem.size = 8;
	mp->mem_size = 8;
	mp->mem_write = push;
	ZydisEncoderOperand at;
	memset(&at, 0, sizeof at);
	at.type = ZYDIS_OPERAND_TYPE_MEMORY;
	at.mem.base = ZYDIS_REGISTER_RAX;
	at.mem.size = 8;
	ZydisEncoderOperand next = mp->mem;
	next.mem.displacement = push ? -8 : 8;
	struct xb e = { .w = out->buf, .cap = sizeof out->buf };
	if (push)
		build_req(&out->req[0], ZYDIS_MNEMONIC_MOV, 2, (ZydisEncoderOperand[]){ at, R(v) });
	else
		build_req(&out->req[0], ZYDIS_MNEMONIC_MOV, 2, (ZydisEncoderOperand[]){ R(v), at });
	build_req(&out->req[1], ZYDIS_MNEMONIC_LEA, 2, (ZydisEncoderOperand[]){ R(sp), next });
	out->nreq = 2;
	emit_req(&e, &out->req[0]);
	emit_req(&e, &out->req[1]);
	out->len = (uint8_t)e.at;
	return !e.bad;
}

/* Decided on the Zydis mnemonic and the operand kinds (the instruction table may get this as a
 * column later): true when the instruction is re-emitted as a host instruction. */
static bool native_form(const struct emu_xlate *x, unsigned mode, const ZydisDecodedInstruction *zi,
			const ZydisDecodedOperand *zo, const struct emu_insn *i, struct xl_enc *out)
{
	bool shift;
	if (mode == EMU_MODE_16)
		return false;
	if (i->fn == emu_h_nop) {
		/* what the interpreter runs as a NOP (insn.def: NOP r/m, ENDBR, LFENCE/SFENCE, CLFLUSH,
		 * PREFETCH...) changes nothing but RIP: no host instruction at all. 0.7 % of a Linux boot
		 * was h_nop run as a handler (the multi-byte NOPs of function and loop alignment). */
		memset(out, 0, sizeof *out);
		return true;
	}
	if (jcc_inverse(zi->mnemonic) != ZYDIS_MNEMONIC_INVALID)
		/* a conditional branch: the condition is tested natively, not taken it is done (a block
		 * goes on after it); taken, its handler runs (branch_to: chaining, the stop rule). Not
		 * with a 16-bit operand size (IP wraps: h_jcc_seg_*, whose CS-limit check a taken
		 * branch in 32-bit code runs as its handler). */
		return zi->operand_width != 16 && i->fn != emu_h_ud && i->fn != emu_h_unimpl;
	if (jmp_rel64(mode, zi, zo, i))
		return true; /* emit_taken() */
	if (stack_form(mode, zi, zo, i))
		return stack_encode(zi, zo, out);
	if (call_ret64(mode, zi, zo, i))
		return true; /* emit_call_ret() */
	if (branch_ind64(mode, zi, zo, i))
		return true; /* emit_branch_ind() */
	if (!native_mnemonic(zi->mnemonic, &shift))
		return false;
	/* the interpreter's own verdict first: a form it refuses or treats specially stays its own */
	if (i->fn == emu_h_ud || i->fn == emu_h_unimpl ||
	    (i->flg & (EMU_I_LOCK | EMU_I_REP | EMU_I_REPNE | EMU_I_FIRST)))
		return false;
	if (zi->attributes & (ZYDIS_ATTRIB_HAS_LOCK | ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPNE))
		return false;
	if (zi->mnemonic == ZYDIS_MNEMONIC_BSWAP && zi->operand_width != 32 && zi->operand_width != 64)
		return false;
	if (zi->mnemonic == ZYDIS_MNEMONIC_NOP && zi->operand_count_visible)
		return false; /* 0F 0D /r with a register: a NOP to Zydis, #UD on an AMD host */
	for (unsigned k = 0; k < zi->operand_count; k++) {
		const ZydisDecodedOperand *o = &zo[k];
		unsigned w;
		switch (o->type) {
		case ZYDIS_OPERAND_TYPE_REGISTER:
			if (o->visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN && flags_reg(o->reg.value))
				break;
			if (o->visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN || gpr_of(o->reg.value, &w) < 0)
				return false; /* implicit registers, AH..BH, segment/control registers */
			if (shift && k > 0 && !shift_by_cl(zi, zo))
				return false; /* a count in a register other than CL */
			break;
		case ZYDIS_OPERAND_TYPE_IMMEDIATE:
			if (shift && k == 1) {
				unsigned m = zi->operand_width == 64 ? 63 : 31;
				if ((o->imm.value.u & m) == 0)
					return false; /* a masked count of 0 writes no flag: keep the interpreter's */
			}
			break;
		case ZYDIS_OPERAND_TYPE_MEMORY:
			if (o->mem.base == ZYDIS_REGISTER_RIP && o->mem.disp.value > INT32_MAX - 0x2000)
				return false; /* disp + rip_next must fit disp32 (emit_rip_base; a block's end is
					       * less than a page and an instruction past its start) */
			if (o->visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT && mode == EMU_MODE_64 &&
			    !(i->flg & EMU_I_ADDR32) && mem_form(zi, zo))
				break; /* its access: the TLB path (emit_native) */
			if (zi->mnemonic != ZYDIS_MNEMONIC_LEA || o->mem.type != ZYDIS_MEMOP_TYPE_AGEN)
				return false;
			if (o->mem.base == ZYDIS_REGISTER_RIP && o->mem.index == ZYDIS_REGISTER_NONE &&
			    mode == EMU_MODE_64 && zi->operand_width >= 32)
				break; /* from c->rip (emit_native): its whole destination is written */
			if ((o->mem.base != ZYDIS_REGISTER_NONE && gpr_of(o->mem.base, &w) < 0) ||
			    (o->mem.index != ZYDIS_REGISTER_NONE && gpr_of(o->mem.index, &w) < 0))
				return false; /* EIP-relative */
			break;
		default:
			return false;
		}
	}
	const ZydisAccessedFlags *f = zi->cpu_flags;
	if (f) {
		uint32_t all = f->tested | f->modified | f->set_0 | f->set_1 | f->undefined;
		if (all & ~XL_STATUS)
			return false; /* DF, IF, AC...: not in these forms, but never natively */
		if ((f->undefined & XL_STATUS) && !x->host_amd && !logic_mnemonic(zi->mnemonic))
			return false;
	}
	ZyanUSize len = sizeof out->buf;
	bool ok = native_encode(zi, zo, &out->mp, out->buf, &len, &out->req[0]);
	out->len = (uint8_t)len;
	out->nreq = 1;
	return ok;
}

/* ---------------------------------------------------------------- one native instruction */

/* The status flags a native instruction changes in the host. IMUL's SF ZF AF PF are undefined (SDM
 * "IMUL"); the AMD host leaves them unchanged, and so does alu.c (emu_imul1): not written, so they
 * must be the guest's in the host before it runs (the only multiply re-emitted: the one-operand forms
 * use RAX and RDX implicitly). */
static uint32_t flags_written(const ZydisDecodedInstruction *zi)
{
	const ZydisAccessedFlags *f = zi->cpu_flags;
	if (!f)
		return 0;
	uint32_t w = (f->modified | f->set_0 | f->set_1 | f->undefined) & XL_STATUS;
	if (zi->mnemonic == ZYDIS_MNEMONIC_IMUL)
		w &= ~(uint32_t)f->undefined;
	return w;
}

/* The out-of-line slow path of a native memory form: what its fast path had when it branched away. */
struct xl_slow {
	size_t jumps[6];          /* rel32 jumps to it (positions after them) */
	unsigned nj;
	bool leaves;              /* a branch (CALL, RET): its handler leaves the block, no resume */
	bool pushed;              /* the guest's flags were kept in DI around the TLB path (flags_save) */
	struct xl_flags before, after;
	uint64_t rip_delta;       /* RIP not yet added before this instruction */
	unsigned nat;             /* native instructions not yet counted before it */
	unsigned k;               /* the instruction */
	size_t resume;            /* where the fast path goes on */
	struct xl_cache kb, ka;   /* the register cache before the access and after the instruction */
};

_Static_assert(offsetof(ZydisEncoderRequest, operands) % 8 == 0 && sizeof(ZydisEncoderOperand) % 8 == 0,
	       "emit()'s memo hashes whole words");
_Static_assert(sizeof(struct emu_tlb_entry) == 64 && EMU_TLB_SIZE == 256,
	       "the TLB path's index is ((lin ^ lin >> 8) >> 6) & 0x3fc0: emu_tlbe() times 64");

/* [base + index * scale + disp] */
static ZydisEncoderOperand M(ZydisRegister base, ZydisRegister index, unsigned scale, size_t disp, unsigned size)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof o);
	o.type = ZYDIS_OPERAND_TYPE_MEMORY;
	o.mem.base = base;
	o.mem.index = index;
	o.mem.scale = (ZyanU8)(index == ZYDIS_REGISTER_NONE ? 0 : scale);
	o.mem.displacement = (ZyanI64)disp;
	o.mem.size = (ZyanU16)size;
	return o;
}

/* [rbx + rdx + off]: a field of the TLB entry whose byte offset is in rdx */
static ZydisEncoderOperand T(size_t off)
{
	ZydisEncoderOperand o = C(offsetof(struct emu_vcpu, tlb) + off, 8);
	o.mem.index = ZYDIS_REGISTER_RDX;
	o.mem.scale = 1;
	return o;
}

/*
 * A RIP-relative address [rip + disp] of an instruction that ends rip_next bytes past c->rip: the
 * guest's RIP is c->rip plus what the block ran since it was last updated (a block may run at
 * another linear address than the one it was translated at: never the translation-time RIP), so
 * c->rip goes to host register r and the address becomes [r + rip_next + disp] (SDM Vol. 2 2.2.1.6:
 * RIP-relative addresses count from the next instruction). A displacement that no longer fits 32
 * bits keeps the form with its handler: native_form() tests it with rip_next at most a block.
 */
static void emit_rip_base(struct xb *e, ZydisEncoderOperand *a, uint64_t rip_next, ZydisRegister r)
{
	E2(e, MOV, R(r), C(offsetof(struct emu_vcpu, rip), 8));
	a->mem.base = r;
	a->mem.displacement = (int64_t)a->mem.displacement + (int64_t)rip_next;
}

/* The host address of the guest access of a memory form into rax, or a jump to its slow path: the
 * interpreter's emu_rdN/emu_wrN hit test (emu.h) and emu_tlbe()'s index, with rcx and rdx. */
static void emit_tlb(struct xb *e, const struct xl_map *mp, ZydisRegister seg, struct xl_slow *sl)
{
	ZydisEncoderOperand a = mp->mem;
	a.mem.size = 8;
	if (mp->riprel)
		emit_rip_base(e, &a, mp->rip_next, ZYDIS_REGISTER_RAX);
	E2(e, LEA, R(ZYDIS_REGISTER_RAX), a);
	if (seg == ZYDIS_REGISTER_FS || seg == ZYDIS_REGISTER_GS) /* in 64-bit mode the others' bases are 0 */
		E2(e, ADD, R(ZYDIS_REGISTER_RAX),
		   C(offsetof(struct emu_vcpu, sbase) + 8u * (seg == ZYDIS_REGISTER_FS ? EMU_FS : EMU_GS), 8));
	/* emu_tlbe(): ((lin >> 12) ^ (lin >> 20)) & 255, times the entry's size 64:
	 * ((lin ^ (lin >> 8)) >> 6) & (255 << 6) */
	E2(e, MOV, R(ZYDIS_REGISTER_RDX), R(ZYDIS_REGISTER_RAX));
	E2(e, SHR, R(ZYDIS_REGISTER_RDX), I(8));
	E2(e, XOR, R(ZYDIS_REGISTER_RDX), R(ZYDIS_REGISTER_RAX));
	E2(e, SHR, R(ZYDIS_REGISTER_RDX), I(6));
	E2(e, AND, R(ZYDIS_REGISTER_EDX), I(0x3fc0));
	/* the tag: the page, for reads tag_r, for writes tag_w. Compared with the page of the access's
	 * LAST byte (as QEMU's TLB fast path): an access that crosses into the next page never matches
	 * the entry of its first page, so one compare also sends page crossings to the slow path. */
	E2(e, LEA, R(ZYDIS_REGISTER_RCX), M(ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_NONE, 0, mp->mem_size - 1u, 8));
	E2(e, AND, R(ZYDIS_REGISTER_RCX), I((uint64_t)-4096));
	E2(e, CMP, R(ZYDIS_REGISTER_RCX), T(mp->mem_write ? offsetof(struct emu_tlb_entry, tag_w) :
						      offsetof(struct emu_tlb_entry, tag_r)));
	sl->jumps[sl->nj++] = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, true);
	E2(e, ADD, R(ZYDIS_REGISTER_RAX), T(offsetof(struct emu_tlb_entry, addend)));
}

/* A register of a pre-encoded request that is host_pool[pool0 + h], for some h < n, as the same
 * width of the register cache's slot slot[h]; any other register (rax: the access) stays. */
static ZydisRegister cache_subst(ZydisRegister r, const struct xl_map *mp, const unsigned *slot)
{
	unsigned w;
	int num = gpr_of(r, &w);
	for (unsigned h = 0; num >= 0 && h < mp->n; h++)
		if ((unsigned)num == host_pool[mp->pool0 + h])
			return cache_reg(slot[h], w);
	return r;
}

static void subst_operand(ZydisEncoderOperand *o, const struct xl_map *mp, const unsigned *slot)
{
	if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		o->reg.value = cache_subst(o->reg.value, mp, slot);
	} else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		if (o->mem.base != ZYDIS_REGISTER_NONE)
			o->mem.base = cache_subst(o->mem.base, mp, slot);
		if (o->mem.index != ZYDIS_REGISTER_NONE)
			o->mem.index = cache_subst(o->mem.index, mp, slot);
	}
}

/*
 * Whether the guest's status flags are dead before instruction j0 of block b: the first
 * instruction from j0 on that touches them replaces all six without reading them, and nothing
 * before it can leave the block (native register forms only: no memory access, so no slow path; no
 * branch, no handler run). The block's end: not dead, they leave with it.
 */
static bool flags_dead_from(const struct emu_xlate *x, const struct emu_block *b, unsigned j0)
{
	for (unsigned j = j0; j < b->n; j++) {
		const ZydisDecodedInstruction *zi = &x->zi[j];
		if (!x->nat[j] || x->enc[j].mp.mem_size || zi->meta.category == ZYDIS_CATEGORY_COND_BR ||
		    zi->meta.category == ZYDIS_CATEGORY_UNCOND_BR || zi->meta.category == ZYDIS_CATEGORY_CALL ||
		    zi->meta.category == ZYDIS_CATEGORY_RET || shift_by_cl(zi, x->zo[j]))
			return false;
		if (zi->cpu_flags && (zi->cpu_flags->tested & XL_STATUS))
			return false;
		uint32_t w = flags_written(zi);
		if (w)
			return w == XL_STATUS;
	}
	return false;
}

/*
 * After instruction k (flags_dead_from k + 1), a memory form that keeps them in DI around its TLB
 * path (flags_save) needs them back only on its slow path, where a fault or an exit shows them; its
 * fast path skips flags_restore. In a loop such as "add; mov byte [mem]; cmp; jb" that is 4 of its
 * ~40 host instructions.
 */
static bool flags_dead_after(const struct emu_xlate *x, const struct emu_block *b, unsigned k)
{
	return flags_dead_from(x, b, k + 1);
}

/* At the block's head (flags_dead_from 0), a self-loop's branch back (emit_self_loop_dead) leaves
 * them in the host, and stores them only on its way out. */
static bool flags_dead_at_head(const struct emu_xlate *x, const struct emu_block *b)
{
	return flags_dead_from(x, b, 0);
}

/* One native instruction. A memory form gets a slow path, recorded in *sl (sl->nj != 0), that
 * xlate_block() emits after the block's end. Its guest registers come from the register cache k
 * (struct xl_cache) and stay there, the written ones dirty; a shift by CL, whose count must be in
 * the host's CL, empties the cache and runs with host_pool's registers, through c->r[]. dead:
 * flags_dead_after() this instruction; rip_next: its end, in bytes past c->rip. */
static void emit_native(struct xb *e, struct xl_flags *fl, const ZydisDecodedInstruction *zi,
			const ZydisDecodedOperand *zo, const struct xl_enc *enc, struct xl_slow *sl, struct xl_cache *k,
			bool dead, uint64_t rip_next)
{
	const ZydisAccessedFlags *f = zi->cpu_flags;
	bool by_cl = shift_by_cl(zi, zo);
	uint32_t tested = by_cl ? XL_STATUS : f ? f->tested & XL_STATUS : 0;
	uint32_t written = flags_written(zi);
	/* every field defined: a code buffer that fills up returns early below, and xlate_block()
	 * still walks the recorded slow paths before it sees e->bad */
	memset(sl, 0, sizeof *sl);
	if (by_cl)
		cache_flush(e, k);
	if ((tested || (written && written != XL_STATUS)) && !fl->host)
		flags_in(e, fl);
	struct xl_map mp = enc->mp;
	mp.rip_next = rip_next;
	unsigned slot[4] = { 0 }, pinned = 0;
	for (unsigned h = 0; h < mp.n; h++) {
		if (by_cl) {
			if (mp.rd[h])
				E2(e, MOV, R(host_reg(host_pool[mp.pool0 + h], 8)), C(OFF_R(mp.guest[h]), 8));
			continue;
		}
		slot[h] = cache_get(e, k, (unsigned)mp.guest[h], mp.rd[h], pinned);
		pinned |= 1u << slot[h];
	}
	if (!by_cl)
		subst_operand(&mp.mem, &mp, slot);
	if (mp.mem_size) {
		/* the TLB path changes the host's flags: the guest's, when the host holds them and this
		 * instruction does not replace them all, are kept in DI meanwhile (flags_save) */
		sl->pushed = fl->host && (tested || written != XL_STATUS);
		sl->before = *fl;
		sl->kb = *k;
		if (sl->pushed)
			flags_save(e);
		ZydisRegister seg = ZYDIS_REGISTER_NONE;
		for (unsigned q = 0; q < zi->operand_count_visible; q++)
			if (zo[q].type == ZYDIS_OPERAND_TYPE_MEMORY)
				seg = zo[q].mem.segment;
		emit_tlb(e, &mp, seg, sl);
		if (sl->pushed && dead && !written) {
			/* the slow path takes them back from DI; here nothing reads them any more */
			fl->host = false;
		} else if (sl->pushed) {
			/* the host address to rdi while AX gives the flags back, then to rax again */
			E2(e, XCHG, R(ZYDIS_REGISTER_RAX), R(ZYDIS_REGISTER_RDI));
			flags_restore(e);
			E2(e, MOV, R(ZYDIS_REGISTER_RAX), R(ZYDIS_REGISTER_RDI));
		}
	}
	if (by_cl) {
		if (e->bad || e->at + enc->len > e->cap) {
			e->bad = true;
			return;
		}
		memcpy(e->w + e->at, enc->buf, enc->len);
		e->at += enc->len;
		for (unsigned h = 0; h < mp.n; h++)
			if (mp.wr[h])
				E2(e, MOV, C(OFF_R(mp.guest[h]), 8), R(host_reg(host_pool[mp.pool0 + h], 8)));
	} else {
		for (unsigned q = 0; q < enc->nreq; q++) {
			ZydisEncoderRequest rq = enc->req[q];
			for (unsigned o = 0; o < rq.operand_count; o++)
				subst_operand(&rq.operands[o], &mp, slot);
			if (zi->mnemonic == ZYDIS_MNEMONIC_LEA && rq.operands[1].mem.base == ZYDIS_REGISTER_RIP) {
				/* LEA r32/r64, [rip + disp]: c->rip into the destination's whole register
				 * first (the form writes all of it: native_form) */
				ZydisRegister d64 = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64,
										    rq.operands[0].reg.value);
				emit_rip_base(e, &rq.operands[1], rip_next, d64);
			}
			emit_req(e, &rq);
		}
		for (unsigned h = 0; h < mp.n; h++)
			if (mp.wr[h])
				k->dirty[slot[h]] = true;
	}
	if (written) {
		fl->ctx = false;
		fl->host = true;
	}
	sl->after = *fl;
	sl->ka = *k;
	sl->resume = e->at;
}

/* ---------------------------------------------------------------- taken branches */

_Static_assert(sizeof(struct emu_jc) == 24, "the chaining path scales the jump-cache index by 24");


/* Instructions k..j-1 of block b copied into the data area and ended by xl_yield, so that a handler
 * run started at the copy stops after instruction j-1; NULL when the data area is full (the room
 * check at the start of xlate_block should make that impossible). */
static struct emu_insn *copy_run(struct emu_xlate *x, const struct emu_block *b, unsigned k, unsigned j)
{
	if (x->data_used + (j - k) + 1 > XL_DATA_INSNS)
		return NULL;
	struct emu_insn *d = &x->data[x->data_used];
	memcpy(d, &b->insn[k], (j - k) * sizeof *d);
	memset(&d[j - k], 0, sizeof *d);
	d[j - k].fn = xl_yield;
	d[j - k].idx = (uint8_t)j;
	x->data_used += j - k + 1;
	return d;
}

/* Translated code that runs the handlers from run (its fn first: struct emu_insn starts with its
 * handler) as the interpreter does; a non-zero status (an exit, a fault, c->stop) leaves at exit_at. */
static void emit_handler_run(struct xb *e, const struct emu_insn *run, uint64_t exit_at)
{
	E2(e, MOV, R(ZYDIS_REGISTER_RDI), R(ZYDIS_REGISTER_RBX));
	E2(e, MOV, R(ZYDIS_REGISTER_RSI), I((uintptr_t)run));
	E1(e, CALL, M(ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_NONE, 0, 0, 8));
	E2(e, TEST, R(ZYDIS_REGISTER_EAX), R(ZYDIS_REGISTER_EAX));
	jump_to(e, ZYDIS_MNEMONIC_JNZ, exit_at);
}

/* back to the run loop after a taken branch k of block b that does not chain: c->last_i = the
 * branch, EMU_ST_END (emu_next()'s way out) */
static void emit_leave_end(struct xb *e, const struct emu_block *b, unsigned k, uint64_t exit_at)
{
	E2(e, MOV, R(ZYDIS_REGISTER_RDX), I((uintptr_t)&b->insn[k]));
	E2(e, MOV, C(offsetof(struct emu_vcpu, last_i), 8), R(ZYDIS_REGISTER_RDX));
	E2(e, MOV, R(ZYDIS_REGISTER_EAX), I(EMU_ST_END));
	jump_to(e, ZYDIS_MNEMONIC_JMP, exit_at);
}

/* after a handler run that must have left the block but returned 0: xl_disagree()'s internal
 * error, back to the run loop with its status */
static void emit_disagree(struct xb *e, uint64_t exit_at)
{
	E2(e, MOV, R(ZYDIS_REGISTER_RDI), R(ZYDIS_REGISTER_RBX));
	E2(e, MOV, R(ZYDIS_REGISTER_RAX), I((uintptr_t)xl_disagree));
	E1(e, CALL, R(ZYDIS_REGISTER_RAX));
	jump_to(e, ZYDIS_MNEMONIC_JMP, exit_at);
}

#define JC(f) M(ZYDIS_REGISTER_RBX, ZYDIS_REGISTER_RDX, 8, offsetof(struct emu_vcpu, jc) + offsetof(struct emu_jc, f), \
		sizeof(((struct emu_jc *)0)->f))

/* Whether a relative branch of a 64-bit block to its start + delta stays in the page of the block's
 * first byte (emit_taken): linear and guest-physical addresses share their low 12 bits. */
static bool same_page(const struct emu_block *b, int64_t delta)
{
	int64_t at = (int64_t)(b->gpa & 0xfff) + delta;
	return at >= 0 && at < 0x1000;
}

/*
 * Whether a taken branch may chain; where not, jumps recorded in end[] (the caller lands them on its
 * way back to the run loop). No stop request to test: in a translation's body c->stop is always 0
 * (a request made before the block, single-step or TF, is met at its entry, emit_entry_stop; a
 * handler that sets it later returns it through emu_next(), which leaves the block; native code
 * does not set it). The chain budget: DEC, and none left when it goes negative (the run loop sets
 * it again; exec_branch.c's test "> 0" agrees for every value it can see).
 */
static void emit_chain_test(struct xb *e, size_t *end, unsigned *ne)
{
	E1(e, DEC, C(offsetof(struct emu_vcpu, chain_left), 4));
	end[(*ne)++] = jump_fwd(e, ZYDIS_MNEMONIC_JS, true);
}

/* chained: the block in RSI counted (c->icount: this block's instructions up to the branch k) and
 * entered at RIP in RAX, as branch_to() does */
static void emit_chain(struct xb *e, unsigned k)
{
	E2(e, ADD, C(offsetof(struct emu_vcpu, icount), 8), I(k + 1u));
	E2(e, MOV, C(offsetof(struct emu_vcpu, cur_b), 8), R(ZYDIS_REGISTER_RSI));
	E2(e, MOV, C(offsetof(struct emu_vcpu, cur_blin), 8), R(ZYDIS_REGISTER_RAX));
	E2(e, MOV, R(ZYDIS_REGISTER_RAX), M(ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_NONE, 0, offsetof(struct emu_block, chain), 8));
	E2(e, ADD, R(ZYDIS_REGISTER_RSI), I(offsetof(struct emu_block, insn)));
	E2(e, MOV, C(offsetof(struct emu_vcpu, last_i), 8), R(ZYDIS_REGISTER_RSI));
	E1(e, JMP, R(ZYDIS_REGISTER_RAX)); /* b->chain: past its prologue, or the chain stub */
}

/* a branch site for emit_taken(), matching nothing yet (the room check keeps one per instruction) */
static struct xl_site *new_site(struct emu_vcpu *c)
{
	struct xl_site *s = &c->xl->sites[c->xl->sites_used++];
	*s = (struct xl_site){ .lin = 1ull << 63, .b = NULL, .xep = c->xep ^ 0x80000000u };
	return s;
}

/*
 * A taken branch of a 64-bit block (JMP rel, Jcc, CALL, RET, JMP/CALL r/m) without its handler,
 * c->rip already its target (sync_out): branch_to() (exec_branch.c) in host code. Unless the chain
 * is used up (no stop request can be pending here: emit_chain_test), the jump cache's entry for the
 * target, when valid (its linear
 * address -- 64-bit mode: the RIP --, the exec epoch, the mode, not one that needs exact flags), is
 * counted and entered as a tail jump; else c->last_i = the branch and EMU_ST_END back to the run
 * loop. The two must stay the same rule. A direct branch's site (struct xl_site; none for RET and
 * JMP/CALL r/m, whose targets vary) remembers the entry it last entered, and is tried before the
 * jump cache: the same address in the same exec epoch is the same valid entry (saves the index and
 * the chain_mode test). The jump cache's entry carries the target's chain mode (emu_jc_chain_mode)
 * so that the test reads the entry's own cache line, not the block's.
 * same_page: the target is in the page of the block's first byte, which the block was entered
 * through (with the translations of that moment: a TLB flush ends its block, emu_xep_bump_tlb), so
 * the site's entry stays valid across TLB flushes, validated by the code epoch c->cep (QEMU chains
 * such jumps for good: translate-all.c, "direct jump within the same page"). 18000 of a Linux boot's
 * exec epoch moves were TLB flushes (MOV to CR3 on every context switch).
 */
static void emit_taken(struct xb *e, const struct emu_block *b, unsigned k, uint64_t exit_at, struct xl_site *site,
		       bool same_page)
{
	const size_t ep_off = same_page ? offsetof(struct emu_vcpu, cep) : offsetof(struct emu_vcpu, xep);
	size_t end[6];
	unsigned ne = 0;
	E2(e, MOV, R(ZYDIS_REGISTER_RAX), C(offsetof(struct emu_vcpu, rip), 8));
	emit_chain_test(e, end, &ne);
	/* this branch's own entry first (struct xl_site): the jump cache's entry it last found valid;
	 * a hit falls through to the chaining, a miss goes out of line and comes back */
	size_t miss[2] = { 0, 0 }, chain = 0;
	if (site) {
		E2(e, MOV, R(ZYDIS_REGISTER_R8), I((uintptr_t)site));
		E2(e, CMP, R(ZYDIS_REGISTER_RAX), M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, offsetof(struct xl_site, lin), 8));
		miss[0] = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, true);
		E2(e, MOV, R(ZYDIS_REGISTER_ECX), C(ep_off, 4));
		E2(e, CMP, R(ZYDIS_REGISTER_ECX), M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, offsetof(struct xl_site, xep), 4));
		miss[1] = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, true);
		E2(e, MOV, R(ZYDIS_REGISTER_RSI), M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, offsetof(struct xl_site, b), 8));
		chain = e->at;
		emit_chain(e, k);
		land_near(e, miss[0]);
		land_near(e, miss[1]);
	}
	/* emu_jc_index(): (lin ^ (lin >> 12)) & (EMU_JC_SIZE - 1), times 24 as 3 * 8 */
	E2(e, MOV, R(ZYDIS_REGISTER_RDX), R(ZYDIS_REGISTER_RAX));
	E2(e, SHR, R(ZYDIS_REGISTER_RDX), I(12));
	E2(e, XOR, R(ZYDIS_REGISTER_RDX), R(ZYDIS_REGISTER_RAX));
	E2(e, AND, R(ZYDIS_REGISTER_EDX), I(EMU_JC_SIZE - 1));
	E2(e, LEA, R(ZYDIS_REGISTER_RDX), M(ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_RDX, 2, 0, 8));
	E2(e, CMP, R(ZYDIS_REGISTER_RAX), JC(lin));
	end[ne++] = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, true);
	E2(e, MOV, R(ZYDIS_REGISTER_ECX), C(offsetof(struct emu_vcpu, xep), 4));
	E2(e, CMP, R(ZYDIS_REGISTER_ECX), JC(xep));
	end[ne++] = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, true);
	E2(e, MOVZX, R(ZYDIS_REGISTER_ESI), JC(chain_mode));
	E2(e, CMP, R(ZYDIS_REGISTER_SIL), C(offsetof(struct emu_vcpu, mode), 1));
	end[ne++] = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, true);
	E2(e, MOV, R(ZYDIS_REGISTER_RSI), JC(b));
	/* valid: kept in the site, whose next use needs no mode or flags_exact test: a block runs only
	 * in its own mode (looked up and chained by mode; an instruction that changes the mode ends its
	 * block), so whenever this branch runs c->mode is this block's mode, which the target's equalled
	 * when the site was filled; flags_exact is the target block's for good */
	if (site) {
		size_t nofill = 0;
		if (same_page) {
			/* not a target whose instruction 0 straddles into the next page: that page's
			 * translation is not the source's, and a TLB flush leaves the code epoch alone
			 * (decode.c, second_page_is) */
			E2(e, CMP, M(ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_NONE, 0, offsetof(struct emu_block, gpa2), 8),
			   I((uint64_t)-1));
			nofill = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, false);
			E2(e, MOV, R(ZYDIS_REGISTER_ECX), C(ep_off, 4));
		}
		E2(e, MOV, M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, offsetof(struct xl_site, lin), 8), R(ZYDIS_REGISTER_RAX));
		E2(e, MOV, M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, offsetof(struct xl_site, b), 8), R(ZYDIS_REGISTER_RSI));
		E2(e, MOV, M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, offsetof(struct xl_site, xep), 4), R(ZYDIS_REGISTER_ECX));
		if (same_page)
			land(e, nofill);
		jump_to(e, ZYDIS_MNEMONIC_JMP, e->x + chain);
	} else {
		emit_chain(e, k);
	}
	for (unsigned q = 0; q < ne; q++)
		land_near(e, end[q]);
	/* back to the run loop: c->last_i = the branch, EMU_ST_END */
	emit_leave_end(e, b, k, exit_at);
}

/* A branch target in register t tested canonical, emu_canonical()'s common case: sign-extended from
 * bit 47 it is itself (a target canonical only with CR4.LA57 takes the slow path: the handler decides,
 * exactly); rdx is scratch. */
static void emit_canonical(struct xb *e, ZydisRegister t, struct xl_slow *sl)
{
	E2(e, MOV, R(ZYDIS_REGISTER_RDX), R(t));
	E2(e, SHL, R(ZYDIS_REGISTER_RDX), I(16));
	E2(e, SAR, R(ZYDIS_REGISTER_RDX), I(16));
	E2(e, CMP, R(ZYDIS_REGISTER_RDX), R(t));
	sl->jumps[sl->nj++] = jump_fwd(e, ZYDIS_MNEMONIC_JNZ, true);
}

/* A near CALL's return address (RIP + its length) pushed as emu_push() does, its stack slot through
 * the TLB path (a miss, a crossing, a fault: the slow path); rax, rcx, rdx, r8 are scratch. */
static void emit_push_return(struct xb *e, const struct emu_insn *i, struct xl_slow *sl)
{
	E2(e, MOV, R(ZYDIS_REGISTER_R8), C(OFF_R(EMU_RSP), 8));
	struct xl_map sp;
	memset(&sp, 0, sizeof sp);
	sp.mem = M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, (size_t)-8, 8);
	sp.mem_size = 8;
	sp.mem_write = true;
	emit_tlb(e, &sp, ZYDIS_REGISTER_NONE, sl);
	E2(e, MOV, R(ZYDIS_REGISTER_RCX), C(offsetof(struct emu_vcpu, rip), 8));
	E2(e, LEA, R(ZYDIS_REGISTER_RCX), M(ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_NONE, 0, i->len, 8));
	E2(e, MOV, M(ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_NONE, 0, 0, 8), R(ZYDIS_REGISTER_RCX));
	E2(e, LEA, R(ZYDIS_REGISTER_R8), M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, (size_t)-8, 8));
	E2(e, MOV, C(OFF_R(EMU_RSP), 8), R(ZYDIS_REGISTER_R8));
}

/*
 * CALL rel32 / RET of a 64-bit block without their handlers (h_call_rel's and h_ret_8's work, exec_branch.c),
 * then emit_taken() to the target: the state made exact first (flags in the context, RIP at the
 * instruction), the stack slot through the TLB path (emit_tlb) as emu_push()/emu_rd8() access it;
 * RET's target tested canonical before anything is committed (#GP, SDM "RET"). A miss, a fault, a
 * page crossing, a non-canonical target: the slow path runs the handler alone, which leaves the
 * block (branch_to) with its status. The branch is counted native.
 */
static void emit_call_ret(struct xb *e, struct xl_flags *fl, uint64_t *rip_delta,
			  unsigned *nat, const ZydisDecodedInstruction *zi, const struct emu_insn *i, unsigned k,
			  struct xl_slow *sl)
{
	bool call = zi->mnemonic == ZYDIS_MNEMONIC_CALL;
	sync_out(e, fl, rip_delta, nat);
	memset(sl, 0, sizeof *sl);
	sl->leaves = true;
	sl->before = sl->after = *fl;
	sl->k = k;
	if (call) {
		/* the return address, RSP, then RIP to the target (h_call_rel: no canonical test) */
		emit_push_return(e, i, sl);
		uint64_t to = i->len + i->imm;
		if ((int64_t)to == (int32_t)to) {
			E2(e, ADD, C(offsetof(struct emu_vcpu, rip), 8), I(to));
		} else {
			E2(e, MOV, R(ZYDIS_REGISTER_RAX), I(to));
			E2(e, ADD, C(offsetof(struct emu_vcpu, rip), 8), R(ZYDIS_REGISTER_RAX));
		}
	} else {
		E2(e, MOV, R(ZYDIS_REGISTER_R8), C(OFF_R(EMU_RSP), 8));
		struct xl_map mp;
		memset(&mp, 0, sizeof mp);
		mp.mem = M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, 0, 8);
		mp.mem_size = 8;
		emit_tlb(e, &mp, ZYDIS_REGISTER_NONE, sl);
		E2(e, MOV, R(ZYDIS_REGISTER_RCX), M(ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_NONE, 0, 0, 8));
		emit_canonical(e, ZYDIS_REGISTER_RCX, sl);
		E2(e, LEA, R(ZYDIS_REGISTER_R8), M(ZYDIS_REGISTER_R8, ZYDIS_REGISTER_NONE, 0, 8, 8));
		E2(e, MOV, C(OFF_R(EMU_RSP), 8), R(ZYDIS_REGISTER_R8));
		E2(e, MOV, C(offsetof(struct emu_vcpu, rip), 8), R(ZYDIS_REGISTER_RCX));
	}
	unsigned one = 1;
	uint64_t none = 0;
	fl->ctx = true;
	fl->host = false;
	sync_out(e, fl, &none, &one);
}

/*
 * JMP r/m64 / CALL r/m64 of a 64-bit block without their handlers (h_jmp_r/h_jmp_m, h_call_r/h_call_m,
 * exec_branch.c), then emit_taken() to the target, as emit_call_ret(): the state made exact first,
 * the target read (a memory operand through the TLB path, as emu_rd() reads it) and tested canonical,
 * CALL's stack slot through the TLB path, all before anything is committed (SDM "JMP", "CALL": #GP(0)
 * for a non-canonical target, no state changed). A miss, a fault, a page crossing, a non-canonical
 * target: the slow path runs the handler alone, which leaves the block. The branch is counted native.
 */
static void emit_branch_ind(struct xb *e, struct xl_flags *fl, uint64_t *rip_delta, unsigned *nat,
			    const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo, const struct emu_insn *i,
			    unsigned k, struct xl_slow *sl)
{
	bool call = zi->mnemonic == ZYDIS_MNEMONIC_CALL;
	sync_out(e, fl, rip_delta, nat);
	memset(sl, 0, sizeof *sl);
	sl->leaves = true;
	sl->before = sl->after = *fl;
	sl->k = k;
	unsigned w;
	if (zo[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
		E2(e, MOV, R(ZYDIS_REGISTER_R9), C(OFF_R(gpr_of(zo[0].reg.value, &w)), 8));
	} else {
		/* the address's registers to host registers from host_pool[4] (r8..r11), as a memory form */
		struct xl_map mp;
		memset(&mp, 0, sizeof mp);
		mp.pool0 = 4;
		ZydisRegister base = zo[0].mem.base, index = zo[0].mem.index;
		if (base != ZYDIS_REGISTER_NONE)
			map_reg(&mp, &base, false);
		if (index != ZYDIS_REGISTER_NONE)
			map_reg(&mp, &index, false);
		for (unsigned h = 0; h < mp.n; h++)
			E2(e, MOV, R(host_reg(host_pool[mp.pool0 + h], 8)), C(OFF_R(mp.guest[h]), 8));
		mp.mem = M(base, index, zo[0].mem.scale, (size_t)zo[0].mem.disp.value, 8);
		mp.mem_size = 8;
		emit_tlb(e, &mp, zo[0].mem.segment, sl);
		E2(e, MOV, R(ZYDIS_REGISTER_R9), M(ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_NONE, 0, 0, 8));
	}
	emit_canonical(e, ZYDIS_REGISTER_R9, sl);
	if (call)
		emit_push_return(e, i, sl);
	E2(e, MOV, C(offsetof(struct emu_vcpu, rip), 8), R(ZYDIS_REGISTER_R9));
	unsigned one = 1;
	uint64_t none = 0;
	fl->ctx = true;
	fl->host = false;
	sync_out(e, fl, &none, &one);
}

/* Before a taken relative branch: the flags into the context, RIP to the target (64-bit mode: no
 * wrap, exec_branch.c), the native instructions and the branch counted. */
static void sync_branch(struct xb *e, struct xl_flags *f, uint64_t rip_delta, unsigned nat,
			const struct emu_insn *i)
{
	uint64_t to = rip_delta + i->len + i->imm;
	unsigned n = nat + 1;
	if ((int64_t)to == (int32_t)to) {
		sync_out(e, f, &to, &n);
		return;
	}
	sync_out(e, f, &rip_delta, &n);
	E2(e, MOV, R(ZYDIS_REGISTER_RAX), I(i->len + i->imm));
	E2(e, ADD, C(offsetof(struct emu_vcpu, rip), 8), R(ZYDIS_REGISTER_RAX));
}

/*
 * A taken relative branch of a 64-bit block back to the block's own first instruction (a loop whose
 * body is one block), RIP already at the target (sync_branch): branch_to()'s rule without the jump
 * cache, a jump to the block's head. The entry that branch_to() would find is this block: the
 * running block stays valid for its linear address until something moves the exec epoch, and a
 * handler that does so (a TLB flush, a write to a code page, a mode change) ends the block (c->stop or
 * an R_END row), so the branch is not reached; the flags are exact here (flags_exact asks no more).
 * So: the chain not used up (emit_chain_test); counted as a chained entry (c->icount; c->cur_b,
 * cur_blin and last_i keep the values of this block's entry). Else EMU_ST_END, as emit_taken().
 */
static void emit_self_loop(struct xb *e, const struct emu_block *b, unsigned k, size_t head, uint64_t exit_at)
{
	size_t end[1];
	unsigned ne = 0;
	emit_chain_test(e, end, &ne);
	E2(e, ADD, C(offsetof(struct emu_vcpu, icount), 8), I(k + 1u));
	jump_to(e, ZYDIS_MNEMONIC_JMP, e->x + head);
	for (unsigned q = 0; q < ne; q++)
		land_near(e, end[q]);
	emit_leave_end(e, b, k, exit_at);
}

/*
 * emit_self_loop() for a branch k that leaves RIP where it is (the block's head; every instruction
 * since the last RIP update native) in a block whose head has dead flags (flags_dead_at_head): the
 * guest's flags stay in the host while the loop goes on (the head replaces them before anything
 * reads them), and go to the context (flags_out) only on the way out. So the chain budget is tested
 * without touching them (JRCXZ), and the counts are added after the test. nat: the native
 * instructions to count, the branch included.
 */
static void emit_self_loop_dead(struct xb *e, const struct emu_block *b, unsigned k, size_t head, uint64_t exit_at,
				struct xl_flags *f, unsigned nat)
{
	E2(e, MOV, R(ZYDIS_REGISTER_ECX), C(offsetof(struct emu_vcpu, chain_left), 4));
	size_t out = jump_fwd(e, ZYDIS_MNEMONIC_JRCXZ, false);
	E1(e, DEC, R(ZYDIS_REGISTER_ECX));
	E2(e, MOV, C(offsetof(struct emu_vcpu, chain_left), 4), R(ZYDIS_REGISTER_ECX));
	E2(e, ADD, C(offsetof(struct emu_vcpu, xl_native), 8), I(nat));
	E2(e, ADD, C(offsetof(struct emu_vcpu, icount), 8), I(k + 1u));
	jump_to(e, ZYDIS_MNEMONIC_JMP, e->x + head);
	land(e, out);
	uint64_t none = 0;
	sync_out(e, f, &none, &nat);
	emit_leave_end(e, b, k, exit_at);
}

/* JMP rel (E9, EB) in 64-bit mode, operand size 64 (a 66 prefix is vendor-specific: the handler's) */
static bool jmp_rel64(unsigned mode, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		      const struct emu_insn *i)
{
	return mode == EMU_MODE_64 && zi->mnemonic == ZYDIS_MNEMONIC_JMP && zi->operand_count_visible == 1 &&
	       zo[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && zo[0].imm.is_relative &&
	       !(zi->attributes & ZYDIS_ATTRIB_HAS_OPERANDSIZE) && i->fn != emu_h_ud && i->fn != emu_h_unimpl;
}

/*
 * At a translation's entry from the run loop (b->entry; b->chain enters past this): a stop request
 * made before the block (single-step, TF, an instruction breakpoint: engine.c) runs instruction 0
 * alone through its handler, whose emu_next() ends the block after it with c->last_i set, as in
 * the interpreter; a fault or an exit leaves the same way. Its body then never meets a request it
 * has to test (emit_chain_test): a self-loop's branch back and every chained entry skip this test.
 * False when the data area is full (the room check makes that impossible).
 */
static bool emit_entry_stop(struct xb *e, struct emu_xlate *x, const struct emu_block *b, uint64_t exit_at)
{
	const struct emu_insn *one = copy_run(x, b, 0, 1);
	if (!one)
		return false;
	E2(e, MOV, R(ZYDIS_REGISTER_ECX), C(offsetof(struct emu_vcpu, stop), 4));
	size_t j = jump_fwd(e, ZYDIS_MNEMONIC_JRCXZ, false);
	emit_handler_run(e, one, exit_at);
	/* status 0: xl_yield ran after instruction 0, so emu_next() saw no request: never */
	emit_disagree(e, exit_at);
	land(e, j);
	return true;
}

/* ---------------------------------------------------------------- a block */

static int xlate_block(struct emu_vcpu *c, struct emu_block *b, const uint8_t *code)
{
	struct emu_xlate *x = c->xl;
	const ZydisDecoder *dec = emu_decoder(c, b->mode);
	unsigned n = b->n, pos = 0, nnat = 0;
	bool host_flags = false; /* a native instruction wrote the flags last (translation-time state) */
	uint64_t end[EMU_BLOCK_MAX]; /* the offset of each instruction's end in the block */
	for (unsigned k = 0; k < n; k++) {
		const struct emu_insn *i = &b->insn[k];
		end[k] = pos + i->len;
		x->nat[k] = ZYAN_SUCCESS(ZydisDecoderDecodeFull(dec, code + pos, 15, &x->zi[k], x->zo[k])) &&
			    x->zi[k].length == i->len && native_form(x, b->mode, &x->zi[k], x->zo[k], i, &x->enc[k]);
		if (x->nat[k] && jcc_inverse(x->zi[k].mnemonic) != ZYDIS_MNEMONIC_INVALID && !host_flags)
			x->nat[k] = false; /* flags a handler left lazy: its handler decides without materialising */
		if (!x->nat[k])
			host_flags = false;
		else if (flags_written(&x->zi[k]))
			host_flags = true;
		nnat += x->nat[k];
		pos += i->len;
	}
	b->entry = b->insn[0].fn;
	if (!nnat)
		return 0; /* one run: the block's handlers, threaded, are its translation */

	struct xb e = { .memo = x->memo, .memo_req = x->memo_req, .w = x->code.w + x->code_used, .x = (uintptr_t)(x->code.x + x->code_used),
			.arena = (uintptr_t)x->code.x, .at = 0,
			.cap = XL_BLOCK_CODE + n * XL_INSN_CODE };
	const uint64_t exit_at = (uintptr_t)(x->code.x + XL_EXIT_AT);
	struct xl_flags fl = { .ctx = true, .host = false };
	const bool head_dead = flags_dead_at_head(x, b);
	uint64_t rip_delta = 0;
	unsigned nat = 0, nslow = 0;
	struct xl_slow slow[EMU_BLOCK_MAX];
	E1(&e, PUSH, R(ZYDIS_REGISTER_RBX)); /* also aligns the stack for the calls */
	E2(&e, MOV, R(ZYDIS_REGISTER_RBX), R(ZYDIS_REGISTER_RDI));
	if (!emit_entry_stop(&e, x, b, exit_at))
		return emu_internal_error(c, "translator: data area full despite the room check");
	/* a self-loop's target and where chained branches enter (b->chain): the state of a block entry
	 * with no stop request (emit_self_loop) */
	const size_t head = e.at;
	struct xl_cache kc;       /* the register cache: empty at the head, at every run, branch, end */
	memset(&kc, 0, sizeof kc);
	for (unsigned k = 0; k < n;) {
		if (x->nat[k]) {
			ZydisMnemonic inv = jcc_inverse(x->zi[k].mnemonic);
			if (inv != ZYDIS_MNEMONIC_INVALID) {
				/* not taken: on (the host's flags are the guest's); taken: its handler */
				if (!fl.host)
					flags_in(&e, &fl);
				size_t j = jump_fwd(&e, inv, true);
				cache_writeback(&e, &kc); /* taken: the cache leaves with it */
				struct xl_flags f2 = fl;
				uint64_t d2 = rip_delta;
				unsigned n2 = nat;
				if (b->mode == EMU_MODE_64 && end[k] + b->insn[k].imm == 0 && head_dead &&
				    rip_delta + b->insn[k].len + b->insn[k].imm == 0) {
					/* taken, to the head, RIP there already: the flags stay in the host */
					emit_self_loop_dead(&e, b, k, head, exit_at, &f2, nat + 1);
				} else if (b->mode == EMU_MODE_64) {
					/* taken: RIP to the target, the branch counted as native, then chained */
					sync_branch(&e, &f2, rip_delta, nat, &b->insn[k]);
					if (end[k] + b->insn[k].imm == 0)
						emit_self_loop(&e, b, k, head, exit_at);
					else
						emit_taken(&e, b, k, exit_at, new_site(c), same_page(b, end[k] + b->insn[k].imm));
				} else {
					/* taken (32-bit code: the target wraps at 4 GiB): its handler */
					sync_out(&e, &f2, &d2, &n2);
					const struct emu_insn *one = copy_run(x, b, k, k + 1);
					if (!one)
						return emu_internal_error(c, "translator: data area full despite the room check");
					emit_handler_run(&e, one, exit_at);
					emit_disagree(&e, exit_at);
				}
				land_near(&e, j);
			} else if (branch_ind64(b->mode, &x->zi[k], x->zo[k], &b->insn[k])) {
				cache_flush(&e, &kc);
				emit_branch_ind(&e, &fl, &rip_delta, &nat, &x->zi[k], x->zo[k], &b->insn[k], k, &slow[nslow++]);
				emit_taken(&e, b, k, exit_at, NULL, false); /* a jump table's targets vary: no site */
				k++;
				continue;
			} else if (call_ret64(b->mode, &x->zi[k], x->zo[k], &b->insn[k])) {
				cache_flush(&e, &kc);
				emit_call_ret(&e, &fl, &rip_delta, &nat, &x->zi[k], &b->insn[k], k, &slow[nslow++]);
				/* a RET returns to its function's several callers: no site */
				emit_taken(&e, b, k, exit_at, x->zi[k].mnemonic == ZYDIS_MNEMONIC_CALL ? new_site(c) : NULL,
					   false);
				k++;
				continue;
			} else if (jmp_rel64(b->mode, &x->zi[k], x->zo[k], &b->insn[k])) {
				cache_flush(&e, &kc);
				sync_branch(&e, &fl, rip_delta, nat, &b->insn[k]);
				if (end[k] + b->insn[k].imm == 0)
					emit_self_loop(&e, b, k, head, exit_at);
				else
					emit_taken(&e, b, k, exit_at, new_site(c), same_page(b, end[k] + b->insn[k].imm));
				rip_delta = 0;
				nat = 0;
				k++;
				continue;
			} else {
				struct xl_slow *sl = &slow[nslow];
				emit_native(&e, &fl, &x->zi[k], x->zo[k], &x->enc[k], sl, &kc,
					    flags_dead_after(x, b, k), rip_delta + b->insn[k].len);
				if (sl->nj) {
					sl->rip_delta = rip_delta;
					sl->nat = nat;
					sl->k = k;
					nslow++;
				}
			}
			rip_delta += b->insn[k].len;
			nat++;
			k++;
			continue;
		}
		unsigned j = k;
		while (j < n && !x->nat[j])
			j++;
		cache_flush(&e, &kc);
		sync_out(&e, &fl, &rip_delta, &nat);
		const struct emu_insn *run = &b->insn[k];
		if (j < n && !(run = copy_run(x, b, k, j))) /* a run inside the block: a copy */
			return emu_internal_error(c, "translator: data area full despite the room check");
		emit_handler_run(&e, run, exit_at);
		fl.host = false;
		k = j;
	}
	cache_flush(&e, &kc);
	sync_out(&e, &fl, &rip_delta, &nat);
	E2(&e, MOV, R(ZYDIS_REGISTER_EAX), I(EMU_ST_SENTINEL));
	jump_to(&e, ZYDIS_MNEMONIC_JMP, exit_at);
	for (unsigned q = 0; q < nslow; q++) {
		/* a memory form's slow path: the state made exact, its handler alone (a miss, MMIO, a page
		 * crossing, a fault: exactly the interpreter), then back to the fast path's state: RIP and
		 * the native count as if it had run there (they are added later), the flags where the
		 * fast path has them */
		const struct xl_slow *sl = &slow[q];
		for (unsigned t = 0; t < sl->nj; t++)
			land_near(&e, sl->jumps[t]);
		if (sl->pushed) {
			E2(&e, MOV, R(ZYDIS_REGISTER_EAX), R(ZYDIS_REGISTER_EDI));
			flags_restore(&e);
		}
		struct xl_flags f2 = sl->before;
		uint64_t d2 = sl->rip_delta;
		unsigned n2 = sl->nat;
		cache_writeback(&e, &sl->kb); /* the handler reads c->r[] */
		sync_out(&e, &f2, &d2, &n2);
		const struct emu_insn *one = copy_run(x, b, sl->k, sl->k + 1);
		if (!one)
			return emu_internal_error(c, "translator: data area full despite the room check");
		emit_handler_run(&e, one, exit_at);
		if (sl->leaves) {
			emit_disagree(&e, exit_at);
			continue;
		}
		E2(&e, SUB, C(offsetof(struct emu_vcpu, rip), 8), I(sl->rip_delta + b->insn[sl->k].len));
		E2(&e, SUB, C(offsetof(struct emu_vcpu, xl_native), 8), I(sl->nat + 1u));
		f2.ctx = true;
		f2.host = false;
		/* the fast path's registers after the instruction, as the handler left them (the ones the
		 * fast path holds dirty equal c->r[] here: writing them back later is harmless) */
		cache_reload(&e, &sl->ka);
		if (sl->after.host)
			flags_in(&e, &f2);
		jump_to(&e, ZYDIS_MNEMONIC_JMP, e.x + sl->resume);
	}
	if (e.bad)
		return emu_internal_error(c, "translator: a block could not be encoded");
	b->entry = (emu_fn *)(uintptr_t)e.x;
	b->chain = (const void *)(uintptr_t)(e.x + head);
	x->code_used += (e.at + 15) & ~(size_t)15;
	if (x->dump) {
		/* vCPU, guest-physical address, decode mode, host address; then both byte strings */
		fprintf(x->dump, "block %u %#" PRIx64 " %u %#" PRIx64 "\nguest ", c->id, b->gpa, b->mode, e.x);
		for (unsigned q = 0; q < pos; q++)
			fprintf(x->dump, "%02x", code[q]);
		fputs("\nhost ", x->dump);
		for (size_t q = 0; q < e.at; q++)
			fprintf(x->dump, "%02x", e.w[q]);
		fputc('\n', x->dump);
		fflush(x->dump);
	}
	return 0;
}


int emu_xlate_cold(struct emu_vcpu *c, const struct emu_insn *i)
{
	struct emu_block *b = (struct emu_block *)((uint8_t *)(uintptr_t)i - offsetof(struct emu_block, insn));
	if (unlikely(++b->heat == c->xl->hot)) {
		/* Only where there is room: the cache is flushed by decode.c (at the run loop, never
		 * under running translated code); until then the block stays with its handlers. */
		if (emu_xlate_room(c)) {
			int st = xlate_block(c, b, emu_block_bytes(b));
			if (st)
				return st;
		} else {
			b->heat = 0;
		}
		return b->entry(c, i);
	}
	return i->fn(c, i);
}
