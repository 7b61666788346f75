/* SPDX-License-Identifier: MIT */
/*
 * SMP unit tests of the emu engine (tests/unit/smp_*.c): one VM, N vCPUs, one host thread each,
 * driven only through the engine ops as the monitor drives them (src/vmm/vm.c: run() in a loop,
 * -EINTR after a kick is not an exit). Same guest-physical layout as emu_harness.h; every vCPU in
 * 64-bit mode at T_CODE with its own stack (T_STACK - index * 64 KiB), RSI = its index, RDX = the
 * vCPU count, RDI = S_DATA. Optionally a kicker thread kicks every vCPU all the time (a vCPU must
 * leave and re-enter run() in the middle of everything, exclusive sections included).
 */
#ifndef SMP_HARNESS_H
#define SMP_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "buslock_harness.h"

#define S_MAX 8
#define S_DATA 0x100000ull

struct s_vm {
	struct t_vm t[S_MAX]; /* t[k].cpu / t[k].run: vCPU k; vm and ram shared */
	unsigned n;
	pthread_t th[S_MAX];
	int last_exit[S_MAX];
	unsigned long eintr[S_MAX];
	atomic_int done;      /* vCPU threads finished */
	atomic_int kicker_stop;
	pthread_t kicker;
	int kicking;
};

/* A VM with n vCPUs; detection as bl_init's how (BL_OFF / BL_ENABLE); contain on or off. */
static inline void s_init(struct s_vm *s, unsigned n, int how, int contain)
{
	memset(s, 0, sizeof *s);
	s->n = n;
	struct t_vm *t = &s->t[0];
	char err[256];
	t->ops = &blvm_engine_emu;
	t->ram = mmap(NULL, T_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->ram == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	struct blvm_engine_config cfg = { .nr_vcpus = n, .translate = t_translate() };
	if (t->ops->vm_create(&cfg, &t->vm, err, sizeof err)) {
		fprintf(stderr, "vm_create: %s\n", err);
		exit(1);
	}
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)t->ram };
	if (t->ops->set_user_memory_region(t->vm, &r) ||
	    (how == BL_ENABLE && bl_enable_cap(t, KVM_BUS_LOCK_DETECTION_EXIT))) {
		fprintf(stderr, "VM setup failed\n");
		exit(1);
	}
	if (contain) {
		struct kvm_enable_cap ct = { .cap = BLVM_CAP_BUS_LOCK_CONTAIN, .args = { 1 } };
		if (t->ops->enable_cap(t->vm, &ct)) {
			fprintf(stderr, "contain failed\n");
			exit(1);
		}
	}
	for (unsigned k = 0; k < n; k++) {
		struct t_vm *u = &s->t[k];
		*u = *t;
		if (u->ops->vcpu_create(u->vm, k, &u->cpu, &u->run)) {
			fprintf(stderr, "vcpu_create %u failed\n", k);
			exit(1);
		}
	}
}

/* Loads the code blob at T_CODE and puts every vCPU at its start. */
static inline void s_start(struct s_vm *s, const uint8_t *start, const uint8_t *end)
{
	for (unsigned k = 0; k < s->n; k++) {
		struct t_vm *u = &s->t[k];
		t_long_mode(u);
		struct kvm_regs r = t_regs(u);
		r.rsp = T_STACK - k * 0x10000ull;
		r.rsi = k;
		r.rdx = s->n;
		r.rdi = S_DATA;
		u->ops->set_regs(u->cpu, &r);
	}
	t_load(&s->t[0], T_CODE, start, end);
}

struct s_arg { struct s_vm *s; unsigned k; };

/* One vCPU thread: run() until an exit other than a bus-lock exit; -EINTR (kicks) goes on. */
static void *s_thread(void *p)
{
	struct s_arg *a = p;
	struct t_vm *u = &a->s->t[a->k];
	for (;;) {
		int r = u->ops->run(u->cpu);
		if (r == -EINTR) {
			a->s->eintr[a->k]++;
			continue;
		}
		if (r < 0) {
			a->s->last_exit[a->k] = r;
			break;
		}
		if (u->run->exit_reason == KVM_EXIT_X86_BUS_LOCK)
			continue;
		a->s->last_exit[a->k] = (int)u->run->exit_reason;
		break;
	}
	atomic_fetch_add(&a->s->done, 1);
	return NULL;
}

static void *s_kicker(void *p)
{
	struct s_vm *s = p;
	while (!atomic_load(&s->kicker_stop)) {
		for (unsigned k = 0; k < s->n; k++)
			s->t[k].ops->kick(s->t[k].cpu);
		struct timespec ts = { 0, 200000 }; /* 0.2 ms */
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Runs every vCPU in its own thread until each exits (HLT); with kick, a thread kicks all along. */
static inline void s_run(struct s_vm *s, int kick)
{
	struct s_arg a[S_MAX];
	if (kick) {
		s->kicking = 1;
		pthread_create(&s->kicker, NULL, s_kicker, s);
	}
	for (unsigned k = 0; k < s->n; k++) {
		a[k] = (struct s_arg){ s, k };
		pthread_create(&s->th[k], NULL, s_thread, &a[k]);
	}
	for (unsigned k = 0; k < s->n; k++)
		pthread_join(s->th[k], NULL);
	if (kick) {
		atomic_store(&s->kicker_stop, 1);
		pthread_join(s->kicker, NULL);
	}
}

static inline void s_fini(struct s_vm *s)
{
	for (unsigned k = 0; k < s->n; k++)
		s->t[k].ops->vcpu_destroy(s->t[k].cpu);
	s->t[0].ops->vm_destroy(s->t[0].vm);
	munmap(s->t[0].ram, T_RAM);
}

#endif
