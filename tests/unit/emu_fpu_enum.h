/* SPDX-License-Identifier: MIT */
/*
 * Every x87 / MMX / SSE..SSE4.2 / FXSR / XSAVE instruction form Zydis knows, found by decoding: the
 * legacy opcode maps (0F xx, 0F 38 xx, 0F 3A xx with an imm8) and the x87 escapes D8..DF, each with the
 * prefixes none/66/F2/F3, REX none/W/RB/WRB, and ModRM register forms (all 64 reg x rm pairs) and
 * memory forms ([rsi] / [r14] and [rsi+d8] / [r14+d8], every reg field). A "form" is the mnemonic
 * with the shape of its visible operands (type, register class, size): what one handler must cover.
 * Used by emu_fpu_forms.c (each advertised form has a handler) and emu_fpu_oracle.c (each against the
 * host).
 */
#ifndef EMU_FPU_ENUM_H
#define EMU_FPU_ENUM_H

#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

/* the ISA sets of issue 11 part (b), by Zydis's names */
static const ZydisISASet fe_sets[] = {
	ZYDIS_ISA_SET_X87,      ZYDIS_ISA_SET_FCMOV,    ZYDIS_ISA_SET_SSE3X87,  ZYDIS_ISA_SET_PENTIUMMMX,
	ZYDIS_ISA_SET_SSE,      ZYDIS_ISA_SET_SSEMXCSR, ZYDIS_ISA_SET_SSE2,     ZYDIS_ISA_SET_SSE2MMX,
	ZYDIS_ISA_SET_SSE3,     ZYDIS_ISA_SET_SSSE3,    ZYDIS_ISA_SET_SSSE3MMX, ZYDIS_ISA_SET_SSE4,
	ZYDIS_ISA_SET_SSE42,    ZYDIS_ISA_SET_FXSAVE,   ZYDIS_ISA_SET_FXSAVE64, ZYDIS_ISA_SET_XSAVE,
	ZYDIS_ISA_SET_XSAVEOPT, ZYDIS_ISA_SET_PCLMULQDQ, ZYDIS_ISA_SET_MOVBE,
};

static int fe_in_sets(ZydisISASet s)
{
	for (size_t k = 0; k < sizeof fe_sets / sizeof fe_sets[0]; k++)
		if (fe_sets[k] == s)
			return 1;
	return 0;
}

/* The form's name: "MNEMONIC op,op,..." with op = xmm/mm/st/r32/m128/imm8... */
static void fe_form_name(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo, char *buf, size_t n)
{
	size_t at = (size_t)snprintf(buf, n, "%s", ZydisMnemonicGetString(zi->mnemonic));
	for (unsigned k = 0; k < zi->operand_count_visible && at + 16 < n; k++) {
		const ZydisDecodedOperand *o = &zo[k];
		const char *sep = k ? "," : " ";
		switch (o->type) {
		case ZYDIS_OPERAND_TYPE_REGISTER: {
			ZydisRegisterClass rc = ZydisRegisterGetClass(o->reg.value);
			const char *cn = rc == ZYDIS_REGCLASS_XMM ? "xmm" : rc == ZYDIS_REGCLASS_MMX ? "mm" :
					 rc == ZYDIS_REGCLASS_X87 ? "st" : "r";
			if (rc == ZYDIS_REGCLASS_X87 || o->visibility != ZYDIS_OPERAND_VISIBILITY_EXPLICIT)
				at += (size_t)snprintf(buf + at, n - at, "%s%s", sep,
						       ZydisRegisterGetString(o->reg.value));
			else if (rc == ZYDIS_REGCLASS_XMM || rc == ZYDIS_REGCLASS_MMX)
				at += (size_t)snprintf(buf + at, n - at, "%s%s", sep, cn);
			else
				at += (size_t)snprintf(buf + at, n - at, "%sr%u", sep, o->size);
			break;
		}
		case ZYDIS_OPERAND_TYPE_MEMORY:
			at += (size_t)snprintf(buf + at, n - at, "%sm%u", sep, o->size);
			break;
		case ZYDIS_OPERAND_TYPE_IMMEDIATE:
			at += (size_t)snprintf(buf + at, n - at, "%simm%u", sep, o->size);
			break;
		default:
			at += (size_t)snprintf(buf + at, n - at, "%s?", sep);
			break;
		}
	}
}

/* Calls cb for every decodable encoding (64-bit mode) whose ISA set is one of fe_sets. */
typedef void fe_cb(const uint8_t *b, unsigned len, const ZydisDecodedInstruction *zi,
		   const ZydisDecodedOperand *zo, void *arg);

static void fe_one(const ZydisDecoder *dec, const uint8_t *b, unsigned n, fe_cb *cb, void *arg)
{
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(dec, b, n, &zi, zo)))
		return;
	if (!fe_in_sets(zi.meta.isa_set))
		return;
	cb(b, zi.length, &zi, zo, arg);
}

static void fe_enumerate(fe_cb *cb, void *arg)
{
	ZydisDecoder dec;
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	static const uint8_t pfx[4] = { 0, 0x66, 0xf2, 0xf3 };
	static const uint8_t rex[4] = { 0, 0x48, 0x45, 0x4d };
	uint8_t modrm[64 + 16];
	unsigned nm = 0;
	for (unsigned r = 0; r < 8; r++)
		for (unsigned m = 0; m < 8; m++)
			modrm[nm++] = (uint8_t)(0xc0 | r << 3 | m);
	for (unsigned r = 0; r < 8; r++) {
		modrm[nm++] = (uint8_t)(0x06 | r << 3);
		modrm[nm++] = (uint8_t)(0x46 | r << 3);
	}
	for (unsigned p = 0; p < 4; p++)
		for (unsigned x = 0; x < 4; x++)
			for (unsigned map = 0; map < 4; map++)
				for (unsigned op = 0; op < 256; op++)
					for (unsigned k = 0; k < nm; k++) {
						uint8_t b[16];
						unsigned n = 0;
						if (map == 3 && (op < 0xd8 || op > 0xdf))
							continue; /* x87 escapes: no 0F */
						if (pfx[p])
							b[n++] = pfx[p];
						if (rex[x])
							b[n++] = rex[x];
						if (map != 3)
							b[n++] = 0x0f;
						if (map == 1)
							b[n++] = 0x38;
						if (map == 2)
							b[n++] = 0x3a;
						b[n++] = (uint8_t)op;
						b[n++] = modrm[k];
						b[n++] = 0x10; /* disp8 or imm8 */
						b[n++] = 0x05; /* imm8 after a disp8 */
						fe_one(&dec, b, n, cb, arg);
					}
	static const uint8_t fwait[1] = { 0x9b };
	fe_one(&dec, fwait, 1, cb, arg);
}

#endif
