/* SPDX-License-Identifier: MIT */
/*
 * Hostile guest input: 500 000 random accesses (random port or MMIO address near and inside every
 * device, random size 1/2/4/8, random data, reads and writes) through the registry of a real VM's
 * devices (blvm_devices_create on a VM with no engine and no vCPUs). Nothing may crash (run under
 * ASan/UBSan in `make check SAN=1`), hang, or read outside a device; every read of an unclaimed byte
 * is all ones (checked at the I/O APIC's page, which is the engine's, not the monitor's). The VM may end (poweroff, reset, debug exit): the test then starts a fresh one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/vmm.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static struct blvm_vm *make_vm(void)
{
	struct blvm_vm *vm = calloc(1, sizeof *vm);
	struct blvm_vm_config cfg = BLVM_VM_CONFIG_DEFAULT;
	cfg.mem_size = 2u << 20;
	cfg.nr_vcpus = 4;
	cfg.console = fopen("/dev/null", "w");
	vm->cfg = cfg;
	vm->ops = &blvm_engine_emu; /* never reached: no engine VM, no vCPUs */
	vm->cfg.nr_vcpus = 4;
	vm->ram = mmap(NULL, cfg.mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_mutex_init(&vm->lock, NULL);
	char err[200];
	CHECK(blvm_devices_create(vm, err, sizeof err) == 0);
	CHECK(vm->acpi_rsdp == BLVM_ACPI_RSDP_GPA);
	vm->cfg.nr_vcpus = 0; /* blvm_vm_end kicks no vCPU */
	CHECK(blvm_console_start(vm->console) == 0);
	return vm;
}

static void free_vm(struct blvm_vm *vm)
{
	blvm_bus_destroy(&vm->bus);
	fclose(vm->cfg.console);
	munmap(vm->ram, vm->cfg.mem_size);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

int main(void)
{
	static const uint16_t bases[] = { 0x3f8, 0xf4, 0x70, 0x60, 0x64, 0x510, 0x600, 0xcf9, 0xe0, 0x2000, 0x80, 0xfffe, 0 };
	struct blvm_vm *vm = make_vm();
	unsigned ends = 0;
	for (unsigned i = 0; i < 500000; i++) {
		if (atomic_load(&vm->ending)) {
			ends++;
			free_vm(vm);
			vm = make_vm();
		}
		uint64_t r = next();
		unsigned size = 1u << (r & 3);
		bool write = (r >> 2) & 1;
		uint8_t data[8];
		uint64_t d = next();
		memcpy(data, &d, 8);
		/* Debug-exit writes end the VM at once: keep them rare so the other devices get deep. */
		uint16_t port = (uint16_t)(bases[(r >> 8) % (sizeof bases / sizeof bases[0])] + ((r >> 16) & 15) - 2);
		if (write && port >= 0xf2 && port <= 0xfa && (r >> 24) % 64)
			write = false;
		pthread_mutex_lock(&vm->lock);
		if ((r >> 32) % 16 == 0) {
			uint64_t gpa = ((r >> 39) & 1 ? 0xff00f000ull : 0xfec00000ull) + ((r >> 40) & 0x1fff);
			uint8_t m[8];
			memcpy(m, data, 8);
			blvm_mmio(vm, NULL, gpa, write, m, size);
			if (!write && gpa < 0xff000000ull) /* nothing at the I/O APIC's address in the monitor */
				CHECK(memcmp(m, "\xff\xff\xff\xff\xff\xff\xff\xff", size) == 0);
		} else {
			blvm_io(vm, NULL, port, write, data, size > 4 ? 4 : size);
		}
		pthread_mutex_unlock(&vm->lock);
	}
	free_vm(vm);
	printf("dev_random: 500000 accesses, %u VM ends\n", ends);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_random: all checks passed\n");
	return 0;
}
