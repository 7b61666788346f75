/* SPDX-License-Identifier: MIT */
/*
 * The bus-lock policy: accounting, attribution, QEMU's rate limiter, pause and kill, and the reports.
 *
 * One struct blvm_policy per VM, one mutex. The path of an exit without a bus lock is one test of
 * KVM_RUN_X86_BUS_LOCK and takes no lock; bus locks are rare enough (each one is a VM exit) that a mutex
 * around their accounting costs nothing measurable.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blvm/policy.h"
#include "common/escape.h"
#include "common/json.h"

#define NS_PER_S 1000000000ull
#define RIP_TABLE_MIN 64
#define RIP_TABLE_MAX (2 * BLVM_POLICY_MAX_RIPS) /* load factor stays <= 1/2 */

/*
 * QEMU's rate limiter, transcribed from include/qemu/ratelimit.h (QEMU 5.x onwards, the version with
 * slice_start_time/slice_end_time; read in qemu/qemu and its forks), as target/i386/kvm/kvm.c uses it:
 *   kvm_arch_init():  ratelimit_set_speed(&bus_lock_ratelimit_ctrl, x86ms->bus_lock_ratelimit,
 *                                         BUS_LOCK_SLICE_TIME);        // BUS_LOCK_SLICE_TIME = 1e9 ns
 *   kvm_arch_post_run(): if (run->flags & KVM_RUN_X86_BUS_LOCK) kvm_rate_limit_on_bus_lock();
 *   kvm_rate_limit_on_bus_lock(): delay_ns = ratelimit_calculate_delay(&bus_lock_ratelimit_ctrl, 1);
 *                                 if (delay_ns) g_usleep(delay_ns / SCALE_US);
 * One limiter per VM (a static in kvm.c), shared by every vCPU thread; newer QEMU guards it with a
 * QemuMutex inside RateLimit, we use the policy's mutex. Differences, both deliberate: QEMU sleeps
 * g_usleep(delay / 1000), truncating to microseconds, we return the exact nanoseconds; and QEMU's
 * zero-initialised limiter starts its first slice at the first bus lock only because the real clock is
 * never 0, so ours starts with slice_end_time = INT64_MIN to do the same for an injected clock at 0.
 */
struct ratelimit {
	int64_t slice_start_time;
	int64_t slice_end_time;
	uint64_t slice_quota;
	uint64_t slice_ns;
	uint64_t dispatched;
};

/* ratelimit_set_speed(): slice_quota = MAX(((double)speed * slice_ns) / 1000000000ULL, 1), stored in a
 * uint64_t (so truncated). speed 0 (QEMU: throttling off) cannot reach here: parse() refuses it. */
static void ratelimit_set_speed(struct ratelimit *rl, uint64_t speed, uint64_t slice_ns)
{
	double q = ((double)speed * (double)slice_ns) / 1000000000ull;
	rl->slice_ns = slice_ns;
	rl->slice_quota = (uint64_t)(q > 1 ? q : 1);
}

/* ratelimit_calculate_delay(limit, n), line by line, with `now` passed in. */
static int64_t ratelimit_calculate_delay(struct ratelimit *rl, int64_t now, uint64_t n)
{
	double delay_slices;

	if (rl->slice_end_time < now) {
		/* Previous, possibly extended, time slice finished; reset the accounting. */
		rl->slice_start_time = now;
		rl->slice_end_time = now + (int64_t)rl->slice_ns;
		rl->dispatched = 0;
	}
	rl->dispatched += n;
	if (rl->dispatched < rl->slice_quota)
		return 0; /* more may come within the current slice */
	/* Quota exceeded: stretch the slice to cover the count and wait for its end. */
	delay_slices = (double)rl->dispatched / rl->slice_quota;
	rl->slice_end_time = rl->slice_start_time + (int64_t)(uint64_t)(delay_slices * rl->slice_ns);
	return rl->slice_end_time - now;
}

/* One instruction in one task: the row of the top list. */
struct rip_entry {
	uint64_t rip;
	uint64_t count;
	uint32_t size, reason;
	bool used;
	bool rip_next; /* rip is the next instruction's (blvm_bus_lock_info.rip_next) */
	char disasm[64];
	struct blvm_policy_task task;
};

/* One known task: the row of the tasks list. */
struct task_entry {
	bool used;
	struct blvm_policy_task_stats st;
};
#define TASK_TABLE_SIZE (2 * BLVM_POLICY_MAX_TASKS) /* load factor stays <= 1/2 */

struct blvm_policy {
	unsigned nr_vcpus;
	uint64_t (*clock_ns)(void *);
	void *clock_arg;
	uint64_t created_ns;

	pthread_mutex_t lock; /* everything below */
	struct blvm_policy_config cfg; /* changed live by blvm_policy_set_config() */
	uint64_t kill_base;   /* KILL counts bus locks from here: the total when kill was set */
	uint64_t total, split, uc, unattributed, throttled_ns, sleeps;
	struct blvm_policy_vcpu_stats *vcpu; /* [nr_vcpus] */
	struct ratelimit rl;
	struct rip_entry *tab; /* open addressing, linear probing, power-of-two size */
	size_t tab_size, tab_used;
	uint64_t rips_overflow;
	struct task_entry *tasks; /* open addressing, TASK_TABLE_SIZE slots, allocated at the first */
	size_t tasks_used;
	uint64_t task_unknown, tasks_overflow;
	const char *stop_reason; /* set once, at the kill_at-th bus lock; points to stop_buf */
	char stop_buf[320];
	uint64_t progress_ns, progress_total;
	blvm_policy_symbolizer symbolize; /* set before the first run; read-only after */
	void *symbolize_arg;
	blvm_policy_task_source task_source; /* set before the first run; read-only after */
	void *task_source_arg;
};

static uint64_t monotonic_ns(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* The reports read under the lock from const pointers: the mutex is the one mutable member. */
static void lock(const struct blvm_policy *p)
{
	pthread_mutex_lock((pthread_mutex_t *)&p->lock);
}

static void unlock(const struct blvm_policy *p)
{
	pthread_mutex_unlock((pthread_mutex_t *)&p->lock);
}

struct blvm_policy *blvm_policy_create(const struct blvm_policy_config *cfg, unsigned nr_vcpus,
				       uint64_t (*clock_ns)(void *), void *clock_arg)
{
	struct blvm_policy *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->cfg = *cfg;
	p->nr_vcpus = nr_vcpus;
	p->vcpu = calloc(nr_vcpus ? nr_vcpus : 1, sizeof *p->vcpu);
	if (!p->vcpu || pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p->vcpu);
		free(p);
		return NULL;
	}
	p->clock_ns = clock_ns ? clock_ns : monotonic_ns;
	p->clock_arg = clock_arg;
	p->created_ns = p->clock_ns(p->clock_arg);
	p->progress_ns = p->created_ns;
	if (cfg->mode == BLVM_POLICY_RATELIMIT) {
		ratelimit_set_speed(&p->rl, cfg->rate ? cfg->rate : 1, cfg->slice_ns ? cfg->slice_ns : NS_PER_S);
		p->rl.slice_end_time = INT64_MIN; /* the first bus lock opens the first slice */
	}
	return p;
}

void blvm_policy_destroy(struct blvm_policy *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->tab);
	free(p->tasks);
	free(p->vcpu);
	free(p);
}

void blvm_policy_set_symbolizer(struct blvm_policy *p, blvm_policy_symbolizer fn, void *arg)
{
	if (!p)
		return;
	p->symbolize = fn;
	p->symbolize_arg = arg;
}

void blvm_policy_set_task_source(struct blvm_policy *p, blvm_policy_task_source fn, void *arg)
{
	if (!p)
		return;
	p->task_source = fn;
	p->task_source_arg = arg;
}

/* The same task: a known one by (pid, tgid, comm) -- a pid the guest reuses for another program is
 * another row --, an unknown one by its address space. */
static bool same_task(const struct blvm_policy_task *a, const struct blvm_policy_task *b)
{
	if (a->known != b->known)
		return false;
	if (a->known)
		return a->pid == b->pid && a->tgid == b->tgid && strcmp(a->comm, b->comm) == 0;
	return a->cr3 == b->cr3;
}

static uint64_t task_hash(const struct blvm_policy_task *t)
{
	return t->known ? (uint64_t)(uint32_t)t->pid * 0xff51afd7ed558ccdull : t->cr3 * 0xc4ceb9fe1a85ec53ull;
}

/* " <name+0xoff>" for rip into buf, or "" (no symbolizer, no name). */
static void sym_suffix(const struct blvm_policy *p, uint64_t rip, char *buf, size_t len)
{
	char name[96] = "", safe[96]; /* escaped, cut at a whole escape to fit the caller's line */
	if (p->symbolize)
		p->symbolize(p->symbolize_arg, rip, name, sizeof name);
	name[sizeof name - 1] = '\0';
	if (name[0])
		snprintf(buf, len, " <%s>", blvm_escape_text(safe, sizeof safe, name));
	else if (len)
		buf[0] = '\0';
}

const struct blvm_policy_config *blvm_policy_config(const struct blvm_policy *p)
{
	return &p->cfg;
}

/* The configuration now (it may change live): a copy taken under the lock; OFF's for p == NULL. */
static struct blvm_policy_config cfg_now(const struct blvm_policy *p)
{
	struct blvm_policy_config c = BLVM_POLICY_CONFIG_DEFAULT;
	if (p) {
		lock(p);
		c = p->cfg;
		unlock(p);
	}
	return c;
}

void blvm_policy_get_config(const struct blvm_policy *p, struct blvm_policy_config *cfg)
{
	*cfg = cfg_now(p);
}

/*
 * A live change. The counts, the attribution table and the per-vCPU rows go on. The limiter keeps its
 * slice as QEMU's ratelimit_set_speed() does (it sets slice_quota and slice_ns and leaves the slice's
 * start, end and dispatched count alone), so ratelimit=N to ratelimit=M takes effect within the current
 * slice; a limiter that was not running (any other mode before) opens its first slice at the next bus
 * lock, as at create. kill=N counts N bus locks from the change.
 */
void blvm_policy_set_config(struct blvm_policy *p, const struct blvm_policy_config *cfg)
{
	if (!p)
		return;
	lock(p);
	bool was_limiting = p->cfg.mode == BLVM_POLICY_RATELIMIT;
	p->cfg = *cfg;
	if (cfg->mode == BLVM_POLICY_RATELIMIT) {
		ratelimit_set_speed(&p->rl, cfg->rate ? cfg->rate : 1, cfg->slice_ns ? cfg->slice_ns : NS_PER_S);
		if (!was_limiting) {
			p->rl.dispatched = 0;
			p->rl.slice_end_time = INT64_MIN;
		}
	}
	if (cfg->mode == BLVM_POLICY_KILL) {
		p->kill_base = p->total;
		p->stop_reason = NULL;
	}
	unlock(p);
}

static size_t rip_hash(uint64_t rip, const struct blvm_policy_task *t, size_t size)
{
	return (size_t)(((rip * 0x9e3779b97f4a7c15ull) ^ task_hash(t)) >> 32) & (size - 1);
}

/* The slot holding (rip, task), or the empty slot where it belongs. */
static struct rip_entry *rip_slot(struct rip_entry *tab, size_t size, uint64_t rip, const struct blvm_policy_task *t)
{
	size_t i = rip_hash(rip, t, size);
	while (tab[i].used && (tab[i].rip != rip || !same_task(&tab[i].task, t)))
		i = (i + 1) & (size - 1);
	return &tab[i];
}

static bool rip_grow(struct blvm_policy *p)
{
	size_t size = p->tab_size ? p->tab_size * 2 : RIP_TABLE_MIN;
	struct rip_entry *tab = calloc(size, sizeof *tab);
	if (!tab)
		return false;
	for (size_t i = 0; i < p->tab_size; i++)
		if (p->tab[i].used)
			*rip_slot(tab, size, p->tab[i].rip, &p->tab[i].task) = p->tab[i];
	free(p->tab);
	p->tab = tab;
	p->tab_size = size;
	return true;
}

static void attribute(struct blvm_policy *p, const struct blvm_bus_lock_info *info, const struct blvm_policy_task *t)
{
	if (p->tab_size) {
		struct rip_entry *e = rip_slot(p->tab, p->tab_size, info->rip, t);
		if (e->used) {
			e->count++;
			return;
		}
	}
	/* A new instruction: bounded, so a guest cannot make us allocate without end. */
	if (p->tab_used >= BLVM_POLICY_MAX_RIPS ||
	    ((p->tab_used + 1) * 2 > p->tab_size && (p->tab_size >= RIP_TABLE_MAX || !rip_grow(p)))) {
		p->rips_overflow++;
		return;
	}
	struct rip_entry *e = rip_slot(p->tab, p->tab_size, info->rip, t);
	e->used = true;
	e->task = *t;
	e->rip = info->rip;
	e->count = 1;
	e->size = info->size;
	e->reason = info->reason;
	e->rip_next = info->rip_next;
	memcpy(e->disasm, info->disasm, sizeof e->disasm);
	e->disasm[sizeof e->disasm - 1] = '\0';
	p->tab_used++;
}

/* Counts a bus lock of a known task; bounded like the instruction table. */
static void count_task(struct blvm_policy *p, const struct blvm_policy_task *t, uint32_t reason)
{
	if (!p->tasks && !(p->tasks = calloc(TASK_TABLE_SIZE, sizeof *p->tasks))) {
		p->tasks_overflow++;
		return;
	}
	size_t i = (size_t)(task_hash(t) >> 32) & (TASK_TABLE_SIZE - 1);
	while (p->tasks[i].used && !same_task(&p->tasks[i].st.task, t))
		i = (i + 1) & (TASK_TABLE_SIZE - 1);
	struct task_entry *e = &p->tasks[i];
	if (!e->used) {
		if (p->tasks_used >= BLVM_POLICY_MAX_TASKS) {
			p->tasks_overflow++;
			return;
		}
		e->used = true;
		e->st.task = *t;
		p->tasks_used++;
	}
	e->st.bus_locks++;
	if (reason == BLVM_BUS_LOCK_SPLIT)
		e->st.split++;
	else if (reason == BLVM_BUS_LOCK_UC)
		e->st.uc++;
}

/* "splitlock/57" into buf: the comm escaped (the guest's bytes) and the pid, as Linux prints a task. */
static const char *task_name(const struct blvm_policy_task *t, char *buf, size_t len)
{
	char safe[4 * BLVM_POLICY_COMM_LEN + 1];
	snprintf(buf, len, "%s/%" PRId32, blvm_escape_text(safe, sizeof safe, t->comm), t->pid);
	return buf;
}

static const char *mode_name(uint8_t mode)
{
	return mode == BLVM_MODE_USER ? "user" : mode == BLVM_MODE_KERNEL ? "kernel" : NULL;
}

static const char *reason_name(uint32_t reason)
{
	return reason == BLVM_BUS_LOCK_SPLIT ? "split" : reason == BLVM_BUS_LOCK_UC ? "uc" : "unknown";
}

static void set_stop_reason(struct blvm_policy *p, unsigned vcpu, const struct kvm_run *run,
			    const struct blvm_bus_lock_info *info, const struct blvm_policy_task *t)
{
	char spec[48];
	blvm_policy_format(&p->cfg, spec, sizeof spec);
	int n = snprintf(p->stop_buf, sizeof p->stop_buf, "--bus-lock=%s: bus lock %" PRIu64 " of %" PRIu64
			  " allowed, ending the VM: vCPU %u", spec, p->total - p->kill_base, p->cfg.kill_at, vcpu);
	size_t off = n < 0 ? 0 : (size_t)n < sizeof p->stop_buf ? (size_t)n : sizeof p->stop_buf - 1;
	char sym[104];
	if (info)
		sym_suffix(p, info->rip, sym, sizeof sym);
	if (info && info->rip_next)
		snprintf(p->stop_buf + off, sizeof p->stop_buf - off,
			 " (exit reason %u at rip 0x%" PRIx64 "%s, the instruction after the locking one: the exit "
			 "is trap-like)", run->exit_reason, info->rip, sym);
	else if (info && !info->size) /* the kvm engine on an AMD host: the rip alone */
		snprintf(p->stop_buf + off, sizeof p->stop_buf - off,
			 " (exit reason %u at rip 0x%" PRIx64 "%s, the locking instruction; the engine reports no more)",
			 run->exit_reason, info->rip, sym);
	else if (info)
		snprintf(p->stop_buf + off, sizeof p->stop_buf - off,
			 " rip 0x%" PRIx64 "%s %s (%s, %u bytes at 0x%" PRIx64 ", physical 0x%" PRIx64 ")", info->rip,
			 sym, info->disasm[0] ? info->disasm : "(not disassembled)", reason_name(info->reason),
			 info->size, info->linear, info->phys);
	else
		snprintf(p->stop_buf + off, sizeof p->stop_buf - off,
			 " (exit reason %u; the engine does not report the instruction)", run->exit_reason);
	if (t->known) {
		char name[4 * BLVM_POLICY_COMM_LEN + 16];
		size_t used = strlen(p->stop_buf);
		snprintf(p->stop_buf + used, sizeof p->stop_buf - used, " in guest process %s (tgid %" PRId32 ", %s mode)",
			 task_name(t, name, sizeof name), t->tgid, t->mode == BLVM_MODE_USER ? "user" : "kernel");
	}
	p->stop_reason = p->stop_buf;
}

static struct blvm_policy_action on_bus_lock(struct blvm_policy *p, unsigned vcpu, const struct kvm_run *run,
					     const struct blvm_bus_lock_info *info)
{
	struct blvm_policy_action a = { .what = BLVM_POLICY_CONTINUE };
	if (!p)
		return a;
	/* Which guest task: reads the vCPU and guest memory, so before the lock and only here. */
	struct blvm_policy_task t = { 0 };
	if (p->task_source)
		p->task_source(p->task_source_arg, vcpu, &t);
	t.comm[BLVM_POLICY_COMM_LEN] = '\0';
	lock(p);
	if (p->cfg.mode == BLVM_POLICY_OFF) {
		unlock(p);
		return a;
	}
	/* A vCPU index out of range still counts for the VM; its own row goes to a scratch one. */
	struct blvm_policy_vcpu_stats scratch = { 0 }, *v = vcpu < p->nr_vcpus ? &p->vcpu[vcpu] : &scratch;
	p->total++;
	a.total = p->total;
	v->bus_locks++;
	uint32_t reason = info ? info->reason : 0;
	if (reason == BLVM_BUS_LOCK_SPLIT)
		p->split++, v->split++;
	else if (reason == BLVM_BUS_LOCK_UC)
		p->uc++, v->uc++;
	else
		p->unattributed++, v->unattributed++;
	if (info)
		attribute(p, info, &t);
	if (t.known)
		count_task(p, &t, reason);
	else
		p->task_unknown++;

	switch (p->cfg.mode) {
	case BLVM_POLICY_RATELIMIT: {
		int64_t delay = ratelimit_calculate_delay(&p->rl, (int64_t)p->clock_ns(p->clock_arg), 1);
		if (delay > 0) {
			a.what = BLVM_POLICY_SLEEP;
			a.sleep_ns = (uint64_t)delay;
			p->sleeps++, v->sleeps++;
		}
		break;
	}
	case BLVM_POLICY_PAUSE:
		a.what = BLVM_POLICY_SLEEP;
		a.sleep_ns = p->cfg.pause_ns;
		p->sleeps++, v->sleeps++;
		break;
	case BLVM_POLICY_KILL:
		if (p->total - p->kill_base == p->cfg.kill_at)
			set_stop_reason(p, vcpu, run, info, &t);
		if (p->total - p->kill_base >= p->cfg.kill_at) {
			a.what = BLVM_POLICY_STOP;
			a.reason = p->stop_reason;
		}
		break;
	default: /* LOG, CONTAIN: count only */
		break;
	}
	unlock(p);
	return a;
}

struct blvm_policy_action blvm_policy_after_run(struct blvm_policy *p, unsigned vcpu, const struct kvm_run *run,
						const struct blvm_bus_lock_info *info)
{
	/* The flag, whatever exit_reason says (api.rst): 33 always carries it, MMIO/IO exits may. */
	if (__builtin_expect(!(run->flags & KVM_RUN_X86_BUS_LOCK), 1))
		return (struct blvm_policy_action){ .what = BLVM_POLICY_CONTINUE };
	return on_bus_lock(p, vcpu, run, info);
}

void blvm_policy_slept(struct blvm_policy *p, unsigned vcpu, uint64_t ns)
{
	if (!p)
		return;
	lock(p);
	p->throttled_ns += ns;
	if (vcpu < p->nr_vcpus)
		p->vcpu[vcpu].throttled_ns += ns;
	unlock(p);
}

void blvm_policy_get_stats(const struct blvm_policy *p, struct blvm_policy_stats *st)
{
	memset(st, 0, sizeof *st);
	if (!p)
		return;
	lock(p);
	st->total = p->total;
	st->split = p->split;
	st->uc = p->uc;
	st->unattributed = p->unattributed;
	st->throttled_ns = p->throttled_ns;
	st->sleeps = p->sleeps;
	st->distinct_rips = p->tab_used;
	st->rips_overflow = p->rips_overflow;
	st->table_bytes = p->tab_size * sizeof *p->tab;
	st->task_unknown = p->task_unknown;
	st->tasks = p->tasks_used;
	st->tasks_overflow = p->tasks_overflow;
	unlock(p);
	uint64_t now = p->clock_ns(p->clock_arg);
	st->elapsed_s = now > p->created_ns ? (double)(now - p->created_ns) / 1e9 : 0;
}

void blvm_policy_get_vcpu_stats(const struct blvm_policy *p, unsigned vcpu, struct blvm_policy_vcpu_stats *st)
{
	memset(st, 0, sizeof *st);
	if (!p || vcpu >= p->nr_vcpus)
		return;
	lock(p);
	*st = p->vcpu[vcpu];
	unlock(p);
}

/* Most first; ties: lower rip, then lower pid (unknown tasks: lower CR3), so the order is stable. */
static bool ranks_before(const struct rip_entry *a, const struct blvm_policy_insn *b)
{
	if (a->count != b->count)
		return a->count > b->count;
	if (a->rip != b->rip)
		return a->rip < b->rip;
	if (a->task.known != b->task.known)
		return a->task.known;
	return a->task.known ? a->task.pid < b->task.pid : a->task.cr3 < b->task.cr3;
}

unsigned blvm_policy_top(const struct blvm_policy *p, struct blvm_policy_insn *out, unsigned max)
{
	unsigned n = 0;
	if (!p || max == 0)
		return 0;
	lock(p);
	/* Insertion into a sorted array of at most `max`: O(table * max), max is 10. */
	for (size_t i = 0; i < p->tab_size; i++) {
		const struct rip_entry *e = &p->tab[i];
		if (!e->used)
			continue;
		unsigned pos = n;
		while (pos > 0 && ranks_before(e, &out[pos - 1]))
			pos--;
		if (pos >= max)
			continue;
		unsigned last = n < max ? n : max - 1;
		memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof *out);
		out[pos] = (struct blvm_policy_insn){ .rip = e->rip, .count = e->count, .size = e->size,
						      .reason = e->reason, .task = e->task, .rip_next = e->rip_next };
		memcpy(out[pos].disasm, e->disasm, sizeof out[pos].disasm);
		if (n < max)
			n++;
	}
	for (unsigned k = 0; k < n; k++) {
		out[k].symbol[0] = '\0';
		if (p->symbolize) {
			p->symbolize(p->symbolize_arg, out[k].rip, out[k].symbol, sizeof out[k].symbol);
			out[k].symbol[sizeof out[k].symbol - 1] = '\0';
		}
	}
	unlock(p);
	return n;
}

unsigned blvm_policy_tasks(const struct blvm_policy *p, struct blvm_policy_task_stats *out, unsigned max)
{
	unsigned n = 0;
	if (!p || max == 0)
		return 0;
	lock(p);
	for (size_t i = 0; p->tasks && i < TASK_TABLE_SIZE; i++) {
		const struct task_entry *e = &p->tasks[i];
		if (!e->used)
			continue;
		unsigned pos = n;
		while (pos > 0 && (e->st.bus_locks > out[pos - 1].bus_locks ||
				   (e->st.bus_locks == out[pos - 1].bus_locks && e->st.task.pid < out[pos - 1].task.pid)))
			pos--;
		if (pos >= max)
			continue;
		unsigned last = n < max ? n : max - 1;
		memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof *out);
		out[pos] = e->st;
		if (n < max)
			n++;
	}
	unlock(p);
	return n;
}

static void write_task_json(FILE *f, const struct blvm_policy_task *t)
{
	fprintf(f, "{\"comm\": ");
	json_write_string(f, t->comm);
	fprintf(f, ", \"pid\": %" PRId32 ", \"tgid\": %" PRId32 "}", t->pid, t->tgid);
}

void blvm_policy_write_json(const struct blvm_policy *p, FILE *f, int indent)
{
	struct blvm_policy_stats st;
	struct blvm_policy_insn top[BLVM_POLICY_TOP];
	struct blvm_policy_task_stats tasks[BLVM_POLICY_TOP];
	char spec[48];
	blvm_policy_get_stats(p, &st);
	unsigned ntop = blvm_policy_top(p, top, BLVM_POLICY_TOP);
	struct blvm_policy_config cfg = cfg_now(p);
	blvm_policy_format(&cfg, spec, sizeof spec);
	unsigned ntasks = blvm_policy_tasks(p, tasks, BLVM_POLICY_TOP);
	if (indent < 0)
		indent = 0;

	fprintf(f, "%*s\"bus_locks\": {\"policy\": ", indent, "");
	json_write_string(f, spec);
	fprintf(f, ", \"total\": %" PRIu64 ", \"split\": %" PRIu64 ", \"uc\": %" PRIu64 ", \"unattributed\": %" PRIu64
		", \"throttled_ns\": %" PRIu64 ", \"per_second\": %.3f, \"distinct_rips\": %" PRIu64
		", \"rips_overflow\": %" PRIu64 ", \"task_unknown\": %" PRIu64 ", \"tasks_overflow\": %" PRIu64 "},\n",
		st.total, st.split, st.uc, st.unattributed, st.throttled_ns,
		st.elapsed_s > 0 ? (double)st.total / st.elapsed_s : 0.0, st.distinct_rips, st.rips_overflow,
		st.task_unknown, st.tasks_overflow);
	fprintf(f, "%*s\"top\": [", indent, "");
	for (unsigned i = 0; i < ntop; i++) {
		if (top[i].rip_next) {
			/* Only the address after the instruction is known: said so, never a guessed start. */
			fprintf(f, "%s\n%*s{\"rip\": null, \"next_rip\": \"0x%" PRIx64 "\", \"count\": %" PRIu64
				", \"insn\": null, \"reason\": \"%s\", \"size\": null, \"symbol\": null, \"next_symbol\": ",
				i ? "," : "", indent + 2, "", top[i].rip, top[i].count, reason_name(top[i].reason));
		} else {
			fprintf(f, "%s\n%*s{\"rip\": \"0x%" PRIx64 "\", \"count\": %" PRIu64 ", \"insn\": ", i ? "," : "",
				indent + 2, "", top[i].rip, top[i].count);
			if (top[i].disasm[0])
				json_write_string(f, top[i].disasm);
			else
				fputs("null", f); /* the kvm engine: the rip alone */
			fprintf(f, ", \"reason\": \"%s\", \"size\": ", reason_name(top[i].reason));
			fprintf(f, top[i].size ? "%u, \"symbol\": " : "null, \"symbol\": ", top[i].size);
		}
		if (top[i].symbol[0])
			json_write_string(f, top[i].symbol);
		else
			fputs("null", f);
		const char *mode = mode_name(top[i].task.mode);
		fprintf(f, ", \"mode\": %s%s%s, \"task\": ", mode ? "\"" : "", mode ? mode : "null", mode ? "\"" : "");
		if (top[i].task.known)
			write_task_json(f, &top[i].task);
		else
			fputs("null", f);
		if (top[i].task.cr3)
			fprintf(f, ", \"cr3\": \"0x%" PRIx64 "\"}", top[i].task.cr3);
		else
			fputs(", \"cr3\": null}", f);
	}
	if (ntop)
		fprintf(f, "\n%*s", indent, "");
	fprintf(f, "],\n%*s\"tasks\": [", indent, "");
	for (unsigned i = 0; i < ntasks; i++) {
		fprintf(f, "%s\n%*s{\"comm\": ", i ? "," : "", indent + 2, "");
		json_write_string(f, tasks[i].task.comm);
		fprintf(f, ", \"pid\": %" PRId32 ", \"tgid\": %" PRId32 ", \"bus_locks\": %" PRIu64 ", \"split\": %" PRIu64
			", \"uc\": %" PRIu64 "}", tasks[i].task.pid, tasks[i].task.tgid, tasks[i].bus_locks, tasks[i].split,
			tasks[i].uc);
	}
	if (ntasks)
		fprintf(f, "\n%*s", indent, "");
	fputc(']', f);
}

static void human_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns >= NS_PER_S)
		snprintf(buf, len, "%.3f s", ns / 1e9);
	else if (ns >= 1000000)
		snprintf(buf, len, "%.3f ms", ns / 1e6);
	else
		snprintf(buf, len, "%" PRIu64 " ns", ns);
}

/* "blvm: by vCPU: 0: 300, 1: 12, ...": the vCPUs that took bus locks, most first (ties: lower index), at
 * most BLVM_POLICY_TOP of them, so that a 64-vCPU report stays one line. */
static void write_vcpu_line(const struct blvm_policy *p, FILE *f)
{
	unsigned shown[BLVM_POLICY_TOP], nshown = 0, with = 0;
	lock(p);
	for (unsigned i = 0; i < p->nr_vcpus; i++) {
		if (!p->vcpu[i].bus_locks)
			continue;
		with++;
		/* Insertion into the small sorted list of the busiest. */
		unsigned j = nshown < BLVM_POLICY_TOP ? nshown++ : BLVM_POLICY_TOP;
		while (j > 0 && p->vcpu[shown[j - 1]].bus_locks < p->vcpu[i].bus_locks) {
			if (j < BLVM_POLICY_TOP)
				shown[j] = shown[j - 1];
			j--;
		}
		if (j < BLVM_POLICY_TOP)
			shown[j] = i;
	}
	fprintf(f, "blvm: by vCPU:");
	for (unsigned k = 0; k < nshown; k++)
		fprintf(f, "%s %u: %" PRIu64, k ? "," : "", shown[k], p->vcpu[shown[k]].bus_locks);
	if (with > nshown)
		fprintf(f, " (and %u more vCPUs)", with - nshown);
	fprintf(f, "%s\n", with < p->nr_vcpus ? "; the others none" : "");
	unlock(p);
}

void blvm_policy_write_summary(const struct blvm_policy *p, FILE *f, double wall_seconds)
{
	struct blvm_policy_config cfg = cfg_now(p);
	if (!p || cfg.mode == BLVM_POLICY_OFF)
		return;
	struct blvm_policy_stats st;
	struct blvm_policy_insn top[BLVM_POLICY_TOP];
	char spec[48], thr[32];
	blvm_policy_get_stats(p, &st);
	unsigned ntop = blvm_policy_top(p, top, BLVM_POLICY_TOP);
	blvm_policy_format(&cfg, spec, sizeof spec);

	fprintf(f, "blvm: --bus-lock=%s: %" PRIu64 " bus lock%s in %.2f s", spec, st.total, st.total == 1 ? "" : "s",
		wall_seconds);
	if (wall_seconds > 0)
		fprintf(f, " (%.1f/s)", st.total / wall_seconds);
	fprintf(f, "; split %" PRIu64 ", uc %" PRIu64 ", unattributed %" PRIu64 "\n", st.split, st.uc,
		st.unattributed);
	if (cfg.mode == BLVM_POLICY_RATELIMIT || cfg.mode == BLVM_POLICY_PAUSE || st.sleeps) {
		human_ns(thr, sizeof thr, st.throttled_ns);
		fprintf(f, "blvm: vCPUs throttled %s in %" PRIu64 " sleep%s", thr, st.sleeps, st.sleeps == 1 ? "" : "s");
		if (wall_seconds > 0)
			fprintf(f, " (%.0f%% of the run per vCPU on average)",
				100.0 * st.throttled_ns / 1e9 / wall_seconds / (p->nr_vcpus ? p->nr_vcpus : 1));
		fputc('\n', f);
	}
	if (st.total == 0)
		return;
	if (p->nr_vcpus > 1)
		write_vcpu_line(p, f);
	struct blvm_policy_task_stats tasks[BLVM_POLICY_TOP];
	unsigned ntasks = blvm_policy_tasks(p, tasks, BLVM_POLICY_TOP);
	if (ntasks) {
		fprintf(f, "blvm: by guest process:");
		for (unsigned k = 0; k < ntasks; k++) {
			char name[4 * BLVM_POLICY_COMM_LEN + 16];
			fprintf(f, "%s %s: %" PRIu64, k ? "," : "", task_name(&tasks[k].task, name, sizeof name),
				tasks[k].bus_locks);
		}
		if (st.tasks > ntasks)
			fprintf(f, " (and %" PRIu64 " more processes)", st.tasks - ntasks);
		if (st.task_unknown)
			fprintf(f, "; %" PRIu64 " in no known process", st.task_unknown);
		fputc('\n', f);
	}
	if (ntop == 0) {
		fprintf(f, "blvm: no instruction attribution: the engine did not report bus-lock addresses\n");
		return;
	}
	fprintf(f, "blvm: top instructions:\n");
	fprintf(f, "blvm: %12s  %-18s  %-6s %4s  %s\n", "count", "rip", "reason", "size", "instruction");
	for (unsigned i = 0; i < ntop; i++) {
		char safe[4 * sizeof top[i].symbol];
		char name[4 * BLVM_POLICY_COMM_LEN + 32] = "";
		if (top[i].task.known) {
			char tn[4 * BLVM_POLICY_COMM_LEN + 16];
			snprintf(name, sizeof name, "  [%s %s]", task_name(&top[i].task, tn, sizeof tn),
				 top[i].task.mode == BLVM_MODE_USER ? "user" : "kernel");
		}
		if (top[i].rip_next)
			fprintf(f, "blvm: %12" PRIu64 "  0x%016" PRIx64 "  %-6s %4s  (the instruction before this rip: the "
				"exit is trap-like)%s%s%s%s\n", top[i].count, top[i].rip, reason_name(top[i].reason), "?",
				top[i].symbol[0] ? "  <next: " : "", blvm_escape_text(safe, sizeof safe, top[i].symbol),
				top[i].symbol[0] ? ">" : "", name);
		else
			fprintf(f, "blvm: %12" PRIu64 "  0x%016" PRIx64 "  %-6s %4u  %s%s%s%s%s\n", top[i].count,
				top[i].rip, reason_name(top[i].reason), top[i].size,
				top[i].disasm[0] ? top[i].disasm : "?", top[i].symbol[0] ? "  <" : "",
				blvm_escape_text(safe, sizeof safe, top[i].symbol), top[i].symbol[0] ? ">" : "", name);
	}
	if (st.distinct_rips > ntop || st.rips_overflow)
		fprintf(f, "blvm: (%" PRIu64 " distinct instructions in all%s)\n", st.distinct_rips,
			st.rips_overflow ? ", more beyond the attribution table" : "");
}

bool blvm_policy_progress_due(struct blvm_policy *p, char *line, size_t len)
{
	if (!p)
		return false;
	uint64_t now = p->clock_ns(p->clock_arg);
	lock(p);
	if (p->cfg.mode == BLVM_POLICY_OFF) {
		unlock(p);
		return false;
	}
	uint64_t dt = now - p->progress_ns, dn = p->total - p->progress_total, total = p->total;
	bool due = now >= p->progress_ns && dt >= NS_PER_S && dn > 0;
	if (due) {
		p->progress_ns = now;
		p->progress_total = total;
	}
	unlock(p);
	if (due && line && len)
		snprintf(line, len, "bus locks: %.0f/s over the last %.1f s, %" PRIu64 " in all", dn / (dt / 1e9),
			 dt / 1e9, total);
	return due;
}
