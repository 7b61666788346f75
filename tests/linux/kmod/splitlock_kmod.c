// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * A kernel-mode split lock taken by an out-of-line kernel function (issue 13): no stock program
 * makes the kernel take one, so this module does. Its init takes and releases a spinlock placed
 * across a 64-byte cache-line boundary n times (module parameter, default 1000). spin_lock() is
 * the kernel's out-of-line _raw_spin_lock (kernel/locking/spinlock.c: CONFIG_INLINE_SPIN_LOCK is
 * not set on Debian's kernels), whose fast path is queued_spin_lock's
 * atomic_try_cmpxchg_acquire(&lock->val, 0, _Q_LOCKED_VAL): a LOCK CMPXCHG on the 4-byte word at
 * the pointer it is given. Across a line that is a split lock (SDM Vol. 3A 9.1.2.2), so each call
 * is one bus lock whose RIP lies inside _raw_spin_lock, in kernel mode, in the task that runs
 * init_module: insmod. spin_unlock() on a native (not paravirtualised) kernel releases with a
 * plain byte store (queued_spin_unlock: smp_store_release), which locks nothing.
 * It also prints where the kernel put _raw_spin_lock (the address the module loader resolved for
 * it, KASLR included): the guest's own view of the relocation, for the test to compare with the
 * monitor's, and cheaper than reading /proc/kallsyms (10 s of an emulated boot).
 * A kernel that sees one CPU patches its LOCK prefixes out (arch/x86/kernel/alternative.c,
 * alternatives_smp_unlock): boot it with noreplace-smp or more than one CPU.
 * Built by scripts/linux-inputs.sh --kmod against Debian's headers of exactly the cached kernel;
 * checked by tests/sh/linux-kmod.sh.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

static unsigned int n = 1000;
module_param(n, uint, 0444);
MODULE_PARM_DESC(n, "spin_lock/spin_unlock pairs on the split lock");

static int __init splitlock_kmod_init(void)
{
	/* 192 bytes hold a 64-byte line with room on both sides, whatever kmalloc's alignment. */
	char *buf = kmalloc(192, GFP_KERNEL);
	spinlock_t *lock;
	unsigned int i;

	if (!buf)
		return -ENOMEM;
	/* The lock word's first 2 bytes end one line, its last 2 start the next. */
	lock = (spinlock_t *)(PTR_ALIGN(buf + 1, 64) - 2);
	spin_lock_init(lock);
	for (i = 0; i < n; i++) {
		spin_lock(lock);
		spin_unlock(lock);
	}
	pr_info("splitlock_kmod: %u spin_lock/spin_unlock pairs on a %zu-byte lock at byte %lu of a 64-byte line; _raw_spin_lock is at %px\n",
		n, sizeof(*lock), (unsigned long)lock & 63, _raw_spin_lock);
	kfree(buf);
	return 0;
}

static void __exit splitlock_kmod_exit(void)
{
}

module_init(splitlock_kmod_init);
module_exit(splitlock_kmod_exit);
MODULE_DESCRIPTION("n split locks in _raw_spin_lock, for blvm's tests");
MODULE_LICENSE("Dual MIT/GPL");
