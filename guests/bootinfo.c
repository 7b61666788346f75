/* SPDX-License-Identifier: MIT */
/*
 * bootinfo: what the loader handed over, in a form two loaders can be compared on (tests/sh/boot-formats.sh).
 * Built three ways from this one file: bootinfo (PVH ELF), bootinfo-mb (Multiboot, ELF32) and bootinfo-bz
 * (bzImage, 64-bit boot protocol). Prints the boot format, the command line, the memory map, each
 * module (the initrd) with its size and FNV-1a hash, and, when the map has RAM above 4 GiB, maps it
 * and writes and reads back its first and last words. Exits 0.
 */
#include "rt.h"

/* Page directories for 4-8 GiB (PDPT entries 4-7 of the runtime's identity map), 2 MiB pages. */
static uint64_t pd_high[4][512] __attribute__((aligned(4096)));
extern uint64_t rt_pdpt[];
/* The zero page (bzImage variant, rt/bz.S); weak: the PVH build has none. */
extern uint64_t rt_boot_params_paddr __attribute__((weak));

static uint64_t fnv1a(const uint8_t *p, uint64_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint64_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int check_high_ram(uint64_t base, uint64_t size)
{
	uint64_t end = base + size;
	if (end > (8ull << 30))
		end = 8ull << 30;
	for (unsigned k = 0; k < 4; k++) {
		for (unsigned i = 0; i < 512; i++)
			pd_high[k][i] = ((4ull << 30) + ((uint64_t)k << 30) + ((uint64_t)i << 21)) | 0x83;
		rt_pdpt[4 + k] = (uint64_t)(uintptr_t)pd_high[k] | 0x3;
	}
	write_cr3(read_cr3());
	volatile uint64_t *first = (volatile uint64_t *)(uintptr_t)base;
	volatile uint64_t *last = (volatile uint64_t *)(uintptr_t)(end - 8);
	*first = 0x1234567887654321ull;
	*last = ~0x1234567887654321ull;
	int ok = *first == 0x1234567887654321ull && *last == ~0x1234567887654321ull;
	rt_printf("high ram: wrote and read 0x%lx and 0x%lx: %s\n", (unsigned long)base, (unsigned long)(end - 8),
		  ok ? "ok" : "MISMATCH");
	return ok;
}

int guest_main(void)
{
	rt_printf("boot: %s\n", rt_boot_format());
	rt_printf("cmdline: \"%s\"\n", rt_cmdline());
	unsigned n = rt_memmap_count();
	rt_printf("memmap: %u entries\n", n);
	uint64_t high_base = 0, high_size = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct hvm_memmap_table_entry *e = rt_memmap_entry(i);
		rt_printf("  0x%lx 0x%lx type %u\n", e->addr, e->size, e->type);
		if (e->type == RT_E820_RAM && e->addr >= (4ull << 30) && !high_base)
			high_base = e->addr, high_size = e->size;
	}
	if (&rt_boot_params_paddr && rt_boot_params_paddr) {
		/* The setup header as the loader left it in the zero page, byte for byte, and the fields
		 * outside it that the loader fills: the test compares them with the file and the options. */
		const volatile uint8_t *bp = (const volatile uint8_t *)(uintptr_t)rt_boot_params_paddr;
		rt_printf("zeropage hdr:");
		for (unsigned o = 0x1f1; o < 0x26c; o++)
			rt_printf(" %02x", bp[o]);
		rt_printf("\nzeropage: acpi_rsdp_addr 0x%lx ext_ramdisk 0x%x 0x%x ext_cmd_line_ptr 0x%x e820_entries %u "
			  "sentinel %u\n", *(const volatile uint64_t *)(bp + 0x70), *(const volatile uint32_t *)(bp + 0xc0),
			  *(const volatile uint32_t *)(bp + 0xc4), *(const volatile uint32_t *)(bp + 0xc8), bp[0x1e8], bp[0x1ef]);
	}
	const struct hvm_start_info *si = rt_start_info();
	unsigned mods = si ? si->nr_modules : 0;
	rt_printf("modules: %u\n", mods);
	for (unsigned i = 0; i < mods; i++) {
		const struct hvm_modlist_entry *m = (const struct hvm_modlist_entry *)(uintptr_t)si->modlist_paddr + i;
		rt_printf("module %u: %lu bytes, fnv1a 0x%016lx, cmdline \"%s\"\n", i, (unsigned long)m->size,
			  (unsigned long)fnv1a((const uint8_t *)(uintptr_t)m->paddr, m->size),
			  m->cmdline_paddr ? (const char *)(uintptr_t)m->cmdline_paddr : "");
	}
	if (high_base && !check_high_ram(high_base, high_size))
		return RT_EXIT_FAIL;
	return RT_EXIT_OK;
}
