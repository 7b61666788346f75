/* SPDX-License-Identifier: MIT */
/*
 * What the policy says after a run: the flag counts whatever the exit reason (MMIO and IO exits carrying
 * KVM_RUN_X86_BUS_LOCK count, exit 33 without the flag does not); kill at exactly the N-th bus lock of
 * the VM across vCPUs, with its message; pause sleeps exactly as asked; off, log and contain never
 * sleep; off never counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blvm/policy.h"

/* One vCPU's bus locks, through the per-vCPU statistics. */
static unsigned long long vcpu_locks(const struct blvm_policy *p, unsigned vcpu)
{
	struct blvm_policy_vcpu_stats v;
	blvm_policy_get_vcpu_stats(p, vcpu, &v);
	return v.bus_locks;
}

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)
#define CHECK_EQ(a, b) do { unsigned long long a_ = (a), b_ = (b); if (a_ != b_) { \
	fprintf(stderr, "%s:%d: %s = %llu, expected %llu\n", __FILE__, __LINE__, #a, a_, b_); failures++; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); if (!a_ || strcmp(a_, b_) != 0) { \
	fprintf(stderr, "%s:%d: %s =\n  \"%s\", expected\n  \"%s\"\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_); \
	failures++; } } while (0)

static uint64_t fake_now = 42;
static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static struct blvm_policy *make(const char *spec, unsigned nr_vcpus)
{
	struct blvm_policy_config cfg;
	char err[200];
	if (blvm_policy_parse(spec, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	return blvm_policy_create(&cfg, nr_vcpus, fake_clock, NULL);
}

static struct kvm_run exit_with(uint32_t reason, uint16_t flags)
{
	struct kvm_run r;
	memset(&r, 0, sizeof r);
	r.exit_reason = reason;
	r.flags = flags;
	return r;
}

static uint64_t total(struct blvm_policy *p)
{
	struct blvm_policy_stats st;
	blvm_policy_get_stats(p, &st);
	return st.total;
}

static void flags_not_reasons(void)
{
	struct blvm_policy *p = make("log", 1);
	struct kvm_run mmio = exit_with(KVM_EXIT_MMIO, KVM_RUN_X86_BUS_LOCK);
	struct kvm_run io = exit_with(KVM_EXIT_IO, KVM_RUN_X86_BUS_LOCK | KVM_RUN_X86_SMM);
	struct kvm_run bl = exit_with(KVM_EXIT_X86_BUS_LOCK, KVM_RUN_X86_BUS_LOCK);
	struct kvm_run bl_noflag = exit_with(KVM_EXIT_X86_BUS_LOCK, 0);
	struct kvm_run smm = exit_with(KVM_EXIT_IO, KVM_RUN_X86_SMM);
	struct kvm_run hlt = exit_with(KVM_EXIT_HLT, 0);

	CHECK(blvm_policy_after_run(p, 0, &mmio, NULL).what == BLVM_POLICY_CONTINUE);
	CHECK_EQ(total(p), 1);
	blvm_policy_after_run(p, 0, &io, NULL);
	CHECK_EQ(total(p), 2);
	blvm_policy_after_run(p, 0, &bl, NULL);
	CHECK_EQ(total(p), 3);
	blvm_policy_after_run(p, 0, &bl_noflag, NULL); /* the module keys on the flag, not on 33 */
	blvm_policy_after_run(p, 0, &smm, NULL);
	blvm_policy_after_run(p, 0, &hlt, NULL);
	CHECK_EQ(total(p), 3);
	CHECK_EQ(vcpu_locks(p, 0), 3);
	blvm_policy_destroy(p);

	/* And a policy acts on them: ratelimit=1 sleeps a full second at the MMIO exit's bus lock. */
	p = make("ratelimit=1", 1);
	struct blvm_policy_action a = blvm_policy_after_run(p, 0, &mmio, NULL);
	CHECK(a.what == BLVM_POLICY_SLEEP && a.sleep_ns == 1000000000ull);
	CHECK(blvm_policy_after_run(p, 0, &bl_noflag, NULL).what == BLVM_POLICY_CONTINUE);
	blvm_policy_destroy(p);
	p = make("kill", 1);
	a = blvm_policy_after_run(p, 0, &io, NULL);
	CHECK(a.what == BLVM_POLICY_STOP);
	CHECK_STR(a.reason, "--bus-lock=kill=1: bus lock 1 of 1 allowed, ending the VM: vCPU 0 (exit reason 2; "
			    "the engine does not report the instruction)");
	blvm_policy_destroy(p);
}

static void kill_at_n(void)
{
	struct kvm_run bl = exit_with(KVM_EXIT_X86_BUS_LOCK, KVM_RUN_X86_BUS_LOCK);
	struct kvm_run io = exit_with(KVM_EXIT_IO, 0);
	struct blvm_bus_lock_info info = { .rip = 0x1234, .linear = 0x1003e, .phys = 0x2003e, .size = 4,
					   .reason = BLVM_BUS_LOCK_SPLIT, .disasm = "lock add dword ptr [rax+0x3e], ecx" };

	/* kill (= kill=1): the first bus lock, whichever vCPU takes it. */
	struct blvm_policy *p = make("kill", 2);
	CHECK(blvm_policy_after_run(p, 0, &io, NULL).what == BLVM_POLICY_CONTINUE);
	CHECK(blvm_policy_after_run(p, 1, &io, NULL).what == BLVM_POLICY_CONTINUE);
	struct blvm_policy_action a = blvm_policy_after_run(p, 1, &bl, &info);
	CHECK(a.what == BLVM_POLICY_STOP);
	CHECK_STR(a.reason, "--bus-lock=kill=1: bus lock 1 of 1 allowed, ending the VM: vCPU 1 rip 0x1234 "
			    "lock add dword ptr [rax+0x3e], ecx (split, 4 bytes at 0x1003e, physical 0x2003e)");
	/* The other vCPU racing the stop is stopped too, with the same reason. */
	struct blvm_policy_action b = blvm_policy_after_run(p, 0, &bl, NULL);
	CHECK(b.what == BLVM_POLICY_STOP && b.reason == a.reason);
	CHECK_EQ(total(p), 2);
	CHECK_EQ(a.total, 1); /* each action names its bus lock's number in the VM's count */
	CHECK_EQ(b.total, 2);
	CHECK_EQ(blvm_policy_after_run(p, 0, &io, NULL).total, 0); /* no bus lock: not counted */
	blvm_policy_destroy(p);

	/* kill=3 across two vCPUs: CONTINUE, CONTINUE, STOP at the third. */
	p = make("kill=3", 2);
	CHECK(blvm_policy_after_run(p, 0, &bl, &info).what == BLVM_POLICY_CONTINUE);
	CHECK(blvm_policy_after_run(p, 1, &io, NULL).what == BLVM_POLICY_CONTINUE);
	CHECK(blvm_policy_after_run(p, 1, &bl, NULL).what == BLVM_POLICY_CONTINUE);
	CHECK(blvm_policy_after_run(p, 0, &io, NULL).what == BLVM_POLICY_CONTINUE);
	info.rip = 0x401000;
	info.reason = BLVM_BUS_LOCK_UC;
	info.size = 8;
	info.linear = info.phys = 0xfee00000;
	strcpy(info.disasm, "lock xadd qword ptr [rdi], rax");
	a = blvm_policy_after_run(p, 0, &bl, &info);
	CHECK(a.what == BLVM_POLICY_STOP);
	CHECK_STR(a.reason, "--bus-lock=kill=3: bus lock 3 of 3 allowed, ending the VM: vCPU 0 rip 0x401000 "
			    "lock xadd qword ptr [rdi], rax (uc, 8 bytes at 0xfee00000, physical 0xfee00000)");
	CHECK(blvm_policy_after_run(p, 1, &io, NULL).what == BLVM_POLICY_CONTINUE); /* no bus lock: nothing to stop */
	CHECK(blvm_policy_after_run(p, 1, &bl, NULL).what == BLVM_POLICY_STOP);
	CHECK_EQ(vcpu_locks(p, 0), 2);
	CHECK_EQ(vcpu_locks(p, 1), 2);
	blvm_policy_destroy(p);

	/* Without a disassembly the message says so. */
	p = make("kill", 1);
	info.disasm[0] = '\0';
	CHECK_STR(blvm_policy_after_run(p, 0, &bl, &info).reason,
		  "--bus-lock=kill=1: bus lock 1 of 1 allowed, ending the VM: vCPU 0 rip 0x401000 (not disassembled) "
		  "(uc, 8 bytes at 0xfee00000, physical 0xfee00000)");
	blvm_policy_destroy(p);
}

static void pause_exact(void)
{
	struct kvm_run bl = exit_with(KVM_EXIT_X86_BUS_LOCK, KVM_RUN_X86_BUS_LOCK);
	struct kvm_run mmio = exit_with(KVM_EXIT_MMIO, KVM_RUN_X86_BUS_LOCK);
	struct kvm_run plain = exit_with(KVM_EXIT_MMIO, 0);
	struct blvm_policy *p = make("pause=10", 2);
	for (int i = 0; i < 5; i++) {
		struct blvm_policy_action a = blvm_policy_after_run(p, i % 2, i == 2 ? &mmio : &bl, NULL);
		CHECK(a.what == BLVM_POLICY_SLEEP && a.sleep_ns == 10000000ull && a.reason == NULL);
		blvm_policy_slept(p, i % 2, 10000000ull + (uint64_t)i); /* what the monitor really slept */
		fake_now += 5000000000ull;                                /* time does not matter */
		CHECK(blvm_policy_after_run(p, 0, &plain, NULL).what == BLVM_POLICY_CONTINUE);
	}
	struct blvm_policy_stats st;
	blvm_policy_get_stats(p, &st);
	CHECK_EQ(st.total, 5);
	CHECK_EQ(st.sleeps, 5);
	CHECK_EQ(st.throttled_ns, 50000000ull + 0 + 1 + 2 + 3 + 4);
	blvm_policy_destroy(p);

	p = make("pause=1", 1);
	struct blvm_policy_action a = blvm_policy_after_run(p, 0, &bl, NULL);
	CHECK(a.what == BLVM_POLICY_SLEEP && a.sleep_ns == 1000000ull);
	blvm_policy_destroy(p);
}

static void off_log_contain(void)
{
	struct kvm_run bl = exit_with(KVM_EXIT_X86_BUS_LOCK, KVM_RUN_X86_BUS_LOCK);
	struct blvm_bus_lock_info info = { .rip = 0x10, .size = 4, .reason = BLVM_BUS_LOCK_SPLIT, .disasm = "lock inc" };
	const char *specs[] = { "off", "log", "contain" };
	for (int s = 0; s < 3; s++) {
		struct blvm_policy *p = make(specs[s], 2);
		for (int i = 0; i < 1000; i++) {
			fake_now += 1000;
			struct blvm_policy_action a = blvm_policy_after_run(p, i % 2, &bl, i % 3 ? &info : NULL);
			CHECK(a.what == BLVM_POLICY_CONTINUE && a.sleep_ns == 0 && a.reason == NULL);
		}
		struct blvm_policy_stats st;
		blvm_policy_get_stats(p, &st);
		bool off = s == 0;
		CHECK_EQ(st.total, off ? 0 : 1000);
		CHECK_EQ(st.split, off ? 0 : 666);
		CHECK_EQ(st.unattributed, off ? 0 : 334);
		CHECK_EQ(st.distinct_rips, off ? 0 : 1);
		CHECK_EQ(st.sleeps, 0);
		CHECK_EQ(vcpu_locks(p, 1), off ? 0 : 500);
		fake_now += 5000000000ull;
		char line[128];
		CHECK(blvm_policy_progress_due(p, line, sizeof line) == !off);
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		blvm_policy_write_summary(p, f, 1.0);
		fclose(f);
		CHECK(off ? len == 0 : len > 0); /* off: no report at all */
		free(buf);
		blvm_policy_destroy(p);
	}
	/* No policy at all behaves as off. */
	CHECK(blvm_policy_after_run(NULL, 0, &bl, &info).what == BLVM_POLICY_CONTINUE);
	blvm_policy_slept(NULL, 0, 5);
	CHECK_EQ(vcpu_locks(NULL, 0), 0);
	blvm_policy_destroy(NULL);
}

static void vcpu_out_of_range(void)
{
	struct kvm_run bl = exit_with(KVM_EXIT_X86_BUS_LOCK, KVM_RUN_X86_BUS_LOCK);
	struct blvm_policy *p = make("log", 2);
	blvm_policy_after_run(p, 7, &bl, NULL); /* a monitor bug: counted in the total, no vCPU credited */
	CHECK_EQ(total(p), 1);
	CHECK_EQ(vcpu_locks(p, 0) + vcpu_locks(p, 1) + vcpu_locks(p, 7), 0);
	blvm_policy_destroy(p);
}

int main(void)
{
	flags_not_reasons();
	kill_at_n();
	pause_exact();
	off_log_contain();
	vcpu_out_of_range();
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("policy_actions: ok\n");
	return 0;
}
