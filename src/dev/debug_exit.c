/* SPDX-License-Identifier: MIT */
/*
 * QEMU's isa-debug-exit as `-device isa-debug-exit,iobase=0xf4,iosize=4` configures it: a write of
 * any size to any of ports 0xf4-0xf7 ends the VM. blvm's status is the value written, V & 0xff
 * (docs/DESIGN.md "Booting"), where QEMU exits with (V << 1) | 1. Reads return 0, as QEMU's.
 */
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

static void debug_exit_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write,
			      uint8_t *data, unsigned size)
{
	struct blvm_vm *vm = opaque;
	(void)offset;
	if (!is_write) {
		memset(data, 0, size);
		return;
	}
	uint32_t v = 0;
	for (unsigned i = 0; i < size && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	blvm_vm_end(vm, BLVM_END_GUEST_EXIT, (int)(v & 0xff), blvm_vcpu_rip(vcpu), "%s", "");
}

int dev_debug_exit_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	struct blvm_region r = { .name = "isa-debug-exit", .space = BLVM_SPACE_PIO, .base = DEV_DEBUG_EXIT_BASE,
				 .len = DEV_DEBUG_EXIT_LEN, .access = debug_exit_access, .opaque = vm };
	if (blvm_bus_register(&vm->bus, &r) != 0) {
		snprintf(err, errlen, "cannot register %s", r.name);
		return -1;
	}
	return 0;
}
