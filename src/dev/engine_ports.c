/* SPDX-License-Identifier: MIT */
/*
 * The ports whose devices live in the engine, as KVM keeps them in the kernel: the 8259 pair and
 * its edge/level registers (KVM_CREATE_IRQCHIP: kvm_pic_init registers 0x20-0x21, 0xa0-0xa1,
 * 0x4d0-0x4d1) and the 8254 with port 0x61 (KVM_CREATE_PIT2 with KVM_PIT_SPEAKER_DUMMY: 0x40-0x43,
 * and 0x61 the one speaker port it answers). An access wholly on them never reaches the monitor.
 * One that also covers a port of the monitor's (`inw 0x60`: the i8042's 0x60 and the PIT's 0x61)
 * exits whole, as KVM hands user space any access no in-kernel range contains (kvm_io_bus_cmp);
 * the engine has moved its bytes already (src/emu/irqchip.c emu_irq_pio). So the registry claims
 * these ports with a handler that does nothing (reads: all ones, which the engine's bytes
 * replace): a byte of the engine's is not unclaimed (--stats), and the rest of the access goes
 * where it goes.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/vmm.h"

static void engine_port_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write,
			       uint8_t *data, unsigned size)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	if (!is_write)
		memset(data, 0xff, size);
}

int dev_engine_ports_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	static const struct { const char *name; uint16_t base, len; } ports[] = {
		{ "8259 master (in the engine)", 0x20, 2 },
		{ "8259 slave (in the engine)", 0xa0, 2 },
		{ "8259 ELCR (in the engine)", 0x4d0, 2 },
		{ "8254 (in the engine)", 0x40, 4 },
		{ "port 0x61 (in the engine)", 0x61, 1 },
	};
	for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
		struct blvm_region r = { .name = ports[i].name, .space = BLVM_SPACE_PIO, .base = ports[i].base,
					 .len = ports[i].len, .access = engine_port_access, .opaque = vm };
		if (blvm_bus_register(&vm->bus, &r) != 0) {
			snprintf(err, errlen, "cannot register %s", r.name);
			return -1;
		}
	}
	return 0;
}
