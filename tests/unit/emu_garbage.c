/* SPDX-License-Identifier: MIT */
/*
 * A guest that executes garbage (the project's standard: "bad input gets a clear error and loses
 * nothing ... a guest that executes garbage, touches memory it does not have": the host process never
 * crashes and the guest never reads or writes host memory outside its own RAM).
 *
 * Thousands of programs of random bytes run in the emu engine in 64-bit mode at CPL 0, in 64-bit
 * mode at CPL 3 and in 32-bit protected mode (the PVH entry state), with random registers (half of
 * them pointing into RAM), the exception vectors sent to a HLT stub, guest RAM between two guard
 * pages (emu_harness.h) and, in the sanitizer run, ASan and UBSan watching the engine. The monitor
 * side is a plain KVM_RUN loop: IO and MMIO exits are completed and the vCPU runs again; a program
 * ends at HLT, SHUTDOWN, INTERNAL_ERROR, after 200 exits, or when a watchdog has kicked it out of
 * a loop three times. Checks: run() returns 0 or -EINTR only, every exit reason is one KVM's api.rst
 * gives for these exits, IO and MMIO exits are well-formed (size, count, data within the run area),
 * the vCPU's state can be read back, and the host process is still here at the end.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "emu_harness.h"

/* per mode; GARBAGE_PROGRAMS=N and GARBAGE_SEED=S for longer or other runs. A third under ASan
 * (ten times slower there), where the emu_cpu fuzz harness runs garbage too. */
#ifdef __SANITIZE_ADDRESS__
#define PROGRAMS 500
#else
#define PROGRAMS 1500
#endif
#define STUB 0x9000   /* hlt; jmp .-1 */

static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct t_vm *cur;
static atomic_int done;

static void *watchdog(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&cur_lock);
		if (cur)
			cur->ops->kick(cur->cpu);
		pthread_mutex_unlock(&cur_lock);
	}
	return NULL;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

enum mode { M64, M64_USER, M32, NMODES };
static const char *const mode_name[NMODES] = { "64-bit CPL 0", "64-bit CPL 3", "32-bit" };
static unsigned long ends[NMODES][64]; /* by exit reason; [63]: loops cut by the watchdog */

static void one(enum mode m)
{
	struct t_vm t;
	t_init(&t);
	if (m == M32)
		t_prot32(&t);
	else
		t_long_mode(&t);
	/* the exception vectors -> a HLT stub (64-bit gates; in 32-bit mode the IDT is not loaded, so
	 * an exception there ends in a triple fault: KVM_EXIT_SHUTDOWN) */
	t.ram[STUB] = 0xf4, t.ram[STUB + 1] = 0xeb, t.ram[STUB + 2] = 0xfd;
	for (int v = 0; v < 32; v++)
		t_gate(&t, v, STUB, 0, 0);
	for (unsigned k = 0; k < 4096; k += 8)
		t_w64(&t, T_CODE + k, next());
	struct kvm_regs r = t_regs(&t);
	__u64 *g = &r.rax; /* struct kvm_regs: rax..r15, 16 in a row */
	for (int k = 0; k < 16; k++) {
		if (k == 4 || k == 5) /* rsp, rbp: keep the stack in RAM */
			continue;
		uint64_t v = next();
		g[k] = (v & 1) ? 0x100000 + (v >> 44) : v; /* half point into RAM, half anywhere */
	}
	r.rflags = 2 | (next() & 0x8d5); /* random arithmetic flags and DF, no TF */
	t.ops->set_regs(t.cpu, &r);
	if (m == M64_USER) {
		/* CPL 3 on the DPL-3 segments; every page is U/S = 1 in t_tables() */
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
	for (int exits = 0; exits < 200; exits++) {
		int rc = t.ops->run(t.cpu);
		if (rc == -EINTR) {
			if (++kicks == 3) {
				ends[m][63]++;
				break;
			}
			continue;
		}
		CHECK(rc == 0, "run() returned %d", rc);
		if (rc != 0)
			break;
		uint32_t why = t.run->exit_reason;
		char bad[96];
		bool ok = t_exit_wellformed(&t, bad, sizeof bad);
		CHECK(ok, "%s", bad);
		if (!ok)
			break;
		if (why == KVM_EXIT_IO || why == KVM_EXIT_MMIO || why == KVM_EXIT_DEBUG || why == KVM_EXIT_X86_BUS_LOCK)
			continue;
		ends[m][why < 63 ? why : 62]++;
		break;
	}
	pthread_mutex_lock(&cur_lock);
	cur = NULL;
	pthread_mutex_unlock(&cur_lock);
	struct kvm_regs after = t_regs(&t);
	struct kvm_sregs sa;
	t.ops->get_sregs(t.cpu, &sa);
	(void)after;
	t_fini(&t);
}

int main(void)
{
	const char *e = getenv("GARBAGE_PROGRAMS");
	int programs = e ? atoi(e) : PROGRAMS;
	if ((e = getenv("GARBAGE_SEED")) != NULL)
		rng = strtoull(e, NULL, 0) ? strtoull(e, NULL, 0) : rng; /* xorshift: never 0 */
	printf("info: seed 0x%llx, %d programs per mode\n", (unsigned long long)rng, programs);
	pthread_t wd;
	if (pthread_create(&wd, NULL, watchdog, NULL) != 0) {
		perror("pthread_create");
		return 1;
	}
	for (int m = 0; m < NMODES; m++)
		for (int k = 0; k < programs; k++)
			one((enum mode)m);
	atomic_store(&done, 1);
	pthread_join(wd, NULL);
	for (int m = 0; m < NMODES; m++)
		printf("info: %s: %d programs: hlt %lu, shutdown %lu, internal error %lu, loops cut %lu\n",
		       mode_name[m], programs, ends[m][KVM_EXIT_HLT], ends[m][KVM_EXIT_SHUTDOWN],
		       ends[m][KVM_EXIT_INTERNAL_ERROR], ends[m][63]);
	return t_result("emu_garbage");
}
