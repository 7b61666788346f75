/* SPDX-License-Identifier: MIT */
/*
 * platform: reads what a PC kernel reads of the platform and prints it, one fact a line:
 *   - the ACPI tables: the RSDP (from hvm_start_info.rsdp_paddr, else by the search of the BIOS area
 *     0xe0000-0xfffff that ACPI 6.5 5.2.5.1 prescribes), every checksum, the tables XSDT (or RSDT)
 *     lists, the FADT's PM and reset registers, the MADT's processors and I/O APIC, the DSDT's _S5;
 *   - fw_cfg (ports 0x510/0x511): signature, CPU count, RAM size;
 *   - the CMOS RTC: the date and time in 24-hour binary and in BCD, and the memory size fields.
 * Exits 0 when every checksum is right and fw_cfg and ACPI agree on the CPU count, 1 otherwise.
 */
#include "rt.h"

static int bad;

static uint8_t sum(const void *p, unsigned len)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	for (unsigned i = 0; i < len; i++)
		s = (uint8_t)(s + b[i]);
	return s;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static bool sig(const uint8_t *p, const char *s)
{
	for (int i = 0; s[i]; i++)
		if (p[i] != (uint8_t)s[i])
			return false;
	return true;
}

static const uint8_t *find_rsdp(void)
{
	const struct hvm_start_info *si = rt_start_info();
	if (si && si->rsdp_paddr && si->rsdp_paddr < (1ull << 32))
		return (const uint8_t *)(uintptr_t)si->rsdp_paddr;
	for (uintptr_t a = 0xe0000; a < 0x100000; a += 16)
		if (sig((const uint8_t *)a, "RSD PTR ") && sum((const uint8_t *)a, 20) == 0)
			return (const uint8_t *)a;
	return 0;
}

static unsigned madt_cpus;

static void table(const uint8_t *t)
{
	uint32_t len = rd32(t + 4);
	rt_printf("acpi: %c%c%c%c rev %u len %u checksum %s\n", t[0], t[1], t[2], t[3], t[8], len,
		  sum(t, len) ? "BAD" : "ok");
	bad |= sum(t, len) != 0;
	if (sig(t, "FACP")) {
		rt_printf("fadt: sci %u pm1a_evt 0x%x pm1a_cnt 0x%x pm_tmr 0x%x flags 0x%x boot_arch 0x%x\n",
			  t[46] | t[47] << 8, rd32(t + 56), rd32(t + 64), rd32(t + 76), rd32(t + 112),
			  t[109] | t[110] << 8);
		if (len >= 129)
			rt_printf("fadt: reset_reg space %u 0x%lx value 0x%x\n", t[116], rd64(t + 120), t[128]);
		const uint8_t *dsdt = (const uint8_t *)(uintptr_t)rd32(t + 40);
		uint32_t dlen = rd32(dsdt + 4);
		rt_printf("acpi: DSDT len %u checksum %s\n", dlen, sum(dsdt, dlen) ? "BAD" : "ok");
		bad |= sum(dsdt, dlen) != 0;
		for (uint32_t i = 36; i + 8 <= dlen; i++)
			if (dsdt[i] == 0x08 && sig(dsdt + i + 1, "_S5_") && dsdt[i + 5] == 0x12) {
				const uint8_t *e = dsdt + i + 8; /* one-byte PkgLength, NumElements */
				rt_printf("dsdt: _S5 SLP_TYPa %u\n", e[0] == 0x0a ? e[1] : e[0] == 0x01 ? 1 : 0);
				break;
			}
	}
	if (sig(t, "APIC")) {
		unsigned ioapics = 0;
		uint32_t ioapic_addr = 0;
		for (uint32_t o = 44; o + 2 <= len && t[o + 1] >= 2; o += t[o + 1]) {
			if (t[o] == 0 && (rd32(t + o + 4) & 1))
				madt_cpus++;
			if (t[o] == 1) {
				ioapics++;
				ioapic_addr = rd32(t + o + 4);
			}
			if (t[o] == 2)
				rt_printf("madt: override irq %u -> gsi %u flags 0x%x\n", t[o + 3], rd32(t + o + 4),
					  t[o + 8] | t[o + 9] << 8);
		}
		rt_printf("madt: %u processors, %u I/O APIC at 0x%x\n", madt_cpus, ioapics, ioapic_addr);
	}
}

static void acpi(void)
{
	const uint8_t *r = find_rsdp();
	if (!r) {
		rt_puts("acpi: no RSDP\n");
		bad = 1;
		return;
	}
	bool v2 = r[15] >= 2;
	rt_printf("acpi: RSDP at 0x%lx rev %u checksum %s", (unsigned long)(uintptr_t)r, r[15],
		  sum(r, 20) ? "BAD" : "ok");
	bad |= sum(r, 20) != 0;
	if (v2) {
		rt_printf(" extended %s", sum(r, 36) ? "BAD" : "ok");
		bad |= sum(r, 36) != 0;
	}
	rt_puts("\n");
	const uint8_t *sdt = v2 && rd64(r + 24) ? (const uint8_t *)(uintptr_t)rd64(r + 24)
						 : (const uint8_t *)(uintptr_t)rd32(r + 16);
	unsigned esz = v2 && rd64(r + 24) ? 8 : 4;
	uint32_t len = rd32(sdt + 4);
	rt_printf("acpi: %c%c%c%c checksum %s, %u entries\n", sdt[0], sdt[1], sdt[2], sdt[3],
		  sum(sdt, len) ? "BAD" : "ok", (len - 36) / esz);
	bad |= sum(sdt, len) != 0;
	for (uint32_t o = 36; o + esz <= len; o += esz)
		table((const uint8_t *)(uintptr_t)(esz == 8 ? rd64(sdt + o) : rd32(sdt + o)));
	if (v2 && rd32(r + 16)) {
		const uint8_t *rsdt = (const uint8_t *)(uintptr_t)rd32(r + 16);
		rt_printf("acpi: RSDT checksum %s\n", sum(rsdt, rd32(rsdt + 4)) ? "BAD" : "ok");
		bad |= sum(rsdt, rd32(rsdt + 4)) != 0;
	}
}

static uint64_t fw_cfg(uint16_t key, unsigned n)
{
	outw(0x510, key);
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)inb(0x511) << (8 * i);
	return v;
}

static uint8_t cmos(uint8_t i)
{
	outb(0x70, i);
	return inb(0x71);
}

static unsigned bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }

static void rtc(void)
{
	/* MC146818: wait for UIP to clear, then read. 24-hour binary first, then BCD. */
	uint8_t b = cmos(0x0b);
	outb(0x70, 0x0b);
	outb(0x71, (uint8_t)(b | 0x06));
	while (cmos(0x0a) & 0x80)
		;
	rt_printf("rtc: binary %u%02u-%02u-%02u %02u:%02u\n", cmos(0x32) , cmos(0x09), cmos(0x08), cmos(0x07),
		  cmos(0x04), cmos(0x02));
	outb(0x70, 0x0b);
	outb(0x71, (uint8_t)((b & ~0x04) | 0x02));
	while (cmos(0x0a) & 0x80)
		;
	rt_printf("rtc: bcd %u%02u-%02u-%02u\n", bcd(cmos(0x32)), bcd(cmos(0x09)), bcd(cmos(0x08)), bcd(cmos(0x07)));
	rt_printf("rtc: register d 0x%x, above 16M %u x 64K\n", cmos(0x0d), cmos(0x34) | cmos(0x35) << 8);
}

int guest_main(void)
{
	acpi();
	char s[5] = { 0 };
	uint32_t signature = (uint32_t)fw_cfg(0, 4);
	for (int i = 0; i < 4; i++)
		s[i] = (char)(signature >> (8 * i));
	unsigned cpus = (unsigned)fw_cfg(5, 2);
	rt_printf("fw_cfg: signature %s, %u cpus, ram %lu MiB\n", s, cpus, (unsigned long)(fw_cfg(3, 8) >> 20));
	if (cpus != madt_cpus) {
		rt_printf("platform: fw_cfg says %u CPUs, the MADT %u\n", cpus, madt_cpus);
		bad = 1;
	}
	rtc();
	rt_puts(bad ? "platform: FAIL\n" : "platform: ok\n");
	return bad;
}
