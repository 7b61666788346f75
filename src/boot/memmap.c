/* SPDX-License-Identifier: MIT */
/*
 * The one memory map of the machine: what hvm_start_info's memmap (PVH), the zero page's e820_table
 * (bzImage) and the Multiboot mmap all say, and how vm.c maps guest RAM into the engine.
 *
 * As QEMU's pc machine lays it out (hw/i386/pc_piix.c, pc_init1): with mem >= 0xe0000000 bytes
 * (max_ram_below_4g's default, 3.5 GiB) the RAM is split, and gigabyte_align (every current pc
 * machine type) moves the split to 3 GiB: RAM [0, 3 GiB) and [4 GiB, 4 GiB + mem - 3 GiB); below
 * that all of it sits under the 32-bit hole, where the I/O APIC (0xfec00000), the local APIC
 * (0xfee00000) and other MMIO live. Measured under QEMU 7.2 (-m 4G: 0x100000000 0x40000000 RAM;
 * -m 3584M: 0x100000000 0x20000000 RAM). The low entries are SeaBIOS's: conventional memory up to
 * the EBDA at 0x9fc00, the EBDA reserved; the BIOS area reserved from 0xe0000 (SeaBIOS reserves
 * from 0xf0000; blvm's ACPI tables live at 0xe0000, so the kernel must not reuse that page range).
 * SeaBIOS's own reservations (its tables at the top of low RAM, its ROM at 0xfffc0000) have no
 * counterpart in blvm and are not listed.
 */
#include "boot/boot.h"

#define LOWMEM_DEFAULT 0xe0000000ull /* pc_piix.c: max_ram_below_4g default */
#define LOWMEM_GIGABYTE_ALIGNED 0xc0000000ull
#define EBDA 0x9fc00ull
#define HIGH_RAM 0x100000ull
#define FOUR_GIB 0x100000000ull

uint64_t blvm_ram_below_4g(uint64_t mem)
{
	return mem >= LOWMEM_DEFAULT ? LOWMEM_GIGABYTE_ALIGNED : mem;
}

unsigned blvm_memmap(uint64_t mem, struct blvm_e820 *map, unsigned max)
{
	uint64_t low = blvm_ram_below_4g(mem);
	struct blvm_e820 m[] = {
		{ 0, EBDA, E820_RAM },
		{ EBDA, 0xa0000 - EBDA, E820_RESERVED },
		{ BLVM_BIOS_AREA_GPA, BLVM_BIOS_AREA_END - BLVM_BIOS_AREA_GPA, E820_RESERVED },
		{ HIGH_RAM, low - HIGH_RAM, E820_RAM }, /* mem >= 2 MiB (vm.c) */
		{ FOUR_GIB, mem - low, E820_RAM },
	};
	unsigned n = mem > low ? 5 : 4;
	if (n > max)
		n = max;
	for (unsigned i = 0; i < n; i++)
		map[i] = m[i];
	return n;
}
