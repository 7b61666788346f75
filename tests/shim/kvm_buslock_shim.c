/* SPDX-License-Identifier: MIT */
/*
 * kvm_buslock_shim.so: a fake kernel for the kvm engine's bus-lock path.
 *
 * Why: this project's hosts run /dev/kvm in software (kvm_pvm), which reports
 * KVM_CAP_X86_BUS_LOCK_EXIT = 0, so blvm's kvm-engine path for bus locks (probe the capability,
 * enable it before any vCPU exists, exit 33, the KVM_RUN_X86_BUS_LOCK flag on other exits, the
 * policies on top, --engine=auto choosing kvm) never runs against a kernel. Loaded with
 * LD_PRELOAD into blvm (or any KVM_RUN loop), this library interposes ioctl(), mmap()/mmap64()
 * and close(), forwards everything to the real functions (dlsym(RTLD_NEXT, ...)), and plays the
 * kernel's part of the bus-lock exit as Documentation/virt/kvm/api.rst (7.24
 * KVM_CAP_X86_BUS_LOCK_EXIT, "flags" and exit 33 in 5. struct kvm_run) and docs/REFERENCE.md describe
 * it, turning guest "markers" into bus locks. tests/sh/kvm-buslock-shim.sh drives it with the
 * guest guests/kvm-buslock-marks.c; tests/shim/kvm_buslock_shim_check.c checks the shim itself.
 *
 * What it does:
 *   - KVM_CHECK_EXTENSION(KVM_CAP_X86_BUS_LOCK_EXIT) on /dev/kvm or on a VM fd answers
 *     KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT (3) without asking the kernel.
 *   - KVM_ENABLE_CAP(KVM_CAP_X86_BUS_LOCK_EXIT) on a VM fd, never forwarded (the real kernel
 *     would refuse nothing but also enable nothing): -1/EINVAL when cap->flags is not 0 (x86's
 *     kvm_vm_ioctl_enable_cap), when args[0] has bits outside OFF|EXIT, or has both OFF and EXIT
 *     (KVM's own checks); -1/EINVAL too, with the stderr line
 *         kvm-shim: KVM_ENABLE_CAP(KVM_CAP_X86_BUS_LOCK_EXIT) after KVM_CREATE_VCPU ...
 *     when a vCPU of that VM already exists. That last rule is STRICTER than KVM, on purpose: KVM
 *     accepts a late enable and silently leaves the vCPUs created before it without detection
 *     (VMX reads the VM's setting when it sets up a vCPU's controls). A monitor that enabled late
 *     would run unpoliced; here it fails loudly, so a test's status checks catch it. Otherwise
 *     the mode is recorded (EXIT turns detection on for the VM; OFF or 0 succeed and change
 *     nothing, as in KVM, which never turns it off again) and 0 is returned.
 *   - KVM_CREATE_VM / KVM_CREATE_VCPU / mmap of a vCPU fd at offset 0 are forwarded and
 *     remembered: which VM a vCPU belongs to, whether detection was on when it was created (as in
 *     KVM, the setting reaches only vCPUs created afterwards), and where its kvm_run is mapped.
 *     close() forgets an fd (before the real close, so the number cannot be reused meanwhile).
 *   - KVM_RUN on a vCPU fd: the real ioctl runs; then the shim clears KVM_RUN_X86_BUS_LOCK in
 *     kvm_run->flags, whatever the result (KVM zeroes flags at the start of every KVM_RUN, even
 *     one that returns -EINTR at once; kvm_pvm here does too, so on this host the clear is
 *     redundant, but a bit the shim set must never survive into the next run, whatever kernel),
 *     and, if the run succeeded on a vCPU with detection on, turns a marker exit into what KVM
 *     reports for a bus lock:
 *       KVM_EXIT_IO, direction out, port 0xb1  -> exit_reason KVM_EXIT_X86_BUS_LOCK (33), flag
 *                                                 set: a bus lock KVM handled itself, nothing
 *                                                 else for user space to do;
 *       KVM_EXIT_IO, port 0xb2                 -> reason kept (IO), flag set: a bus lock that
 *                                                 coincided with an exit to user space;
 *       KVM_EXIT_MMIO, is_write, guest-physical
 *         0xfeb00000..0xfeb00fff               -> reason kept (MMIO), flag set: the same.
 *     With detection off nothing is rewritten: the markers stay plain IO/MMIO exits.
 *
 * The rewritten OUT to 0xb1. The real kernel exited to user space because nobody in the kernel
 * claims port 0xb1; it left the OUT pending (vcpu->arch.complete_userspace_io) and completes it
 * on the next KVM_RUN whatever user space did with the exit: for an OUT there is nothing to copy
 * back, the kernel just steps past the instruction. So after exit 33 the monitor does nothing,
 * calls KVM_RUN again, and the guest continues past the OUT exactly once; the OUT's data is
 * dropped (it is "handled in the kernel"), so blvm does not count it as an unclaimed port write.
 * Only OUT is rewritten: an IN would need user space to supply the data. The check program
 * verifies the once-only continuation against the real kernel (no second exit for the same OUT,
 * RIP at the end of the guest code).
 *
 * What it does NOT model:
 *   - real detection: only the markers above are bus locks; real split or UC locked
 *     instructions (e.g. buslock-storm) are not reported at all;
 *   - RIP: a real bus-lock exit on Intel is trap-like (RIP after the locked instruction); here RIP
 *     is wherever the real kernel left it for the marker exit (on the OUT, which completes on
 *     the next run), and the marker is not a locked instruction at all;
 *   - AMD's fault-like flavour and bus-lock counter, VMX exit-reason bit 26 vs exit 74, nested
 *     guests; KVM_RUN_X86_SMM and the rest of flags are left as the real kernel wrote them;
 *   - string I/O markers (rep outsb to 0xb1 would drop every element), dup()/dup2()/fork() of KVM
 *     fds, fds closed other than through close(), more than SHIM_MAX_FDS fds or SHIM_MAX_VMS VMs
 *     alive at once (such fds and VMs are forwarded untouched, never rewritten);
 *   - KVM_CHECK_EXTENSION on a vCPU fd (KVM rejects it there; forwarded).
 *
 * KVM_BUSLOCK_SHIM_REPORT=1 in the environment: at exit, one line on stderr with what the shim
 * did (exits rewritten into 33, IO and MMIO exits flagged, capability answers and enables).
 *
 * KVM_BUSLOCK_SHIM_SOFTWARE=1: the kernel below the shim is a software one, for hosts without
 * /dev/kvm (tests/sh/kvm-buslock-shim.sh uses it there). open("/dev/kvm") then returns a file
 * descriptor of the shim's own (on /dev/null), and every KVM ioctl blvm's kvm engine issues on it
 * and on the VM and vCPU descriptors it yields is answered by blvm's emu engine, whose operations
 * are KVM's ioctls with the same structures and semantics (include/blvm/engine.h): the monitor's
 * whole kvm engine (src/kvm/kvm.c: its KVM_RUN loop, immediate_exit and the kick signal, run-page
 * mmap, capability probe and enable) runs unchanged on top, and the shim's rewriting above works
 * as on a real kernel. The emu engine is a KVM with the bus-lock exit (api.rst 7.24), so real split
 * and UC locked instructions of the guest also exit with 33 once the monitor enabled
 * KVM_CAP_X86_BUS_LOCK_EXIT (the shim forwards an enable it accepts). Where the software kernel
 * differs from KVM (soft_ioctl below): KVM_GET_SUPPORTED_CPUID lists only leaf 0, whose vendor
 * "GenuineIntel" is the software kernel's flavour (the emu engine's VMX model, created Intel: its
 * bus-lock exit is trap-like, as on an Intel host, which kvm.c reads from that leaf), and KVM_SET_CPUID2
 * only takes the vCPU count from blvm's leaf 0x40000001 (the emu engine has its own CPUID model,
 * with the same hypervisor leaves); KVM_SET_TSS_ADDR and KVM_SET_IDENTITY_MAP_ADDR are accepted
 * and unused (no vm86 real mode); KVM_SET_GSI_ROUTING is accepted (the emu engine's routing is the
 * one kvm.c installs); blvm's own BLVM_CAP_BUS_LOCK_CONTAIN is unknown, as to KVM. A signal sent
 * with tgkill() (through syscall(), as kvm.c's kick does) to a thread inside KVM_RUN kicks the
 * vCPU it runs, as a pending signal makes KVM_RUN return -EINTR. With KVM_CREATE_IRQCHIP, HLT
 * never exits to user space, as in KVM (kvm_vcpu_halt() blocks inside KVM_RUN): the shim turns the
 * emu engine's halt_in_kernel on, so its own exit for a dead VM does not happen and the vCPU sleeps
 * in run() until an event or a signal (-EINTR). What a monitor reads to find such a VM dead is
 * answered from the engine's state as KVM answers it: KVM_GET_VCPU_EVENTS, KVM_GET_LAPIC,
 * KVM_GET_IRQCHIP, KVM_GET_PIT2 (the engine's own operations), and KVM_GET_STATS_FD
 * (KVM_CAP_BINARY_STATS_FD): a descriptor whose pread() returns KVM's binary statistics layout
 * (api.rst; virt/kvm/binary_stats.c: header, id string, descriptors, data) with one statistic,
 * "blocking" (instant, boolean, as KVM's generic vCPU stat), read live from the engine's vCPU (1
 * while it sleeps in run() after HLT or waiting for INIT/SIPI, KVM's kvm_vcpu_block()).
 * KVM_BUSLOCK_SHIM_NO_STATS=1 plays a kernel before Linux 5.14 instead: KVM_CAP_BINARY_STATS_FD is
 * 0 and KVM_GET_STATS_FD fails with EINVAL.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <limits.h>
#include <linux/futex.h>

#include <blvm/buslock.h> /* the bus-lock names where <linux/kvm.h> lacks them */
#include <blvm/engine.h>  /* the software kernel: blvm_engine_emu */

#include "emu/emu.h" /* struct emu_vm: the vCPU count, from KVM_SET_CPUID2 */

#define SHIM_PORT_BUS_LOCK_EXIT 0xb1 /* OUT here: exit 33 */
#define SHIM_PORT_BUS_LOCK_IO 0xb2   /* IO exit here: flag on the IO exit */
#define SHIM_MMIO_BASE 0xfeb00000ull /* MMIO write in this page: flag on the MMIO exit */
#define SHIM_MMIO_SIZE 0x1000ull

#define SHIM_MAX_FDS 4096
#define SHIM_MAX_VMS 64

enum fd_kind { FD_NONE, FD_VM, FD_VCPU };

struct vm_state {
	int refs;          /* its VM fd and its vCPU fds; 0 = free slot */
	bool exit_enabled; /* KVM_BUS_LOCK_DETECTION_EXIT enabled */
	bool has_vcpus;    /* a KVM_CREATE_VCPU succeeded (KVM's created_vcpus) */
};

struct fd_state {
	enum fd_kind kind;
	int vm;              /* index into vms[] */
	bool detect;         /* vCPU: the VM had EXIT enabled when this vCPU was created */
	struct kvm_run *run; /* vCPU: its kvm_run as mmap'ed by the caller, NULL until then */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fd_state fds[SHIM_MAX_FDS];
static struct vm_state vms[SHIM_MAX_VMS];

static bool warned_unmapped;
static unsigned long n_exit33, n_io_flagged, n_mmio_flagged, n_cap_answers, n_enables, n_refused;

typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*close_fn)(int);
typedef int (*munmap_fn)(void *, size_t);
typedef int (*open_fn)(const char *, int, ...);
typedef long (*syscall_fn)(long, ...);
static ioctl_fn real_ioctl;
static mmap_fn real_mmap, real_mmap64;
static close_fn real_close;
static munmap_fn real_munmap;
static open_fn real_open;
static syscall_fn real_syscall;

/* ---- the software kernel (KVM_BUSLOCK_SHIM_SOFTWARE=1) ------------------------------------------ */

enum soft_kind { SOFT_NONE, SOFT_SYS, SOFT_VM, SOFT_VCPU, SOFT_STATS };
struct soft_fd {
	enum soft_kind kind;
	int vm;                        /* SOFT_VM, SOFT_VCPU, SOFT_STATS: index into soft_vms[] */
	struct blvm_engine_vcpu *vcpu; /* SOFT_VCPU; SOFT_STATS: its vCPU, NULL once that is closed */
	unsigned vcpu_id;              /* SOFT_VCPU, SOFT_STATS: the id KVM_CREATE_VCPU was given */
	struct kvm_run *run;           /* SOFT_VCPU: the emu engine's run area, "mmap'ed" as is */
	int tid;                       /* SOFT_VCPU: the thread inside KVM_RUN, 0 = none; atomic */
};
struct soft_vm {
	struct blvm_engine_vm *ev; /* NULL = free slot */
	int refs;                  /* its VM fd, vCPU fds and stats fds, as KVM keeps a VM while they live */
};
static bool soft_mode;
static bool soft_no_stats; /* KVM_BUSLOCK_SHIM_NO_STATS=1: no KVM_CAP_BINARY_STATS_FD */
static struct soft_fd soft[SHIM_MAX_FDS];
static struct soft_vm soft_vms[SHIM_MAX_VMS];
static const struct blvm_engine_ops *const E = &blvm_engine_emu;

static void resolve(void)
{
	/* Idempotent: the constructor does it, any wrapper called earlier (another library's
	 * constructor) does it too. Pointer stores are atomic on x86-64. */
	if (!__atomic_load_n(&real_ioctl, __ATOMIC_ACQUIRE)) {
		real_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
		real_mmap64 = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");
		real_close = (close_fn)dlsym(RTLD_NEXT, "close");
		real_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
		real_open = (open_fn)dlsym(RTLD_NEXT, "open");
		real_syscall = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
		__atomic_store_n(&real_ioctl, (ioctl_fn)dlsym(RTLD_NEXT, "ioctl"), __ATOMIC_RELEASE);
	}
}

__attribute__((constructor)) static void shim_init(void)
{
	resolve();
	const char *s = getenv("KVM_BUSLOCK_SHIM_SOFTWARE");
	soft_mode = s && strcmp(s, "1") == 0;
	s = getenv("KVM_BUSLOCK_SHIM_NO_STATS");
	soft_no_stats = s && strcmp(s, "1") == 0;
}

__attribute__((destructor)) static void shim_fini(void)
{
	const char *r = getenv("KVM_BUSLOCK_SHIM_REPORT");
	if (!r || strcmp(r, "1") != 0)
		return;
	pthread_mutex_lock(&lock);
	fprintf(stderr,
		"kvm-shim: %lu exits rewritten into KVM_EXIT_X86_BUS_LOCK, %lu IO and %lu MMIO exits flagged; "
		"%lu capability answers, %lu enables accepted, %lu refused\n",
		n_exit33, n_io_flagged, n_mmio_flagged, n_cap_answers, n_enables, n_refused);
	pthread_mutex_unlock(&lock);
}

static bool valid_fd(int fd);
static long soft_ioctl(int fd, unsigned long req, void *arg);

static enum soft_kind soft_kind(int fd)
{
	return soft_mode && fd >= 0 && fd < SHIM_MAX_FDS ? __atomic_load_n(&soft[fd].kind, __ATOMIC_ACQUIRE) : SOFT_NONE;
}

/* The kernel below the shim: the software one for its own descriptors, else the real ioctl (raw
 * system calls for the (theoretical) case of a call before dlsym has answered). */
static long raw_ioctl(int fd, unsigned long req, void *arg)
{
	if (soft_kind(fd) != SOFT_NONE)
		return soft_ioctl(fd, req, arg);
	resolve();
	if (real_ioctl)
		return real_ioctl(fd, req, arg);
	return syscall(SYS_ioctl, fd, req, arg);
}

static bool valid_fd(int fd)
{
	return fd >= 0 && fd < SHIM_MAX_FDS;
}

/* Drops fd's entry; the caller holds the lock. */
static void forget_fd_locked(int fd)
{
	if (!valid_fd(fd) || fds[fd].kind == FD_NONE)
		return;
	struct vm_state *vm = &vms[fds[fd].vm];
	if (vm->refs > 0 && --vm->refs == 0)
		*vm = (struct vm_state){ 0 };
	fds[fd] = (struct fd_state){ .kind = FD_NONE };
}

static bool is_dev_kvm(int fd)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && S_ISCHR(a.st_mode) && stat("/dev/kvm", &b) == 0 && S_ISCHR(b.st_mode) &&
	       a.st_rdev == b.st_rdev;
}

static int fail_errno(int e)
{
	errno = e;
	return -1;
}

static int enable_bus_lock_cap(int fd, const struct kvm_enable_cap *cap)
{
	if (!cap)
		return fail_errno(EFAULT);
	pthread_mutex_lock(&lock);
	struct vm_state *vm = &vms[fds[fd].vm];
	uint64_t mode = cap->args[0];
	int r = 0;
	if (cap->flags || (mode & ~(uint64_t)(KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT)) ||
	    ((mode & KVM_BUS_LOCK_DETECTION_OFF) && (mode & KVM_BUS_LOCK_DETECTION_EXIT))) {
		r = EINVAL;
	} else if (vm->has_vcpus) {
		fprintf(stderr,
			"kvm-shim: KVM_ENABLE_CAP(KVM_CAP_X86_BUS_LOCK_EXIT, %#llx) after KVM_CREATE_VCPU on VM fd %d: "
			"-EINVAL (KVM would accept it and leave the existing vCPUs without detection)\n",
			(unsigned long long)mode, fd);
		r = EINVAL;
	} else if (mode & KVM_BUS_LOCK_DETECTION_EXIT) {
		vm->exit_enabled = true;
	}
	if (r)
		n_refused++;
	else
		n_enables++;
	pthread_mutex_unlock(&lock);
	/* The software kernel detects real bus locks too, once enabled (a real kernel is not asked:
	 * it would refuse nothing but enable nothing). */
	if (!r && soft_kind(fd) == SOFT_VM && soft_ioctl(fd, KVM_ENABLE_CAP, (void *)cap) < 0)
		r = errno;
	return r ? fail_errno(r) : 0;
}

/* The kernel's part after a successful KVM_RUN on a vCPU with detection on. */
static void report_bus_lock(struct kvm_run *run)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		if (run->io.port == SHIM_PORT_BUS_LOCK_EXIT && run->io.direction == KVM_EXIT_IO_OUT) {
			run->exit_reason = KVM_EXIT_X86_BUS_LOCK;
			run->flags |= KVM_RUN_X86_BUS_LOCK;
			__atomic_fetch_add(&n_exit33, 1, __ATOMIC_RELAXED);
		} else if (run->io.port == SHIM_PORT_BUS_LOCK_IO) {
			run->flags |= KVM_RUN_X86_BUS_LOCK;
			__atomic_fetch_add(&n_io_flagged, 1, __ATOMIC_RELAXED);
		}
		break;
	case KVM_EXIT_MMIO:
		if (run->mmio.is_write && run->mmio.phys_addr >= SHIM_MMIO_BASE &&
		    run->mmio.phys_addr < SHIM_MMIO_BASE + SHIM_MMIO_SIZE) {
			run->flags |= KVM_RUN_X86_BUS_LOCK;
			__atomic_fetch_add(&n_mmio_flagged, 1, __ATOMIC_RELAXED);
		}
		break;
	}
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *); /* as glibc's own wrapper: one pointer-sized argument */
	va_end(ap);

	if (!valid_fd(fd))
		return (int)raw_ioctl(fd, req, arg);

	pthread_mutex_lock(&lock);
	struct fd_state st = fds[fd];
	pthread_mutex_unlock(&lock);

	switch (req) {
	case KVM_CHECK_EXTENSION:
		if ((long)(uintptr_t)arg == KVM_CAP_X86_BUS_LOCK_EXIT &&
		    (st.kind == FD_VM || (st.kind == FD_NONE && (soft_kind(fd) == SOFT_SYS || is_dev_kvm(fd))))) {
			__atomic_fetch_add(&n_cap_answers, 1, __ATOMIC_RELAXED);
			return KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT;
		}
		break;
	case KVM_ENABLE_CAP:
		if (st.kind == FD_VM && arg && ((const struct kvm_enable_cap *)arg)->cap == KVM_CAP_X86_BUS_LOCK_EXIT)
			return enable_bus_lock_cap(fd, arg);
		break;
	case KVM_CREATE_VM: {
		int r = (int)raw_ioctl(fd, req, arg);
		if (r >= 0 && valid_fd(r)) {
			int e = errno;
			pthread_mutex_lock(&lock);
			forget_fd_locked(r); /* a number closed behind our back */
			for (int i = 0; i < SHIM_MAX_VMS; i++) {
				if (vms[i].refs == 0) {
					vms[i] = (struct vm_state){ .refs = 1 };
					fds[r] = (struct fd_state){ .kind = FD_VM, .vm = i };
					break;
				}
			}
			pthread_mutex_unlock(&lock);
			errno = e;
		}
		return r;
	}
	case KVM_CREATE_VCPU: {
		int r = (int)raw_ioctl(fd, req, arg);
		if (r >= 0 && st.kind == FD_VM) {
			int e = errno;
			pthread_mutex_lock(&lock);
			struct vm_state *vm = &vms[st.vm];
			vm->has_vcpus = true;
			if (valid_fd(r)) {
				forget_fd_locked(r);
				vm->refs++;
				fds[r] = (struct fd_state){ .kind = FD_VCPU, .vm = st.vm, .detect = vm->exit_enabled };
			}
			pthread_mutex_unlock(&lock);
			errno = e;
		}
		return r;
	}
	case KVM_RUN:
		if (st.kind == FD_VCPU) {
			int r = (int)raw_ioctl(fd, req, arg);
			int e = errno;
			if (st.run) {
				/* The software kernel clears flags at every KVM_RUN itself, and sets the bit
				 * for the real bus locks it detects: those stay. */
				if (soft_kind(fd) == SOFT_NONE)
					st.run->flags &= (__u16)~KVM_RUN_X86_BUS_LOCK;
				if (r == 0 && st.detect)
					report_bus_lock(st.run);
			} else if (st.detect && !__atomic_exchange_n(&warned_unmapped, true, __ATOMIC_RELAXED)) {
				fprintf(stderr, "kvm-shim: KVM_RUN on vCPU fd %d whose kvm_run was never mmap'ed: "
					"no exit is rewritten\n", fd);
			}
			errno = e;
			return r;
		}
		break;
	}
	return (int)raw_ioctl(fd, req, arg);
}

static void note_mapping(void *p, int fd, off_t off)
{
	if (p == MAP_FAILED || off != 0 || !valid_fd(fd))
		return;
	pthread_mutex_lock(&lock);
	if (fds[fd].kind == FD_VCPU)
		fds[fd].run = p;
	pthread_mutex_unlock(&lock);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	resolve();
	if (soft_kind(fd) == SOFT_VCPU && off == 0) {
		note_mapping(soft[fd].run, fd, off);
		return soft[fd].run;
	}
	void *p = real_mmap ? real_mmap(addr, len, prot, flags, fd, off)
			    : (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (fd >= 0) {
		int e = errno;
		note_mapping(p, fd, off);
		errno = e;
	}
	return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	resolve();
	if (soft_kind(fd) == SOFT_VCPU && off == 0) {
		note_mapping(soft[fd].run, fd, off);
		return soft[fd].run;
	}
	mmap_fn f = real_mmap64 ? real_mmap64 : real_mmap;
	void *p = f ? f(addr, len, prot, flags, fd, off) : (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (fd >= 0) {
		int e = errno;
		note_mapping(p, fd, off);
		errno = e;
	}
	return p;
}

static void soft_close(int fd);

int close(int fd)
{
	if (valid_fd(fd)) {
		pthread_mutex_lock(&lock);
		forget_fd_locked(fd);
		pthread_mutex_unlock(&lock);
	}
	if (soft_kind(fd) != SOFT_NONE)
		soft_close(fd);
	resolve();
	return real_close ? real_close(fd) : (int)syscall(SYS_close, fd);
}

/* ---- the software kernel's system calls ---------------------------------------------------------- */

static int soft_new_fd(int flags, struct soft_fd entry)
{
	resolve();
	int fd = real_open ? real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC)) : -1;
	if (fd < 0)
		return -1;
	if (!valid_fd(fd)) {
		real_close(fd);
		return fail_errno(EMFILE);
	}
	pthread_mutex_lock(&lock);
	soft[fd] = entry;
	__atomic_store_n(&soft[fd].kind, entry.kind, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
	return fd;
}

static void soft_vm_put_locked(int i)
{
	if (--soft_vms[i].refs == 0) {
		E->vm_destroy(soft_vms[i].ev);
		soft_vms[i] = (struct soft_vm){ 0 };
	}
}

static void soft_close(int fd)
{
	pthread_mutex_lock(&lock);
	struct soft_fd f = soft[fd];
	__atomic_store_n(&soft[fd].kind, SOFT_NONE, __ATOMIC_RELEASE);
	if (f.kind == SOFT_VCPU) {
		E->vcpu_destroy(f.vcpu);
		for (int k = 0; k < SHIM_MAX_FDS; k++) /* its stats files read "not blocking" from now on */
			if (soft[k].kind == SOFT_STATS && soft[k].vcpu == f.vcpu)
				soft[k].vcpu = NULL;
	}
	if (f.kind != SOFT_SYS)
		soft_vm_put_locked(f.vm);
	pthread_mutex_unlock(&lock);
}

/* An engine result (0, a value, or -errno) as an ioctl's. */
static long soft_ret(long r)
{
	return r < 0 ? fail_errno((int)-r) : r;
}

static long soft_ioctl(int fd, unsigned long req, void *arg)
{
	pthread_mutex_lock(&lock);
	struct soft_fd f = soft[fd];
	struct blvm_engine_vm *ev = f.kind == SOFT_VM || f.kind == SOFT_VCPU ? soft_vms[f.vm].ev : NULL;
	pthread_mutex_unlock(&lock);
	long cap = (long)(uintptr_t)arg;
	switch (f.kind) {
	case SOFT_SYS:
		switch (req) {
		case KVM_GET_API_VERSION:
			return KVM_API_VERSION;
		case KVM_GET_VCPU_MMAP_SIZE:
			return (sizeof(struct kvm_run) + 4095) & ~4095ul;
		case KVM_CHECK_EXTENSION:
			return cap == BLVM_CAP_BUS_LOCK_CONTAIN ? 0 : cap == KVM_CAP_BINARY_STATS_FD ? !soft_no_stats
				: E->check_extension(NULL, cap);
		case KVM_GET_SUPPORTED_CPUID: {
			struct kvm_cpuid2 *c = arg;
			if (c->nent < 1)
				return fail_errno(E2BIG); /* api.rst 4.46 */
			c->nent = 1;
			/* max basic leaf 0x1f; "GenuineIntel" in EBX, EDX, ECX */
			c->entries[0] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0x1f, .ebx = 0x756e6547,
								   .edx = 0x49656e69, .ecx = 0x6c65746e };
			return 0;
		}
		case KVM_CREATE_VM: {
			struct blvm_engine_config cfg = { .nr_vcpus = 1 };
			struct blvm_engine_vm *vm;
			char err[200];
			if (E->vm_create(&cfg, &vm, err, sizeof err) < 0)
				return fail_errno(ENOMEM);
			pthread_mutex_lock(&lock);
			int i = 0;
			while (i < SHIM_MAX_VMS && soft_vms[i].ev)
				i++;
			if (i < SHIM_MAX_VMS)
				soft_vms[i] = (struct soft_vm){ .ev = vm, .refs = 1 };
			pthread_mutex_unlock(&lock);
			if (i == SHIM_MAX_VMS) {
				E->vm_destroy(vm);
				return fail_errno(ENOMEM);
			}
			int r = soft_new_fd(O_CLOEXEC, (struct soft_fd){ .kind = SOFT_VM, .vm = i });
			if (r < 0) {
				pthread_mutex_lock(&lock);
				soft_vm_put_locked(i);
				pthread_mutex_unlock(&lock);
			}
			return r;
		}
		}
		break;
	case SOFT_VM:
		switch (req) {
		case KVM_CHECK_EXTENSION:
			return cap == BLVM_CAP_BUS_LOCK_CONTAIN ? 0 : cap == KVM_CAP_BINARY_STATS_FD ? !soft_no_stats
				: E->check_extension(ev, cap);
		case KVM_ENABLE_CAP:
			if (((const struct kvm_enable_cap *)arg)->cap == BLVM_CAP_BUS_LOCK_CONTAIN)
				break;
			return soft_ret(E->enable_cap(ev, arg));
		case KVM_SET_TSS_ADDR:
		case KVM_SET_IDENTITY_MAP_ADDR:
		case KVM_SET_GSI_ROUTING:
			return 0;
		case KVM_SET_USER_MEMORY_REGION:
			return soft_ret(E->set_user_memory_region(ev, arg));
		case KVM_CREATE_IRQCHIP: {
			long r = soft_ret(E->create_irqchip ? E->create_irqchip(ev) : -EINVAL);
			if (r == 0) /* before any vCPU runs: HLT blocks inside KVM_RUN from now on */
				((struct emu_vm *)ev)->halt_in_kernel = true;
			return r;
		}
		case KVM_CREATE_PIT2:
			return soft_ret(E->create_pit2 ? E->create_pit2(ev, arg) : -EINVAL);
		case KVM_IRQ_LINE:
			return soft_ret(E->irq_line ? E->irq_line(ev, arg) : -EINVAL);
		case KVM_GET_IRQCHIP:
			return soft_ret(E->get_irqchip(ev, arg));
		case KVM_GET_PIT2:
			return soft_ret(E->get_pit2(ev, arg));
		case KVM_CREATE_VCPU: {
			struct blvm_engine_vcpu *vcpu;
			struct kvm_run *run;
			int r = E->vcpu_create(ev, (unsigned)cap, &vcpu, &run);
			if (r < 0)
				return fail_errno(-r);
			pthread_mutex_lock(&lock);
			soft_vms[f.vm].refs++;
			pthread_mutex_unlock(&lock);
			r = soft_new_fd(O_CLOEXEC, (struct soft_fd){ .kind = SOFT_VCPU, .vm = f.vm, .vcpu = vcpu,
								    .vcpu_id = (unsigned)cap, .run = run });
			if (r < 0) {
				int e = errno;
				pthread_mutex_lock(&lock);
				E->vcpu_destroy(vcpu);
				soft_vm_put_locked(f.vm);
				pthread_mutex_unlock(&lock);
				errno = e;
			}
			return r;
		}
		}
		break;
	case SOFT_VCPU:
		switch (req) {
		case KVM_SET_CPUID2: {
			const struct kvm_cpuid2 *c = arg;
			for (__u32 i = 0; i < c->nent; i++)
				if (c->entries[i].function == 0x40000001u && c->entries[i].eax >= 1)
					((struct emu_vm *)ev)->cfg.nr_vcpus = c->entries[i].eax;
			return 0;
		}
		case KVM_GET_REGS:
			return soft_ret(E->get_regs(f.vcpu, arg));
		case KVM_SET_REGS:
			return soft_ret(E->set_regs(f.vcpu, arg));
		case KVM_GET_SREGS:
			return soft_ret(E->get_sregs(f.vcpu, arg));
		case KVM_SET_SREGS:
			return soft_ret(E->set_sregs(f.vcpu, arg));
		case KVM_GET_MSRS:
			return soft_ret(E->get_msrs(f.vcpu, arg));
		case KVM_SET_GUEST_DEBUG:
			return soft_ret(E->set_guest_debug ? E->set_guest_debug(f.vcpu, arg) : -EINVAL);
		case KVM_GET_MP_STATE:
			return soft_ret(E->get_mp_state(f.vcpu, arg));
		case KVM_SET_MP_STATE:
			return soft_ret(E->set_mp_state(f.vcpu, arg));
		case KVM_GET_VCPU_EVENTS:
			return soft_ret(E->get_vcpu_events(f.vcpu, arg));
		case KVM_GET_LAPIC:
			return soft_ret(E->get_lapic(f.vcpu, arg));
		case KVM_GET_STATS_FD: {
			if (soft_no_stats)
				break; /* EINVAL: an ioctl the kernel does not know */
			pthread_mutex_lock(&lock);
			soft_vms[f.vm].refs++;
			pthread_mutex_unlock(&lock);
			int r = soft_new_fd(O_CLOEXEC, (struct soft_fd){ .kind = SOFT_STATS, .vm = f.vm, .vcpu = f.vcpu,
									 .vcpu_id = f.vcpu_id });
			if (r < 0) {
				int e = errno;
				pthread_mutex_lock(&lock);
				soft_vm_put_locked(f.vm);
				pthread_mutex_unlock(&lock);
				errno = e;
			}
			return r;
		}
		case KVM_RUN: {
			/* The thread first, then the run: a kicker stores immediate_exit, then signals
			 * (kvm.c's kick protocol), so either this run sees the flag or the signal finds
			 * the thread (both sequentially consistent). With the irqchip the engine's run()
			 * sleeps through HLT as kvm_vcpu_halt() (halt_in_kernel above). */
			__atomic_store_n(&soft[fd].tid, (int)real_syscall(SYS_gettid), __ATOMIC_SEQ_CST);
			int r = E->run(f.vcpu);
			__atomic_store_n(&soft[fd].tid, 0, __ATOMIC_SEQ_CST);
			return soft_ret(r);
		}
		}
		break;
	case SOFT_STATS:
	case SOFT_NONE:
		break;
	}
	return fail_errno(EINVAL); /* KVM's answer to an ioctl it does not know on these fds */
}

/* A signal to a thread inside the software KVM_RUN makes that run return -EINTR, as in KVM. */
static void soft_signal(int tid)
{
	for (int fd = 0; fd < SHIM_MAX_FDS; fd++)
		if (soft_kind(fd) == SOFT_VCPU && __atomic_load_n(&soft[fd].tid, __ATOMIC_SEQ_CST) == tid)
			E->kick(soft[fd].vcpu);
}

/*
 * pread() of a KVM_GET_STATS_FD descriptor: KVM's layout (virt/kvm/binary_stats.c, kvm_stats_read):
 * the header, the id string ("kvm-PID/vcpu-N", name_size bytes), the descriptors (each struct
 * kvm_stats_desc and its name_size-byte name), then the data, u64 values at data_offset + offset.
 * One statistic: "blocking", KVM's STATS_DESC_IBOOLEAN(VCPU_GENERIC, blocking), read now.
 */
#define SOFT_STATS_NAME_SIZE 48 /* KVM_STATS_NAME_SIZE */
struct soft_stats_image {
	struct kvm_stats_header h;
	char id[SOFT_STATS_NAME_SIZE];
	struct kvm_stats_desc d;
	char name[SOFT_STATS_NAME_SIZE];
	uint64_t blocking;
};

static ssize_t soft_stats_pread(int fd, void *buf, size_t count, off_t off)
{
	struct soft_stats_image im;
	memset(&im, 0, sizeof im);
	im.h = (struct kvm_stats_header){ .name_size = SOFT_STATS_NAME_SIZE, .num_desc = 1,
					  .id_offset = offsetof(struct soft_stats_image, id),
					  .desc_offset = offsetof(struct soft_stats_image, d),
					  .data_offset = offsetof(struct soft_stats_image, blocking) };
	im.d = (struct kvm_stats_desc){ .flags = KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN | KVM_STATS_BASE_POW10,
					.size = 1, .offset = 0 };
	strcpy(im.name, "blocking");
	pthread_mutex_lock(&lock); /* soft_close() clears .vcpu under it before the vCPU is freed */
	snprintf(im.id, sizeof im.id, "kvm-%d/vcpu-%u", (int)getpid(), soft[fd].vcpu_id);
	struct emu_vcpu *c = (struct emu_vcpu *)soft[fd].vcpu;
	im.blocking = c && atomic_load(&c->blocking);
	pthread_mutex_unlock(&lock);
	if (off < 0)
		return fail_errno(EINVAL);
	if ((size_t)off >= sizeof im)
		return 0;
	size_t n = sizeof im - (size_t)off < count ? sizeof im - (size_t)off : count;
	memcpy(buf, (const char *)&im + off, n);
	return (ssize_t)n;
}

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);

static ssize_t pread_or(const char *sym, int fd, void *buf, size_t count, off_t off)
{
	if (soft_kind(fd) == SOFT_STATS)
		return soft_stats_pread(fd, buf, count, off);
	pread_fn f = (pread_fn)dlsym(RTLD_NEXT, sym);
	return f ? f(fd, buf, count, off) : syscall(SYS_pread64, fd, buf, count, off);
}

ssize_t pread(int fd, void *buf, size_t count, off_t off)
{
	return pread_or("pread", fd, buf, count, off);
}

ssize_t pread64(int fd, void *buf, size_t count, off_t off)
{
	return pread_or("pread64", fd, buf, count, off);
}

static int soft_open_or(const char *path, int flags, int mode)
{
	resolve();
	if (soft_mode && path && strcmp(path, "/dev/kvm") == 0)
		return soft_new_fd(flags, (struct soft_fd){ .kind = SOFT_SYS });
	return real_open ? real_open(path, flags, mode) : (int)syscall(SYS_open, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	int mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) { /* glibc's __OPEN_NEEDS_MODE */
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, int);
		va_end(ap);
	}
	return soft_open_or(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	int mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) { /* glibc's __OPEN_NEEDS_MODE */
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, int);
		va_end(ap);
	}
	return soft_open_or(path, flags, mode);
}

int munmap(void *addr, size_t len)
{
	resolve();
	if (soft_mode) {
		for (int fd = 0; fd < SHIM_MAX_FDS; fd++)
			if (soft_kind(fd) == SOFT_VCPU && soft[fd].run == addr)
				return 0; /* the run area is the emu engine's: freed with its vCPU */
	}
	return real_munmap ? real_munmap(addr, len) : (int)syscall(SYS_munmap, addr, len);
}

long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	resolve();
	if (soft_mode && nr == SYS_tgkill)
		soft_signal((int)a[1]);
	return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
