/* SPDX-License-Identifier: MIT */
/*
 * ACPI fixed-hardware power management registers (ACPI 6.5, 4.8.3), laid out as QEMU's PIIX4 PM
 * function lays them out at the I/O base SeaBIOS gives it (0x600; blvm has no firmware, so the base is
 * fixed): PM1a_EVT_BLK at +0 (PM1_STS, PM1_EN), PM1a_CNT_BLK at +4 (PM1_CNT), PM_TMR_BLK at +8. blvm
 * follows PIIX4 rather than ICH9 because QEMU's default "pc" machine is the PIIX4 one, so a guest
 * tested under `qemu-system-x86_64` finds the same registers.
 *
 * PM_TMR: 3.579545 MHz from the host's monotonic clock, 24 bits as PIIX4's (the FADT leaves
 * TMR_VAL_EXT clear); TMR_STS sets whenever bit 23 of the counter toggles (4.8.3.3).
 * PM1_CNT: writing SLP_EN with SLP_TYP = the _S5 value (0, the DSDT's _S5 package as QEMU's PIIX4
 * DSDT has it) powers the machine off. The sleeping states S1-S4 are not offered (no _S1-_S4 in the
 * DSDT), and SLP_EN with another type is ignored. SCI_EN reads 1: with SMI_CMD = 0 in the FADT the
 * hardware is always in ACPI mode (4.8.3.2.1, 5.2.9). The SCI (IRQ 9) never fires: no enabled event
 * is ever raised except TMR_STS, which OSPM uses without TMR_EN.
 * The reset register (the PIIX reset control register at 0xcf9) shares 0xcf8-0xcfb with the PCI
 * host bridge's CONFIG_ADDRESS (pci_cf8_access).
 */
#include <time.h>

#include "dev/dev.h"

#define PM1_TMR_STS 0x0001
#define PM1_STS_MASK 0x8731 /* TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK */
#define PM1_EN_MASK 0x0721  /* TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN */
#define PM1_SCI_EN 0x0001
#define PM1_CNT_RW 0x1c06   /* BM_RLD, GBL_RLS, SLP_TYP */
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_EN 0x2000

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void acpi_pm_init(struct acpi_pm *p)
{
	p->pm1_sts = 0;
	p->pm1_en = 0;
	p->pm1_cnt = PM1_SCI_EN;
	if (!p->clock)
		p->clock = monotonic_seconds;
	p->t0 = p->clock();
	p->tmr_epoch = 0;
}

static uint64_t ticks(struct acpi_pm *p)
{
	double t = (p->clock() - p->t0) * PM_TIMER_HZ;
	return t > 0 ? (uint64_t)t : 0;
}

uint32_t acpi_pm_timer(struct acpi_pm *p)
{
	return (uint32_t)(ticks(p) & 0xffffff);
}

static uint16_t sts(struct acpi_pm *p)
{
	uint16_t s = p->pm1_sts;
	if ((uint32_t)(ticks(p) >> 23) != p->tmr_epoch)
		s |= PM1_TMR_STS;
	return s;
}

uint32_t acpi_pm_read(struct acpi_pm *p, unsigned offset, unsigned size)
{
	uint8_t b[DEV_PM_LEN] = { 0 };
	uint16_t s = sts(p);
	uint32_t t = acpi_pm_timer(p);
	b[0] = (uint8_t)s;
	b[1] = (uint8_t)(s >> 8);
	b[2] = (uint8_t)p->pm1_en;
	b[3] = (uint8_t)(p->pm1_en >> 8);
	b[4] = (uint8_t)p->pm1_cnt; /* SLP_EN and GBL_RLS are write-only: never stored */
	b[5] = (uint8_t)(p->pm1_cnt >> 8);
	for (unsigned i = 0; i < 4; i++)
		b[8 + i] = (uint8_t)(t >> (8 * i));
	uint32_t v = 0;
	for (unsigned i = 0; i < size && offset + i < DEV_PM_LEN; i++)
		v |= (uint32_t)b[offset + i] << (8 * i);
	return v;
}

/* The bits of 16-bit register at reg that an access of size bytes at offset writes. */
static uint16_t lanes(unsigned offset, unsigned size, unsigned reg, uint32_t v, uint16_t *mask)
{
	uint16_t val = 0, m = 0;
	for (unsigned i = 0; i < size; i++) {
		unsigned a = offset + i;
		if (a == reg || a == reg + 1) {
			unsigned sh = 8 * (a - reg);
			val |= (uint16_t)(((v >> (8 * i)) & 0xff) << sh);
			m |= (uint16_t)(0xff << sh);
		}
	}
	*mask = m;
	return val;
}

enum pm_event acpi_pm_write(struct acpi_pm *p, unsigned offset, unsigned size, uint32_t v)
{
	uint16_t m, w;
	enum pm_event ev = PM_EVENT_NONE;
	w = lanes(offset, size, 0, v, &m);
	if (m) {
		/* PM1_STS: write 1 to clear (4.8.3.1.1). */
		uint16_t clear = w & m & PM1_STS_MASK;
		if (clear & PM1_TMR_STS)
			p->tmr_epoch = (uint32_t)(ticks(p) >> 23);
		p->pm1_sts &= (uint16_t)~clear;
	}
	w = lanes(offset, size, 2, v, &m);
	if (m)
		p->pm1_en = (uint16_t)((p->pm1_en & ~m) | (w & m & PM1_EN_MASK));
	w = lanes(offset, size, 4, v, &m);
	if (m) {
		p->pm1_cnt = (uint16_t)((p->pm1_cnt & ~(m & PM1_CNT_RW)) | (w & m & PM1_CNT_RW) | PM1_SCI_EN);
		p->pm1_cnt &= (uint16_t)~0x0004; /* GBL_RLS is write-only */
		if ((w & m & PM1_SLP_EN) &&
		    ((p->pm1_cnt >> PM1_SLP_TYP_SHIFT) & 7) == DEV_PM_S5_SLP_TYP)
			ev = PM_EVENT_POWEROFF;
	}
	return ev; /* PM_TMR is read-only */
}

/* ---- the PM block and the reset control register on the VM ------------------------------------- */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

struct pm_dev {
	struct acpi_pm pm;
	struct pci_cf8 cf8;
	struct blvm_vm *vm;
};

static void pm_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
		      unsigned size)
{
	struct pm_dev *d = opaque;
	uint32_t v = 0;
	if (!is_write) {
		v = acpi_pm_read(&d->pm, (unsigned)offset, size);
		for (unsigned i = 0; i < size; i++)
			data[i] = (uint8_t)(v >> (8 * i));
		return;
	}
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)data[i] << (8 * i);
	if (acpi_pm_write(&d->pm, (unsigned)offset, size, v) == PM_EVENT_POWEROFF)
		dev_platform_event(d->vm, vcpu, PM_EVENT_POWEROFF, "ACPI S5");
}

/* The PIIX3/PIIX4 reset control register (Intel 82371AB data sheet, RC, I/O 0xcf9): bit 2
 * (RST_CPU) set resets the machine, bit 1 (SYS_RST) choosing a hard reset; QEMU resets on bit 2
 * and the FADT's RESET_VALUE is 0x06. Reads return 0. It shares 0xcf8-0xcfb with the PCI host
 * bridge's CONFIG_ADDRESS, which claims dword accesses only (PCI Local Bus Specification 3.0,
 * 3.2.2.3.2: "Anytime a host bridge sees a full DWORD I/O write from the host to CONFIG_ADDRESS,
 * the bridge must latch the data"; byte and word accesses "pass through the host bridge
 * unaffected"): a PCI configuration scan's outl to 0xcf8 must not reach the reset register. */
enum pm_event pci_cf8_access(struct pci_cf8 *s, unsigned offset, bool is_write, uint8_t *data, unsigned size)
{
	if (size == 4 && offset == 0) {
		if (is_write)
			s->config_address = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
					    (uint32_t)data[3] << 24;
		else
			for (unsigned i = 0; i < 4; i++)
				data[i] = (uint8_t)(s->config_address >> (8 * i));
		return PM_EVENT_NONE;
	}
	enum pm_event ev = PM_EVENT_NONE;
	for (unsigned i = 0; i < size; i++) {
		unsigned port = DEV_PCI_CONFIG_ADDRESS + offset + i;
		if (port != DEV_RESET_CONTROL) {
			if (!is_write)
				data[i] = 0xff; /* nothing else decodes these bytes */
		} else if (!is_write) {
			data[i] = 0;
		} else if (data[i] & 0x04) {
			ev = PM_EVENT_RESET;
		}
	}
	return ev;
}

static void cf8_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
		       unsigned size)
{
	struct pm_dev *d = opaque;
	if (pci_cf8_access(&d->cf8, (unsigned)offset, is_write, data, size) == PM_EVENT_RESET)
		dev_platform_event(d->vm, vcpu, PM_EVENT_RESET, "ACPI reset register");
}

int dev_pm_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	struct pm_dev *d = calloc(1, sizeof *d);
	if (!d || blvm_bus_add_device(&vm->bus, d, free) != 0) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->vm = vm;
	acpi_pm_init(&d->pm);
	struct blvm_region pm = { .name = "acpi-pm", .space = BLVM_SPACE_PIO, .base = DEV_PM_BASE,
				  .len = DEV_PM_LEN, .access = pm_access, .opaque = d };
	struct blvm_region rc = { .name = "pci-config-address+reset-control", .space = BLVM_SPACE_PIO,
				  .base = DEV_PCI_CONFIG_ADDRESS, .len = 4, .access = cf8_access, .opaque = d };
	if (blvm_bus_register(&vm->bus, &pm) != 0 || blvm_bus_register(&vm->bus, &rc) != 0) {
		snprintf(err, errlen, "cannot register the ACPI PM registers");
		return -1;
	}
	return 0;
}
