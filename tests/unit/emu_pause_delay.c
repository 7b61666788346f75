/* SPDX-License-Identifier: MIT */
/*
 * Pause-loop exits on one vCPU (exec.c, pause_loop_exit): a PAUSE loop that waits for memory
 * sleeps once it has spun for more than 1 ms, but one that reads the TSC is a delay and never
 * sleeps, so that a loop of short delays counted in iterations (Linux's i8042_wait_read():
 * 10000 x udelay(50)) is not stretched by one sleep per delay.
 *   - program A arms the LAPIC timer (one-shot, 50 ms) and spins `pause; cmp; jne` on a flag its
 *     handler sets: the loop slept (ple_sleeps > 0, a count, not a time);
 *   - program B runs 5000 delays of 2000 TSC cycles (2 us at EMU_TSC_HZ: >= 10 ms in all, well
 *     past the 1 ms after which a memory-waiting loop sleeps), each `rdtsc; sub; cmp; jae; pause`
 *     as delay_tsc(), with a few instructions between them: it never slept (ple_sleeps unchanged),
 *     and it ran at least 5000 x 2000 cycles.
 */
#include "emu/emu.h"
#include "emu_harness.h"

#define DATA 0x100000

GUEST(a, ".code64",
	"mov $0xfee00000, %esi\n"
	"movl $0x1ff, 0xf0(%rsi)\n"          /* SVR: APIC software-enabled */
	"movl $0xb, 0x3e0(%rsi)\n"           /* TDCR: divide by 1 */
	"movl $0x41, 0x320(%rsi)\n"          /* LVTT: one-shot, vector 0x41 */
	"movl $50000000, 0x380(%rsi)\n"      /* TMICT: 50 ms */
	"sti\n"
	"1: pause\n cmpl $1, 0x100000\n jne 1b\n"
	"cli; hlt\n"
	".globl a_int41\na_int41:\n"
	"movl $1, 0x100000\n"
	"movl $0, 0xb0(%rsi)\n"              /* EOI */
	"iretq\n");
extern const uint8_t a_int41[];

GUEST(b, ".code64",
	"rdtsc; shl $32, %rdx; or %rax, %rdx; mov %rdx, 0x100008\n"
	"mov $5000, %r12d\n"
	"1: rdtsc; shl $32, %rdx; or %rax, %rdx; mov %rdx, %r8\n"     /* bclock */
	"2: rdtsc; shl $32, %rdx; or %rax, %rdx; sub %r8, %rdx\n"
	"cmp $2000, %rdx\n jae 3f\n pause\n jmp 2b\n"
	"3: incl 0x100004\n dec %r12d\n jnz 1b\n"
	"rdtsc; shl $32, %rdx; or %rax, %rdx; mov %rdx, 0x100010\n"
	"cli; hlt\n");

int main(void)
{
	struct t_vm t;
	char err[256];
	t.ops = &blvm_engine_emu;
	t.ram = mmap(NULL, T_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct blvm_engine_config cfg = { .nr_vcpus = 1, .translate = t_translate() };
	if (t.ram == MAP_FAILED || t.ops->vm_create(&cfg, &t.vm, err, sizeof err))
		return 1;
	struct kvm_userspace_memory_region mr = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						   .userspace_addr = (uintptr_t)t.ram };
	CHECK_EQ(t.ops->set_user_memory_region(t.vm, &mr), 0);
	CHECK_EQ(t.ops->create_irqchip(t.vm), 0); /* the LAPIC timer; before the vCPU (api.rst) */
	CHECK_EQ(t.ops->vcpu_create(t.vm, 0, &t.cpu, &t.run), 0);
	struct emu_vcpu *c = (struct emu_vcpu *)t.cpu;
	t_long_mode(&t);
	t_load(&t, T_CODE, a_start, a_end);
	t_gate(&t, 0x41, T_CODE + (uint64_t)(a_int41 - a_start), 0, 0);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_r32(&t, DATA), 1);
	uint64_t slept = c->ple_sleeps;
	CHECK(slept > 0, "a 50 ms loop on a flag did not sleep");

	t_long_mode(&t);
	t_load(&t, T_CODE + 0x1000, b_start, b_end);
	struct kvm_regs r = t_regs(&t);
	r.rip = T_CODE + 0x1000;
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(t_r32(&t, DATA + 4), 5000);
	CHECK(t_r64(&t, DATA + 0x10) - t_r64(&t, DATA + 8) >= 5000ull * 2000, "the delays took %llu cycles",
	      (unsigned long long)(t_r64(&t, DATA + 0x10) - t_r64(&t, DATA + 8)));
	CHECK(c->ple_sleeps == slept, "a loop of TSC delays slept %llu times",
	      (unsigned long long)(c->ple_sleeps - slept));
	printf("flag loop: %llu sleeps; delay loop: %llu\n", (unsigned long long)slept,
	       (unsigned long long)(c->ple_sleeps - slept));
	t.ops->vcpu_destroy(t.cpu);
	t.ops->vm_destroy(t.vm);
	munmap(t.ram, T_RAM);
	return t_result("emu_pause_delay");
}
