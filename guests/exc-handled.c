/* SPDX-License-Identifier: MIT */
/*
 * exc-handled: the guest's own #UD handler. It checks the frame (vector 6, no error code, RIP at
 * the ud2, kernel CS), writes a register the interrupted code reads back, skips the 2-byte ud2
 * and returns. Three times; then prints "handled 3 exceptions" and exits 0.
 */
#include "rt.h"

#define MAGIC 0xb1b1000000000000ull

static volatile unsigned handled;
static volatile unsigned bad;

static void on_ud(struct rt_frame *f)
{
	const uint8_t *insn = (const uint8_t *)(uintptr_t)f->rip;
	if (f->vector != 6 || f->error != 0 || f->cs != RT_SEL_CODE64 || insn[0] != 0x0f || insn[1] != 0x0b) {
		rt_printf("bad #UD frame: vector=%lu error=0x%lx cs=0x%lx rip=0x%lx\n", f->vector, f->error,
			  f->cs, f->rip);
		bad++;
	}
	handled++;
	f->rax = MAGIC + handled; /* the stub must restore the GPRs from the frame */
	f->rip += 2;              /* ud2 is 0f 0b */
}

int guest_main(void)
{
	rt_set_handler(6, on_ud);
	for (unsigned i = 1; i <= 3; i++) {
		uint64_t rax = 0;
		__asm__ volatile("ud2" : "+a"(rax) : : "memory");
		if (rax != MAGIC + i) {
			rt_printf("after #%u: rax=0x%lx, want 0x%llx\n", i, rax, MAGIC + i);
			bad++;
		}
	}
	rt_set_handler(6, NULL);
	rt_printf("handled %u exceptions\n", handled);
	return handled == 3 && !bad ? RT_EXIT_OK : RT_EXIT_FAIL;
}
