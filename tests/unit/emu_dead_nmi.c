/* SPDX-License-Identifier: MIT */
/*
 * The dead-VM rule (src/emu/irqchip.c vm_dead) and NMIs: a vCPU halted with IF = 0 can still be
 * woken by an NMI (SDM Vol. 3 6.7: an NMI is not masked by IF), so the VM is not dead while a
 * device or timer can still send one; it is dead once none can. One vCPU with the irqchip and the
 * PIT; the guest programs LVT0, LVT1, I/O APIC pin 2 and (or not) the PIT's counter 0 as a 1 ms
 * one-shot (mode 0, 55 ms), then runs cli; hlt; hlt. Its NMI handler counts and returns. Cases:
 *   - pin 2 in NMI delivery mode, PIT one-shot: the NMI comes (count 1), the handler returns to the
 *     second hlt, and only then is the VM dead (KVM_EXIT_HLT after the second hlt);
 *   - LVT0 unmasked in NMI mode, PIT one-shot: the same, through KVM's NMI-watchdog wire (each PIT
 *     tick to LVT0, i8254.c pit_do_work);
 *   - pin 2 in NMI mode but the PIT not counting; LVT1 in NMI mode (as Linux leaves the BSP's,
 *     nothing drives LINT1): nothing can send an NMI: dead at the first hlt, no NMI.
 * Before the fix every case ended at the first hlt with no NMI taken.
 */
#include "emu_harness.h"

#define COUNT 0x100000

/* rbx: LVT0, rcx: LVT1, rdx: I/O APIC pin 2's low word, rsi != 0: start the PIT's one-shot */
GUEST(g, ".code64",
      "mov $0xfee00000, %r8\n"
      "movl $0x1ff, 0xf0(%r8)\n"       /* SVR: software-enabled */
      "mov %ebx, 0x350(%r8)\n"         /* LVT0 */
      "mov %ecx, 0x360(%r8)\n"         /* LVT1 */
      "mov $0xfec00000, %r9\n"
      "movl $0x15, (%r9)\n"            /* redirection entry 2, high: destination APIC 0 */
      "movl $0, 0x10(%r9)\n"
      "movl $0x14, (%r9)\n"            /* low: delivery mode, mask, vector */
      "mov %edx, 0x10(%r9)\n"
      "test %esi, %esi\n"
      "jz 1f\n"
      "mov $0x30, %al\n"               /* counter 0, LSB then MSB, mode 0 */
      "out %al, $0x43\n"
      "xor %eax, %eax\n"               /* count 0 = 65536 clocks: 55 ms, long after the hlt */
      "out %al, $0x40\n"
      "out %al, $0x40\n"
      "1: cli\n"
      ".globl g_hlt1\ng_hlt1:\n"
      "hlt\n"
      ".globl g_hlt2\ng_hlt2:\n"
      "hlt\n"
      "jmp .\n"
      ".globl g_nmi\ng_nmi:\n"
      "incl 0x100000\n"
      "iretq\n");
extern const uint8_t g_hlt1[], g_hlt2[], g_nmi[];
#define GA(sym) (T_CODE + (uint64_t)((sym) - g_start))

struct scenario {
	const char *what;
	uint32_t lvt0, lvt1, pin2;
	bool pit;
	unsigned nmis;      /* NMIs taken */
	uint64_t hlt_rip;   /* where the VM is dead: after this hlt */
};

static void run(const struct scenario *s)
{
	struct t_vm t;
	char err[256];
	t.ops = &blvm_engine_emu;
	uint8_t *m = mmap(NULL, T_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		exit(1);
	t.ram = m;
	struct blvm_engine_config cfg = { .nr_vcpus = 1 };
	if (t.ops->vm_create(&cfg, &t.vm, err, sizeof err))
		exit(1);
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)t.ram };
	CHECK_EQ(t.ops->set_user_memory_region(t.vm, &r), 0);
	CHECK_EQ(t.ops->create_irqchip(t.vm), 0);
	CHECK_EQ(t.ops->create_pit2(t.vm, &(struct kvm_pit_config){ .flags = KVM_PIT_SPEAKER_DUMMY }), 0);
	CHECK_EQ(t.ops->vcpu_create(t.vm, 0, &t.cpu, &t.run), 0);
	t_long_mode(&t);
	t_load(&t, T_CODE, g_start, g_end);
	t_gate(&t, 2, GA(g_nmi), 0, 0);
	struct kvm_regs regs = t_regs(&t);
	regs.rbx = s->lvt0;
	regs.rcx = s->lvt1;
	regs.rdx = s->pin2;
	regs.rsi = s->pit;
	t.ops->set_regs(t.cpu, &regs);

	int e = t_run(&t);
	CHECK(e == KVM_EXIT_HLT, "%s: exit %d, want KVM_EXIT_HLT", s->what, e);
	CHECK(t_r32(&t, COUNT) == s->nmis, "%s: %u NMIs taken, want %u", s->what, t_r32(&t, COUNT), s->nmis);
	uint64_t rip = t_regs(&t).rip;
	CHECK(rip == s->hlt_rip + 1, "%s: dead after the hlt at 0x%llx, want 0x%llx", s->what,
	      (unsigned long long)rip - 1, (unsigned long long)s->hlt_rip);
	t.ops->vcpu_destroy(t.cpu);
	t.ops->vm_destroy(t.vm);
	munmap(m, T_RAM);
}

int main(void)
{
	const uint32_t masked = 1u << 16, nmi = 4u << 8;
	const struct scenario s[] = {
		{ "I/O APIC pin 2 NMI, PIT one-shot", masked, masked, nmi, true, 1, GA(g_hlt2) },
		{ "LVT0 NMI, PIT one-shot (watchdog wire)", nmi, masked, masked, true, 1, GA(g_hlt2) },
		{ "I/O APIC pin 2 NMI, PIT idle", masked, masked, nmi, false, 0, GA(g_hlt1) },
		{ "LVT1 NMI only", masked, nmi, masked, true, 0, GA(g_hlt1) },
		{ "every source masked, PIT one-shot", masked, masked, masked, true, 0, GA(g_hlt1) },
	};
	for (size_t k = 0; k < sizeof s / sizeof s[0]; k++)
		run(&s[k]);
	return t_result("emu_dead_nmi");
}
