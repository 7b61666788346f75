/* SPDX-License-Identifier: MIT */
/*
 * ACPI PM registers (src/dev/pm.c) against ACPI 6.5 4.8.3 and the PIIX4 layout, with a test clock:
 * PM_TMR counts at 3.579545 MHz and wraps at 24 bits; TMR_STS sets when bit 23 toggles and is
 * cleared by writing 1; PM1_STS is write-1-to-clear, PM1_EN read/write; PM1_CNT: SCI_EN reads 1,
 * SLP_EN is write-only, and SLP_EN with SLP_TYP = the _S5 value (0) powers off while other types
 * do not; byte and word accesses land on the right lanes. Also the i8042 (src/dev/i8042.c): the
 * controller (status, self test, command byte) with nothing plugged in (a byte to either device
 * times out: 0xfe with the TIMEOUT bit), its output-buffer writes 0xd2/0xd3 and IRQ 1 / IRQ 12 as
 * the command byte enables them; command 0xfe, any pulse with bit 0 clear, and an output-port
 * write with bit 0 clear reset the machine, and nothing else does.
 * Ports 0xcf8-0xcfb (PCI Local Bus Specification 3.0, 3.2.2.3.2): a dword access at 0xcf8 is the host
 * bridge's CONFIG_ADDRESS (latched, read back) and never resets, whatever its byte 1; a byte or
 * word access covering 0xcf9 reaches the reset control register (bit 2 resets, reads 0).
 */
#include <stdio.h>

#include "dev/dev.h"

static int failures;
#define CHECK_EQ(a, b) do { unsigned long long _a = (a), _b = (b); if (_a != _b) { \
	fprintf(stderr, "%s:%d: %s = 0x%llx, expected 0x%llx\n", __FILE__, __LINE__, #a, _a, _b); failures++; } } while (0)

static double now_s;
static double test_clock(void) { return now_s; }

static void test_pm(void)
{
	struct acpi_pm p = { .clock = test_clock };
	now_s = 100.0;
	acpi_pm_init(&p);
	CHECK_EQ(acpi_pm_read(&p, 8, 4), 0);
	now_s = 101.0;
	CHECK_EQ(acpi_pm_read(&p, 8, 4), 3579545);
	CHECK_EQ(acpi_pm_read(&p, 0, 2) & 1, 0); /* bit 23 not yet toggled (2^23 ticks = 2.34 s) */
	now_s = 100.0 + (double)(1u << 24) / PM_TIMER_HZ + 1e-6;
	CHECK_EQ(acpi_pm_read(&p, 8, 4), 3);      /* 24-bit wrap */
	CHECK_EQ(acpi_pm_read(&p, 0, 2) & 1, 1);  /* TMR_STS */
	acpi_pm_write(&p, 0, 2, 1);               /* write 1 to clear */
	CHECK_EQ(acpi_pm_read(&p, 0, 2) & 1, 0);
	CHECK_EQ(acpi_pm_read(&p, 0, 1) & 1, 0);
	/* PM1_EN: read/write, reserved bits stay 0; a byte write to its high half. */
	acpi_pm_write(&p, 2, 2, 0xffff);
	CHECK_EQ(acpi_pm_read(&p, 2, 2), 0x0721);
	acpi_pm_write(&p, 3, 1, 0x00);
	CHECK_EQ(acpi_pm_read(&p, 2, 2), 0x0021);
	/* One dword write over PM1_STS and PM1_EN. */
	acpi_pm_write(&p, 0, 4, 0x01000000);
	CHECK_EQ(acpi_pm_read(&p, 0, 4), 0x01000000);
	/* PM1_CNT: SCI_EN always 1; SLP_TYP kept; SLP_EN never reads back. */
	CHECK_EQ(acpi_pm_read(&p, 4, 2), 1);
	CHECK_EQ(acpi_pm_write(&p, 4, 2, 5 << 10), PM_EVENT_NONE);
	CHECK_EQ(acpi_pm_read(&p, 4, 2), (5 << 10) | 1);
	CHECK_EQ(acpi_pm_write(&p, 4, 2, (1 << 10) | (1 << 13)), PM_EVENT_NONE); /* S1: not offered */
	CHECK_EQ(acpi_pm_read(&p, 4, 2), (1 << 10) | 1);
	CHECK_EQ(acpi_pm_write(&p, 4, 2, (0 << 10) | (1 << 13)), PM_EVENT_POWEROFF);
	/* The same by bytes: SLP_TYP in the high byte's bits 2-4, SLP_EN its bit 5. */
	acpi_pm_init(&p);
	CHECK_EQ(acpi_pm_write(&p, 4, 1, 0x00), PM_EVENT_NONE);
	CHECK_EQ(acpi_pm_write(&p, 5, 1, 0x20), PM_EVENT_POWEROFF);
	/* The timer is read-only. */
	CHECK_EQ(acpi_pm_write(&p, 8, 4, 0), PM_EVENT_NONE);
}

static void test_i8042(void)
{
	struct i8042 k;
	i8042_init(&k);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD), 0x1c); /* SYS, A2, not inhibited; no data, input empty */
	CHECK_EQ(i8042_write(&k, DEV_I8042_CMD, 0xaa), PM_EVENT_NONE);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 1, 1);
	CHECK_EQ(i8042_read(&k, DEV_I8042_DATA), 0x55);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 1, 0);
	i8042_write(&k, DEV_I8042_CMD, 0x60);
	i8042_write(&k, DEV_I8042_DATA, 0x47);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 8, 0); /* last write was data */
	i8042_write(&k, DEV_I8042_CMD, 0x20);
	CHECK_EQ(i8042_read(&k, DEV_I8042_DATA), 0x47);
	/* A byte to the (absent) keyboard: the controller's transmit time-out, 0xfe with TIMEOUT (bit 6)
	 * on the keyboard side (AUXB clear); with the keyboard interrupt enabled (0x47 has bit 0), IRQ 1
	 * is high until port 0x60 is read. */
	i8042_write(&k, DEV_I8042_DATA, 0xff);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 0x63, 0x41);
	CHECK_EQ(i8042_irq_levels(&k), I8042_IRQ_KBD);
	CHECK_EQ(i8042_read(&k, DEV_I8042_DATA), 0xfe);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 1, 0);
	CHECK_EQ(i8042_irq_levels(&k), 0);
	/* 0xd4: a byte to the (absent) auxiliary device: 0xfe, TIMEOUT and AUXB; IRQ 12 only when the
	 * command byte enables it (bit 1). */
	i8042_write(&k, DEV_I8042_CMD, 0x60);
	i8042_write(&k, DEV_I8042_DATA, 0x45);
	i8042_write(&k, DEV_I8042_CMD, 0xd4);
	i8042_write(&k, DEV_I8042_DATA, 0xf2);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 0x63, 0x61);
	CHECK_EQ(i8042_irq_levels(&k), 0);
	CHECK_EQ(i8042_read(&k, DEV_I8042_DATA), 0xfe);
	i8042_write(&k, DEV_I8042_CMD, 0x60);
	i8042_write(&k, DEV_I8042_DATA, 0x47); /* bits 0 and 1: both interrupts */
	/* 0xd3: the auxiliary output buffer, as Linux's AUX_LOOP test uses it: the byte comes back on
	 * the auxiliary side, no time-out, IRQ 12 */
	i8042_write(&k, DEV_I8042_CMD, 0xd3);
	i8042_write(&k, DEV_I8042_DATA, 0x5a);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 0x63, 0x21);
	CHECK_EQ(i8042_irq_levels(&k), I8042_IRQ_AUX);
	CHECK_EQ(i8042_read(&k, DEV_I8042_DATA), 0x5a);
	CHECK_EQ(i8042_irq_levels(&k), 0);
	/* 0xd2: the keyboard output buffer: keyboard side, IRQ 1 */
	i8042_write(&k, DEV_I8042_CMD, 0xd2);
	i8042_write(&k, DEV_I8042_DATA, 0xa5);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 0x63, 0x01);
	CHECK_EQ(i8042_irq_levels(&k), I8042_IRQ_KBD);
	CHECK_EQ(i8042_read(&k, DEV_I8042_DATA), 0xa5);
	/* interrupts disabled in the command byte: OBF without an interrupt */
	i8042_write(&k, DEV_I8042_CMD, 0x60);
	i8042_write(&k, DEV_I8042_DATA, 0x44);
	i8042_write(&k, DEV_I8042_CMD, 0xd3);
	i8042_write(&k, DEV_I8042_DATA, 0x11);
	CHECK_EQ(i8042_read(&k, DEV_I8042_CMD) & 1, 1);
	CHECK_EQ(i8042_irq_levels(&k), 0);
	CHECK_EQ(i8042_read(&k, DEV_I8042_DATA), 0x11);
	/* Reset lines. */
	CHECK_EQ(i8042_write(&k, DEV_I8042_CMD, 0xff), PM_EVENT_NONE); /* pulse nothing */
	CHECK_EQ(i8042_write(&k, DEV_I8042_CMD, 0xfe), PM_EVENT_RESET);
	CHECK_EQ(i8042_write(&k, DEV_I8042_CMD, 0xf0), PM_EVENT_RESET);
	i8042_write(&k, DEV_I8042_CMD, 0xd1);
	CHECK_EQ(i8042_write(&k, DEV_I8042_DATA, 0xdf), PM_EVENT_NONE); /* bit 0 set: no reset */
	i8042_write(&k, DEV_I8042_CMD, 0xd0);
	CHECK_EQ(i8042_read(&k, DEV_I8042_DATA), 0xdf);
	i8042_write(&k, DEV_I8042_CMD, 0xd1);
	CHECK_EQ(i8042_write(&k, DEV_I8042_DATA, 0xde), PM_EVENT_RESET);
	/* 0x64 writes of other commands never reset. */
	for (unsigned v = 0; v < 0xf0; v++) {
		struct i8042 k2;
		i8042_init(&k2);
		CHECK_EQ(i8042_write(&k2, DEV_I8042_CMD, (uint8_t)v), PM_EVENT_NONE);
		i8042_write(&k2, DEV_I8042_DATA, 0xff);
	}
}

static void test_cf8(void)
{
	struct pci_cf8 c = { 0 };
	uint8_t d[4] = { 0x04, 0xff, 0x00, 0x80 }; /* 0x8000ff04: bus 0, devfn 0xff (function 7), reg 4 */
	CHECK_EQ(pci_cf8_access(&c, 0, true, d, 4), PM_EVENT_NONE);
	uint8_t r[4] = { 0 };
	CHECK_EQ(pci_cf8_access(&c, 0, false, r, 4), PM_EVENT_NONE);
	CHECK_EQ((uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24, 0x8000ff04);
	uint8_t b = 0x02;                                    /* SYS_RST alone: no reset (QEMU: RST_CPU) */
	CHECK_EQ(pci_cf8_access(&c, 1, true, &b, 1), PM_EVENT_NONE);
	b = 0x06;
	CHECK_EQ(pci_cf8_access(&c, 1, true, &b, 1), PM_EVENT_RESET); /* the FADT's RESET_VALUE */
	uint8_t w[2] = { 0x00, 0x04 };                       /* a word at 0xcf8: byte 1 goes to 0xcf9 */
	CHECK_EQ(pci_cf8_access(&c, 0, true, w, 2), PM_EVENT_RESET);
	b = 0xaa;
	pci_cf8_access(&c, 1, false, &b, 1);
	CHECK_EQ(b, 0);                                      /* reset control reads 0 */
	b = 0;
	pci_cf8_access(&c, 2, false, &b, 1);
	CHECK_EQ(b, 0xff);                                   /* 0xcfa: nothing decodes it */
}

int main(void)
{
	test_cf8();
	test_pm();
	test_i8042();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_pm: all checks passed\n");
	return 0;
}
