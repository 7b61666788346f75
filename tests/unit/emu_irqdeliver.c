/* SPDX-License-Identifier: MIT */
/*
 * The emu engine's CPU side of the interrupt platform, through the engine ops as a monitor drives
 * them (KVM_CREATE_IRQCHIP before the vCPU): an interrupt pending while IF = 0 is taken right after
 * the instruction that follows STI (the STI shadow, SDM Vol. 3 6.8.3), with the return address
 * the handler sees; likewise after the instruction that follows MOV SS (its shadow, same section); HLT with IF = 1 sleeps until the LAPIC timer fires and resumes after the HLT;
 * HLT with IF = 0 is KVM_EXIT_HLT; kick() interrupts a sleeping HLT; the platform MSRs and CPUID
 * leaves a stock kernel reads have KVM's values, unknown MSRs #GP; CR8 is TPR[7:4]; KVM_CREATE_IRQCHIP is refused
 * after a vCPU exists.
 */
#include <pthread.h>
#include <unistd.h>

#include "emu_harness.h"

#define DATA 0x100000 /* results written by the guest */

GUEST(g, ".code64",
	/* software-enable the LAPIC; self IPI, vector 0x40, while IF = 0: pending */
	"mov $0xfee00000, %esi\n"
	"movl $0x1ff, 0xf0(%rsi)\n"
	"movl $0x44040, 0x300(%rsi)\n"       /* fixed, assert, shorthand self, vector 0x40 */
	"mov 0x100(%rsi), %eax\n"            /* ISR word 0: nothing in service */
	"nop; nop; nop\n"
	"sti\n"
	".globl g_after_sti\ng_after_sti:\n"
	"mov $1, %r12\n"                     /* the shadow: this runs first */
	".globl g_after_shadow\ng_after_shadow:\n"
	"mov $2, %r13\n"
	"cli\n"
	/* the MOV SS shadow (SDM Vol. 3 6.8.3: after MOV SS interrupts are inhibited "until the
	 * instruction boundary following the next instruction"): vector 0x42 pending while IF = 0;
	 * STI's shadow covers the MOV SS, so at the boundary after MOV SS IF = 1 and 0x42 is pending;
	 * MOV SS's own shadow then lets one more instruction run (KVM's emulator likewise arms the
	 * MOV SS shadow after an STI one: toggle_interruptibility skips only a repeated kind) */
	"movl $0x44042, 0x300(%rsi)\n"       /* self IPI, vector 0x42 */
	"mov %ss, %eax\n"
	"xor %r14d, %r14d\n"
	"sti\n"
	"mov %ax, %ss\n"
	".globl g_after_movss\ng_after_movss:\n"
	"mov $3, %r14\n"                     /* in MOV SS's shadow: runs before the interrupt */
	".globl g_after_movss_shadow\ng_after_movss_shadow:\n"
	"cli\n"
	/* HLT with IF = 1 until the one-shot timer (vector 0x41, 2 ms) fires */
	"movl $0xb, 0x3e0(%rsi)\n"           /* TDCR: divide by 1 */
	"movl $0x41, 0x320(%rsi)\n"          /* LVTT: one-shot, vector 0x41 */
	"movl $2000000, 0x380(%rsi)\n"       /* TMICT */
	"sti\n"
	"hlt\n"
	".globl g_after_hlt\ng_after_hlt:\n"
	"cli\n"
	/* platform MSRs */
	"mov $0x1a0, %ecx; rdmsr; mov %eax, " "0x100000" "\n"
	"mov $0xfe, %ecx; rdmsr; mov %eax, 0x100004\n"
	"mov $0x2ff, %ecx; rdmsr; mov %eax, 0x100008\n"
	"mov $0x8b, %ecx; rdmsr; mov %edx, 0x10000c\n"
	"mov $0x1b, %ecx; rdmsr; mov %eax, 0x100010\n"
	"mov $0x201, %ecx; mov $0xfffff800, %eax; mov $0x7f, %edx; wrmsr\n" /* PhysMask1 */
	"rdmsr; mov %eax, 0x100014; mov %edx, 0x100018\n"
	"mov $0x3a, %ecx; rdmsr; mov %eax, 0x10001c\n"
	"mov $1, %eax; xor %edx, %edx; wrmsr\n"              /* lock FEATURE_CONTROL */
	"wrmsr\n"                                           /* #GP: locked */
	"mov $0x2ff, %ecx; mov $0x807, %eax; wrmsr\n"       /* #GP: type 7 is reserved here */
	"mov $0x12345, %ecx; rdmsr\n"                       /* #GP: unknown MSR */
	"mov $0x802, %ecx; rdmsr\n"                         /* #GP: x2APIC MSR in xAPIC mode */
	/* CR8 is TPR[7:4] (SDM Vol. 3 11.8.6.5) */
	"mov $0xa, %eax; mov %rax, %cr8; mov 0x80(%rsi), %eax; mov %eax, 0x100064\n"
	"movl $0x5f, 0x80(%rsi); mov %cr8, %rax; mov %eax, 0x100068; xor %eax, %eax; mov %rax, %cr8\n"
	"mov $0x1b, %ecx; rdmsr; or $0xc00, %eax; wrmsr\n"  /* x2APIC on */
	"mov $0x802, %ecx; rdmsr; mov %eax, 0x100020\n"     /* x2APIC ID 0 */
	"mov $0x803, %ecx; rdmsr; mov %eax, 0x100024\n"     /* version */
	/* CPUID */
	"mov $1, %eax; cpuid; mov %ecx, 0x100028; mov %edx, 0x10002c\n"
	"mov $0x15, %eax; cpuid; mov %eax, 0x100030; mov %ebx, 0x100034; mov %ecx, 0x100038\n"
	"mov $0x80000007, %eax; cpuid; mov %edx, 0x10003c\n"
	"cli\n"
	"hlt\n"                              /* IF = 0: KVM_EXIT_HLT */
	/* the handlers: count, record the interrupted RIP, EOI (xAPIC MMIO or x2APIC MSR) */
	".globl g_int40\ng_int40:\n"
	"incl 0x100040\n"
	"mov (%rsp), %rax; mov %rax, 0x100048\n"
	"movl $0, 0xb0(%rsi)\n"              /* rsi = the APIC page throughout */
	"iretq\n"
	".globl g_int41\ng_int41:\n"
	"incl 0x100050\n"
	"mov (%rsp), %rax; mov %rax, 0x100058\n"
	"movl $0, 0xb0(%rsi)\n"              /* rsi = the APIC page throughout */
	"iretq\n"
	".globl g_int42\ng_int42:\n"
	"incl 0x100070\n"
	"mov (%rsp), %rax; mov %rax, 0x100078\n"
	"mov %r14, 0x100080\n"               /* 3 if the instruction after MOV SS ran first */
	"movl $0, 0xb0(%rsi)\n"
	"iretq\n"
	".globl g_gp\ng_gp:\n"
	"incl 0x100060\n"
	"addq $2, 8(%rsp)\n"                 /* skip the 2-byte RDMSR/WRMSR */
	"add $8, %rsp\n"                     /* error code */
	"iretq\n");
extern const uint8_t g_after_sti[], g_after_shadow[], g_after_movss[], g_after_movss_shadow[], g_after_hlt[],
	g_int40[], g_int41[], g_int42[], g_gp[];
#define GA(sym) (0x10000 + (uint64_t)(sym - g_start))

static void *kicker(void *arg)
{
	struct t_vm *t = arg;
	usleep(20000);
	t->ops->kick(t->cpu);
	return NULL;
}

GUEST(h, ".code64", "sti\n" "hlt\n" "jmp .\n");

int main(void)
{
	struct t_vm t;
	char err[256];
	t.ops = &blvm_engine_emu;
	uint8_t *m = mmap(NULL, T_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	t.ram = m;
	struct blvm_engine_config cfg = { .nr_vcpus = 1, .translate = t_translate() };
	if (t.ops->vm_create(&cfg, &t.vm, err, sizeof err))
		return 1;
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)t.ram };
	CHECK_EQ(t.ops->set_user_memory_region(t.vm, &r), 0);
	CHECK_EQ(t.ops->create_pit2(t.vm, &(struct kvm_pit_config){ 0 }), -ENOENT); /* needs the irqchip */
	CHECK_EQ(t.ops->irq_line(t.vm, &(struct kvm_irq_level){ .irq = 4, .level = 1 }), -ENXIO);
	CHECK_EQ(t.ops->create_irqchip(t.vm), 0);
	CHECK_EQ(t.ops->create_irqchip(t.vm), -EEXIST);
	CHECK_EQ(t.ops->create_pit2(t.vm, &(struct kvm_pit_config){ 0 }), 0);
	CHECK_EQ(t.ops->vcpu_create(t.vm, 0, &t.cpu, &t.run), 0);
	struct blvm_engine_vm *vm2;
	t.ops->vm_create(&cfg, &vm2, err, sizeof err);
	struct blvm_engine_vcpu *c2;
	struct kvm_run *run2;
	t.ops->vcpu_create(vm2, 0, &c2, &run2);
	CHECK_EQ(t.ops->create_irqchip(vm2), -EINVAL); /* api.rst: before any vCPU */
	t.ops->vcpu_destroy(c2);
	t.ops->vm_destroy(vm2);

	t_long_mode(&t);
	t_load(&t, T_CODE, g_start, g_end);
	t_gate(&t, 0x40, GA(g_int40), 0, 0);
	t_gate(&t, 0x41, GA(g_int41), 0, 0);
	t_gate(&t, 0x42, GA(g_int42), 0, 0);
	t_gate(&t, 13, GA(g_gp), 0, 0);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	struct kvm_regs regs = t_regs(&t);
	CHECK_EQ(regs.rflags & 0x200, 0);
	/* the STI shadow: the instruction after STI ran before the interrupt */
	CHECK_EQ(t_r32(&t, DATA + 0x40), 1);
	CHECK_EQ(t_r64(&t, DATA + 0x48), GA(g_after_shadow));
	/* the MOV SS shadow: the instruction after MOV SS ran before the interrupt, whose return
	 * address is the boundary after that instruction, not after MOV SS */
	CHECK_EQ(t_r32(&t, DATA + 0x70), 1);
	CHECK_EQ(t_r64(&t, DATA + 0x78), GA(g_after_movss_shadow));
	CHECK(t_r64(&t, DATA + 0x78) != GA(g_after_movss), "interrupt taken right after MOV SS");
	CHECK_EQ(t_r64(&t, DATA + 0x80), 3);
	/* HLT woke on the timer and resumed after itself */
	CHECK_EQ(t_r32(&t, DATA + 0x50), 1);
	CHECK_EQ(t_r64(&t, DATA + 0x58), GA(g_after_hlt));
	/* MSRs (KVM's values; see system.c) */
	CHECK_EQ(t_r32(&t, DATA + 0x00), 0x1801);      /* IA32_MISC_ENABLE: fast strings, BTS/PEBS unavailable */
	CHECK_EQ(t_r32(&t, DATA + 0x04), 0x508);       /* MTRRcap: WC, FIX, 8 variable */
	CHECK_EQ(t_r32(&t, DATA + 0x08), 0x806);       /* MTRRdefType: enabled, WB */
	CHECK_EQ(t_r32(&t, DATA + 0x0c), 1);           /* BIOS_SIGN_ID 0x100000000 */
	CHECK_EQ(t_r32(&t, DATA + 0x10), 0xfee00900);  /* APIC base, enabled, BSP */
	CHECK_EQ(t_r32(&t, DATA + 0x14), 0xfffff800);
	CHECK_EQ(t_r32(&t, DATA + 0x18), 0x7f);
	CHECK_EQ(t_r32(&t, DATA + 0x1c), 0);           /* FEATURE_CONTROL unlocked */
	CHECK_EQ(t_r32(&t, DATA + 0x60), 4);           /* four #GPs */
	CHECK_EQ(t_r32(&t, DATA + 0x64), 0xa0);        /* MOV CR8, 0xa -> TPR 0xa0 */
	CHECK_EQ(t_r32(&t, DATA + 0x68), 0x5);         /* TPR 0x5f -> CR8 5 */
	CHECK_EQ(t_r32(&t, DATA + 0x20), 0);
	CHECK_EQ(t_r32(&t, DATA + 0x24), 0x50014);
	uint32_t ecx1 = t_r32(&t, DATA + 0x28), edx1 = t_r32(&t, DATA + 0x2c);
	CHECK(ecx1 & (1u << 21), "CPUID.1:ECX x2APIC");
	CHECK(ecx1 & (1u << 24), "CPUID.1:ECX TSC-deadline");
	CHECK(edx1 & (1u << 9), "CPUID.1:EDX APIC");
	CHECK_EQ(t_r32(&t, DATA + 0x30), 1);
	CHECK_EQ(t_r32(&t, DATA + 0x34), 1);
	CHECK_EQ(t_r32(&t, DATA + 0x38), 1000000000u); /* crystal = TSC = 1 GHz */
	CHECK_EQ(t_r32(&t, DATA + 0x3c), 1u << 8);     /* invariant TSC */

	/* a vCPU asleep in HLT with nothing to wake it: kick() brings run() back with -EINTR, and the
	 * next run() sleeps again (RIP still after the HLT) */
	t_long_mode(&t);
	t_load(&t, 0x20000, h_start, h_end); /* a page never decoded (host writes bypass the decode cache) */
	regs = t_regs(&t);
	regs.rip = 0x20000;
	t.ops->set_regs(t.cpu, &regs);
	pthread_t th;
	pthread_create(&th, NULL, kicker, &t);
	int rr = t.ops->run(t.cpu);
	CHECK(rr == -EINTR, "run %d exit %u", rr, t.run->exit_reason);
	pthread_join(th, NULL);
	CHECK_EQ(t_regs(&t).rip, 0x20002);
	run2 = t.run;
	run2->immediate_exit = 1;
	CHECK_EQ(t.ops->run(t.cpu), -EINTR);
	t.ops->vcpu_destroy(t.cpu);
	t.ops->vm_destroy(t.vm);
	munmap(m, T_RAM);
	return t_result("emu_irqdeliver");
}
