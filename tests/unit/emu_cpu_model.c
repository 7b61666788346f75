/* SPDX-License-Identifier: MIT */
/*
 * emu_cpu_model: each CPU model is a real part, and advertises only features that part has. A guest
 * kernel picks errata workarounds and quirks by family/model/stepping, so the signature must name a
 * part with every advertised feature (the model may advertise a subset of the part's, never more).
 *
 * The oracle is the parts' feature words, written out here from QEMU's named models of them
 * (qemu target/i386/cpu.c builtin_x86_defs[], commit 0048035a87: "SapphireRapids" and
 * "EPYC-Genoa", with their family/model/stepping and model_id), plus what QEMU's tables leave
 * out and the parts have, each with its source:
 *  - the AMD aliases of 1:EDX in 8000_0001H:EDX (APM Vol. 3 E.4.2; QEMU adds them to every AMD
 *    model, CPUID_EXT2_AMD_ALIASES);
 *  - the invariant TSC, 8000_0007H:EDX[8] (both parts; QEMU's named models omit it as not
 *    migratable);
 *  - Sapphire Rapids: TSC_ADJUST and friends of QEMU's SapphireRapids-v3, and PKS ("Protection
 *    Keys Supervisor (PKS) is a feature which can be found on: Sapphire Rapids (and later)", the
 *    PKS series' Documentation/core-api/protection-keys.rst).
 * Besides the part's own, a bit may be one the hypervisor gives every guest whatever the host, as
 * KVM does (arch/x86/kvm/cpuid.c kvm_set_cpu_caps: "KVM emulates x2apic in software irrespective
 * of host support", "TSC_ADJUST and ARCH_CAPABILITIES are emulated in software"; the TSC-deadline
 * timer of its LAPIC, KVM_CAP_TSC_DEADLINE_TIMER; HYPERVISOR, 1:ECX[31]), or a mirror of CR4
 * (OSXSAVE of XSAVE, OSPKE of PKU; SDM Vol. 2 CPUID). Checked for both models: the vendor string,
 * the signature decoded as SDM Vol. 2 CPUID says (family 0FH adds the extended family, families 6
 * and 0FH the extended model), the brand string, the largest leaves, every advertised bit of
 * every feature word, the XCR0 components (CPUID.(0DH,0):EAX) and XSAVE features (0DH.1:EAX);
 * the cache leaves against the part's caches as QEMU's cache models give them (Intel leaves 2 and
 * 4, decoded as SDM Vol. 2 CPUID says; AMD 8000_0005H/6H, APM Vol. 3 E.4.4-5), their sharing
 * against leaf 0BH's topology for 1, 3 and 5 vCPUs (and AMD's NC, 8000_0008H:ECX); and the
 * model-specific MSR a guest kernel's quirks for the part touch (NB_CFG on AMD).
 */
#include "emu_harness.h"
#include "emu/emu.h"

#define B(n) (1u << (n))
enum { EAX, EBX, ECX, EDX };

/* the feature words: leaf, sub-leaf, register */
static const struct word { uint32_t leaf, sub; int reg; const char *name; } words[] = {
	{ 1, 0, EDX, "1:EDX" },
	{ 1, 0, ECX, "1:ECX" },
	{ 6, 0, EAX, "06H:EAX" },
	{ 7, 0, EBX, "07H.0:EBX" },
	{ 7, 0, ECX, "07H.0:ECX" },
	{ 7, 0, EDX, "07H.0:EDX" },
	{ 7, 1, EAX, "07H.1:EAX" },
	{ 0xd, 1, EAX, "0DH.1:EAX" },
	{ 0x80000001, 0, ECX, "8000_0001H:ECX" },
	{ 0x80000001, 0, EDX, "8000_0001H:EDX" },
	{ 0x80000007, 0, EDX, "8000_0007H:EDX" },
	{ 0x80000008, 0, EBX, "8000_0008H:EBX" },
};
#define NW (sizeof words / sizeof words[0])
enum { W1D, W1C, W6A, W7B, W7C, W7D, W71A, WD1A, WE1C, WE1D, WE7D, WE8B };

/* 1:EDX as QEMU's two models list it (identical): FP87 VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR
 * PGE MCA CMOV PAT PSE36 CLFLUSH MMX FXSR SSE SSE2 */
#define EDX1_BOTH                                                                                        \
	(B(0) | B(1) | B(2) | B(3) | B(4) | B(5) | B(6) | B(7) | B(8) | B(9) | B(11) | B(12) | B(13) | B(14) | \
	 B(15) | B(16) | B(17) | B(19) | B(23) | B(24) | B(25) | B(26))
#define AMD_ALIASES 0x0183f3ffu /* 1:EDX bits duplicated in 8000_0001H:EDX (APM Vol. 3 E.4.2) */

struct part {
	const char *model, *vendor, *brand;
	unsigned family, modelno, stepping;
	uint32_t max_basic, max_ext; /* QEMU's .level and .xlevel */
	uint64_t xcr0;               /* the state components of its features (XSAVE-enabled) */
	/* its caches, as QEMU's cache model of it: L1d, L1i, L2, L3 (KiB, ways; 64-byte lines) */
	struct { unsigned kib, ways; } cache[4];
	uint32_t has[NW];            /* the part's feature bits */
	uint32_t hypervisor[NW];     /* what the hypervisor adds for every guest (KVM) */
};

static const struct part parts[2] = {
	{
		/* QEMU "SapphireRapids" (and -v3: ss tsc-adjust cldemote movdiri movdir64b) */
		.model = "--cpu=intel", .vendor = "GenuineIntel", .brand = "Intel Xeon Processor (SapphireRapids)",
		.family = 6, .modelno = 0x8f, .stepping = 4, .max_basic = 0x20, .max_ext = 0x80000008,
		/* x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM PKRU XTILECFG XTILEDATA */
		.xcr0 = 0x602e7,
		/* xeon_spr_cache_info ("SapphireRapids-v4", read from a Sapphire Rapids SP) */
		.cache = { { 48, 12 }, { 32, 8 }, { 2048, 16 }, { 60 * 1024, 15 } },
		.has = {
			[W1D] = EDX1_BOTH | B(27) /* SS */,
			/* SSE3 PCLMULQDQ SSSE3 FMA CX16 PCID SSE41 SSE42 X2APIC MOVBE POPCNT TSC_DEADLINE
			 * AES XSAVE AVX F16C RDRAND */
			[W1C] = B(0) | B(1) | B(9) | B(12) | B(13) | B(17) | B(19) | B(20) | B(21) | B(22) | B(23) |
				B(24) | B(25) | B(26) | B(28) | B(29) | B(30),
			[W6A] = B(2), /* ARAT */
			/* FSGSBASE TSC_ADJUST(-v3) BMI1 HLE AVX2 SMEP BMI2 ERMS INVPCID RTM AVX512F AVX512DQ
			 * RDSEED ADX SMAP AVX512IFMA CLFLUSHOPT CLWB AVX512CD SHA_NI AVX512BW AVX512VL */
			[W7B] = B(0) | B(1) | B(3) | B(4) | B(5) | B(7) | B(8) | B(9) | B(10) | B(11) | B(16) |
				B(17) | B(18) | B(19) | B(20) | B(21) | B(23) | B(24) | B(28) | B(29) | B(30) | B(31),
			/* AVX512_VBMI UMIP PKU AVX512_VBMI2 GFNI VAES VPCLMULQDQ AVX512VNNI AVX512BITALG
			 * AVX512_VPOPCNTDQ LA57 RDPID BUS_LOCK_DETECT CLDEMOTE(-v3) MOVDIRI(-v3)
			 * MOVDIR64B(-v3) PKS(protection-keys.rst) */
			[W7C] = B(1) | B(2) | B(3) | B(6) | B(8) | B(9) | B(10) | B(11) | B(12) | B(14) | B(16) |
				B(22) | B(24) | B(25) | B(27) | B(28) | B(31),
			/* FSRM SERIALIZE TSX_LDTRK AMX_BF16 AVX512_FP16 AMX_TILE AMX_INT8 SPEC_CTRL
			 * ARCH_CAPABILITIES SPEC_CTRL_SSBD */
			[W7D] = B(4) | B(14) | B(16) | B(22) | B(23) | B(24) | B(25) | B(26) | B(29) | B(31),
			[W71A] = B(4) | B(5) | B(10) | B(11) | B(12), /* AVX_VNNI AVX512_BF16 FZRM FSRS FSRC */
			[WD1A] = B(0) | B(1) | B(2) | B(3) | B(4), /* XSAVEOPT XSAVEC XGETBV1 XSAVES XFD */
			[WE1C] = B(0) | B(5) | B(8), /* LAHF_LM ABM 3DNOWPREFETCH */
			[WE1D] = B(11) | B(20) | B(26) | B(27) | B(29), /* SYSCALL NX PDPE1GB RDTSCP LM */
			[WE7D] = B(8), /* invariant TSC */
			[WE8B] = B(9), /* WBNOINVD */
		},
		.hypervisor = { [W1C] = B(31) /* HYPERVISOR */ },
	},
	{
		/* QEMU "EPYC-Genoa" */
		.model = "--cpu=amd", .vendor = "AuthenticAMD", .brand = "AMD EPYC-Genoa Processor",
		.family = 0x19, .modelno = 0x11, .stepping = 0, .max_basic = 0xd, .max_ext = 0x80000022,
		.xcr0 = 0x2e7, /* x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM PKRU */
		.cache = { { 32, 8 }, { 32, 8 }, { 1024, 8 }, { 32 * 1024, 16 } }, /* epyc_genoa_cache_info */
		.has = {
			[W1D] = EDX1_BOTH,
			/* SSE3 PCLMULQDQ MONITOR SSSE3 FMA CX16 PCID SSE41 SSE42 MOVBE POPCNT AES XSAVE AVX
			 * F16C RDRAND */
			[W1C] = B(0) | B(1) | B(3) | B(9) | B(12) | B(13) | B(17) | B(19) | B(20) | B(22) | B(23) |
				B(25) | B(26) | B(28) | B(29) | B(30),
			[W6A] = B(2), /* ARAT */
			/* FSGSBASE BMI1 AVX2 SMEP BMI2 ERMS INVPCID AVX512F AVX512DQ RDSEED ADX SMAP
			 * AVX512IFMA CLFLUSHOPT CLWB AVX512CD SHA_NI AVX512BW AVX512VL */
			[W7B] = B(0) | B(3) | B(5) | B(7) | B(8) | B(9) | B(10) | B(16) | B(17) | B(18) | B(19) |
				B(20) | B(21) | B(23) | B(24) | B(28) | B(29) | B(30) | B(31),
			/* AVX512_VBMI UMIP PKU AVX512_VBMI2 GFNI VAES VPCLMULQDQ AVX512VNNI AVX512BITALG
			 * AVX512_VPOPCNTDQ LA57 RDPID */
			[W7C] = B(1) | B(2) | B(3) | B(6) | B(8) | B(9) | B(10) | B(11) | B(12) | B(14) | B(16) |
				B(22),
			[W7D] = B(4), /* FSRM */
			[W71A] = B(5), /* AVX512_BF16 */
			[WD1A] = B(0) | B(1) | B(2) | B(3), /* XSAVEOPT XSAVEC XGETBV1 XSAVES */
			/* LAHF_LM SVM CR8LEG ABM SSE4A MISALIGNSSE 3DNOWPREFETCH OSVW TOPOEXT PERFCORE */
			[WE1C] = B(0) | B(2) | B(4) | B(5) | B(6) | B(7) | B(8) | B(9) | B(22) | B(23),
			/* SYSCALL NX MMXEXT FFXSR PDPE1GB RDTSCP LM, and the aliases of 1:EDX */
			[WE1D] = B(11) | B(20) | B(22) | B(25) | B(26) | B(27) | B(29) | (EDX1_BOTH & AMD_ALIASES),
			[WE7D] = B(8), /* invariant TSC */
			/* CLZERO XSAVEERPTR WBNOINVD IBPB IBRS STIBP STIBP_ALWAYS_ON AMD_SSBD AMD_PSFD */
			[WE8B] = B(0) | B(2) | B(9) | B(12) | B(14) | B(15) | B(17) | B(24) | B(28),
		},
		/* KVM's for every guest: X2APIC, TSC_DEADLINE, HYPERVISOR; TSC_ADJUST; ARCH_CAPABILITIES */
		.hypervisor = { [W1C] = B(21) | B(24) | B(31), [W7B] = B(1), [W7D] = B(29) },
	},
};

static void check_model(struct emu_vcpu *c, const struct part *p)
{
	uint32_t o[4];
	char vendor[13] = { 0 }, brand[49] = { 0 };

	emu_cpuid(c, 0, 0, o);
	memcpy(vendor, &o[1], 4);
	memcpy(vendor + 4, &o[3], 4);
	memcpy(vendor + 8, &o[2], 4);
	uint32_t max_basic = o[0];
	CHECK(!strcmp(vendor, p->vendor), "%s: vendor %s, the part's is %s", p->model, vendor, p->vendor);
	CHECK(max_basic <= p->max_basic, "%s: largest basic leaf %#x, the part's %#x", p->model, max_basic,
	      p->max_basic);
	emu_cpuid(c, 0x80000000, 0, o);
	uint32_t max_ext = o[0];
	CHECK(max_ext >= 0x80000004 && max_ext <= p->max_ext, "%s: largest extended leaf %#x, the part's %#x",
	      p->model, max_ext, p->max_ext);

	/* SDM Vol. 2 CPUID, "Processor Signature": the family, model and stepping it names */
	emu_cpuid(c, 1, 0, o);
	uint32_t sig = o[0];
	unsigned fam = (sig >> 8) & 0xf, model = (sig >> 4) & 0xf, stepping = sig & 0xf;
	if (fam == 0xf)
		fam += (sig >> 20) & 0xff;
	if (fam == 6 || fam >= 0xf)
		model |= ((sig >> 16) & 0xf) << 4;
	CHECK(fam == p->family && model == p->modelno && stepping == p->stepping && !(sig >> 28) &&
	      !((sig >> 12) & 3),
	      "%s: signature %#x is family %#x model %#x stepping %u, the part is family %#x model %#x stepping %u",
	      p->model, sig, fam, model, stepping, p->family, p->modelno, p->stepping);
	for (uint32_t l = 0; l < 3; l++) {
		emu_cpuid(c, 0x80000002 + l, 0, o);
		memcpy(brand + 16 * l, o, 16);
	}
	CHECK(!strcmp(brand, p->brand), "%s: brand string \"%s\", the part's \"%s\"", p->model, brand, p->brand);
	printf("%s: %s family %#x model %#x stepping %u (CPUID.1:EAX %#010x) \"%s\"\n", p->model, vendor, fam, model,
	       stepping, sig, brand);

	/* every advertised bit of every feature word */
	uint32_t adv[NW];
	unsigned nbits = 0;
	for (unsigned w = 0; w < NW; w++) {
		const struct word *wd = &words[w];
		bool in_range = wd->leaf >= 0x80000000 ? wd->leaf <= max_ext : wd->leaf <= max_basic;
		emu_cpuid(c, wd->leaf, wd->sub, o);
		adv[w] = in_range ? o[wd->reg] : 0;
	}
	for (unsigned w = 0; w < NW; w++) {
		uint32_t allowed = p->has[w] | p->hypervisor[w];
		/* the mirrors of CR4: OSXSAVE with XSAVE, OSPKE with PKU */
		if (w == W1C && (adv[W1C] & B(26)))
			allowed |= B(27);
		if (w == W7C && (adv[W7C] & B(3)))
			allowed |= B(4);
		for (unsigned b = 0; b < 32; b++) {
			if (!((adv[w] >> b) & 1))
				continue;
			nbits++;
			CHECK((allowed >> b) & 1, "%s: advertises CPUID %s[%u], which %s (%s) does not have", p->model,
			      words[w].name, b, p->brand, p->vendor);
		}
	}
	/* AMD: 8000_0001H:EDX repeats 1:EDX's aliased bits exactly (APM Vol. 3 E.4.2) */
	if (!strcmp(p->vendor, "AuthenticAMD"))
		CHECK((adv[WE1D] & AMD_ALIASES) == (adv[W1D] & AMD_ALIASES),
		      "%s: 8000_0001H:EDX aliases %#x, 1:EDX has %#x", p->model, adv[WE1D] & AMD_ALIASES,
		      adv[W1D] & AMD_ALIASES);
	/* the XSAVE state components it can enable */
	if (adv[W1C] & B(26)) {
		emu_cpuid(c, 0xd, 0, o);
		uint64_t xcr0 = o[0] | (uint64_t)o[3] << 32;
		CHECK(!(xcr0 & ~p->xcr0), "%s: XCR0 components %#llx, the part has %#llx", p->model,
		      (unsigned long long)xcr0, (unsigned long long)p->xcr0);
	}
	/* the features the model must have to be what the README says it is (not a vacuous pass) */
	CHECK((adv[W1D] & (B(0) | B(25) | B(26))) == (B(0) | B(25) | B(26)), "%s: no FPU/SSE/SSE2 %#x", p->model,
	      adv[W1D]);
	CHECK((adv[W7C] & (B(2) | B(3) | B(16))) == (B(2) | B(3) | B(16)), "%s: no UMIP/PKU/LA57 %#x", p->model,
	      adv[W7C]);
	/* the hypervisor bit, as a guest of KVM (with QEMU or any KVM monitor) finds it: Linux reads it
	 * (X86_FEATURE_HYPERVISOR) before it looks at leaf 0x40000000 and trusts a virtual TSC */
	CHECK(adv[W1C] & B(31), "%s: CPUID.1:ECX[31] (hypervisor present) is clear %#x", p->model, adv[W1C]);
	printf("%s: %u advertised feature bits, each one the part's or the hypervisor's\n", p->model, nbits);
}

/* 8000_0006H's associativity field (SDM Vol. 2 CPUID; APM Vol. 3 E.4.5) */
static unsigned ways_of(unsigned code)
{
	static const unsigned w[16] = { 0, 1, 2, 0, 4, 0, 8, 0, 16, 0, 32, 48, 64, 96, 128, 0 };
	return w[code & 15];
}

/* The cache leaves describe the part's caches, and their sharing agrees with leaf 0BH, for nv vCPUs */
static void check_caches(struct emu_vcpu *c, const struct part *p, unsigned nv)
{
	static const char *const lvl[4] = { "L1d", "L1i", "L2", "L3" };
	bool amd = !strcmp(p->vendor, "AuthenticAMD");
	uint32_t o[4];
	c->vm->cfg.nr_vcpus = nv;
	emu_cpuid(c, 0xb, 1, o);
	unsigned core_bits = o[0] & 31; /* x2APIC ID bits of the package's cores */
	CHECK(o[1] == nv && (1u << core_bits) >= nv, "%s, %u vCPUs: leaf 0BH.1 EAX %#x EBX %#x", p->model, nv, o[0],
	      o[1]);
	if (!amd) {
		/* SDM Vol. 2 CPUID leaf 04H: size = ways x partitions x line size x sets */
		for (unsigned k = 0; k < 5; k++) {
			emu_cpuid(c, 4, k, o);
			unsigned type = o[0] & 31;
			if (k == 4) {
				CHECK(type == 0, "%s: leaf 04H.4 is a cache (type %u): the part has 4", p->model, type);
				break;
			}
			unsigned level = (o[0] >> 5) & 7, sharing = ((o[0] >> 14) & 0xfff) + 1,
				 cores = ((o[0] >> 26) & 63) + 1;
			unsigned ways = (o[1] >> 22) + 1, parts = ((o[1] >> 12) & 0x3ff) + 1, line = (o[1] & 0xfff) + 1;
			uint64_t bytes = (uint64_t)ways * parts * line * ((uint64_t)o[2] + 1);
			unsigned want_type = k == 0 ? 1 : k == 1 ? 2 : 3, want_level = k < 2 ? 1 : k;
			CHECK(type == want_type && level == want_level && line == 64 && ways == p->cache[k].ways &&
			      bytes == (uint64_t)p->cache[k].kib << 10,
			      "%s: leaf 04H.%u: type %u level %u, %u ways x %u x %u B x %u sets = %llu B; the part's %s: "
			      "%u KiB, %u ways", p->model, k, type, level, ways, parts, line, o[2] + 1,
			      (unsigned long long)bytes, lvl[k], p->cache[k].kib, p->cache[k].ways);
			CHECK(cores == 1u << core_bits && sharing == (k == 3 ? 1u << core_bits : 1u),
			      "%s, %u vCPUs: leaf 04H.%u: %u core IDs, %u sharing; leaf 0BH: %u", p->model, nv, k, cores,
			      sharing, 1u << core_bits);
		}
		emu_cpuid(c, 2, 0, o);
		CHECK(o[0] == 0xff01 && !o[1] && !o[2] && !o[3], "%s: leaf 02H %#x %#x %#x %#x, want descriptor FFH",
		      p->model, o[0], o[1], o[2], o[3]);
		emu_cpuid(c, 0x80000006, 0, o);
		CHECK((o[2] >> 16) == p->cache[2].kib && ways_of(o[2] >> 12) == p->cache[2].ways && (o[2] & 0xff) == 64,
		      "%s: 8000_0006H ECX %#x, the part's L2: %u KiB %u ways", p->model, o[2], p->cache[2].kib,
		      p->cache[2].ways);
		return;
	}
	/* APM Vol. 3 E.4.4, E.4.5 */
	emu_cpuid(c, 0x80000005, 0, o);
	for (unsigned k = 0; k < 2; k++) {
		uint32_t r = o[2 + k];
		CHECK((r >> 24) == p->cache[k].kib && ((r >> 16) & 0xff) == p->cache[k].ways && (r & 0xff) == 64,
		      "%s: 8000_0005H %s %#x, the part's %s: %u KiB %u ways", p->model, k ? "EDX" : "ECX", r, lvl[k],
		      p->cache[k].kib, p->cache[k].ways);
	}
	emu_cpuid(c, 0x80000006, 0, o);
	CHECK((o[2] >> 16) == p->cache[2].kib && ways_of(o[2] >> 12) == p->cache[2].ways && (o[2] & 0xff) == 64,
	      "%s: 8000_0006H ECX %#x, the part's L2: %u KiB %u ways", p->model, o[2], p->cache[2].kib, p->cache[2].ways);
	CHECK((o[3] >> 18) * 512 == p->cache[3].kib && ways_of(o[3] >> 12) == p->cache[3].ways && (o[3] & 0xff) == 64,
	      "%s: 8000_0006H EDX %#x, the part's L3: %u KiB %u ways", p->model, o[3], p->cache[3].kib,
	      p->cache[3].ways);
	for (uint32_t l = 2; l <= 4; l += 2) {
		emu_cpuid(c, l, 0, o);
		CHECK(!o[0] && !o[1] && !o[2] && !o[3], "%s: leaf %#x is reserved on AMD, got %#x", p->model, l, o[0]);
	}
	/* NC and ApicIdCoreIdSize (APM Vol. 3 E.4.7) agree with leaf 0BH */
	emu_cpuid(c, 0x80000008, 0, o);
	CHECK((o[2] & 0xff) + 1 == nv && ((o[2] >> 12) & 15) == core_bits,
	      "%s, %u vCPUs: 8000_0008H ECX %#x, leaf 0BH: %u cores in %u bits", p->model, nv, o[2], nv, core_bits);
}

int main(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	struct emu_vcpu *c = (struct emu_vcpu *)t.cpu;
	/* CR4.OSXSAVE and CR4.PKE, so that their mirrors are advertised and checked too */
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	s.cr4 |= CR4_OSXSAVE | CR4_PKE;
	t.ops->set_sregs(t.cpu, &s);
	for (int amd = 0; amd < 2; amd++) {
		c->vm->cfg.cpu_vendor_amd = amd;
		check_model(c, &parts[amd]);
		for (unsigned nv = 1; nv <= 5; nv += 2)
			check_caches(c, &parts[amd], nv);
		c->vm->cfg.nr_vcpus = 1;
		/* A model-specific MSR the guest kernel touches for the part: Linux's amd_bus.c sets
		 * NB_CFG's EnableCf8ExtCfg (bit 46) on every AMD family 10H and later, with unchecked
		 * RDMSR/WRMSR. The AMD model answers as KVM (kvm_get_msr_common: 0; kvm_set_msr_common:
		 * ignored); the Intel model has no such MSR (#GP). */
		uint64_t v = ~0ull;
		int rd = emu_rdmsr(c, MSR_AMD64_NB_CFG, &v), wr = emu_wrmsr(c, MSR_AMD64_NB_CFG, 1ull << 46);
		CHECK(amd ? rd == 0 && v == 0 && wr == 0 : rd < 0 && wr < 0,
		      "%s: NB_CFG (C001_001FH): RDMSR %d value %#llx, WRMSR %d", parts[amd].model, rd,
		      (unsigned long long)v, wr);
	}
	c->vm->cfg.cpu_vendor_amd = 0;
	t_fini(&t);
	return t_result("emu_cpu_model");
}
