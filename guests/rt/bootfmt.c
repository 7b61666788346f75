/* SPDX-License-Identifier: MIT */
/* The boot-format variants' half of the runtime (guests.mk links it into NAME-mb and NAME-bz only). */
#include "rt.h"

/* Set by the Multiboot and bzImage entries (mb.S, bz.S). */
extern uint64_t rt_mb_info_paddr;
extern uint64_t rt_boot_params_paddr;

/*
 * The Multiboot and bzImage variants get their boot information in another shape; it is turned into
 * a start_info here so that every guest reads one structure. Multiboot 0.6.96, 3.3 "Boot
 * information format"; Linux's struct boot_params (arch/x86/include/uapi/asm/bootparam.h).
 */
#define CONV_MAP_MAX 32
static struct hvm_start_info conv_si;
static struct hvm_memmap_table_entry conv_map[CONV_MAP_MAX];
static struct hvm_modlist_entry conv_mods[4];

static uint32_t rd32(uint64_t pa) { return *(const volatile uint32_t *)(uintptr_t)pa; }
static uint64_t rd64(uint64_t pa) { return *(const volatile uint64_t *)(uintptr_t)pa; }

static const struct hvm_start_info *from_multiboot(uint64_t mbi)
{
	uint32_t flags = rd32(mbi);
	conv_si = (struct hvm_start_info){ .magic = HVM_START_MAGIC, .version = 1 };
	if (flags & (1u << 2))
		conv_si.cmdline_paddr = rd32(mbi + 16);
	if (flags & (1u << 3)) {
		uint32_t n = rd32(mbi + 20), a = rd32(mbi + 24);
		for (uint32_t i = 0; i < n && i < 4; i++) {
			uint32_t start = rd32(a + 16 * i), end = rd32(a + 16 * i + 4);
			conv_mods[i] = (struct hvm_modlist_entry){ start, end - start, rd32(a + 16 * i + 8), 0 };
			conv_si.nr_modules = i + 1;
		}
		conv_si.modlist_paddr = (uint64_t)(uintptr_t)conv_mods;
	}
	if (flags & (1u << 6)) {
		uint64_t p = rd32(mbi + 48), end = p + rd32(mbi + 44);
		unsigned n = 0;
		while (p + 24 <= end && n < CONV_MAP_MAX) {
			uint32_t size = rd32(p);
			conv_map[n++] = (struct hvm_memmap_table_entry){ rd64(p + 4), rd64(p + 12), rd32(p + 20), 0 };
			p += (uint64_t)size + 4;
		}
		conv_si.memmap_paddr = (uint64_t)(uintptr_t)conv_map;
		conv_si.memmap_entries = n;
	}
	return &conv_si;
}

static const struct hvm_start_info *from_boot_params(uint64_t bp)
{
	conv_si = (struct hvm_start_info){ .magic = HVM_START_MAGIC, .version = 1 };
	conv_si.cmdline_paddr = rd32(bp + 0x228) | (uint64_t)rd32(bp + 0xc8) << 32;
	uint64_t image = rd32(bp + 0x218) | (uint64_t)rd32(bp + 0xc0) << 32;
	uint64_t size = rd32(bp + 0x21c) | (uint64_t)rd32(bp + 0xc4) << 32;
	if (image) {
		conv_mods[0] = (struct hvm_modlist_entry){ image, size, 0, 0 };
		conv_si.nr_modules = 1;
		conv_si.modlist_paddr = (uint64_t)(uintptr_t)conv_mods;
	}
	unsigned n = *(const volatile uint8_t *)(uintptr_t)(bp + 0x1e8);
	if (n > CONV_MAP_MAX)
		n = CONV_MAP_MAX;
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = bp + 0x2d0 + 20 * i;
		conv_map[i] = (struct hvm_memmap_table_entry){ rd64(e), rd64(e + 8), rd32(e + 16), 0 };
	}
	conv_si.memmap_paddr = (uint64_t)(uintptr_t)conv_map;
	conv_si.memmap_entries = n;
	return &conv_si;
}

const struct hvm_start_info *rt_boot_convert(const char **format)
{
	if (rt_mb_info_paddr && rt_mb_info_paddr < (1ull << 32) - 0x100) {
		*format = "multiboot";
		return from_multiboot(rt_mb_info_paddr);
	}
	if (rt_boot_params_paddr && rt_boot_params_paddr < (1ull << 32) - 0x1000) {
		*format = "bzimage";
		return from_boot_params(rt_boot_params_paddr);
	}
	return NULL;
}
