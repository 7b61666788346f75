/* SPDX-License-Identifier: MIT */
/*
 * Fuzz: the emu CPU on code, registers and page tables the fuzzer chooses (issue 15: "random code
 * in each mode with random page tables and devices behind it, checking that every run ends in a
 * well-formed exit"). Input: byte 0 picks the mode (64-bit CPL 0, 64-bit CPL 3, 32-bit protected
 * mode, whose segment limits bit 6 narrows) and whether the next 64 bytes overwrite page-directory
 * entries; then 16 registers; then the code (up to 4 KiB at T_CODE). The monitor side is a plain KVM_RUN loop as in tests/unit/
 * emu_garbage.c: IO and MMIO exits are completed with bytes from the input (the "devices"), and the
 * run ends at HLT, SHUTDOWN, INTERNAL_ERROR, after 64 exits, or when a watchdog has kicked a loop
 * three times. Every exit must be one api.rst gives, well-formed; guest RAM lies between guard
 * pages (emu_harness.h), so a stray host access outside it crashes under ASan.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "../unit/emu_harness.h"

static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct t_vm *cur;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&cur_lock);
		if (cur)
			cur->ops->kick(cur->cpu);
		pthread_mutex_unlock(&cur_lock);
	}
	return NULL;
}

static void start_watchdog(void)
{
	pthread_t wd;
	if (pthread_create(&wd, NULL, watchdog, NULL) != 0)
		abort();
	pthread_detach(wd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 + 128 + 1)
		return 0;
	pthread_once(&once, start_watchdog);
	uint8_t mode = data[0] % 3, tables = data[0] & 0x80;
	struct t_vm t;
	t_init(&t);
	if (mode == 2)
		t_prot32(&t);
	else
		t_long_mode(&t);
	const uint8_t *p = data + 1;
	size_t left = size - 1;
	if (tables && left >= 64 + 128) {
		/* fuzz-chosen page-directory entries for 0..16 MiB (the code and stack stay mapped: the
		 * first two entries are left alone) */
		memcpy(t.ram + T_PD + 16, p, 64);
		p += 64, left -= 64;
	}
	struct kvm_regs r = t_regs(&t);
	__u64 *g = &r.rax;
	for (int k = 0; k < 16; k++) {
		uint64_t v;
		memcpy(&v, p + 8 * k, 8);
		if (k == 4 || k == 5)
			continue;
		g[k] = v;
	}
	r.rflags = 2 | (p[0] & 0xd5) | ((uint64_t)(p[1] & 0x4) << 8); /* status flags and DF; no TF */
	p += 128, left -= 128;
	t.ops->set_regs(t.cpu, &r);
	size_t code = left < 4096 ? left : 4096;
	memcpy(t.ram + T_CODE, p, code);
	const uint8_t *dev = p + code; /* what the devices answer: the input's tail, then all ones */
	size_t dev_left = left - code;
	if (mode == 2 && (data[0] & 0x40)) {
		/* segment limits (tests/unit/emu_seglim.c): DS and ES of 64 and 128 KiB, an expand-down
		 * SS above 4 KiB, CS ending in the middle of the code */
		struct kvm_sregs s;
		t.ops->get_sregs(t.cpu, &s);
		s.ds.limit = 0xffff;
		s.ds.g = 0;
		s.es = s.ds;
		s.es.limit = 0x1ffff;
		s.ss.type = 7;
		s.ss.limit = 0xfff;
		s.cs.limit = T_CODE + 0x7ff;
		s.cs.g = 0;
		t.ops->set_sregs(t.cpu, &s);
	}
	if (mode == 1) {
		struct kvm_sregs s;
		t.ops->get_sregs(t.cpu, &s);
		t_seg(&s.cs, 0x28 | 3, 1, 1, 3);
		t_seg(&s.ds, 0x20 | 3, 0, 0, 3);
		s.es = s.fs = s.gs = s.ss = s.ds;
		t.ops->set_sregs(t.cpu, &s);
	}
	pthread_mutex_lock(&cur_lock);
	cur = &t;
	pthread_mutex_unlock(&cur_lock);
	int kicks = 0;
	for (int exits = 0; exits < 64; exits++) {
		int rc = t.ops->run(t.cpu);
		if (rc == -EINTR) {
			if (++kicks == 3)
				break;
			continue;
		}
		if (rc != 0)
			abort();
		uint32_t why = t.run->exit_reason;
		char bad[96];
		if (!t_exit_wellformed(&t, bad, sizeof bad))
			abort();
		if (why == KVM_EXIT_IO) {
			if (t.run->io.direction == KVM_EXIT_IO_IN) {
				uint8_t *d = (uint8_t *)t.run + t.run->io.data_offset;
				for (uint32_t k = 0; k < t.run->io.size * t.run->io.count; k++)
					d[k] = dev_left ? (dev_left--, *dev++) : 0xff;
			}
			continue;
		}
		if (why == KVM_EXIT_MMIO) {
			if (!t.run->mmio.is_write)
				for (uint32_t k = 0; k < t.run->mmio.len; k++)
					t.run->mmio.data[k] = dev_left ? (dev_left--, *dev++) : 0xff;
			continue;
		}
		if (why == KVM_EXIT_DEBUG || why == KVM_EXIT_X86_BUS_LOCK)
			continue;
		break; /* HLT, SHUTDOWN, INTERNAL_ERROR */
	}
	pthread_mutex_lock(&cur_lock);
	cur = NULL;
	pthread_mutex_unlock(&cur_lock);
	struct kvm_sregs sa;
	(void)t_regs(&t);
	t.ops->get_sregs(t.cpu, &sa);
	t_fini(&t);
	return 0;
}
