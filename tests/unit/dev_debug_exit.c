/* SPDX-License-Identifier: MIT */
/*
 * isa-debug-exit as blvm has it (src/dev/debug_exit.c), through the registry of a real device set:
 * QEMU's `-device isa-debug-exit,iobase=0xf4,iosize=4`, so a write of every size (byte, word,
 * dword) at every port 0xf4-0xf7 it covers ends the VM as BLVM_END_GUEST_EXIT with the value V
 * written; blvm's status is V & 0xff (docs/DESIGN.md "Booting", README "exit"), where QEMU's process
 * exits with (V << 1) | 1 (hw/misc/debugexit.c: exit((val << 1) | 1)), which the shell sees as
 * ((V << 1) | 1) & 0xff: blvm's guests (guests/) print their verdict and write it as it is.
 * Reads return 0 and end nothing; the ports beside the range (0xf3, 0xf8) are not the device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/vmm.h"

static int failures;
#define CHECK_EQ(a, b) do { unsigned long long _a = (a), _b = (b); if (_a != _b) { \
	fprintf(stderr, "%s:%d: %s = 0x%llx, expected 0x%llx\n", __FILE__, __LINE__, #a, _a, _b); failures++; } } while (0)

static uint32_t io(struct blvm_vm *vm, uint16_t port, bool write, uint32_t v, unsigned size)
{
	uint8_t d[4];
	memcpy(d, &v, 4);
	blvm_io(vm, NULL, port, write, d, size);
	uint32_t r = 0;
	memcpy(&r, d, size);
	return r;
}

/* A fresh end: blvm_vm_end keeps the first reason only. */
static void reset_end(struct blvm_vm *vm)
{
	atomic_store(&vm->ending, false);
	memset(&vm->result, 0, sizeof vm->result);
}

int main(void)
{
	struct blvm_vm *vm = calloc(1, sizeof *vm);
	struct blvm_vm_config cfg = BLVM_VM_CONFIG_DEFAULT;
	cfg.mem_size = 2u << 20;
	cfg.console = fopen("/dev/null", "w");
	vm->cfg = cfg;
	static struct blvm_engine_ops ops;
	vm->ops = &ops;
	vm->ram = mmap(NULL, cfg.mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char err[200];
	CHECK_EQ(blvm_devices_create(vm, err, sizeof err), 0);
	vm->vcpus = calloc(cfg.nr_vcpus, sizeof *vm->vcpus); /* no engine vCPU (ev NULL): none to kick at the end */

	static const unsigned sizes[] = { 1, 2, 4 };
	/* values whose low byte differs from the rest, and one with bit 7 set */
	static const uint32_t values[] = { 0x12345601, 0x000000fe, 0x00000a00, 0x7f };
	unsigned writes = 0;
	for (uint16_t port = DEV_DEBUG_EXIT_BASE; port < DEV_DEBUG_EXIT_BASE + DEV_DEBUG_EXIT_LEN; port++)
		for (unsigned s = 0; s < 3; s++) {
			unsigned size = sizes[s];
			if (port + size > DEV_DEBUG_EXIT_BASE + DEV_DEBUG_EXIT_LEN)
				continue; /* would run past the device */
			for (unsigned k = 0; k < sizeof values / sizeof values[0]; k++) {
				uint32_t v = size == 4 ? values[k] : values[k] & ((1u << (8 * size)) - 1);
				reset_end(vm);
				CHECK_EQ(io(vm, port, false, 0xffffffff, size), 0); /* a read: 0, no end */
				CHECK_EQ(atomic_load(&vm->ending), false);
				io(vm, port, true, v, size);
				writes++;
				if (!atomic_load(&vm->ending) || vm->result.reason != BLVM_END_GUEST_EXIT) {
					fprintf(stderr, "port 0x%x, %u byte(s), 0x%x: the VM did not end as a guest exit\n",
						port, size, v);
					failures++;
					continue;
				}
				CHECK_EQ(vm->result.exit_status, v & 0xff);
			}
		}
	CHECK_EQ(writes, (4 + 3 + 1) * 4); /* bytes at 4 ports, words at 3, a dword at 0xf4; 4 values */
	/* the neighbours are not the device */
	reset_end(vm);
	io(vm, DEV_DEBUG_EXIT_BASE - 1, true, 1, 1);
	io(vm, DEV_DEBUG_EXIT_BASE + DEV_DEBUG_EXIT_LEN, true, 1, 1);
	CHECK_EQ(atomic_load(&vm->ending), false);

	blvm_bus_destroy(&vm->bus);
	fclose(vm->cfg.console);
	munmap(vm->ram, cfg.mem_size);
	free(vm->vcpus);
	free(vm);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_debug_exit: all checks passed (%u writes)\n", writes);
	return 0;
}
