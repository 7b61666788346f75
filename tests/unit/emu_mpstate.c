/* SPDX-License-Identifier: MIT */
/*
 * The emu engine's multiprocessor states (engine.h get_mp_state/set_mp_state, KVM_GET/SET_MP_STATE,
 * api.rst 4.38/4.39) and the start of an AP by INIT-SIPI-SIPI (SDM Vol. 3 9.4.4.1), driven only
 * through the engine ops, one host thread per vCPU as the monitor does:
 *   - with the irqchip, vCPU 0 is created RUNNABLE and the others UNINITIALIZED (KVM's
 *     kvm_arch_vcpu_create() with an in-kernel irqchip); without it every vCPU is RUNNABLE and
 *     only RUNNABLE may be set (-EINVAL);
 *   - an AP waiting for INIT/SIPI retires no instruction and its run() does not return; the BSP's
 *     INIT, INIT de-assert, SIPI, SIPI start it once in real mode at CS = vector << 8, IP 0;
 *   - KVM_SET_MP_STATE SIPI_RECEIVED starts a halted AP again at the last SIPI's vector;
 *   - KVM_GET_MP_STATE takes a pending INIT and SIPI first (kvm_arch_vcpu_ioctl_get_mpstate calls
 *     kvm_apic_accept_events): after SET SIPI_RECEIVED, or after the BSP's INIT-SIPI to an AP
 *     whose run() was never called, it reads RUNNABLE with CS = vector << 8 already;
 *   - INIT to the BSP resets it to the INIT state, RUNNABLE at F000:FFF0 (KVM's
 *     kvm_apic_accept_events: kvm_vcpu_reset(vcpu, true), RUNNABLE for kvm_vcpu_is_bsp);
 *   - the dead-VM rule (src/emu/irqchip.c): an AP halted with IF = 0 while the BSP runs does not
 *     exit; the BSP's cli; hlt then does (KVM_EXIT_HLT); a BSP alone with an AP never started
 *     exits on cli; hlt at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "emu_harness.h"

#define AP_PAGE 0x20000 /* SIPI vector 0x20 */
#define FLAGS 0x30000   /* +0: AP starts, +4: the AP's CS */

/* The BSP: INIT, INIT de-assert, SIPI, SIPI to APIC ID 1 (xAPIC ICR, SDM Vol. 3 11.6.1), waits for
 * the AP's flag, runs on a while (the AP halts meanwhile, or not yet: either way the VM lives), and
 * writes port 0xf4; then cli; hlt. */
GUEST(bsp, ".code64",
      "mov $0xfee00000, %rsi\n"
      "movl $(1 << 24), 0x310(%rsi)\n"
      "movl $0xc500, 0x300(%rsi)\n"
      "movl $0x8500, 0x300(%rsi)\n"
      "movl $0x4620, 0x300(%rsi)\n"
      "movl $0x4620, 0x300(%rsi)\n"
      "1: pause\n"
      "cmpl $0, 0x30000\n"
      "je 1b\n"
      "mov $200000, %ecx\n"
      "2: dec %ecx\n"
      "jnz 2b\n"
      "mov $0x42, %al\n"
      "out %al, $0xf4\n"
      "cli\n"
      "hlt\n"
      "jmp .\n");

/* INIT, INIT de-assert, SIPI to APIC ID 1, then port 0xf4 at once (nobody runs the AP). */
GUEST(initsipi, ".code64",
      "mov $0xfee00000, %rsi\n"
      "movl $(1 << 24), 0x310(%rsi)\n"
      "movl $0xc500, 0x300(%rsi)\n"
      "movl $0x8500, 0x300(%rsi)\n"
      "movl $0x4620, 0x300(%rsi)\n"
      "mov $0x42, %al\n"
      "out %al, $0xf4\n"
      "jmp .\n");

/* The BSP sends INIT to itself (APIC ID 0, physical): KVM resets it to the INIT state and it runs
 * on from the reset vector F000:FFF0; an engine that ignores the INIT writes port 0xf5 instead. */
GUEST(bspinit, ".code64",
      "mov $0xfee00000, %rsi\n"
      "movl $0, 0x310(%rsi)\n"
      "movl $0x4500, 0x300(%rsi)\n"
      "mov $0x43, %al\n"
      "out %al, $0xf5\n"
      "jmp .\n");

/* The AP, in real mode at 2000:0000: counts its start, records CS, halts with IF = 0. */
GUEST(ap, ".code16",
      "mov %cs, %ax\n"
      "mov $0x3000, %bx\n"
      "mov %bx, %ds\n"
      "mov %ax, 4\n"
      "lock incl 0\n"
      "cli\n"
      "hlt\n"
      "jmp .\n");

struct ap_thread {
	struct t_vm *t;
	atomic_int stop;
	int exits;         /* run() returns other than -EINTR */
	int last_exit;
};

static void *ap_loop(void *arg)
{
	struct ap_thread *a = arg;
	while (!atomic_load(&a->stop)) {
		int r = a->t->ops->run(a->t->cpu);
		if (r == -EINTR)
			continue;
		a->exits++;
		a->last_exit = r < 0 ? r : (int)a->t->run->exit_reason;
		break;
	}
	return NULL;
}

static uint32_t mp_state(struct t_vm *t)
{
	struct kvm_mp_state mp = { .mp_state = 99 };
	CHECK_EQ(t->ops->get_mp_state(t->cpu, &mp), 0);
	return mp.mp_state;
}

static int set_mp(struct t_vm *t, uint32_t st)
{
	return t->ops->set_mp_state(t->cpu, &(struct kvm_mp_state){ .mp_state = st });
}

/* A VM with two vCPUs sharing RAM m, with or without the irqchip. */
static void vm2(struct t_vm t[2], uint8_t *m, bool irqchip)
{
	char err[256];
	memset(t, 0, 2 * sizeof *t);
	t[0].ops = t[1].ops = &blvm_engine_emu;
	t[0].ram = t[1].ram = m;
	struct blvm_engine_config cfg = { .nr_vcpus = 2, .translate = t_translate() };
	if (t[0].ops->vm_create(&cfg, &t[0].vm, err, sizeof err))
		exit(1);
	t[1].vm = t[0].vm;
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)m };
	CHECK_EQ(t[0].ops->set_user_memory_region(t[0].vm, &r), 0);
	if (irqchip)
		CHECK_EQ(t[0].ops->create_irqchip(t[0].vm), 0);
	for (unsigned k = 0; k < 2; k++)
		CHECK_EQ(t[0].ops->vcpu_create(t[0].vm, k, &t[k].cpu, &t[k].run), 0);
}

static void vm2_free(struct t_vm t[2])
{
	for (unsigned k = 0; k < 2; k++)
		t[0].ops->vcpu_destroy(t[k].cpu);
	t[0].ops->vm_destroy(t[0].vm);
}

int main(void)
{
	uint8_t *m = mmap(NULL, T_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	struct t_vm t[2];

	/* without the irqchip: every vCPU runnable, only RUNNABLE can be set (as KVM without an
	 * in-kernel LAPIC) */
	vm2(t, m, false);
	CHECK_EQ(mp_state(&t[0]), KVM_MP_STATE_RUNNABLE);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_RUNNABLE);
	CHECK_EQ(set_mp(&t[1], KVM_MP_STATE_UNINITIALIZED), -EINVAL);
	CHECK_EQ(set_mp(&t[1], KVM_MP_STATE_RUNNABLE), 0);
	vm2_free(t);

	/* with it: the AP waits; set/get round trip; unknown states refused */
	vm2(t, m, true);
	CHECK_EQ(mp_state(&t[0]), KVM_MP_STATE_RUNNABLE);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_UNINITIALIZED);
	CHECK_EQ(set_mp(&t[1], KVM_MP_STATE_INIT_RECEIVED), 0);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_INIT_RECEIVED);
	/* KVM: INIT_RECEIVED + a SIPI pending at the last vector (none was sent: 0), which GET takes */
	CHECK_EQ(set_mp(&t[1], KVM_MP_STATE_SIPI_RECEIVED), 0);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_RUNNABLE);
	struct kvm_sregs s;
	t[1].ops->get_sregs(t[1].cpu, &s);
	CHECK_EQ(s.cs.selector, 0);
	CHECK_EQ(s.cr0 & 1, 0);
	CHECK_EQ(t_regs(&t[1]).rip, 0);
	CHECK_EQ(set_mp(&t[1], KVM_MP_STATE_UNINITIALIZED), 0);
	CHECK_EQ(set_mp(&t[1], 1234), -EINVAL);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_UNINITIALIZED);

	/* a BSP alone with an AP never started: cli; hlt is a dead VM at once */
	t_long_mode(&t[0]);
	static const uint8_t clihlt[] = { 0xfa, 0xf4, 0xeb, 0xfe };
	t_load(&t[0], T_CODE, clihlt, clihlt + sizeof clihlt);
	CHECK_EQ(t_run(&t[0]), KVM_EXIT_HLT);
	CHECK_EQ(t_regs(&t[0]).rip, T_CODE + 2);
	CHECK_EQ(t[0].ops->instructions(t[1].cpu), 0);
	vm2_free(t);

	/* INIT-SIPI-SIPI: the AP starts once, in real mode at 2000:0000; its cli; hlt while the BSP
	 * runs is no exit; the BSP's own cli; hlt afterwards is */
	memset(m, 0, T_RAM);
	vm2(t, m, true);
	t_long_mode(&t[0]);
	t_load(&t[0], T_CODE, bsp_start, bsp_end);
	t_load(&t[0], AP_PAGE, ap_start, ap_end);
	struct ap_thread a = { .t = &t[1] };
	pthread_t th;
	pthread_create(&th, NULL, ap_loop, &a);
	int e = t_run(&t[0]);
	CHECK_EQ(e, KVM_EXIT_IO);
	CHECK_EQ(t[0].run->io.port, 0xf4);
	CHECK_EQ(t_r32(&t[0], FLAGS), 1);          /* started exactly once (the second SIPI is ignored) */
	CHECK_EQ(t_r32(&t[0], FLAGS + 4) & 0xffff, 0x2000); /* CS = vector << 8 */
	atomic_store(&a.stop, 1);
	t[1].ops->kick(t[1].cpu);
	pthread_join(th, NULL);
	CHECK(a.exits == 0, "the AP's run() returned exit %d while the BSP ran", a.last_exit);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_HALTED);
	t[1].ops->get_sregs(t[1].cpu, &s);
	CHECK_EQ(s.cs.selector, 0x2000);
	CHECK_EQ(s.cs.base, AP_PAGE);
	CHECK_EQ(s.cr0 & 1, 0);                    /* real mode */
	CHECK_EQ(t_regs(&t[1]).rip, (uint64_t)(ap_end - ap_start) - 2); /* after its HLT */
	/* now the BSP halts with IF = 0 too: nothing can wake either, KVM_EXIT_HLT */
	CHECK_EQ(t_run(&t[0]), KVM_EXIT_HLT);

	/* KVM_SET_MP_STATE SIPI_RECEIVED, as KVM's kvm_arch_vcpu_ioctl_set_mpstate() takes it:
	 * INIT_RECEIVED with a SIPI pending whose vector is the last this LAPIC was sent (0x20): the
	 * halted AP's next run() starts it again, in real mode at 2000:0000 */
	CHECK_EQ(set_mp(&t[1], KVM_MP_STATE_SIPI_RECEIVED), 0);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_RUNNABLE); /* the SIPI taken by GET */
	t[1].ops->get_sregs(t[1].cpu, &s);
	CHECK_EQ(s.cs.selector, 0x2000);
	CHECK_EQ(t_regs(&t[1]).rip, 0);
	a = (struct ap_thread){ .t = &t[1] };
	pthread_create(&th, NULL, ap_loop, &a);
	for (int k = 0; k < 10000 && t_r32(&t[0], FLAGS) < 2; k++) /* a hang guard, not a time bound */
		usleep(1000);
	atomic_store(&a.stop, 1);
	t[1].ops->kick(t[1].cpu);
	pthread_join(th, NULL);
	CHECK_EQ(t_r32(&t[0], FLAGS), 2);                /* started a second time */
	t[1].ops->get_sregs(t[1].cpu, &s);
	CHECK_EQ(s.cs.selector, 0x2000);
	CHECK_EQ(s.cr0 & 1, 0);
	CHECK_EQ(t_regs(&t[1]).rip, (uint64_t)(ap_end - ap_start) - 2);
	vm2_free(t);

	/* INIT and SIPI sent to an AP that has not run since: GET takes both (INIT state, then real
	 * mode at 2000:0000), where it read UNINITIALIZED before */
	memset(m, 0, T_RAM);
	vm2(t, m, true);
	t_long_mode(&t[0]);
	t_load(&t[0], T_CODE, initsipi_start, initsipi_end);
	CHECK_EQ(t_run(&t[0]), KVM_EXIT_IO);
	CHECK_EQ(t[0].run->io.port, 0xf4);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_RUNNABLE);
	t[1].ops->get_sregs(t[1].cpu, &s);
	CHECK_EQ(s.cs.selector, 0x2000);
	CHECK_EQ(s.cs.base, AP_PAGE);
	CHECK_EQ(s.cr0 & 1, 0);
	CHECK_EQ(t_regs(&t[1]).rip, 0);
	CHECK_EQ(t[0].ops->instructions(t[1].cpu), 0);
	/* and it then runs from there: the AP's program counts its start */
	t_load(&t[0], AP_PAGE, ap_start, ap_end);
	a = (struct ap_thread){ .t = &t[1] };
	pthread_create(&th, NULL, ap_loop, &a);
	for (int k = 0; k < 10000 && t_r32(&t[0], FLAGS) < 1; k++) /* a hang guard, not a time bound */
		usleep(1000);
	atomic_store(&a.stop, 1);
	t[1].ops->kick(t[1].cpu);
	pthread_join(th, NULL);
	CHECK_EQ(t_r32(&t[0], FLAGS), 1);
	vm2_free(t);

	/* INIT to the BSP: the INIT state (SDM Vol. 3 Table 10-1), RUNNABLE, the first instruction
	 * fetched at the reset vector FFFFFFF0 (10.1.4), here OUT to port 0xf4 in a slot up there */
	memset(m, 0, T_RAM);
	vm2(t, m, true);
	uint8_t *hi = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(hi != MAP_FAILED, "mmap");
	static const uint8_t out_f4[] = { 0xe6, 0xf4, 0xeb, 0xfe }; /* out %al, $0xf4; jmp . */
	memcpy(hi + 0xfff0, out_f4, sizeof out_f4);
	struct kvm_userspace_memory_region rhi = { .slot = 1, .guest_phys_addr = 0xffff0000, .memory_size = 0x10000,
						   .userspace_addr = (uintptr_t)hi };
	CHECK_EQ(t[0].ops->set_user_memory_region(t[0].vm, &rhi), 0);
	t_long_mode(&t[0]);
	t_load(&t[0], T_CODE, bspinit_start, bspinit_end);
	CHECK_EQ(t_run(&t[0]), KVM_EXIT_IO);
	CHECK_EQ(t[0].run->io.port, 0xf4);
	CHECK_EQ(mp_state(&t[0]), KVM_MP_STATE_RUNNABLE);
	t[0].ops->get_sregs(t[0].cpu, &s);
	CHECK_EQ(s.cs.selector, 0xf000);
	CHECK_EQ(s.cs.base, 0xffff0000);
	CHECK_EQ(s.cr0, 0x60000010);
	CHECK_EQ(s.efer, 0);
	CHECK_EQ(t_regs(&t[0]).rip, 0xfff2);
	CHECK_EQ(t_regs(&t[0]).rflags, 2);
	CHECK_EQ(mp_state(&t[1]), KVM_MP_STATE_UNINITIALIZED); /* the AP was not a target */
	vm2_free(t);
	munmap(hi, 0x10000);

	munmap(m, T_RAM);
	return t_result("emu_mpstate");
}
