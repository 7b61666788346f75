/* SPDX-License-Identifier: MIT */
/*
 * The ACPI tables (src/dev/acpi.c) for every vCPU count from 1 to 64, read back as an OS reads them (ACPI 6.5
 * chapter 5): the RSDP at 0xe0000 with both checksums and revision 2, RSDT and XSDT listing the
 * same FADT and MADT, every table's checksum, the FADT's PM and reset registers and flags as pm.c
 * implements them, the DSDT's _S5 package, the MADT's entries (one enabled Local APIC per vCPU with
 * APIC ID = UID = index, the I/O APIC, the two overrides, the LINT1 NMI). Then, where iasl is
 * installed (acpica-tools), each table is disassembled by it: the oracle must report no error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)
#define CHECK_EQ(a, b) do { unsigned long long _a = (a), _b = (b); if (_a != _b) { \
	fprintf(stderr, "%s:%d: %s = 0x%llx, expected 0x%llx\n", __FILE__, __LINE__, #a, _a, _b); failures++; } } while (0)

#define MEM (2u << 20)

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void iasl_check(const uint8_t *t, const char *name)
{
	if (system("command -v iasl >/dev/null 2>&1") != 0)
		return;
	char dir[] = "/tmp/dev_acpi.XXXXXX";
	if (!mkdtemp(dir))
		return;
	char path[128], cmd[512];
	snprintf(path, sizeof path, "%s/%s.dat", dir, name);
	FILE *f = fopen(path, "wb");
	fwrite(t, 1, rd32(t + 4), f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "cd %s && iasl -d %s.dat >log 2>&1 && ! grep -Eiq '(^| )(error|warning)' log "
		 "&& test -s %s.dsl", dir, name, name);
	int r = system(cmd);
	if (r != 0) {
		fprintf(stderr, "iasl -d %s failed or warned:\n", name);
		snprintf(cmd, sizeof cmd, "cat %s/log >&2", dir);
		if (system(cmd)) {}
		failures++;
	} else {
		printf("iasl -d %s: no errors or warnings\n", name);
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {}
}

static void check(unsigned nr, bool with_iasl)
{
	uint8_t *ram = calloc(1, MEM);
	char err[200];
	uint64_t rsdp = acpi_build_tables(ram, MEM, nr, err, sizeof err);
	CHECK_EQ(rsdp, 0xe0000);
	const uint8_t *r = ram + rsdp;
	CHECK(memcmp(r, "RSD PTR ", 8) == 0);
	CHECK_EQ(sum(r, 20), 0);
	CHECK_EQ(sum(r, 36), 0);
	CHECK_EQ(r[15], 2);
	CHECK_EQ(rd32(r + 20), 36);
	const uint8_t *rsdt = ram + rd32(r + 16), *xsdt = ram + rd64(r + 24);
	CHECK(memcmp(rsdt, "RSDT", 4) == 0 && memcmp(xsdt, "XSDT", 4) == 0);
	CHECK_EQ(sum(rsdt, rd32(rsdt + 4)), 0);
	CHECK_EQ(sum(xsdt, rd32(xsdt + 4)), 0);
	CHECK_EQ(rd32(rsdt + 4), 36 + 8);
	CHECK_EQ(rd32(xsdt + 4), 36 + 16);
	CHECK_EQ(rd32(rsdt + 36), rd64(xsdt + 36));
	CHECK_EQ(rd32(rsdt + 40), rd64(xsdt + 44));
	const uint8_t *fadt = ram + rd64(xsdt + 36), *madt = ram + rd64(xsdt + 44);
	CHECK(memcmp(fadt, "FACP", 4) == 0 && memcmp(madt, "APIC", 4) == 0);
	CHECK_EQ(sum(fadt, rd32(fadt + 4)), 0);
	CHECK_EQ(rd32(fadt + 4), 276);
	CHECK_EQ(fadt[8], 6);
	CHECK_EQ(rd16(fadt + 46), 9);
	CHECK_EQ(rd32(fadt + 48), 0);               /* SMI_CMD: always ACPI mode */
	CHECK_EQ(rd32(fadt + 56), DEV_PM1A_EVT_BLK);
	CHECK_EQ(rd32(fadt + 64), DEV_PM1A_CNT_BLK);
	CHECK_EQ(rd32(fadt + 76), DEV_PM_TMR_BLK);
	CHECK_EQ(fadt[88], 4);
	CHECK_EQ(fadt[89], 2);
	CHECK_EQ(fadt[91], 4);
	CHECK_EQ(rd16(fadt + 109), 0x7);
	uint32_t flags = rd32(fadt + 112);
	CHECK(flags & (1u << 10));                  /* RESET_REG_SUP */
	CHECK(!(flags & (1u << 8)));                /* TMR_VAL_EXT: the timer has 24 bits */
	CHECK(!(flags & (1u << 20)));               /* not HW_REDUCED_ACPI */
	CHECK_EQ(fadt[116], 1);                     /* RESET_REG in system I/O */
	CHECK_EQ(fadt[117], 8);
	CHECK_EQ(rd64(fadt + 120), DEV_RESET_CONTROL);
	CHECK_EQ(fadt[128], DEV_RESET_VALUE);
	CHECK_EQ(rd64(fadt + 152), DEV_PM1A_EVT_BLK);
	CHECK_EQ(rd64(fadt + 176), DEV_PM1A_CNT_BLK);
	CHECK_EQ(rd64(fadt + 212), DEV_PM_TMR_BLK);
	const uint8_t *facs = ram + rd32(fadt + 36);
	CHECK(memcmp(facs, "FACS", 4) == 0 && rd32(facs + 4) == 64 && (rd32(fadt + 36) & 63) == 0);
	const uint8_t *dsdt = ram + rd32(fadt + 40);
	CHECK_EQ(rd64(fadt + 140), rd32(fadt + 40));
	CHECK(memcmp(dsdt, "DSDT", 4) == 0);
	CHECK_EQ(sum(dsdt, rd32(dsdt + 4)), 0);
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0, 0, 0, 0 };
	CHECK(rd32(dsdt + 4) == 36 + sizeof s5 && memcmp(dsdt + 36, s5, sizeof s5) == 0);
	/* MADT */
	CHECK_EQ(sum(madt, rd32(madt + 4)), 0);
	CHECK_EQ(rd32(madt + 36), 0xfee00000);
	CHECK_EQ(rd32(madt + 40), 1);
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	uint32_t len = rd32(madt + 4), o = 44;
	while (o + 2 <= len) {
		const uint8_t *e = madt + o;
		switch (e[0]) {
		case 0:
			CHECK_EQ(e[1], 8);
			CHECK_EQ(e[2], lapics);
			CHECK_EQ(e[3], lapics);
			CHECK_EQ(rd32(e + 4), 1);
			lapics++;
			break;
		case 1:
			CHECK_EQ(e[1], 12);
			CHECK_EQ(rd32(e + 4), 0xfec00000);
			CHECK_EQ(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			CHECK_EQ(e[1], 10);
			if (e[3] == 0)
				CHECK(rd32(e + 4) == 2 && rd16(e + 8) == 0);
			else
				CHECK(e[3] == 9 && rd32(e + 4) == 9 && rd16(e + 8) == 0xd);
			isos++;
			break;
		case 4:
			CHECK(e[1] == 6 && e[2] == 0xff && e[5] == 1);
			nmis++;
			break;
		default:
			CHECK(!"unexpected MADT entry");
		}
		o += e[1];
	}
	CHECK_EQ(o, len);
	CHECK_EQ(lapics, nr);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(isos, 2);
	CHECK_EQ(nmis, 1);
	/* Everything inside the BIOS area. */
	CHECK(rd64(xsdt + 44) + len <= BLVM_BIOS_AREA_END);
	if (with_iasl) {
		iasl_check(fadt, "facp");
		iasl_check(madt, "apic");
		iasl_check(dsdt, "dsdt");
		iasl_check(xsdt, "xsdt");
		iasl_check(facs, "facs");
	}
	free(ram);
}

int main(void)
{
	/* every count the MADT takes (the input is this small: all of it, not a sample or a fuzzer) */
	for (unsigned n = 1; n <= 64; n++)
		check(n, n == 64);
	uint8_t *ram = calloc(1, MEM);
	char err[200];
	CHECK_EQ(acpi_build_tables(ram, 0xe0000, 1, err, sizeof err), 0);
	CHECK_EQ(acpi_build_tables(ram, MEM, 65, err, sizeof err), 0);
	free(ram);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_acpi: all checks passed\n");
	return 0;
}
