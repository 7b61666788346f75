/* SPDX-License-Identifier: MIT */
/*
 * Checks tests/shim/kvm_buslock_shim.so itself, run under it (LD_PRELOAD) by
 * tests/sh/kvm-buslock-shim.sh, through blvm's kvm engine (its ops pass the capability, the enable,
 * exit 33 and the flag through unchanged) against the host's real /dev/kvm:
 *   1. KVM_CHECK_EXTENSION(KVM_CAP_X86_BUS_LOCK_EXIT) = OFF|EXIT on /dev/kvm and on a VM;
 *   2. KVM_ENABLE_CAP: unknown bits, OFF|EXIT together, non-zero flags -> -EINVAL; OFF, 0, EXIT
 *      -> 0; any enable after KVM_CREATE_VCPU -> -EINVAL (the shim's loud rule; the test checks
 *      its stderr line);
 *   3. with EXIT enabled, a tiny guest's markers become what KVM reports: OUT 0xb1 -> exit 33
 *      with the flag; OUT 0xb2 -> IO with the flag; a byte write to 0xfeb00000 -> MMIO with the
 *      flag; a read there, a write to the next page, OUT 0x80 -> no flag (flags is cleared on
 *      every run); the OUT behind an exit 33 completes exactly once (the next exit is the next
 *      instruction's, even with a kicked -EINTR run in between), and HLT ends at the last byte;
 *   4. after that VM is gone (its fd numbers free for reuse), a VM without the enable, and one
 *      with OFF only, see the same guest as plain IO/MMIO exits, nothing flagged.
 * Exit status 0 pass, 1 fail, 77 skip (no usable /dev/kvm).
 */
#include <blvm/engine.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_SIZE (2u << 20)
#define CODE 0x1000u

static const struct blvm_engine_ops *E = &blvm_engine_kvm;
static uint8_t *ram;
static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			failures++;                                            \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
		}                                                              \
	} while (0)

#define REQUIRE(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* The guest, 32-bit flat protected mode, paging off. */
static const uint8_t code[] = {
	0xb0, 0x07,                               /* mov $7,%al */
	0xe6, 0xb1,                               /* out %al,$0xb1      marker: exit 33 */
	0xe6, 0xb2,                               /* out %al,$0xb2      marker: IO + flag */
	0xc6, 0x05, 0x00, 0x00, 0xb0, 0xfe, 0x01, /* movb $1,0xfeb00000 marker: MMIO + flag */
	0xa0, 0x00, 0x00, 0xb0, 0xfe,             /* mov 0xfeb00000,%al a read: no flag */
	0xc6, 0x05, 0x00, 0x10, 0xb0, 0xfe, 0x02, /* movb $2,0xfeb01000 next page: no flag */
	0xe6, 0x80,                               /* out %al,$0x80      no flag */
	0xe6, 0xb1,                               /* out %al,$0xb1      marker again */
	0xf4,                                     /* hlt */
};

struct want {
	uint32_t reason;
	uint16_t port;     /* IO */
	uint64_t gpa;      /* MMIO */
	uint8_t is_write;  /* MMIO */
	uint8_t data;      /* IO out / MMIO write: the byte */
	int flagged;
};

static const char *reason_name(uint32_t r)
{
	switch (r) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_X86_BUS_LOCK: return "X86_BUS_LOCK";
	default: return "other";
	}
}

static void expect_exit(struct blvm_engine_vcpu *v, struct kvm_run *run, const char *what, int step,
			const struct want *w)
{
	int r = E->run(v);
	REQUIRE(r == 0, "%s step %d: run() = %d (%s)", what, step, r, strerror(-r));
	int flagged = !!(run->flags & KVM_RUN_X86_BUS_LOCK);
	CHECK(run->exit_reason == w->reason, "%s step %d: exit %u (%s), want %u (%s)", what, step, run->exit_reason,
	      reason_name(run->exit_reason), w->reason, reason_name(w->reason));
	CHECK(flagged == w->flagged, "%s step %d: KVM_RUN_X86_BUS_LOCK %s, want %s", what, step,
	      flagged ? "set" : "clear", w->flagged ? "set" : "clear");
	if (run->exit_reason != w->reason)
		return;
	if (w->reason == KVM_EXIT_IO) {
		uint8_t d = *((uint8_t *)run + run->io.data_offset);
		CHECK(run->io.port == w->port && run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 1 &&
			      run->io.count == 1 && d == w->data,
		      "%s step %d: IO port %#x dir %u size %u count %u data %#x, want OUT %#x data %#x", what, step,
		      run->io.port, run->io.direction, run->io.size, run->io.count, d, w->port, w->data);
	} else if (w->reason == KVM_EXIT_MMIO) {
		CHECK(run->mmio.phys_addr == w->gpa && run->mmio.is_write == w->is_write && run->mmio.len == 1 &&
			      (!w->is_write || run->mmio.data[0] == w->data),
		      "%s step %d: MMIO %#llx write %u len %u data %#x, want %#llx write %u data %#x", what, step,
		      (unsigned long long)run->mmio.phys_addr, run->mmio.is_write, run->mmio.len, run->mmio.data[0],
		      (unsigned long long)w->gpa, w->is_write, w->data);
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, sizeof run->mmio.data);
	}
}

static struct blvm_engine_vm *new_vm(void)
{
	struct blvm_engine_vm *vm;
	struct blvm_engine_config cfg = { .nr_vcpus = 1 };
	char err[200] = "";
	int r = E->vm_create(&cfg, &vm, err, sizeof err);
	REQUIRE(r == 0, "vm_create: %s", err);
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uintptr_t)ram,
	};
	REQUIRE(E->set_user_memory_region(vm, &region) == 0, "set_user_memory_region");
	return vm;
}

static struct blvm_engine_vcpu *new_vcpu(struct blvm_engine_vm *vm, struct kvm_run **run)
{
	struct blvm_engine_vcpu *v;
	int r = E->vcpu_create(vm, 0, &v, run);
	REQUIRE(r == 0, "vcpu_create: %s", strerror(-r));
	struct kvm_sregs s;
	REQUIRE(E->get_sregs(v, &s) == 0, "get_sregs");
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 0xb, .present = 1,
				  .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1 };
	struct kvm_segment ds = cs;
	ds.selector = 0x10;
	ds.type = 0x3;
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.cr0 = 0x11;
	s.cr4 = 0;
	s.efer = 0;
	REQUIRE(E->set_sregs(v, &s) == 0, "set_sregs");
	memcpy(ram + CODE, code, sizeof code);
	struct kvm_regs regs = { .rip = CODE, .rflags = 0x2, .rsp = 0x8000 };
	REQUIRE(E->set_regs(v, &regs) == 0, "set_regs");
	return v;
}

/* Runs the guest to its HLT; `detect`: the markers must come out as bus locks. */
static void run_guest(struct blvm_engine_vcpu *v, struct kvm_run *run, const char *what, int detect)
{
	const struct want steps[] = {
		detect ? (struct want){ KVM_EXIT_X86_BUS_LOCK, 0, 0, 0, 0, 1 }
		       : (struct want){ KVM_EXIT_IO, 0xb1, 0, 0, 7, 0 },
		{ KVM_EXIT_IO, 0xb2, 0, 0, 7, detect },
		{ KVM_EXIT_MMIO, 0, 0xfeb00000, 1, 1, detect },
		{ KVM_EXIT_MMIO, 0, 0xfeb00000, 0, 0, 0 },
		{ KVM_EXIT_MMIO, 0, 0xfeb01000, 1, 2, 0 },
		{ KVM_EXIT_IO, 0x80, 0, 0, 0xff, 0 },
		detect ? (struct want){ KVM_EXIT_X86_BUS_LOCK, 0, 0, 0, 0, 1 }
		       : (struct want){ KVM_EXIT_IO, 0xb1, 0, 0, 0xff, 0 },
		{ KVM_EXIT_HLT, 0, 0, 0, 0, 0 },
	};
	for (unsigned i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		expect_exit(v, run, what, (int)i + 1, &steps[i]);
		if (i == 0) {
			/* A kicked run between exit 33 and the next: -EINTR, flags cleared, and the
			 * pending OUT still completes exactly once afterwards. */
			E->kick(v);
			int r = E->run(v);
			CHECK(r == -EINTR, "%s: kicked run() = %d, want -EINTR", what, r);
			CHECK(!(run->flags & KVM_RUN_X86_BUS_LOCK), "%s: flag survived a kicked run", what);
		}
	}
	struct kvm_regs regs;
	REQUIRE(E->get_regs(v, &regs) == 0, "get_regs");
	CHECK(regs.rip == CODE + sizeof code, "%s: rip %#llx at HLT, want %#x (every instruction once)", what,
	      (unsigned long long)regs.rip, CODE + (unsigned)sizeof code);
	printf("%s %s: %s\n", failures ? "after failures," : "ok", what,
	       detect ? "exit 33, IO and MMIO flagged, the OUT completed once" : "plain IO/MMIO exits, nothing flagged");
}

static int enable(struct blvm_engine_vm *vm, uint64_t mode, uint32_t flags)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_BUS_LOCK_EXIT, .flags = flags, .args = { mode } };
	return E->enable_cap(vm, &cap);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	int sys = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (sys < 0) {
		printf("SKIP: /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	int c = ioctl(sys, KVM_CHECK_EXTENSION, (long)KVM_CAP_X86_BUS_LOCK_EXIT);
	REQUIRE(c == (KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT),
		"KVM_CHECK_EXTENSION on /dev/kvm = %d, want 3 (is kvm_buslock_shim.so preloaded?)", c);
	close(sys);
	printf("ok /dev/kvm: KVM_CHECK_EXTENSION(KVM_CAP_X86_BUS_LOCK_EXIT) = 3\n");

	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(ram != MAP_FAILED, "mmap");

	/* ---- VM A: the enable rules, then detection on ---- */
	struct blvm_engine_vm *vm = new_vm();
	c = E->check_extension(vm, KVM_CAP_X86_BUS_LOCK_EXIT);
	CHECK(c == 3, "check_extension on the VM = %d, want 3", c);
	CHECK(enable(vm, 1u << 2, 0) == -EINVAL, "unknown bit 2 accepted");
	CHECK(enable(vm, 1ull << 63, 0) == -EINVAL, "unknown bit 63 accepted");
	CHECK(enable(vm, KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT, 0) == -EINVAL,
	      "OFF|EXIT together accepted");
	CHECK(enable(vm, KVM_BUS_LOCK_DETECTION_EXIT, 1) == -EINVAL, "non-zero flags accepted");
	CHECK(enable(vm, KVM_BUS_LOCK_DETECTION_OFF, 0) == 0, "OFF refused");
	CHECK(enable(vm, 0, 0) == 0, "0 refused");
	CHECK(enable(vm, KVM_BUS_LOCK_DETECTION_EXIT, 0) == 0, "EXIT refused");
	struct kvm_run *run;
	struct blvm_engine_vcpu *v = new_vcpu(vm, &run);
	/* The shim's loud rule: stderr says "kvm-shim: KVM_ENABLE_CAP(...) after KVM_CREATE_VCPU". */
	CHECK(enable(vm, KVM_BUS_LOCK_DETECTION_EXIT, 0) == -EINVAL, "EXIT after KVM_CREATE_VCPU accepted");
	CHECK(enable(vm, KVM_BUS_LOCK_DETECTION_OFF, 0) == -EINVAL, "OFF after KVM_CREATE_VCPU accepted");
	printf("%s KVM_ENABLE_CAP: bad modes and flags -EINVAL, OFF/0/EXIT accepted, after KVM_CREATE_VCPU -EINVAL\n",
	       failures ? "after failures," : "ok");
	run_guest(v, run, "detection on (EXIT)", 1);
	E->vcpu_destroy(v);
	E->vm_destroy(vm);

	/* ---- VM B: no enable; VM C: OFF only (both may get A's fd numbers back) ---- */
	vm = new_vm();
	v = new_vcpu(vm, &run);
	run_guest(v, run, "detection never enabled", 0);
	E->vcpu_destroy(v);
	E->vm_destroy(vm);

	vm = new_vm();
	CHECK(enable(vm, KVM_BUS_LOCK_DETECTION_OFF, 0) == 0, "OFF refused");
	v = new_vcpu(vm, &run);
	run_guest(v, run, "detection OFF", 0);
	E->vcpu_destroy(v);
	E->vm_destroy(vm);

	munmap(ram, RAM_SIZE);
	if (failures) {
		printf("%d check(s) failed\n", failures);
		return 1;
	}
	printf("all checks passed\n");
	return 0;
}
