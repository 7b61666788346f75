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
 * KVM_CAP_X86_BUS_LOCK_EXIT, "flags" and exit 33 in 5. struct kvm_run) and REFERENCE.md describe
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
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
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

#include <blvm/buslock.h> /* the bus-lock names where <linux/kvm.h> lacks them */

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
static ioctl_fn real_ioctl;
static mmap_fn real_mmap, real_mmap64;
static close_fn real_close;

static void resolve(void)
{
	/* Idempotent: the constructor does it, any wrapper called earlier (another library's
	 * constructor) does it too. Pointer stores are atomic on x86-64. */
	if (!__atomic_load_n(&real_ioctl, __ATOMIC_ACQUIRE)) {
		real_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
		real_mmap64 = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");
		real_close = (close_fn)dlsym(RTLD_NEXT, "close");
		__atomic_store_n(&real_ioctl, (ioctl_fn)dlsym(RTLD_NEXT, "ioctl"), __ATOMIC_RELEASE);
	}
}

__attribute__((constructor)) static void shim_init(void)
{
	resolve();
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

/* Raw system calls for the (theoretical) case of a call before dlsym has answered. */
static long raw_ioctl(int fd, unsigned long req, void *arg)
{
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
		    (st.kind == FD_VM || (st.kind == FD_NONE && is_dev_kvm(fd)))) {
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
	mmap_fn f = real_mmap64 ? real_mmap64 : real_mmap;
	void *p = f ? f(addr, len, prot, flags, fd, off) : (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (fd >= 0) {
		int e = errno;
		note_mapping(p, fd, off);
		errno = e;
	}
	return p;
}

int close(int fd)
{
	if (valid_fd(fd)) {
		pthread_mutex_lock(&lock);
		forget_fd_locked(fd);
		pthread_mutex_unlock(&lock);
	}
	resolve();
	return real_close ? real_close(fd) : (int)syscall(SYS_close, fd);
}
