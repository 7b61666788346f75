/* SPDX-License-Identifier: MIT */
/*
 * emu engine exits, checked as a KVM monitor sees them (api.rst): KVM_EXIT_IO for OUT and IN (the IN
 * completes on the next run with the monitor's data), KVM_EXIT_MMIO reads (completed with the data
 * supplied) and writes, REP MOVS into MMIO interrupted after every element with RCX/RSI/RDI
 * consistent, REP OUTSB one element per exit, HLT, kick() and immediate_exit -> -EINTR, flags
 * cleared on every run, single-step -> KVM_EXIT_DEBUG.
 */
#include <pthread.h>
#include <unistd.h>

#include "emu_harness.h"

GUEST(io, ".code64",
	"mov $0x1234, %eax\n"
	"mov $0x3f8, %dx\n"
	"out %al, %dx\n"                 /* IO OUT 1 byte 0x34 to 0x3f8 */
	"in $0x60, %al\n"                /* IO IN 1 byte from 0x60 -> 0xab */
	"mov %eax, %ebx\n"               /* rbx = 0x12ab */
	"mov $0xd0000000, %esi\n"
	"mov (%rsi), %ecx\n"             /* MMIO read 4 bytes -> 0xdeadbeef */
	"movabs $0x1122334455667788, %rax\n"
	"mov %rax, 0x10(%rsi)\n"         /* MMIO write 8 bytes at 0xd0000010 */
	"mov $0x100000, %esi\n"
	"mov $0xd0001000, %edi\n"
	"mov $4, %ecx\n"
	"rep movsb\n"                    /* 4 MMIO writes of 1 byte */
	"mov $0xd0002000, %esi\n"
	"mov $0x100100, %edi\n"
	"mov $2, %ecx\n"
	"rep movsw\n"                    /* 2 MMIO reads of 2 bytes into RAM */
	"mov $0x100000, %esi\n"
	"mov $0x3f8, %dx\n"
	"mov $3, %ecx\n"
	"rep outsb\n"                    /* 3 IO exits, count 1 each */
	"hlt\n"
	"1: jmp 1b\n");

static void *kicker(void *arg)
{
	struct t_vm *t = arg;
	usleep(50000);
	t->ops->kick(t->cpu);
	return NULL;
}

int main(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, io_start, io_end);
	memcpy(t.ram + 0x100000, "WXYZ", 4);
	struct kvm_run *run = t.run;

	/* a pending kick makes run() return -EINTR without executing; so does immediate_exit */
	t.ops->kick(t.cpu);
	CHECK_EQ(t.ops->run(t.cpu), -EINTR);
	run->immediate_exit = 1;
	CHECK_EQ(t.ops->run(t.cpu), -EINTR);
	run->immediate_exit = 0;
	CHECK_EQ(t_regs(&t).rip, T_CODE);

	run->flags = 0xffff;
	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	CHECK_EQ(run->flags, 0);
	CHECK_EQ(run->io.direction, KVM_EXIT_IO_OUT);
	CHECK_EQ(run->io.size, 1);
	CHECK_EQ(run->io.port, 0x3f8);
	CHECK_EQ(run->io.count, 1);
	CHECK_EQ(((uint8_t *)run)[run->io.data_offset], 0x34);

	CHECK_EQ(t_run(&t), KVM_EXIT_IO);
	CHECK_EQ(run->io.direction, KVM_EXIT_IO_IN);
	CHECK_EQ(run->io.port, 0x60);
	CHECK_EQ(run->io.size, 1);
	((uint8_t *)run)[run->io.data_offset] = 0xab;

	CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
	CHECK_EQ(t_regs(&t).rbx, 0x12ab);
	CHECK_EQ(run->mmio.phys_addr, 0xd0000000);
	CHECK_EQ(run->mmio.len, 4);
	CHECK_EQ(run->mmio.is_write, 0);
	uint32_t v32 = 0xdeadbeef;
	memcpy(run->mmio.data, &v32, 4);

	CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
	CHECK_EQ(t_regs(&t).rcx, 0xdeadbeef);
	CHECK_EQ(run->mmio.phys_addr, 0xd0000010);
	CHECK_EQ(run->mmio.len, 8);
	CHECK_EQ(run->mmio.is_write, 1);
	uint64_t v64;
	memcpy(&v64, run->mmio.data, 8);
	CHECK_EQ(v64, 0x1122334455667788ull);

	/* REP MOVSB into MMIO: one exit per byte; registers consistent at each exit */
	for (int k = 0; k < 4; k++) {
		CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
		CHECK_EQ(run->mmio.is_write, 1);
		CHECK_EQ(run->mmio.len, 1);
		CHECK_EQ(run->mmio.phys_addr, 0xd0001000 + k);
		CHECK_EQ(run->mmio.data[0], "WXYZ"[k]);
		struct kvm_regs r = t_regs(&t);
		CHECK_EQ(r.rcx, 3 - k);
		CHECK_EQ(r.rsi, 0x100000 + k + 1);
		CHECK_EQ(r.rdi, 0xd0001000 + k + 1);
	}
	/* REP MOVSW from MMIO: read exits, completed with our data */
	for (int k = 0; k < 2; k++) {
		CHECK_EQ(t_run(&t), KVM_EXIT_MMIO);
		CHECK_EQ(run->mmio.is_write, 0);
		CHECK_EQ(run->mmio.len, 2);
		CHECK_EQ(run->mmio.phys_addr, 0xd0002000 + 2 * k);
		run->mmio.data[0] = (uint8_t)(0x10 + k);
		run->mmio.data[1] = (uint8_t)(0x20 + k);
	}
	/* REP OUTSB: count 1 per exit */
	for (int k = 0; k < 3; k++) {
		CHECK_EQ(t_run(&t), KVM_EXIT_IO);
		CHECK_EQ(run->io.direction, KVM_EXIT_IO_OUT);
		CHECK_EQ(run->io.count, 1);
		CHECK_EQ(((uint8_t *)run)[run->io.data_offset], "WXYZ"[k]);
		if (k == 0)
			CHECK_EQ(t_r32(&t, 0x100100), 0x21112010);
	}
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	struct kvm_regs r = t_regs(&t);
	CHECK_EQ(r.rip, T_CODE + (io_end - io_start) - 2); /* after HLT, at the jmp */
	CHECK_EQ(r.rcx, 0);

	/* kick() from another thread ends a guest spinning forever */
	pthread_t th;
	pthread_create(&th, NULL, kicker, &t);
	CHECK_EQ(t.ops->run(t.cpu), -EINTR);
	pthread_join(th, NULL);
	CHECK(t.ops->instructions(t.cpu) > 1000, "spinning counted");

	/* single-step: one instruction per KVM_EXIT_DEBUG, pc = RIP */
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP };
	CHECK_EQ(t.ops->set_guest_debug(t.cpu, &dbg), 0);
	r = t_regs(&t);
	r.rip = T_CODE; /* mov $0x1234,%eax (5 bytes); mov $0x3f8,%dx (4 bytes) */
	t.ops->set_regs(t.cpu, &r);
	CHECK_EQ(t_run(&t), KVM_EXIT_DEBUG);
	CHECK_EQ(run->debug.arch.exception, 1);
	CHECK_EQ(run->debug.arch.pc, T_CODE + 5);
	CHECK_EQ(t_regs(&t).rax & 0xffff, 0x1234);
	CHECK_EQ(t_run(&t), KVM_EXIT_DEBUG);
	CHECK_EQ(run->debug.arch.pc, T_CODE + 9);

	t_fini(&t);
	return t_result("emu_exits");
}
