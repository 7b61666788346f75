/* SPDX-License-Identifier: MIT */
/*
 * idt-mmio: points IDTR at 0xfeb00000, in the MMIO hole where nothing answers (reads are all ones,
 * as on hardware), then executes `int3` (command line "int3", the default) or `ud2` ("ud2"). Every
 * gate then reads as all ones: type 0x1f is no gate, so delivery raises #GP(vector), whose gate is
 * no better, #GP during #GP becomes #DF, and #GP during #DF shuts the CPU down (SDM Vol. 3 6.15,
 * Table 6-5): a triple fault, which blvm reports with status 125 and QEMU with a shutdown. The guest
 * prints `idt-mmio: survived` and exits 1 only if the exception was skipped.
 */
#include "rt.h"

int guest_main(void)
{
	const char *cmd = rt_cmdline();
	bool ud = cmd[0] == 'u';
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr = { 0xfff, 0xfeb00000 };
	rt_printf("idt-mmio: IDT at 0x%llx, executing %s\n", (unsigned long long)idtr.base, ud ? "ud2" : "int3");
	__asm__ volatile("lidt %0" : : "m"(idtr));
	if (ud)
		__asm__ volatile("ud2");
	else
		__asm__ volatile("int3");
	rt_puts("idt-mmio: survived\n");
	return RT_EXIT_FAIL;
}
