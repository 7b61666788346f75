/* SPDX-License-Identifier: MIT */
/*
 * Fuzz: the device models as a guest reaches them, on a sequence of accesses the fuzzer chooses
 * (issue 15, "the device models (random port/MMIO sequences)"):
 *   - the monitor's devices (src/dev/: COM1, the RTC, fw_cfg, the ACPI PM block and reset register,
 *     the i8042, isa-debug-exit, pc-testdev; the ACPI tables they build), through the registry
 *     (blvm_io/blvm_mmio) of a VM with no engine, as tests/unit/dev_random.c builds it;
 *   - the emu engine's interrupt platform (src/emu/: the local APICs' registers and MSRs, the
 *     I/O APIC, the 8259A pair, the 8254 and port 0x61), through the models' entry points with the
 *     alignment and width the engine's dispatch (irqchip.c emu_irq_mmio/emu_irq_pio) lets through,
 *     plus interrupt lines, acknowledges and virtual time.
 * Input: byte 0 the vCPU count (1-64), byte 1 the RAM size (2-257 MiB); then 8-byte operations
 * {kind, arg, u16 addr, u32 value}. fw_cfg has no DMA interface (fw_cfg.c), so no guest address
 * reaches the host from a device; guest RAM lies between guard pages all the same (the ACPI tables
 * are written there).
 *
 * Checks (abort() on a violation): no crash or sanitizer report; a read of an unclaimed port or
 * address is all ones; pc-testdev's iomem reads back what was written (a shadow copy); the UART's
 * FIFO indexes, the RTC's index, the 8259s' initialisation state and the 8254's channel fields stay
 * in their ranges; an interrupt the CPU side sees is a vector the SDM allows (-1, or >= 16 from a
 * LAPIC; any from the PIC's INTA), and peek/ack agree; a TSC-deadline write in the future does not
 * fire the timer at once (SDM Vol. 3 11.5.4.1: it fires when the TSC reaches the deadline).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "emu/irq.h"
#include "vmm/vmm.h"

#define PAGE 4096ull
#define TESTDEV_IOMEM 0xff000000ull
#define TESTDEV_IOMEM_LEN 0x10000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned kick_ncpus;
static void kick(void *arg, unsigned cpu)
{
	(void)arg;
	if (cpu >= kick_ncpus)
		abort(); /* an event for a vCPU that does not exist */
}

static FILE *devnull(void)
{
	static FILE *f;
	if (!f && !(f = fopen("/dev/null", "w")))
		abort();
	return f;
}

static void check_monitor(struct blvm_vm *vm)
{
	const struct uart16550 *u = vm->com1;
	if (u->rx_head >= UART_FIFO_SIZE || u->rx_count > UART_FIFO_SIZE)
		abort();
	const struct blvm_region *r = blvm_bus_find(&vm->bus, BLVM_SPACE_PIO, DEV_RTC_BASE);
	if (!r || strcmp(r->name, "rtc") != 0 || ((struct rtc *)r->opaque)->index >= 128)
		abort();
}

static void check_chip(struct emu_irqchip *chip, uint64_t now)
{
	for (unsigned k = 0; k < 2; k++)
		if (chip->pic.p[k].init_state > 3)
			abort();
	for (unsigned k = 0; k < 3; k++) {
		const struct emu_pit_channel *c = &chip->pit.ch[k];
		if (c->count < 1 || c->count > 0x10000 || c->rw_mode > 3 || c->mode > 5)
			abort();
	}
	(void)now;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned ncpus = 1 + data[0] % 64;
	uint64_t mem = (2ull + data[1]) << 20;
	data += 2, size -= 2;

	/* The monitor's devices on a VM with no engine and no vCPUs (blvm_irq_line does nothing). */
	struct blvm_vm *vm = calloc(1, sizeof *vm);
	if (!vm)
		abort();
	vm->cfg = (struct blvm_vm_config)BLVM_VM_CONFIG_DEFAULT;
	vm->cfg.mem_size = mem;
	vm->cfg.nr_vcpus = ncpus;
	vm->cfg.console = devnull();
	vm->ops = &blvm_engine_emu;
	uint8_t *m = mmap(NULL, mem + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED || mprotect(m + PAGE, mem, PROT_READ | PROT_WRITE) != 0)
		abort();
	vm->ram = m + PAGE;
	vm->ram_below_4g = mem;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->end_lock, NULL);
	char err[256];
	if (blvm_devices_create(vm, err, sizeof err) != 0 || vm->acpi_rsdp != BLVM_ACPI_RSDP_GPA)
		abort();
	vm->cfg.nr_vcpus = 0; /* blvm_vm_end kicks no vCPU */

	/* The emu engine's interrupt platform, without its timer thread: time is the input's. */
	kick_ncpus = ncpus;
	struct emu_irqchip *chip = emu_irqchip_new(kick, NULL);
	if (!chip)
		abort();
	for (unsigned k = 0; k < ncpus; k++)
		if (emu_irqchip_add_cpu(chip, k) != 0)
			abort();
	uint64_t now = 1000000000ull;
	emu_pit_reset(&chip->pit, now);
	chip->has_pit = true;

	static uint8_t shadow[TESTDEV_IOMEM_LEN];
	memset(shadow, 0, sizeof shadow);
	static const uint16_t pic_ports[] = { 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1 };
	static const uint16_t pit_ports[] = { 0x40, 0x41, 0x42, 0x43, 0x61 };
	static const uint64_t mmio_bases[] = { TESTDEV_IOMEM, TESTDEV_IOMEM + 0xf000, DEV_IOAPIC_GPA, DEV_LAPIC_GPA,
					       0xfffff000ull, 0x100000000ull };

	for (size_t i = 0; i + 8 <= size; i += 8) {
		const uint8_t *op = data + i;
		uint8_t kind = op[0] % 10, arg = op[1];
		uint16_t addr = (uint16_t)(op[2] | op[3] << 8);
		uint32_t val;
		memcpy(&val, op + 4, 4);
		bool write = arg & 0x80;
		uint8_t buf[8];
		uint64_t v64 = (uint64_t)val * 0x100000001ull;
		memcpy(buf, &v64, 8);
		switch (kind) {
		case 0: /* a port of the monitor's */
		case 1: {
			unsigned sz = 1u << (arg & 3);
			if (sz > 4)
				sz = 4;
			pthread_mutex_lock(&vm->lock);
			blvm_io(vm, NULL, addr, write, buf, sz);
			pthread_mutex_unlock(&vm->lock);
			if (!write && !blvm_bus_find(&vm->bus, BLVM_SPACE_PIO, addr) && sz == 1 && buf[0] != 0xff)
				abort(); /* an unclaimed port reads as all ones */
			break;
		}
		case 2: { /* an address outside RAM */
			unsigned sz = 1u << (arg & 3);
			uint64_t gpa = mmio_bases[(arg >> 2) % 6] + (addr & 0xfff);
			if ((arg >> 2) % 6 == 0)
				gpa = TESTDEV_IOMEM + (addr & (TESTDEV_IOMEM_LEN - 1));
			pthread_mutex_lock(&vm->lock);
			blvm_mmio(vm, NULL, gpa, write, buf, sz);
			pthread_mutex_unlock(&vm->lock);
			for (unsigned k = 0; k < sz; k++) {
				uint64_t a = gpa + k;
				bool iomem = a >= TESTDEV_IOMEM && a < TESTDEV_IOMEM + TESTDEV_IOMEM_LEN;
				if (write && iomem)
					shadow[a - TESTDEV_IOMEM] = buf[k];
				else if (!write && iomem && buf[k] != shadow[a - TESTDEV_IOMEM])
					abort(); /* pc-testdev's iomem lost a byte */
				else if (!write && !iomem && buf[k] != 0xff)
					abort(); /* nothing else of the monitor's is at these addresses */
			}
			break;
		}
		case 3: { /* a LAPIC register, as emu_irq_mmio passes it (32-bit, 16-byte aligned writes) */
			struct emu_lapic *l = chip->lapic[arg % ncpus];
			unsigned off = addr & 0xff0;
			pthread_mutex_lock(&chip->lock);
			if (write)
				emu_lapic_write(chip, l, off, val, now);
			else
				(void)emu_lapic_read(chip, l, off, now);
			pthread_mutex_unlock(&chip->lock);
			break;
		}
		case 4: { /* a LAPIC MSR: x2APIC 0x800-0x8ff, IA32_APIC_BASE, IA32_TSC_DEADLINE */
			struct emu_lapic *l = chip->lapic[arg % ncpus];
			uint32_t msr = (addr & 0x300) == 0x100 ? 0x1b : (addr & 0x300) == 0x200 ? 0x6e0 : 0x800 + (addr & 0xff);
			uint64_t v = (uint64_t)val | (uint64_t)(addr >> 10) << 58 | ((arg & 0x40) ? (uint64_t)val << 32 : 0);
			pthread_mutex_lock(&chip->lock);
			if (write) {
				/* the guest's TSC: host time, or a TSC the guest set back to 0 (IA32_TIME_STAMP_COUNTER) */
				uint64_t tsc_now = (arg & 0x20) ? (uint64_t)(addr >> 12) : now, fires = l->timer_fires;
				bool armed_mode = ((l->lvt[LVT_TIMER] >> 17) & 3) == APIC_TIMER_TSC_DEADLINE &&
						  emu_lapic_hw_enabled(l);
				emu_lapic_wrmsr(chip, l, msr, v, now, tsc_now);
				if (msr == 0x6e0 && armed_mode && v > tsc_now && l->timer_fires != fires)
					abort(); /* a deadline in the future fired at once */
			} else {
				uint64_t out;
				(void)emu_lapic_rdmsr(chip, l, msr, &out, now);
			}
			pthread_mutex_unlock(&chip->lock);
			break;
		}
		case 5: /* the I/O APIC (32-bit, 4-byte aligned, as emu_irq_mmio passes it) */
			pthread_mutex_lock(&chip->lock);
			if (write)
				emu_ioapic_write(chip, addr & 0xfc, val);
			else
				(void)emu_ioapic_read(chip, addr & 0xfc);
			pthread_mutex_unlock(&chip->lock);
			break;
		case 6: /* the 8259A pair and ELCR; the 8254 and port 0x61 */
			pthread_mutex_lock(&chip->lock);
			if (arg & 1) {
				uint16_t p = pit_ports[addr % 5];
				if (write)
					emu_pit_ioport_write(chip, p, (uint8_t)val, now);
				else
					(void)emu_pit_ioport_read(chip, p, now);
			} else {
				uint16_t p = pic_ports[addr % 6];
				if (write)
					emu_pic_ioport_write(chip, p, (uint8_t)val);
				else
					(void)emu_pic_ioport_read(chip, p);
			}
			pthread_mutex_unlock(&chip->lock);
			break;
		case 7: /* an interrupt line (KVM_IRQ_LINE's GSIs 0-23) */
			pthread_mutex_lock(&chip->lock);
			emu_irqchip_set_irq(chip, addr % EMU_IOAPIC_PINS, arg & 1);
			pthread_mutex_unlock(&chip->lock);
			break;
		case 8: { /* the CPU side: what would be delivered, and its INTA */
			unsigned cpu = arg % ncpus;
			pthread_mutex_lock(&chip->lock);
			bool extint = cpu == 0 && emu_pic_intr(&chip->pic) && emu_lapic_accepts_pic(chip->lapic[0]);
			int pv = emu_irqchip_peek(chip, cpu);
			if (pv < -1 || pv > 255 || (!extint && pv >= 0 && pv < 16))
				abort();
			if (write) {
				int av = emu_irqchip_ack(chip, cpu);
				if (av < -1 || av > 255 || (!extint && av != pv))
					abort();
				if (av >= 0 && !extint && (val & 1)) /* and its EOI */
					emu_lapic_write(chip, chip->lapic[cpu], APIC_EOI, 0, now);
			}
			pthread_mutex_unlock(&chip->lock);
			break;
		}
		case 9: /* time passes */
			now += (uint64_t)val << (arg & 15);
			pthread_mutex_lock(&chip->lock);
			(void)emu_irqchip_run_timers(chip, now);
			pthread_mutex_unlock(&chip->lock);
			break;
		}
		check_monitor(vm);
		check_chip(chip, now);
	}

	emu_irqchip_free(chip);
	blvm_bus_destroy(&vm->bus);
	munmap(m, mem + 2 * PAGE);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->end_lock);
	free(vm);
	return 0;
}
