/* SPDX-License-Identifier: MIT */
/*
 * kvm-buslock-marks: the guest side of tests/sh/kvm-buslock-shim.sh. It takes no bus lock at all;
 * it writes "markers" that the test's fake kernel (tests/shim/kvm_buslock_shim.so, preloaded into
 * blvm with the kvm engine) reports as bus locks, the way KVM reports them:
 *   K x `outb` to port 0xb1         -> KVM_EXIT_X86_BUS_LOCK (33) with KVM_RUN_X86_BUS_LOCK
 *   K x `outb` to port 0xb2         -> KVM_EXIT_IO with the flag
 *   K x byte store to guest-physical 0xfeb00000, through the runtime's identity map
 *                                   -> KVM_EXIT_MMIO (write) with the flag
 * in this order, on every vCPU (rt_smp_run; -smp N under QEMU). That is 3K bus locks per vCPU
 * under the shim with detection enabled, K of them exits 33.
 *
 * Command line: [K] (default 5; decimal, k/M suffixes as the smp guests).
 * Console: `marks: done K` with one vCPU, `marks: done K (x N vCPUs)` with N > 1.
 * Exit status 0; 2 for a bad command line, or when 0xfeb00000 is RAM by the memory map (blvm's RAM
 * is contiguous from 1 MiB: --mem above about 4 GiB covers it).
 *
 * Without the shim these are writes nobody claims: blvm (emu or kvm) counts 2K port writes and K
 * MMIO writes per vCPU in --stats `unclaimed`. Under QEMU's PC machine 0xb2 is the APM command
 * port: a write raises an SMI, which SeaBIOS's handler ignores for every value but its own 0xdb,
 * so the guest writes 0x42; 0xb1 and 0xfeb00000 are unassigned there.
 */
#include "rt.h"
#include "smp/common.h"

#define MARK_PORT_EXIT 0xb1
#define MARK_PORT_IO 0xb2
#define MARK_MMIO 0xfeb00000ull
#define MARK_VALUE 0x42

static void marks(unsigned cpu, void *arg)
{
	(void)cpu;
	uint64_t k = *(const uint64_t *)arg;
	uintptr_t addr = (uintptr_t)MARK_MMIO;
	RT_OPAQUE(addr);
	volatile uint8_t *mmio = (volatile uint8_t *)addr;
	for (uint64_t i = 0; i < k; i++)
		outb(MARK_PORT_EXIT, MARK_VALUE);
	for (uint64_t i = 0; i < k; i++)
		outb(MARK_PORT_IO, MARK_VALUE);
	for (uint64_t i = 0; i < k; i++)
		*mmio = MARK_VALUE;
}

/* Whether any RAM range of the memory map overlaps [base, end). */
static bool ram_overlaps(uint64_t base, uint64_t end)
{
	for (unsigned i = 0; i < rt_memmap_count(); i++) {
		const struct hvm_memmap_table_entry *e = rt_memmap_entry(i);
		if (e->type == RT_E820_RAM && e->addr < end && base < e->addr + e->size)
			return true;
	}
	return false;
}

int guest_main(void)
{
	uint64_t k = smp_arg_count("marks", 5);
	if (!k)
		return 2;
	if (ram_overlaps(MARK_MMIO, MARK_MMIO + 0x1000)) {
		rt_printf("marks: guest-physical 0x%lx is RAM here; run with less --mem\n", (unsigned long)MARK_MMIO);
		return 2;
	}
	rt_smp_run(marks, &k);
	unsigned n = rt_cpu_count();
	if (n > 1)
		rt_printf("marks: done %lu (x %u vCPUs)\n", (unsigned long)k, n);
	else
		rt_printf("marks: done %lu\n", (unsigned long)k);
	return RT_EXIT_OK;
}
