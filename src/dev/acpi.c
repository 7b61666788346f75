/* SPDX-License-Identifier: MIT */
/*
 * The ACPI tables of the machine (ACPI 6.5, chapter 5.2), built by the monitor in the BIOS area
 * 0xe0000-0xfffff where QEMU's pc machine has its firmware's: the RSDP first, on the 16-byte
 * boundary an OS without a boot-info pointer searches (5.2.5.1), then RSDT (for ACPI 1.0 readers)
 * and XSDT listing the FADT and the MADT, the FACS, the DSDT.
 *
 * FADT (5.2.9): not hardware-reduced; PM1a event and control blocks and the 24-bit PM timer at
 * QEMU's PIIX4 addresses (pm.c), RESET_REG = the reset control register 0xcf9 with 0x06 (QEMU's),
 * SCI on IRQ 9, SMI_CMD 0 (always in ACPI mode), CENTURY = CMOS 0x32, IA-PC boot flags: legacy
 * devices, an 8042, no VGA. MADT (5.2.12): one Processor Local APIC per vCPU (UID = APIC ID = index),
 * the I/O APIC at 0xfec00000 with GSI base 0 (ID 0 as QEMU's), the interrupt source overrides QEMU's
 * pc machine has for the PIT and the SCI (IRQ 0 -> GSI 2; IRQ 9 -> GSI 9 level, active high), and
 * LINT1 of every processor as NMI. No HPET table: there is no HPET.
 */
#include <stdio.h>
#include <string.h>

#include "dev/dev.h"
#include "vmm/vmm.h"

/* Offsets from the RSDP, each table aligned (FACS: 64 bytes, 5.2.10). */
#define OFF_RSDP 0x000
#define OFF_RSDT 0x040
#define OFF_XSDT 0x080
#define OFF_FACS 0x100
#define OFF_FADT 0x200
#define OFF_DSDT 0x400
#define OFF_MADT 0x800
#define ACPI_AREA_SIZE 0x1000

#define MADT_MAX_VCPUS 64

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return (uint8_t)(0 - sum);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* The 36-byte system description table header (5.2.6); the checksum is set by finish(). */
static void header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev, const char table_id[8])
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "BLVM  ", 6);     /* OEMID */
	memcpy(t + 16, table_id, 8);     /* OEM Table ID */
	put32(t + 24, 1);                /* OEM Revision */
	memcpy(t + 28, "BLVM", 4);       /* Creator ID */
	put32(t + 32, 1);                /* Creator Revision */
}

static void finish(uint8_t *t)
{
	uint32_t len = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
	t[9] = 0;
	t[9] = acpi_checksum(t, len);
}

/* Generic Address Structure (5.2.3.2): system I/O space. */
static void gas_io(uint8_t *g, uint8_t bit_width, uint8_t access_size, uint64_t port)
{
	g[0] = 1; /* System I/O */
	g[1] = bit_width;
	g[2] = 0;
	g[3] = access_size; /* 1 byte, 2 word, 3 dword */
	put64(g + 4, port);
}

/*
 * DSDT body. The ASL (iasl -d of what this builds gives it back):
 *
 *   DefinitionBlock ("", "DSDT", 2, "BLVM  ", "BLVMDSDT", 1)
 *   {
 *       Name (_S5, Package (0x04) { Zero, Zero, Zero, Zero })   // SLP_TYPa, SLP_TYPb, reserved
 *   }
 *
 * AML (ACPI 6.5, 20.2): NameOp 0x08, NameString "_S5_", PackageOp 0x12, PkgLength 6 (itself, the
 * element count and four ZeroOps), NumElements 4, ZeroOp x 4. SLP_TYPa = 0 is QEMU's PIIX4 value
 * (DEV_PM_S5_SLP_TYP).
 */
static const uint8_t dsdt_aml[] = {
	0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
};

static uint32_t build_madt(uint8_t *t, unsigned nr_vcpus)
{
	uint8_t *p = t + 44;
	put32(t + 36, (uint32_t)DEV_LAPIC_GPA); /* Local Interrupt Controller Address */
	put32(t + 40, 1);                       /* PCAT_COMPAT: the 8259 pair is there too */
	for (unsigned i = 0; i < nr_vcpus; i++) {
		p[0] = 0; /* Processor Local APIC */
		p[1] = 8;
		p[2] = (uint8_t)i; /* ACPI Processor UID */
		p[3] = (uint8_t)i; /* APIC ID */
		put32(p + 4, 1);   /* Enabled */
		p += 8;
	}
	p[0] = 1; /* I/O APIC */
	p[1] = 12;
	p[2] = 0; /* I/O APIC ID */
	p[3] = 0;
	put32(p + 4, (uint32_t)DEV_IOAPIC_GPA);
	put32(p + 8, 0); /* Global System Interrupt Base */
	p += 12;
	static const struct { uint8_t source; uint32_t gsi; uint16_t flags; } iso[] = {
		{ 0, 2, 0x0000 },                  /* PIT: conforms to the ISA bus (edge, active high) */
		{ DEV_PM_SCI_IRQ, DEV_PM_SCI_IRQ, 0x000d }, /* SCI: active high (01), level (11 << 2) */
	};
	for (unsigned i = 0; i < sizeof iso / sizeof iso[0]; i++) {
		p[0] = 2; /* Interrupt Source Override */
		p[1] = 10;
		p[2] = 0; /* bus: ISA */
		p[3] = iso[i].source;
		put32(p + 4, iso[i].gsi);
		put16(p + 8, iso[i].flags);
		p += 10;
	}
	p[0] = 4; /* Local APIC NMI */
	p[1] = 6;
	p[2] = 0xff; /* every processor */
	put16(p + 3, 0); /* conforms to the bus */
	p[5] = 1;        /* LINT1 */
	p += 6;
	return (uint32_t)(p - t);
}

uint64_t acpi_build_tables(uint8_t *ram, uint64_t mem_size, unsigned nr_vcpus, char *err, size_t errlen)
{
	const uint64_t base = BLVM_ACPI_RSDP_GPA;
	if (mem_size < base + ACPI_AREA_SIZE) {
		snprintf(err, errlen, "guest RAM (%llu bytes) does not reach the BIOS area for the ACPI tables",
			 (unsigned long long)mem_size);
		return 0;
	}
	if (nr_vcpus < 1 || nr_vcpus > MADT_MAX_VCPUS) {
		snprintf(err, errlen, "ACPI tables: %u vCPUs (1 to %d)", nr_vcpus, MADT_MAX_VCPUS);
		return 0;
	}
	uint8_t *a = ram + base;
	memset(a, 0, ACPI_AREA_SIZE);

	/* FACS (5.2.10): no checksum; version 2; no global lock, no waking vector (no S3/S4). */
	uint8_t *facs = a + OFF_FACS;
	memcpy(facs, "FACS", 4);
	put32(facs + 4, 64);
	facs[32] = 2;

	uint8_t *dsdt = a + OFF_DSDT;
	header(dsdt, "DSDT", 36 + sizeof dsdt_aml, 2, "BLVMDSDT");
	memcpy(dsdt + 36, dsdt_aml, sizeof dsdt_aml);
	finish(dsdt);

	uint8_t *f = a + OFF_FADT;
	header(f, "FACP", 276, 6, "BLVMFACP");
	put32(f + 36, (uint32_t)(base + OFF_FACS)); /* FIRMWARE_CTRL (X_FIRMWARE_CTRL stays 0) */
	put32(f + 40, (uint32_t)(base + OFF_DSDT)); /* DSDT */
	put16(f + 46, DEV_PM_SCI_IRQ);              /* SCI_INT */
	put32(f + 56, DEV_PM1A_EVT_BLK);
	put32(f + 64, DEV_PM1A_CNT_BLK);
	put32(f + 76, DEV_PM_TMR_BLK);
	f[88] = 4;                                  /* PM1_EVT_LEN */
	f[89] = 2;                                  /* PM1_CNT_LEN */
	f[91] = 4;                                  /* PM_TMR_LEN */
	put16(f + 96, 0x0fff);                      /* P_LVL2_LAT > 100: no C2 */
	put16(f + 98, 0x0fff);                      /* P_LVL3_LAT > 1000: no C3 */
	f[108] = 0x32;                              /* CENTURY: CMOS index */
	put16(f + 109, 0x0001 | 0x0002 | 0x0004);   /* IAPC_BOOT_ARCH: LEGACY_DEVICES, 8042, VGA Not Present */
	/* Flags: WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON (1: no fixed-feature buttons),
	 * RESET_REG_SUP; TMR_VAL_EXT clear (24-bit timer), HW_REDUCED_ACPI clear. */
	put32(f + 112, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5) | (1u << 10));
	gas_io(f + 116, 8, 1, DEV_RESET_CONTROL);   /* RESET_REG */
	f[128] = DEV_RESET_VALUE;                   /* RESET_VALUE */
	f[131] = 5;                                 /* FADT Minor Version: ACPI 6.5 */
	put64(f + 140, base + OFF_DSDT);            /* X_DSDT */
	gas_io(f + 148, 32, 2, DEV_PM1A_EVT_BLK);   /* X_PM1a_EVT_BLK */
	gas_io(f + 172, 16, 2, DEV_PM1A_CNT_BLK);   /* X_PM1a_CNT_BLK */
	gas_io(f + 208, 32, 3, DEV_PM_TMR_BLK);     /* X_PM_TMR_BLK */
	finish(f);

	uint8_t *m = a + OFF_MADT;
	uint32_t mlen = build_madt(m, nr_vcpus);
	header(m, "APIC", mlen, 5, "BLVMAPIC");
	finish(m);

	uint8_t *rsdt = a + OFF_RSDT;
	header(rsdt, "RSDT", 36 + 2 * 4, 1, "BLVMRSDT");
	put32(rsdt + 36, (uint32_t)(base + OFF_FADT));
	put32(rsdt + 40, (uint32_t)(base + OFF_MADT));
	finish(rsdt);

	uint8_t *xsdt = a + OFF_XSDT;
	header(xsdt, "XSDT", 36 + 2 * 8, 1, "BLVMXSDT");
	put64(xsdt + 36, base + OFF_FADT);
	put64(xsdt + 44, base + OFF_MADT);
	finish(xsdt);

	/* RSDP (5.2.5.3): revision 2; checksum over the first 20 bytes, extended checksum over 36. */
	uint8_t *r = a + OFF_RSDP;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, "BLVM  ", 6);
	r[15] = 2;
	put32(r + 16, (uint32_t)(base + OFF_RSDT));
	put32(r + 20, 36);
	put64(r + 24, base + OFF_XSDT);
	r[8] = acpi_checksum(r, 20);
	r[32] = acpi_checksum(r, 36);
	return base + OFF_RSDP;
}
