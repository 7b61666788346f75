/* SPDX-License-Identifier: MIT */
/*
 * The kvm engine through the engine contract only (blvm_engine_kvm's ops, never
 * /dev/kvm directly). Tiny guests are hand-assembled bytes in a 2 MiB RAM slot at
 * guest-physical 0, entered in the PVH entry state the monitor uses: 32-bit flat
 * protected mode, paging off, interrupts off. Every check is an exact value.
 *
 * Exit status: 0 pass, 77 skip (no usable /dev/kvm; reason printed last), 1 fail.
 * This host's KVM runs guests in software at ~2 M instructions/s: guests stay tiny.
 */
#include <blvm/engine.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE (2u << 20)
#define CODE 0x1000u    /* guest code */
#define DATA 0x2000u    /* guest stores results here */
#define MMIO 0x10000000u /* outside every slot */

static const struct blvm_engine_ops *E = &blvm_engine_kvm;
static uint8_t *ram;
static int failures;

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			failures++;                                                   \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
			printf(__VA_ARGS__);                                          \
			printf("\n");                                                 \
		}                                                                     \
	} while (0)

#define CHECK_EQ(got, want)                                                           \
	do {                                                                          \
		uint64_t got_ = (uint64_t)(got), want_ = (uint64_t)(want);            \
		CHECK(got_ == want_, "%s = %#llx, want %#llx", #got,                  \
		      (unsigned long long)got_, (unsigned long long)want_);            \
	} while (0)

/* Stop the test if a step that later steps depend on failed (cond evaluated once). */
#define REQUIRE(cond, ...)                                                            \
	do {                                                                          \
		if (!(cond)) {                                                        \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
			printf(__VA_ARGS__);                                          \
			printf("\n");                                                 \
			exit(1);                                                      \
		}                                                                     \
	} while (0)

static const char *exit_name(uint32_t r)
{
	switch (r) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	case KVM_EXIT_DEBUG: return "DEBUG";
	case KVM_EXIT_X86_BUS_LOCK: return "X86_BUS_LOCK";
	default: return "?";
	}
}

/* One run that must succeed with exit reason `want`. */
static void run_expect(struct blvm_engine_vcpu *vcpu, struct kvm_run *run, uint32_t want)
{
	int r = E->run(vcpu);
	REQUIRE(r == 0, "run() = %d (%s)", r, strerror(-r));
	REQUIRE(run->exit_reason == want, "exit %u (%s), want %u (%s)", run->exit_reason,
		exit_name(run->exit_reason), want, exit_name(want));
}

/* PVH entry state: flat 32-bit code and data segments, CR0.PE (+ET), paging off. */
static void enter_flat32(struct blvm_engine_vcpu *vcpu)
{
	struct kvm_sregs s;
	REQUIRE(E->get_sregs(vcpu, &s) == 0, "get_sregs");
	struct kvm_segment cs = {
		.base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 0xb, .present = 1,
		.dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_segment ds = cs;
	ds.selector = 0x10;
	ds.type = 0x3;
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.cr0 = 0x11; /* PE | ET */
	s.cr4 = 0;
	s.efer = 0;
	REQUIRE(E->set_sregs(vcpu, &s) == 0, "set_sregs");

	struct kvm_sregs back;
	REQUIRE(E->get_sregs(vcpu, &back) == 0, "get_sregs");
	CHECK_EQ(back.cr0 & 0x80000011, 0x11);
	CHECK_EQ(back.cs.limit, 0xffffffff);
	CHECK_EQ(back.cs.db, 1);
	CHECK_EQ(back.ss.type, 3);

	/* KVM_GET_MSRS: IA32_GS_BASE is the GS segment's base (SDM Vol. 3 3.4.4). */
	struct { struct kvm_msrs h; struct kvm_msr_entry e[1]; } m = { .h.nmsrs = 1 };
	m.e[0].index = 0xc0000101;
	m.e[0].data = 0xdead;
	CHECK_EQ(E->get_msrs(vcpu, &m.h), 1);
	CHECK_EQ(m.e[0].data, back.gs.base);
}

/* Copy `code` to CODE, set RIP there and the given registers (others zero). */
static void load(struct blvm_engine_vcpu *vcpu, const void *code, size_t len,
		 const struct kvm_regs *regs)
{
	memcpy(ram + CODE, code, len);
	struct kvm_regs r = regs ? *regs : (struct kvm_regs){ 0 };
	r.rip = CODE;
	r.rflags = 0x2;
	if (!r.rsp)
		r.rsp = 0x8000;
	REQUIRE(E->set_regs(vcpu, &r) == 0, "set_regs");
}

static uint64_t rip_of(struct blvm_engine_vcpu *vcpu)
{
	struct kvm_regs r;
	REQUIRE(E->get_regs(vcpu, &r) == 0, "get_regs");
	return r.rip;
}

static struct blvm_engine_vcpu *new_vcpu(struct blvm_engine_vm *vm, unsigned id,
					 struct kvm_run **run)
{
	struct blvm_engine_vcpu *vcpu;
	int r = E->vcpu_create(vm, id, &vcpu, run);
	REQUIRE(r == 0, "vcpu_create(%u) = %d (%s)", id, r, strerror(-r));
	REQUIRE(*run != NULL, "no run area");
	enter_flat32(vcpu);
	return vcpu;
}

/* 1. OUT to COM1, then HLT. */
static void test_out(struct blvm_engine_vcpu *vcpu, struct kvm_run *run)
{
	static const uint8_t code[] = {
		0x66, 0xba, 0xf8, 0x03, /* mov $0x3f8,%dx */
		0xb0, 'A',              /* mov $'A',%al */
		0xee,                   /* out %al,(%dx) */
		0xf4,                   /* hlt */
	};
	load(vcpu, code, sizeof(code), NULL);
	run_expect(vcpu, run, KVM_EXIT_IO);
	CHECK_EQ(run->io.direction, KVM_EXIT_IO_OUT);
	CHECK_EQ(run->io.port, 0x3f8);
	CHECK_EQ(run->io.size, 1);
	CHECK_EQ(run->io.count, 1);
	CHECK_EQ(*((uint8_t *)run + run->io.data_offset), 'A');
	run_expect(vcpu, run, KVM_EXIT_HLT);
	CHECK_EQ(rip_of(vcpu), CODE + sizeof(code));
	printf("ok 1 out/hlt\n");
}

/* 2. IN from the LSR; the value the monitor supplies reaches the guest. */
static void test_in(struct blvm_engine_vcpu *vcpu, struct kvm_run *run)
{
	static const uint8_t code[] = {
		0x66, 0xba, 0xfd, 0x03,       /* mov $0x3fd,%dx */
		0xec,                         /* in (%dx),%al */
		0xa2, 0x00, 0x20, 0x00, 0x00, /* mov %al,0x2000 */
		0xf4,                         /* hlt */
	};
	ram[DATA] = 0xcc;
	load(vcpu, code, sizeof(code), NULL);
	run_expect(vcpu, run, KVM_EXIT_IO);
	CHECK_EQ(run->io.direction, KVM_EXIT_IO_IN);
	CHECK_EQ(run->io.port, 0x3fd);
	CHECK_EQ(run->io.size, 1);
	CHECK_EQ(run->io.count, 1);
	*((uint8_t *)run + run->io.data_offset) = 0x60;
	run_expect(vcpu, run, KVM_EXIT_HLT);
	CHECK_EQ(ram[DATA], 0x60);
	printf("ok 2 in\n");
}

/* 3. MMIO write and read outside every slot. */
static void test_mmio(struct blvm_engine_vcpu *vcpu, struct kvm_run *run)
{
	static const uint8_t code[] = {
		0xc7, 0x05, 0x00, 0x00, 0x00, 0x10, 0x78, 0x56, 0x34, 0x12, /* movl $0x12345678,0x10000000 */
		0x8b, 0x05, 0x00, 0x00, 0x00, 0x10,                         /* mov 0x10000000,%eax */
		0xa3, 0x00, 0x20, 0x00, 0x00,                               /* mov %eax,0x2000 */
		0xf4,                                                       /* hlt */
	};
	static const uint8_t wdata[4] = { 0x78, 0x56, 0x34, 0x12 };
	static const uint8_t rdata[4] = { 0xef, 0xbe, 0xad, 0xde };
	memset(ram + DATA, 0xcc, 4);
	load(vcpu, code, sizeof(code), NULL);

	run_expect(vcpu, run, KVM_EXIT_MMIO);
	CHECK_EQ(run->mmio.phys_addr, MMIO);
	CHECK_EQ(run->mmio.is_write, 1);
	CHECK_EQ(run->mmio.len, 4);
	CHECK(memcmp(run->mmio.data, wdata, 4) == 0, "data %02x %02x %02x %02x",
	      run->mmio.data[0], run->mmio.data[1], run->mmio.data[2], run->mmio.data[3]);

	run_expect(vcpu, run, KVM_EXIT_MMIO);
	CHECK_EQ(run->mmio.phys_addr, MMIO);
	CHECK_EQ(run->mmio.is_write, 0);
	CHECK_EQ(run->mmio.len, 4);
	memcpy(run->mmio.data, rdata, 4);

	run_expect(vcpu, run, KVM_EXIT_HLT);
	CHECK(memcmp(ram + DATA, rdata, 4) == 0, "guest stored %02x %02x %02x %02x", ram[DATA],
	      ram[DATA + 1], ram[DATA + 2], ram[DATA + 3]);
	printf("ok 3 mmio\n");
}

/* 4. Registers in, arithmetic, registers out. */
static void test_regs(struct blvm_engine_vcpu *vcpu, struct kvm_run *run)
{
	static const uint8_t code[] = {
		0x01, 0xd8, /* add %ebx,%eax */
		0xf4,       /* hlt */
	};
	struct kvm_regs in = {
		.rax = 0x12345678, .rbx = 0x11111111, .rcx = 0xc0ffee, .rdx = 0xd00d,
		.rsi = 0x5151, .rdi = 0xd1d1, .rbp = 0xb0b0, .rsp = 0x7ff0,
	};
	load(vcpu, code, sizeof(code), &in);

	struct kvm_regs out;
	REQUIRE(E->get_regs(vcpu, &out) == 0, "get_regs");
	CHECK_EQ(out.rax, in.rax);
	CHECK_EQ(out.rbx, in.rbx);
	CHECK_EQ(out.rip, CODE);

	run_expect(vcpu, run, KVM_EXIT_HLT);
	REQUIRE(E->get_regs(vcpu, &out) == 0, "get_regs");
	CHECK_EQ(out.rax & 0xffffffff, 0x23456789);
	CHECK_EQ(out.rbx, 0x11111111);
	CHECK_EQ(out.rcx, 0xc0ffee);
	CHECK_EQ(out.rdx, 0xd00d);
	CHECK_EQ(out.rsi, 0x5151);
	CHECK_EQ(out.rdi, 0xd1d1);
	CHECK_EQ(out.rbp, 0xb0b0);
	CHECK_EQ(out.rsp, 0x7ff0);
	CHECK_EQ(out.rip, CODE + sizeof(code));
	printf("ok 4 regs\n");
}

/* 5. kick(): a vCPU spinning on another thread returns -EINTR; the next run works. */
struct spinner {
	struct blvm_engine_vcpu *vcpu;
	int result;
};

static void *spin_thread(void *arg)
{
	struct spinner *s = arg;
	s->result = E->run(s->vcpu);
	return NULL;
}

static void test_kick(struct blvm_engine_vcpu *vcpu, struct kvm_run *run)
{
	static const uint8_t code[] = {
		0xeb, 0xfe, /* jmp . */
		0xf4,       /* hlt */
	};
	load(vcpu, code, sizeof(code), NULL);

	struct spinner s = { .vcpu = vcpu, .result = 1 };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, spin_thread, &s) == 0, "pthread_create");
	nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
	E->kick(vcpu);
	pthread_join(t, NULL);
	CHECK(s.result == -EINTR, "run() = %d (%s), want -EINTR", s.result,
	      s.result <= 0 ? strerror(-s.result) : "not run");
	uint64_t rip = rip_of(vcpu);
	CHECK(rip == CODE, "rip %#llx, want the jmp at %#x", (unsigned long long)rip, CODE);

	/* Resume at the hlt: the kick is consumed, the next run enters the guest. */
	struct kvm_regs r;
	REQUIRE(E->get_regs(vcpu, &r) == 0, "get_regs");
	r.rip = CODE + 2;
	REQUIRE(E->set_regs(vcpu, &r) == 0, "set_regs");
	run_expect(vcpu, run, KVM_EXIT_HLT);
	CHECK_EQ(rip_of(vcpu), CODE + 3);

	/* A kick while no run() is in progress makes the next run() return -EINTR at once. */
	r.rip = CODE + 2;
	REQUIRE(E->set_regs(vcpu, &r) == 0, "set_regs");
	E->kick(vcpu);
	int rr = E->run(vcpu);
	CHECK(rr == -EINTR, "run() after kick = %d, want -EINTR", rr);
	CHECK_EQ(rip_of(vcpu), CODE + 2);
	run_expect(vcpu, run, KVM_EXIT_HLT);
	printf("ok 5 kick\n");
}

/* 6. The bus-lock capability: probe and KVM's documented -EINVAL cases. */
static void test_bus_lock_cap(struct blvm_engine_vm *vm)
{
	int cap = E->check_extension(vm, KVM_CAP_X86_BUS_LOCK_EXIT);
	printf("KVM_CAP_X86_BUS_LOCK_EXIT = %d\n", cap);
	CHECK(cap >= 0, "check_extension = %d (%s)", cap, strerror(-cap));
	CHECK((cap & ~(KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT)) == 0,
	      "unknown modes in %#x", cap);

	struct kvm_enable_cap ec = { .cap = KVM_CAP_X86_BUS_LOCK_EXIT };
	ec.args[0] = KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT;
	CHECK_EQ(E->enable_cap(vm, &ec), -EINVAL);
	ec.args[0] = 1u << 5;
	CHECK_EQ(E->enable_cap(vm, &ec), -EINVAL);
	/* OFF alone is valid everywhere and leaves detection off. */
	ec.args[0] = KVM_BUS_LOCK_DETECTION_OFF;
	CHECK_EQ(E->enable_cap(vm, &ec), 0);
	printf("ok 6 bus-lock capability\n");
}

/* 7. CPUID as the guest sees it: APIC ID and blvm's hypervisor leaves. */
static void guest_cpuid(struct blvm_engine_vcpu *vcpu, struct kvm_run *run, uint32_t leaf,
			uint32_t subleaf, struct kvm_regs *out)
{
	static const uint8_t code[] = {
		0x0f, 0xa2, /* cpuid */
		0xf4,       /* hlt */
	};
	struct kvm_regs in = { .rax = leaf, .rcx = subleaf };
	load(vcpu, code, sizeof(code), &in);
	run_expect(vcpu, run, KVM_EXIT_HLT);
	REQUIRE(E->get_regs(vcpu, out) == 0, "get_regs");
}

static void test_cpuid(struct blvm_engine_vcpu *vcpu, struct kvm_run *run, unsigned id,
		       unsigned nr_vcpus)
{
	struct kvm_regs r;
	guest_cpuid(vcpu, run, 0x40000000, 0, &r);
	CHECK_EQ(r.rax, 0x40000001);
	char sig[13] = { 0 };
	uint32_t w[3] = { (uint32_t)r.rbx, (uint32_t)r.rcx, (uint32_t)r.rdx };
	memcpy(sig, w, 12);
	CHECK(strcmp(sig, "blvmblvmblvm") == 0, "signature \"%s\"", sig);

	guest_cpuid(vcpu, run, 0x40000001, 0, &r);
	CHECK_EQ(r.rax, nr_vcpus);
	CHECK_EQ(r.rbx, 1);

	guest_cpuid(vcpu, run, 1, 0, &r);
	CHECK_EQ((r.rbx >> 24) & 0xff, id);

	guest_cpuid(vcpu, run, 0, 0, &r);
	if ((uint32_t)r.rax >= 0xb) {
		guest_cpuid(vcpu, run, 0xb, 0, &r);
		CHECK_EQ(r.rdx, id);
	} else {
		printf("(max basic leaf %#x: no leaf 0xb to check)\n", (uint32_t)r.rax);
	}
	printf("ok 7 cpuid (vCPU %u)\n", id);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120); /* a hang guard, not a timing assertion: a lost kick must not hang the suite */

	const unsigned nr_vcpus = 2;
	struct blvm_engine_config cfg = { .nr_vcpus = nr_vcpus };
	struct blvm_engine_vm *vm;
	char err[256];
	int r = E->vm_create(&cfg, &vm, err, sizeof(err));
	if (r == -ENOENT || r == -EACCES || r == -ENODEV) {
		printf("SKIP: /dev/kvm not available: %s\n", err);
		return 77;
	}
	REQUIRE(r == 0, "vm_create = %d: %s", r, err);
	CHECK(strcmp(E->name, "kvm") == 0, "name %s", E->name);

	/* Capabilities before any vCPU exists, as KVM_ENABLE_CAP wants. */
	test_bus_lock_cap(vm);

	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(ram != MAP_FAILED, "mmap");
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE,
		.userspace_addr = (uintptr_t)ram,
	};
	r = E->set_user_memory_region(vm, &slot);
	REQUIRE(r == 0, "set_user_memory_region = %d (%s)", r, strerror(-r));

	struct kvm_run *run0, *run1;
	struct blvm_engine_vcpu *v0 = new_vcpu(vm, 0, &run0);
	struct blvm_engine_vcpu *v1 = new_vcpu(vm, 1, &run1);
	CHECK(run0 != run1, "two vCPUs share a run area");
	CHECK_EQ(E->instructions(v0), (uint64_t)-1);

	test_out(v0, run0);
	test_in(v0, run0);
	test_mmio(v0, run0);
	test_regs(v0, run0);
	test_kick(v1, run1);
	test_cpuid(v0, run0, 0, nr_vcpus);
	test_cpuid(v1, run1, 1, nr_vcpus);

	E->vcpu_destroy(v1);
	E->vcpu_destroy(v0);
	E->vm_destroy(vm);
	munmap(ram, RAM_SIZE);

	if (failures) {
		printf("%d check(s) failed\n", failures);
		return 1;
	}
	printf("all kvm engine checks passed\n");
	return 0;
}
