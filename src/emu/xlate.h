/* SPDX-License-Identifier: MIT */
/*
 * The emu engine's binary translator (issue 16, step a) and the executable code arena it shares
 * with fpu.c. See xlate.c for the picture and docs/HACKING.md, "The translator".
 */
#ifndef BLVM_EMU_XLATE_H
#define BLVM_EMU_XLATE_H

#include <stddef.h>
#include <stdint.h>

struct emu_vcpu;
struct emu_block;

/* Host code written at run time: a memfd mapped twice, written through the RW view w and executed
 * through the RX view x (never writable and executable at once: W^X). */
struct emu_code_arena {
	uint8_t *w;
	const uint8_t *x;
	size_t size;
};
int emu_code_arena_map(struct emu_code_arena *a, size_t size, const char *name);
void emu_code_arena_unmap(struct emu_code_arena *a);

/* The vCPU's translator (NULL when the VM runs with --translate=off). */
int emu_xlate_init(struct emu_vcpu *c);
void emu_xlate_free(struct emu_vcpu *c);
/* Drops every translation (the decode cache is flushed with it: blocks point into the cache). */
void emu_xlate_flush(struct emu_vcpu *c);
/* Room for the translation of one more block of at most EMU_BLOCK_MAX instructions; the caller
 * flushes the decode cache (and with it this cache) when there is none, then decodes. */
int emu_xlate_room(const struct emu_vcpu *c);
/* The entry of a block not translated yet (decode.c): counts its runs and translates it once hot,
 * from the bytes decode.c kept after its instructions; runs it either way. */
int emu_xlate_cold(struct emu_vcpu *c, const struct emu_insn *i);
/* Where a translated branch enters a block that has no translation of its own (struct emu_block's
 * chain; emit_chain): a stub that calls b->entry as the run loop would. */
const void *emu_xlate_chain_stub(const struct emu_vcpu *c);
/* Guest instructions executed as re-emitted host instructions so far (the rest ran their handler). */
uint64_t emu_xlate_native(const struct emu_vcpu *c);

#endif
