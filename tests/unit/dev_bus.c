/* SPDX-License-Identifier: MIT */
/*
 * The device registry (src/vmm/bus.c): an access wholly inside a device's range reaches it as one
 * access of its size at the right offset; an access that runs past the end of a range, or spans two
 * devices, is taken apart into bytes that each go where their own address goes (never wrapping
 * round into the device: the `outl(0x3fd)` bug); unclaimed bytes read all ones and are reported;
 * overlapping registrations are refused; the port space wraps at 64 KiB.
 */
#include <stdio.h>
#include <string.h>

#include "dev/dev.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

struct rec {
	unsigned calls;
	uint64_t offset[16];
	unsigned size[16];
	bool write[16];
	uint8_t bytes[16];
};

static void access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct rec *r = opaque;
	(void)vcpu;
	unsigned i = r->calls++ % 16;
	r->offset[i] = offset;
	r->size[i] = size;
	r->write[i] = is_write;
	r->bytes[i] = data[0];
	if (!is_write)
		for (unsigned k = 0; k < size; k++)
			data[k] = (uint8_t)(0x10 + offset + k);
}

int main(void)
{
	static struct blvm_bus bus;
	struct rec a = { 0 }, b = { 0 }, m = { 0 };
	struct blvm_region ra = { "a", BLVM_SPACE_PIO, 0x3f8, 8, access, &a };
	struct blvm_region rb = { "b", BLVM_SPACE_PIO, 0x400, 2, access, &b };
	struct blvm_region rm = { "m", BLVM_SPACE_MMIO, 0xfec00000, 0x20, access, &m };
	CHECK(blvm_bus_register(&bus, &ra) == 0);
	CHECK(blvm_bus_register(&bus, &rb) == 0);
	CHECK(blvm_bus_register(&bus, &rm) == 0);
	struct blvm_region overlap = { "o", BLVM_SPACE_PIO, 0x3ff, 1, access, &a };
	CHECK(blvm_bus_register(&bus, &overlap) != 0);
	struct blvm_region other_space = { "o", BLVM_SPACE_MMIO, 0x3f8, 8, access, &a };
	CHECK(blvm_bus_register(&bus, &other_space) == 0); /* MMIO 0x3f8 is not port 0x3f8 */

	/* Inside: one access of its size. */
	uint8_t d[8] = { 0x11, 0x22, 0x33, 0x44 };
	CHECK(blvm_bus_access(&bus, BLVM_SPACE_PIO, NULL, 0x3fc, true, d, 4));
	CHECK(a.calls == 1 && a.offset[0] == 4 && a.size[0] == 4 && a.write[0] && a.bytes[0] == 0x11);

	/* outl(0x3fd): bytes to offsets 5, 6, 7 of a, and port 0x400 is b's: nothing wraps to 0. */
	memset(&a, 0, sizeof a);
	CHECK(blvm_bus_access(&bus, BLVM_SPACE_PIO, NULL, 0x3fd, true, d, 4));
	CHECK(a.calls == 3 && a.offset[0] == 5 && a.offset[1] == 6 && a.offset[2] == 7);
	CHECK(a.size[0] == 1 && a.bytes[0] == 0x11 && a.bytes[2] == 0x33);
	CHECK(b.calls == 1 && b.offset[0] == 0 && b.bytes[0] == 0x44);

	/* outw(0x3ff) then 0x400-0x401 of b; inl(0x401): b's last byte, then unclaimed. */
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	uint8_t r[4];
	CHECK(!blvm_bus_access(&bus, BLVM_SPACE_PIO, NULL, 0x401, false, r, 4));
	CHECK(b.calls == 1 && b.offset[0] == 1 && r[0] == 0x11 && r[1] == 0xff && r[2] == 0xff && r[3] == 0xff);
	CHECK(a.calls == 0);

	/* Unclaimed entirely: all ones, reported. */
	memset(r, 0, sizeof r);
	CHECK(!blvm_bus_access(&bus, BLVM_SPACE_PIO, NULL, 0x80, false, r, 2));
	CHECK(r[0] == 0xff && r[1] == 0xff);
	/* The port space wraps: inl(0xffff) covers 0xffff, 0, 1, 2. */
	CHECK(!blvm_bus_access(&bus, BLVM_SPACE_PIO, NULL, 0xffff, false, r, 4));

	/* MMIO: 8-byte access inside; one running past the end splits. */
	uint8_t q[8];
	CHECK(blvm_bus_access(&bus, BLVM_SPACE_MMIO, NULL, 0xfec00018, false, q, 8));
	CHECK(m.calls == 1 && m.size[0] == 8 && m.offset[0] == 0x18 && q[7] == 0x10 + 0x1f);
	CHECK(!blvm_bus_access(&bus, BLVM_SPACE_MMIO, NULL, 0xfec0001c, false, q, 8));
	CHECK(m.calls == 5 && q[3] == 0x10 + 0x1f && q[4] == 0xff);

	blvm_bus_destroy(&bus);
	CHECK(blvm_bus_find(&bus, BLVM_SPACE_PIO, 0x3f8) == NULL);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_bus: all checks passed\n");
	return 0;
}
