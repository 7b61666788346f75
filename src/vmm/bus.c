/* SPDX-License-Identifier: MIT */
/*
 * The device registry: port and MMIO ranges -> device handlers (src/dev/dev.h). An access that lies
 * wholly inside one device's range goes to that device as one access of its size. An access that
 * does not (a wide access running past the end of a device, or across two devices) is taken apart
 * into bytes, each going where its own address goes, as the bytes of an ISA cycle do; so `outl`
 * to the UART's last register cannot wrap round into its THR. Bytes nobody claims read as all
 * ones, as an unterminated ISA bus and unbacked physical addresses do on real hardware; writes to
 * them are counted for --stats ("unclaimed"), never silently lost, and the VM keeps running.
 */
#include <string.h>

#include "vmm/vmm.h"

int blvm_bus_register(struct blvm_bus *bus, const struct blvm_region *r)
{
	if (bus->nr_regions == BLVM_BUS_MAX_REGIONS || r->len == 0 || r->base + r->len < r->base)
		return -1;
	for (unsigned i = 0; i < bus->nr_regions; i++) {
		const struct blvm_region *o = &bus->regions[i];
		if (o->space == r->space && r->base < o->base + o->len && o->base < r->base + r->len)
			return -1;
	}
	bus->regions[bus->nr_regions++] = *r;
	return 0;
}

int blvm_bus_add_device(struct blvm_bus *bus, void *opaque, void (*destroy)(void *opaque))
{
	if (bus->nr_devices == BLVM_BUS_MAX_DEVICES)
		return -1;
	bus->devices[bus->nr_devices].opaque = opaque;
	bus->devices[bus->nr_devices].destroy = destroy;
	bus->nr_devices++;
	return 0;
}

void blvm_bus_destroy(struct blvm_bus *bus)
{
	while (bus->nr_devices) {
		bus->nr_devices--;
		if (bus->devices[bus->nr_devices].destroy)
			bus->devices[bus->nr_devices].destroy(bus->devices[bus->nr_devices].opaque);
	}
	bus->nr_regions = 0;
}

const struct blvm_region *blvm_bus_find(const struct blvm_bus *bus, enum blvm_space space, uint64_t a)
{
	/* A dozen ranges: a linear scan costs less than the exit that brought us here. */
	for (unsigned i = 0; i < bus->nr_regions; i++) {
		const struct blvm_region *r = &bus->regions[i];
		if (r->space == space && a >= r->base && a - r->base < r->len)
			return r;
	}
	return NULL;
}

bool blvm_bus_access(const struct blvm_bus *bus, enum blvm_space space, struct blvm_vcpu *vcpu, uint64_t a,
		     bool is_write, uint8_t *data, unsigned size)
{
	const struct blvm_region *r = blvm_bus_find(bus, space, a);
	if (r && size <= r->len - (a - r->base)) {
		r->access(r->opaque, vcpu, a - r->base, is_write, data, size);
		return true;
	}
	bool all = true;
	for (unsigned i = 0; i < size; i++) {
		uint64_t b = a + i;
		if (space == BLVM_SPACE_PIO)
			b &= 0xffff; /* the port space wraps at 64 KiB as the CPU's does */
		r = blvm_bus_find(bus, space, b);
		if (r) {
			r->access(r->opaque, vcpu, b - r->base, is_write, data + i, 1);
		} else {
			all = false;
			if (!is_write)
				data[i] = 0xff;
		}
	}
	return all;
}

void blvm_io(struct blvm_vm *vm, struct blvm_vcpu *vcpu, uint16_t port, bool is_write, uint8_t *data,
	     unsigned size)
{
	if (size > 4)
		size = 4;
	if (blvm_bus_access(&vm->bus, BLVM_SPACE_PIO, vcpu, port, is_write, data, size))
		return;
	if (is_write)
		vm->port_writes_unclaimed++;
	else
		vm->port_reads_unclaimed++;
}

void blvm_mmio(struct blvm_vm *vm, struct blvm_vcpu *vcpu, uint64_t gpa, bool is_write, uint8_t *data,
	       unsigned len)
{
	if (blvm_bus_access(&vm->bus, BLVM_SPACE_MMIO, vcpu, gpa, is_write, data, len))
		return;
	if (is_write)
		vm->mmio_writes++;
	else
		vm->mmio_reads++;
}
