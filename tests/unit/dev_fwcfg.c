/* SPDX-License-Identifier: MIT */
/*
 * fw_cfg (src/dev/fw_cfg.c) against QEMU docs/specs/fw_cfg.rst, traditional interface: the
 * signature "QEMU", the ID (traditional interface, no DMA), RAM size (64-bit little-endian), CPU
 * counts (16-bit), the file directory (big-endian count: 0); selecting rewinds; reads past an
 * item's end and of unknown items return 0. Read as kvm-unit-tests' lib/x86/fwcfg.c does: select,
 * then one byte at a time.
 */
#include <stdio.h>

#include "dev/dev.h"

static int failures;
#define CHECK_EQ(a, b) do { unsigned long long _a = (a), _b = (b); if (_a != _b) { \
	fprintf(stderr, "%s:%d: %s = 0x%llx, expected 0x%llx\n", __FILE__, __LINE__, #a, _a, _b); failures++; } } while (0)

static uint64_t get(struct fw_cfg *f, uint16_t key, unsigned n)
{
	fw_cfg_select(f, key);
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++) {
		uint8_t b = fw_cfg_read_data(f);
		if (i < 8)
			v |= (uint64_t)b << (8 * i);
		else if (b)
			v = ~0ull; /* a nonzero byte past the 8th: never expected here */
	}
	return v;
}

int main(void)
{
	struct fw_cfg f;
	fw_cfg_init(&f, 5ull << 30, 7);
	CHECK_EQ(get(&f, FW_CFG_SIGNATURE, 4), 0x554d4551); /* "QEMU" */
	CHECK_EQ(get(&f, FW_CFG_ID, 4), 1);
	CHECK_EQ(get(&f, FW_CFG_RAM_SIZE, 8), 5ull << 30);
	CHECK_EQ(get(&f, FW_CFG_NB_CPUS, 2), 7);
	CHECK_EQ(get(&f, FW_CFG_MAX_CPUS, 2), 7);
	CHECK_EQ(get(&f, FW_CFG_FILE_DIR, 4), 0);
	/* Past the end: 0; reselecting rewinds. */
	CHECK_EQ(get(&f, FW_CFG_SIGNATURE, 8), 0x554d4551);
	fw_cfg_select(&f, FW_CFG_SIGNATURE);
	CHECK_EQ(fw_cfg_read_data(&f), 'Q');
	CHECK_EQ(fw_cfg_read_data(&f), 'E');
	fw_cfg_select(&f, FW_CFG_SIGNATURE);
	CHECK_EQ(fw_cfg_read_data(&f), 'Q');
	/* Unknown items, and the write and arch-local selector bits on unknown keys: 0. */
	CHECK_EQ(get(&f, 0x0002, 16), 0);
	CHECK_EQ(get(&f, 0x4000, 4), 0);
	CHECK_EQ(get(&f, 0x8003, 8), 0);
	CHECK_EQ(get(&f, 0xffff, 8), 0);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_fwcfg: all checks passed\n");
	return 0;
}
