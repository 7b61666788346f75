/* SPDX-License-Identifier: MIT */
/*
 * The emu engine's instruction table (insn.def) as C: the row type, its flags, the CPUID features a
 * row can name, and the select functions' signature. Used by exec*.c (selection) and by the test
 * that checks the table (tests/unit/emu_insn_table.c).
 */
#ifndef BLVM_EMU_INSN_H
#define BLVM_EMU_INSN_H

#include "emu/emu.h"

/* FLAGS column (insn.def says what each means) */
#define R_LOCK 0x01
#define R_END 0x02
#define R_FIRST 0x04
#define R_FLAT 0x08
#define R_FLATANY 0x10
#define R_HINT 0x20

/* FEATURE column: CPUID leaf, register, bit as the SDM's CPUID table names them */
#define EMU_FEATURES(X)                                  \
	X(NONE, 0, 0, 0)                                 \
	X(TSC, 1, 3, 4)                                  \
	X(MSR, 1, 3, 5)                                  \
	X(CX8, 1, 3, 8)                                  \
	X(CMOV, 1, 3, 15)                                \
	X(CLFSH, 1, 3, 19)                               \
	X(SSE, 1, 3, 25)                                 \
	X(SSE2, 1, 3, 26)                                \
	X(CX16, 1, 2, 13)                                \
	X(POPCNT, 1, 2, 23)                              \
	X(BMI1, 7, 1, 3)                                 \
	X(SMAP, 7, 1, 20)                                \
	X(CLFLUSHOPT, 7, 1, 23)                          \
	X(RDPID, 7, 2, 22)                               \
	X(PKU, 7, 2, 3)                                  \
	X(LAHF, 0x80000001, 2, 0)                        \
	X(ABM, 0x80000001, 2, 5)                         \
	X(PRFCHW, 0x80000001, 2, 8)                      \
	X(SYSCALL, 0x80000001, 3, 11)                    \
	X(RDTSCP, 0x80000001, 3, 27)                     \
	X(LM, 0x80000001, 3, 29)
#define EMU_FEAT_ENUM(N, L, R, B) FEAT_##N,
enum emu_feature { EMU_FEATURES(EMU_FEAT_ENUM) FEAT_COUNT };
#undef EMU_FEAT_ENUM
struct emu_feature_bit {
	const char *name;
	uint32_t leaf;  /* subleaf 0 */
	uint8_t reg;    /* 0 EAX, 1 EBX, 2 ECX, 3 EDX */
	uint8_t bit;
};
extern const struct emu_feature_bit emu_features[FEAT_COUNT];

/* Whether the guest's CPUID (emu_cpuid, subleaf 0) sets feature f's bit; FEAT_NONE is always there. */
bool emu_feature_advertised(struct emu_vcpu *c, unsigned f);

/* One select call: inputs, the row, and what the select function returns besides i. */
struct emu_sel {
	struct emu_vcpu *c;
	const ZydisDecodedInstruction *zi;
	const ZydisDecodedOperand *zo;
	struct emu_insn *i;
	const struct emu_row *row;
	emu_fn *flat; /* R_FLAT rows: the lin_flat variant of i->fn, or NULL */
};
typedef int emu_sel_fn(struct emu_sel *s);
/* or'ed into a select function's return value: this form's handler must begin its block */
#define SEL_FIRST 0x100

struct emu_row {
	emu_sel_fn *sel; /* NULL: not an integer instruction of this table */
	emu_fn *fn;
	uint8_t op;
	uint8_t flags;
	uint8_t feature;
};

/* OP column values of some families */
enum { MD_MUL, MD_IMUL, MD_DIV, MD_IDIV };              /* sel_muldiv */
enum { S_MOVS, S_STOS, S_LODS, S_CMPS, S_SCAS };        /* sel_string */
#define ALU_TEST 8                                       /* sel_alu: after EMU_ALU_* (alu.h) */

/* The row of a mnemonic (a row with sel NULL when the table has none). */
const struct emu_row *emu_insn_row(ZydisMnemonic m);

/* every select function and every handler the table names, declared from the table itself */
#define INSN(M, SEL, FN, OP, FLAGS, FEAT) emu_sel_fn SEL; emu_fn FN;
#include "emu/insn.def"
#undef INSN
#define NOFN ((emu_fn *)0) /* HANDLER column: the select function picks the handler */

#endif
