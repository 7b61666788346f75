/* SPDX-License-Identifier: MIT */
/*
 * QEMU's pc-testdev as blvm has it (src/dev/pc_testdev.c), through the registry of a real device
 * set: the 32-bit register at 0xe0 by bytes, words and dwords at each offset (QEMU's
 * test_ioport_read/write), the flush port, the IRQ-line ports reaching the engine's KVM_IRQ_LINE
 * with level 0/1, the 64 KiB iomem at 0xff000000.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/vmm.h"

static int failures;
#define CHECK_EQ(a, b) do { unsigned long long _a = (a), _b = (b); if (_a != _b) { \
	fprintf(stderr, "%s:%d: %s = 0x%llx, expected 0x%llx\n", __FILE__, __LINE__, #a, _a, _b); failures++; } } while (0)

static unsigned last_irq, last_level, irq_calls;
static int fake_irq_line(struct blvm_engine_vm *vm, const struct kvm_irq_level *l)
{
	(void)vm;
	last_irq = l->irq;
	last_level = l->level;
	irq_calls++;
	return 0;
}

static uint32_t io(struct blvm_vm *vm, uint16_t port, bool write, uint32_t v, unsigned size)
{
	uint8_t d[4];
	memcpy(d, &v, 4);
	blvm_io(vm, NULL, port, write, d, size);
	uint32_t r = 0;
	memcpy(&r, d, size);
	return r;
}

int main(void)
{
	static struct blvm_engine_ops ops;
	ops.irq_line = fake_irq_line;
	struct blvm_vm *vm = calloc(1, sizeof *vm);
	struct blvm_vm_config cfg = BLVM_VM_CONFIG_DEFAULT;
	cfg.mem_size = 2u << 20;
	cfg.console = fopen("/dev/null", "w");
	vm->cfg = cfg;
	vm->ops = &ops;
	vm->ram = mmap(NULL, cfg.mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char err[200];
	CHECK_EQ(blvm_devices_create(vm, err, sizeof err), 0);
	vm->ev = (struct blvm_engine_vm *)vm; /* any non-NULL engine VM: only fake_irq_line sees it */

	io(vm, 0xe0, true, 0x12345678, 4);
	CHECK_EQ(io(vm, 0xe0, false, 0, 4), 0x12345678);
	CHECK_EQ(io(vm, 0xe1, false, 0, 2), 0x3456);
	CHECK_EQ(io(vm, 0xe3, false, 0, 1), 0x12);
	io(vm, 0xe2, true, 0xabcd, 2);
	CHECK_EQ(io(vm, 0xe0, false, 0, 4), 0xabcd5678);
	io(vm, 0xe1, true, 0xee, 1);
	CHECK_EQ(io(vm, 0xe0, false, 0, 4), 0xabcdee78);
	io(vm, 0xe4, true, 0x1000, 4);
	CHECK_EQ(io(vm, 0xe4, false, 0, 4), 0);
	io(vm, 0x2000 + 10, true, 1, 1);
	CHECK_EQ(last_irq, 10);
	CHECK_EQ(last_level, 1);
	io(vm, 0x2000 + 10, true, 0, 1);
	CHECK_EQ(last_level, 0);
	io(vm, 0x2000 + 23, true, 0x100, 4); /* runs past the last line: 0x2017 gets 0x00 */
	CHECK_EQ(last_irq, 23);
	CHECK_EQ(last_level, 0);
	uint8_t m[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, r[8] = { 0 };
	blvm_mmio(vm, NULL, 0xff00fff8, true, m, 8);
	blvm_mmio(vm, NULL, 0xff00fff8, false, r, 8);
	CHECK_EQ(memcmp(m, r, 8), 0);
	CHECK_EQ(vm->mmio_reads + vm->mmio_writes, 0);
	blvm_mmio(vm, NULL, 0xff00fffc, false, r, 8); /* half past the end: unclaimed bytes all ones */
	CHECK_EQ(r[0], 5);
	CHECK_EQ(r[4], 0xff);
	CHECK_EQ(vm->mmio_reads, 1);

	blvm_bus_destroy(&vm->bus);
	fclose(vm->cfg.console);
	munmap(vm->ram, cfg.mem_size);
	free(vm);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_testdev: all checks passed\n");
	return 0;
}
