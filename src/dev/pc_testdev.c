/* SPDX-License-Identifier: MIT */
/*
 * QEMU's pc-testdev (hw/misc/pc-testdev.c), the device the KVM community's test suite asks for
 * with `-device pc-testdev` (kvm-unit-tests' x86/run): it is always present in blvm, on ports and
 * addresses nothing else uses.
 *   0xe0-0xe3   a 32-bit register: a write of N bytes at 0xe0 + k replaces those bytes, a read
 *               returns the register shifted right by 8k (the I/O tests of x86/emulator.c);
 *   0xe4-0xe7   "flush page": QEMU makes the page written here read-only and back to flush the
 *               host TLB; blvm's engines keep no host mapping to flush, so a write does nothing;
 *   0x2000-0x2017  IRQ lines: a write of V to 0x2000 + N sets ISA IRQ line N to (V != 0), through
 *               blvm_irq_line as any device's pin (x86/ioapic.c's set_irq_line);
 *   0xff000000-0xff00ffff  64 KiB of MMIO-backed memory ("iomem": reads return what was written).
 * Reads of the flush and IRQ ports return 0, as QEMU's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

#define TESTDEV_IOPORT 0xe0
#define TESTDEV_FLUSH 0xe4
#define TESTDEV_IRQ 0x2000
#define TESTDEV_IRQ_LINES 24
#define TESTDEV_IOMEM 0xff000000ull
#define TESTDEV_IOMEM_LEN 0x10000

struct pc_testdev {
	struct blvm_vm *vm;
	uint32_t ioport_data;
	uint8_t iomem[TESTDEV_IOMEM_LEN];
};

static void ioport_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
			  unsigned size)
{
	struct pc_testdev *t = opaque;
	(void)vcpu;
	uint32_t v = t->ioport_data >> (8 * offset);
	for (unsigned i = 0; i < size; i++) {
		if (is_write) {
			unsigned sh = 8 * (unsigned)(offset + i);
			t->ioport_data = (t->ioport_data & ~(0xffu << sh)) | (uint32_t)data[i] << sh;
		} else {
			data[i] = (uint8_t)(v >> (8 * i));
		}
	}
}

static void flush_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
			 unsigned size)
{
	(void)opaque, (void)vcpu, (void)offset;
	if (!is_write)
		memset(data, 0, size);
}

static void irq_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
		       unsigned size)
{
	struct pc_testdev *t = opaque;
	(void)vcpu;
	if (!is_write) {
		memset(data, 0, size);
		return;
	}
	bool level = false;
	for (unsigned i = 0; i < size; i++)
		level |= data[i] != 0;
	blvm_irq_line(t->vm, (unsigned)offset, level);
}

static void iomem_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
			 unsigned size)
{
	struct pc_testdev *t = opaque;
	(void)vcpu;
	if (is_write)
		memcpy(t->iomem + offset, data, size);
	else
		memcpy(data, t->iomem + offset, size);
}

int dev_pc_testdev_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	struct pc_testdev *t = calloc(1, sizeof *t);
	if (!t || blvm_bus_add_device(&vm->bus, t, free) != 0) {
		free(t);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->vm = vm;
	const struct blvm_region r[] = {
		{ "pc-testdev-ioport", BLVM_SPACE_PIO, TESTDEV_IOPORT, 4, ioport_access, t },
		{ "pc-testdev-flush", BLVM_SPACE_PIO, TESTDEV_FLUSH, 4, flush_access, t },
		{ "pc-testdev-irq", BLVM_SPACE_PIO, TESTDEV_IRQ, TESTDEV_IRQ_LINES, irq_access, t },
		{ "pc-testdev-iomem", BLVM_SPACE_MMIO, TESTDEV_IOMEM, TESTDEV_IOMEM_LEN, iomem_access, t },
	};
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
		if (blvm_bus_register(&vm->bus, &r[i]) != 0) {
			snprintf(err, errlen, "cannot register %s", r[i].name);
			return -1;
		}
	return 0;
}
