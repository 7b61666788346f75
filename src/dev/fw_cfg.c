/* SPDX-License-Identifier: MIT */
/*
 * QEMU's firmware configuration device, traditional (non-DMA) interface, x86 ports (QEMU
 * docs/specs/fw_cfg.rst): a 16-bit write to the selector port 0x510 picks an item and rewinds it;
 * each 8-bit read of the data port 0x511 returns its next byte, 0 past its end or for an item that
 * does not exist. Writes to the data port are ignored, as QEMU has done since 2.4.
 *
 * Items: the signature "QEMU", the feature bitmap (traditional interface only, no DMA), the RAM size
 * (64-bit), the number of CPUs and the maximum (16-bit), and an empty file directory. The KVM
 * community's test suite (kvm-unit-tests, lib/x86/fwcfg.c) reads its CPU count and memory size here.
 */
#include <string.h>

#include "dev/dev.h"

static void le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void fw_cfg_init(struct fw_cfg *f, uint64_t ram_size, unsigned nr_vcpus)
{
	memset(f, 0, sizeof *f);
	le(f->id, 1, 4); /* bit 0: traditional interface; bit 1 (DMA) clear */
	le(f->ram_size, ram_size, 8);
	le(f->nb_cpus, nr_vcpus, 2);
	le(f->max_cpus, nr_vcpus, 2);
	memset(f->file_dir, 0, 4); /* big-endian count of files: none */
}

void fw_cfg_select(struct fw_cfg *f, uint16_t key)
{
	f->selector = key;
	f->offset = 0;
}

uint8_t fw_cfg_read_data(struct fw_cfg *f)
{
	static const uint8_t signature[4] = { 'Q', 'E', 'M', 'U' };
	const uint8_t *item = NULL;
	uint32_t len = 0;
	switch (f->selector) {
	case FW_CFG_SIGNATURE: item = signature; len = 4; break;
	case FW_CFG_ID: item = f->id; len = 4; break;
	case FW_CFG_RAM_SIZE: item = f->ram_size; len = 8; break;
	case FW_CFG_NB_CPUS: item = f->nb_cpus; len = 2; break;
	case FW_CFG_MAX_CPUS: item = f->max_cpus; len = 2; break;
	case FW_CFG_FILE_DIR: item = f->file_dir; len = 4; break;
	default: break;
	}
	if (!item || f->offset >= len)
		return 0;
	return item[f->offset++];
}

/* ---- fw_cfg on the VM: ports 0x510-0x511 ---------------------------------------------------------- */

#include <stdio.h>
#include <stdlib.h>

#include "vmm/vmm.h"

static void fw_cfg_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
			  unsigned size)
{
	struct fw_cfg *f = opaque;
	(void)vcpu;
	/* QEMU's combined x86 port pair (fw_cfg_comb_mem_ops): a 16-bit write selects, an 8-bit write
	 * goes to the data register (ignored), an 8-bit read of either port reads data; nothing else
	 * is valid there and reads as all ones. */
	if (is_write) {
		if (size == 2 && offset == 0)
			fw_cfg_select(f, (uint16_t)(data[0] | data[1] << 8));
		return;
	}
	if (size == 1)
		data[0] = fw_cfg_read_data(f);
	else
		memset(data, 0xff, size);
}

int dev_fw_cfg_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	struct fw_cfg *f = calloc(1, sizeof *f);
	if (!f || blvm_bus_add_device(&vm->bus, f, free) != 0) {
		free(f);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fw_cfg_init(f, vm->cfg.mem_size, vm->cfg.nr_vcpus);
	struct blvm_region r = { .name = "fw_cfg", .space = BLVM_SPACE_PIO, .base = DEV_FW_CFG_BASE, .len = 2,
				 .access = fw_cfg_access, .opaque = f };
	if (blvm_bus_register(&vm->bus, &r) != 0) {
		snprintf(err, errlen, "cannot register %s", r.name);
		return -1;
	}
	return 0;
}
