/* SPDX-License-Identifier: MIT */
/*
 * Seed: "or by using locks on uncacheable(UC) memory".
 *
 * Aligned locked accesses (not split) to memory that is uncacheable: a page with PCD (UC- through
 * the reset IA32_PAT), PCD|PWT (UC), a PWT page (WT: not a bus lock) made UC and then UC- by the
 * guest reprogramming IA32_PAT, MMIO (KVM_EXIT_MMIO with the flag), CMPXCHG16B on UC (it cannot
 * split, 16-aligned) but not on WB. Then the locked updates the CPU makes itself: accessed/dirty
 * bits in a page table that is UC (through the PCD of the entry referencing it, SDM Vol. 3 4.9.2),
 * and a segment descriptor's accessed bit in a GDT on a UC page. Each is one exit with reason UC.
 */
#include "buslock_harness.h"

GUEST(uc, ".code64",
	"mov $0x201000, %esi\n"
	"lock incl (%rsi)\n"                     /* PCD: UC- */
	"mov $0x202000, %esi\n"
	"lock incl (%rsi)\n"                     /* PCD|PWT: UC */
	"mov $0x203000, %esi\n"
	"lock incl (%rsi)\n"                     /* PWT: WT, not a bus lock */
	"mov $0x277, %ecx\n"
	"mov $0x00070006, %eax\n"                /* PA1 = UC */
	"mov $0x00070406, %edx\n"
	"wrmsr\n"
	"lock incl (%rsi)\n"                     /* PWT now UC */
	"mov $0x00070706, %eax\n"                /* PA1 = UC- */
	"wrmsr\n"
	"lock incl (%rsi)\n"                     /* PWT now UC- */
	"mov $0xd0000000, %esi\n"
	"mov $5, %eax\n"
	"lock xaddl %eax, (%rsi)\n"              /* MMIO: read exit with the flag, then the write */
	"mov %eax, %r8d\n"
	"xor %eax, %eax\n xor %edx, %edx\n mov $1, %ebx\n mov $2, %ecx\n"
	"mov $0x202010, %esi\n"
	"lock cmpxchg16b (%rsi)\n"               /* UC, 16 bytes */
	"mov $0x100010, %esi\n"
	"lock cmpxchg16b (%rsi)\n"               /* WB, aligned: not a bus lock */
	"hlt\n");

GUEST(ad, ".code64",
	"mov $0x204000, %esi\n"
	"mov (%rsi), %eax\n"                     /* A of the PTE, in a UC page table */
	"mov %eax, 4(%rsi)\n"                    /* D of the same PTE */
	"mov 8(%rsi), %eax\n"                    /* nothing: A and D set */
	"mov %eax, 0x1000(%rsi)\n"               /* A and D of another PTE: one locked update */
	"hlt\n");

GUEST(desc, ".code64",
	"mov $0x38, %eax\n"
	"mov %eax, %ds\n"                        /* accessed bit of a descriptor on a UC page */
	"mov %eax, %es\n"                        /* already accessed: nothing */
	"hlt\n");

static uint64_t insn_after(struct t_vm *t, struct blvm_bus_lock_info *info)
{
	CHECK_EQ(bl_info(t, info), 0);
	return t_regs(t).rip;
}

static void expect_uc(struct t_vm *t, uint64_t phys, unsigned size, unsigned implicit, const char *dis)
{
	struct blvm_bus_lock_info info;
	CHECK_EQ(t_run(t), KVM_EXIT_X86_BUS_LOCK);
	CHECK_EQ(t->run->flags, KVM_RUN_X86_BUS_LOCK);
	uint64_t rip = insn_after(t, &info);
	CHECK(info.rip < rip, "trap-like: rip 0x%llx after info.rip 0x%llx", (unsigned long long)rip,
	      (unsigned long long)info.rip);
	CHECK_EQ(info.phys, phys);
	CHECK_EQ(info.size, size);
	CHECK_EQ(info.reason, BLVM_BUS_LOCK_UC);
	CHECK_EQ(info.implicit, implicit);
	CHECK(strstr(info.disasm, dis) != NULL, "disasm \"%s\", expected \"%s\"", info.disasm, dis);
}

static void test_locked_uc(void)
{
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, uc_start, uc_end, 0);
	bl_small_pages(&t, 0x7, 0x7);
	t_w64(&t, B_PT + 8 * 1, 0x201000 | 0x7 | 0x10);
	t_w64(&t, B_PT + 8 * 2, 0x202000 | 0x7 | 0x18);
	t_w64(&t, B_PT + 8 * 3, 0x203000 | 0x7 | 0x08);
	expect_uc(&t, 0x201000, 4, 0, "lock inc dword ptr [rsi]");
	expect_uc(&t, 0x202000, 4, 0, "lock inc dword ptr [rsi]");
	/* the WT increment ran without an exit; the next one is after the PAT change */
	expect_uc(&t, 0x203000, 4, 0, "lock inc");
	expect_uc(&t, 0x203000, 4, 0, "lock inc");
	CHECK_EQ(t_r32(&t, 0x201000), 1);
	CHECK_EQ(t_r32(&t, 0x202000), 1);
	CHECK_EQ(t_r32(&t, 0x203000), 3);

	/* MMIO: the read part exits with the flag (the reason stays KVM_EXIT_MMIO) */
	CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
	CHECK_EQ(t.run->flags, KVM_RUN_X86_BUS_LOCK);
	CHECK_EQ(t.run->mmio.is_write, 0);
	CHECK_EQ(t.run->mmio.phys_addr, 0xd0000000);
	struct blvm_bus_lock_info info;
	CHECK_EQ(bl_info(&t, &info), 0);
	CHECK_EQ(info.phys, 0xd0000000);
	CHECK_EQ(info.linear, 0xd0000000);
	CHECK_EQ(info.reason, BLVM_BUS_LOCK_UC);
	CHECK_EQ(info.size, 4);
	CHECK_EQ(info.rip, t_regs(&t).rip); /* not completed yet: RIP still at it */
	CHECK(strstr(info.disasm, "lock xadd") == info.disasm, "disasm \"%s\"", info.disasm);
	memcpy(t.run->mmio.data, (uint32_t[]){ 100 }, 4);
	CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
	CHECK_EQ(t.run->flags, 0); /* the same instruction: not a second bus lock */
	CHECK_EQ(t.run->mmio.is_write, 1);
	uint32_t wv;
	memcpy(&wv, t.run->mmio.data, 4);
	CHECK_EQ(wv, 105);
	CHECK_EQ(bl_info(&t, &info), -ENOENT);

	expect_uc(&t, 0x202010, 16, 0, "lock cmpxchg16b");
	CHECK_EQ(t_r64(&t, 0x202010), 1);
	CHECK_EQ(t_r64(&t, 0x202018), 2);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t.run->flags, 0);
	CHECK_EQ(t_regs(&t).r8, 100);
	CHECK_EQ(t_r64(&t, 0x100010), 1); /* the WB cmpxchg16b ran, without an exit */
	t_fini(&t);
}

static void test_ad_bits(void)
{
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, ad_start, ad_end, 0);
	bl_small_pages(&t, 0x7 | 0x18, 0x7); /* the page table itself is UC */
	expect_uc(&t, B_PT + 8 * 4, 8, 1, "mov eax, dword ptr [rsi]");
	CHECK(t_r64(&t, B_PT + 8 * 4) & 0x20, "A set");
	expect_uc(&t, B_PT + 8 * 4, 8, 1, "mov dword ptr [rsi+0x04], eax");
	CHECK(t_r64(&t, B_PT + 8 * 4) & 0x40, "D set");
	expect_uc(&t, B_PT + 8 * 5, 8, 1, "mov dword ptr [rsi+0x1000], eax");
	CHECK_EQ(t_r64(&t, B_PT + 8 * 5) & 0x60, 0x60);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	t_fini(&t);

	/* the same with a WB page table: no bus lock */
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, ad_start, ad_end, 0);
	bl_small_pages(&t, 0x7, 0x7);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_r64(&t, B_PT + 8 * 5) & 0x60, 0x60);
	t_fini(&t);
}

static void test_descriptor(void)
{
	struct t_vm t;
	bl_init(&t, 0, BL_ENABLE);
	bl_start(&t, desc_start, desc_end, 0);
	bl_small_pages(&t, 0x7, 0x7);
	t_w64(&t, B_PT + 8 * 6, 0x206000 | 0x7 | 0x18);
	memcpy(t.ram + 0x206000, t.ram + T_GDT, 0x38);
	t_w64(&t, 0x206000 + 0x38, 0x00cf92000000ffffull); /* data, writable, not accessed */
	struct kvm_sregs s;
	t.ops->get_sregs(t.cpu, &s);
	s.gdt.base = 0x206000;
	s.gdt.limit = 0x3f;
	t.ops->set_sregs(t.cpu, &s);
	expect_uc(&t, 0x206000 + 0x38 + 5, 1, 1, "mov ds, ax");
	CHECK_EQ(t.ram[0x206000 + 0x38 + 5], 0x93);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	t_fini(&t);
}

int main(void)
{
	test_locked_uc();
	test_ad_bits();
	test_descriptor();
	return t_result("or by using locks on uncacheable(UC) memory");
}
